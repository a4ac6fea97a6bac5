/**
 * Ownership transfers: the ranges a joining node must receive before it serves them, and the
 * ranges a leaving node must hand over before it goes.
 *
 * The plan compares the ring that places data now (members `up` or `leaving`) with the ring
 * of the change (members `joining` or `up`), range by range (ring/ownership-diff.ts):
 *
 * - Joining node X: for every range X gains, every current replica of it is a source, and X
 *   runs an exchange with each over the spans it gains from it. Pulling from every replica
 *   (not just the one that drops out) means a write acknowledged by any quorum of the old
 *   replicas reaches X; after the first source the others cost only what they hold
 *   differently (the exchange is anti-entropy's, which ships only differing records).
 * - Leaving node L: for every range L loses, each node that gains it is a target, and L runs an
 *   exchange with it over those spans. The replicas that stay keep what they hold, so every
 *   write that a quorum of the old replicas acknowledged is on a quorum of the new ones.
 *
 * Only the node that joins or leaves moves data, and only to or from the nodes that gain or
 * hold the ranges: nothing moves between existing nodes. The plan is recomputed whenever
 * either ring changes; a task whose peer and spans are unchanged keeps its state, so a
 * transfer resumes where the plan still wants it, and a task that failed is retried later.
 * An exchange merges with the DVV merge, so a transfer that is repeated (after a crash of
 * either side) never loses or duplicates a version.
 */

import { joinedBounds, type Span } from '../ring/shared-ranges.js';
import { ownershipDiff, type RangeChange } from '../ring/ownership-diff.js';
import type { Ring } from '../ring/ring.js';
import { rangeSize, RING_TOKENS, type TokenRange } from '../ring/token-range.js';

export type TransferDirection = 'in' | 'out';
export type TransferState = 'pending' | 'running' | 'done' | 'failed';

export interface TransferTask {
  readonly peer: string;
  readonly direction: TransferDirection;
  readonly spans: readonly Span[];
  readonly ranges: number;
  /** Share of the ring the spans cover, in [0, 1]. */
  readonly share: number;
  state: TransferState;
  attempts: number;
  /** No new attempt before this tick (after a failure). */
  notBefore: number;
  keysCompared: number;
  keysMoved: number;
  lastError: string | undefined;
}

/** What one node must do for a change: its tasks, one per peer. */
export function planTransfers(current: Ring, future: Ring, self: string, n: number): TransferTask[] {
  const changes = ownershipDiff(current, future, n);
  const byPeer = new Map<string, { direction: TransferDirection; ranges: TokenRange[] }>();
  const add = (peer: string, direction: TransferDirection, range: TokenRange): void => {
    const key = `${direction} ${peer}`;
    let entry = byPeer.get(key);
    if (entry === undefined) byPeer.set(key, (entry = { direction, ranges: [] }));
    entry.ranges.push(range);
  };
  for (const change of changes) {
    if (change.gained.includes(self)) for (const source of change.before) if (source !== self) add(source, 'in', change.range);
    if (change.lost.includes(self)) for (const target of change.gained) add(target, 'out', change.range);
  }
  const tasks: TransferTask[] = [];
  for (const [key, { direction, ranges }] of [...byPeer.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const peer = key.slice(key.indexOf(' ') + 1);
    const sorted = [...ranges].sort((a, b) => a.end - b.end);
    const spans = joinedBounds(sorted);
    const share = sorted.reduce((sum, r) => sum + rangeSize(r), 0) / RING_TOKENS;
    // One exchange names at most SPANS_PER_TASK spans; a peer with more gets several tasks.
    for (let at = 0; at < spans.length; at += SPANS_PER_TASK) {
      const part = spans.slice(at, at + SPANS_PER_TASK);
      tasks.push({
        peer,
        direction,
        spans: part,
        ranges: spans.length <= SPANS_PER_TASK ? sorted.length : part.length,
        share: spans.length <= SPANS_PER_TASK ? share : part.reduce((sum, s) => sum + spanSize(s), 0) / RING_TOKENS,
        state: 'pending',
        attempts: 0,
        notBefore: 0,
        keysCompared: 0,
        keysMoved: 0,
        lastError: undefined,
      });
    }
  }
  return tasks;
}

/** Spans in one transfer exchange at most (the wire's bound on an exchange's spans). */
export const SPANS_PER_TASK = 4096;

function spanSize(span: Span): number {
  if (span.fromToken === span.toToken) return RING_TOKENS;
  return span.toToken > span.fromToken ? span.toToken - span.fromToken : RING_TOKENS - span.fromToken + span.toToken;
}

/** The same peer, direction and spans: a task whose state a new plan keeps. */
export function sameTask(a: TransferTask, b: TransferTask): boolean {
  return a.peer === b.peer && a.direction === b.direction && a.spans.length === b.spans.length && a.spans.every((s, i) => s.fromToken === b.spans[i]!.fromToken && s.toToken === b.spans[i]!.toToken);
}

/** Keeps the state of tasks the new plan still has. */
export function carryOver(previous: readonly TransferTask[], next: TransferTask[]): TransferTask[] {
  return next.map((task) => previous.find((old) => sameTask(old, task)) ?? task);
}

export interface ChangeSummary {
  readonly ranges: number;
  /** Per node: the share of the ring it gains and loses (as a replica). */
  readonly nodes: readonly { readonly node: string; readonly gains: number; readonly loses: number }[];
  /** Share of the ring (as replica-ranges) that moves to nodes that already were members: should be 0. */
  readonly betweenExisting: number;
  /** Replica-ranges moved in all, as a share of the ring. */
  readonly moved: number;
}

/** What a change would move: per node, the share of the ring it gains and loses. */
export function summarizeChange(before: Ring, after: Ring, n: number): ChangeSummary {
  const changes: RangeChange[] = ownershipDiff(before, after, n);
  const nodes = new Map<string, { gains: number; loses: number }>();
  const of = (id: string): { gains: number; loses: number } => {
    let entry = nodes.get(id);
    if (entry === undefined) nodes.set(id, (entry = { gains: 0, loses: 0 }));
    return entry;
  };
  let betweenExisting = 0;
  let moved = 0;
  for (const change of changes) {
    const share = rangeSize(change.range) / RING_TOKENS;
    for (const id of change.gained) {
      of(id).gains += share;
      moved += share;
      if (before.has(id)) betweenExisting += share;
    }
    for (const id of change.lost) of(id).loses += share;
  }
  return {
    ranges: changes.length,
    nodes: [...nodes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([node, v]) => ({ node, ...v })),
    betweenExisting,
    moved,
  };
}
