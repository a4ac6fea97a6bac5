/**
 * Anti-entropy: pairs of replicas compare hash trees of the ranges they share and ship each
 * other only the records that differ (Dynamo §4.7, riak_kv's active anti-entropy).
 *
 * One exchange, run by its initiator against one peer, one request in flight at a time:
 *
 * 1. Tree. The initiator builds the tree of the spans both hold (ranges.ts) from its segment
 *    hashes and asks the peer for its hashes of the root (`ae-tree`, which opens a session
 *    there with the ring's checksum and n, so the peer builds the same tree). Level by level
 *    it asks only for the children of the nodes that differed, until it knows the differing
 *    leaves. The cost follows the divergence: a lone difference costs fan-out hashes per level.
 * 2. Keys. For a chunk of differing leaves it asks for the peer's (bucket, key, digest) list
 *    under them (`ae-keys`) and compares it with its own scan of the same leaves.
 * 3. Sync. It sends what the peer lacks or holds differently and names what it lacks or
 *    holds differently (`ae-sync`); the peer merges what it got (the normal DVV merge, so
 *    tombstones and typed values take part like any version), and answers, once that is
 *    durable, with its merged copies of the keys named, which the initiator merges. Both sides
 *    then hold the same version: records shipped are the records that differ.
 * 4. Done. `ae-done` closes the peer's session; both note when the exchange started, which is
 *    the moment up to which their shared ranges are known to agree (tombstone reaping waits
 *    for that, see `confirms`).
 *
 * Resumable. An exchange that fails (the peer went away, a timeout, a refusal) is dropped;
 * everything already merged stays merged and leaves those keys equal, so the next exchange
 * with that peer descends only into what still differs.
 *
 * Throttled. Records shipped are paid from a budget of keys and bytes per second, refilled
 * each tick; the shell reports foreground latency (`onLoad`), and when it rises above its
 * slow average the refill rate halves (to 1/32 at worst), recovering as latency does.
 * `repair` forces a pass over every peer now, at a budget `REPAIR_BUDGET_FACTOR` larger.
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
  objectDigest,
  TreeLeaves,
  equalDigests,
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
 * Bytes of a node hash on the wire: the first 8 of its 16. A difference two replicas' nodes hide
 * from each other needs their hashes to agree in 64 bits by chance, which at one comparison per
 * node per exchange is as good as never, and halves what a descent costs.
 */
const WIRE_HASH_BYTES = 8;

/** Parents named in one `ae-tree`: their children's hashes fill one answer of at most EXCHANGE_NODES_MAX nodes. */
const PARENTS_PER_REQUEST = EXCHANGE_NODES_MAX / 16;

/**
 * Leaves asked for in one `ae-keys`: about 15 keys each at a million keys, so some 500 keys
 * for each side to scan and digest, a few milliseconds of one event-loop turn.
 */
const LEAVES_PER_REQUEST = 32;
/** Comparing a key under a differing leaf costs this fraction of shipping one, against the keys budget. */
const COMPARE_COST = 1 / 8;
/** Bytes of records in one `ae-sync` at most (records are never split). */
const SYNC_BYTES_MAX = 4 * 1024 * 1024;
/** A forced repair ships this many times the configured budget. */
export const REPAIR_BUDGET_FACTOR = 16;
/** Sessions a responder keeps open at once; past it the oldest is dropped. */
const SESSIONS_MAX = 16;
/** The slowest the budget refills under foreground pressure: 1/32 of the configured rate. */
const PRESSURE_FACTOR_MIN = 1 / 32;
/** The rate a node starts at (after a restart it is most likely to have things to repair, and to be cold). */
const RATE_START = 1 / 8;
/** Growth of the rate per second while latency stays at its usual level (or nothing reports any). */
const RATE_RECOVERY = 1.25;
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
  opened: boolean;
  rootAsked: boolean;
  phase: 'tree' | 'keys' | 'sync';
  /** The level being compared (0: the root). */
  level: number;
  /** Nodes of the level above `level` that differed and whose children are still to ask about. */
  queue: number[];
  /** Nodes of `level` that differed: the parents to ask about at the next level. */
  next: number[];
  /** The nodes asked about in the request in flight. */
  asked: number[];
  differing: number[];
  leafCursor: number;
  /** Sync batches still to send for the current chunk of leaves. */
  batches: SyncBatch[];
  awaiting: Awaiting | undefined;
  keysCompared: number;
  keysRepaired: number;
}

interface SyncBatch {
  readonly push: { b: string; k: string; obj: KvObject }[];
  readonly pull: [string, string][];
  readonly bytes: number;
}

