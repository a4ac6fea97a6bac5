/**
 * The ring: where every key's replicas live, as a pure function of the member table.
 *
 * Each member claims `vnodes` positions on the 32-bit token ring (Dynamo, DeCandia et al.,
 * 2007, §4.2; riak_core `chash`). The positions are sorted by token, ties broken by node id,
 * so a rare hash collision still orders the same way everywhere. A key belongs to the first
 * vnode whose token is at or after the key's token, wrapping past the top of the ring; found
 * by binary search, O(log V).
 *
 * The preference list of a key walks clockwise from that vnode and takes the first `n`
 * distinct nodes, preferring distinct zones, as Cassandra's rack-aware placement does: a node
 * is taken at once if no node of its zone has been taken yet; once every zone is represented
 * (or `n` zones are), the remaining places go to the next distinct nodes in ring order. The
 * primaries are listed in ring order, so the first one is the node owning the key's vnode.
 * The fallbacks for a sloppy quorum are the distinct nodes after that, in ring order,
 * skipping the primaries and nodes the caller reports dead. Primaries are listed whether alive
 * or not: whether a dead primary blocks a request is the caller's decision.
 *
 * Invariants:
 * - The ring, and its checksum, depend only on the set of members (id, zone, vnodes) and the
 *   vnode placement, never on the order members are given in: every node with the same member
 *   table computes the same ring and the same checksum.
 * - Adding or removing one node changes a key's primaries only by inserting or removing that
 *   node (and, when it is inserted, dropping at most one other): lookups are stable under
 *   unrelated membership changes.
 * - A preference list holds min(n, nodes) distinct primaries and no fallback is a primary.
 */

import { createHash } from 'node:crypto';

import { assert } from '../base/assert.js';
import { stratifiedVnodeToken } from './stratified-token.js';
import { keyToken, vnodeToken } from './token.js';
import { RING_TOKENS } from './token-range.js';

/** A live member of the member table, as far as placement cares. */
export interface RingMember {
  readonly id: string;
  /** Failure domain: replicas of a key prefer distinct zones. */
  readonly zone: string;
  /** Ring positions this member claims. */
  readonly vnodes: number;
}

/**
 * How a member's vnode tokens are derived. `hashed` is `vnodeToken(id, i)`; `stratified` is
 * `stratifiedVnodeToken(id, i, vnodes)`, better balanced (see stratified-token.ts). Every node
 * of a cluster must use the same placement; the checksum differs between them.
 */
export type VnodePlacement = 'hashed' | 'stratified';

export interface RingOptions {
  readonly placement?: VnodePlacement;
}

export interface PreferenceListOptions {
  /** Whether a node is healthy enough to be a fallback; every node is, if omitted. */
  readonly alive?: (id: string) => boolean;
  /** How many fallbacks to list at most; `n` if omitted. */
  readonly fallbacks?: number;
}

export interface PreferenceList {
  /** The key's `n` replicas (fewer only when the ring has fewer nodes), in ring order. */
  readonly primaries: readonly string[];
  /** Healthy nodes after the primaries, in ring order, for a sloppy quorum. */
  readonly fallbacks: readonly string[];
  /**
   * While members join or leave: the nodes that will be primaries of the key once the change
   * is done and are not now. Writes go to them too, and wait for their acknowledgements on
   * top of `w`, so that what a quorum acknowledged during the change is on a quorum after it.
   */
  readonly pending?: readonly string[];
}

/**
 * Node indexes are packed with tokens into one float64 sort key (token · 2^20 + index), which
 * stays below 2^53 and so sorts exactly. A million nodes is far beyond any cluster.
 */
const NODES_MAX = 2 ** 20;

/** The version of the checksum's byte layout: bump it if the layout below ever changes. */
const CHECKSUM_FORMAT = 'chorus-ring/1';

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tokenOfVnode(placement: VnodePlacement, member: RingMember, i: number): number {
  return placement === 'hashed' ? vnodeToken(member.id, i) : stratifiedVnodeToken(member.id, i, member.vnodes);
}

/** An immutable ring. Build one with `buildRing`. */
export class Ring {
  /** The members, sorted by id. */
  readonly members: readonly RingMember[];
  readonly placement: VnodePlacement;
  /** Vnode tokens in ring order (ascending). */
  readonly tokens: Uint32Array;
  /** A hex SHA-256 of the members, the placement and every (token, owner): equal rings, equal checksums. */
  readonly checksum: string;
  /** The distinct zones, sorted. */
  readonly zones: readonly string[];
  /** For each vnode in ring order, the index of its node in `members`. */
  private readonly owners: Uint32Array;
  /** For each node, the index of its zone in `zones`. */
  private readonly nodeZones: Uint32Array;
  private readonly indexById: ReadonlyMap<string, number>;

