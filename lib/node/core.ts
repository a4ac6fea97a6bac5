/**
 * The node core: one synchronous `step(input, out)` that runs to completion.
 *
 * Inputs are ticks, client requests, peer messages and storage completions; outputs are
 * client replies, peer messages, storage writes and log events (io.ts). The core never
 * awaits, never reads a clock, never draws from global randomness and never touches a
 * socket or a file, so the simulator drives the very same code the runtime drives
 * (TigerBeetle's replica, riak_kv's FSMs).
 *
 * It is only a composition root: data requests go to the coordinator, peer messages to
 * membership, operator requests to the few lines below. Each part takes only what it uses.
 */

import { AntiEntropy, REPAIR_BUDGET_FACTOR, type AntiEntropySettings, type AntiEntropyStats } from '../antientropy/exchange.js';
import { rangesWith } from '../ring/shared-ranges.js';
import { rangeSize, RING_TOKENS, type TokenRange } from '../ring/token-range.js';
import { ChorusError, InvalidRequestError, UnavailableError } from '../base/errors.js';
import { Prng } from '../base/prng.js';
import { join } from '../clock/dvv.js';
import type { KvObject } from '../clock/object.js';
import type { AdminRequest, ClientReply, PeerMessage } from '../codec/messages.js';
import { HintBook, type HintTargetStats } from '../handoff/hints.js';
import { carryOver, planTransfers, summarizeChange, type TransferTask } from '../handoff/transfers.js';
import { CleanupPass, foreignSpans, type CleanupProgress } from '../handoff/cleanup.js';
import type { SegmentHashes } from '../merkle/index.js';
import { Membership, type MembershipOutput, type MembershipSelf, type PeerTarget } from '../membership/membership.js';
import { ClusterMetadata, type BucketProps } from '../membership/metadata.js';
import type { Profile } from '../membership/profile.js';
import { ownership } from '../ring/ownership.js';
import { buildRing, preferenceList, type PreferenceList, type Ring } from '../ring/ring.js';
import { keyToken } from '../ring/token.js';
import { Coordinator, errorReply, type CoordinatorInit, type CoordinatorStats } from './coordinator.js';
import type { ConnId, NodeInput, NodeOutput } from './io.js';
import { LocalReplica } from './local-replica.js';
import type { Placement } from './placement.js';
import type { StoreReader } from './ports.js';
import { ReplicaServer, type ReplicaServerStats } from './replica-server.js';

/** Names under which the core keeps node metadata in the store. */
export const META_INCARNATION = 'incarnation';

/**
 * Incarnations reserved ahead on disk. A node that refutes a suspicion announces a higher
 * incarnation at once, before any write of it could be durable; had it persisted only what it
 * used, a crash right after a refutation would restart it at an incarnation it had already
 * announced, and its peers would ignore its news. So what is persisted is a ceiling: the
 * shell writes `incarnation + INCARNATION_RESERVE` before the core starts, the core writes a
 * new ceiling whenever it has used half of the reserve, and a restart begins above the last
 * ceiling, which every incarnation ever used is below (the new ceiling has half a reserve of
 * refutations, each a suspicion round trip, to become durable).
 */
export const INCARNATION_RESERVE = 64;
export const META_METADATA = 'cluster-metadata';
/** Addresses of the other members, kept so that a restart finds its cluster without seeds. */
export const META_PEERS = 'peers';
/** The node's status once it has owned ranges (`up`, `leaving`, `left`): a restart keeps it instead of joining anew. */
export const META_STATUS = 'status';

/** Member addresses kept for a restart, at most: any one that answers is enough. */
const PEERS_KEPT_MAX = 32;


export interface NodeCoreInit extends CoordinatorInit {
  readonly self: MembershipSelf;
  /** The incarnation to start with: one above the persisted ceiling; the shell persisted this plus INCARNATION_RESERVE. */
  readonly incarnation: number;
  readonly seeds: readonly string[];
  readonly profile: Profile;
  /** The persisted metadata document, if any. */
  readonly metadata: Uint8Array | undefined;
  /**
   * The member addresses the node kept from before this start (META_PEERS). A node that knew
   * members serves data only once one of them (or a seed) answered and its member table holds
   * every one of them again (see `servesData`); a new node that is its own seed may form a
   * cluster alone.
   */
  readonly knownPeers: readonly string[];
  /** Seed of the node's PRNG; every random choice in the core derives from it. */
  readonly seed: number;
  readonly handoff: HandoffSettings;
  readonly antiEntropy: AntiEntropySettings;
  /** The status kept under META_STATUS, if any. */
  readonly status?: 'up' | 'leaving' | 'left';
}

export interface HandoffSettings {
  /** Milliseconds between hint delivery rounds. */
  readonly intervalMs: number;
  /** Hints sent per batch. */
  readonly batchKeys: number;
  /** Hints kept for one target at most; past it, writes for that target are not hinted. */
  readonly hintsPerTargetMax: number;
  /** Estimated bytes of hints kept for one target at most. */
  readonly hintBytesPerTargetMax: number;
}

/** A peer as `/status` and `/metrics` show anti-entropy with it. */
export interface PeerExchangeAge {
  readonly peer: string;
  readonly lastExchangeMsAgo: number | null;
  readonly completed: number;
  readonly failed: number;
}

/** A transfer of the change under way, as `chorus transfers` shows it. */
export type TransferView = Pick<TransferTask, 'peer' | 'direction' | 'state' | 'ranges' | 'share' | 'attempts' | 'keysCompared' | 'keysMoved'> & { readonly lastError?: string };

/** What `/status`, `/metrics` and `chorus status` show of replication. */
export interface ReplicationStats extends CoordinatorStats, ReplicaServerStats {
  readonly hints: readonly HintTargetStats[];
  readonly hintsPending: number;
}

