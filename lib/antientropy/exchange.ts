/**
 * Anti-entropy: pairs of replicas compare hash trees of the ranges they share and ship each
 * other only the records that differ (Dynamo §4.7, riak_kv's active anti-entropy).
 *
 * One exchange, run by its initiator against one peer, one request in flight at a time:
 *
 * 1. Tree. Both sides build the tree of the spans they share (shared-ranges.ts) from their
 *    segment hashes, and compare it in turns, two levels a round trip: the initiator sends
 *    its hashes of some nodes (`ae-tree`; the first sends the root's and opens a session with
 *    the ring's checksum and n, so the peer builds the same tree); the peer answers which of
 *    them differ and its hashes of their children (`ae-tree-ok`); the initiator compares
 *    those and sends its hashes of the children of the ones that differ, and so on down. The
 *    cost follows the divergence: a lone difference costs fan-out hashes per level. Hashes
 *    travel as 4 bytes, salted per exchange (`saltedWord`), so whatever a cut hash hides in
 *    one exchange shows in the next.
 * 2. Keys. When the nodes sent are leaves, the peer answers with its list of (key, version)
 *    hashes under those that differ (6 bytes a key, salted too); otherwise the initiator asks
 *    for the lists of the differing leaves (`ae-keys`). It compares a list with its own scan of
 *    the same leaves: a key of its own missing from the peer's list is one the peer lacks or
 *    holds differently, an item of the peer's missing from its own is one it lacks or holds
 *    differently.
 * 3. Sync. It sends the records of the first kind and names the items of the second
 *    (`ae-sync`); the peer merges what it got (the normal DVV merge, so tombstones and typed
 *    values take part like any version), and answers, once that is durable, with its merged
 *    copies of the keys named, which the initiator merges. Both sides then hold the same
 *    version: records shipped are the records that differ.
 * 4. Done. `ae-done` closes the peer's session; both note when the exchange started, which is
 *    the moment up to which their shared ranges are known to agree (tombstone reaping waits
 *    for that, see `confirms`).
 *
 * Resumable. An exchange that fails (the peer went away, a timeout, a refusal) is dropped;
 * everything already merged stays merged and leaves those keys equal, so the next exchange
 * with that peer descends only into what still differs.
 *
 * Throttled. Records shipped and keys listed are paid from a budget of keys and bytes per
 * second, refilled each tick, by each node for its own work whichever side opened the
 * exchange (a request that costs a node budget waits while its budget is spent); the shell
 * reports foreground latency (`onLoad`), and when it rises above its usual level the refill
 * rate halves (to 1/32 at worst), recovering as latency does. A node runs or serves one
 * scheduled exchange at a time. `repair` forces a pass over every peer now, at a budget
 * `REPAIR_BUDGET_FACTOR` larger, and so do transfers; both say so when they open, and the
 * peer serves them at that budget too.
 *
 * The responder never refuses merged data for its size, and answers a session it does not
 * know (expired, or it restarted) with `rerr`, which ends the exchange.
 */

import { assert } from '../base/assert.js';
import type { ErrorCode } from '../base/errors.js';
import { dvvDescends, sync } from '../clock/dvv.js';
import type { KvObject } from '../clock/object.js';
import type { AeDone, AeKeys, AeKeysOk, AeSync, AeSyncOk, AeTree, AeTreeOk, PeerMessage } from '../codec/messages.js';
import { objectBytes } from '../handoff/hints.js';
import {
  buildTree,
  EXCHANGE_NODES_MAX,
  keySetHash,
  KeyHasher,
  objectDigest,
  saltedWord,
  TreeLeaves,
  type HashTree,
  type SegmentHashes,
  type TokenBounds,
} from '../merkle/index.js';
import type { Ring } from '../ring/ring.js';
import { checkObject } from '../replication/replica.js';
import { sharedBounds, type Span } from '../ring/shared-ranges.js';

export interface AntiEntropySettings {
  /** Whether exchanges start on their own (a repair runs either way). */
  readonly enabled: boolean;
  /** Milliseconds from the end of one exchange to the start of the next. */
  readonly intervalMs: number;
  /** Records shipped per second, both directions, at full rate. */
  readonly keysPerSecond: number;
  /** Bytes of records shipped per second at full rate. */
  readonly bytesPerSecond: number;
  /** Records per sync message at most. */
  readonly batchKeys: number;
  /** How long a request may wait for its answer before the exchange is dropped. */
  readonly timeoutMs: number;
}

/** A key of this node's own data. */
export interface Slot {
  readonly bucket: string;
  readonly key: string;
}

/** One durable entry, as the store's scan returns it. */
export interface ScannedEntry extends Slot {
  readonly token: number;
  readonly object: KvObject;
}

export type Done<Out> = (failure: string | undefined, out: Out[]) => void;

/** This node's copy of the data, as the node's LocalReplica offers it; `Out` is the node's output type. */
export interface ReplicaPort<Out> {
  readonly segments: SegmentHashes;
  /** The newest version, durable or not. Throws when the stored record is unreadable. */
  latest(slot: Slot): KvObject | undefined;
  /** The newest version of a scanned entry: a pending write's, else the durable one given. */
  newest(slot: Slot, durable: KvObject): KvObject | undefined;
  write(writes: readonly (Slot & { readonly object: KvObject | undefined })[], out: Out[], done: Done<Out>): void;
  /** Runs `done` once whatever is pending for the slot is durable. */
  afterPending(slot: Slot, out: Out[], done: Done<Out>): void;
}

export interface AntiEntropyDeps<Out> {
  readonly nodeId: string;
  readonly tickMs: number;
  readonly local: ReplicaPort<Out>;
  /** The store's entries with token in [from, to), wrapping (durable data only). */
  readonly scan: (fromToken: number, toToken: number) => Iterable<ScannedEntry>;
  readonly rid: () => number;
  /** A fresh 32-bit salt for an exchange's cut hashes (from the node's PRNG). */
  readonly salt: () => number;
  /** The ring that places data now. */
  readonly ring: () => Ring;
  /** The replication factor shared ranges are computed for: the largest n of any bucket. */
  readonly replicas: () => number;
  readonly alive: (id: string) => boolean;
  /** Sends a message to a member (dropped when it cannot be reached). */
  readonly send: (node: string, message: PeerMessage, out: Out[]) => void;
  readonly log: (level: 'info' | 'warn', msg: string, fields: Readonly<Record<string, string | number | boolean>>, out: Out[]) => void;
}

/**
 * Bytes of a tree node's hash on the wire: a salted 32-bit cut of its 16 (`saltedWord`). A
 * differing node hides when its cut hashes agree by chance, once in 2^32 comparisons, and
 * the next exchange, with another salt, finds it.
 */
const NODE_WIRE_BYTES = 4;
/**
 * Bytes of a (key, version) item hash on the wire: 48 salted bits. A differing key hides in
 * one exchange when its item agrees with one of the other side's few hundred by chance.
 */
const ITEM_WIRE_BYTES = 6;
/**
 * Items one answer carries at most (whole leaves, and always the first): listing a key means
 * reading and digesting it (some microseconds), on both sides, within one event-loop turn
 * that a client request arriving meanwhile waits for.
 */
