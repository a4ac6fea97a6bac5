/**
 * Where a key's replicas are. The core asks a `Placement` for the preference list of a key;
 * until the ring exists every key has one replica, this node, as a one-element list, so the
 * coordinator is already a quorum over a replica set rather than a special case.
 */

import type { ReplicaTarget } from '../replication/tally.js';

export interface Placement {
  /** The replicas of (bucket, key) that are alive, primaries first; at most `n`. */
  replicasFor(bucket: string, key: string, n: number): readonly ReplicaTarget[];
}

export function singleNodePlacement(nodeId: string): Placement {
  const targets: readonly ReplicaTarget[] = [{ node: nodeId, primary: true }];
  return { replicasFor: () => targets };
}