/** Above any bucket's n (at most 16), so (vnode, n) packs into one number. */
const PRIMARIES_N_MAX = 32;

/** Ticks a handoff batch may wait for its acknowledgement, in delivery intervals. */
const HANDOFF_TIMEOUT_INTERVALS = 5;

export interface NodeCoreDeps {
  readonly store: StoreReader;
  /** The segment hashes of what the store holds (lib/merkle), loaded or rebuilt by the shell. */
  readonly segments: SegmentHashes;
}

/** How long a restarted node waits for its member table to hold every member it knew before it serves anyway. */
const PEERS_WAIT_MS_MAX = 60_000;

/** How long a joining node that is its own seed waits for another seed before it forms a cluster alone. */
const JOIN_ALONE_WAIT_MS = 2000;

/** The longest wait before a failed transfer is tried again: 30 s at 10 ms ticks. */
const TRANSFER_RETRY_TICKS_MAX = 3000;

/** Incarnations whose request ids stay apart (ids stay safe integers below 2^53). */
const RID_INCARNATIONS = 2 ** 20;

export class NodeCore {
  readonly membership: Membership;
  readonly metadata: ClusterMetadata;
  private readonly coordinator: Coordinator;
  private readonly replica: ReplicaServer;
  private readonly hints: HintBook;
  private readonly ae: AntiEntropy<NodeOutput>;
  private readonly local: LocalReplica;
  private readonly store: StoreReader;
  private readonly tickMs: number;
  private readonly replicas: number;
  private readonly knownPeers: readonly string[];
  /** Whether the member table has held every known peer since this start (it stays true once it did). */
  private peersFound = false;
  private now = 0;
  /**
   * The next request id for a peer message. Ids start at the incarnation times 2^32, so a
   * restarted node never reuses an id its peers may still remember (a forwarded request is
   * recognised by its sender and id).
   */
  private ridNext: number;
  /** The incarnation ceiling persisted (or on its way to disk). */
  private incarnationCeiling: number;
  /** The member table version and the addresses last kept for a restart. */
  /** The roster version last looked at, and the addresses last kept for a restart. */
  private peersVersion = -1;
  private peersKept: string | undefined;
  /** The last tick at which some member was suspect or dead (reaping waits a grace period past it). */
  private unhealthyAt = 0;
  /** Per (vnode, n) of the current ring: the preference list while all its primaries are alive. */
  private primariesCache: { ring: Ring; lists: Map<number, PreferenceList> } | undefined;
  /** The ring, rebuilt when the member table changed in a way that moves it. */
  private ringCache: RingCache | undefined;
  /** The ring of the change under way (members joining or up), when it differs from the ring. */
  private futureCache: RingCache | undefined;
  private futurePrimaries: { ring: Ring; lists: Map<number, readonly string[]> } | undefined;
  /** This node's transfers for the change under way, and the rings they were planned for. */
  private transfers: TransferTask[] = [];
  private transfersPlannedFor = '';
  /** The ranges this node holds on a ring, with their other replicas (what `rangeAges` reports on). */
  private rangesHeld: { ring: Ring; n: number; ranges: { range: TokenRange; others: readonly string[] }[] } | undefined;
  /** The status last written under META_STATUS. */
  private statusKept: string | undefined;
  /** The last cleanup pass (`chorus cleanup`), running or not. */
  private cleanup: CleanupPass<NodeOutput> | undefined;
  /** Keys a cleanup pass may remove per tick: anti-entropy's keys budget at the repair factor. */
  private readonly cleanupPerTick: number;

  constructor(deps: NodeCoreDeps, init: NodeCoreInit) {
    const prng = new Prng(init.seed);
    this.ridNext = (init.incarnation % RID_INCARNATIONS) * 2 ** 32 + 1;
    this.incarnationCeiling = init.incarnation + INCARNATION_RESERVE;
    this.metadata = new ClusterMetadata(prng.fork('metadata'), init.metadata);
    this.membership = new Membership(
      { prng: prng.fork('membership'), metadata: this.metadata },
      { self: init.self, incarnation: init.incarnation, seeds: init.seeds, profile: init.profile, ...(init.status === undefined ? {} : { status: init.status }) },
    );
    this.store = deps.store;
    this.local = new LocalReplica(deps.store, deps.segments, prng.fork('local-replica').nextUint32());
    const intervalTicks = Math.max(1, Math.round(init.handoff.intervalMs / init.tickMs));
    this.hints = new HintBook(
      { countMax: init.handoff.hintsPerTargetMax, bytesMax: init.handoff.hintBytesPerTargetMax },
      { intervalTicks, batchMax: init.handoff.batchKeys, timeoutTicks: intervalTicks * HANDOFF_TIMEOUT_INTERVALS },
      deps.store.hintTargets(),
    );
    const placement = this.placement();
    const rid = (): number => this.ridNext++;
    const toSelf = (message: PeerMessage, out: NodeOutput[]): void => void this.replica.onMessage(init.nodeId, message, out);
    const aeSalts = prng.fork('anti-entropy');
    this.ae = new AntiEntropy(
      {
        nodeId: init.nodeId,
        tickMs: init.tickMs,
        local: this.local,
        scan: (from, to) => deps.store.scan(from, to),
        rid,
        salt: () => aeSalts.nextUint32(),
        ring: () => this.ring(),
        replicas: () => this.replicasMax(),
        alive: (id) => this.isAlive(id),
        // A peer whose address this node has not learnt yet (a new node whose gossip has not
        // arrived) is answered over the connection its request came on: the shell routes by id.
        send: (node, message, out) => out.push({ kind: 'send', to: placement.addressOf(node) ?? { node, addr: '' }, message }),
        log: (level, msg, fields, out) => out.push({ kind: 'log', level, msg, fields }),
      },
      init.antiEntropy,
    );
    const confirms = (primaries: readonly string[], since: number): boolean => this.ae.confirms(primaries, since);
    this.coordinator = new Coordinator({ local: this.local, hints: this.hints, placement, rid, toSelf, confirms }, init);
    this.replica = new ReplicaServer(
      { local: this.local, hints: this.hints, placement, rid, hintsFor: (target, limit) => deps.store.hintsFor(target, limit) },
      { nodeId: init.nodeId, batchMax: init.handoff.batchKeys },
    );
    this.tickMs = init.tickMs;
    this.cleanupPerTick = (init.antiEntropy.keysPerSecond * REPAIR_BUDGET_FACTOR * init.tickMs) / 1000;
    this.replicas = init.replication.n;
    this.knownPeers = init.knownPeers;
    this.statusKept = init.status;
  }