  constructor(members: readonly RingMember[], placement: VnodePlacement) {
    const sorted = members.map((m) => Object.freeze({ id: m.id, zone: m.zone, vnodes: m.vnodes })).sort((a, b) => compareIds(a.id, b.id));
    assert(sorted.length <= NODES_MAX, `a ring holds at most ${NODES_MAX} nodes, got ${sorted.length}`);
    sorted.forEach((m, i) => {
      assert(Number.isSafeInteger(m.vnodes) && m.vnodes >= 1, `member ${m.id} must claim at least one vnode, got ${m.vnodes}`);
      assert(i === 0 || sorted[i - 1]?.id !== m.id, `member ${m.id} appears twice`);
    });
    this.members = Object.freeze(sorted);
    this.placement = placement;
    this.indexById = new Map(sorted.map((m, i) => [m.id, i]));
    this.zones = Object.freeze([...new Set(sorted.map((m) => m.zone))].sort(compareIds));
    const zoneIndex = new Map(this.zones.map((z, i) => [z, i]));
    this.nodeZones = Uint32Array.from(sorted, (m) => zoneIndex.get(m.zone) ?? 0);

    const keys = new Float64Array(sorted.reduce((sum, m) => sum + m.vnodes, 0));
    let at = 0;
    sorted.forEach((m, node) => {
      for (let i = 0; i < m.vnodes; i++) keys[at++] = tokenOfVnode(placement, m, i) * NODES_MAX + node;
    });
    keys.sort();
    this.tokens = Uint32Array.from(keys, (k) => Math.floor(k / NODES_MAX));
    this.owners = Uint32Array.from(keys, (k) => k % NODES_MAX);
    this.checksum = this.computeChecksum();
  }

  get nodeCount(): number {
    return this.members.length;
  }

  get vnodeCount(): number {
    return this.tokens.length;
  }

  has(id: string): boolean {
    return this.indexById.has(id);
  }

  /** The index in ring order of the vnode a token belongs to: the first at or after it, wrapping. */
  successor(token: number): number {
    assert(Number.isInteger(token) && token >= 0 && token < RING_TOKENS, `token must be in [0, 2^32), got ${token}`);
    assert(this.tokens.length > 0, 'an empty ring has no successor');
    let lo = 0;
    let hi = this.tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.tokens[mid] as number) < token) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.tokens.length ? 0 : lo;
  }

  /** The index in `members` of the node owning vnode `vnode` (an index in ring order). */
  ownerIndexAt(vnode: number): number {
    const owner = this.owners[vnode];
    assert(owner !== undefined, `no vnode at index ${vnode}`);
    return owner;
  }

  /** The index in `zones` of the zone of node `node` (an index in `members`). */
  zoneIndexOf(node: number): number {
    const zone = this.nodeZones[node];
    assert(zone !== undefined, `no node at index ${node}`);
    return zone;
  }

  /** The id of node `node` (an index in `members`). */
  idOf(node: number): string {
    const member = this.members[node];
    assert(member !== undefined, `no node at index ${node}`);
    return member.id;
  }

  /** The preference list of a (bucket, key) pair: `preferenceList` at the key's token. */
  preferenceListFor(bucket: string, key: string, n: number, options?: PreferenceListOptions): PreferenceList {
    return preferenceList(this, keyToken(bucket, key), n, options);
  }

  private computeChecksum(): string {
    const hash = createHash('sha256');
    const utf8 = new TextEncoder();
    const u32 = (value: number): Uint8Array => {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, value);
      return bytes;
    };
    // Strings are length-prefixed so that no two member lists encode to the same bytes.
    const str = (value: string): void => {
      const bytes = utf8.encode(value);
      hash.update(u32(bytes.length)).update(bytes);
    };
    str(CHECKSUM_FORMAT);
    str(this.placement);
    hash.update(u32(this.members.length));
    for (const m of this.members) {
      str(m.id);
      str(m.zone);
      hash.update(u32(m.vnodes));
    }
    // The positions themselves, so that two builds disagreeing on a token never share a checksum.
    const positions = new Uint8Array(this.tokens.length * 8);
    const view = new DataView(positions.buffer);
    this.tokens.forEach((token, k) => {
      view.setUint32(k * 8, token);
      view.setUint32(k * 8 + 4, this.owners[k] as number);
    });
    hash.update(u32(this.tokens.length)).update(positions);
    return hash.digest('hex');
  }
}

