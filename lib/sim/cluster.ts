/**
 * A simulated cluster: N real `NodeCore`s in one process, on a simulated network and
 * crashable disks, driven by a virtual clock.
 *
 * Each tick the clock first hands out the messages and reports the network has due, then
 * completes the disk writes that became durable, then gives every running node one `tick`,
 * the nodes taken in an order drawn from the run's PRNG. Nothing reads a wall clock or
 * global randomness: every node's PRNG seed, the network's delays and losses, the disks'
 * delays and the stepping order all derive from the run's one seed, so a run replays exactly.
 *
 * Faults: a crash drops the node's core and whatever its disk had not made durable; a restart
 * builds a new core from what is durable, exactly as the runtime does (the incarnation read
 * from META_INCARNATION plus one, persisted before the core starts; the metadata document
 * from META_METADATA). A paused node gets neither ticks nor messages; what reaches it is held
 * (the kernel keeps accepting bytes for a stopped process) and handed over on resume, after
 * the `stalled` input the runtime gives after SIGCONT. Partitions and loss belong to the
 * network. Joins start a new node with a seed list; a leave is the admin request a client
 * would send.
 *
 * Nodes are `n1`…`nN` at `10.0.x.y:7070`; the first node is the seed unless said otherwise.
 *
 * Replication: clients' data requests go in through `request` and their replies are kept for
 * `replyTo`; the replication counters of every process, crashed ones included, add up in
 * `replicationTotals`; each disk reports a replica's copy of a key going back as a violation;
 * and with `watch`, everything that concerns one key is written out line by line.
 */

import { DATA_LIMITS_DEFAULT } from '../base/limits.js';
import { Prng } from '../base/prng.js';
import type { AdminRequest, ClientReply, ClientRequest, DeleteRequest, DigestRequest, FetchRequest, GetRequest, MemberState, PutRequest, UpdateRequest } from '../codec/messages.js';

/** A data request as a simulated client sends it; the cluster numbers it. */
export type DataRequestWithoutId = Omit<PutRequest, 'id'> | Omit<GetRequest, 'id'> | Omit<DigestRequest, 'id'> | Omit<DeleteRequest, 'id'> | Omit<UpdateRequest, 'id'> | Omit<FetchRequest, 'id'>;
import type { MemberView } from '../membership/membership.js';
import { PROFILES, profileTicks, type Profile } from '../membership/profile.js';
import { decodePeers, decodeStatus, decodeUint, encodeUint, INCARNATION_RESERVE, META_INCARNATION, META_METADATA, META_PEERS, META_STATUS, NodeCore, type ReplicationStats } from '../node/core.js';
import type { NodeInput, NodeOutput } from '../node/io.js';
import type { AntiEntropySettings } from '../antientropy/exchange.js';
import { segmentsOf } from '../storage/segments.js';
import { SimDisk, type DiskOptions } from './disk.js';
import { SimNetwork, type NetworkEvent, type NetworkOptions } from './network.js';
import { formatObject, formatReplicaMessage, formatReply, formatRequest, mentionsKey, Trace, TRACE_EVENTS_DEFAULT } from './trace.js';

