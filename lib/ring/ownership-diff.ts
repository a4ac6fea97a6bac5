/**
 * Ownership diff: which token ranges change replicas when membership changes, and between
 * which nodes, so that data can be moved before (join) or after (leave, removal) a change.
 *
 * Both rings' preference lists are constant between consecutive tokens of the union of their
 * vnode tokens, so the diff looks at each such elementary range once, at its end token (every
 * token of the range belongs to the same vnode as its end, in either ring). Ranges whose
 * replica set is the same before and after are left out; a change in order alone moves no
 * data. Adjacent ranges with the same before and after lists are joined, including across
 * the top of the ring.
 *
 * Invariants:
 * - The ranges returned are disjoint, and every token whose replica set differs between the
 *   two rings lies in exactly one of them.
 * - `gained` are the nodes that must receive the range's data (from any node of `before`);
 *   `lost` are the nodes that may drop it once the new replicas hold it.
 */

import { assert } from '../base/assert.js';
import { primaryIndexesAt, type Ring } from './ring.js';
import type { TokenRange } from './token-range.js';

export interface RangeChange {
  readonly range: TokenRange;
  /** The range's replicas in the old ring, in ring order. */
  readonly before: readonly string[];
  /** The range's replicas in the new ring, in ring order. */
  readonly after: readonly string[];
  /** In `after` but not `before`: they must receive the range. */
  readonly gained: readonly string[];
  /** In `before` but not `after`: they hand the range over and may then drop it. */
  readonly lost: readonly string[];
}

function replicasAt(ring: Ring, token: number, n: number): string[] {
  if (ring.vnodeCount === 0) return [];
  return primaryIndexesAt(ring, ring.successor(token), n).map((node) => ring.idOf(node));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/** The sorted, distinct vnode tokens of both rings. */
function boundaries(before: Ring, after: Ring): number[] {
  const all = new Float64Array(before.vnodeCount + after.vnodeCount);
  all.set(before.tokens);
  all.set(after.tokens, before.vnodeCount);
  all.sort();
  return Array.from(all).filter((token, i) => i === 0 || token !== all[i - 1]);
}

/** The ranges whose `n` replicas differ between the two rings, in token order. */
export function ownershipDiff(before: Ring, after: Ring, n: number): RangeChange[] {
  assert(Number.isSafeInteger(n) && n >= 1, `n must be a positive integer, got ${n}`);
  const ends = boundaries(before, after);
  const changes: RangeChange[] = [];
  ends.forEach((end, j) => {
    const start = ends[j === 0 ? ends.length - 1 : j - 1] as number;
    const was = replicasAt(before, end, n);
    const now = replicasAt(after, end, n);
    if (sameSet(was, now)) return;
    const last = changes[changes.length - 1];
    if (last !== undefined && last.range.end === start && sameList(last.before, was) && sameList(last.after, now)) {
      changes[changes.length - 1] = { ...last, range: { start: last.range.start, end } };
      return;
    }
    changes.push({ range: { start, end }, before: was, after: now, gained: now.filter((id) => !was.includes(id)), lost: was.filter((id) => !now.includes(id)) });
  });
  // The first range starts at the last boundary: join it to the last range if they continue each other.
  const first = changes[0];
  const last = changes[changes.length - 1];
  if (changes.length > 1 && first !== undefined && last !== undefined && last.range.end === first.range.start && sameList(first.before, last.before) && sameList(first.after, last.after)) {
    changes[0] = { ...first, range: { start: last.range.start, end: first.range.end } };
    changes.pop();
  }
  return changes;
}
