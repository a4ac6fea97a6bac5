/**
 * The coordinator: put, get and delete requests, as per-request state machines around a
 * quorum `Tally` (replication/tally.ts) over the key's replicas.
 *
 * Any node coordinates. A request first resolves its levels against the bucket's `n`
 * (request, then bucket properties, then cluster defaults) and picks its targets: the key's
 * alive primaries and, in a sloppy quorum, a fallback for each primary that is down. Too
 * few targets for the quorum is UNAVAILABLE before anything is sent.
 *
 * - A put (or a delete, which writes a tombstone) is applied first by a replica of the key,
 *   which creates the new dot with its own actor: this node when it is a target, otherwise
 *   the request is forwarded whole to a target that then coordinates it (Riak's put FSM
 *   does the same). The new version goes to the other targets at once; each answers once it
 *   is durable, and the reply waits for `w` of them, `pw` from primaries.
 * - A get asks every target and answers after `r` replies (`pr` from primaries), merging
 *   what they hold. It then waits for the rest (or its deadline) and sends the merged
 *   version to every primary that answered with less: read repair, after the reply.
 * - On a typed bucket an update (`upd`) takes the put path: the primary applies the
 *   operation to the merge of the siblings it holds (lib/crdt/stored.ts) and writes the
 *   result with their joined context. A `fetch` takes the get path and answers with the
 *   merged value. Puts and gets on typed buckets, and typed operations elsewhere, are refused.
 *
 * A request stays open after its reply until every target answered or its deadline passed,
 * so that read repair sees every answer and a delete learns whether every primary holds its
 * tombstone. Such a delete schedules the tombstone's reaping after a grace period.
 *
 * Deadlines are ticks: each request is filed under the tick at which it expires; a request
 * still unanswered then gets TIMEOUT, saying whether a write may have landed.
 */

import { assert } from '../base/assert.js';
import { ChorusError, type ErrorCode, InvalidRequestError, OverloadedError, StorageError, TimeoutError, UnavailableError } from '../base/errors.js';
import { IdTable } from '../base/id-table.js';
import { CONNECTION_REQUESTS_INFLIGHT_MAX, NODE_REQUESTS_INFLIGHT_MAX, type DataLimits } from '../base/limits.js';
import { encodeContext } from '../clock/context.js';
import { dvvDescends, join, sync, values, type Actor, type VersionVector } from '../clock/dvv.js';
import type { KvObject } from '../clock/object.js';
import type { ClientReply, DeleteRequest, DigestRequest, FetchRequest, GetRequest, Level, LevelInput, PeerMessage, PutRequest, UpdateRequest } from '../codec/messages.js';
import { applyTyped, checkTypedOp, isTypedType, typedValue, type TypedBucketType } from '../crdt/stored.js';
import { HintBook, objectBytes } from '../handoff/hints.js';
import { checkLevel, resolveLevel, type LevelName } from '../replication/levels.js';
import { applyPut, checkObject, deleteContext, liveValues, objectDigestOf, sameDigest, type ObjectDigest } from '../replication/replica.js';
import { quorumShortfall, Tally, type QuorumSpec, type ReplicaTarget } from '../replication/tally.js';
import { chooseTargets } from '../replication/targets.js';
import type { ConnId, NodeOutput } from './io.js';
import type { LocalReplica } from './local-replica.js';
import type { Placement } from './placement.js';
import { checkBucketKey, checkValue, parseContext } from './validate.js';

export interface ReplicationDefaults {
  readonly n: number;
  readonly r: Level;
  readonly w: Level;
  readonly pr: Level;
  readonly pw: Level;
  /** Whether fallbacks stand in for primaries that are down, unless a request says otherwise. */
  readonly sloppy: boolean;
  /** How long a tombstone every primary holds is kept before it is reaped. */
  readonly tombstoneGraceMs: number;
}

export interface CoordinatorInit {
  readonly nodeId: string;
  /** This node's storage epoch actor: a node that lost its data gets a new one (Riak kv679). */
  readonly actor: Actor;
  readonly limits: DataLimits;
  readonly replication: ReplicationDefaults;
  readonly requestTimeoutMs: number;
  /** Milliseconds one tick stands for; used only to turn client timeouts into ticks. */
  readonly tickMs: number;
  /**
   * The highest dot counter this actor issued before (kept across a clean restart; a node
   * that did not stop cleanly writes under a new actor and starts from 0).
   */
  readonly counterFloor: number;
}

export interface CoordinatorDeps {
  readonly local: LocalReplica;
  readonly hints: HintBook;
  readonly placement: Placement;
  /** A request id for a message to a peer, unique on this node. */
  readonly rid: () => number;
  /** Handles a message this node sends to itself (a reap of a key it is a primary of). */
  readonly toSelf: (message: PeerMessage, out: NodeOutput[]) => void;
  /** Whether anti-entropy has compared this node's ranges with each of `primaries` since tick `since`. */
  readonly confirms: (primaries: readonly string[], since: number) => boolean;
}

/** The data requests a client may send; admin requests go elsewhere. */
export type DataRequest = PutRequest | GetRequest | DigestRequest | DeleteRequest | UpdateRequest | FetchRequest;

/** The writes a node forwards to a primary when it is none. */
type WriteRequest = PutRequest | DeleteRequest | UpdateRequest;

/** Who asked: a client connection, or a peer that forwarded its client's request. */
export type Origin = { readonly kind: 'client'; readonly conn: ConnId } | { readonly kind: 'peer'; readonly node: string; readonly rid: number };

/** Ticks a forwarding node waits past the request's own timeout for the coordinator's answer. */
const FORWARD_GRACE_TICKS = 50;

/** Ticks a read waits for its quorum before it asks one more replica (a slow or paused one). */
const SPECULATIVE_READ_TICKS = 5;

/**
 * Forwarded requests remembered by sender and id, so that one delivered twice (a network
 * that duplicates, a resend) is coordinated once: coordinating a put twice would write its
 * value under two dots, and a context that saw the first would leave the second alive.
 */
const FORWARDS_SEEN_MAX = 100_000;

/** Tombstones waiting for their grace period at most; past this a tombstone is simply kept. */
const REAPS_PENDING_MAX = 100_000;
/**
 * Times a reap waits a quarter grace period for anti-entropy to confirm the key's ranges
 * before it gives up and keeps the tombstone (safe; it only costs space).
 */
const REAP_WAITS_MAX = 16;

interface Open {
  readonly origin: Origin;
  /** Peer request ids this request is waiting on. */
  readonly rids: number[];
  readonly id: number;
  readonly bucket: string;
  readonly key: string;
  readonly tally: Tally;
  readonly targets: readonly ReplicaTarget[];
  readonly deadline: number;
  replied: boolean;
}

