/**
 * Ownership: how much of the token space each node is responsible for.
 *
 * A node's primary ownership is the share of tokens whose first replica it is; its replica
 * ownership is the share whose preference list (of `n` primaries) it is in. Both are computed
 * exactly over the ranges between consecutive vnode tokens, inside which the preference list
 * does not change, so there is no sampling error: the counts are integers and the fractions
 * are those integers over 2^32 (exact in floating point, being dyadic).
 *
 * This is what `chorus ring` prints and what the ring-balance acceptance measures: with
 * vnodes a node's share is only statistically even (Dynamo §6.2, strategy 1), so it is worth
 * seeing.
 *
 * Invariants:
 * - Primary token counts sum to 2^32 over the nodes of a non-empty ring.
 * - Replica token counts sum to min(n, nodes) · 2^32.
 */

import { assert } from '../base/assert.js';
import { primaryIndexesAt, type Ring } from './ring.js';
import { RING_TOKENS } from './token-range.js';

export interface NodeOwnership {
  readonly id: string;
  readonly zone: string;
  readonly vnodes: number;
  /** Tokens whose first replica is this node. */
  readonly primaryTokens: number;
  /** Tokens for which this node is one of the `n` replicas. */
  readonly replicaTokens: number;
  /** `primaryTokens` / 2^32. */
  readonly primary: number;
  /** `replicaTokens` / 2^32: sums to min(n, nodes) over the ring. */
  readonly replica: number;
}

/** The size of the range of vnode `k` (an index in ring order): (previous token, own token]. */
function vnodeRangeSize(ring: Ring, k: number): number {
  const own = ring.tokens[k] as number;
  if (k > 0) return own - (ring.tokens[k - 1] as number);
  // The first vnode's range wraps: from past the last token, over the top, to its own.
  return RING_TOKENS - (ring.tokens[ring.vnodeCount - 1] as number) + own;
}

/** Primary and replica ownership of every node of the ring, in the order of `ring.members` (by id). */
export function ownership(ring: Ring, n: number): NodeOwnership[] {
  assert(Number.isSafeInteger(n) && n >= 1, `n must be a positive integer, got ${n}`);
  const primaryTokens = new Array<number>(ring.nodeCount).fill(0);
  const replicaTokens = new Array<number>(ring.nodeCount).fill(0);
  for (let k = 0; k < ring.vnodeCount; k++) {
    const size = vnodeRangeSize(ring, k);
    // Colliding tokens leave empty ranges: nothing to own, and no walk needed.
    if (size === 0) continue;
    const owner = ring.ownerIndexAt(k);
    primaryTokens[owner] = (primaryTokens[owner] ?? 0) + size;
    for (const node of primaryIndexesAt(ring, k, n)) replicaTokens[node] = (replicaTokens[node] ?? 0) + size;
  }
  return ring.members.map((m, i) => {
    const primary = primaryTokens[i] as number;
    const replica = replicaTokens[i] as number;
    return { id: m.id, zone: m.zone, vnodes: m.vnodes, primaryTokens: primary, replicaTokens: replica, primary: primary / RING_TOKENS, replica: replica / RING_TOKENS };
  });
}
