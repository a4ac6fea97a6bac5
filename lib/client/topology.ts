/**
 * What the SDK knows of the cluster's placement, and where it sends a request.
 *
 * A node answers the admin request `topology` with its member table (id, advertised address,
 * zone, vnodes, status, liveness), the ring checksum, the default replica count `n` and each
 * bucket's properties. From that the SDK builds the same ring the nodes build (every member
 * that has not left, `lib/ring`), so it can compute a key's primaries itself and send the
 * request straight to one of them: the coordinator is then a replica and no forwarding hop is
 * needed (Dynamo, DeCandia et al., 2007, §4.5, "partition-aware client library").
 *
 * Routing is an optimisation, never a correctness matter: any node coordinates any request
 * and forwards it to a replica when it is not one. So a stale or absent topology only costs a
 * hop, and everything here may fall back to "any ready link".
 *
 * - A put or delete goes to the first primary, in preference-list order, that is alive and
 *   reachable: writes of one key then tend to meet at one coordinator, which keeps the
 *   number of concurrent dots (siblings) low.
 * - A get goes to one of the alive, reachable primaries, taken in turn, to spread reads.
 *
 * Invariants: a topology reply is checked in full before it is used (it is input from the
 * world, and the ring asserts on duplicate ids); the ring is a pure function of the members.
 */

import { z } from 'zod';
import { buildRing, preferenceList, type Ring, type VnodePlacement } from '../ring/ring.js';
import { keyToken } from '../ring/token.js';
import { levelSchema, LIVENESSES, MEMBER_STATUSES, type Level, type Liveness, type MemberStatus } from '../codec/messages.js';

/** A member as the topology reply lists it. */
export interface TopologyMember {
  readonly id: string;
  /** `host:port` the node advertises to clients and peers. */
  readonly addr: string;
  readonly zone: string;
  readonly vnodes: number;
  readonly status: MemberStatus;
  readonly live: Liveness;
}

/** The placement-relevant properties of a bucket. */
export interface BucketTopology {
  readonly n?: number;
  readonly r?: Level;
  readonly w?: Level;
  readonly type?: string;
}

/** The cluster as one node saw it when it answered `topology`. */
export interface Topology {
  /** The node's ring checksum. */
  readonly checksum: string;
  /** The cluster's default replica count. */
  readonly n: number;
  readonly members: readonly TopologyMember[];
  readonly buckets: Readonly<Record<string, BucketTopology>>;
}

/** Bounds that only cap what a hostile or broken reply can make the SDK hold. */
const MEMBERS_MAX = 10_000;
const REPLICAS_MAX = 64;

const memberSchema = z.object({
  id: z.string().min(1).max(64),
  addr: z.string().min(3).max(300),
  zone: z.string().min(1).max(64),
  vnodes: z.number().int().min(1).max(4096),
  status: z.enum(MEMBER_STATUSES),
  live: z.enum(LIVENESSES),
});

const topologySchema = z.object({
  checksum: z.string().max(128),
  n: z.number().int().min(1).max(REPLICAS_MAX),
  members: z.array(memberSchema).max(MEMBERS_MAX),
  buckets: z.record(
    z.string(),
    // A property the SDK cannot read is dropped, not the whole topology: routing then uses the cluster's n.
    z.object({
      n: z.number().int().min(1).max(REPLICAS_MAX).optional().catch(undefined),
      r: levelSchema.optional().catch(undefined),
      w: levelSchema.optional().catch(undefined),
      type: z.string().max(64).optional().catch(undefined),
    }),
  ),
});

/**
 * The topology in a node's `topology` result, or a reason it cannot be used. Unknown extra
 * fields are ignored, so a newer node can add some without breaking older SDKs.
 */
export function parseTopology(result: unknown): { ok: true; topology: Topology } | { ok: false; reason: string } {
  const parsed = topologySchema.safeParse(result);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `topology ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'rejected'}` };
  }
  const seen = new Set<string>();
  for (const member of parsed.data.members) {
    if (seen.has(member.id)) return { ok: false, reason: `topology lists member ${member.id} twice` };
    seen.add(member.id);
  }
  const { checksum, n, members, buckets } = parsed.data;
  return {
    ok: true,
    topology: {
      checksum,
      n,
      members: members.map(({ id, addr, zone, vnodes, status, live }) => ({ id, addr, zone, vnodes, status, live })),
      buckets: Object.fromEntries(Object.entries(buckets).map(([name, props]) => [name, stripUndefined(props)])),
    },
  };
}

function stripUndefined(props: Record<string, unknown>): BucketTopology {
  return Object.fromEntries(Object.entries(props).filter(([, value]) => value !== undefined)) as BucketTopology;
}