  /**
   * Whether the node takes data requests: it has joined, has not left, and, if it knew members
   * before this start, one of them (or a seed) has answered, so it never orders writes on a
   * ring of itself alone after a restart.
   */
  get servesData(): boolean {
    const m = this.membership;
    return m.hasJoined && m.status !== 'left' && !this.metadata.removedMembers().has(m.id) && (this.knownPeers.length === 0 || (m.hasHeardFromCluster && this.knowsPeersAgain()));
  }

  /**
   * Whether the member table holds every member this node knew before it restarted. Two nodes
   * that restart together may hear from each other first and hold only each other: a ring of
   * that partial table places keys on them, and a write they acknowledged would land where no
   * read looks once the tables are whole. Past PEERS_WAIT_TICKS_MAX the node serves anyway
   * (a member it knew may be gone for good).
   */
  private knowsPeersAgain(): boolean {
    if (this.peersFound) return true;
    const addrs = new Set(this.membership.view().map((m) => m.addr));
    this.peersFound = this.knownPeers.every((addr) => addrs.has(addr)) || this.now * this.tickMs >= PEERS_WAIT_MS_MAX;
    return this.peersFound;
  }

  /** The segment hashes of this node's data, newest versions included; a clean stop keeps them. */
  get segments(): SegmentHashes {
    return this.local.segments;
  }

  /** The highest dot counter this node's actor issued; a clean stop keeps it. */
  get counterIssued(): number {
    return this.coordinator.counterIssued;
  }

  /** Anti-entropy counters, the exchange running, and a repair's progress. */
  get antiEntropy(): AntiEntropyStats {
    return this.ae.stats;
  }

  /** Per peer: milliseconds since the last completed exchange started (null: never), and how many completed and failed. */
  get antiEntropyPeers(): PeerExchangeAge[] {
    return this.ae.peerStats().map((p) => ({
      peer: p.peer,
      lastExchangeMsAgo: p.lastTick === undefined ? null : (this.now - p.lastTick) * this.tickMs,
      completed: p.completed,
      failed: p.failed,
    }));
  }

  /**
   * Per range this node holds: milliseconds since the start of the last exchange that covered
   * it with every other replica of it (null: some replica never exchanged with this node).
   */
  rangeAges(): { start: number; end: number; ageMs: number | null }[] {
    const ring = this.ring();
    const self = this.membership.id;
    const n = this.replicasMax();
    if (!ring.has(self)) return [];
    if (this.rangesHeld?.ring !== ring || this.rangesHeld.n !== n) {
      const ranges = rangesWith(ring, [self], n).map((range) => ({ range, others: preferenceList(ring, range.end, n, { fallbacks: 0 }).primaries.filter((id) => id !== self) }));
      this.rangesHeld = { ring, n, ranges };
    }
    const out: { start: number; end: number; ageMs: number | null }[] = [];
    for (const { range, others } of this.rangesHeld.ranges) {
      let oldest: number | undefined = this.now;
      for (const peer of others) {
        const last = this.ae.lastExchange(peer);
        oldest = last === undefined || oldest === undefined ? undefined : Math.min(oldest, last);
      }
      out.push({ start: range.start, end: range.end, ageMs: oldest === undefined ? null : (this.now - oldest) * this.tickMs });
    }
    return out;
  }

  /** What `/status` shows of anti-entropy: counters, per peer, and a summary of range ages. */
  antiEntropyStatus(): Record<string, unknown> {
    const ranges = this.rangeAges();
    const ages = ranges.map((r) => r.ageMs).filter((a): a is number => a !== null).sort((a, b) => a - b);
    return {
      ...this.ae.stats,
      lastFailure: this.ae.stats.lastFailure === undefined ? null : { ...this.ae.stats.lastFailure, agoMs: (this.now - this.ae.stats.lastFailure.tick) * this.tickMs },
      peers: this.antiEntropyPeers,
      ranges: {
        count: ranges.length,
        neverExchanged: ranges.length - ages.length,
        oldestAgeMs: ranges.length === ages.length && ages.length > 0 ? ages[ages.length - 1] : null,
        medianAgeMs: ages.length === 0 ? null : ages[Math.floor(ages.length / 2)],
      },
      rangeAges: ranges,
    };
  }