const ITEMS_PER_ANSWER = 128;
/** Leaves asked for in one `ae-keys` (the answer covers as many as ITEMS_PER_ANSWER allows). */
const LEAVES_PER_REQUEST = 64;
/** Comparing a key under a differing leaf costs this fraction of shipping one, against the keys budget. */
const COMPARE_COST = 1 / 8;
/** Bytes of records in one `ae-sync` at most (records are never split). */
const SYNC_BYTES_MAX = 4 * 1024 * 1024;
/** A forced repair ships this many times the configured budget. */
export const REPAIR_BUDGET_FACTOR = 16;
/** Requests waiting for budget at most (each peer has one in flight); past it they are refused. */
const WAITING_MAX = 64;
/** Sessions a responder keeps open at once; past it the oldest is dropped. */
const SESSIONS_MAX = 16;
/** The slowest the budget refills under foreground pressure: 1/32 of the configured rate. */
const PRESSURE_FACTOR_MIN = 1 / 32;
/** The rate a node starts at (after a restart it is most likely to have things to repair, and to be cold). */
const RATE_START = 1 / 8;
/** Latency above its usual level by this factor, plus PRESSURE_SLACK_MS, halves the rate. */
const PRESSURE_ABOVE = 1.2;
/** What a second's p99 may exceed its usual level by anyway: sampling noise at low latencies. */
const PRESSURE_SLACK_MS = 0.5;
/** Growth of the rate per second while no client request reports latency: nothing to protect. */
const RATE_RECOVERY = 1.15;
/**
 * Growth of the rate per second while client latency stays at its usual level: additive (a
 * halving takes seconds to win back), so the rate stays below where latency rose.
 */
const RATE_STEP = 1 / 32;
/** Below this rate, a node refuses scheduled exchanges others open with it. */
const PRESSURED_BELOW = 1 / 4;

export interface ExchangeProgress {
  readonly peer: string;
  readonly kind: ExchangeKind;
  readonly phase: 'tree' | 'keys' | 'sync';
  readonly leavesDiffering: number;
  readonly leavesDone: number;
  readonly keysCompared: number;
  readonly keysRepaired: number;
}

export interface PeerExchangeStats {
  readonly peer: string;
  /** The tick the last exchange that completed with this peer started at; undefined: never. */
  readonly lastTick: number | undefined;
  readonly completed: number;
  readonly failed: number;
}

export interface AntiEntropyStats {
  readonly exchangesCompleted: number;
  readonly exchangesFailed: number;
  /** Exchanges that found nothing differing. */
  readonly exchangesInSync: number;
  /** Keys whose local copy an exchange changed (either side). */
  readonly keysRepaired: number;
  readonly recordsSent: number;
  readonly recordsReceived: number;
  /** Estimated bytes of anti-entropy messages sent and received (hashes, key lists, records). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly treeNodesCompared: number;
  /** The budget's refill rate as a share of the configured one (foreground pressure lowers it). */
  readonly rate: number;
  /** Why the last exchange that failed did, and when (tick). */
  readonly lastFailure: { readonly peer: string; readonly reason: string; readonly tick: number } | undefined;
  readonly running: ExchangeProgress | undefined;
  readonly repair: RepairProgress | undefined;
}

export interface RepairProgress {
  readonly bucket: string | undefined;
  readonly peersTotal: number;
  readonly peersDone: number;
  readonly peersFailed: number;
  readonly keysCompared: number;
  readonly keysRepaired: number;
  readonly done: boolean;
}

/** A step of the descent: the initiator's hashes of the children of `parents` (nodes of `level` − 1), or of the root. */
interface Step {
  readonly level: number;
  readonly parents: readonly number[];
}

/** What an exchange covers: the spans two nodes share on a ring both hold, or spans named outright (a transfer). */
type Scope = { readonly ring: string; readonly n: number } | { readonly spans: readonly Span[] };

export type ExchangeKind = 'scheduled' | 'repair' | 'transfer';

/** How a transfer exchange ended. */
export interface TransferResult {
  readonly ok: boolean;
  readonly reason: string | undefined;
  readonly keysCompared: number;
  readonly keysRepaired: number;
}

interface QueuedTransfer {
  readonly peer: string;
  readonly spans: readonly Span[];
  readonly done: (result: TransferResult) => void;
}

/** Spans one exchange may name: a vnode's worth of ranges for a large node. */
export const EXCHANGE_SPANS_MAX = 4096;

interface Awaiting {
  readonly rid: number;
  readonly deadline: number;
}

interface Exchange {
  readonly xid: number;
  readonly peer: string;
  readonly kind: ExchangeKind;
  readonly onDone: ((result: TransferResult) => void) | undefined;
  readonly scope: Scope;
  readonly bucket: string | undefined;
  readonly startedAt: number;
  readonly leaves: TreeLeaves;
  readonly tree: HashTree;
  readonly salt: number;
  opened: boolean;
  phase: 'tree' | 'keys' | 'sync';
  /** Steps of the descent still to send. */
  steps: Step[];
  /** The nodes whose hashes the step in flight carried, at `askedLevel`; or the leaves an `ae-keys` asked about. */
  asked: number[];
  askedLevel: number;
  /** The differing leaves found so far. */
  differing: number[];
  /** Differing leaves whose key lists are still to ask for. */
  keysQueue: number[];
  /** Differing leaves whose key lists were compared. */
  leavesDone: number;
  /** Sync batches still to send for the last key list compared. */
  batches: SyncBatch[];
  awaiting: Awaiting | undefined;
  keysCompared: number;
  keysRepaired: number;
}

interface SyncBatch {
  readonly push: { b: string; k: string; obj: KvObject }[];
  /** The peer's items to pull. */
  readonly pull: number[];
  readonly bytes: number;
}

interface Session {
  readonly from: string;
  readonly xid: number;
  readonly openedAt: number;
  readonly leaves: TreeLeaves;
  readonly tree: HashTree;
  readonly bucket: string | undefined;
  readonly salt: number;
  /** A repair or a transfer: served at the repair budget. */
  readonly forced: boolean;
  /** The keys of the last item list sent, by item: what an `ae-sync` may pull. */
  pullable: Map<number, Slot[]>;
  lastUsed: number;
}

interface Repair {
  readonly bucket: string | undefined;
  readonly queue: string[];
  readonly total: number;
  done: number;
  failed: number;
  keysCompared: number;
  keysRepaired: number;
}