export interface ClusterOptions {
  /** The run's seed: everything random in the run derives from it. */
  readonly seed: number;
  /** Nodes created (and started, unless `start` is false) at the beginning. */
  readonly nodes: number;
  /** Milliseconds one tick stands for (the runtime's tickMs). */
  readonly tickMs: number;
  /** Membership timing in ticks; `lan` at `tickMs` unless given. */
  readonly profile: Profile;
  /** Zones, assigned to nodes round robin. */
  readonly zones: readonly string[];
  readonly vnodes: number;
  /** The seed list of the node with this index (1-based) and address; the first node's address unless given. */
  readonly seeds: ((index: number, addr: string) => readonly string[]) | undefined;
  readonly network: Partial<NetworkOptions>;
  readonly disk: Partial<DiskOptions>;
  /** Trace events kept of each kind (messages, and everything else). */
  readonly traceEvents: number;
  /** Start the initial nodes at once; otherwise the caller starts them. */
  readonly start: boolean;
  /**
   * Ticks between checks while waiting for a condition over every node's table: 1 measures
   * to the tick; large clusters may trade that resolution for speed.
   */
  readonly checkEveryTicks: number;
  /** Everything that happens to one key (requests, replies, replica messages, writes, faults), line by line. */
  readonly watch: KeyWatch | undefined;
  /** Anti-entropy settings of every node (SIM_ANTI_ENTROPY unless given). */
  readonly antiEntropy: AntiEntropySettings;
  /** Depth of each node's segment hashes (SIM_SEGMENT_DEPTH unless given; production's 16 for benchmarks at scale). */
  readonly segmentDepth: number;
}

/** Anti-entropy in the simulator: on, an exchange a second, a budget that small clusters never feel. */
export const SIM_ANTI_ENTROPY: AntiEntropySettings = {
  enabled: true,
  intervalMs: 1000,
  keysPerSecond: 5000,
  bytesPerSecond: 16 * 1024 * 1024,
  batchKeys: 64,
  timeoutMs: 5000,
};

/** Follows one key through a run: what `npm run sim -- --key K` prints. */
export interface KeyWatch {
  readonly key: string;
  readonly sink: (line: string) => void;
}

export type NodeState = 'up' | 'down' | 'paused';

/** Segment hashes per simulated node: 256 segments keep hundreds of nodes in one process small. */
export const SIM_SEGMENT_DEPTH = 8;

/** What a paused node is handed on resume, at most: a full socket buffer drops the rest. */
export const HELD_INPUTS_MAX = 10_000;

export type LogOutput = Extract<NodeOutput, { kind: 'log' }>;
export type LogListener = (node: SimNode, tick: number, log: LogOutput) => void;

export class SimNode {
  readonly index: number;
  readonly id: string;
  readonly addr: string;
  readonly zone: string;
  seeds: readonly string[];
  disk: SimDisk;
  core: NodeCore | undefined;
  state: NodeState = 'down';
  /** How many times the node has been started (its process's generation). */
  starts = 0;
  crashes = 0;
  pauses = 0;
  /** The tick the node was paused at. */
  pausedAtTick = 0;
  /** Inputs that reached the node while it was paused. */
  held: NodeInput[] = [];
  /** The node's incarnation as of its last step. */
  incarnation = 0;
  /** The highest incarnation the node ever had, across restarts. */
  incarnationMax = 0;
  /** The incarnation under which the node announced it left, if it has (reset by a new start). */
  leftAtIncarnation: number | undefined;
  /** The incarnation each start began with, in order. */
  readonly startIncarnations: number[] = [];
  /** The node's member table as last read, until it may have changed. */
  table: MemberTable | undefined;
  /** Its data was deleted since it last ran: the next start may begin below what it had before. */
  wiped = false;

  constructor(index: number, addr: string, zone: string, seeds: readonly string[], disk: SimDisk) {
    this.index = index;
    this.id = `n${index}`;
    this.addr = addr;
    this.zone = zone;
    this.seeds = seeds;
    this.disk = disk;
  }

  /** Running (not crashed, not paused) and still a member (not left). */
  get active(): boolean {
    return this.state === 'up' && this.core !== undefined && this.core.membership.status !== 'left';
  }
}

export function nodeAddress(index: number): string {
  return `10.0.${index >> 8}.${index & 255}:7070`;
}

