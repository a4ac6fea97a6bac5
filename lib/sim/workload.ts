/**
 * Simulated clients of a simulated cluster, and the history of what they did.
 *
 * Each client runs one operation at a time against a small key space, so that writers
 * collide and siblings form: puts of values nobody else ever writes (`c3.17`: client 3's
 * 17th value), some without a context and some with the context of the client's last read
 * of the key (or of its last put, when the reply carried one); gets at `r=quorum` and
 * sometimes `r=one`; and deletes, most with a context. Every request goes to a node drawn
 * at random among those whose process exists (a paused node takes the request and answers
 * once it resumes), as a client library spreading its load would. Some quorum gets are
 * paired as the SDK pairs them: the get names another node as its pair, which the client
 * asks for its digest (`dget`) at the same time; a node that answers with its own copy and
 * digest completes the read only if the pair's digest is the same, and otherwise, or when
 * the pair is silent for PAIR_WAIT_TICKS after that answer, the get is sent again unpaired.
 *
 * The history records, for each operation, the tick it was invoked and the tick its reply
 * was seen, the node asked, the value written, which earlier operation's context it carried,
 * and for gets the values returned. Outcomes follow TESTING.md: `ok`; `fail`, definitely not
 * applied (the node refused before contacting any replica, `mayHaveLanded: false`); or
 * `unknown`, which may have landed (a timeout, a quorum missed after sending, or no reply at
 * all before the client gave up, as when the node crashed). Only `ok` is acknowledged.
 *
 * Everything random comes from the workload's own PRNG, so the workload replays with the run.
 */

import type { Prng } from '../base/prng.js';
import { decodeContext } from '../clock/context.js';
import { sameDigest } from '../codec/digest.js';
import type { ClientReply, GetReply, Level } from '../codec/messages.js';
import type { DataRequestWithoutId, SimCluster, SimNode } from './cluster.js';

export type OperationKind = 'put' | 'get' | 'del';
export type Outcome = 'pending' | 'ok' | 'fail' | 'unknown';

export interface Operation {
  /** Position in the history. */
  readonly index: number;
  readonly client: number;
  readonly kind: OperationKind;
  readonly key: string;
  /** The node the request went to. */
  readonly node: string;
  /** The cluster's request id, under which its reply is found (a paired get sent again unpaired gets a new one). */
  requestId: number;
  /** A paired get: the pair's `dget`, and the get's own answer while the client waits for the pair's. */
  pair?: { readonly node: string; readonly requestId: number; answer: GetReply | undefined; answeredTick: number } | undefined;
  readonly invokeTick: number;
  /** `r` of a get, `w` of a put or delete. */
  readonly level: Level;
  /** The value a put writes. */
  readonly value: string | undefined;
  /**
   * The operation whose reply gave the context this write carries: a get, or a put whose
   * reply held one. Undefined: no context (or one that names no version at all).
   */
  readonly contextFrom: number | undefined;
  completeTick: number | undefined;
  outcome: Outcome;
  /** The error code of a refused or failed request. */
  code: string | undefined;
  /** What a successful get returned. */
  values: readonly string[] | undefined;
  /** The context the reply carried (a get's always, a put's when it left one sibling). */
  replyContext: Uint8Array | undefined;
}

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  readonly bucket: string;
  /** Shares of puts, gets and deletes. */
  readonly mix: { readonly put: number; readonly get: number; readonly del: number };
  /** Chance that a put carries the client's last context for the key, when it has one. */
  readonly putContextChance: number;
  /** Chance that a delete carries it. */
  readonly deleteContextChance: number;
  /** Chance that a get asks `r=one` rather than `r=quorum`. */
  readonly readOneChance: number;
  /** Chance that a quorum get is paired (see above). */
  readonly pairChance: number;
  /** The `w` levels puts and deletes choose from. */
  readonly writeLevels: readonly Level[];
  /** Ticks a client waits between operations, at most. */
  readonly thinkTicksMax: number;
  /** Ticks a client waits for a reply before it gives up and records `unknown`. */
  readonly clientTimeoutTicks: number;
  /**
   * Where a request goes: `any` node (it coordinates, or forwards a write to a replica), or a
   * `primary` of the key whose process exists, as a topology-aware client routes (any node
   * when every primary is down).
   */
  readonly route: 'any' | 'primary';
}

export const WORKLOAD_DEFAULTS: WorkloadOptions = {
  clients: 8,
  keys: 24,
  bucket: 'sim',
  mix: { put: 0.5, get: 0.35, del: 0.15 },
  putContextChance: 0.75,
  deleteContextChance: 0.8,
  readOneChance: 0.25,
  pairChance: 0.5,
  writeLevels: ['quorum', 2],
  thinkTicksMax: 10,
  // The node's request timeout (500 ticks at the sim's 5 s and 10 ms ticks), plus a forward's grace.
  clientTimeoutTicks: 800,
  route: 'any',
};

interface Client {
  readonly id: number;
  pending: Operation | undefined;
  nextTick: number;
  written: number;
  /** Per key, the operation whose reply context the client would write with next. */
  readonly contexts: Map<string, Operation>;
}