export class AntiEntropy<Out> {
  private readonly deps: AntiEntropyDeps<Out>;
  private readonly settings: AntiEntropySettings;
  private now = 0;
  private xidNext = 1;
  private exchange: Exchange | undefined;
  /** No scheduled exchange starts before this tick. */
  private nextStart: number;
  /** Round-robin position among peers. */
  private turn = 0;
  private readonly sessions = new Map<string, Session>();
  /** Per peer: the start tick of the last completed exchange (either side initiated), and counts. */
  private readonly peers = new Map<string, { last: number | undefined; completed: number; failed: number }>();
  private keysBudget = 0;
  private bytesBudget = 0;
  /** The budget's refill rate, as a share of the configured one: starts low and grows while latency stays at its usual level. */
  private rate = RATE_START;
  private lastLoadTick = 0;
  private pressureTick: number | undefined;
  private workAtLoad = 0;
  /** Keys listed or compared by this node's exchanges and sessions (records shipped are counted apart). */
  private work = 0;
  private latencyBaseline: number | undefined;
  private repairRun: Repair | undefined;
  private readonly transfers: QueuedTransfer[] = [];
  /** Requests peers sent while this node's budget was spent (see `costly`): served as it refills, in order. */
  private readonly waiting: { readonly from: string; readonly message: AeTree | AeKeys | AeSync }[] = [];
  private repairLast: RepairProgress | undefined;
  private completed = 0;
  private failed = 0;
  private inSync = 0;
  private keysRepaired = 0;
  private recordsSent = 0;
  private recordsReceived = 0;
  private bytesSent = 0;
  private bytesReceived = 0;
  private treeNodesCompared = 0;
  private lastFailure: { readonly peer: string; readonly reason: string; readonly tick: number } | undefined;

  constructor(deps: AntiEntropyDeps<Out>, settings: AntiEntropySettings) {
    this.deps = deps;
    this.settings = settings;
    this.nextStart = this.intervalTicks();
  }

  get stats(): AntiEntropyStats {
    const ex = this.exchange;
    return {
      exchangesCompleted: this.completed,
      exchangesFailed: this.failed,
      exchangesInSync: this.inSync,
      keysRepaired: this.keysRepaired,
      recordsSent: this.recordsSent,
      recordsReceived: this.recordsReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      treeNodesCompared: this.treeNodesCompared,
      rate: this.rate,
      lastFailure: this.lastFailure,
      running:
        ex === undefined
          ? undefined
          : {
              peer: ex.peer,
              kind: ex.kind,
              phase: ex.phase,
              leavesDiffering: ex.differing.length,
              leavesDone: ex.leavesDone,
              keysCompared: ex.keysCompared,
              keysRepaired: ex.keysRepaired,
            },
      repair: this.repairProgress(),
    };
  }

  /** Per peer: when an exchange last completed with it, and how many did or failed. */
  peerStats(): PeerExchangeStats[] {
    return [...this.peers]
      .map(([peer, p]) => ({ peer, lastTick: p.last, completed: p.completed, failed: p.failed }))
      .sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
  }

  /** The start tick of the last exchange that completed with `peer`, or undefined. */
  lastExchange(peer: string): number | undefined {
    return this.peers.get(peer)?.last;
  }

  /**
   * Whether an exchange that started at or after `since` has completed with every one of
   * `primaries` (this node aside): from then on, what this node holds in their shared ranges
   * they held too. Tombstone reaping asks this.
   */
  confirms(primaries: readonly string[], since: number): boolean {
    return primaries.every((p) => p === this.deps.nodeId || (this.peers.get(p)?.last ?? -1) >= since);
  }

  /** Foreground latency from the shell: the budget backs off while it is above its slow average. */
  onLoad(latencyMs: number): void {
    if (!(latencyMs >= 0)) return;
    this.lastLoadTick = this.now;
    // Anti-entropy's own work raises the latency it is judged by: the baseline learns only
    // from windows in which this node listed, shipped and received no keys. Until it has
    // seen one (a node restarted in the middle of a repair) it has nothing to judge by, and
    // keeps the rate it has.
    const work = this.work + this.recordsSent + this.recordsReceived;
    const quiet = work === this.workAtLoad;
    this.workAtLoad = work;
    if (quiet) this.latencyBaseline = this.latencyBaseline === undefined ? latencyMs : this.latencyBaseline + (latencyMs - this.latencyBaseline) * 0.2;
    const baseline = this.latencyBaseline;
    if (baseline === undefined) return;
    if (latencyMs > baseline * PRESSURE_ABOVE + PRESSURE_SLACK_MS) {
      this.rate = Math.max(PRESSURE_FACTOR_MIN, this.rate / 2);
      this.pressureTick = this.now;
    } else {
      this.rate = Math.min(1, this.rate + RATE_STEP);
    }
  }

  /**
   * Whether client latency was up at the last load report and has cut this node's budget well
   * down: it then sheds scheduled exchanges others open with it.
   */
  private get pressured(): boolean {
    return this.pressureTick !== undefined && this.pressureTick === this.lastLoadTick && this.rate < PRESSURED_BELOW;
  }

  /** Starts a full pass over every peer this node shares ranges with, now; `bucket` limits what is shipped. */
  repair(bucket: string | undefined): RepairProgress {
    const peers = this.peersSharing();
    this.repairRun = { bucket, queue: peers, total: peers.length, done: 0, failed: 0, keysCompared: 0, keysRepaired: 0 };
    if (this.exchange?.kind === 'scheduled') this.abandon(this.exchange, 'a repair takes over');
    this.nextStart = this.now;
    return this.repairProgress()!;
  }

  repairProgress(): RepairProgress | undefined {
    const run = this.repairRun;
    if (run === undefined) return this.repairLast;
    return {
      bucket: run.bucket,
      peersTotal: run.total,
      peersDone: run.done,
      peersFailed: run.failed,
      keysCompared: run.keysCompared,
      keysRepaired: run.keysRepaired,
      done: false,
    };
  }

  /**
   * Runs an exchange with `peer` over `spans` (named outright, not derived from the ring) ahead
   * of any other, at the repair budget: how ranges move on a join or a leave. `done` is called
   * once, when it ends either way.
   */
  transfer(peer: string, spans: readonly Span[], done: (result: TransferResult) => void): void {
    assert(spans.length <= EXCHANGE_SPANS_MAX, `a transfer names at most ${EXCHANGE_SPANS_MAX} spans, got ${spans.length}`);
    this.transfers.push({ peer, spans, done });
    if (this.exchange?.kind === 'scheduled') this.abandon(this.exchange, 'a transfer takes over');
  }

  onTick(now: number, out: Out[]): void {
    this.now = now;
    // No load report for two seconds: too few client requests to judge by, so nothing to protect.
    const second = Math.max(1, Math.round(1000 / this.deps.tickMs));
    if (now - this.lastLoadTick >= 2 * second && (now - this.lastLoadTick) % second === 0) this.rate = Math.min(1, this.rate * RATE_RECOVERY);
    const forced = this.repairRun !== undefined || this.exchange?.kind === 'transfer' || this.transfers.length > 0 || [...this.sessions.values()].some((s) => s.forced);
    const factor = forced ? REPAIR_BUDGET_FACTOR : this.rate;
    const perTick = this.deps.tickMs / 1000;
    // At most one second of budget accumulates while nothing is shipped.
    this.keysBudget = Math.min(this.settings.keysPerSecond * factor, this.keysBudget + this.settings.keysPerSecond * perTick * factor);
    this.bytesBudget = Math.min(this.settings.bytesPerSecond * factor, this.bytesBudget + this.settings.bytesPerSecond * perTick * factor);
    for (const [id, session] of this.sessions) if (now - session.lastUsed > this.timeoutTicks()) this.sessions.delete(id);
    while (this.waiting.length > 0 && this.keysBudget > 0 && this.bytesBudget > 0) {
      const { from, message } = this.waiting.shift()!;
      this.serve(from, message, out);
    }

    const ex = this.exchange;
    if (ex !== undefined) {
      if (ex.awaiting !== undefined && now >= ex.awaiting.deadline) this.abandon(ex, 'timed out');
      else if (ex.awaiting === undefined) this.advance(ex, out);
      return;
    }
    const transfer = this.transfers.shift();
    if (transfer !== undefined) {
      if (!this.begin(transfer.peer, 'transfer', undefined, out, transfer)) transfer.done({ ok: false, reason: 'the peer is not alive', keysCompared: 0, keysRepaired: 0 });
      return;
    }
    if (now < this.nextStart) return;
    const repair = this.repairRun;
    if (repair !== undefined) {
      const peer = repair.queue.shift();
      if (peer === undefined) return this.endRepair();
      // A peer that shares no range with this node any more has nothing to repair.
      if (!this.begin(peer, 'repair', repair.bucket, out)) repair.done++;
      return;
    }
    if (!this.settings.enabled) return;
    // One scheduled exchange at a time per node: wait while serving one a peer opened.
    if (this.sessions.size > 0) return;
    const peers = this.peersSharing();
    if (peers.length === 0) {
      this.nextStart = now + this.intervalTicks();
      return;
    }
    const peer = peers[this.turn++ % peers.length]!;
    if (!this.begin(peer, 'scheduled', undefined, out)) this.nextStart = now + this.intervalTicks();
  }