/** Replica counts below this are cached per vnode; larger ones (never in practice) are computed each time. */
const PRIMARIES_N_MAX = 32;

/** A topology with its ring built: answers "which members hold this key". */
export class Placement {
  readonly topology: Topology;
  readonly ring: Ring;
  private readonly byId: ReadonlyMap<string, TopologyMember>;
  private readonly byAddr: ReadonlyMap<string, TopologyMember>;
  /** Primaries by vnode index · PRIMARIES_N_MAX + n. */
  private readonly primariesByVnode = new Map<number, readonly TopologyMember[]>();

  /** `previous` lends its ring when the ring checksum did not change, sparing a rebuild. */
  constructor(topology: Topology, previous?: Placement) {
    this.topology = topology;
    const inRing = topology.members.filter((m) => m.status !== 'left');
    this.byId = new Map(inRing.map((m) => [m.id, m]));
    this.byAddr = new Map(inRing.map((m) => [m.addr, m]));
    this.ring = previous !== undefined && previous.topology.checksum === topology.checksum ? previous.ring : ringMatching(inRing, topology.checksum);
  }

  /** The member (not left) at an address, or else with a node id; undefined when none is. */
  memberFor(address: string, nodeId: string | undefined): TopologyMember | undefined {
    return this.byAddr.get(address) ?? (nodeId === undefined ? undefined : this.byId.get(nodeId));
  }

  /** The replica count of a bucket: its own `n`, else the cluster's, capped by the ring size. */
  replicas(bucket: string): number {
    return Math.min(this.topology.buckets[bucket]?.n ?? this.topology.n, this.ring.nodeCount);
  }

  /**
   * The key's primaries in preference-list order; empty only when the ring is. They depend
   * only on the vnode the key falls in and `n`, so each list is computed once per placement.
   */
  primaries(bucket: string, key: string): readonly TopologyMember[] {
    const n = this.replicas(bucket);
    if (n < 1) return [];
    const token = keyToken(bucket, key);
    const slot = this.ring.successor(token) * PRIMARIES_N_MAX + Math.min(n, PRIMARIES_N_MAX - 1);
    let members = this.primariesByVnode.get(slot);
    if (members === undefined || n >= PRIMARIES_N_MAX) {
      members = preferenceList(this.ring, token, n, { fallbacks: 0 }).primaries.map((id) => this.byId.get(id) as TopologyMember);
      if (n < PRIMARIES_N_MAX) this.primariesByVnode.set(slot, members);
    }
    return members;
  }
}

/**
 * The ring of the members, built the way the node built it. Nodes use `hashed` vnode
 * placement unless configured otherwise; when the node's checksum says it is not that, the
 * other placement is tried. Should neither match (a node of another version), the hashed ring
 * is used anyway: a wrong guess only costs a forwarding hop.
 */
function ringMatching(members: readonly TopologyMember[], checksum: string): Ring {
  const ringMembers = members.map(({ id, zone, vnodes }) => ({ id, zone, vnodes }));
  const placements: readonly VnodePlacement[] = ['hashed', 'stratified'];
  let first: Ring | undefined;
  for (const placement of placements) {
    const ring = buildRing(ringMembers, { placement });
    if (ring.checksum === checksum) return ring;
    first ??= ring;
  }
  return first as Ring;
}

/**
 * The replica a request should go to: for a put or delete the first primary that is alive and
 * `usable`; for a read the `turn`-th of those (modulo their number), so successive reads spread
 * over the replicas, or the next one when that is `avoid` (a paired get's pair). Undefined
 * when no primary qualifies: the caller then sends anywhere and the node forwards.
 */
export function chooseReplica(
  placement: Placement,
  op: 'put' | 'get' | 'dget' | 'del' | 'upd' | 'fetch',
  bucket: string,
  key: string,
  usable: (member: TopologyMember) => boolean,
  turn = 0,
  avoid?: string,
): TopologyMember | undefined {
  const candidates = placement.primaries(bucket, key).filter((m) => m.live === 'alive' && usable(m));
  if (candidates.length === 0) return undefined;
  if (op !== 'get' && op !== 'fetch' && op !== 'dget') return candidates[0];
  const chosen = candidates[turn % candidates.length] as TopologyMember;
  return chosen.id === avoid && candidates.length > 1 ? candidates[(turn + 1) % candidates.length] : chosen;
}

/** Addresses the SDK should keep a link to: every member that has not left. */
export function memberAddresses(topology: Topology): Set<string> {
  return new Set(topology.members.filter((m) => m.status !== 'left').map((m) => m.addr));
}