  /**
   * `chorus remove`: takes a dead member out of the ring for good; the replicas that gain its
   * ranges get their data from the others through anti-entropy. Refused for a member that looks
   * alive, or when fewer than n members would remain, unless forced.
   */
  private onRemove(conn: ConnId, request: AdminRequest, out: NodeOutput[], events: MembershipOutput[]): void {
    const refuse = (error: InvalidRequestError | UnavailableError): void => void out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, error) });
    const id = request.node;
    if (id === undefined) return refuse(new InvalidRequestError('remove needs the id of the node to remove', { field: 'node' }));
    const member = this.membership.member(id);
    if (member === undefined && !this.ring().has(id)) return refuse(new InvalidRequestError(`no member ${id} in this cluster`, { field: 'node' }));
    if (this.metadata.removedMembers().has(id)) return refuse(new InvalidRequestError(`${id} was removed already`, { field: 'node' }));
    const force = request.force === true;
    if (id === this.membership.id && !force) return refuse(new InvalidRequestError('this is the node you are talking to: ask another node, or use `chorus leave` to take it out gracefully', { field: 'node' }));
    if (member !== undefined && member.live === 'alive' && member.status !== 'left' && !force) {
      return refuse(new InvalidRequestError(`${id} is alive: stop it first, or use \`chorus leave\` on it (use --force to remove it anyway)`, { field: 'node', live: member.live }));
    }
    const remaining = this.ring().members.filter((m) => m.id !== id).length;
    if (remaining < this.replicasMax() && !force) {
      return refuse(new InvalidRequestError(`removing ${id} would leave ${remaining} nodes, fewer than n=${this.replicasMax()} (use --force to remove it anyway)`, { field: 'force', nodesAfter: remaining }));
    }
    const before = this.ring();
    this.metadata.removeMember(id);
    this.membership.metadataChanged(events);
    const summary = summarizeChange(before, this.ring(), this.replicasMax());
    out.push({ kind: 'log', level: 'warn', msg: 'member removed by an operator', fields: { member: id, forced: force } });
    out.push({ kind: 'client-reply', conn, reply: { t: 'admin-ok', id: request.id, result: { removed: id, ...this.describeSummary(summary) } } as ClientReply });
  }

  /**
   * `chorus plan`: what a join, leave or removal would move, before it is made: ranges, and per
   * node the share of the ring and about how many keys and bytes it would gain or lose.
   */
  private onPlan(conn: ConnId, request: AdminRequest, out: NodeOutput[]): void {
    const refuse = (error: InvalidRequestError): void => void out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, error) });
    const id = request.node;
    if (request.change === undefined) return refuse(new InvalidRequestError('plan needs a change: join, leave or remove', { field: 'change' }));
    if (id === undefined) return refuse(new InvalidRequestError('plan needs the id of the node', { field: 'node' }));
    const before = this.ring();
    let members = before.members.map((m) => ({ id: m.id, zone: m.zone, vnodes: m.vnodes }));
    if (request.change === 'join') {
      if (before.has(id)) return refuse(new InvalidRequestError(`${id} is a member already`, { field: 'node' }));
      const self = this.membership.member(this.membership.id);
      members = [...members, { id, zone: request.zone ?? `zone-of-${id}`, vnodes: request.vnodes ?? self?.vnodes ?? 256 }];
    } else {
      if (!before.has(id)) return refuse(new InvalidRequestError(`${id} is not in the ring`, { field: 'node' }));
      members = members.filter((m) => m.id !== id);
    }
    const summary = summarizeChange(before, buildRing(members), this.replicasMax());
    out.push({ kind: 'client-reply', conn, reply: { t: 'admin-ok', id: request.id, result: { change: request.change, node: id, n: this.replicasMax(), nodesBefore: before.nodeCount, nodesAfter: members.length, ...this.describeSummary(summary) } } as ClientReply });
  }

  /** A change's summary with key and byte estimates from this node's own data (its keys per token, its average record). */
  private describeSummary(summary: ReturnType<typeof summarizeChange>): Record<string, unknown> {
    const held = this.rangesHeldShare();
    // This node holds `keyCount` keys over `held` of the ring: the density of keys per share of ring.
    const keysPerShare = held > 0 ? this.local.segments.keyCount / held : 0;
    const bytesPerKey = this.local.averageRecordBytes;
    const estimate = (share: number): { share: number; keys: number; bytes: number } => ({
      share: Math.round(share * 1e6) / 1e6,
      keys: Math.round(share * keysPerShare),
      bytes: Math.round(share * keysPerShare * bytesPerKey),
    });
    return {
      ranges: summary.ranges,
      moved: estimate(summary.moved),
      betweenExistingNodes: estimate(summary.betweenExisting),
      nodes: summary.nodes.map((n) => ({ node: n.node, gains: estimate(n.gains), loses: estimate(n.loses) })),
    };
  }

  /** The share of the ring this node holds a replica of. */
  private rangesHeldShare(): number {
    const ring = this.ring();
    if (!ring.has(this.membership.id)) return 0;
    return rangesWith(ring, [this.membership.id], this.replicasMax()).reduce((sum, r) => sum + rangeSize(r), 0) / RING_TOKENS;
  }

  /** Cleanup progress for `/status` and `chorus cleanup`: null before any pass. */
  get cleanupProgress(): CleanupProgress | null {
    return this.cleanup?.progress ?? null;
  }

  private cleanupTick(out: NodeOutput[]): void {
    const pass = this.cleanup;
    if (pass === undefined || !pass.running) return;
    if (this.ring().checksum !== pass.ring) return pass.abort('the ring changed; run it again once the change has settled');
    pass.onTick(this.cleanupPerTick, out);
  }

  /**
   * Starts removing what this node holds of ranges it no longer replicates (see
   * handoff/cleanup.ts); refused while the node is not up, or a member joins or leaves.
   */
  private startCleanup(): CleanupProgress | ChorusError {
    if (this.membership.status !== 'up' || !this.servesData) return new UnavailableError(`this node is ${this.membership.status}; a cleanup runs on a node that is up`);
    const moving = this.membership.view().filter((m) => m.status === 'joining' || m.status === 'leaving');
    if (moving.length > 0) {
      return new UnavailableError(`${moving.map((m) => `${m.id} is ${m.status}`).join(', ')}; run a cleanup once the change is done`, { moving: moving.map((m) => m.id).join(',') });
    }
    if (this.cleanup?.running === true) return this.cleanup.progress;
    const ring = this.ring();
    const local = this.local;
    this.cleanup = new CleanupPass<NodeOutput>(
      {
        scan: (from, to) => this.store.scan(from, to),
        remove: (slots, out, done) => local.write(slots.map((slot) => ({ ...slot, object: undefined })), out, done),
      },
      ring.checksum,
      foreignSpans(ring, this.membership.id, this.replicasMax()),
    );
    return this.cleanup.progress;
  }

  /** The largest replication factor of any bucket: the one anti-entropy shares ranges at. */
  private replicasMax(): number {
    let n = this.replicas;
    for (const props of Object.values(this.metadata.listBuckets())) if (typeof props.n === 'number' && props.n > n) n = props.n;
    return n;
  }

  /** Replication counters and the hints kept per target. */
  get replication(): ReplicationStats {
    return { ...this.coordinator.stats, ...this.replica.stats, hints: this.hints.stats(), hintsPending: this.hints.pendingTotal };
  }

  get ticks(): number {
    return this.now;
  }

  get inflight(): number {
    return this.coordinator.inflight;
  }

  step(input: NodeInput, out: NodeOutput[]): void {
    const events: MembershipOutput[] = [];
    switch (input.kind) {
      case 'tick':
        this.now++;
        if (!this.membership.allAlive) this.unhealthyAt = this.now;
        this.coordinator.onTick(out);
        this.membership.tick(this.now, events);
        this.replica.onTick(this.now, out);
        if (this.servesData) this.ae.onTick(this.now, out);
        this.cleanupTick(out);
        this.topologyTick(events);
        this.keepPeers(out);
        break;
      case 'client-request':
        if (input.request.t === 'admin') this.onAdmin(input.conn, input.request, out, events);
        else this.coordinator.onClientRequest(input.conn, input.request, out);
        break;
      case 'client-closed':
        this.coordinator.onClientClosed(input.conn);
        break;
      case 'store-durable':
        this.local.onStoreDone(input.writeId, undefined, out);
        break;
      case 'store-failed':
        this.local.onStoreDone(input.writeId, input.reason, out);
        break;
      case 'peer-message':
        if (input.message.from !== input.from) {
          out.push({ kind: 'log', level: 'warn', msg: 'peer message with a forged sender dropped', fields: { from: input.from, claimed: input.message.from } });
          break;
        }
        this.onPeerMessage(input.from, input.message, out, events);
        break;
      case 'peer-unreachable':
        this.membership.onUnreachable(input.node, input.addr, input.reason, this.now, events);
        if (input.node !== undefined && input.reason === 'unreachable') {
          this.coordinator.onPeerUnreachable(input.node, out);
          this.replica.onPeerUnreachable(input.node, this.now);
          this.ae.onPeerUnreachable(input.node);
        }
        break;
      case 'peer-undeliverable':
        this.onUndeliverable(input.node, input.message, out);
        break;
      case 'stalled':
        this.membership.onStall(input.ticks, this.now, events);
        break;
      case 'loop-lag':
        this.membership.onLoopLag(input.ticks);
        break;
      case 'load':
        this.ae.onLoad(input.latencyMs);
        break;
    }
    for (const event of events) this.emit(event, out);
    this.keepStatus(out);
  }

  // ---- joining and leaving ----

  /**
   * Moves this node through a change of the ring it takes part in: a joining node pulls the
   * ranges it gains from their current replicas, then becomes `up`; a leaving node pushes the
   * ranges it loses to their new replicas, then departs; a node an operator removed leaves at
   * once. The first node of a cluster (no ring yet) is up at once: there is nothing to pull.
   */
  private topologyTick(events: MembershipOutput[]): void {
    const m = this.membership;
    if (m.status !== 'left' && this.metadata.removedMembers().has(m.id)) {
      events.push({ kind: 'event', level: 'warn', msg: 'an operator removed this node from the cluster; leaving', fields: {} });
      m.leaveNow(events);
      return;
    }
    if (m.status === 'joining') {
      // A node that is its own seed may form a cluster alone, but first gives its other seeds a
      // moment to answer: joining an existing cluster, it must pull its ranges before it owns them.
      if (!m.hasJoined || !(m.hasHeardFromCluster || this.now * this.tickMs >= JOIN_ALONE_WAIT_MS)) return;
      if (this.ring().vnodeCount === 0) return m.markUp(events);
      if (this.driveTransfers()) m.markUp(events);
    } else if (m.status === 'leaving') {
      if (this.driveTransfers()) m.depart();
    } else if (this.transfers.length > 0) {
      this.transfers = [];
      this.transfersPlannedFor = '';
    }
  }

  /** Plans (when the rings changed) and runs this node's transfers one at a time; true once all are done. */
  private driveTransfers(): boolean {
    const current = this.ring();
    const future = this.futureRing();
    const planKey = `${current.checksum} ${future.checksum}`;
    if (planKey !== this.transfersPlannedFor) {
      this.transfersPlannedFor = planKey;
      this.transfers = carryOver(this.transfers, planTransfers(current, future, this.membership.id, this.replicasMax()));
    }
    if (this.transfers.some((t) => t.state === 'running')) return false;
    // A leave waits for every new replica; a join needs every source that is alive (a dead
    // one's copies are on the other replicas of its ranges, which are sources too).
    const open = this.transfers.filter((t) => t.state !== 'done' && (t.direction === 'out' || this.isAlive(t.peer)));
    if (open.length === 0) return true;
    const next = open.find((t) => this.now >= t.notBefore && this.isAlive(t.peer));
    if (next === undefined) return false;
    next.state = 'running';
    next.attempts++;
    this.ae.transfer(next.peer, next.spans, (result) => {
      next.keysCompared += result.keysCompared;
      next.keysMoved += result.keysRepaired;
      if (result.ok) {
        next.state = 'done';
        next.lastError = undefined;
      } else {
        next.state = 'failed';
        next.lastError = result.reason;
        next.notBefore = this.now + Math.min(TRANSFER_RETRY_TICKS_MAX, 2 ** Math.min(next.attempts, 10) * Math.ceil(100 / this.tickMs));
      }
    });
    return false;
  }

  /** Keeps the node's status once it owns ranges, so a restart comes back as the member it was. */
  private keepStatus(out: NodeOutput[]): void {
    const status = this.membership.status;
    if (status === 'joining' || status === this.statusKept) return;
    this.statusKept = status;
    out.push({ kind: 'meta-write', name: META_STATUS, value: new TextEncoder().encode(status) });
  }

  /** The transfers of the change under way, as `chorus transfers` shows them. */
  transfersView(): TransferView[] {
    return this.transfers.map((t) => ({
      peer: t.peer,
      direction: t.direction,
      state: t.state,
      ranges: t.ranges,
      share: t.share,
      attempts: t.attempts,
      keysCompared: t.keysCompared,
      keysMoved: t.keysMoved,
      ...(t.lastError === undefined ? {} : { lastError: t.lastError }),
    }));
  }

  private onPeerMessage(from: string, message: PeerMessage, out: NodeOutput[], events: MembershipOutput[]): void {
    switch (message.t) {
      case 'ping':
      case 'ack':
      case 'ping-req':
      case 'nack':
      case 'gossip':
      case 'sync':
        return this.membership.onMessage(from, message, this.now, events);
      case 'fwd':
        return this.coordinator.onForwarded(from, message.rid, message.req, out);
      case 'rput-ok':
      case 'rget-ok':
      case 'rerr':
      case 'fwd-reply':
        if (!this.coordinator.onPeerAnswer(from, message, out) && message.t === 'rerr' && !this.ae.onError(from, message.rid, `${message.code}: ${message.msg}`)) {
          this.replica.onError(from, message.rid, this.now);
        }
        return;
      default:
        if (!this.ae.onMessage(from, message, out)) this.replica.onMessage(from, message, out);
    }
  }

  /**
   * Keeps the addresses of the other members (not left) in node metadata, so a node
   * restarted without seeds, or with seeds that are gone, asks them first; and, having
   * addresses to ask, it serves data only once one of them answered, never alone on a ring
   * of itself.
   */
  private keepPeers(out: NodeOutput[]): void {
    const version = this.membership.rosterVersion;
    if (version === this.peersVersion) return;
    this.peersVersion = version;
    const addrs = this.membership
      .view()
      .filter((m) => m.id !== this.membership.id && m.status !== 'left')
      .map((m) => m.addr)
      .sort()
      .slice(0, PEERS_KEPT_MAX);
    const joined = addrs.join(',');
    if (joined === this.peersKept) return;
    this.peersKept = joined;
    out.push({ kind: 'meta-write', name: META_PEERS, value: new TextEncoder().encode(joined) });
  }

  /** A request this node sent never left: fail it now, as its answer would have. */
  private onUndeliverable(node: string, message: PeerMessage, out: NodeOutput[]): void {
    switch (message.t) {
      case 'rput':
      case 'rget':
      case 'fwd':
        this.coordinator.onPeerAnswer(node, { t: 'rerr', from: node, rid: message.rid, code: 'UNAVAILABLE', msg: 'not sent: the node could not be reached' }, out);
        return;
      case 'handoff':
        this.replica.onError(node, message.rid, this.now);
        return;
      case 'ae-tree':
      case 'ae-keys':
      case 'ae-sync':
        this.ae.onError(node, message.rid, 'not sent: the node could not be reached');
        return;
      default:
        return;
    }
  }

  /** Placement as the coordinator and the replica server see it: the ring of the member table. */
  private placement(): Placement {
    const core = this;
    return {
      get ready() {
        return core.servesData;
      },
      bucketProps: (bucket: string): BucketProps => this.metadata.bucket(bucket) ?? {},
      preferenceList: (bucket: string, key: string, n: number): PreferenceList => this.preferenceListOf(keyToken(bucket, key), n),
      alive: (id: string) => this.isAlive(id),
      get unhealthyAt() {
        return core.unhealthyAt;
      },
      addressOf: (id: string): PeerTarget | undefined => {
        const member = this.membership.member(id);
        return member === undefined ? undefined : { node: id, addr: member.addr };
      },
    };
  }

  /**
   * A key's preference list. The primaries depend only on the vnode the token falls in, so
   * they are computed once per vnode and ring; fallbacks, which depend on who is alive, only
   * when a primary is down.
   */
  private preferenceListOf(token: number, n: number): PreferenceList {
    const ring = this.ring();
    const cache = (this.primariesCache ??= { ring, lists: new Map<number, PreferenceList>() });
    if (cache.ring !== ring) {
      cache.ring = ring;
      cache.lists.clear();
    }
    const slot = ring.vnodeCount === 0 ? -1 : ring.successor(token) * PRIMARIES_N_MAX + Math.min(n, PRIMARIES_N_MAX - 1);
    // Kept as the list a key gets when all its primaries are alive, so that case allocates nothing.
    let allAlive = cache.lists.get(slot);
    if (allAlive === undefined) {
      allAlive = { primaries: preferenceList(ring, token, n, { fallbacks: 0 }).primaries, fallbacks: [] };
      cache.lists.set(slot, allAlive);
    }
    const primaries = allAlive.primaries;
    const pending = this.pendingOf(token, n, primaries);
    let alive = true;
    for (const id of primaries) alive &&= this.isAlive(id);
    if (alive) return pending === undefined ? allAlive : { primaries, fallbacks: [], pending };
    const list = preferenceList(ring, token, n, { alive: (id) => this.isAlive(id) });
    return pending === undefined ? list : { ...list, pending };
  }

  /** The key's primaries in the ring of the change under way that are not primaries now; undefined when nothing changes. */
  private pendingOf(token: number, n: number, primaries: readonly string[]): readonly string[] | undefined {
    const future = this.futureRing();
    if (future === this.ring() || future.vnodeCount === 0) return undefined;
    const cache = (this.futurePrimaries ??= { ring: future, lists: new Map<number, readonly string[]>() });
    if (cache.ring !== future) {
      cache.ring = future;
      cache.lists.clear();
    }
    const slot = future.successor(token) * PRIMARIES_N_MAX + Math.min(n, PRIMARIES_N_MAX - 1);
    let after = cache.lists.get(slot);
    if (after === undefined) {
      after = preferenceList(future, token, n, { fallbacks: 0 }).primaries;
      cache.lists.set(slot, after);
    }
    const pending = after.filter((id) => !primaries.includes(id));
    return pending.length === 0 ? undefined : pending;
  }

  private isAlive(id: string): boolean {
    const member = this.membership.member(id);
    return member !== undefined && member.live === 'alive' && member.status !== 'left';
  }

  private emit(event: MembershipOutput, out: NodeOutput[]): void {
    switch (event.kind) {
      case 'send':
        out.push(event);
        return;
      case 'incarnation':
        if (event.value + INCARNATION_RESERVE / 2 <= this.incarnationCeiling) return;
        this.incarnationCeiling = event.value + INCARNATION_RESERVE;
        out.push({ kind: 'meta-write', name: META_INCARNATION, value: encodeUint(this.incarnationCeiling) });
        return;
      case 'metadata-changed':
        out.push({ kind: 'meta-write', name: META_METADATA, value: this.metadata.snapshot() });
        return;
      case 'event':
        out.push({ kind: 'log', level: event.level, msg: event.msg, fields: event.fields });
        return;
    }
  }

  private onAdmin(conn: ConnId, request: AdminRequest, out: NodeOutput[], events: MembershipOutput[]): void {
    const reply = (result: unknown): void => {
      out.push({ kind: 'client-reply', conn, reply: { t: 'admin-ok', id: request.id, result } as ClientReply });
    };
    switch (request.op) {
      case 'status':
        return reply({
          node: this.membership.id,
          joined: this.membership.hasJoined,
          status: this.membership.status,
          transfers: this.transfersView(),
          localHealth: this.membership.localHealth,
          replication: this.replication,
          antiEntropy: this.antiEntropyStatus(),
          cleanup: this.cleanupProgress,
          members: this.membership.view().map(({ heardTicksAgo, ...member }) => ({
            ...member,
            heardMsAgo: heardTicksAgo === undefined ? null : heardTicksAgo * this.tickMs,
          })),
        });
      case 'repair':
        if (!this.servesData) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new UnavailableError('this node does not serve data yet (joining, or waiting for its cluster)')) });
          return;
        }
        return reply({ node: this.membership.id, ...this.ae.repair(request.bucket) });
      case 'cleanup': {
        const started = this.startCleanup();
        if (started instanceof ChorusError) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, started) });
          return;
        }
        return reply({ node: this.membership.id, ...started });
      }
      case 'cleanup-status':
        return reply({ node: this.membership.id, cleanup: this.cleanupProgress });
      case 'repair-status':
        return reply({ node: this.membership.id, repair: this.ae.repairProgress() ?? null, running: this.ae.stats.running ?? null });
      case 'leave': {
        if (this.membership.status === 'left') {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new UnavailableError('this node has already left the cluster')) });
          return;
        }
        const after = this.ring().members.filter((m) => m.id !== this.membership.id).length;
        if (after < this.replicasMax() && request.force !== true) {
          const error = new InvalidRequestError(`leaving would leave ${after} nodes, fewer than n=${this.replicasMax()}: keys would have fewer replicas than they should (use --force to leave anyway)`, {
            field: 'force',
            nodesAfter: after,
            n: this.replicasMax(),
          });
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, error) });
          return;
        }
        this.membership.leave(events);
        return reply({ node: this.membership.id, status: this.membership.status });
      }
      case 'remove':
        return this.onRemove(conn, request, out, events);
      case 'transfers':
        return reply({
          node: this.membership.id,
          status: this.membership.status,
          transfers: this.transfersView(),
          exchange: this.ae.stats.running ?? null,
          repair: this.ae.repairProgress() ?? null,
          // What anti-entropy still has to rebuild after a removal: ranges some replica never exchanged with this node.
          rangesNeverExchanged: this.rangeAges().filter((r) => r.ageMs === null).length,
        });
      case 'plan':
        return this.onPlan(conn, request, out);
      case 'bucket-set': {
        const invalid = checkBucketProps(request, this.metadata.bucket(request.bucket ?? '')?.type);
        if (invalid) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, invalid) });
          return;
        }
        this.metadata.setBucket(request.bucket as string, request.props ?? {});
        this.membership.metadataChanged(events);
        return reply({ bucket: request.bucket, props: this.metadata.bucket(request.bucket as string) });
      }
      case 'bucket-list':
        return reply({ buckets: this.metadata.listBuckets() });
      case 'ring': {
        const ring = this.ring();
        return reply({ checksum: ring.checksum, n: this.replicas, members: ownership(ring, this.replicas) });
      }
      case 'whereis': {
        if (request.bucket === undefined || request.key === undefined) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new InvalidRequestError('whereis needs a bucket and a key', { field: 'key' })) });
          return;
        }
        const n = this.metadata.bucket(request.bucket)?.n ?? this.replicas;
        const live = new Set(this.membership.liveMembers().map((m) => m.id));
        const list = this.ring().preferenceListFor(request.bucket, request.key, n, { alive: (id) => live.has(id) });
        return reply({ bucket: request.bucket, key: request.key, token: keyToken(request.bucket, request.key), n, primaries: list.primaries, fallbacks: list.fallbacks, alive: [...live] });
      }
      case 'topology': {
        const ring = this.ring();
        return reply({
          checksum: ring.checksum,
          n: this.replicas,
          members: this.membership.view().map((m) => ({ id: m.id, addr: m.addr, zone: m.zone, vnodes: m.vnodes, status: m.status, live: m.live })),
          buckets: this.metadata.listBuckets(),
        });
      }
      case 'inspect': {
        if (request.bucket === undefined || request.key === undefined) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new InvalidRequestError('inspect needs a bucket and a key', { field: 'key' })) });
          return;
        }
        const { bucket, key } = request;
        try {
          const hints = this.hints.pendingTargets.flatMap((target) => {
            const object = this.store.getHint(target, bucket, key);
            return object === undefined ? [] : [{ target, ...describeObject(object) }];
          });
          return reply({ node: this.membership.id, bucket, key, ...describeObject(this.store.get(bucket, key)), hints });
        } catch (error) {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new UnavailableError(`reading the key failed: ${String(error)}`)) });
          return;
        }
      }
    }
  }

  /**
   * The ring that places data now: every member `up` or `leaving` (a leaving node serves until
   * its ranges have moved), none an operator removed. Ownership follows membership, not
   * liveness, so a dead member keeps its ranges until an operator removes it. A joining node
   * enters it once its ranges are streamed to it.
   */
  private ring(): Ring {
    return this.ringOf('current');
  }

  /** The ring once the change under way is done: members `joining` or `up`. Same object as `ring()` when nothing changes. */
  private futureRing(): Ring {
    const future = this.ringOf('future');
    const current = this.ring();
    return future.checksum === current.checksum ? current : future;
  }

  private ringOf(which: 'current' | 'future'): Ring {
    // Compared as numbers: this runs several times per request.
    const version = this.membership.version;
    const removedVersion = this.metadata.removedVersion;
    const cache = which === 'current' ? this.ringCache : this.futureCache;
    if (cache !== undefined && cache.version === version && cache.removedVersion === removedVersion) return cache.ring;
    const removed = this.metadata.removedMembers();
    const statuses = which === 'current' ? ['up', 'leaving'] : ['joining', 'up'];
    const members = this.membership
      .view()
      .filter((m) => statuses.includes(m.status) && !removed.has(m.id))
      .map((m) => ({ id: m.id, zone: m.zone, vnodes: m.vnodes }));
    const key = members.map((m) => `${m.id} ${m.zone} ${m.vnodes}`).join('\n');
    const ring = cache?.key === key ? cache.ring : buildRing(members);
    const entry = { version, removedVersion, key, ring };
    if (which === 'current') this.ringCache = entry;
    else this.futureCache = entry;
    return ring;
  }
}