export class Workload {
  readonly options: WorkloadOptions;
  readonly keys: readonly string[];
  private readonly cluster: SimCluster;
  private readonly prng: Prng;
  private readonly clients: Client[];
  private readonly operations: Operation[] = [];
  private issuing = true;
  private pairsUnsettled = 0;

  constructor(deps: { readonly cluster: SimCluster; readonly prng: Prng }, options: Partial<WorkloadOptions> = {}) {
    this.cluster = deps.cluster;
    this.prng = deps.prng;
    this.options = { ...WORKLOAD_DEFAULTS, ...options };
    this.keys = Array.from({ length: this.options.keys }, (_, i) => `k${i}`);
    this.clients = Array.from({ length: this.options.clients }, (_, id) => ({ id, pending: undefined, nextTick: 0, written: 0, contexts: new Map() }));
  }

  get history(): readonly Operation[] {
    return this.operations;
  }

  /** Paired gets sent again unpaired: the copies differed, or the pair was silent. */
  get unsettledPairs(): number {
    return this.pairsUnsettled;
  }

  /** Whether every client has its answer (or gave up waiting). */
  get idle(): boolean {
    return this.clients.every((client) => client.pending === undefined);
  }

  /** No new operations from now on; those in flight still complete. */
  stop(): void {
    this.issuing = false;
  }

  /** One tick of the clients, before the cluster's: collect replies, give up on silence, send what is due. */
  step(): void {
    const now = this.cluster.now;
    for (const client of this.clients) {
      const pending = client.pending;
      if (pending !== undefined) {
        if (pending.pair?.answer !== undefined) {
          this.settlePair(client, pending, now);
        } else {
          const reply = this.cluster.replyTo(pending.requestId);
          if (reply !== undefined) this.answered(client, pending, reply, now);
        }
        if (client.pending === pending && now - pending.invokeTick >= this.options.clientTimeoutTicks) this.giveUp(client, pending, now);
      }
      if (client.pending === undefined && this.issuing && now >= client.nextTick) this.issue(client, now);
    }
  }

  private issue(client: Client, now: number): void {
    const nodes = this.cluster.nodes.filter((node) => node.state !== 'down');
    if (nodes.length === 0) return;
    const key = this.prng.pick(this.keys);
    const { bucket, mix } = this.options;
    const candidates = this.options.route === 'primary' ? this.primariesUp(key, nodes) : nodes;
    const node = this.prng.pick(candidates);
    const roll = this.prng.next() * (mix.put + mix.get + mix.del);
    const kind: OperationKind = roll < mix.put ? 'put' : roll < mix.put + mix.get ? 'get' : 'del';
    const known = client.contexts.get(key);
    let request: DataRequestWithoutId;
    let level: Level;
    let value: string | undefined;
    let contextFrom: Operation | undefined;
    let pair: Operation['pair'];
    if (kind === 'get') {
      level = this.prng.chance(this.options.readOneChance) ? 'one' : 'quorum';
      request = { t: 'get', b: bucket, k: key, r: level };
      const others = candidates.filter((other) => other !== node);
      if (level === 'quorum' && others.length > 0 && this.prng.chance(this.options.pairChance)) {
        const to = this.prng.pick(others);
        request = { ...request, pair: to.id };
        pair = { node: to.id, requestId: this.cluster.request(to.id, { t: 'dget', b: bucket, k: key }), answer: undefined, answeredTick: 0 };
      }
    } else {
      level = this.prng.pick(this.options.writeLevels);
      const chance = kind === 'put' ? this.options.putContextChance : this.options.deleteContextChance;
      contextFrom = known !== undefined && this.prng.chance(chance) ? known : undefined;
      const ctx = contextFrom?.replyContext;
      if (kind === 'put') {
        value = `c${client.id}.${++client.written}`;
        request = { t: 'put', b: bucket, k: key, v: new TextEncoder().encode(value), w: level, ...(ctx === undefined ? {} : { ctx }) };
      } else {
        request = { t: 'del', b: bucket, k: key, w: level, ...(ctx === undefined ? {} : { ctx }) };
      }
      // A context that names no version (from a read that found nothing) is no context at all.
      if (ctx !== undefined && isEmptyContext(ctx)) contextFrom = undefined;
    }
    const requestId = this.cluster.request(node.id, request);
    const operation: Operation = {
      index: this.operations.length,
      client: client.id,
      kind,
      key,
      node: node.id,
      requestId,
      pair,
      invokeTick: now,
      level,
      value,
      contextFrom: contextFrom?.index,
      completeTick: undefined,
      outcome: 'pending',
      code: undefined,
      values: undefined,
      replyContext: undefined,
    };
    this.operations.push(operation);
    client.pending = operation;
    // The reply may have come at once (a request refused before anything was sent).
    const reply = this.cluster.replyTo(requestId);
    if (reply !== undefined) this.answered(client, operation, reply, now);
  }