interface OpenWrite extends Open {
  readonly kind: 'write';
  readonly op: 'put' | 'del' | 'upd';
  readonly object: KvObject;
  /** For an update: the value after it (when asked for) and whether its id was applied before. */
  readonly result: { readonly value: unknown; readonly duplicate: boolean } | undefined;
  /** The context to return: present only when the write left a single sibling (see putReply). */
  readonly ctx: Uint8Array | undefined;
  readonly siblings: number;
  /** Primaries that acknowledged, and how many primaries the key has. */
  primariesAcked: number;
  /** Whether every failure so far was a storage failure (reported as STORAGE, not UNAVAILABLE). */
  storageFailuresOnly: boolean;
  readonly primaries: number;
}

interface OpenRead extends Open {
  readonly kind: 'read';
  /** Targets asked so far: a prefix of `targets`. */
  asked: number;
  /** Targets to ask in all, so far (asked catches up with it). */
  wanted: number;
  merged: KvObject | undefined;
  /** What each target that answered holds (undefined: nothing). */
  readonly answers: Map<string, KvObject | undefined>;
  /**
   * This node's own copy, once read: the other replicas are then asked only for a digest of
   * theirs, and for the copy itself only when it differs.
   */
  local: { readonly object: KvObject | undefined; readonly digest: ObjectDigest } | undefined;
  /** A typed read: the bucket's type, and the state vector of a `doc` reader that wants only what it lacks. */
  readonly typed: { readonly type: TypedBucketType; readonly sv: Uint8Array | undefined } | undefined;
}

interface OpenForward {
  readonly kind: 'forward';
  readonly origin: Origin;
  readonly rids: number[];
  readonly id: number;
  readonly op: DataRequest['t'];
  readonly deadline: number;
}

type Request = OpenWrite | OpenRead | OpenForward;

/** A tombstone every primary acknowledged, waiting for its grace period. */
interface Reap {
  readonly bucket: string;
  readonly key: string;
  readonly object: KvObject;
  readonly primaries: readonly string[];
  /** The tick every primary acknowledged the delete: anti-entropy must have confirmed the key's ranges since. */
  readonly since: number;
  /** Times the reap waited for anti-entropy to confirm. */
  readonly waits: number;
}

interface Plan {
  readonly n: number;
  readonly spec: QuorumSpec;
  readonly targets: readonly ReplicaTarget[];
  readonly primaries: number;
  /** Primaries that are down with no fallback standing in for them. */
  readonly uncovered: readonly string[];
}

export interface CoordinatorStats {
  readonly readRepairs: number;
  /** Paired gets answered from this node's copy alone, the client comparing the pair's digest. */
  readonly pairedReads: number;
  readonly forwarded: number;
  /** Tombstones whose grace period ended, sent to their primaries to reap. */
  readonly reapsSent: number;
}

export class Coordinator {
  private readonly init: CoordinatorInit;
  private readonly deps: CoordinatorDeps;
  private now = 0;
  private requestNext = 1;
  /** Requests in progress by number (an IdTable rather than a Map: see `lib/base/id-table.ts`). */
  private readonly requests = new IdTable<Request>();
  /** Peer request ids of messages this coordinator sent, and the request and target each is for. */
  private readonly remote = new IdTable<{ readonly request: number; readonly node: string }>();
  /** Requests filed by the tick at which they time out. */
  private readonly deadlines = new Map<number, number[]>();
  /** Reads filed by the tick at which, still unanswered, they ask one more replica. */
  private readonly speculations = new Map<number, number[]>();
  /** Tombstones to reap, filed by the tick their grace period ends. */
  private readonly reaps = new Map<number, Reap[]>();
  private reapsPending = 0;
  private readonly inflightByConn = new Map<ConnId, number>();
  private readonly closedConns = new Set<ConnId>();
  private readRepairs = 0;
  private pairedReads = 0;
  private forwarded = 0;
  /** The highest dot counter this actor has issued. */
  private counterMax: number;
  private reapsSent = 0;
  /** Forwarded requests already taken, oldest first (a Set keeps insertion order). */
  private readonly forwardsSeen = new Set<string>();

  constructor(deps: CoordinatorDeps, init: CoordinatorInit) {
    assert(init.tickMs > 0, 'tickMs must be positive');
    this.deps = deps;
    this.init = init;
    this.counterMax = init.counterFloor;
  }

  /** The highest dot counter this actor has issued; a clean stop keeps it for the next start. */
  get counterIssued(): number {
    return this.counterMax;
  }

  get ticks(): number {
    return this.now;
  }

  /** Requests open on this node (coordinated or forwarded), replied or not. */
  get inflight(): number {
    return this.requests.size;
  }

  get stats(): CoordinatorStats {
    return { readRepairs: this.readRepairs, pairedReads: this.pairedReads, forwarded: this.forwarded, reapsSent: this.reapsSent };
  }

  onTick(out: NodeOutput[]): void {
    this.now++;
    const due = this.deadlines.get(this.now);
    if (due !== undefined) {
      this.deadlines.delete(this.now);
      for (const number of due) this.expire(number, out);
    }
    const speculations = this.speculations.get(this.now);
    if (speculations !== undefined) {
      this.speculations.delete(this.now);
      for (const number of speculations) {
        const read = this.requests.get(number);
        if (read?.kind === 'read' && !read.replied) this.ask(number, read, 1, out);
      }
    }
    const reaps = this.reaps.get(this.now);
    if (reaps !== undefined) {
      this.reaps.delete(this.now);
      this.reapsPending -= reaps.length;
      const graceTicks = this.graceTicks();
      for (const reap of reaps) {
        // A member that was down during the grace period may hold a hint of an older value;
        // once the tombstone is gone that hint would bring the value back. Wait until every
        // member has been alive for a whole grace period, so its hints have been delivered.
        const healthyFor = this.now - this.deps.placement.unhealthyAt;
        if (healthyFor < graceTicks) {
          this.fileReap(this.deps.placement.unhealthyAt + graceTicks, reap);
          continue;
        }
        // Every primary acknowledged the tombstone; anti-entropy between this node (a primary)
        // and each other one must also have compared their ranges since, so that no replica
        // still holds an older version the tombstone alone would have kept from coming back.
        if (!this.deps.confirms(reap.primaries, reap.since)) {
          if (reap.waits < REAP_WAITS_MAX) this.fileReap(this.now + Math.ceil(graceTicks / 4), { ...reap, waits: reap.waits + 1 });
          continue;
        }
        for (const node of reap.primaries) this.send(node, { t: 'reap', from: this.init.nodeId, b: reap.bucket, k: reap.key, obj: reap.object }, out);
        this.reapsSent++;
      }
    }
  }