interface Session {
  readonly from: string;
  readonly xid: number;
  readonly openedAt: number;
  readonly leaves: TreeLeaves;
  readonly tree: HashTree;
  readonly bucket: string | undefined;
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
  private shippedAtLoad = 0;
  private latencyBaseline: number | undefined;
  private repairRun: Repair | undefined;
  private readonly transfers: QueuedTransfer[] = [];
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
              leavesDone: Math.min(ex.leafCursor, ex.differing.length),
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
    const baseline = this.latencyBaseline ?? latencyMs;
    // Shipping records raises the latency it is judged by: the baseline learns only from
    // windows in which this node shipped and received none.
    const shipped = this.recordsSent + this.recordsReceived;
    if (shipped === this.shippedAtLoad) this.latencyBaseline = baseline + (latencyMs - baseline) * 0.2;
    this.shippedAtLoad = shipped;
    if (latencyMs > baseline * 1.25 + 1) {
      this.rate = Math.max(PRESSURE_FACTOR_MIN, this.rate / 2);
      this.pressureTick = this.now;
    } else {
      this.rate = Math.min(1, this.rate * RATE_RECOVERY);
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
    const forced = this.repairRun !== undefined || this.exchange?.kind === 'transfer' || this.transfers.length > 0;
    const factor = forced ? REPAIR_BUDGET_FACTOR : this.rate;
    const perTick = this.deps.tickMs / 1000;
    // At most one second of budget accumulates while nothing is shipped.
    this.keysBudget = Math.min(this.settings.keysPerSecond * factor, this.keysBudget + this.settings.keysPerSecond * perTick * factor);
    this.bytesBudget = Math.min(this.settings.bytesPerSecond * factor, this.bytesBudget + this.settings.bytesPerSecond * perTick * factor);
    for (const [id, session] of this.sessions) if (now - session.lastUsed > this.timeoutTicks()) this.sessions.delete(id);

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
        this.onTree(from, message, out);
        return true;
      case 'ae-keys':
        this.onKeys(from, message, out);
        return true;
      case 'ae-sync':
        this.onSync(from, message, out);
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
      opened: false,
      rootAsked: false,
      phase: 'tree',
      level: 0,
      queue: [],
      next: [],
      asked: [],
      differing: [],
      leafCursor: 0,
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
    if (ex.phase === 'tree') {
      let of: number[];
      if (!ex.rootAsked) {
        // The first request asks for the root; every later one names parents and gets their children.
        ex.rootAsked = true;
        of = [];
        ex.asked = [0];
      } else {
        if (ex.queue.length === 0) {
          const leafLevel = ex.tree.levels.length - 1;
          if (ex.level < leafLevel && ex.next.length > 0) {
            ex.level++;
            ex.queue = ex.next;
            ex.next = [];
          } else {
            ex.phase = 'keys';
            return this.advance(ex, out);
          }
        }
        of = ex.queue.splice(0, PARENTS_PER_REQUEST);
        ex.asked = childrenOf(ex.tree, ex.level - 1, of);
      }
      const message: AeTree = { t: 'ae-tree', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, level: ex.level, of };
      if (!ex.opened) {
        ex.opened = true;
        const scope: Pick<AeTree, 'ring' | 'n' | 'spans'> =
          'ring' in ex.scope ? { ring: ex.scope.ring, n: ex.scope.n } : { spans: ex.scope.spans.map((s): [number, number] => [s.fromToken, s.toToken]) };
        const bytes = 8 + (scope.spans === undefined ? 70 : scope.spans.length * 10);
        this.request(ex, { ...message, depth: ex.leaves.depth, ...scope, ...(ex.bucket === undefined ? {} : { b: ex.bucket }) }, bytes, out);
      } else {
        this.request(ex, message, 8 + of.length * 4, out);
      }
      return;
    }
    const batch = ex.batches[0];
    if (batch !== undefined) {
      if (this.keysBudget <= 0 || this.bytesBudget <= 0) return; // the next tick refills
      ex.batches.shift();
      ex.phase = 'sync';
      this.keysBudget -= batch.push.length + batch.pull.length;
      this.bytesBudget -= batch.bytes;
      this.recordsSent += batch.push.length;
      this.request(ex, { t: 'ae-sync', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, push: batch.push, pull: batch.pull }, batch.bytes + batch.pull.reduce((s, [b, k]) => s + b.length + k.length + 4, 0), out);
      return;
    }
    if (ex.leafCursor < ex.differing.length) {
      if (this.keysBudget <= 0 || this.bytesBudget <= 0) return; // key lists cost too; the next tick refills
      ex.phase = 'keys';
      ex.asked = ex.differing.slice(ex.leafCursor, ex.leafCursor + LEAVES_PER_REQUEST);
      ex.leafCursor += ex.asked.length;
      this.request(ex, { t: 'ae-keys', from: this.deps.nodeId, rid: this.deps.rid(), xid: ex.xid, leaves: ex.asked }, 8 + ex.asked.length * 4, out);
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
    this.bytesReceived += message.hashes.length;
    const asked = ex.asked;
    if (message.leaves !== ex.tree.leafCount || message.hashes.length !== asked.length * WIRE_HASH_BYTES) {
      return this.abandon(ex, `the peer's tree does not match (${message.leaves} leaves, mine ${ex.tree.leafCount})`);
    }
    this.treeNodesCompared += asked.length;
    const mine = ex.tree.levels[ex.level]!;
    const view = new DataView(message.hashes.buffer, message.hashes.byteOffset, message.hashes.byteLength);
    const differing: number[] = [];
    asked.forEach((node, i) => {
      const at = node * 4;
      if (mine[at] !== view.getUint32(i * WIRE_HASH_BYTES, true) || mine[at + 1] !== view.getUint32(i * WIRE_HASH_BYTES + 4, true)) differing.push(node);
    });
    if (ex.level === ex.tree.levels.length - 1) ex.differing.push(...differing);
    else ex.next.push(...differing);
    this.advance(ex, out);
  }

  private onKeysOk(from: string, message: AeKeysOk, out: Out[]): void {
    const ex = this.answered(from, message.rid);
    if (ex === undefined) return;
    const theirs = new Map<string, Uint8Array>();
    let listBytes = 0;
    for (const [b, k, digest] of message.keys) {
      listBytes += b.length + k.length + digest.length + 4;
      theirs.set(slotId(b, k), digest);
    }
    this.bytesReceived += listBytes;
    this.bytesBudget -= listBytes;
    const push: { b: string; k: string; obj: KvObject }[] = [];
    const pull: [string, string][] = [];
    let mineCount = 0;
    try {
      for (const span of mergedSpans(ex.leaves, ex.asked)) {
        for (const entry of this.deps.scan(span.fromToken, span.toToken)) {
          if (ex.bucket !== undefined && entry.bucket !== ex.bucket) continue;
          mineCount++;
          const id = slotId(entry.bucket, entry.key);
          const their = theirs.get(id);
          const object = this.deps.local.newest(entry, entry.object);
          if (object === undefined) continue;
          const digest = objectDigest(object);
          if (their !== undefined) theirs.delete(id);
          if (their !== undefined && equalDigests(their, digest)) continue;
          push.push({ b: entry.bucket, k: entry.key, obj: object });
          if (their !== undefined) pull.push([entry.bucket, entry.key]);
        }
      }
    } catch (error) {
      return this.abandon(ex, `local scan failed: ${String(error)}`);
    }
    for (const id of theirs.keys()) pull.push(splitSlotId(id));
    ex.keysCompared += Math.max(mineCount, message.keys.length);
    this.keysBudget -= (mineCount + message.keys.length) * COMPARE_COST;
    if (this.repairRun !== undefined && ex.kind === 'repair') this.repairRun.keysCompared += Math.max(mineCount, message.keys.length);
    ex.batches = batchesOf(push, pull, this.settings.batchKeys);
    this.advance(ex, out);
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

  private onTree(from: string, message: AeTree, out: Out[]): void {
    const id = `${from} ${message.xid}`;
    let session = this.sessions.get(id);
    if (message.ring !== undefined && this.pressured) {
      // Scheduled exchanges wait while this node's clients are slowed; transfers (spans) do not.
      return this.refuse(from, message.rid, 'OVERLOADED', 'client latency is up here; anti-entropy backs off', out);
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
      const leaves = TreeLeaves.of(this.deps.local.segments.depth, bounds);
      session = { from, xid: message.xid, openedAt: this.now, leaves, tree: this.treeOf(leaves), bucket: message.b, lastUsed: this.now };
      this.sessions.set(id, session);
      while (this.sessions.size > SESSIONS_MAX) this.sessions.delete(this.sessions.keys().next().value as string);
    }
    if (session === undefined) return this.refuse(from, message.rid, 'UNAVAILABLE', 'no such exchange here (expired, or this node restarted)', out);
    session.lastUsed = this.now;
    const tree = session.tree;
    if (message.level >= tree.levels.length || (message.level === 0) !== (message.of.length === 0)) {
      return this.refuse(from, message.rid, 'INVALID_REQUEST', `level ${message.level} with ${message.of.length} parents does not fit the tree`, out);
    }
    const above = message.level === 0 ? 1 : tree.levels[message.level - 1]!.length / 4;
    for (const parent of message.of) if (parent >= above) return this.refuse(from, message.rid, 'INVALID_REQUEST', `node ${parent} is not in level ${message.level - 1}`, out);
    const nodes = message.level === 0 ? [0] : childrenOf(tree, message.level - 1, message.of);
    const level = tree.levels[message.level]!;
    const hashes = new Uint8Array(nodes.length * WIRE_HASH_BYTES);
    const view = new DataView(hashes.buffer);
    nodes.forEach((node, i) => {
      view.setUint32(i * WIRE_HASH_BYTES, level[node * 4]!, true);
      view.setUint32(i * WIRE_HASH_BYTES + 4, level[node * 4 + 1]!, true);
    });
    this.bytesSent += hashes.length;
    this.send(from, { t: 'ae-tree-ok', from: this.deps.nodeId, rid: message.rid, leaves: tree.leafCount, hashes }, out);
  }

  private onKeys(from: string, message: AeKeys, out: Out[]): void {
    const session = this.sessions.get(`${from} ${message.xid}`);
    if (session === undefined) return this.refuse(from, message.rid, 'UNAVAILABLE', 'no such exchange here (expired, or this node restarted)', out);
    session.lastUsed = this.now;
    const keys: [string, string, Uint8Array][] = [];
    try {
      for (const leaf of message.leaves) if (leaf >= session.leaves.count) return this.refuse(from, message.rid, 'INVALID_REQUEST', `leaf ${leaf} is not in the tree`, out);
      for (const span of mergedSpans(session.leaves, message.leaves)) {
        for (const entry of this.deps.scan(span.fromToken, span.toToken)) {
          if (session.bucket !== undefined && entry.bucket !== session.bucket) continue;
          const object = this.deps.local.newest(entry, entry.object);
          if (object === undefined) continue;
          const digest = objectDigest(object);
          keys.push([entry.bucket, entry.key, digest]);
          this.bytesSent += entry.bucket.length + entry.key.length + digest.length + 4;
        }
      }
    } catch (error) {
      return this.refuse(from, message.rid, 'STORAGE', `local scan failed: ${String(error)}`, out);
    }
    this.send(from, { t: 'ae-keys-ok', from: this.deps.nodeId, rid: message.rid, keys }, out);
  }

  private onSync(from: string, message: AeSync, out: Out[]): void {
    this.recordsReceived += message.push.length;
    const answer = (failure: string | undefined, done: Out[]): void => {
      if (failure !== undefined) return this.refuse(from, message.rid, 'STORAGE', `storage write failed: ${failure}`, done);
      const objs: { b: string; k: string; obj: KvObject }[] = [];
      try {
        for (const [b, k] of message.pull) {
          const object = this.deps.local.latest({ bucket: b, key: k });
          if (object === undefined) continue;
          objs.push({ b, k, obj: object });
          this.bytesSent += b.length + k.length + objectBytes(object);
        }
      } catch (error) {
        return this.refuse(from, message.rid, 'STORAGE', `local read failed: ${String(error)}`, done);
      }
      this.recordsSent += objs.length;
      this.send(from, { t: 'ae-sync-ok', from: this.deps.nodeId, rid: message.rid, objs }, done);
    };
    const merged = this.merge(message.push, out, answer);
    if (merged === 'invalid') this.refuse(from, message.rid, 'PROTOCOL', 'malformed object in ae-sync', out);
    else this.bytesReceived += merged.bytes;
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

function slotId(bucket: string, key: string): string {
  return `${bucket.length}:${bucket}\0${key}`;
}

function splitSlotId(id: string): [string, string] {
  const colon = id.indexOf(':');
  const length = Number(id.slice(0, colon));
  return [id.slice(colon + 1, colon + 1 + length), id.slice(colon + 2 + length)];
}

/** Push and pull lists cut into sync messages of at most `keysMax` records and SYNC_BYTES_MAX bytes. */
function batchesOf(push: { b: string; k: string; obj: KvObject }[], pull: [string, string][], keysMax: number): SyncBatch[] {
  const out: SyncBatch[] = [];
  let current: { push: { b: string; k: string; obj: KvObject }[]; pull: [string, string][]; bytes: number } = { push: [], pull: [], bytes: 0 };
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