  /** A node answered: the operation is complete, unless it is a paired get's half that waits for the pair. */
  private answered(client: Client, operation: Operation, reply: ClientReply, now: number): void {
    const pair = operation.pair;
    if (pair === undefined || reply.t !== 'get-ok' || reply.dg === undefined) return this.complete(client, operation, reply, now);
    pair.answer = reply;
    pair.answeredTick = now;
    this.settlePair(client, operation, now);
  }

  /** A paired get with the node's answer: complete on the same digest, send it again unpaired on another or on silence. */
  private settlePair(client: Client, operation: Operation, now: number): void {
    const pair = operation.pair as NonNullable<Operation['pair']>;
    const answer = pair.answer as GetReply;
    const theirs = this.cluster.replyTo(pair.requestId);
    if (theirs === undefined && now - pair.answeredTick < PAIR_WAIT_TICKS) return;
    if (theirs?.t === 'dget-ok' && sameDigest(answer.dg ?? [], theirs.dg)) return this.complete(client, operation, answer, now);
    this.pairsUnsettled++;
    operation.pair = undefined;
    operation.requestId = this.cluster.request(operation.node, { t: 'get', b: this.options.bucket, k: operation.key, r: operation.level });
    const reply = this.cluster.replyTo(operation.requestId);
    if (reply !== undefined) this.complete(client, operation, reply, now);
  }

  /** The key's primaries among `nodes`, as a running node places the key; all of `nodes` when none is. */
  private primariesUp(key: string, nodes: readonly SimNode[]): readonly SimNode[] {
    const viewer = nodes.find((node) => node.state === 'up');
    if (viewer === undefined) return nodes;
    const reply = this.cluster.admin(viewer.id, 'whereis', { bucket: this.options.bucket, key });
    if (reply?.t !== 'admin-ok') return nodes;
    const primaries = new Set((reply.result as { primaries: string[] }).primaries);
    const up = nodes.filter((node) => primaries.has(node.id));
    return up.length > 0 ? up : nodes;
  }

  private complete(client: Client, operation: Operation, reply: ClientReply, now: number): void {
    client.pending = undefined;
    client.nextTick = now + 1 + this.prng.int(this.options.thinkTicksMax + 1);
    operation.completeTick = now;
    switch (reply.t) {
      case 'get-ok':
        operation.outcome = 'ok';
        operation.values = reply.values.map((v) => new TextDecoder().decode(v));
        operation.replyContext = reply.ctx;
        client.contexts.set(operation.key, operation);
        return;
      case 'put-ok':
        operation.outcome = 'ok';
        operation.replyContext = reply.ctx;
        // Without a context (siblings remain) the client must read before it writes with one.
        if (reply.ctx === undefined) client.contexts.delete(operation.key);
        else client.contexts.set(operation.key, operation);
        return;
      case 'del-ok':
        operation.outcome = 'ok';
        client.contexts.delete(operation.key);
        return;
      case 'err':
        operation.code = reply.code;
        operation.outcome = definitelyNotApplied(reply) ? 'fail' : 'unknown';
        return;
      case 'admin-ok':
        operation.outcome = 'unknown';
        operation.code = 'UNEXPECTED_REPLY';
        return;
    }
  }

  private giveUp(client: Client, operation: Operation, now: number): void {
    client.pending = undefined;
    client.nextTick = now + 1;
    operation.outcome = 'unknown';
    operation.code = 'NO_REPLY';
  }
}

/** Ticks a paired get waits for the pair's digest after the node answered (the SDK's 50 ms at 10 ms ticks). */
export const PAIR_WAIT_TICKS = 5;

/** Refused before any replica was contacted: the node says so, or the request itself was wrong. */
export function definitelyNotApplied(reply: Extract<ClientReply, { t: 'err' }>): boolean {
  const landed = reply.details.mayHaveLanded;
  if (landed === false) return true;
  return landed === undefined && (reply.code === 'INVALID_REQUEST' || reply.code === 'TOO_LARGE' || reply.code === 'OVERLOADED');
}

function isEmptyContext(ctx: Uint8Array): boolean {
  const decoded = decodeContext(ctx);
  return decoded.ok && decoded.value.length === 0;
}

/** Counts of a history: operations by kind and outcome. */
export interface HistorySummary {
  readonly operations: number;
  readonly acknowledged: number;
  readonly putsAcknowledged: number;
  readonly deletesAcknowledged: number;
  readonly getsAcknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  /** Gets that returned more than one value. */
  readonly siblingReads: number;
}

export function summarize(history: readonly Operation[]): HistorySummary {
  const count = (predicate: (op: Operation) => boolean): number => history.reduce((n, op) => n + (predicate(op) ? 1 : 0), 0);
  return {
    operations: history.length,
    acknowledged: count((op) => op.outcome === 'ok'),
    putsAcknowledged: count((op) => op.outcome === 'ok' && op.kind === 'put'),
    deletesAcknowledged: count((op) => op.outcome === 'ok' && op.kind === 'del'),
    getsAcknowledged: count((op) => op.outcome === 'ok' && op.kind === 'get'),
    failed: count((op) => op.outcome === 'fail'),
    unknown: count((op) => op.outcome === 'unknown'),
    siblingReads: count((op) => (op.values?.length ?? 0) > 1),
  };
}