  onClientRequest(conn: ConnId, request: DataRequest, out: NodeOutput[]): void {
    this.closedConns.delete(conn);
    this.onRequest({ kind: 'client', conn }, request, out);
  }

  /** A peer forwarded its client's request: coordinate it here, or refuse it so the client may retry. */
  onForwarded(from: string, rid: number, request: DataRequest, out: NodeOutput[]): void {
    const id = `${from} ${rid}`;
    if (this.forwardsSeen.has(id)) return;
    this.forwardsSeen.add(id);
    if (this.forwardsSeen.size > FORWARDS_SEEN_MAX) this.forwardsSeen.delete(this.forwardsSeen.values().next().value as string);
    this.onRequest({ kind: 'peer', node: from, rid }, request, out);
  }

  private onRequest(origin: Origin, request: DataRequest, out: NodeOutput[]): void {
    const refusal = this.admit(origin);
    if (refusal) return this.reply(origin, errorReply(request.id, refusal), out);
    switch (request.t) {
      case 'put':
        return this.onPut(origin, request, out);
      case 'get':
        return this.onGet(origin, request, out);
      case 'dget':
        return this.onDigestGet(origin, request, out);
      case 'del':
        return this.onDelete(origin, request, out);
      case 'upd':
        return this.onUpdate(origin, request, out);
      case 'fetch':
        return this.onFetch(origin, request, out);
    }
  }

  /** The bucket's type, and a refusal when the request's kind does not fit it. */
  private typeOf(bucket: string): TypedBucketType | 'kv' {
    const type = this.deps.placement.bucketProps(bucket).type;
    return isTypedType(type) ? type : 'kv';
  }

  private wrongType(request: DataRequest, bucketType: TypedBucketType | 'kv'): InvalidRequestError | undefined {
    if (request.t === 'put' || request.t === 'get' || request.t === 'dget') {
      if (bucketType === 'kv') return undefined;
      const use = bucketType === 'doc' ? 'doc updates and reads' : `${bucketType} operations`;
      return new InvalidRequestError(`bucket ${request.b} holds ${bucketType} values: use ${use}, not ${request.t}`, { field: 'type', bucketType });
    }
    if (request.t === 'upd' || request.t === 'fetch') {
      if (request.type === bucketType) return undefined;
      const what = bucketType === 'kv' ? 'opaque values (type kv); set its type with `chorus bucket set --type`' : `${bucketType} values`;
      return new InvalidRequestError(`a ${request.type} operation on bucket ${request.b}, which holds ${what}`, { field: 'type', bucketType });
    }
    return undefined;
  }

  private admit(origin: Origin): ChorusError | undefined {
    if (origin.kind === 'client' && (this.inflightByConn.get(origin.conn) ?? 0) >= CONNECTION_REQUESTS_INFLIGHT_MAX) {
      return new OverloadedError(`over ${CONNECTION_REQUESTS_INFLIGHT_MAX} requests in flight on this connection`, { limit: CONNECTION_REQUESTS_INFLIGHT_MAX });
    }
    if (this.requests.size >= NODE_REQUESTS_INFLIGHT_MAX) {
      return new OverloadedError(`node has ${NODE_REQUESTS_INFLIGHT_MAX} requests in flight`, { limit: NODE_REQUESTS_INFLIGHT_MAX });
    }
    if (!this.deps.placement.ready) {
      return new UnavailableError('this node has not joined its cluster yet', { mayHaveLanded: false, retry: true });
    }
    return undefined;
  }

  // ---- put and delete ----