/** A ring, the member-table and removal versions it was built at, and the members it was built of. */
interface RingCache {
  readonly version: number;
  readonly removedVersion: number;
  readonly key: string;
  readonly ring: Ring;
}

/** A stored object as an operator sees it: live values, its clock, whether only tombstones remain. */
function describeObject(object: KvObject | undefined): { found: boolean; tombstone: boolean; values: Uint8Array[]; clock: [string, number][] } {
  if (object === undefined) return { found: false, tombstone: false, values: [], clock: [] };
  const values = object.entries.flatMap((e) => e.values.filter((v): v is Uint8Array => v !== null));
  return { found: values.length > 0, tombstone: values.length === 0, values, clock: join(object).map(([actor, counter]) => [actor, counter]) };
}

/** `type`: the bucket's type as it is set already, which no change may replace (its stored values are of that type). */
function checkBucketProps(request: AdminRequest, type: string | undefined): InvalidRequestError | undefined {
  if (request.bucket === undefined || request.bucket.length === 0) return new InvalidRequestError('bucket-set needs a bucket name', { field: 'bucket' });
  if (request.bucket.includes('\0')) return new InvalidRequestError('bucket must not contain a zero character', { field: 'bucket' });
  const props = request.props ?? {};
  if (Object.keys(props).length === 0) return new InvalidRequestError('bucket-set needs at least one property', { field: 'props' });
  const n = props.n;
  for (const name of ['r', 'w'] as const) {
    const level = props[name];
    if (typeof level === 'number' && n !== undefined && level > n) return new InvalidRequestError(`${name}=${level} exceeds n=${n}`, { field: name });
    if (level === 0) return new InvalidRequestError(`${name} must be at least 1`, { field: name });
  }
  if (props.type !== undefined && type !== undefined && props.type !== type) {
    return new InvalidRequestError(`bucket ${request.bucket} is of type ${type}; a type cannot change, since the values stored are of that type (use another bucket)`, { field: 'type', type });
  }
  return undefined;
}

/** The member addresses kept by `keepPeers`, to add to the seeds of the next start. */
export function decodePeers(bytes: Uint8Array | undefined): string[] {
  if (bytes === undefined || bytes.byteLength === 0 || bytes.byteLength > 64 * 1024) return [];
  return new TextDecoder()
    .decode(bytes)
    .split(',')
    .filter((addr) => addr.length >= 3 && addr.length <= 300)
    .slice(0, PEERS_KEPT_MAX);
}

/** The status kept under META_STATUS, if it is one a restart keeps. */
export function decodeStatus(bytes: Uint8Array | undefined): 'up' | 'leaving' | 'left' | undefined {
  if (bytes === undefined) return undefined;
  const text = new TextDecoder().decode(bytes);
  return text === 'up' || text === 'leaving' || text === 'left' ? text : undefined;
}

/** The incarnation as it is persisted: 8 bytes, big-endian. */
export function encodeUint(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), false);
  return bytes;
}

export function decodeUint(bytes: Uint8Array | undefined): number {
  if (bytes === undefined || bytes.byteLength !== 8) return 0;
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, false));
}