  /** A message of the anti-entropy protocol; false when it is not one. */
  onMessage(from: string, message: PeerMessage, out: Out[]): boolean {
    switch (message.t) {
      case 'ae-tree':
      case 'ae-keys':
      case 'ae-sync':
        if (this.waiting.length === 0 && !(this.costly(from, message) && (this.keysBudget <= 0 || this.bytesBudget <= 0))) this.serve(from, message, out);
        else if (this.waiting.length < WAITING_MAX) this.waiting.push({ from, message });
        else this.refuse(from, message.rid, 'OVERLOADED', 'too many anti-entropy requests wait here', out);
        return true;
      case 'ae-done':
        this.onDone(from, message);
        return true;
      case 'ae-tree-ok':
        this.onTreeOk(from, message, out);
        return true;
      case 'ae-keys-ok':
        this.onKeysOk(from, message, out);
        return true;
      case 'ae-sync-ok':
        this.onSyncOk(from, message, out);
        return true;
      default:
        return false;
    }
  }

  /**
   * Whether serving a request costs this node budget: listing keys (a step at the leaves, or
   * `ae-keys`) and merging or sending records (`ae-sync`). Whatever a peer asks of this node
   * is paid from this node's budget, whichever side opened the exchange, so a node two peers
   * repair at once works no faster than its own (latency-driven) rate allows. A costly
   * request waits while the budget is spent; its sender has one request in flight, so it
   * waits too.
   */
  private costly(from: string, message: AeTree | AeKeys | AeSync): boolean {
    if (message.t !== 'ae-tree') return true;
    const session = this.sessions.get(`${from} ${message.xid}`);
    return session !== undefined && message.of.length > 0 && message.level === session.tree.levels.length - 1;
  }

  private serve(from: string, message: AeTree | AeKeys | AeSync, out: Out[]): void {
    if (message.t === 'ae-tree') this.onTree(from, message, out);
    else if (message.t === 'ae-keys') this.onKeys(from, message, out);
    else this.onSync(from, message, out);
  }

  /** An error answer (or an undeliverable request) for `rid`: true when it ended this node's exchange. */
  onError(from: string, rid: number, reason: string): boolean {
    const ex = this.exchange;
    if (ex === undefined || ex.peer !== from || ex.awaiting?.rid !== rid) return false;
    this.abandon(ex, reason);
    return true;
  }

  onPeerUnreachable(node: string): void {
    const ex = this.exchange;
    if (ex !== undefined && ex.peer === node) this.abandon(ex, 'peer unreachable');
    for (let i = this.waiting.length - 1; i >= 0; i--) if (this.waiting[i]!.from === node) this.waiting.splice(i, 1);
    for (const [id, session] of this.sessions) if (session.from === node) this.sessions.delete(id);
  }

  // ---- initiator ----

  /** Peers alive that share ranges with this node on the current ring, sorted. */
  private peersSharing(): string[] {
    const ring = this.deps.ring();
    if (!ring.has(this.deps.nodeId)) return [];
    return ring.members
      .map((m) => m.id)
      .filter((id) => id !== this.deps.nodeId && this.deps.alive(id));
  }

  private begin(peer: string, kind: ExchangeKind, bucket: string | undefined, out: Out[], transfer?: QueuedTransfer): boolean {
    let scope: Scope;
    let bounds: readonly Span[];
    if (transfer !== undefined) {
      bounds = transfer.spans;
      scope = { spans: bounds };
    } else {
      const ring = this.deps.ring();
      const n = this.deps.replicas();
      bounds = sharedBounds(ring, this.deps.nodeId, peer, n);
      scope = { ring: ringId(ring), n };
    }
    if (bounds.length === 0 || !this.deps.alive(peer)) return false;
    const leaves = TreeLeaves.of(this.deps.local.segments.depth, bounds);
    const tree = this.treeOf(leaves);
    const ex: Exchange = {
      xid: this.xidNext++,
      peer,
      kind,
      onDone: transfer?.done,
      scope,
      bucket,
      startedAt: this.now,
      leaves,
      tree,
      salt: this.deps.salt() >>> 0,
      opened: false,
      phase: 'tree',
      steps: [{ level: 0, parents: [] }],
      asked: [],
      askedLevel: 0,
      differing: [],
      keysQueue: [],
      leavesDone: 0,
      batches: [],
      awaiting: undefined,
      keysCompared: 0,
      keysRepaired: 0,
    };
    this.exchange = ex;
    this.advance(ex, out);
    return true;
  }

