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
import type { Level } from '../codec/messages.js';

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
