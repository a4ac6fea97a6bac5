/**
 * Hinted handoff, the bookkeeping half: how many hints this node keeps for each target, the
 * budget that bounds them, and the delivery of batches to targets that are alive again.
 *
 * A fallback that takes a write for a primary that is down keeps it as a durable hint
 * (storage's hint keyspace) and counts it here. Each delivery interval, for every target
 * that is alive and has no batch in flight, the node reads a batch of hints and sends it;
 * the target merges them and answers once they are durable, and only then does the node
 * delete each hint it sent, and only if the hint did not change meanwhile (a newer write
 * for the same key is delivered in a later batch). A batch that fails or times out is sent
 * again at a later interval, with backoff.
 *
 * Budget: past `countMax` hints or `bytesMax` bytes for one target, the node stops taking
 * hints for it (the write counts as a failed replica) and counts a drop; the gap is left to
 * anti-entropy. Byte sizes are estimates of the encoded objects, so the budget is a bound on
 * memory and disk, not an exact quota.
 */

import type { KvObject } from '../clock/object.js';

export interface HintBudget {
  /** Hints kept for one target at most. */
  readonly countMax: number;
  /** Estimated bytes of hints kept for one target at most. */
  readonly bytesMax: number;
}

export interface HandoffTiming {
  /** Ticks between delivery rounds. */
  readonly intervalTicks: number;
  /** Hints per batch. */
  readonly batchMax: number;
  /** Ticks a batch may wait for its acknowledgement. */
  readonly timeoutTicks: number;
}

export interface HintItem {
  readonly bucket: string;
  readonly key: string;
  readonly object: KvObject;
}

export interface HintTargetStats {
  readonly target: string;
  readonly pending: number;
  readonly bytes: number;
  readonly delivered: number;
  readonly dropped: number;
}

interface TargetState {
  count: number;
  bytes: number;
  delivered: number;
  dropped: number;
  /** The batch in flight, if any. */
  inflight: { readonly rid: number; readonly items: readonly HintItem[]; readonly deadline: number } | undefined;
  /** No delivery before this tick (backoff after a failure). */
  notBefore: number;
  failures: number;
}

/** Rounds a failed target waits at most before the next try. */
const BACKOFF_ROUNDS_MAX = 32;

export class HintBook {
  private readonly budget: HintBudget;
  private readonly timing: HandoffTiming;
  private readonly targets = new Map<string, TargetState>();
  private nextRoundTick = 0;

  constructor(budget: HintBudget, timing: HandoffTiming, initial: readonly { target: string; count: number; bytes: number }[]) {
    this.budget = budget;
    this.timing = timing;
    for (const { target, count, bytes } of initial) {
      const state = this.state(target);
      state.count = count;
      state.bytes = bytes;
    }
  }

  /** Whether a hint for `target` may be stored: always when it replaces one, otherwise within budget. */
  admits(target: string, replaces: boolean, bytes: number): boolean {
    if (replaces) return true;
    const state = this.targets.get(target);
    if (state === undefined) return bytes <= this.budget.bytesMax && this.budget.countMax > 0;
    return state.count < this.budget.countMax && state.bytes + bytes <= this.budget.bytesMax;
  }

  /** A hint was written: `replaced` the size of the one it replaced, if any. */
  stored(target: string, bytes: number, replaced: number | undefined): void {
    const state = this.state(target);
    if (replaced === undefined) state.count++;
    state.bytes = Math.max(0, state.bytes + bytes - (replaced ?? 0));
  }

  /** A hint of `bytes` was delivered and deleted. */
  removed(target: string, bytes: number): void {
    const state = this.state(target);
    state.count = Math.max(0, state.count - 1);
    state.bytes = Math.max(0, state.bytes - bytes);
    state.delivered++;
  }

  dropped(target: string): void {
    this.state(target).dropped++;
  }

  /** Targets that keep hints. */
  get pendingTargets(): string[] {
    return [...this.targets].filter(([, s]) => s.count > 0).map(([target]) => target);
  }

  get pendingTotal(): number {
    let total = 0;
    for (const state of this.targets.values()) total += state.count;
    return total;
  }

  stats(): HintTargetStats[] {
    return [...this.targets]
      .map(([target, s]) => ({ target, pending: s.count, bytes: s.bytes, delivered: s.delivered, dropped: s.dropped }))
      .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }

  /**
   * One tick: at each delivery round, the targets to send a batch to now (alive, with hints,
   * none in flight, not backing off). Batches past their deadline are given up first.
   */
  due(now: number, alive: (target: string) => boolean): string[] {
    for (const state of this.targets.values()) {
      if (state.inflight !== undefined && now >= state.inflight.deadline) this.failed(state, now);
    }
    if (now < this.nextRoundTick) return [];
    this.nextRoundTick = now + this.timing.intervalTicks;
    const due: string[] = [];
    for (const [target, state] of this.targets) {
      if (state.count > 0 && state.inflight === undefined && now >= state.notBefore && alive(target)) due.push(target);
    }
    return due.sort();
  }

  /** Records the batch sent to `target`. */
  sent(target: string, rid: number, items: readonly HintItem[], now: number): void {
    this.state(target).inflight = { rid, items, deadline: now + this.timing.timeoutTicks };
  }

  /** The batch `rid` to `target` was acknowledged: its items, for the caller to delete. */
  acknowledged(target: string, rid: number): readonly HintItem[] | undefined {
    const state = this.targets.get(target);
    if (state?.inflight === undefined || state.inflight.rid !== rid) return undefined;
    const items = state.inflight.items;
    state.inflight = undefined;
    state.failures = 0;
    return items;
  }

  /** The batch `rid` to `target` failed; it is sent again after a backoff. */
  refused(target: string, rid: number, now: number): boolean {
    const state = this.targets.get(target);
    if (state?.inflight === undefined || state.inflight.rid !== rid) return false;
    this.failed(state, now);
    return true;
  }

  /** The target could not be reached: its batch in flight, if any, is lost; try again after a backoff. */
  unreachable(target: string, now: number): void {
    const state = this.targets.get(target);
    if (state?.inflight !== undefined) this.failed(state, now);
  }

  /** The count the store holds is the truth: a batch read fewer hints than counted. */
  recount(target: string, count: number): void {
    const state = this.state(target);
    if (count === 0) state.bytes = 0;
    state.count = count;
  }

  private failed(state: TargetState, now: number): void {
    state.inflight = undefined;
    state.failures++;
    state.notBefore = now + this.timing.intervalTicks * Math.min(BACKOFF_ROUNDS_MAX, 2 ** Math.min(state.failures - 1, 5));
  }

  private state(target: string): TargetState {
    let state = this.targets.get(target);
    if (state === undefined) {
      state = { count: 0, bytes: 0, delivered: 0, dropped: 0, inflight: undefined, notBefore: 0, failures: 0 };
      this.targets.set(target, state);
    }
    return state;
  }
}

/** Estimated encoded size of an object: its values and a little per actor. */
export function objectBytes(object: KvObject): number {
  let bytes = 8;
  for (const entry of object.entries) {
    bytes += entry.actor.length + 12;
    for (const value of entry.values) bytes += value === null ? 1 : value.byteLength + 3;
  }
  return bytes;
}
