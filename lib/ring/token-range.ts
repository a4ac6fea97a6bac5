/**
 * Token ranges: contiguous slices of the ring's unsigned 32-bit token space.
 *
 * A range is written (start, end], as in Cassandra: it holds the tokens after `start` up to
 * and including `end`, wrapping past 2^32 - 1 to 0 when `start >= end`. A key belongs to the
 * first vnode whose token is at or after the key's token, so the range a vnode is responsible
 * for runs from just after the previous vnode's token up to its own: (previous, own].
 *
 * Invariants:
 * - `start` and `end` are integers in [0, 2^32).
 * - `start === end` means the whole ring (a ring with a single vnode position); an empty range
 *   is never represented.
 */

import { assert } from '../base/assert.js';

/** Tokens on the ring: 2^32. */
export const RING_TOKENS = 2 ** 32;

export interface TokenRange {
  /** Exclusive: the range starts just after this token. */
  readonly start: number;
  /** Inclusive: the last token in the range. */
  readonly end: number;
}

function assertToken(token: number, what: string): void {
  assert(Number.isInteger(token) && token >= 0 && token < RING_TOKENS, `${what} must be a token in [0, 2^32), got ${token}`);
}

/** The number of tokens in a range: between 1 and 2^32. */
export function rangeSize(range: TokenRange): number {
  assertToken(range.start, 'range start');
  assertToken(range.end, 'range end');
  if (range.start === range.end) return RING_TOKENS;
  return range.end > range.start ? range.end - range.start : RING_TOKENS - range.start + range.end;
}

/** Whether `token` lies in the range (start, end], wrapping. */
export function rangeContains(range: TokenRange, token: number): boolean {
  assertToken(token, 'token');
  if (range.start === range.end) return true;
  if (range.start < range.end) return token > range.start && token <= range.end;
  return token > range.start || token <= range.end;
}
