/**
 * Cleanup: after the ring moved (a node joined, or one was removed and came back), a node
 * still holds the keys of ranges it no longer replicates. Nothing reads them and anti-entropy
 * does not compare them, but they take disk and, worse, come back to life: should the ring
 * give such a range back to this node later, the stale copies (values deleted and reaped
 * elsewhere meanwhile) would be merged into its replicas again. Cassandra's `nodetool
 * cleanup`, for the same reasons.
 *
 * `start` computes the spans of the ring this node is not a replica of (for the largest `n`
 * of any bucket, so a key any bucket places here stays) and a pass removes what it holds
 * there, a batch at a time with one batch on its way to disk: a local delete (no tombstone:
 * the key lives on at its replicas), which moves the segment hashes like any write. The pass
 * stops if the ring changes under it; a node only starts one while it is up and no member is
 * joining or leaving.
 */

import type { KvObject } from '../clock/object.js';
import { RING_TOKENS } from '../ring/token-range.js';
import { primaryIndexesAt, type Ring } from '../ring/ring.js';
import { joinedBounds, type Span } from '../ring/shared-ranges.js';
import type { TokenRange } from '../ring/token-range.js';

/** Keys removed per batch at most. */
export const CLEANUP_BATCH_KEYS = 256;

export interface CleanupProgress {
  /** The ring (its checksum) the pass computed its spans on. */
  readonly ring: string;
  readonly spans: number;
  /** The share of the ring the spans cover, in [0, 1]. */
  readonly share: number;
  readonly spansDone: number;
  readonly keysRemoved: number;
  readonly done: boolean;
  /** Why the pass stopped before the end, if it did. */
  readonly aborted: string | null;
}

/** What a pass needs of the node: its store's scan, and local deletes that report when durable. */
export interface CleanupPort<Out> {
  scan(fromToken: number, toToken: number): Iterable<{ readonly bucket: string; readonly key: string; readonly object: KvObject }>;
  remove(slots: readonly { readonly bucket: string; readonly key: string }[], out: Out[], done: (failure: string | undefined, out: Out[]) => void): void;
}

/** The vnode ranges of a ring whose `n` primaries do not include `node`, in ring order. */
export function rangesWithout(ring: Ring, node: string, n: number): TokenRange[] {
  const count = ring.vnodeCount;
  if (count === 0) return [];
  if (!ring.has(node)) return [{ start: ring.tokens[0]!, end: ring.tokens[0]! }];
  if (count === 1 || ring.nodeCount === 1) return [];
  const out: TokenRange[] = [];
  for (let v = 0; v < count; v++) {
    const primaries = primaryIndexesAt(ring, v, n).map((index) => ring.idOf(index));
    if (primaries.includes(node)) continue;
    out.push({ start: ring.tokens[(v + count - 1) % count]!, end: ring.tokens[v]! });
  }
  return out;
}

/** The spans [from, to) of the ring `node` holds nothing of (for replication factor `n`). */
export function foreignSpans(ring: Ring, node: string, n: number): Span[] {
  return joinedBounds(rangesWithout(ring, node, n));
}

export class CleanupPass<Out> {
  private spanIndex = 0;
  private removed = 0;
  private inFlight = false;
  private finished = false;
  private abortReason: string | null = null;

  constructor(
    private readonly port: CleanupPort<Out>,
    readonly ring: string,
    private readonly spans: readonly Span[],
  ) {}

  get progress(): CleanupProgress {
    return {
      ring: this.ring,
      spans: this.spans.length,
      share: spansShare(this.spans),
      spansDone: Math.min(this.spanIndex, this.spans.length),
      keysRemoved: this.removed,
      done: this.finished,
      aborted: this.abortReason,
    };
  }

  get running(): boolean {
    return !this.finished;
  }

  abort(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.abortReason = reason;
  }

  /** Sends the next batch of deletes unless one is on its way; `budget` caps its size. */
  onTick(budget: number, out: Out[]): void {
    if (this.finished || this.inFlight) return;
    const limit = Math.max(1, Math.min(CLEANUP_BATCH_KEYS, Math.floor(budget)));
    const batch: { bucket: string; key: string }[] = [];
    while (this.spanIndex < this.spans.length && batch.length === 0) {
      const span = this.spans[this.spanIndex]!;
      // Removed keys are gone from the store's scan once durable, and one batch at a time is
      // in flight: each scan starts from the span's beginning and finds what is left.
      for (const entry of this.port.scan(span.fromToken, span.toToken)) {
        batch.push({ bucket: entry.bucket, key: entry.key });
        if (batch.length >= limit) break;
      }
      if (batch.length === 0) this.spanIndex++;
    }
    if (batch.length === 0) {
      this.finished = true;
      return;
    }
    this.inFlight = true;
    this.port.remove(batch, out, (failure) => {
      this.inFlight = false;
      if (failure !== undefined) return this.abort(`a local delete failed: ${failure}`);
      this.removed += batch.length;
    });
  }
}

/** The share of the ring spans cover, in [0, 1]. */
export function spansShare(spans: readonly Span[]): number {
  let tokens = 0;
  for (const s of spans) tokens += s.fromToken === s.toToken ? RING_TOKENS : (s.toToken - s.fromToken + RING_TOKENS) % RING_TOKENS;
  return tokens / RING_TOKENS;
}