  /** Sends the exchange's next request, if its budget allows; finishes it when nothing is left. */
  private advance(ex: Exchange, out: Out[]): void {
    const batch = ex.batches[0];
    if (batch !== undefined) {
      if (this.keysBudget <= 0 || this.bytesBudget <= 0) return; // the next tick refills
      ex.batches.shift();
      ex.phase = 'sync';
      this.keysBudget -= batch.push.length + batch.pull.length;
      this.bytesBudget -= batch.bytes;
      this.recordsSent += batch.push.length;
      const pull = new Uint8Array(batch.pull.length * ITEM_WIRE_BYTES);
      batch.pull.forEach((item, i) => writeItem(pull, i * ITEM_WIRE_BYTES, item));
      this.request(ex, { t: 'ae-sync', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, push: batch.push, pull }, batch.bytes + pull.length, out);
      return;
    }
    const step = ex.steps[0];
    if (step !== undefined) {
      // The answer to a step at the leaves carries key lists, which cost budget to compare.
      if (step.level === ex.tree.levels.length - 1 && (this.keysBudget <= 0 || this.bytesBudget <= 0)) return;
      ex.steps.shift();
      ex.phase = 'tree';
      ex.asked = step.level === 0 ? [0] : childrenOf(ex.tree, step.level - 1, step.parents);
      ex.askedLevel = step.level;
      const h = wireHashes(ex.tree, step.level, ex.asked, ex.salt);
      const message: AeTree = { t: 'ae-tree', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, level: step.level, of: [...step.parents], h };
      if (ex.opened) return this.request(ex, message, 8 + step.parents.length * 2 + h.length, out);
      ex.opened = true;
      const scope: Pick<AeTree, 'ring' | 'n' | 'spans'> =
        'ring' in ex.scope ? { ring: ex.scope.ring, n: ex.scope.n } : { spans: ex.scope.spans.map((s): [number, number] => [s.fromToken, s.toToken]) };
      const bytes = 24 + h.length + (scope.spans === undefined ? 24 : scope.spans.length * 10);
      const open: AeTree = {
        ...message,
        depth: ex.leaves.depth,
        lc: ex.tree.leafCount,
        s: ex.salt,
        ...scope,
        ...(ex.bucket === undefined ? {} : { b: ex.bucket }),
        ...(ex.kind === 'scheduled' ? {} : { f: true as const }),
      };
      return this.request(ex, open, bytes, out);
    }
    if (ex.keysQueue.length > 0) {
      if (this.keysBudget <= 0 || this.bytesBudget <= 0) return; // key lists cost too; the next tick refills
      ex.phase = 'keys';
      ex.asked = ex.keysQueue.splice(0, LEAVES_PER_REQUEST);
      this.request(ex, { t: 'ae-keys', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, leaves: ex.asked }, 8 + ex.asked.length * 2, out);
      return;
    }
    this.finish(ex, out);
  }

  private request(ex: Exchange, message: AeTree | AeKeys | AeSync, bytes: number, out: Out[]): void {
    ex.awaiting = { rid: message.rid, deadline: this.now + this.timeoutTicks() };
    this.bytesSent += bytes;
    this.send(ex.peer, message, out);
  }

  /** The answer to the request in flight, if `rid` is it. */
  private answered(from: string, rid: number): Exchange | undefined {
    const ex = this.exchange;
    if (ex === undefined || ex.peer !== from || ex.awaiting?.rid !== rid) return undefined;
    ex.awaiting = undefined;
    return ex;
  }

  private onTreeOk(from: string, message: AeTreeOk, out: Out[]): void {
    const ex = this.answered(from, message.rid);
    if (ex === undefined) return;
    const sent = ex.asked;
    const level = ex.askedLevel;
    const leafLevel = ex.tree.levels.length - 1;
    this.bytesReceived += 8 + message.d.length + (message.h?.length ?? 0) + (message.items?.length ?? 0);
    if (message.d.length !== Math.ceil(sent.length / 8)) return this.abandon(ex, `the peer answered for ${message.d.length * 8} nodes, not ${sent.length}`);
    this.treeNodesCompared += sent.length;
    const differing = sent.filter((_, i) => bitSet(message.d, i));
    if (level === leafLevel) {
      const items = message.items ?? EMPTY;
      const covered = message.cov ?? 0;
      if (covered > differing.length || (covered === 0) !== (differing.length === 0) || items.length % ITEM_WIRE_BYTES !== 0) {
        return this.abandon(ex, `the peer's key lists do not fit the ${differing.length} differing leaves`);
      }
      ex.differing.push(...differing);
      ex.keysQueue.push(...differing.slice(covered));
      if (covered > 0) {
        const failure = this.compareItems(ex, differing.slice(0, covered), items);
        if (failure !== undefined) return this.abandon(ex, failure);
      }
      return this.advance(ex, out);
    }
    const children = childrenOf(ex.tree, level, differing);
    const theirs = message.h ?? EMPTY;
    if (theirs.length !== children.length * NODE_WIRE_BYTES) return this.abandon(ex, `the peer's tree does not match (${theirs.length / NODE_WIRE_BYTES} children, mine ${children.length})`);
    this.treeNodesCompared += children.length;
    const mine = wireHashes(ex.tree, level + 1, children, ex.salt);
    const next = children.filter((_, i) => !sameWireHash(mine, theirs, i));
    if (level + 1 === leafLevel) {
      ex.differing.push(...next);
      ex.keysQueue.push(...next);
    } else {
      const per = parentsPerStep(ex.tree.fanout);
      for (let i = 0; i < next.length; i += per) ex.steps.push({ level: level + 2, parents: next.slice(i, i + per) });
    }
    this.advance(ex, out);
  }

  private onKeysOk(from: string, message: AeKeysOk, out: Out[]): void {
    const ex = this.answered(from, message.rid);
    if (ex === undefined) return;
    this.bytesReceived += 8 + message.items.length;
    if (message.items.length % ITEM_WIRE_BYTES !== 0 || message.cov < 1 || message.cov > ex.asked.length) return this.abandon(ex, 'the peer sent a malformed key list');
    // Leaves the answer did not cover are asked for next.
    ex.keysQueue.unshift(...ex.asked.slice(message.cov));
    const failure = this.compareItems(ex, ex.asked.slice(0, message.cov), message.items);
    if (failure !== undefined) return this.abandon(ex, failure);
    this.advance(ex, out);
  }

  /**
   * Compares the peer's item list for `leaves` with this node's scan of them and queues the
   * sync batches: push what the peer's list lacks, pull what this node's lacks. Returns why it
   * failed, if it did.
   */
  private compareItems(ex: Exchange, leaves: readonly number[], items: Uint8Array): string | undefined {
    const theirs = new Set<number>();
    const count = items.length / ITEM_WIRE_BYTES;
    for (let i = 0; i < count; i++) theirs.add(readItem(items, i * ITEM_WIRE_BYTES));
    this.bytesBudget -= items.length;
    const push: { b: string; k: string; obj: KvObject }[] = [];
    let mineCount = 0;
    try {
      for (const span of mergedSpans(ex.leaves, leaves)) {
        for (const entry of this.deps.scan(span.fromToken, span.toToken)) {
          if (ex.bucket !== undefined && entry.bucket !== ex.bucket) continue;
          const object = this.deps.local.newest(entry, entry.object);
          if (object === undefined) continue;
          mineCount++;
          if (theirs.delete(itemOf(entry.bucket, entry.key, object, ex.salt))) continue;
          push.push({ b: entry.bucket, k: entry.key, obj: object });
        }
      }
    } catch (error) {
      return `local scan failed: ${String(error)}`;
    }
    const compared = Math.max(mineCount, count);
    ex.keysCompared += compared;
    ex.leavesDone += leaves.length;
    this.keysBudget -= (mineCount + count) * COMPARE_COST;
    this.work += mineCount;
    if (this.repairRun !== undefined && ex.kind === 'repair') this.repairRun.keysCompared += compared;
    ex.batches.push(...batchesOf(push, [...theirs], this.settings.batchKeys));
    return undefined;
  }

  private onSyncOk(from: string, message: AeSyncOk, out: Out[]): void {
    const ex = this.answered(from, message.rid);
    if (ex === undefined) return;
    this.recordsReceived += message.objs.length;
    const merged = this.merge(message.objs, out, (failure, done) => {
      if (failure !== undefined) this.deps.log('warn', 'anti-entropy: storing repaired keys failed', { peer: from, reason: failure }, done);
    });
    if (merged === 'invalid') return this.abandon(ex, 'the peer sent a malformed object');
    this.bytesReceived += merged.bytes;
    this.bytesBudget -= merged.bytes;
    ex.keysRepaired += merged.changed;
    if (this.repairRun !== undefined && ex.kind === 'repair') this.repairRun.keysRepaired += merged.changed;
    ex.phase = ex.batches.length > 0 ? 'sync' : 'keys';
    this.advance(ex, out);
  }