  private onPut(origin: Origin, request: PutRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits) ?? checkValue(request.v, this.init.limits) ?? this.wrongType(request, this.typeOf(request.b));
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    const context = parseContext(request.ctx);
    if (!context.ok) return this.reply(origin, errorReply(request.id, context.error), out);
    this.coordinateWrite(origin, request, 'put', (current) => ({ context: context.value, value: request.v, current }), out);
  }

  private onDelete(origin: Origin, request: DeleteRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits);
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    const context = parseContext(request.ctx);
    if (!context.ok) return this.reply(origin, errorReply(request.id, context.error), out);
    this.coordinateWrite(origin, request, 'del', (current) => ({ context: deleteContext(current, context.value), value: null, current }), out);
  }

  /**
   * An operation on a typed bucket: the primary applies it to the merge of every sibling it
   * holds and writes the result with the join of its clock as context, so the one new
   * sibling supersedes all of them (lib/crdt/stored.ts). New dots inside the state come from
   * the same counter as the clock's dots, so they are never issued twice.
   */
  private onUpdate(origin: Origin, request: UpdateRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits);
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    const bucketType = this.typeOf(request.b);
    const wrong = this.wrongType(request, bucketType);
    if (wrong || bucketType === 'kv') return this.reply(origin, errorReply(request.id, wrong as InvalidRequestError), out);
    const op = checkTypedOp(bucketType, request.op);
    if (!op.ok) return this.reply(origin, errorReply(request.id, new InvalidRequestError(`invalid ${bucketType} operation: ${op.reason}`, { field: op.field })), out);
    this.coordinateWrite(
      origin,
      request,
      'upd',
      (current) => {
        const siblings = current === undefined ? [] : values(current);
        const applied = applyTyped(bucketType, siblings, op.op, { actor: this.init.actor, nextCounter: () => ++this.counterMax, opId: request.oid });
        if (!applied.ok) {
          const error =
            applied.field === 'stored'
              ? new StorageError(`this node cannot read the key's ${bucketType} state; try another node`, { mayHaveLanded: false, retry: true })
              : new InvalidRequestError(`invalid ${bucketType} operation: ${applied.reason}`, { field: applied.field });
          return { error };
        }
        return {
          context: current === undefined ? [] : join(current),
          value: applied.bytes,
          current,
          result: { value: request.ret === true ? applied.value : undefined, duplicate: applied.duplicate },
        };
      },
      out,
    );
  }

  /** A read of a typed bucket: the get path, answered with the merged value instead of siblings. */
  private onFetch(origin: Origin, request: FetchRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits);
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    const bucketType = this.typeOf(request.b);
    const wrong = this.wrongType(request, bucketType);
    if (wrong || bucketType === 'kv') return this.reply(origin, errorReply(request.id, wrong as InvalidRequestError), out);
    if (request.sv !== undefined && bucketType !== 'doc') {
      return this.reply(origin, errorReply(request.id, new InvalidRequestError('a state vector is for doc buckets only', { field: 'sv' })), out);
    }
    this.coordinateRead(origin, request, { type: bucketType, sv: request.sv }, out);
  }

  /** Applies the write here when this node is a target (creating the dot), then sends it to the other targets. */
  private coordinateWrite(
    origin: Origin,
    request: WriteRequest,
    op: 'put' | 'del' | 'upd',
    plan: (
      current: KvObject | undefined,
    ) =>
      | { context: VersionVector; value: Uint8Array | null; current: KvObject | undefined; result?: { value: unknown; duplicate: boolean } }
      | { error: ChorusError },
    out: NodeOutput[],
  ): void {
    const planned = this.plan(request.b, request.w, request.pw, request.sloppy, 'w', request.k);
    if (!planned.ok) return this.reply(origin, errorReply(request.id, planned.error), out);
    // Only a primary orders a write: its own copy holds every dot it ever issued for the key,
    // so it never issues one twice. A fallback's hint may have been handed over and deleted.
    const self = planned.plan.targets.find((t) => t.node === this.init.nodeId && t.primary);
    if (self === undefined) return this.forward(origin, request, planned.plan.targets, out);

    const slot = { bucket: request.b, key: request.k };
    let current: KvObject | undefined;
    try {
      current = this.deps.local.latest(slot);
    } catch (error) {
      out.push({ kind: 'log', level: 'error', msg: 'local read failed', fields: { bucket: request.b, key: request.k, reason: String(error) } });
      return this.reply(origin, errorReply(request.id, new StorageError('this node cannot read the key; try another node', { mayHaveLanded: false, retry: true })), out);
    }
    const planned2 = plan(current);
    if ('error' in planned2) return this.reply(origin, errorReply(request.id, planned2.error), out);
    const { context, value } = planned2;
    const written = applyPut(current, context, value, this.init.actor, this.counterMax + 1);
    if (written.siblings > this.init.limits.siblingsMax) {
      const error = new InvalidRequestError(`write would leave ${written.siblings} siblings, over the limit of ${this.init.limits.siblingsMax}; read, resolve and write with the context`, {
        siblings: written.siblings,
        limit: this.init.limits.siblingsMax,
      });
      return this.reply(origin, errorReply(request.id, error), out);
    }
    if (written.siblings >= this.init.limits.siblingsWarn) {
      out.push({ kind: 'log', level: 'warn', msg: 'many siblings', fields: { bucket: request.b, key: request.k, siblings: written.siblings } });
    }

    this.counterMax = Math.max(this.counterMax, written.counter);
    const number = this.requestNext++;
    const deadline = this.now + this.timeoutTicks(request.timeout);
    const write: OpenWrite = {
      kind: 'write',
      origin,
      rids: [],
      id: request.id,
      bucket: request.b,
      key: request.k,
      tally: new Tally(planned.plan.spec, planned.plan.targets),
      targets: planned.plan.targets,
      deadline,
      replied: false,
      op,
      object: written.object,
      result: planned2.result,
      ctx: written.siblings === 1 ? encodeContext(join(written.object)) : undefined,
      siblings: written.siblings,
      primariesAcked: 0,
      storageFailuresOnly: true,
      primaries: planned.plan.primaries,
    };
    this.open(number, write);

    this.deps.local.write([{ ...slot, object: written.object, replaces: { object: current } }], out, (failure, done) => {
      if (failure !== undefined) done.push({ kind: 'log', level: 'error', msg: 'storage write failed', fields: { bucket: request.b, key: request.k, reason: failure } });
      this.onWriteAnswer(number, this.init.nodeId, failure === undefined, done, 'STORAGE');
    });
    this.keepHints(request.b, request.k, planned.plan.uncovered, written.object, out);
    for (const target of planned.plan.targets) {
      if (target.node === this.init.nodeId) continue;
      const rid = this.track(number, target.node);
      this.send(target.node, { t: 'rput', from: this.init.nodeId, rid, b: request.b, k: request.k, obj: written.object, ...(target.hintFor === undefined ? {} : { hint: target.hintFor }) }, out);
    }
  }

  /**
   * Primaries that are down with no fallback to stand in (a cluster of n nodes, or a request
   * with `sloppy: false`) still get the write later: the coordinator keeps a hint for each,
   * as Cassandra's coordinator does. These hints do not count toward `w`; they only spare
   * the primary a gap that would otherwise wait for anti-entropy.
   */
  private keepHints(bucket: string, key: string, primaries: readonly string[], object: KvObject, out: NodeOutput[]): void {
    for (const primary of primaries) {
      const slot = { bucket, key, hintFor: primary };
      let current: KvObject | undefined;
      try {
        current = this.deps.local.latest(slot);
      } catch {
        continue;
      }
      const merged = current === undefined ? object : sync(current, object);
      const bytes = objectBytes(merged);
      if (!this.deps.hints.admits(primary, current !== undefined, bytes)) {
        this.deps.hints.dropped(primary);
        continue;
      }
      const replaced = current === undefined ? undefined : objectBytes(current);
      this.deps.local.write([{ ...slot, object: merged }], out, (failure, done) => {
        if (failure === undefined) this.deps.hints.stored(primary, bytes, replaced);
        else done.push({ kind: 'log', level: 'warn', msg: 'keeping a hint failed', fields: { bucket, key, target: primary, reason: failure } });
      });
    }
  }

  private onWriteAnswer(number: number, node: string, ok: boolean, out: NodeOutput[], code?: ErrorCode): void {
    const write = this.requests.get(number);
    if (write === undefined || write.kind !== 'write') return;
    const target = write.targets.find((t) => t.node === node);
    if (ok) {
      const before = write.tally.received;
      write.tally.ack(node);
      // The tally ignores repeated answers; count a primary only when its answer counted.
      if (target?.primary === true && write.tally.received > before) write.primariesAcked++;
    } else {
      write.tally.fail(node);
      if (code !== 'STORAGE') write.storageFailuresOnly = false;
    }
    const outcome = write.tally.outcome;
    if (!write.replied && outcome === 'met') {
      write.replied = true;
      this.replyTo(write, writeReply(write), out);
    } else if (!write.replied && outcome === 'failed') {
      write.replied = true;
      const { required, received } = { required: write.tally.spec.required, received: write.tally.received };
      const details = { required, received, failed: write.tally.failures, mayHaveLanded: true };
      const message = `${write.op}: ${write.tally.failures} of ${write.targets.length} replicas failed, ${received} of ${required} acknowledged`;
      this.replyTo(write, errorReply(write.id, write.storageFailuresOnly ? new StorageError(message, details) : new UnavailableError(message, details)), out);
    }
    if (write.tally.received + write.tally.failures === write.targets.length) this.close(number, write, out);
  }

  // ---- get ----

  private onGet(origin: Origin, request: GetRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits) ?? this.wrongType(request, this.typeOf(request.b));
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    if (request.pair !== undefined && origin.kind === 'client' && this.answerPaired(origin, request, out)) return;
    this.coordinateRead(origin, request, undefined, out);
  }

  /**
   * A paired get: the client asks the replica `pair` for its digest itself (Dynamo's
   * client-driven coordination). When this node's copy and the pair's together meet the
   * read's quorum, both as primaries, and this node's alone does not, the answer is this
   * node's copy with its digest; the read is complete once the client finds the pair's
   * digest the same, so a read that needs no merge costs one message to each replica and no
   * hop between them. False when the read must be coordinated here instead: a level the two
   * cannot meet (or this node alone can), a pair or this node that is no primary of the key,
   * a copy that cannot be read.
   */
  private answerPaired(origin: Origin, request: GetRequest, out: NodeOutput[]): boolean {
    const pair = request.pair as string;
    const self = this.init.nodeId;
    if (pair === self || !this.deps.placement.alive(pair)) return false;
    const levels = this.levels(request.b, request.r, request.pr, 'r');
    if (!levels.ok) return false;
    // As plan() would have it, without building targets and a tally for two answers: both
    // are alive primaries, so their answers meet the read exactly when it needs two of them.
    const primaries = this.deps.placement.preferenceList(request.b, request.k, levels.n).primaries;
    if (!primaries.includes(self) || !primaries.includes(pair)) return false;
    const replicas = Math.max(1, primaries.length);
    const primariesRequired = Math.min(resolveLevel(levels.primaryLevel, replicas), replicas);
    if (Math.max(resolveLevel(levels.level, replicas), primariesRequired) !== 2) return false;
    let object: KvObject | undefined;
    try {
      object = this.deps.local.durable({ bucket: request.b, key: request.k, hintFor: undefined });
    } catch {
      return false; // Coordinated, the read logs the failure and asks another replica instead.
    }
    this.pairedReads++;
    const values = liveValues(object);
    const reply = { t: 'get-ok', id: request.id, found: values.length > 0, values, ctx: encodeContext(object === undefined ? [] : join(object)), dg: objectDigestOf(object) } as const;
    this.reply(origin, reply, out);
    return true;
  }

  /** The other half of a paired get: the digest of this node's durable copy. */
  private onDigestGet(origin: Origin, request: DigestRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits) ?? this.wrongType(request, this.typeOf(request.b));
    if (invalid) return this.reply(origin, errorReply(request.id, invalid), out);
    let object: KvObject | undefined;
    try {
      object = this.deps.local.durable({ bucket: request.b, key: request.k, hintFor: undefined });
    } catch (error) {
      out.push({ kind: 'log', level: 'error', msg: 'local read failed', fields: { bucket: request.b, key: request.k, reason: String(error) } });
      return this.reply(origin, errorReply(request.id, new StorageError('this node cannot read the key', { mayHaveLanded: false })), out);
    }
    this.reply(origin, { t: 'dget-ok', id: request.id, dg: objectDigestOf(object) }, out);
  }

  private coordinateRead(origin: Origin, request: GetRequest | FetchRequest, typed: OpenRead['typed'], out: NodeOutput[]): void {
    const planned = this.plan(request.b, request.r, request.pr, request.sloppy, 'r', request.k);
    if (!planned.ok) return this.reply(origin, errorReply(request.id, planned.error), out);
    const number = this.requestNext++;
    const read: OpenRead = {
      kind: 'read',
      origin,
      rids: [],
      id: request.id,
      bucket: request.b,
      key: request.k,
      tally: new Tally(planned.plan.spec, planned.plan.targets),
      targets: selfFirst(planned.plan.targets, this.init.nodeId),
      deadline: this.now + this.timeoutTicks(request.timeout),
      replied: false,
      merged: undefined,
      answers: new Map(),
      local: undefined,
      typed,
      asked: 0,
      wanted: 0,
    };
    this.open(number, read);
    this.ask(number, read, readsToSend(read.targets, planned.plan.spec), out);
    this.fileSpeculation(number, read);
  }

  /**
   * Asks the next `count` targets (this node first, then the rest in preference order). A
   * read starts with just enough targets for its quorum, as Cassandra's does, and asks one
   * more for each that fails, and one more if none has answered after
   * SPECULATIVE_READ_TICKS; anti-entropy, not every read, keeps the others in step.
   */
  private ask(number: number, read: OpenRead, count: number, out: NodeOutput[]): void {
    // A local read that fails asks for one more while this loop runs: `wanted` grows, and the
    // target is counted as asked before it answers, so the next one comes from here.
    read.wanted = Math.min(read.targets.length, read.wanted + count);
    while (read.asked < read.wanted) {
      const target = read.targets[read.asked++] as ReplicaTarget;
      if (target.node === this.init.nodeId) {
        this.readLocal(number, read, target, out);
        if (!this.requests.has(number)) return;
        continue;
      }
      this.askReplica(number, read, target, read.local !== undefined, out);
    }
  }

  /** Sends `rget` to one target; with `digest`, asks only for the digest of its copy. */
  private askReplica(number: number, read: OpenRead, target: ReplicaTarget, digest: boolean, out: NodeOutput[]): void {
    const rid = this.track(number, target.node);
    const message = { t: 'rget', from: this.init.nodeId, rid, b: read.bucket, k: read.key } as const;
    this.send(target.node, { ...message, ...(target.hintFor === undefined ? {} : { hint: target.hintFor }), ...(digest ? { dg: true as const } : {}) }, out);
  }

  /**
   * A replica's digest: the same as this node's copy counts as an answer holding that copy;
   * a different one asks that replica again for its copy itself.
   */
  private onDigest(number: number, read: OpenRead, from: string, digest: ObjectDigest, out: NodeOutput[]): void {
    const local = read.local;
    if (local !== undefined && sameDigest(local.digest, digest)) return this.onReadAnswer(number, from, { ok: true, object: local.object }, out);
    const target = read.targets.find((t) => t.node === from);
    if (target === undefined) return this.onReadAnswer(number, from, { ok: false }, out);
    this.askReplica(number, read, target, false, out);
  }

  private readLocal(number: number, read: OpenRead, target: ReplicaTarget, out: NodeOutput[]): void {
    let object: KvObject | undefined;
    try {
      object = this.deps.local.durable({ bucket: read.bucket, key: read.key, hintFor: target.hintFor });
    } catch (error) {
      out.push({ kind: 'log', level: 'error', msg: 'local read failed', fields: { bucket: read.bucket, key: read.key, reason: String(error) } });
      return this.onReadAnswer(number, this.init.nodeId, { ok: false }, out);
    }
    if (target.hintFor === undefined) read.local = { object, digest: objectDigestOf(object) };
    this.onReadAnswer(number, this.init.nodeId, { ok: true, object }, out);
  }

  private fileSpeculation(number: number, read: OpenRead): void {
    if (read.asked >= read.targets.length || read.replied) return;
    const at = this.now + SPECULATIVE_READ_TICKS;
    const list = this.speculations.get(at);
    if (list) list.push(number);
    else this.speculations.set(at, [number]);
  }

  private onReadAnswer(number: number, node: string, answer: { ok: true; object: KvObject | undefined } | { ok: false }, out: NodeOutput[]): void {
    const read = this.requests.get(number);
    if (read === undefined || read.kind !== 'read') return;
    if (answer.ok) {
      if (read.answers.has(node)) return;
      read.answers.set(node, answer.object);
      if (answer.object !== undefined) read.merged = read.merged === undefined ? answer.object : sync(read.merged, answer.object);
      read.tally.ack(node);
    } else {
      read.tally.fail(node);
      // A failed replica is replaced by the next one not yet asked, while there is one.
      if (!read.replied) this.ask(number, read, 1, out);
      if (!this.requests.has(number)) return;
    }
    const outcome = read.tally.outcome;
    if (!read.replied && outcome === 'met') {
      read.replied = true;
      this.replyTo(read, readReply(read), out);
    } else if (!read.replied && outcome === 'failed') {
      read.replied = true;
      const { required, received } = { required: read.tally.spec.required, received: read.tally.received };
      this.replyTo(
        read,
        errorReply(read.id, new UnavailableError(`get: ${read.tally.failures} of ${read.targets.length} replicas failed, ${received} of ${required} answered`, {
          required,
          received,
          failed: read.tally.failures,
          mayHaveLanded: false,
        })),
        out,
      );
    }
    if (read.tally.received + read.tally.failures === read.asked && (read.replied || read.asked === read.targets.length)) this.close(number, read, out);
  }

  /** Sends the merged version to every primary that answered with less. */
  private readRepair(read: OpenRead, out: NodeOutput[]): void {
    const merged = read.merged;
    if (merged === undefined) return;
    for (const target of read.targets) {
      if (!target.primary || !read.answers.has(target.node)) continue;
      const held = read.answers.get(target.node);
      if (held !== undefined && dvvDescends(held, merged)) continue;
      this.readRepairs++;
      if (target.node === this.init.nodeId) {
        this.repairLocal(read.bucket, read.key, merged, out);
      } else {
        // Nobody waits for the answer: the rid is not tracked, and the reply is ignored.
        this.send(target.node, { t: 'rput', from: this.init.nodeId, rid: this.deps.rid(), b: read.bucket, k: read.key, obj: merged }, out);
      }
    }
  }

  private repairLocal(bucket: string, key: string, merged: KvObject, out: NodeOutput[]): void {
    const slot = { bucket, key };
    try {
      const current = this.deps.local.latest(slot);
      const object = current === undefined ? merged : sync(current, merged);
      this.deps.local.write([{ ...slot, object }], out, (failure, done) => {
        if (failure !== undefined) done.push({ kind: 'log', level: 'error', msg: 'read repair write failed', fields: { bucket, key, reason: failure } });
      });
    } catch (error) {
      out.push({ kind: 'log', level: 'error', msg: 'read repair skipped: local read failed', fields: { bucket, key, reason: String(error) } });
    }
  }

  // ---- forwarding ----

  /** This node holds no replica of the key: a target coordinates the write, and its answer is relayed. */
  private forward(origin: Origin, request: WriteRequest, targets: readonly ReplicaTarget[], out: NodeOutput[]): void {
    if (origin.kind === 'peer') {
      // The forwarding node's view put this node among the targets; this node's view does not.
      const error = new UnavailableError('the nodes disagree on where the key lives (the ring is changing); retry', { mayHaveLanded: false, retry: true });
      return this.reply(origin, errorReply(request.id, error), out);
    }
    const to = targets.find((t) => t.primary && t.node !== this.init.nodeId);
    if (to === undefined) {
      const error = new UnavailableError('no primary replica of the key is alive to order the write', { mayHaveLanded: false, primariesAlive: 0 });
      return this.reply(origin, errorReply(request.id, error), out);
    }
    const number = this.requestNext++;
    const timeoutTicks = this.timeoutTicks(request.timeout);
    this.open(number, { kind: 'forward', origin, rids: [], id: request.id, op: request.t, deadline: this.now + timeoutTicks + FORWARD_GRACE_TICKS });
    const rid = this.track(number, to.node);
    this.forwarded++;
    this.send(to.node, { t: 'fwd', from: this.init.nodeId, rid, req: { ...request, timeout: timeoutTicks * this.init.tickMs } }, out);
  }

  // ---- answers from peers ----

  /** A peer's answer to a message this coordinator sent. Returns false when the rid is not ours. */
  onPeerAnswer(from: string, message: PeerMessage, out: NodeOutput[]): boolean {
    if (!('rid' in message)) return false;
    const tracked = this.remote.get(message.rid);
    // Answers nobody waits for (read repair, a request already closed) end here; an unknown
    // error may be the answer to a handoff batch.
    if (tracked === undefined) return message.t !== 'rerr';
    if (tracked.node !== from) return true;
    const request = this.requests.get(tracked.request);
    this.remote.delete(message.rid);
    if (request === undefined) return true;
    switch (message.t) {
      case 'rput-ok':
        this.onWriteAnswer(tracked.request, from, true, out);
        return true;
      case 'rget-ok': {
        if (message.dg !== undefined) {
          if (request.kind === 'read') this.onDigest(tracked.request, request, from, message.dg, out);
          return true;
        }
        const object = message.obj === undefined ? undefined : checkObject(message.obj);
        if (object === 'invalid') {
          out.push({ kind: 'log', level: 'warn', msg: 'replica answered a malformed object', fields: { from, bucket: request.kind === 'forward' ? '' : request.bucket } });
          this.onReadAnswer(tracked.request, from, { ok: false }, out);
        } else {
          this.onReadAnswer(tracked.request, from, { ok: true, object }, out);
        }
        return true;
      }
      case 'rerr':
        if (request.kind === 'write') this.onWriteAnswer(tracked.request, from, false, out, message.code);
        else if (request.kind === 'read') this.onReadAnswer(tracked.request, from, { ok: false }, out);
        else this.finishForward(tracked.request, request, errorReply(request.id, new UnavailableError(`forwarded ${request.op} failed at ${from}: ${message.msg}`, { mayHaveLanded: request.op !== 'get' })), out);
        return true;
      case 'fwd-reply':
        if (request.kind === 'forward') this.finishForward(tracked.request, request, { ...message.reply, id: request.id }, out);
        return true;
      default:
        return false;
    }
  }

  /**
   * A peer could not be reached: whatever this coordinator awaits from it fails now rather
   * than at its deadline, so a quorum that can still be met with others is decided at once.
   */
  onPeerUnreachable(node: string, out: NodeOutput[]): void {
    const lost: [number, number][] = [];
    for (const [rid, tracked] of this.remote.entries()) if (tracked.node === node) lost.push([rid, tracked.request]);
    for (const [rid, number] of lost) {
      this.remote.delete(rid);
      const request = this.requests.get(number);
      if (request === undefined) continue;
      if (request.kind === 'write') this.onWriteAnswer(number, node, false, out, 'UNAVAILABLE');
      else if (request.kind === 'read') this.onReadAnswer(number, node, { ok: false }, out);
      else this.finishForward(number, request, errorReply(request.id, new UnavailableError(`the node coordinating this ${request.op} could not be reached`, { mayHaveLanded: request.op !== 'get' })), out);
    }
  }

  private finishForward(number: number, forward: OpenForward, reply: ClientReply, out: NodeOutput[]): void {
    this.requests.delete(number);
    for (const rid of forward.rids) this.remote.delete(rid);
    this.settle(forward.origin);
    this.reply(forward.origin, reply, out);
  }

  // ---- request bookkeeping ----

  private open(number: number, request: Request): void {
    this.requests.set(number, request);
    const list = this.deadlines.get(request.deadline);
    if (list) list.push(number);
    else this.deadlines.set(request.deadline, [number]);
    if (request.origin.kind === 'client') this.inflightByConn.set(request.origin.conn, (this.inflightByConn.get(request.origin.conn) ?? 0) + 1);
  }

  private track(number: number, node: string): number {
    const rid = this.deps.rid();
    this.remote.set(rid, { request: number, node });
    this.requests.get(number)?.rids.push(rid);
    return rid;
  }

  private expire(number: number, out: NodeOutput[]): void {
    const request = this.requests.get(number);
    if (request === undefined) return;
    if (request.kind === 'forward') {
      const error = new TimeoutError(`${request.op} forwarded to a replica got no answer in time`, { mayHaveLanded: request.op !== 'get' });
      return this.finishForward(number, request, errorReply(request.id, error), out);
    }
    if (!request.replied) {
      request.replied = true;
      const what = request.kind === 'write' ? `${request.op} timed out after ${request.tally.received} of ${request.tally.spec.required} acknowledgements` : `get timed out after ${request.tally.received} of ${request.tally.spec.required} replies`;
      this.replyTo(
        request,
        errorReply(request.id, new TimeoutError(what, { required: request.tally.spec.required, received: request.tally.received, mayHaveLanded: request.kind === 'write' })),
        out,
      );
    }
    this.close(number, request, out);
  }

  /** Every target answered, or the deadline passed: repair what a read found stale, schedule a reap. */
  private close(number: number, request: OpenWrite | OpenRead, out: NodeOutput[]): void {
    if (!this.requests.has(number)) return;
    this.requests.delete(number);
    for (const rid of request.rids) this.remote.delete(rid);
    if (request.kind === 'read') this.readRepair(request, out);
    else if (request.op === 'del' && request.primariesAcked === request.primaries && request.primaries > 0) this.scheduleReap(request);
  }

  private scheduleReap(write: OpenWrite): void {
    if (this.reapsPending >= REAPS_PENDING_MAX) return;
    const primaries = write.targets.filter((t) => t.primary).map((t) => t.node);
    // Anti-entropy confirms ranges this node shares; a coordinator that is no primary of the key can't.
    if (!primaries.includes(this.init.nodeId)) return;
    this.fileReap(this.now + this.graceTicks(), { bucket: write.bucket, key: write.key, object: write.object, primaries, since: this.now, waits: 0 });
  }

  private fileReap(at: number, reap: Reap): void {
    const list = this.reaps.get(at);
    if (list) list.push(reap);
    else this.reaps.set(at, [reap]);
    this.reapsPending++;
  }

  private graceTicks(): number {
    return Math.max(1, Math.ceil(this.init.replication.tombstoneGraceMs / this.init.tickMs));
  }

  private replyTo(request: OpenWrite | OpenRead, reply: ClientReply, out: NodeOutput[]): void {
    this.settle(request.origin);
    this.reply(request.origin, reply, out);
  }

  /** The origin's request got its answer: it no longer counts against its connection. */
  private settle(origin: Origin): void {
    if (origin.kind !== 'client') return;
    const left = (this.inflightByConn.get(origin.conn) ?? 1) - 1;
    if (left > 0) this.inflightByConn.set(origin.conn, left);
    else this.inflightByConn.delete(origin.conn);
  }

  onClientClosed(conn: ConnId): void {
    // Open requests still complete (their writes are already under way); only their replies are dropped.
    this.closedConns.add(conn);
    if (!this.inflightByConn.has(conn)) this.closedConns.delete(conn);
  }

  private reply(origin: Origin, reply: ClientReply, out: NodeOutput[]): void {
    if (origin.kind === 'peer') {
      // Only data requests are forwarded, and never a digest read.
      if (reply.t === 'admin-ok' || reply.t === 'dget-ok') return;
      this.send(origin.node, { t: 'fwd-reply', from: this.init.nodeId, rid: origin.rid, reply }, out);
      return;
    }
    const conn = origin.conn;
    if (this.closedConns.has(conn)) {
      if (!this.inflightByConn.has(conn)) this.closedConns.delete(conn);
      return;
    }
    out.push({ kind: 'client-reply', conn, reply });
  }

  private send(node: string, message: PeerMessage, out: NodeOutput[]): void {
    if (node === this.init.nodeId) return this.deps.toSelf(message, out);
    // A node whose address this one has not learnt yet (its gossip is still on the way) is
    // reached over the connection it opened, if any; otherwise the shell reports it unsent.
    out.push({ kind: 'send', to: this.deps.placement.addressOf(node) ?? { node, addr: '' }, message });
  }

  // ---- planning ----

  /**
   * Resolves a request's levels (request, then bucket, then cluster) against the key's
   * replica count and picks its targets; UNAVAILABLE when too few are alive.
   */
  private plan(
    bucket: string,
    levelIn: LevelInput | undefined,
    primaryIn: LevelInput | undefined,
    sloppyIn: boolean | undefined,
    name: 'r' | 'w',
    key: string,
  ): { ok: true; plan: Plan } | { ok: false; error: ChorusError } {
    const placement = this.deps.placement;
    const levels = this.levels(bucket, levelIn, primaryIn, name);
    if (!levels.ok) return levels;
    const { n } = levels;
    const primaryName: LevelName = name === 'r' ? 'pr' : 'pw';

    const list = placement.preferenceList(bucket, key, n);
    const replicas = Math.max(1, list.primaries.length);
    const required = Math.max(1, resolveLevel(levels.level, replicas));
    const primariesRequired = Math.min(resolveLevel(levels.primaryLevel, replicas), replicas);
    let spec: QuorumSpec = { required: Math.max(required, primariesRequired), primariesRequired };
    const sloppy = sloppyIn ?? this.init.replication.sloppy;
    const chosen = chooseTargets({ primaries: list.primaries, fallbacks: list.fallbacks, alive: (id) => placement.alive(id), sloppy });
    let targets: readonly ReplicaTarget[] = chosen;
    if (name === 'w' && list.pending !== undefined) {
      // A member joining or leaving: the key's future replicas take the write too, and their
      // acknowledgements count on top of w, so a write acknowledged now is on a quorum of the
      // replicas the change leaves (one that is down will pull its ranges again when back).
      const pending = list.pending.filter((id) => placement.alive(id) && !chosen.some((t) => t.node === id));
      if (pending.length > 0) {
        targets = [...chosen, ...pending.map((node) => ({ node, primary: false }))];
        spec = { required: spec.required + pending.length, primariesRequired: spec.primariesRequired };
      }
    }
    const shortfall = quorumShortfall(spec, targets);
    if (shortfall) {
      const what =
        shortfall.primariesAlive < spec.primariesRequired
          ? `${primaryName}=${spec.primariesRequired} needs ${spec.primariesRequired} primaries, ${shortfall.primariesAlive} alive`
          : `${name}=${spec.required} needs ${spec.required} replicas, ${shortfall.alive} reachable`;
      // Nothing was sent, so another node, which may see more replicas (the other side of a
      // partition, a fresher member table), may take the request: the client may retry there.
      return { ok: false, error: new UnavailableError(what, { ...shortfall, n, mayHaveLanded: false, retry: true }) };
    }
    const uncovered = list.primaries.filter((p) => !placement.alive(p) && !targets.some((t) => t.hintFor === p));
    return { ok: true, plan: { n, spec, targets, primaries: list.primaries.length, uncovered } };
  }

  /**
   * The levels a request asks for (`r` and `pr`, or `w` and `pw`), from the request, then the
   * bucket, then the cluster, checked against the bucket's `n`.
   */
  private levels(
    bucket: string,
    levelIn: LevelInput | undefined,
    primaryIn: LevelInput | undefined,
    name: 'r' | 'w',
  ): { ok: true; n: number; level: Level; primaryLevel: Level } | { ok: false; error: ChorusError } {
    const props = this.deps.placement.bucketProps(bucket);
    const n = props.n ?? this.init.replication.n;
    const primaryName: LevelName = name === 'r' ? 'pr' : 'pw';
    const level = levelIn !== undefined ? checkLevel(name, levelIn, n) : bucketLevel(name, props[name], n, this.init.replication[name]);
    if (!level.ok) return level;
    const primaryLevel = primaryIn === undefined ? { ok: true as const, level: this.init.replication[primaryName] } : checkLevel(primaryName, primaryIn, n);
    if (!primaryLevel.ok) return primaryLevel;
    if (typeof level.level === 'number' && level.level > n) return { ok: false, error: new InvalidRequestError(`${name}=${level.level} exceeds n=${n}`, { field: name, n }) };
    return { ok: true, n, level: level.level, primaryLevel: primaryLevel.level };
  }

  private timeoutTicks(timeoutMs: number | undefined): number {
    return Math.max(1, Math.ceil((timeoutMs ?? this.init.requestTimeoutMs) / this.init.tickMs));
  }
}