export class SimCluster {
  readonly seed: number;
  readonly tickMs: number;
  readonly profile: Profile;
  readonly trace: Trace;
  readonly network: SimNetwork;
  /** Invariant violations seen while running (an incarnation going backwards, a message peers would refuse). */
  readonly violations: string[] = [];
  private readonly options: ClusterOptions;
  private readonly root: Prng;
  private readonly order: Prng;
  private readonly nodeList: SimNode[] = [];
  private readonly byId = new Map<string, SimNode>();
  private readonly listeners = new Set<LogListener>();
  private readonly replies = new Map<number, ClientReply>();
  private requestNext = 1;
  private clock = 0;
  private readonly retired: ReplicationCounters = zeroCounters();
  /** Requests for the watched key whose replies are still to be reported, and its writes still to become durable. */
  private readonly watchedRequests = new Set<number>();
  private readonly watchedWrites = new Set<string>();
  /** Requests about the watched key sent to a peer (`from>to#rid`), whose answers are reported too. */
  private readonly watchedAsks = new Set<string>();

  constructor(options: Partial<ClusterOptions> & { readonly seed: number }) {
    const tickMs = options.tickMs ?? 10;
    this.options = {
      nodes: 0,
      tickMs,
      profile: profileTicks(PROFILES.lan, tickMs),
      zones: ['z1', 'z2', 'z3'],
      vnodes: 16,
      seeds: undefined,
      network: {},
      disk: {},
      traceEvents: TRACE_EVENTS_DEFAULT,
      start: true,
      checkEveryTicks: 1,
      watch: undefined,
      antiEntropy: SIM_ANTI_ENTROPY,
      segmentDepth: SIM_SEGMENT_DEPTH,
      ...options,
    };
    this.seed = options.seed >>> 0;
    this.tickMs = tickMs;
    this.profile = this.options.profile;
    this.root = new Prng(this.seed);
    this.order = this.root.fork('order');
    this.trace = new Trace(this.options.traceEvents);
    this.network = new SimNetwork({ prng: this.root.fork('network'), trace: this.trace }, this.options.network);
    for (let i = 0; i < this.options.nodes; i++) {
      const node = this.addNode();
      if (this.options.start) this.start(node.id);
    }
  }

  /** The current tick. */
  get now(): number {
    return this.clock;
  }

  get nodes(): readonly SimNode[] {
    return this.nodeList;
  }

  node(id: string): SimNode {
    const node = this.byId.get(id);
    if (node === undefined) throw new Error(`no node ${id} in the simulated cluster`);
    return node;
  }

  /** Nodes that run and are members: the ones whose views must agree. */
  activeNodes(): SimNode[] {
    return this.nodeList.filter((node) => node.active);
  }

  /** Protocol periods in `ticks`. */
  periods(ticks: number): number {
    return ticks / this.profile.probeIntervalTicks;
  }

