/**
 * The coordinator: put, get and delete requests from clients, as per-request state machines.
 *
 * Coordination: every request is a per-request state machine around a quorum `Tally` over
 * the key's replica set (today this node alone; the ring widens it). A put is applied by a
 * replica, which creates the new dot, and counts toward `w` only once the shell reports the
 * write durable. A put reads the newest local version, including writes still on their way
 * to disk (the `pending` overlay), so two puts in one tick never lose each other's dots; a
 * get reads only what the store holds, so it never returns a value that a crash could
 * still take back.
 *
 * Deadlines are ticks: each request is filed under the tick at which it expires, and a tick
 * replies TIMEOUT to whatever is still open, saying whether a write may have landed.
 */

import { assert } from '../base/assert.js';
import { ChorusError, InvalidRequestError, OverloadedError, StorageError, TimeoutError, UnavailableError } from '../base/errors.js';
import { CONNECTION_REQUESTS_INFLIGHT_MAX, NODE_REQUESTS_INFLIGHT_MAX, type DataLimits } from '../base/limits.js';
import { encodeContext } from '../clock/context.js';
import { join, type Actor } from '../clock/dvv.js';
import type { KvObject } from '../clock/object.js';
import type { ClientReply, DeleteRequest, GetRequest, Level, PutRequest } from '../codec/messages.js';
import { resolveLevel } from '../replication/levels.js';
import { applyPut, deleteContext, liveValues } from '../replication/replica.js';
import { quorumShortfall, Tally, type QuorumSpec, type ReplicaTarget } from '../replication/tally.js';
import type { ConnId, NodeOutput } from './io.js';
import type { Placement } from './placement.js';
import type { StoreReader } from './ports.js';
import { checkBucketKey, checkValue, parseContext } from './validate.js';

export interface ReplicationDefaults {
  readonly n: number;
  readonly r: Level;
  readonly w: Level;
  readonly pr: Level;
  readonly pw: Level;
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
}

export interface CoordinatorDeps {
  readonly store: StoreReader;
  readonly placement: Placement;
}

/** The data requests a client may send; admin requests go elsewhere. */
export type DataRequest = PutRequest | GetRequest | DeleteRequest;

interface Coordinated {
  readonly conn: ConnId;
  readonly id: number;
  readonly op: 'put' | 'del';
  readonly tally: Tally;
  readonly deadline: number;
  /** The context to return: present only when the write left a single sibling (see putReply). */
  ctx: Uint8Array | undefined;
  readonly siblings: number;
}

interface PendingWrite {
  readonly writeId: number;
  readonly object: KvObject;
}

export class Coordinator {
  private readonly init: CoordinatorInit;
  private readonly deps: CoordinatorDeps;
  private now = 0;
  private writeIdNext = 1;
  private requestNext = 1;
  /** Open coordinated writes by internal request number. */
  private readonly writes = new Map<number, Coordinated>();
  /** Which request (and replica) each storage batch belongs to. */
  private readonly batches = new Map<number, { readonly request: number; readonly node: string; readonly storageKey: string }>();
  /** Newest not-yet-durable version per storage key, read by later puts. */
  private readonly pending = new Map<string, PendingWrite>();
  /** Requests filed by the tick at which they time out. */
  private readonly deadlines = new Map<number, number[]>();
  private readonly inflightByConn = new Map<ConnId, number>();
  private readonly closedConns = new Set<ConnId>();

  constructor(deps: CoordinatorDeps, init: CoordinatorInit) {
    assert(init.tickMs > 0, 'tickMs must be positive');
    this.deps = deps;
    this.init = init;
  }

  get ticks(): number {
    return this.now;
  }

  get inflight(): number {
    return this.writes.size;
  }

  onTick(out: NodeOutput[]): void {
    this.now++;
    const due = this.deadlines.get(this.now);
    if (due === undefined) return;
    this.deadlines.delete(this.now);
    for (const request of due) {
      const write = this.writes.get(request);
      if (write === undefined) continue;
      this.finish(request, write, out, new TimeoutError(`${write.op} timed out after ${write.tally.received} of ${write.tally.spec.required} acknowledgements`, {
        required: write.tally.spec.required,
        received: write.tally.received,
        mayHaveLanded: true,
      }));
    }
  }

  onClientRequest(conn: ConnId, request: DataRequest, out: NodeOutput[]): void {
    this.closedConns.delete(conn);
    const refusal = this.admit(conn);
    if (refusal) return this.reply(conn, errorReply(request.id, refusal), out);
    switch (request.t) {
      case 'put':
        return this.onPut(conn, request, out);
      case 'get':
        return this.onGet(conn, request, out);
      case 'del':
        return this.onDelete(conn, request, out);
    }
  }

