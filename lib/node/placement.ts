/**
 * Where a key's replicas are, as the coordinator asks it: the preference list of a key on
 * the ring of the member table, which members are alive, where to reach them, and the
 * bucket properties that set `n`, `r` and `w`. NodeCore answers from its member table and
 * cluster metadata; specs may answer with a fixed table.
 */

import type { PeerTarget } from '../membership/membership.js';
import type { BucketProps } from '../membership/metadata.js';
import type { PreferenceList } from '../ring/ring.js';

export interface Placement {
  /** Whether this node belongs to a cluster yet (it has heard from a seed, or needs none). */
  readonly ready: boolean;
  /** The bucket's properties from cluster metadata; empty when it has none. */
  bucketProps(bucket: string): BucketProps;
  /** The key's primaries (at most `n`, fewer on a smaller ring) and alive fallbacks. */
  preferenceList(bucket: string, key: string, n: number): PreferenceList;
  /** Whether a member is alive now (this node always is). */
  alive(id: string): boolean;
  /** How to reach a member, or undefined when it is unknown. */
  addressOf(id: string): PeerTarget | undefined;
  /** The last tick at which some member (not left) was not alive; 0 if never. */
  readonly unhealthyAt: number;
}
