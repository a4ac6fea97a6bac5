/**
 * Which token ranges two replicas share: the scope of an anti-entropy exchange between them.
 *
 * A vnode's range (previous token, token] has the same `n` primaries for every key in it, so
 * two nodes share a range when both are among its primaries. Adjacent shared ranges are
 * joined into one span (a three-node cluster with n = 3 shares the whole ring, one span), so
 * an exchange names few spans and its tree has few partial leaves at span ends.
 *
 * Both sides of an exchange compute the same spans from the same ring: the initiator sends the
 * ring's checksum and n, never the spans, so opening an exchange costs a few dozen bytes
 * however many ranges the pair shares.
 */

import { primaryIndexesAt, type Ring } from './ring.js';
import { RING_TOKENS, type TokenRange } from './token-range.js';

/** Scan bounds [fromToken, toToken), wrapping; equal bounds are the whole ring (lib/merkle's TokenBounds). */
export interface Span {
  readonly fromToken: number;
  readonly toToken: number;
}

/** The vnode ranges of a ring whose `n` primaries include every node of `nodes`, in ring order. */
export function rangesWith(ring: Ring, nodes: readonly string[], n: number): TokenRange[] {
  const count = ring.vnodeCount;
  if (count === 0 || nodes.some((id) => !ring.has(id))) return [];
  if (count === 1 || ring.nodeCount === 1) return [{ start: ring.tokens[0]!, end: ring.tokens[0]! }];
  const out: TokenRange[] = [];
  for (let v = 0; v < count; v++) {
    const primaries = primaryIndexesAt(ring, v, n).map((node) => ring.idOf(node));
    if (!nodes.every((id) => primaries.includes(id))) continue;
    out.push({ start: ring.tokens[(v + count - 1) % count]!, end: ring.tokens[v]! });
  }
  return out;
}

/**
 * Ranges as scan bounds [from, to), adjacent ones joined (across the top of the ring too); a
 * list that covers the whole ring is one bound with from == to.
 */
export function joinedBounds(ranges: readonly TokenRange[]): Span[] {
  const out: { fromToken: number; toToken: number }[] = [];
  for (const range of ranges) {
    const fromToken = (range.start + 1) % RING_TOKENS;
    const toToken = (range.end + 1) % RING_TOKENS;
    const last = out[out.length - 1];
    if (range.start === range.end) return [{ fromToken: 0, toToken: 0 }];
    if (last !== undefined && last.toToken === fromToken) last.toToken = toToken;
    else out.push({ fromToken, toToken });
  }
  const first = out[0];
  const last = out[out.length - 1];
  if (out.length > 1 && first !== undefined && last !== undefined && last.toToken === first.fromToken) {
    first.fromToken = last.fromToken;
    out.pop();
  }
  // One span that came back to where it started is the whole ring: named from token 0, so its
  // tree's leaves are whole segments (none hashed from a scan) and there is no extra leaf.
  if (out.length === 1 && out[0]!.fromToken === out[0]!.toToken) return [{ fromToken: 0, toToken: 0 }];
  return out;
}

/** The spans two nodes share on a ring for keys of replication factor `n`. */
export function sharedBounds(ring: Ring, a: string, b: string, n: number): Span[] {
  return joinedBounds(rangesWith(ring, [a, b], n));
}