  private finish(ex: Exchange, out: Out[]): void {
    this.exchange = undefined;
    this.completed++;
    if (ex.differing.length === 0) this.inSync++;
    this.noteExchange(ex.peer, ex.startedAt, true);
    this.send(ex.peer, { t: 'ae-done', from: this.deps.nodeId, xid: ex.xid }, out);
    if (ex.differing.length > 0 || ex.keysRepaired > 0) {
      const fields = { peer: ex.peer, kind: ex.kind, leavesDiffering: ex.differing.length, keysCompared: ex.keysCompared, keysRepaired: ex.keysRepaired, ticks: this.now - ex.startedAt };
      this.deps.log('info', 'anti-entropy exchange done', fields, out);
    }
    this.afterExchange(ex, true);
    ex.onDone?.({ ok: true, reason: undefined, keysCompared: ex.keysCompared, keysRepaired: ex.keysRepaired });
  }

  private abandon(ex: Exchange, reason: string): void {
    if (this.exchange !== ex) return;
    this.exchange = undefined;
    this.failed++;
    this.noteExchange(ex.peer, undefined, false);
    this.lastFailure = { peer: ex.peer, reason, tick: this.now };
    this.afterExchange(ex, false);
    ex.onDone?.({ ok: false, reason, keysCompared: ex.keysCompared, keysRepaired: ex.keysRepaired });
  }

  private afterExchange(ex: Exchange, ok: boolean): void {
    const repair = this.repairRun;
    if (ex.kind === 'repair' && repair !== undefined) {
      if (ok) repair.done++;
      else repair.failed++;
      if (repair.queue.length > 0) {
        this.nextStart = this.now + 1;
        return;
      }
      this.endRepair();
    }
    this.nextStart = this.now + this.intervalTicks();
  }

  private endRepair(): void {
    const run = this.repairRun;
    if (run === undefined) return;
    this.repairRun = undefined;
    this.repairLast = {
      bucket: run.bucket,
      peersTotal: run.total,
      peersDone: run.done,
      peersFailed: run.failed,
      keysCompared: run.keysCompared,
      keysRepaired: run.keysRepaired,
      done: true,
    };
  }

  private noteExchange(peer: string, startedAt: number | undefined, ok: boolean): void {
    let p = this.peers.get(peer);
    if (p === undefined) this.peers.set(peer, (p = { last: undefined, completed: 0, failed: 0 }));
    if (ok) {
      p.completed++;
      if (startedAt !== undefined && (p.last === undefined || startedAt > p.last)) p.last = startedAt;
    } else {
      p.failed++;
    }
  }

  // ---- responder ----

  /** Whether this node runs an exchange, or serves one, with a peer other than `peer`. */
  private busyWithOtherThan(peer: string): boolean {
    if (this.exchange !== undefined && this.exchange.peer !== peer) return true;
    for (const session of this.sessions.values()) if (session.from !== peer) return true;
    return false;
  }

  private onTree(from: string, message: AeTree, out: Out[]): void {
    const id = `${from} ${message.xid}`;
    let session = this.sessions.get(id);
    const scheduled = message.ring !== undefined && message.f !== true;
    if (scheduled && this.pressured) {
      // Scheduled exchanges wait while this node's clients are slowed; repairs and transfers do not.
      return this.refuse(from, message.rid, 'OVERLOADED', 'client latency is up here; anti-entropy backs off', out);
    }
    if (scheduled && this.busyWithOtherThan(from)) {
      // One scheduled exchange at a time per node: two peers repairing it at once would ship it the same records twice.
      return this.refuse(from, message.rid, 'UNAVAILABLE', 'this node is in an exchange with another peer', out);
    }
    if (message.ring !== undefined || message.spans !== undefined) {
      // One exchange per pair at a time, or both would ship the same records: when two nodes
      // open exchanges with each other at once, the one from the smaller id goes on.
      const mine = this.exchange;
      if (mine !== undefined && mine.peer === from) {
        if (this.deps.nodeId < from) return this.refuse(from, message.rid, 'UNAVAILABLE', 'an exchange between us is already running', out);
        this.abandon(mine, 'the peer opened an exchange with this node at the same time');
      }
      if (message.depth !== undefined && message.depth !== this.deps.local.segments.depth) {
        return this.refuse(from, message.rid, 'INVALID_REQUEST', `segment depth ${message.depth} differs from this node's ${this.deps.local.segments.depth}`, out);
      }
      let bounds: Span[];
      if (message.spans !== undefined) {
        bounds = message.spans.map(([fromToken, toToken]) => ({ fromToken, toToken }));
      } else {
        const ring = this.deps.ring();
        if (ringId(ring) !== message.ring) {
          return this.refuse(from, message.rid, 'UNAVAILABLE', `our rings differ (mine ${ringId(ring)}, yours ${String(message.ring)}); try again once membership has settled`, out);
        }
        bounds = sharedBounds(ring, from, this.deps.nodeId, message.n ?? this.deps.replicas());
      }
      if (bounds.length === 0) return this.refuse(from, message.rid, 'INVALID_REQUEST', 'we share no ranges', out);
      if (message.s === undefined || message.lc === undefined) return this.refuse(from, message.rid, 'INVALID_REQUEST', 'an exchange opens with its salt and leaf count', out);
      const leaves = TreeLeaves.of(this.deps.local.segments.depth, bounds);
      if (leaves.count !== message.lc) {
        return this.refuse(from, message.rid, 'INVALID_REQUEST', `our trees differ (${message.lc} leaves, mine ${leaves.count})`, out);
      }
      session = { from, xid: message.xid, openedAt: this.now, leaves, tree: this.treeOf(leaves), bucket: message.b, salt: message.s, forced: message.f === true, pullable: new Map(), lastUsed: this.now };
      this.sessions.set(id, session);
      while (this.sessions.size > SESSIONS_MAX) this.sessions.delete(this.sessions.keys().next().value as string);
    }
    if (session === undefined) return this.refuse(from, message.rid, 'UNAVAILABLE', 'no such exchange here (expired, or this node restarted)', out);
    session.lastUsed = this.now;
    const tree = session.tree;
    const leafLevel = tree.levels.length - 1;
    const { level, of } = message;
    if (level > leafLevel || (level === 0) !== (of.length === 0) || of.length > parentsPerStep(tree.fanout)) {
      return this.refuse(from, message.rid, 'INVALID_REQUEST', `level ${level} with ${of.length} parents does not fit the tree`, out);
    }
    const above = level === 0 ? 1 : tree.levels[level - 1]!.length / 4;
    for (const parent of of) if (parent >= above) return this.refuse(from, message.rid, 'INVALID_REQUEST', `node ${parent} is not in level ${level - 1}`, out);
    const nodes = level === 0 ? [0] : childrenOf(tree, level - 1, of);
    if (message.h.length !== nodes.length * NODE_WIRE_BYTES) {
      return this.refuse(from, message.rid, 'INVALID_REQUEST', `${message.h.length} bytes of hashes for ${nodes.length} nodes`, out);
    }
    const mine = wireHashes(tree, level, nodes, session.salt);
    const d = new Uint8Array(Math.ceil(nodes.length / 8));
    const differing: number[] = [];
    nodes.forEach((node, i) => {
      if (sameWireHash(mine, message.h, i)) return;
      d[i >> 3]! |= 1 << (i & 7);
      differing.push(node);
    });
    if (level < leafLevel) {
      const h = wireHashes(tree, level + 1, childrenOf(tree, level, differing), session.salt);
      this.bytesSent += 8 + d.length + h.length;
      return this.send(from, { t: 'ae-tree-ok', from: this.deps.nodeId, rid: message.rid, d, h }, out);
    }
    // The nodes are leaves: answer with the key lists of those that differ, whole leaves, while they fit.
    let list: ItemList;
    try {
      list = this.itemsUnder(session, differing, ITEMS_PER_ANSWER);
    } catch (error) {
      return this.refuse(from, message.rid, 'STORAGE', `local scan failed: ${String(error)}`, out);
    }
    this.bytesSent += 8 + d.length + list.items.length;
    this.send(from, { t: 'ae-tree-ok', from: this.deps.nodeId, rid: message.rid, d, items: list.items, cov: list.leaves }, out);
  }

