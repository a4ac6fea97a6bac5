/**
 * The Chorus SDK: `connect({ nodes })`, then `put`, `get`, `delete` with per-request
 * consistency (`r`, `w`, `pr`, `pw`, `sloppy`), timeout and AbortSignal.
 *
 * The client keeps a link to every node it was given. Once one is up it asks a node for the
 * cluster's topology (members, their addresses and liveness, the ring, bucket replica counts),
 * asks again every few seconds and soon after a link drops, opens links to the members it was
 * not given and closes links to members that left. With a topology a request goes straight to
 * a replica of its key (topology.ts): a put or delete to the first alive primary, a get to
 * the alive primaries in turn. Without one, or when no primary is reachable, it goes to any
 * ready node, which forwards it.
 *
 * A request has a finite timeout (the node enforces it and answers TIMEOUT; the SDK waits a
 * little longer before giving up on its own). When a link drops, a request the node never
 * received is sent elsewhere, and so is a get (safe to repeat), within the deadline; a put or
 * delete the node may have received fails with CLOSED and `mayHaveLanded: true`, since
 * retrying a put without context would add a duplicate sibling. A node that refuses a request
 * before doing anything (an error with `retry: true` and `mayHaveLanded: false`, e.g.
 * UNAVAILABLE because its placement view changed) has it retried once on another node.
 *
 * Values are encoded to CBOR here and travel as opaque bytes: the node never decodes them.
 * Typed buckets (`counter()`, `set()`, `map()`, `register()`, `flag()`, `doc()`; typed.ts) are
 * the exception: the node merges their values and answers with the merged value.
 */