/** This node first (its copy is read without a message), then the others in preference order. */
function selfFirst(targets: readonly ReplicaTarget[], self: string): readonly ReplicaTarget[] {
  const index = targets.findIndex((t) => t.node === self);
  if (index <= 0) return targets;
  return [targets[index] as ReplicaTarget, ...targets.slice(0, index), ...targets.slice(index + 1)];
}

/** How many targets, from the front, a read asks first: enough for `required` answers and `primariesRequired` primaries. */
function readsToSend(targets: readonly ReplicaTarget[], spec: QuorumSpec): number {
  let primaries = 0;
  for (let i = 0; i < targets.length; i++) {
    if ((targets[i] as ReplicaTarget).primary) primaries++;
    if (i + 1 >= spec.required && primaries >= spec.primariesRequired) return i + 1;
  }
  return targets.length;
}

/** A bucket's default level, when it is one that fits its `n`; the cluster's otherwise. */
function bucketLevel(name: LevelName, value: string | number | undefined, n: number, fallback: Level): { ok: true; level: Level } {
  if (value === undefined) return { ok: true, level: fallback };
  const checked = checkLevel(name, value, n);
  return checked.ok ? checked : { ok: true, level: fallback };
}

function writeReply(write: OpenWrite): ClientReply {
  if (write.op === 'del') return { t: 'del-ok', id: write.id };
  if (write.op === 'upd') {
    const result = write.result;
    return { t: 'upd-ok', id: write.id, ...(result?.value !== undefined ? { value: result.value } : {}), ...(result?.duplicate === true ? { dup: true } : {}) };
  }
  return write.ctx === undefined ? { t: 'put-ok', id: write.id, siblings: write.siblings } : { t: 'put-ok', id: write.id, ctx: write.ctx, siblings: write.siblings };
}

/** A get's siblings and context; a typed read's merged value. */
function readReply(read: OpenRead): ClientReply {
  const merged = read.merged;
  if (read.typed === undefined) {
    const values = liveValues(merged);
    return { t: 'get-ok', id: read.id, found: values.length > 0, values, ctx: encodeContext(merged === undefined ? [] : join(merged)) };
  }
  const typed = typedValue(read.typed.type, merged === undefined ? [] : values(merged), read.typed.sv);
  if (typed.ok) return { t: 'fetch-ok', id: read.id, found: typed.found, value: typed.value };
  const error =
    typed.field === 'stored'
      ? new StorageError(`a replica holds an unreadable ${read.typed.type} state: ${typed.reason}`, { mayHaveLanded: false })
      : new InvalidRequestError(typed.reason, { field: typed.field });
  return errorReply(read.id, error);
}

export function errorReply(id: number, error: ChorusError): ClientReply {
  return { t: 'err', id, code: error.code, msg: error.message, details: { ...error.details } };
}