  private onKeys(from: string, message: AeKeys, out: Out[]): void {
    const session = this.sessions.get(`${from} ${message.xid}`);
    if (session === undefined) return this.refuse(from, message.rid, 'UNAVAILABLE', 'no such exchange here (expired, or this node restarted)', out);
    session.lastUsed = this.now;
    for (const leaf of message.leaves) if (leaf >= session.leaves.count) return this.refuse(from, message.rid, 'INVALID_REQUEST', `leaf ${leaf} is not in the tree`, out);
    let list: ItemList;
    try {
      list = this.itemsUnder(session, message.leaves, ITEMS_PER_ANSWER);
    } catch (error) {
      return this.refuse(from, message.rid, 'STORAGE', `local scan failed: ${String(error)}`, out);
    }
    this.bytesSent += 8 + list.items.length;
    this.send(from, { t: 'ae-keys-ok', from: this.deps.nodeId, rid: message.rid, items: list.items, cov: list.leaves }, out);
  }

  /**
   * This node's item list for `leaves`, in order, whole leaves while it holds fewer than `max`
   * items (the first leaf always); what it covers becomes the session's pullable keys. Throws
   * when the store's scan does.
   */
  private itemsUnder(session: Session, leaves: readonly number[], max: number): ItemList {
    const items: number[] = [];
    const pullable = new Map<number, Slot[]>();
    let covered = 0;
    for (const leaf of leaves) {
      const span = session.leaves.leaf(leaf);
      if (covered > 0 && items.length >= max) break;
      for (const entry of this.deps.scan(span.fromToken, span.toToken)) {
        if (session.bucket !== undefined && entry.bucket !== session.bucket) continue;
        const object = this.deps.local.newest(entry, entry.object);
        if (object === undefined) continue;
        const item = itemOf(entry.bucket, entry.key, object, session.salt);
        items.push(item);
        const slot = { bucket: entry.bucket, key: entry.key };
        const same = pullable.get(item);
        if (same === undefined) pullable.set(item, [slot]);
        else same.push(slot);
      }
      covered++;
    }
    session.pullable = pullable;
    this.keysBudget -= items.length * COMPARE_COST;
    this.bytesBudget -= items.length * ITEM_WIRE_BYTES;
    this.work += items.length;
    const bytes = new Uint8Array(items.length * ITEM_WIRE_BYTES);
    items.forEach((item, i) => writeItem(bytes, i * ITEM_WIRE_BYTES, item));
    return { items: bytes, leaves: covered };
  }

  private onSync(from: string, message: AeSync, out: Out[]): void {
    if (message.pull.length % ITEM_WIRE_BYTES !== 0) return this.refuse(from, message.rid, 'PROTOCOL', 'malformed pull list in ae-sync', out);
    const pulled: Slot[] = [];
    if (message.pull.length > 0) {
      const session = this.sessions.get(`${from} ${message.xid}`);
      if (session === undefined) return this.refuse(from, message.rid, 'UNAVAILABLE', 'no such exchange here (expired, or this node restarted)', out);
      session.lastUsed = this.now;
      for (let at = 0; at < message.pull.length; at += ITEM_WIRE_BYTES) pulled.push(...(session.pullable.get(readItem(message.pull, at)) ?? []));
    }
    this.recordsReceived += message.push.length;
    const answer = (failure: string | undefined, done: Out[]): void => {
      if (failure !== undefined) return this.refuse(from, message.rid, 'STORAGE', `storage write failed: ${failure}`, done);
      const objs: { b: string; k: string; obj: KvObject }[] = [];
      try {
        for (const slot of pulled) {
          const object = this.deps.local.latest(slot);
          if (object === undefined) continue;
          objs.push({ b: slot.bucket, k: slot.key, obj: object });
          this.bytesSent += slot.bucket.length + slot.key.length + objectBytes(object);
        }
      } catch (error) {
        return this.refuse(from, message.rid, 'STORAGE', `local read failed: ${String(error)}`, done);
      }
      this.recordsSent += objs.length;
      this.send(from, { t: 'ae-sync-ok', from: this.deps.nodeId, rid: message.rid, objs }, done);
    };
    const merged = this.merge(message.push, out, answer);
    if (merged === 'invalid') return this.refuse(from, message.rid, 'PROTOCOL', 'malformed object in ae-sync', out);
    this.bytesReceived += merged.bytes;
    this.keysBudget -= message.push.length + pulled.length;
    this.bytesBudget -= merged.bytes;
  }

  private onDone(from: string, message: AeDone): void {
    const id = `${from} ${message.xid}`;
    const session = this.sessions.get(id);
    if (session === undefined) return;
    this.sessions.delete(id);
    this.noteExchange(from, session.openedAt, true);
  }

  // ---- both ----

  /**
   * Merges records into the local copies; `done` runs once they (and anything pending for
   * the keys that did not change) are durable. Returns how many keys changed and the records'
   * estimated bytes, or 'invalid' (nothing written, `done` never called) when a record is
   * malformed.
   */
  private merge(items: readonly { b: string; k: string; obj: unknown }[], out: Out[], done: (failure: string | undefined, out: Out[]) => void): { changed: number; bytes: number } | 'invalid' {
    const checked: { b: string; k: string; object: KvObject }[] = [];
    let bytes = 0;
    for (const item of items) {
      const object = checkObject(item.obj);
      if (object === 'invalid') return 'invalid';
      checked.push({ b: item.b, k: item.k, object });
      bytes += item.b.length + item.k.length + objectBytes(object);
    }
    const writes: (Slot & { object: KvObject })[] = [];
    const unchanged: Slot[] = [];
    for (const { b, k, object } of checked) {
      const slot = { bucket: b, key: k };
      let current: KvObject | undefined;
      try {
        current = this.deps.local.latest(slot);
      } catch (error) {
        done(`local read failed: ${String(error)}`, out);
        return { changed: 0, bytes };
      }
      if (current !== undefined && dvvDescends(current, object)) unchanged.push(slot);
      else writes.push({ ...slot, object: current === undefined ? object : sync(current, object) });
    }
    this.keysRepaired += writes.length;
    let waiting = unchanged.length + 1;
    let failed: string | undefined;
    const oneDone = (failure: string | undefined, later: Out[]): void => {
      failed ??= failure;
      if (--waiting === 0) done(failed, later);
    };
    for (const slot of unchanged) this.deps.local.afterPending(slot, out, oneDone);
    if (writes.length > 0) this.deps.local.write(writes, out, oneDone);
    else oneDone(undefined, out);
    return { changed: writes.length, bytes };
  }