import {
  AbortedError,
  ChorusError,
  ClosedError,
  errorFromWire,
  InvalidRequestError,
  OverloadedError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from '../base/errors.js';
import { checkValueBytes, decodeValue, encodeValue } from '../codec/cbor.js';
import { checkBucketKey, checkValue } from '../codec/request-limits.js';
import { IdTable } from '../base/id-table.js';
import { REQUEST_TIMEOUT_MS_MAX } from '../base/limits.js';
import { randomBytes } from 'node:crypto';
import { sameDigest, type ObjectDigest } from '../codec/digest.js';
import { PAIRED_READS_VERSION, type AdminRequest, type ClientReply, type ClientRequest, type DeleteRequest, type ErrorReply, type FetchRequest, type GetReply, type GetRequest, type Level, type PutRequest, type UpdateRequest } from '../codec/messages.js';
import { CounterHandle, DocHandle, FlagHandle, MapHandle, RegisterHandle, SetHandle, type FetchOptions, type FetchResult, type TypedType, type UpdateOptions, type UpdateResult } from './typed.js';
import { contextFromString, contextToString, type Context } from './context.js';
import {
  CLIENT_INFLIGHT_MAX,
  CLIENT_LINKS_MAX,
  CLIENT_TIMEOUT_GRACE_MS,
  PAIR_DIGEST_WAIT_MS,
  TOPOLOGY_LINK_DOWN_DELAY_MS,
  TOPOLOGY_REFRESH_MS,
  TOPOLOGY_REFRESH_MS_MAX,
  TOPOLOGY_TIMEOUT_MS,
} from './limits.js';
import { CLOSE, type CloseReason } from '../transport/connection.js';
import { Link, type LinkEvents, type LinkOptions } from './link.js';
import { checkResolver, resolveSiblings, setLevels, setSloppy } from './request-options.js';
import { chooseReplica, memberAddresses, parseTopology, Placement, type Topology, type TopologyMember } from './topology.js';

export interface ConnectOptions {
  /** `host:port` of one or more nodes. */
  readonly nodes: readonly string[];
  /** The cluster's name; a node of another cluster refuses the connection. Default `chorus`. */
  readonly cluster?: string;
  /** The cluster's client secret, when it has one. */
  readonly secret?: string | null;
  /** Default timeout of each request, in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
  /** How long `connect` waits for a first node. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Interval of WebSocket pings that detect a dead connection. Default 2000. */
  readonly pingIntervalMs?: number;
  /**
   * Whether to open links to every member the topology lists, not only to `nodes`, so that
   * one seed reaches the whole cluster. Default true; false keeps to the given nodes (which
   * still forward requests to replicas).
   */
  readonly discover?: boolean;
  /** How often the topology is asked for again, in milliseconds. Default 5000. */
  readonly topologyRefreshMs?: number;
}

export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface PutOptions extends RequestOptions {
  /** The context of the read this write is based on; the write supersedes what that read saw. */
  readonly context?: Context;
  /** Replicas that must acknowledge the write. Default: the bucket's `w`. */
  readonly w?: Level;
  /** Of those, how many must be primaries (not fallbacks). Default: the bucket's `pw`. */
  readonly pw?: Level;
  /** Whether fallbacks may stand in for primaries that are down (sloppy quorum). Default: the node's setting. */
  readonly sloppy?: boolean;
}

export interface DeleteOptions extends RequestOptions {
  /** Without a context, a delete removes whatever the replica holds. */
  readonly context?: Context;
  readonly w?: Level;
  readonly pw?: Level;
  readonly sloppy?: boolean;
}

export interface AdminOptions extends RequestOptions {
  readonly bucket?: string;
  readonly key?: string;
  readonly props?: AdminRequest['props'];
  /**
   * The node that must answer (its address or id), among those the client is connected to:
   * for per-node requests such as `inspect` or `status`. Without it, operator requests go to
   * the first connected node of those given to `connect`.
   */
  readonly node?: string;
  /** The member a `remove` or `plan` is about (its id). */
  readonly member?: string;
  /** For `plan`: the change to plan. */
  readonly change?: AdminRequest['change'];
  /** For `plan` of a join: the new member's vnodes and zone. */
  readonly vnodes?: number;
  readonly zone?: string;
  /** For `remove` and `leave`: do it even though it is unsafe. */
  readonly force?: boolean;
}

export interface GetOptions<T = unknown> extends RequestOptions {
  /** Replicas that must answer. Default: the bucket's `r`. */
  readonly r?: Level;
  /** Of those, how many must be primaries. Default: the bucket's `pr`. */
  readonly pr?: Level;
  readonly sloppy?: boolean;
  /**
   * Makes one value of concurrent siblings; called only when there is more than one. The
   * result then holds that one value, `siblings` says how many there were, and `context` is
   * the read's, which covers all of them: the resolution is stored only once it is written
   * back with that context (`put(bucket, key, values[0], { context })`, or `writeBack`).
   */
  readonly resolver?: (values: T[]) => T;
  /**
   * With a resolver that resolved siblings, also write the resolved value back with the
   * read's context (default `w`, this request's timeout and signal), so the siblings are
   * replaced by it; the result's context is then the write's. Default false.
   */
  readonly writeBack?: boolean;
}

export interface GetResult<T = unknown> {
  /** False when the key was never written or only tombstones remain. */
  readonly found: boolean;
  /** Every concurrent value (siblings); one value when there is no conflict or a resolver made one. */
  readonly values: T[];
  /** Pass this back on the next put or delete of the key. */
  readonly context: Context;
  /** Present when a resolver ran: how many siblings the node returned. */
  readonly siblings?: number;
}

export interface PutResult {
  /** Present when the write left one value: the context to chain another write on it. */
  readonly context?: Context;
  /** How many siblings the key has after this write. */
  readonly siblings: number;
}

type Op = ClientRequest['t'];

/** Reads change nothing: safe to send again, and never "may have landed". */
function isRead(op: Op | undefined): boolean {
  return op === 'get' || op === 'fetch' || op === 'dget';
}

interface Pending {
  readonly op: Op;
  readonly request: Mutable<ClientRequest>;
  /** On the monotonic clock (`performance.now()`), as is `expiresAt`: a step of the wall clock must not expire or prolong a request. */
  readonly deadline: number;
  /** When the SDK stops waiting for the node's own TIMEOUT reply. */
  readonly expiresAt: number;
  readonly timeoutMs: number;
  readonly resolve: (reply: ClientReply) => void;
  readonly reject: (error: ChorusError) => void;
  link: Link | undefined;
  /** Whether it was sent once already: a resend carries only the time left. */
  sent: boolean;
  /** Whether a node's refusal (UNAVAILABLE with `retry`) was retried already; once is enough. */
  retried: boolean;
  cleanup: (() => void) | undefined;
  /** The node (address or id) an admin request must reach, when the caller named one. */
  readonly node: string | undefined;
  /** The link the first send takes when it is ready; cleared once used. */
  prefer: Link | undefined;
}

/** Before a node announced its limits, only the shape of a request is checked here. */
const UNKNOWN_LIMITS = { bucketBytesMax: Infinity, keyBytesMax: Infinity, valueBytesMax: Infinity };

/** How often the SDK looks for requests past their deadline; one timer serves them all. */
const SWEEP_INTERVAL_MS = 100;

export async function connect(options: ConnectOptions): Promise<Client> {
  if (!Array.isArray(options.nodes) || options.nodes.length === 0) {
    throw new InvalidRequestError('connect needs at least one node address (host:port)', { field: 'nodes' });
  }
  for (const node of options.nodes) {
    if (typeof node !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(node)) {
      throw new InvalidRequestError(`node address must be host:port, got ${JSON.stringify(node)}`, { field: 'nodes' });
    }
  }
  const refreshMs = options.topologyRefreshMs;
  if (refreshMs !== undefined && !(Number.isInteger(refreshMs) && refreshMs > 0)) {
    throw new InvalidRequestError(`topologyRefreshMs must be a positive whole number of milliseconds, got ${refreshMs}`, { field: 'topologyRefreshMs' });
  }
  const client = new Client(options);
  await client.ready(options.connectTimeoutMs ?? 5000);
  return client;
}

export class Client {
  /** Links by address: first the given nodes (in order), then members learned from the topology. */
  private readonly links = new Map<string, Link>();
  private readonly seeds: ReadonlySet<string>;
  private readonly linkOptions: Omit<LinkOptions, 'address'>;
  private readonly linkEvents: LinkEvents;
  /** Requests in flight by id (an IdTable rather than a Map: see `lib/base/id-table.ts`). */
  private readonly pending = new IdTable<Pending>();
  private readonly timeoutMs: number;
  private readonly discover: boolean;
  private readonly topologyRefreshMs: number;
  private placement: Placement | undefined;
  private topologyFetching = false;
  private topologyFailures = 0;
  private topologyTimer: NodeJS.Timeout | undefined;
  private topologyDueAt = Infinity;
  /** Nodes that closed the connection on a topology request: never asked again. */
  private readonly topologyRefusedBy = new Set<string>();
  /** Turns of the round-robin over a key's replicas for gets. */
  private readTurn = 0;
  private pairsUnsettled = 0;
  private idNext = 1;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: ConnectOptions) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.discover = options.discover ?? true;
    this.topologyRefreshMs = options.topologyRefreshMs ?? TOPOLOGY_REFRESH_MS;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    this.linkEvents = {
      onReply: (link: Link, reply: ClientReply) => this.onReply(link, reply),
      onDown: (link: Link, reason: CloseReason) => this.onLinkDown(link, reason),
      onUp: () => this.onLinkUp(),
    };
    this.linkOptions = {
      cluster: options.cluster ?? 'chorus',
      secret: options.secret ?? null,
      handshakeTimeoutMs: options.connectTimeoutMs ?? 5000,
      pingIntervalMs: options.pingIntervalMs ?? 2000,
      reconnectDelayMs: 100,
      reconnectDelayMsMax: 5000,
    };
    this.seeds = new Set(options.nodes);
    for (const address of this.seeds) this.links.set(address, new Link({ ...this.linkOptions, address }, this.linkEvents));
  }

  /** Resolves once some node is connected; rejects with every node's reason when none is in time. */
  async ready(timeoutMs: number): Promise<void> {
    const links = [...this.links.values()];
    const attempts = links.map((link) => link.open());
    const firstUp = new Promise<void>((resolve) => attempts.forEach((a) => void a.then((up) => up && resolve())));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    // Every first attempt failing with UNAUTHORIZED is final: redialing will not fix a wrong secret.
    const allRefused = Promise.all(attempts).then(() => {
      if (!links.every((l) => l.lastError?.code === 'UNAUTHORIZED')) return new Promise<void>(() => {});
    });
    await Promise.race([firstUp, expired, allRefused]);
    clearTimeout(timer);
    if (links.some((l) => l.ready)) return;
    const reasons = links.map((l) => `${l.address}: ${l.lastError?.message ?? 'no answer'}`).join('; ');
    await this.close();
    if (links.every((l) => l.lastError?.code === 'UNAUTHORIZED')) throw errorFromWire('UNAUTHORIZED', `no node accepted the connection: ${reasons}`);
    throw new UnavailableError(`no node reachable within ${timeoutMs} ms: ${reasons}`, { nodes: links.length });
  }

  /** The nodes this client can reach now. */
  get connectedNodes(): string[] {
    return [...this.links.values()].filter((l) => l.ready).map((l) => l.address);
  }

  /** The cluster as a node last described it, or undefined before (or without) an answer. */
  topology(): Topology | undefined {
    return this.placement?.topology;
  }

  async put(bucket: string, key: string, value: unknown, options: PutOptions = {}): Promise<PutResult> {
    const request: PutRequest = { t: 'put', id: 0, b: bucket, k: key, v: this.encodeChecked(value), timeout: this.timeout(options) };
    const ctx = contextFromString(options.context);
    if (ctx !== undefined) request.ctx = ctx;
    setLevels(request, options, 'w', 'pw');
    setSloppy(request, options.sloppy);
    const reply = await this.request(request, options);
    if (reply.t !== 'put-ok') throw unexpected(reply);
    return reply.ctx === undefined ? { siblings: reply.siblings } : { context: contextToString(reply.ctx), siblings: reply.siblings };
  }

  async get<T = unknown>(bucket: string, key: string, options: GetOptions<T> = {}): Promise<GetResult<T>> {
    const request: GetRequest = { t: 'get', id: 0, b: bucket, k: key, timeout: this.timeout(options) };
    setLevels(request, options, 'r', 'pr');
    setSloppy(request, options.sloppy);
    checkResolver(options.resolver);
    const reply = await this.read(request, options);
    const context = contextToString(reply.ctx);
    const { values, siblings } = resolveSiblings(
      reply.values.map((bytes) => decodeStored<T>(bytes)),
      options.resolver,
    );
    if (siblings === undefined) return { found: reply.found, values, context };
    if (options.writeBack !== true) return { found: reply.found, values, context, siblings };
    const written = await this.put(bucket, key, values[0], {
      context,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    return { found: reply.found, values, context: written.context ?? context, siblings };
  }

  /**
   * A get's reply, paired when it can be: the get goes to one primary of the key naming
   * another as its pair, and the pair is asked for its digest at the same time. When the two
   * hold the same version the read is complete with one message to each and none between
   * them. When they differ, or the pair does not answer within PAIR_DIGEST_WAIT_MS of the
   * first, the get is sent again unpaired, and the node coordinating it merges and repairs.
   * A node that cannot pair the read (its level needs other replicas) coordinates it at once.
   */
  private read(request: Mutable<GetRequest>, options: RequestOptions): Promise<GetReply> {
    const pairing = this.pairFor(request);
    if (pairing === undefined) return this.unpaired(request, options);
    return new Promise<GetReply>((resolve, reject) => {
      const startedAt = performance.now();
      const read = new PairedRead(() => this.retryUnpaired(request, options, startedAt), resolve, reject);
      request.pair = pairing.pair;
      const digest: Mutable<ClientRequest> = { t: 'dget', id: 0, b: request.b, k: request.k, timeout: request.timeout };
      this.send(digest, options, pairing.pair, pairing.pairLink, read.onTheirs, read.onTheirsFailed);
      this.send(request, options, undefined, pairing.firstLink, read.onMine, reject);
    });
  }

  /** A get coordinated by the node it reaches (it asks the other replicas itself). */
  private async unpaired(request: Mutable<GetRequest>, options: RequestOptions): Promise<GetReply> {
    const reply = await this.request(request, options);
    if (reply.t !== 'get-ok') throw unexpected(reply);
    return reply;
  }

  /** A paired get whose two replicas differed, or whose pair did not answer in time: sent again unpaired. */
  private retryUnpaired(request: Mutable<GetRequest>, options: RequestOptions, startedAt: number): Promise<GetReply> {
    this.pairsUnsettled++;
    delete request.pair;
    const timeout = request.timeout ?? this.timeoutMs;
    request.timeout = Math.max(1, Math.floor(timeout - (performance.now() - startedAt)));
    return this.unpaired(request, options);
  }

  /**
   * Where a paired get goes: the primary an unpaired read would take (reads rotate over the
   * key's alive primaries with ready links that speak paired gets, protocol 2) and the next
   * one, its pair. Undefined, and the get goes unpaired, unless the key has two such
   * primaries, the read's level (as the request or the bucket gives it; the cluster's default
   * is taken to be quorum) needs two answers, and there is room for a second request in
   * flight.
   */
  private pairFor(request: GetRequest): { readonly pair: string; readonly pairLink: Link; readonly firstLink: Link } | undefined {
    const placement = this.placement;
    if (placement === undefined || this.pending.size + 2 > CLIENT_INFLIGHT_MAX) return undefined;
    const level = request.r ?? placement.topology.buckets[request.b]?.r ?? 'quorum';
    const n = placement.replicas(request.b);
    const required = level === 'quorum' ? Math.floor(n / 2) + 1 : level === 'one' ? 1 : level === 'all' ? n : level;
    if (required !== 2) return undefined;
    const candidates: { readonly id: string; readonly link: Link }[] = [];
    for (const member of placement.primaries(request.b, request.k)) {
      if (member.live !== 'alive') continue;
      const link = this.linkFor(member, isReady);
      // A node of an older build would refuse the `pair` field and `dget`: it is never paired.
      if (link !== undefined && (link.welcome?.v ?? 0) >= PAIRED_READS_VERSION) candidates.push({ id: member.id, link });
    }
    if (candidates.length < 2) return undefined;
    const turn = this.readTurn++;
    const first = candidates[turn % candidates.length] as { id: string; link: Link };
    const pair = candidates[(turn + 1) % candidates.length] as { id: string; link: Link };
    return { pair: pair.id, pairLink: pair.link, firstLink: first.link };
  }

  /** Paired gets sent again unpaired: the two replicas differed, or the pair did not answer in time. */
  get stats(): { readonly pairsUnsettled: number } {
    return { pairsUnsettled: this.pairsUnsettled };
  }

  async delete(bucket: string, key: string, options: DeleteOptions = {}): Promise<void> {
    const request: DeleteRequest = { t: 'del', id: 0, b: bucket, k: key, timeout: this.timeout(options) };
    const ctx = contextFromString(options.context);
    if (ctx !== undefined) request.ctx = ctx;
    setLevels(request, options, 'w', 'pw');
    setSloppy(request, options.sloppy);
    const reply = await this.request(request, options);
    if (reply.t !== 'del-ok') throw unexpected(reply);
  }

  /**
   * An operation on a typed bucket (`counter`, `set`, `map`, `register`, `flag`, `doc`); the
   * handles (`counter()`, `set()`, ...) build the operation. Every update carries an
   * operation id (`opId`, a fresh one unless given): retrying an update with the id of one
   * whose outcome is unknown applies it at most once at the replica that coordinated it.
   */
  async update(bucket: string, key: string, type: TypedType, op: unknown, options: UpdateOptions = {}): Promise<UpdateResult> {
    const opId = options.opId ?? randomBytes(12).toString('base64url');
    if (typeof opId !== 'string' || opId.length === 0 || opId.length > 64) throw new InvalidRequestError('opId must be a string of 1 to 64 characters', { field: 'opId' });
    const request: UpdateRequest = { t: 'upd', id: 0, b: bucket, k: key, type, op, oid: opId, timeout: this.timeout(options) };
    if (options.returnValue === true) request.ret = true;
    setLevels(request, options, 'w', 'pw');
    setSloppy(request, options.sloppy);
    let reply: ClientReply;
    try {
      reply = await this.request(request, options);
    } catch (error) {
      // The id lets the caller retry safely; it travels with the error.
      if (error instanceof ChorusError) throw withDetail(error, 'opId', opId);
      throw error;
    }
    if (reply.t !== 'upd-ok') throw unexpected(reply);
    return { opId, duplicate: reply.dup === true, ...(reply.value !== undefined ? { value: reply.value } : {}) };
  }

  /** The merged value of a typed bucket's key; for a `doc` with `sv`, only the update that state vector lacks. */
  async fetch(bucket: string, key: string, type: TypedType, options: FetchOptions = {}): Promise<FetchResult> {
    const request: FetchRequest = { t: 'fetch', id: 0, b: bucket, k: key, type, timeout: this.timeout(options) };
    if (options.stateVector !== undefined) request.sv = options.stateVector;
    setLevels(request, options, 'r', 'pr');
    setSloppy(request, options.sloppy);
    const reply = await this.request(request, options);
    if (reply.t !== 'fetch-ok') throw unexpected(reply);
    return { found: reply.found, value: reply.value };
  }

  counter(bucket: string, key: string): CounterHandle {
    return new CounterHandle(this, bucket, key);
  }

  set(bucket: string, key: string): SetHandle {
    return new SetHandle(this, bucket, key);
  }

  map(bucket: string, key: string): MapHandle {
    return new MapHandle(this, bucket, key);
  }

  register(bucket: string, key: string): RegisterHandle {
    return new RegisterHandle(this, bucket, key);
  }

  flag(bucket: string, key: string): FlagHandle {
    return new FlagHandle(this, bucket, key);
  }

  doc(bucket: string, key: string): DocHandle {
    return new DocHandle(this, bucket, key);
  }

  /**
   * An operator request to the first connected node of those given to `connect`: `status`
   * (its member table), `leave` (a graceful departure), `bucket-set` (bucket properties in
   * cluster metadata), `bucket-list`, `ring` (ownership per node), `whereis` (a key's
   * preference list), `inspect`. `topology` goes to any connected node.
   */
  async admin(op: AdminRequest['op'], args: AdminOptions = {}): Promise<unknown> {
    const request: AdminRequest = { t: 'admin', id: 0, op, timeout: this.timeout(args) };
    if (args.bucket !== undefined) request.bucket = args.bucket;
    if (args.key !== undefined) request.key = args.key;
    if (args.props !== undefined) request.props = args.props;
    if (args.member !== undefined) request.node = args.member;
    if (args.change !== undefined) request.change = args.change;
    if (args.vnodes !== undefined) request.vnodes = args.vnodes;
    if (args.zone !== undefined) request.zone = args.zone;
    if (args.force !== undefined) request.force = args.force;
    const reply = await this.request(request, args, args.node);
    if (reply.t !== 'admin-ok') throw unexpected(reply);
    return reply.result;
  }

  /** Closes every link; requests still open fail with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.topologyTimer);
    for (const link of this.links.values()) link.close();
    for (const [id, pending] of this.pending.entries()) this.fail(id, new ClosedError('client closed', { mayHaveLanded: !isRead(pending.op) }));
  }

  private timeout(options: RequestOptions): number {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > REQUEST_TIMEOUT_MS_MAX) {
      throw new InvalidRequestError(`timeoutMs must be a whole number of milliseconds from 1 to ${REQUEST_TIMEOUT_MS_MAX}, got ${timeoutMs}`, { field: 'timeoutMs' });
    }
    return timeoutMs;
  }

  private encodeChecked(value: unknown): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = encodeValue(value);
    } catch (error) {
      throw new InvalidRequestError(`value cannot be encoded as CBOR: ${(error as Error).message}`, { field: 'value' });
    }
    const problem = checkValueBytes(bytes);
    if (problem !== undefined) throw new InvalidRequestError(`value is not storable: ${problem}`, { field: 'value' });
    return bytes;
  }

  /**
   * Sends a request built by the caller for this call alone: its `id` is set here. `node`
   * binds it to one node; `prefer` is the link its first send takes, when ready (a resend
   * after that link dropped is routed as usual).
   */
  private request(request: Mutable<ClientRequest>, options: RequestOptions, node?: string, prefer?: Link): Promise<ClientReply> {
    return new Promise<ClientReply>((resolve, reject) => this.send(request, options, node, prefer, resolve, reject));
  }

  /**
   * `request` without a promise: `resolve` or `reject` is called once, with the reply or the
   * error (at once, when the request is refused before it is sent).
   */
  private send(
    request: Mutable<ClientRequest>,
    options: RequestOptions,
    node: string | undefined,
    prefer: Link | undefined,
    resolve: (reply: ClientReply) => void,
    reject: (error: ChorusError) => void,
  ): void {
    if (this.closed) return reject(new ClosedError('client is closed'));
    if (options.signal?.aborted) return reject(new AbortedError('request aborted before it was sent'));
    if (this.pending.size >= CLIENT_INFLIGHT_MAX) {
      return reject(new OverloadedError(`over ${CLIENT_INFLIGHT_MAX} requests in flight on this client`, { limit: CLIENT_INFLIGHT_MAX }));
    }
    const refusal = this.checkLimits(request);
    if (refusal) return reject(refusal);
    const id = this.idNext++;
    request.id = id;
    const timeoutMs = request.timeout ?? this.timeoutMs;
    const now = performance.now();
    const pending: Pending = {
      op: request.t,
      request,
      deadline: now + timeoutMs,
      expiresAt: now + timeoutMs + CLIENT_TIMEOUT_GRACE_MS,
      timeoutMs,
      resolve,
      reject,
      link: undefined,
      sent: false,
      retried: false,
      cleanup: undefined,
      node,
      prefer,
    };
    const signal = options.signal;
    if (signal) {
      const onAbort = (): void => this.fail(id, new AbortedError('request aborted', { mayHaveLanded: !isRead(request.t) }));
      signal.addEventListener('abort', onAbort, { once: true });
      pending.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
    this.pending.set(id, pending);
    if (!this.dispatch(pending)) {
      const which =
        node !== undefined ? `node ${node} is not connected` : request.t === 'admin' && request.op !== 'topology' ? 'none of the nodes given to connect is connected' : 'no node is connected';
      this.fail(id, new UnavailableError(which, { nodes: this.links.size, alive: 0, mayHaveLanded: false }));
    }
  }

  /** Fails requests whose node never answered, not even with its own TIMEOUT. */
  private sweep(): void {
    const now = performance.now();
    for (const [id, pending] of this.pending.entries()) {
      if (now < pending.expiresAt || this.pending.get(id) !== pending) continue;
      this.fail(id, new TimeoutError(`${pending.op} got no reply within ${pending.timeoutMs} ms`, { mayHaveLanded: !isRead(pending.op) }));
    }
  }

  /** Sends to the link `route` picks, never `exclude`; false when none is ready. */
  private dispatch(pending: Pending, exclude?: Link): boolean {
    const prefer = pending.prefer;
    pending.prefer = undefined;
    const link =
      prefer !== undefined && prefer !== exclude && prefer.ready
        ? prefer
        : pending.node === undefined
          ? this.route(pending.request, exclude)
          : this.linkTo(pending.node, exclude);
    if (link === undefined) return false;
    // Whole milliseconds: the wire's timeout is an integer, and the monotonic clock is not.
    if (pending.sent) pending.request.timeout = Math.max(1, Math.floor(Math.min(pending.timeoutMs, pending.deadline - performance.now())));
    if (!link.send(pending.request)) return false;
    pending.link = link;
    pending.sent = true;
    return true;
  }

  /**
   * Where a request goes: a data request to a replica of its key when the topology names one
   * with a ready link, else to any ready link; `topology` to any ready link; other admin
   * requests to the first ready node of those given to `connect`, since they act on the node
   * that receives them (`leave` must never reach another).
   */
  private route(request: ClientRequest, exclude: Link | undefined): Link | undefined {
    const usable = (link: Link | undefined): link is Link => link !== undefined && link !== exclude && link.ready;
    if (request.t === 'admin') {
      if (request.op === 'topology') return this.anyLink((link): link is Link => usable(link) && !this.topologyRefusedBy.has(link.address));
      return [...this.seeds].map((address) => this.links.get(address)).find(usable);
    }
    if (this.placement !== undefined) {
      const turn = request.t === 'get' || request.t === 'fetch' ? this.readTurn++ : 0;
      const avoid = request.t === 'get' ? request.pair : undefined;
      const replica = chooseReplica(this.placement, request.t, request.b, request.k, (m) => this.linkFor(m, usable) !== undefined, turn, avoid);
      if (replica !== undefined) return this.linkFor(replica, usable);
    }
    return this.anyLink(usable);
  }

  /** The ready link to a node named by address or id, for admin requests that must reach it. */
  private linkTo(node: string, exclude: Link | undefined): Link | undefined {
    for (const link of this.links.values()) {
      if (link !== exclude && link.ready && (link.address === node || link.node === node)) return link;
    }
    return undefined;
  }

  /** A usable link to a member: by its advertised address, or a link whose handshake named it. */
  private linkFor(member: TopologyMember, usable: (link: Link | undefined) => link is Link): Link | undefined {
    const byAddress = this.links.get(member.addr);
    if (usable(byAddress)) return byAddress;
    for (const link of this.links.values()) if (link.node === member.id && usable(link)) return link;
    return undefined;
  }

  /** The first usable link, preferring one to a member the topology says is alive. */
  private anyLink(usable: (link: Link | undefined) => link is Link): Link | undefined {
    let fallback: Link | undefined;
    for (const link of this.links.values()) {
      if (!usable(link)) continue;
      if (this.placement === undefined || this.placement.memberFor(link.address, link.node)?.live === 'alive') return link;
      fallback ??= link;
    }
    return fallback;
  }

  /** The node checks every request; checking here too refuses an oversized one without sending it. */
  private checkLimits(request: ClientRequest): ChorusError | undefined {
    if (request.t === 'admin') return undefined;
    let limits = UNKNOWN_LIMITS;
    for (const link of this.links.values()) {
      if (!link.ready || link.welcome?.limits === undefined) continue;
      limits = link.welcome.limits;
      break;
    }
    return checkBucketKey(request.b, request.k, limits) ?? (request.t === 'put' ? checkValue(request.v, limits) : undefined);
  }

  private onReply(link: Link, reply: ClientReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return; // Timed out or aborted already.
    if (reply.t === 'err' && this.mayRetryRefusal(pending, reply)) {
      pending.retried = true;
      pending.link = undefined;
      // The node's placement view changed, most likely; ours may be stale too.
      this.scheduleTopology(TOPOLOGY_LINK_DOWN_DELAY_MS);
      if (this.dispatch(pending, link)) return;
    }
    this.pending.delete(reply.id);
    pending.cleanup?.();
    if (reply.t === 'err') pending.reject(errorFromWire(reply.code, reply.msg, reply.details));
    else pending.resolve(reply);
  }

  /**
   * A node refused before doing anything and says another may succeed (UNAVAILABLE when its
   * placement view changed, STORAGE when it cannot read the key): worth one retry in time.
   */
  private mayRetryRefusal(pending: Pending, reply: ErrorReply): boolean {
    return (
      reply.details['mayHaveLanded'] === false &&
      reply.details['retry'] === true &&
      !pending.retried &&
      pending.op !== 'admin' &&
      performance.now() < pending.deadline
    );
  }

  private onLinkDown(link: Link, reason: CloseReason): void {
    if (this.closed) return; // close() fails what is still open.
    for (const [id, pending] of this.pending.entries()) {
      if (pending.link !== link || this.pending.get(id) !== pending) continue;
      // A node whose wire does not know `topology` refuses the frame and closes; asking it again would only repeat that.
      if (reason.code === CLOSE.protocolError && pending.request.t === 'admin' && pending.request.op === 'topology') this.topologyRefusedBy.add(link.address);
      pending.link = undefined;
      const mayHaveSent = link.mayHaveSent(id);
      // A read is safe to repeat; a write the node never received is too (an update that may have
      // landed is not: its id is deduplicated only by the replica that applied it). Admin requests act on one node.
      const resend = isRead(pending.op) || (!mayHaveSent && pending.op !== 'admin');
      if (resend && performance.now() < pending.deadline && this.dispatch(pending, link)) continue;
      this.fail(id, new ClosedError(`connection to ${link.address} lost`, { node: link.address, mayHaveLanded: !isRead(pending.op) && mayHaveSent }));
    }
    if (this.links.get(link.address) === link) this.scheduleTopology(TOPOLOGY_LINK_DOWN_DELAY_MS);
  }

  private onLinkUp(): void {
    // A timer, not a direct call: the request then leaves in a frame of its own, after what
    // the application sends as soon as `connect` resolves.
    if (this.placement === undefined) this.scheduleTopology(0);
  }

  /** Asks for the topology after `delayMs`, unless a request is already due sooner. */
  private scheduleTopology(delayMs: number): void {
    if (this.closed) return;
    const dueAt = performance.now() + delayMs;
    if (this.topologyTimer !== undefined && this.topologyDueAt <= dueAt) return;
    clearTimeout(this.topologyTimer);
    this.topologyDueAt = dueAt;
    this.topologyTimer = setTimeout(() => {
      this.topologyTimer = undefined;
      this.topologyDueAt = Infinity;
      void this.refreshTopology();
    }, delayMs);
    this.topologyTimer.unref();
  }

  /**
   * Asks a node for the topology and applies it. A failure (no node ready, a node that does
   * not answer `topology`) keeps what was known and asks again later, backing off; requests
   * meanwhile go to any ready node, as without a topology.
   */
  private async refreshTopology(): Promise<void> {
    if (this.closed || this.topologyFetching) return;
    this.topologyFetching = true;
    try {
      const parsed = parseTopology(await this.admin('topology', { timeoutMs: TOPOLOGY_TIMEOUT_MS }));
      if (!parsed.ok) throw new ProtocolError(parsed.reason);
      this.applyTopology(parsed.topology);
      this.topologyFailures = 0;
    } catch {
      this.topologyFailures++;
    } finally {
      this.topologyFetching = false;
    }
    const backoff = Math.min(TOPOLOGY_REFRESH_MS_MAX, this.topologyRefreshMs * 2 ** Math.min(this.topologyFailures, 16));
    this.scheduleTopology(this.topologyFailures === 0 ? this.topologyRefreshMs : Math.max(this.topologyRefreshMs, backoff));
  }

  private applyTopology(topology: Topology): void {
    if (this.closed) return;
    this.placement = new Placement(topology, this.placement);
    if (!this.discover) return;
    const wanted = memberAddresses(topology);
    // Links to members that left, or that no longer advertise this address, go; the given nodes stay.
    for (const [address, link] of this.links) {
      if (this.seeds.has(address) || wanted.has(address)) continue;
      this.links.delete(address);
      link.close();
    }
    for (const member of topology.members) {
      if (member.status === 'left' || this.links.has(member.addr)) continue;
      if ([...this.links.values()].some((link) => link.node === member.id)) continue;
      if (this.links.size >= CLIENT_LINKS_MAX) break;
      const link = new Link({ ...this.linkOptions, address: member.addr }, this.linkEvents);
      this.links.set(member.addr, link);
      void link.open();
    }
  }

  private fail(id: number, error: ChorusError): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    pending.cleanup?.();
    pending.reject(error);
  }
}

/**
 * A paired get in flight (see `Client.read`): the get to one replica and the digest asked of
 * its pair, settled together without a promise per request. The read completes with the
 * replica's reply once the pair's digest is the same; it goes again unpaired when they
 * differ, when the pair fails, or when the pair has not answered PAIR_DIGEST_WAIT_MS after
 * the replica did.
 */
class PairedRead {
  private mine: GetReply | undefined;
  /** The pair's digest once it answered; null when it failed or answered without one. */
  private theirs: ObjectDigest | null | undefined;
  private timer: NodeJS.Timeout | undefined;
  private settled = false;

  constructor(
    /** Sends the get again unpaired. */
    private readonly retry: () => Promise<GetReply>,
    private readonly resolve: (reply: GetReply) => void,
    private readonly reject: (error: ChorusError) => void,
  ) {}

  readonly onMine = (reply: ClientReply): void => {
    if (reply.t !== 'get-ok') return this.fail(unexpected(reply));
    // The node coordinated the read itself (it could not pair it): the reply is whole.
    if (reply.dg === undefined) return this.finish(reply);
    this.mine = reply;
    if (this.theirs !== undefined) return this.compare();
    this.timer = setTimeout(this.onPairLate, PAIR_DIGEST_WAIT_MS);
  };

  readonly onTheirs = (reply: ClientReply): void => this.pairAnswered(reply.t === 'dget-ok' ? reply.dg : null);

  readonly onTheirsFailed = (): void => this.pairAnswered(null);

  private pairAnswered(digest: ObjectDigest | null): void {
    this.theirs = digest;
    if (this.mine !== undefined) this.compare();
  }

  private readonly onPairLate = (): void => {
    this.timer = undefined;
    if (this.theirs === undefined) this.theirs = null;
    this.compare();
  };

  private compare(): void {
    const mine = this.mine as GetReply & { dg: ObjectDigest };
    if (this.settled) return;
    clearTimeout(this.timer);
    if (this.theirs !== null && this.theirs !== undefined && sameDigest(mine.dg, this.theirs)) return this.finish(mine);
    this.settled = true;
    this.retry().then(this.resolve, this.reject);
  }

  private finish(reply: GetReply): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(reply);
  }

  private fail(error: ChorusError): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}

function isReady(link: Link | undefined): link is Link {
  return link !== undefined && link.ready;
}

function decodeStored<T>(bytes: Uint8Array): T {
  const decoded = decodeValue(bytes);
  if (!decoded.ok) throw new InvalidRequestError(`stored value cannot be decoded: ${decoded.reason}`, { field: 'value' });
  return decoded.value as T;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function unexpected(reply: ClientReply): ChorusError {
  return new InvalidRequestError(`unexpected reply ${reply.t}`);
}

/** The same error with one more fact in its details (the class is rebuilt from its code). */
function withDetail(error: ChorusError, name: string, value: string): ChorusError {
  return errorFromWire(error.code, error.message, { ...error.details, [name]: value });
}