/** The ring of a member table. Independent of the order of `members`; ids must be distinct. */
export function buildRing(members: readonly RingMember[], options?: RingOptions): Ring {
  return new Ring(members, options?.placement ?? 'hashed');
}

/** Distinct nodes met walking clockwise from one vnode, discovered one at a time. */
class DistinctWalk {
  /** Node indexes in the order first met. */
  readonly order: number[] = [];
  private readonly seen: Uint8Array;
  private steps = 0;

  constructor(
    private readonly ring: Ring,
    private readonly start: number,
  ) {
    this.seen = new Uint8Array(ring.nodeCount);
  }

  /** Walks on to the next node not met yet; false once the whole ring has been walked. */
  advance(): boolean {
    const vnodes = this.ring.vnodeCount;
    while (this.steps < vnodes && this.order.length < this.ring.nodeCount) {
      const node = this.ring.ownerIndexAt((this.start + this.steps++) % vnodes);
      if (this.seen[node] === 0) {
        this.seen[node] = 1;
        this.order.push(node);
        return true;
      }
    }
    return false;
  }
}

/**
 * Chooses the primaries on a walk: the first node of each new zone, up to `n` zones, then the
 * next distinct nodes in ring order to make up `n`. Returns node indexes in ring order.
 */
function choosePrimaries(ring: Ring, walk: DistinctWalk, n: number): number[] {
  const zonesWanted = Math.min(n, ring.zones.length);
  const zoneTaken = new Uint8Array(ring.zones.length);
  const zoneFirst: boolean[] = [];
  let zones = 0;
  // Walk until every wanted zone has a node and there are enough others to fill up with.
  while ((zones < zonesWanted || walk.order.length < n) && walk.advance()) {
    const zone = ring.zoneIndexOf(walk.order[walk.order.length - 1] as number);
    const first = zones < zonesWanted && zoneTaken[zone] === 0;
    if (first) {
      zoneTaken[zone] = 1;
      zones++;
    }
    zoneFirst.push(first);
  }
  let fill = n - zones;
  return walk.order.filter((_, i) => zoneFirst[i] === true || fill-- > 0);
}

/**
 * The node indexes of the `n` primaries of the keys in the range of vnode `vnode` (an index
 * in ring order), in ring order. For modules that go over every range of a ring.
 */
export function primaryIndexesAt(ring: Ring, vnode: number, n: number): number[] {
  return choosePrimaries(ring, new DistinctWalk(ring, vnode), n);
}

/**
 * The preference list at `token`: `n` primaries, preferring distinct zones, and up to
 * `options.fallbacks` (default `n`) healthy fallbacks after them. Pure: a function of its
 * arguments only.
 */
export function preferenceList(ring: Ring, token: number, n: number, options?: PreferenceListOptions): PreferenceList {
  assert(Number.isSafeInteger(n) && n >= 1, `n must be a positive integer, got ${n}`);
  const fallbacksMax = options?.fallbacks ?? n;
  assert(Number.isSafeInteger(fallbacksMax) && fallbacksMax >= 0, `fallbacks must be a non-negative integer, got ${fallbacksMax}`);
  assert(Number.isInteger(token) && token >= 0 && token < RING_TOKENS, `token must be in [0, 2^32), got ${token}`);
  if (ring.vnodeCount === 0) return { primaries: [], fallbacks: [] };

  const walk = new DistinctWalk(ring, ring.successor(token));
  const primaries = choosePrimaries(ring, walk, n);
  const isPrimary = new Uint8Array(ring.nodeCount);
  for (const node of primaries) isPrimary[node] = 1;

  // Nodes the zone rule skipped come before the last primary; they are fallbacks too, in ring order.
  const alive = options?.alive;
  const fallbacks: string[] = [];
  for (let i = 0; fallbacks.length < fallbacksMax; i++) {
    if (i === walk.order.length && !walk.advance()) break;
    const node = walk.order[i] as number;
    if (isPrimary[node] === 1) continue;
    const id = ring.idOf(node);
    if (alive === undefined || alive(id)) fallbacks.push(id);
  }
  return { primaries: primaries.map((node) => ring.idOf(node)), fallbacks };
}