  /** The tree of `leaves` over this node's segment hashes; partial leaves hashed from a scan. */
  private treeOf(leaves: TreeLeaves): HashTree {
    return buildTree(this.deps.local.segments, leaves, {
      partialHash: (_leaf, span) => keySetHash(this.digestsIn(span)),
    });
  }

  private *digestsIn(span: TokenBounds): Iterable<{ bucket: string; key: string; digest: Uint8Array }> {
    for (const entry of this.deps.scan(span.fromToken, span.toToken)) {
      const object = this.deps.local.newest(entry, entry.object);
      if (object === undefined) continue;
      yield { bucket: entry.bucket, key: entry.key, digest: objectDigest(object) };
    }
  }

  private refuse(to: string, rid: number, code: ErrorCode, msg: string, out: Out[]): void {
    this.send(to, { t: 'rerr', from: this.deps.nodeId, rid, code, msg }, out);
  }

  private send(node: string, message: PeerMessage, out: Out[]): void {
    this.deps.send(node, message, out);
  }

  private intervalTicks(): number {
    return Math.max(1, Math.round(this.settings.intervalMs / this.deps.tickMs));
  }

  private timeoutTicks(): number {
    return Math.max(1, Math.round(this.settings.timeoutMs / this.deps.tickMs));
  }
}

/**
 * The spans of some leaves, in the order given, with leaves that continue each other joined:
 * one store scan for a run of neighbouring leaves instead of one each.
 */
function mergedSpans(leaves: TreeLeaves, indexes: readonly number[]): Span[] {
  const out: { fromToken: number; toToken: number }[] = [];
  for (const i of indexes) {
    const span = leaves.leaf(i);
    const last = out[out.length - 1];
    if (last !== undefined && last.toToken === span.fromToken && last.fromToken !== span.toToken) last.toToken = span.toToken;
    else out.push({ fromToken: span.fromToken, toToken: span.toToken });
  }
  return out;
}

/** A ring's checksum as an exchange names it: 64 bits of it tell two rings apart as well as all 256. */
function ringId(ring: Ring): string {
  return ring.checksum.slice(0, 16);
}

/** The children of `parents` (nodes at `level`) at the next level, in order. */
function childrenOf(tree: HashTree, level: number, parents: readonly number[]): number[] {
  const size = tree.levels[level + 1]!.length / 4;
  const out: number[] = [];
  for (const parent of parents) {
    const end = Math.min(size, (parent + 1) * tree.fanout);
    for (let child = parent * tree.fanout; child < end; child++) out.push(child);
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/** An item list as sent: `leaves` of the leaves asked about are covered by `items`. */
interface ItemList {
  readonly items: Uint8Array;
  readonly leaves: number;
}

/** Parents one step names: the answer holds at most fan-out² of their grandchildren's hashes, up to EXCHANGE_NODES_MAX. */
function parentsPerStep(fanout: number): number {
  return Math.max(1, Math.floor(EXCHANGE_NODES_MAX / (fanout * fanout)));
}

/** The salted 4-byte cut of the hashes of `nodes` at `level`, in order. */
function wireHashes(tree: HashTree, level: number, nodes: readonly number[], salt: number): Uint8Array {
  const words = tree.levels[level]!;
  const out = new Uint8Array(nodes.length * NODE_WIRE_BYTES);
  const view = new DataView(out.buffer);
  nodes.forEach((node, i) => {
    const at = node * 4;
    view.setUint32(i * NODE_WIRE_BYTES, saltedWord(words[at]!, words[at + 1]!, words[at + 2]!, words[at + 3]!, salt), true);
  });
  return out;
}

function sameWireHash(a: Uint8Array, b: Uint8Array, i: number): boolean {
  const at = i * NODE_WIRE_BYTES;
  return a[at] === b[at] && a[at + 1] === b[at + 1] && a[at + 2] === b[at + 2] && a[at + 3] === b[at + 3];
}

function bitSet(bitmap: Uint8Array, i: number): boolean {
  return (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
}

const itemHasher = new KeyHasher();
const itemWords = new Uint32Array(4);
/** The second word of an item is salted apart from the first. */
const ITEM_SALT_2 = 0x9e3779b9;

/** A key's item under `salt`: 48 bits (as a number) of its key hash with this version's digest. */
function itemOf(bucket: string, key: string, object: KvObject, salt: number): number {
  itemHasher.setKey(bucket, key);
  itemHasher.hashInto(objectDigest(object), itemWords);
  const [w0, w1, w2, w3] = itemWords as unknown as [number, number, number, number];
  const low = saltedWord(w0, w1, w2, w3, salt);
  const high = saltedWord(w3, w2, w1, w0, (salt ^ ITEM_SALT_2) >>> 0) & 0xffff;
  return high * 0x1_0000_0000 + low;
}

function writeItem(out: Uint8Array, at: number, item: number): void {
  const low = item % 0x1_0000_0000;
  const high = (item - low) / 0x1_0000_0000;
  out[at] = low;
  out[at + 1] = low >>> 8;
  out[at + 2] = low >>> 16;
  out[at + 3] = low >>> 24;
  out[at + 4] = high;
  out[at + 5] = high >>> 8;
}

function readItem(bytes: Uint8Array, at: number): number {
  const low = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  return (bytes[at + 4]! | (bytes[at + 5]! << 8)) * 0x1_0000_0000 + low;
}

/** Push and pull lists cut into sync messages of at most `keysMax` records and SYNC_BYTES_MAX bytes. */
function batchesOf(push: { b: string; k: string; obj: KvObject }[], pull: number[], keysMax: number): SyncBatch[] {
  const out: SyncBatch[] = [];
  let current: { push: { b: string; k: string; obj: KvObject }[]; pull: number[]; bytes: number } = { push: [], pull: [], bytes: 0 };
  const flush = (): void => {
    if (current.push.length + current.pull.length === 0) return;
    out.push(current);
    current = { push: [], pull: [], bytes: 0 };
  };
  for (const item of push) {
    const bytes = item.b.length + item.k.length + objectBytes(item.obj);
    if (current.push.length + current.pull.length >= keysMax || (current.bytes + bytes > SYNC_BYTES_MAX && current.push.length > 0)) flush();
    current.push.push(item);
    current.bytes += bytes;
  }
  for (const item of pull) {
    if (current.push.length + current.pull.length >= keysMax) flush();
    current.pull.push(item);
  }
  flush();
  return out;
}