  private admit(conn: ConnId): ChorusError | undefined {
    if ((this.inflightByConn.get(conn) ?? 0) >= CONNECTION_REQUESTS_INFLIGHT_MAX) {
      return new OverloadedError(`over ${CONNECTION_REQUESTS_INFLIGHT_MAX} requests in flight on this connection`, { limit: CONNECTION_REQUESTS_INFLIGHT_MAX });
    }
    if (this.writes.size >= NODE_REQUESTS_INFLIGHT_MAX) {
      return new OverloadedError(`node has ${NODE_REQUESTS_INFLIGHT_MAX} requests in flight`, { limit: NODE_REQUESTS_INFLIGHT_MAX });
    }
    return undefined;
  }

  private onPut(conn: ConnId, request: PutRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits) ?? checkValue(request.v, this.init.limits);
    if (invalid) return this.reply(conn, errorReply(request.id, invalid), out);
    const context = parseContext(request.ctx);
    if (!context.ok) return this.reply(conn, errorReply(request.id, context.error), out);
    this.coordinateWrite(conn, request, 'put', (current) => ({ context: context.value, value: request.v, current }), out);
  }

  private onDelete(conn: ConnId, request: DeleteRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits);
    if (invalid) return this.reply(conn, errorReply(request.id, invalid), out);
    const context = parseContext(request.ctx);
    if (!context.ok) return this.reply(conn, errorReply(request.id, context.error), out);
    this.coordinateWrite(conn, request, 'del', (current) => ({ context: deleteContext(current, context.value), value: null, current }), out);
  }

  /**
   * Plans a write over the key's replicas and applies it at the first replica, which creates
   * the dot. With one replica (this node) that is the whole write; replication fans it out.
   */
  private coordinateWrite(
    conn: ConnId,
    request: PutRequest | DeleteRequest,
    op: 'put' | 'del',
    plan: (current: KvObject | undefined) => { context: ReturnType<typeof join>; value: Uint8Array | null; current: KvObject | undefined },
    out: NodeOutput[],
  ): void {
    const quorum = this.quorumFor(request.b, request.k, request.w ?? this.init.replication.w, request.pw ?? this.init.replication.pw, 'w');
    if (!quorum.ok) return this.reply(conn, errorReply(request.id, quorum.error), out);
    const first = quorum.targets[0];
    assert(first !== undefined && first.node === this.init.nodeId, 'the coordinator is the only replica until the ring exists');

    const storageKey = storageKeyOf(request.b, request.k);
    const current = this.pending.get(storageKey)?.object ?? this.deps.store.get(request.b, request.k);
    const { context, value } = plan(current);
    const written = applyPut(current, context, value, this.init.actor);
    if (written.siblings > this.init.limits.siblingsMax) {
      const error = new InvalidRequestError(`write would leave ${written.siblings} siblings, over the limit of ${this.init.limits.siblingsMax}; read, resolve and write with the context`, {
        siblings: written.siblings,
        limit: this.init.limits.siblingsMax,
      });
      return this.reply(conn, errorReply(request.id, error), out);
    }
    if (written.siblings >= this.init.limits.siblingsWarn) {
      out.push({ kind: 'log', level: 'warn', msg: 'many siblings', fields: { bucket: request.b, key: request.k, siblings: written.siblings } });
    }

    const number = this.requestNext++;
    const deadline = this.now + this.timeoutTicks(request.timeout);
    const ctx = written.siblings === 1 ? encodeContext(join(written.object)) : undefined;
    this.writes.set(number, { conn, id: request.id, op, tally: new Tally(quorum.spec, quorum.targets), deadline, ctx, siblings: written.siblings });
    this.fileDeadline(number, deadline);
    this.inflightByConn.set(conn, (this.inflightByConn.get(conn) ?? 0) + 1);

    const writeId = this.writeIdNext++;
    this.pending.set(storageKey, { writeId, object: written.object });
    this.batches.set(writeId, { request: number, node: this.init.nodeId, storageKey });
    out.push({ kind: 'store-write', writeId, writes: [{ op: 'put', bucket: request.b, key: request.k, object: written.object }] });
  }

  private onGet(conn: ConnId, request: GetRequest, out: NodeOutput[]): void {
    const invalid = checkBucketKey(request.b, request.k, this.init.limits);
    if (invalid) return this.reply(conn, errorReply(request.id, invalid), out);
    const quorum = this.quorumFor(request.b, request.k, request.r ?? this.init.replication.r, request.pr ?? this.init.replication.pr, 'r');
    if (!quorum.ok) return this.reply(conn, errorReply(request.id, quorum.error), out);
    const tally = new Tally(quorum.spec, quorum.targets);
    let object: KvObject | undefined;
    try {
      object = this.deps.store.get(request.b, request.k);
      tally.ack(this.init.nodeId);
    } catch (error) {
      tally.fail(this.init.nodeId);
      out.push({ kind: 'log', level: 'error', msg: 'local read failed', fields: { bucket: request.b, key: request.k, reason: String(error) } });
    }
    if (tally.outcome !== 'met') {
      const error = new StorageError('no replica could read the key', { required: tally.spec.required, received: tally.received });
      return this.reply(conn, errorReply(request.id, error), out);
    }
    const values = liveValues(object);
    const ctx = encodeContext(object === undefined ? [] : join(object));
    this.reply(conn, { t: 'get-ok', id: request.id, found: values.length > 0, values, ctx }, out);
  }

  onStoreDone(writeId: number, failure: string | undefined, out: NodeOutput[]): void {
    const batch = this.batches.get(writeId);
    if (batch === undefined) return;
    this.batches.delete(writeId);
    if (this.pending.get(batch.storageKey)?.writeId === writeId) this.pending.delete(batch.storageKey);
    const write = this.writes.get(batch.request);
    if (write === undefined) return;
    if (failure !== undefined) {
      out.push({ kind: 'log', level: 'error', msg: 'storage write failed', fields: { writeId, reason: failure } });
      if (write.tally.fail(batch.node) === 'failed') {
        this.finish(batch.request, write, out, new StorageError(`storage write failed: ${failure}`, { required: write.tally.spec.required, received: write.tally.received }));
      }
      return;
    }
    if (write.tally.ack(batch.node) === 'met') this.finish(batch.request, write, out, undefined);
  }

  private finish(request: number, write: Coordinated, out: NodeOutput[], error: ChorusError | undefined): void {
    this.writes.delete(request);
    const left = (this.inflightByConn.get(write.conn) ?? 1) - 1;
    if (left > 0) this.inflightByConn.set(write.conn, left);
    else this.inflightByConn.delete(write.conn);
    let reply: ClientReply;
    if (error) reply = errorReply(write.id, error);
    else if (write.op === 'del') reply = { t: 'del-ok', id: write.id };
    else reply = write.ctx === undefined ? { t: 'put-ok', id: write.id, siblings: write.siblings } : { t: 'put-ok', id: write.id, ctx: write.ctx, siblings: write.siblings };
    this.reply(write.conn, reply, out);
  }

  onClientClosed(conn: ConnId): void {
    // Open requests still complete (their writes are already under way); only their replies are dropped.
    this.closedConns.add(conn);
    if (!this.inflightByConn.has(conn)) this.closedConns.delete(conn);
  }

  private reply(conn: ConnId, reply: ClientReply, out: NodeOutput[]): void {
    if (this.closedConns.has(conn)) {
      if (!this.inflightByConn.has(conn)) this.closedConns.delete(conn);
      return;
    }
    out.push({ kind: 'client-reply', conn, reply });
  }

  private quorumFor(
    bucket: string,
    key: string,
    level: Level,
    primaryLevel: Level,
    name: 'r' | 'w',
  ): { ok: true; spec: QuorumSpec; targets: readonly ReplicaTarget[] } | { ok: false; error: ChorusError } {
    const n = this.init.replication.n;
    if (typeof level === 'number' && level > n) return { ok: false, error: new InvalidRequestError(`${name}=${level} exceeds n=${n}`, { field: name, n }) };
    const targets = this.deps.placement.replicasFor(bucket, key, n);
    const replicas = Math.min(n, Math.max(targets.length, 1));
    const spec: QuorumSpec = {
      required: Math.max(1, resolveLevel(level, replicas)),
      primariesRequired: Math.min(resolveLevel(primaryLevel, replicas), Math.max(1, resolveLevel(level, replicas))),
    };
    const shortfall = quorumShortfall(spec, targets);
    if (shortfall) {
      return { ok: false, error: new UnavailableError(`${name}=${spec.required} needs ${spec.required} replicas, ${shortfall.alive} alive`, shortfall) };
    }
    return { ok: true, spec, targets };
  }

  private timeoutTicks(timeoutMs: number | undefined): number {
    return Math.max(1, Math.ceil((timeoutMs ?? this.init.requestTimeoutMs) / this.init.tickMs));
  }

  private fileDeadline(request: number, deadline: number): void {
    const list = this.deadlines.get(deadline);
    if (list) list.push(request);
    else this.deadlines.set(deadline, [request]);
  }
}

function storageKeyOf(bucket: string, key: string): string {
  return `${bucket}\0${key}`;
}

export function errorReply(id: number, error: ChorusError): ClientReply {
  return { t: 'err', id, code: error.code, msg: error.message, details: { ...error.details } };
}
