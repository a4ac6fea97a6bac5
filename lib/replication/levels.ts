/**
 * Consistency levels: `one`, `quorum`, `all` or a number of replicas, resolved against the
 * number of replicas a key actually has.
 *
 * A key has `min(n, nodes in the ring)` replicas: on a cluster smaller than the bucket's `n`
 * every node holds a copy (as every vnode of a one-node Riak ring is local), and named levels
 * resolve against that count, so a single node serves `quorum` requests. A number larger
 * than the bucket's `n` can never be met and is an invalid request; a number larger than the
 * replicas that exist is unavailable.
 */

import { assert } from '../base/assert.js';
import { InvalidRequestError } from '../base/errors.js';
import type { Level, LevelInput } from '../codec/messages.js';

export function resolveLevel(level: Level, replicas: number): number {
  assert(Number.isInteger(replicas) && replicas >= 1, `resolveLevel: replicas must be a positive integer, got ${replicas}`);
  switch (level) {
    case 'one':
      return 1;
    case 'quorum':
      return Math.floor(replicas / 2) + 1;
    case 'all':
      return replicas;
    default:
      return level;
  }
}

export type LevelName = 'r' | 'w' | 'pr' | 'pw';

/**
 * Checks a level a request carries: a name, or a whole number from 1 to `n` (the bucket's
 * replica count). Anything else (0, negative, fractional, above n, an unknown name) is an
 * INVALID_REQUEST naming the option. Defaults from configuration are trusted and never pass
 * through here, so `pr`/`pw` may default to 0 ("no primaries required").
 */
export function checkLevel(name: LevelName, value: LevelInput, n: number): { ok: true; level: Level } | { ok: false; error: InvalidRequestError } {
  if (value === 'one' || value === 'quorum' || value === 'all') return { ok: true, level: value };
  if (typeof value === 'string') {
    return { ok: false, error: new InvalidRequestError(`${name} must be one, quorum, all or a number of replicas, got ${JSON.stringify(value.slice(0, 32))}`, { field: name }) };
  }
  if (!Number.isInteger(value) || value < 1) {
    return { ok: false, error: new InvalidRequestError(`${name} must be at least 1, got ${value}`, { field: name, n }) };
  }
  if (value > n) return { ok: false, error: new InvalidRequestError(`${name}=${value} exceeds n=${n}`, { field: name, n }) };
  return { ok: true, level: value };
}