  /** Calls `listener` with every log event a node emits; returns the function that stops it. */
  onLog(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- nodes and faults ----

  /** Creates a node (down until started); its seeds are the cluster's default unless given. */
  addNode(init: { readonly seeds?: readonly string[]; readonly zone?: string } = {}): SimNode {
    const index = this.nodeList.length + 1;
    const addr = nodeAddress(index);
    const zone = init.zone ?? (this.options.zones[(index - 1) % this.options.zones.length] as string);
    const seeds = init.seeds ?? this.options.seeds?.(index, addr) ?? [nodeAddress(1)];
    const node = new SimNode(index, addr, zone, seeds, this.newDisk(`n${index}`, 0));
    this.nodeList.push(node);
    this.byId.set(node.id, node);
    this.network.bind(addr, node.id);
    return node;
  }

  /** Makes `addr` another name for node `id` (a seed list may name a node in two ways). */
  alias(addr: string, id: string): void {
    this.network.bind(addr, id);
  }

  /** Starts a down node from what its disk holds, as the runtime does. */
  start(id: string): SimNode {
    const node = this.node(id);
    if (node.state !== 'down') throw new Error(`${id} is already running`);
    const persisted = decodeUint(node.disk.getMeta(META_INCARNATION));
    const incarnation = persisted + 1;
    node.disk.setMetaNow(META_INCARNATION, encodeUint(incarnation + INCARNATION_RESERVE));
    node.starts++;
    const seed = this.root.fork(`node/${id}/${node.starts}`).nextUint32();
    node.core = new NodeCore(
      { store: node.disk, segments: segmentsOf(node.disk.entries(), this.options.segmentDepth) },
      {
        nodeId: id,
        actor: `${id}/${this.epochOf(node)}`,
        limits: DATA_LIMITS_DEFAULT,
        replication: { n: 3, r: 'quorum', w: 'quorum', pr: 0, pw: 0, sloppy: true, tombstoneGraceMs: 10_000 },
        requestTimeoutMs: 5000,
        tickMs: this.tickMs,
        self: { id, addr: node.addr, zone: node.zone, vnodes: this.options.vnodes },
        incarnation,
        seeds: [...new Set([...node.seeds, ...decodePeers(node.disk.getMeta(META_PEERS))])],
        knownPeers: decodePeers(node.disk.getMeta(META_PEERS)),
        profile: this.profile,
        metadata: node.disk.getMeta(META_METADATA),
        seed,
        counterFloor: 0,
        handoff: { intervalMs: 200, batchKeys: 64, hintsPerTargetMax: 100_000, hintBytesPerTargetMax: 64 * 1024 * 1024 },
        antiEntropy: this.options.antiEntropy,
        ...((status) => (status === undefined ? {} : { status }))(decodeStatus(node.disk.getMeta(META_STATUS))),
      },
    );
    node.state = 'up';
    node.held = [];
    node.table = undefined;
    node.leftAtIncarnation = undefined;
    if (incarnation <= node.incarnationMax && !node.wiped) {
      this.violations.push(`t=${this.clock} ${id} restarted with incarnation ${incarnation}, not above the ${node.incarnationMax} it had before`);
    }
    node.wiped = false;
    node.incarnation = incarnation;
    node.incarnationMax = Math.max(node.incarnationMax, incarnation);
    node.startIncarnations.push(incarnation);
    this.note(id, 'node', `start #${node.starts} inc=${incarnation} seeds=${node.seeds.join(',') || '-'}`);
    return node;
  }

  /**
   * Kills the node's process: its core and everything its disk had not made durable are gone.
   * Its connections are reset, so connected peers hear that it is unreachable (a kill -9 on
   * a live host); with `silent` they hear nothing (the host lost power, or its cable).
   */
  crash(id: string, how: { readonly silent?: boolean } = {}): void {
    const node = this.node(id);
    if (node.state === 'down') throw new Error(`${id} is not running`);
    if (how.silent === true) this.network.dropConnections(id);
    else this.network.closeConnections(id, node.addr, this.clock);
    const lost = node.disk.crash();
    if (node.core !== undefined) this.retire(node.core.replication);
    node.core = undefined;
    node.table = undefined;
    node.state = 'down';
    node.held = [];
    node.crashes++;
    this.note(id, 'fault', `${how.silent === true ? 'silent crash' : 'crash'} (${lost} undurable writes lost)`);
  }

  /** Crash, then start again on the same disk. */
  restart(id: string): SimNode {
    if (this.node(id).state !== 'down') this.crash(id);
    return this.start(id);
  }

  /** Deletes a down node's data: the next start is a fresh storage epoch at incarnation 1. */
  wipe(id: string): void {
    const node = this.node(id);
    if (node.state !== 'down') throw new Error(`${id} must be down to wipe its data`);
    node.disk = this.newDisk(id, node.starts);
    node.wiped = true;
    this.note(id, 'fault', 'data wiped');
  }

  /** SIGSTOP: no ticks, nothing delivered; what arrives is held. */
  pause(id: string): void {
    const node = this.node(id);
    if (node.state !== 'up') throw new Error(`${id} is not running`);
    node.state = 'paused';
    node.pausedAtTick = this.clock;
    node.pauses++;
    this.note(id, 'fault', 'pause');
  }

  /** SIGCONT: the node learns it stalled, then gets what was held for it. */
  resume(id: string): void {
    const node = this.node(id);
    if (node.state !== 'paused') throw new Error(`${id} is not paused`);
    node.state = 'up';
    const held = node.held;
    node.held = [];
    this.note(id, 'fault', `resume after ${this.clock - node.pausedAtTick} ticks, ${held.length} inputs held`);
    this.step(node, { kind: 'stalled', ticks: this.clock - node.pausedAtTick });
    for (const input of held) this.step(node, input);
  }

  /** Lifeguard's local health input: the node's event loop lags by `ticks`. */
  loopLag(id: string, ticks: number): void {
    this.input(this.node(id), { kind: 'loop-lag', ticks });
  }

  /** Sends an admin request to a node as a client would; returns the reply, if it came at once. */
  admin(id: string, op: AdminRequest['op'], extra: Omit<Partial<AdminRequest>, 't' | 'id' | 'op'> = {}): ClientReply | undefined {
    const requestId = this.requestNext++;
    this.input(this.node(id), { kind: 'client-request', conn: requestId, request: { t: 'admin', id: requestId, op, ...extra } });
    return this.replies.get(requestId);
  }

  /** Sends a data request to a node as a client would; returns its id, under which `replyTo` finds the answer. */
  request(id: string, request: DataRequestWithoutId): number {
    const requestId = this.requestNext++;
    if (this.options.watch?.key === request.k) {
      this.watchedRequests.add(requestId);
      this.watched(`${id} <- client #${requestId} ${formatRequest(request)}`);
    }
    this.input(this.node(id), { kind: 'client-request', conn: requestId, request: { ...request, id: requestId } as ClientRequest });
    return requestId;
  }

  /** The reply to request `requestId`, once it came. */
  replyTo(requestId: number): ClientReply | undefined {
    return this.replies.get(requestId);
  }

  /** A graceful leave, through the admin request `chorus leave` sends. */
  leave(id: string): ClientReply | undefined {
    this.note(id, 'fault', 'leave requested');
    return this.admin(id, 'leave');
  }

  partition(groups: readonly (readonly string[])[]): void {
    this.network.partition(groups);
    this.note('*', 'fault', `partition ${groups.map((g) => `{${g.join(',')}}`).join(' | ')}`);
  }

  /** A one-way partition: `from` → `to` is dropped, `to` → `from` flows. */
  block(from: string, to: string): void {
    this.network.block(from, to);
    this.note('*', 'fault', `block ${from} -> ${to}`);
  }

  heal(): void {
    this.network.heal();
    this.note('*', 'fault', 'heal');
  }

  setLoss(loss: number): void {
    this.network.configure({ loss });
    this.note('*', 'fault', `loss=${loss}`);
  }

  /**
   * Replication counters summed over every process the cluster ran, the crashed ones
   * included (a process keeps its counters in memory, so a restart starts them at zero).
   */
  replicationTotals(): ReplicationCounters {
    const totals = { ...this.retired };
    for (const node of this.nodeList) {
      if (node.core === undefined) continue;
      const counters = replicationCounters(node.core.replication);
      for (const name of REPLICATION_COUNTERS) totals[name] += counters[name];
    }
    return totals;
  }

  /** Hints kept on every running node, paused ones included. */
  hintsPending(): number {
    let pending = 0;
    for (const node of this.nodeList) pending += node.core?.replication.hintsPending ?? 0;
    return pending;
  }

  // ---- time ----

  tick(): void {
    this.clock++;
    const now = this.clock;
    // A bound on how stale a cached table can be, should a change ever slip past `step`'s test.
    if (now % this.profile.probeIntervalTicks === 0) for (const node of this.nodeList) node.table = undefined;
    for (const event of this.network.due(now)) this.deliver(event, now);
    for (const node of this.order.shuffle(this.nodeList)) {
      if (node.state === 'down') continue;
      for (const done of node.disk.complete(now)) {
        if (this.watchedWrites.delete(`${node.id} ${done.writeId}`)) this.watched(`${node.id} write #${done.writeId} ${done.error === undefined ? 'durable' : `failed: ${done.error}`}`);
        this.input(node, done.error === undefined ? { kind: 'store-durable', writeId: done.writeId } : { kind: 'store-failed', writeId: done.writeId, reason: done.error });
      }
      if (node.state === 'up') this.step(node, { kind: 'tick' });
    }
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /**
   * Runs until `condition` holds, checking it every `everyTicks` ticks (and before the first);
   * returns the ticks it took, or undefined when `maxTicks` passed first.
   */
  runUntil(condition: () => boolean, maxTicks: number, everyTicks = this.options.checkEveryTicks): number | undefined {
    const start = this.clock;
    if (condition()) return 0;
    while (this.clock - start < maxTicks) {
      this.tick();
      if ((this.clock - start) % everyTicks === 0 && condition()) return this.clock - start;
    }
    return condition() ? this.clock - start : undefined;
  }

  // ---- views ----

  /** The member table of a running node, as its status page would show it now. */
  viewOf(id: string): MemberView[] {
    const core = this.node(id).core;
    if (core === undefined) throw new Error(`${id} is not running`);
    return core.membership.view();
  }

  /**
   * The member table of a running node without the per-tick "last heard" column, cached
   * until the node's table may have changed (see `step`), so that waiting for a condition
   * over every node's table does not rebuild n tables of n rows every tick.
   */
  tableOf(id: string): MemberTable {
    const node = this.node(id);
    if (node.table === undefined) node.table = memberTable(this.viewOf(id));
    return node.table;
  }

  /** What `viewer` holds about `member`. */
  seenBy(viewer: string, member: string): MemberState | undefined {
    return this.tableOf(viewer).byId.get(member);
  }

  /**
   * Converged: every active node (running, not paused, not left) holds the same member table,
   * row for row (id, address, zone, vnodes, status, liveness, incarnation). Since each node's
   * table holds its own current state, this also means everyone sees every active node as it
   * sees itself.
   */
  converged(): boolean {
    return this.confirmed(() => this.sameTables());
  }

  /** Whether every active node holds `member` in a state that passes `predicate`; confirmed on fresh tables. */
  allSee(member: string, predicate: (state: MemberState) => boolean): boolean {
    return this.confirmed(() => this.activeNodes().every((node) => node.id === member || predicate(this.seenBy(node.id, member) ?? MISSING)));
  }

  /** Asks on the cached tables, and asks again on fresh ones when the answer is yes. */
  private confirmed(question: () => boolean): boolean {
    if (!question()) return false;
    for (const node of this.nodeList) node.table = undefined;
    return question();
  }

  private sameTables(): boolean {
    const active = this.activeNodes();
    const first = active[0];
    if (first === undefined) return true;
    const expected = this.tableOf(first.id).key;
    for (let i = 1; i < active.length; i++) {
      if (this.tableOf((active[i] as SimNode).id).key !== expected) return false;
    }
    return true;
  }

  // ---- internals ----

  /** Records a harness action in the trace. */
  note(node: string, kind: 'fault' | 'node' | 'note', detail: string): void {
    this.trace.record({ tick: this.clock, kind, node, detail });
    if (kind !== 'note') this.watched(`${node} [${kind}] ${detail}`);
  }

  private watched(line: string): void {
    this.options.watch?.sink(`t=${String(this.clock).padEnd(6)} ${line}`);
  }

  /** Reports an output of `node` that concerns the watched key. */
  private watchOutput(node: SimNode, output: NodeOutput, key: string): void {
    switch (output.kind) {
      case 'send': {
        const message = output.message;
        const to = output.to.node ?? this.network.resolve(output.to.addr) ?? output.to.addr;
        // A request about the key is followed by its answer, which carries only the rid.
        const asked = mentionsKey(message, key);
        const answer = !asked && 'rid' in message && this.watchedAsks.delete(`${to}>${node.id}#${message.rid}`);
        if (asked && 'rid' in message) this.watchedAsks.add(`${node.id}>${to}#${message.rid}`);
        if (asked || answer) this.watched(`${node.id} -> ${to} ${formatReplicaMessage(message, key)}`);
        return;
      }
      case 'store-write': {
        const writes = output.writes.filter((w) => w.key === key);
        if (writes.length === 0) return;
        this.watchedWrites.add(`${node.id} ${output.writeId}`);
        for (const w of writes) this.watched(`${node.id} write #${output.writeId} ${w.op}${'target' in w ? ` for ${w.target}` : ''}${'object' in w ? ` ${formatObject(w.object)}` : ''}`);
        return;
      }
      case 'client-reply':
        if (this.watchedRequests.delete(output.reply.id)) this.watched(`${node.id} -> client #${output.reply.id} ${formatReply(output.reply)}`);
        return;
      default:
        return;
    }
  }

  private newDisk(id: string, generation: number): SimDisk {
    const report = (problem: string): void => void this.violations.push(`t=${this.clock} ${id}: ${problem}`);
    return new SimDisk({ prng: this.root.fork(`disk/${id}/${generation}`), report }, this.options.disk);
  }

  /** Adds the counters of a process that is about to die to the cluster's totals. */
  private retire(stats: ReplicationStats): void {
    const totals = replicationCounters(stats);
    for (const name of REPLICATION_COUNTERS) this.retired[name] += totals[name];
  }

  /** The node's storage epoch, kept on its disk like the runtime's identity: new when the data is new. */
  /**
   * The node's storage epoch, kept on its disk like the runtime's identity. A simulated node
   * only ever stops by crashing, and the runtime starts a new epoch after every start that
   * did not follow a clean stop, so every start here gets a new one.
   */
  private epochOf(node: SimNode): string {
    const epoch = `e${node.starts}`;
    node.disk.setMetaNow('epoch', new TextEncoder().encode(epoch));
    return epoch;
  }

  private deliver(event: NetworkEvent, now: number): void {
    const node = this.byId.get(event.to);
    if (event.kind === 'unreachable') {
      if (node === undefined || node.state === 'down') return;
      this.trace.record({ tick: now, kind: 'unreachable', node: node.id, peer: event.target.node ?? event.target.addr, detail: event.reason === 'self' ? ' (self)' : '' });
      this.input(node, { kind: 'peer-unreachable', node: event.target.node, addr: event.target.addr, reason: event.reason });
      return;
    }
    if (node === undefined || node.state === 'down') {
      // Nobody listens there any more: the dial fails, and the sender hears of it.
      this.network.drop(now, event.from, event.to, event.message, 'down');
      if (this.network.settings.reportDown) this.network.unreachable(event.from, event.target, 'unreachable', now);
      return;
    }
    this.trace.record({ tick: now, kind: 'deliver', node: node.id, peer: event.from, message: event.message });
    this.input(node, { kind: 'peer-message', from: event.from, message: event.message });
  }

  /** Steps a running node, or holds the input for a paused one. */
  private input(node: SimNode, input: NodeInput): void {
    if (node.state === 'up') return this.step(node, input);
    if (node.state === 'paused' && node.held.length < HELD_INPUTS_MAX) node.held.push(input);
  }

  private step(node: SimNode, input: NodeInput): void {
    const core = node.core;
    if (core === undefined) return;
    const out: NodeOutput[] = [];
    core.step(input, out);
    // The table changes only through news in a message, or with a log event or a new own
    // incarnation (a suspicion, a verdict, a join or a leave); anything else keeps the cache.
    if (mayChangeTable(input) || out.some((output) => output.kind === 'log' || output.kind === 'meta-write')) node.table = undefined;
    for (const output of out) this.execute(node, output);
    const incarnation = core.membership.incarnation;
    if (incarnation < node.incarnation) {
      this.violations.push(`t=${this.clock} ${node.id}'s incarnation went back from ${node.incarnation} to ${incarnation}`);
    }
    node.incarnation = incarnation;
    node.incarnationMax = Math.max(node.incarnationMax, incarnation);
    if (node.leftAtIncarnation === undefined && core.membership.status === 'left') node.leftAtIncarnation = incarnation;
  }

  private execute(node: SimNode, output: NodeOutput): void {
    if (this.options.watch !== undefined) this.watchOutput(node, output, this.options.watch.key);
    switch (output.kind) {
      case 'send':
        this.network.send(node.id, output.to, output.message, this.clock);
        return;
      case 'store-write':
        node.disk.write(output.writeId, output.writes, this.clock);
        return;
      case 'meta-write':
        node.disk.writeMeta(output.name, output.value, this.clock);
        return;
      case 'client-reply':
        this.replies.set(output.reply.id, output.reply);
        return;
      case 'log':
        if (output.level !== 'debug') this.trace.record({ tick: this.clock, kind: 'log', node: node.id, detail: `${output.msg} ${formatFields(output.fields)}` });
        for (const listener of this.listeners) listener(node, this.clock, output);
        return;
    }
  }
}

/** The replication counters the simulator sums across processes. */
export const REPLICATION_COUNTERS = ['readRepairs', 'pairedReads', 'forwarded', 'reapsSent', 'handoffBatchesReceived', 'tombstonesReaped', 'hintsDelivered', 'hintsDropped'] as const;

export type ReplicationCounters = Record<(typeof REPLICATION_COUNTERS)[number], number>;

function zeroCounters(): ReplicationCounters {
  return { readRepairs: 0, pairedReads: 0, forwarded: 0, reapsSent: 0, handoffBatchesReceived: 0, tombstonesReaped: 0, hintsDelivered: 0, hintsDropped: 0 };
}

function replicationCounters(stats: ReplicationStats): ReplicationCounters {
  let hintsDelivered = 0;
  let hintsDropped = 0;
  for (const target of stats.hints) {
    hintsDelivered += target.delivered;
    hintsDropped += target.dropped;
  }
  return {
    readRepairs: stats.readRepairs,
    pairedReads: stats.pairedReads,
    forwarded: stats.forwarded,
    reapsSent: stats.reapsSent,
    handoffBatchesReceived: stats.handoffBatchesReceived,
    tombstonesReaped: stats.tombstonesReaped,
    hintsDelivered,
    hintsDropped,
  };
}

function mayChangeTable(input: NodeInput): boolean {
  if (input.kind !== 'peer-message') return input.kind !== 'tick' && input.kind !== 'store-durable' && input.kind !== 'loop-lag';
  const message = input.message;
  return message.t === 'sync' || ('upd' in message && message.upd.length > 0);
}

const MISSING: MemberState = { id: '?', addr: '?', zone: '?', vnodes: 1, status: 'joining', live: 'dead', inc: -1 };

/** A node's member table: its rows, by id, and as one string that is equal for equal tables. */
export interface MemberTable {
  readonly rows: readonly MemberState[];
  readonly byId: ReadonlyMap<string, MemberState>;
  readonly key: string;
}

function memberTable(view: readonly MemberView[]): MemberTable {
  let key = '';
  const byId = new Map<string, MemberState>();
  for (const row of view) {
    key += `${row.id} ${row.addr} ${row.zone} ${row.vnodes} ${row.status} ${row.live} ${row.inc}\n`;
    byId.set(row.id, row);
  }
  return { rows: view, byId, key };
}

function formatFields(fields: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');
}
