/**
 * The Chorus SDK: `connect({ nodes })`, then `put`, `get`, `delete` with per-request
 * consistency, timeout and AbortSignal.
 *
 * The client keeps a link to every node it was given and sends each request to the first
 * ready one. A request has a finite timeout (the node enforces it and answers TIMEOUT; the
 * SDK waits a little longer before giving up on its own). When a link drops, gets (which
 * are safe to repeat) are retried on another ready node within their deadline; puts and
 * deletes fail with CLOSED and `mayHaveLanded: true`, since retrying a put without context
 * would add a duplicate sibling.
 *
 * Values are encoded to CBOR here and travel as opaque bytes: the node never decodes them.
 */

import {
  AbortedError,
  ChorusError,
  ClosedError,
  errorFromWire,
  InvalidRequestError,
  OverloadedError,
  TimeoutError,
  UnavailableError,
} from '../base/errors.js';
import { checkValueBytes, decodeValue, encodeValue } from '../codec/cbor.js';
import { checkBucketKey, checkValue } from '../codec/request-limits.js';
import { REQUEST_TIMEOUT_MS_MAX } from '../base/limits.js';
import type { AdminRequest, ClientReply, ClientRequest, DeleteRequest, GetRequest, Level, PutRequest } from '../codec/messages.js';
import { contextFromString, contextToString, type Context } from './context.js';
import { CLIENT_INFLIGHT_MAX, CLIENT_TIMEOUT_GRACE_MS } from './limits.js';
import { Link } from './link.js';

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
}

export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface PutOptions extends RequestOptions {
  /** The context of the read this write is based on; the write supersedes what that read saw. */
  readonly context?: Context;
  readonly w?: Level;
  readonly pw?: Level;
}

export interface DeleteOptions extends RequestOptions {
  /** Without a context, a delete removes whatever the replica holds. */
  readonly context?: Context;
  readonly w?: Level;
  readonly pw?: Level;
}

export interface GetOptions extends RequestOptions {
  readonly r?: Level;
  readonly pr?: Level;
}

export interface GetResult<T = unknown> {
  /** False when the key was never written or only tombstones remain. */
  readonly found: boolean;
  /** Every concurrent value (siblings); one value when there is no conflict. */
  readonly values: T[];
  /** Pass this back on the next put or delete of the key. */
  readonly context: Context;
}

export interface PutResult {
  /** Present when the write left one value: the context to chain another write on it. */
  readonly context?: Context;
  /** How many siblings the key has after this write. */
  readonly siblings: number;
}

type Op = ClientRequest['t'];

interface Pending {
  readonly op: Op;
  readonly request: ClientRequest;
  readonly deadline: number;
  /** When the SDK stops waiting for the node's own TIMEOUT reply. */
  readonly expiresAt: number;
  readonly timeoutMs: number;
  readonly resolve: (reply: ClientReply) => void;
  readonly reject: (error: ChorusError) => void;
  link: Link | undefined;
  cleanup: (() => void) | undefined;
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
  const client = new Client(options);
  await client.ready(options.connectTimeoutMs ?? 5000);
  return client;
}

export class Client {
  private readonly links: Link[];
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private idNext = 1;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: ConnectOptions) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    const events = {
      onReply: (_link: Link, reply: ClientReply) => this.onReply(reply),
      onDown: (link: Link) => this.onLinkDown(link),
      onUp: () => undefined,
    };
    this.links = options.nodes.map(
      (address) =>
        new Link(
          {
            address,
            cluster: options.cluster ?? 'chorus',
            secret: options.secret ?? null,
            handshakeTimeoutMs: options.connectTimeoutMs ?? 5000,
            pingIntervalMs: options.pingIntervalMs ?? 2000,
            reconnectDelayMs: 100,
            reconnectDelayMsMax: 5000,
          },
          events,
        ),
    );
  }

  /** Resolves once some node is connected; rejects with every node's reason when none is in time. */
  async ready(timeoutMs: number): Promise<void> {
    const attempts = this.links.map((link) => link.open());
    const firstUp = new Promise<void>((resolve) => attempts.forEach((a) => void a.then((up) => up && resolve())));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    // Every first attempt failing with UNAUTHORIZED is final: redialing will not fix a wrong secret.
    const allRefused = Promise.all(attempts).then(() => {
      if (!this.links.every((l) => l.lastError?.code === 'UNAUTHORIZED')) return new Promise<void>(() => {});
    });
    await Promise.race([firstUp, expired, allRefused]);
    clearTimeout(timer);
    if (this.links.some((l) => l.ready)) return;
    const reasons = this.links.map((l) => `${l.address}: ${l.lastError?.message ?? 'no answer'}`).join('; ');
    await this.close();
    if (this.links.every((l) => l.lastError?.code === 'UNAUTHORIZED')) throw errorFromWire('UNAUTHORIZED', `no node accepted the connection: ${reasons}`);
    throw new UnavailableError(`no node reachable within ${timeoutMs} ms: ${reasons}`, { nodes: this.links.length });
  }

  /** The nodes this client can reach now. */
  get connectedNodes(): string[] {
    return this.links.filter((l) => l.ready).map((l) => l.address);
  }

  async put(bucket: string, key: string, value: unknown, options: PutOptions = {}): Promise<PutResult> {
    const request: PutRequest = { t: 'put', id: 0, b: bucket, k: key, v: this.encodeChecked(value), timeout: this.timeout(options) };
    const ctx = contextFromString(options.context);
    if (ctx !== undefined) request.ctx = ctx;
    setLevels(request, options, 'w', 'pw');
    const reply = await this.request(request, options);
    if (reply.t !== 'put-ok') throw unexpected(reply);
    return reply.ctx === undefined ? { siblings: reply.siblings } : { context: contextToString(reply.ctx), siblings: reply.siblings };
  }

  async get<T = unknown>(bucket: string, key: string, options: GetOptions = {}): Promise<GetResult<T>> {
    const request: GetRequest = { t: 'get', id: 0, b: bucket, k: key, timeout: this.timeout(options) };
    setLevels(request, options, 'r', 'pr');
    const reply = await this.request(request, options);
    if (reply.t !== 'get-ok') throw unexpected(reply);
    return { found: reply.found, values: reply.values.map((bytes) => decodeStored<T>(bytes)), context: contextToString(reply.ctx) };
  }

  async delete(bucket: string, key: string, options: DeleteOptions = {}): Promise<void> {
    const request: DeleteRequest = { t: 'del', id: 0, b: bucket, k: key, timeout: this.timeout(options) };
    const ctx = contextFromString(options.context);
    if (ctx !== undefined) request.ctx = ctx;
    setLevels(request, options, 'w', 'pw');
    const reply = await this.request(request, options);
    if (reply.t !== 'del-ok') throw unexpected(reply);
  }

  /**
   * An operator request to the first connected node: `status` (its member table), `leave`
   * (a graceful departure), `bucket-set` (bucket properties in cluster metadata),
   * `bucket-list`, `ring` (ownership per node), `whereis` (a key's preference list).
   */
  async admin(op: AdminRequest['op'], args: { bucket?: string; key?: string; props?: AdminRequest['props'] } & RequestOptions = {}): Promise<unknown> {
    const request: AdminRequest = { t: 'admin', id: 0, op, timeout: this.timeout(args) };
    if (args.bucket !== undefined) request.bucket = args.bucket;
    if (args.key !== undefined) request.key = args.key;
    if (args.props !== undefined) request.props = args.props;
    const reply = await this.request(request, args);
    if (reply.t !== 'admin-ok') throw unexpected(reply);
    return reply.result;
  }

  /** Closes every link; requests still open fail with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const link of this.links) link.close();
    for (const id of [...this.pending.keys()]) this.fail(id, new ClosedError('client closed', { mayHaveLanded: this.pending.get(id)?.op !== 'get' }));
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

  /** Sends a request built by the caller for this call alone: its `id` is set here. */
  private request(request: Mutable<ClientRequest>, options: RequestOptions): Promise<ClientReply> {
    if (this.closed) return Promise.reject(new ClosedError('client is closed'));
    if (options.signal?.aborted) return Promise.reject(new AbortedError('request aborted before it was sent'));
    if (this.pending.size >= CLIENT_INFLIGHT_MAX) {
      return Promise.reject(new OverloadedError(`over ${CLIENT_INFLIGHT_MAX} requests in flight on this client`, { limit: CLIENT_INFLIGHT_MAX }));
    }
    const refusal = this.checkLimits(request);
    if (refusal) return Promise.reject(refusal);
    const id = this.idNext++;
    request.id = id;
    const sent = request;
    const timeoutMs = request.timeout ?? this.timeoutMs;
    return new Promise<ClientReply>((resolve, reject) => {
      const now = Date.now();
      const pending: Pending = {
        op: request.t,
        request: sent,
        deadline: now + timeoutMs,
        expiresAt: now + timeoutMs + CLIENT_TIMEOUT_GRACE_MS,
        timeoutMs,
        resolve,
        reject,
        link: undefined,
        cleanup: undefined,
      };
      const signal = options.signal;
      if (signal) {
        const onAbort = (): void => this.fail(id, new AbortedError('request aborted', { mayHaveLanded: request.t !== 'get' }));
        signal.addEventListener('abort', onAbort, { once: true });
        pending.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(id, pending);
      if (!this.dispatch(pending)) {
        this.fail(id, new UnavailableError('no node is connected', { nodes: this.links.length, alive: 0, mayHaveLanded: false }));
      }
    });
  }

  /** Fails requests whose node never answered, not even with its own TIMEOUT. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, pending] of this.pending) {
      if (now < pending.expiresAt) continue;
      this.fail(id, new TimeoutError(`${pending.op} got no reply within ${pending.timeoutMs} ms`, { mayHaveLanded: pending.op !== 'get' }));
    }
  }

  /** Sends to the first ready link; false when none is ready. */
  private dispatch(pending: Pending): boolean {
    for (const link of this.links) {
      if (link.ready && link.send(pending.request)) {
        pending.link = link;
        return true;
      }
    }
    return false;
  }

  /** The node checks every request; checking here too refuses an oversized one without sending it. */
  private checkLimits(request: ClientRequest): ChorusError | undefined {
    if (request.t === 'admin') return undefined;
    const limits = this.links.find((l) => l.ready)?.welcome?.limits ?? UNKNOWN_LIMITS;
    return checkBucketKey(request.b, request.k, limits) ?? (request.t === 'put' ? checkValue(request.v, limits) : undefined);
  }

  private onReply(reply: ClientReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return; // Timed out or aborted already.
    this.pending.delete(reply.id);
    pending.cleanup?.();
    if (reply.t === 'err') pending.reject(errorFromWire(reply.code, reply.msg, reply.details));
    else pending.resolve(reply);
  }

  private onLinkDown(link: Link): void {
    for (const [id, pending] of this.pending) {
      if (pending.link !== link) continue;
      pending.link = undefined;
      if (pending.op === 'get' && Date.now() < pending.deadline && this.dispatch(pending)) continue;
      this.fail(id, new ClosedError(`connection to ${link.address} lost`, { node: link.address, mayHaveLanded: pending.op !== 'get' }));
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

function decodeStored<T>(bytes: Uint8Array): T {
  const decoded = decodeValue(bytes);
  if (!decoded.ok) throw new InvalidRequestError(`stored value cannot be decoded: ${decoded.reason}`, { field: 'value' });
  return decoded.value as T;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function setLevels<K extends 'r' | 'w' | 'pr' | 'pw'>(request: Partial<Record<K, Level>>, options: Partial<Record<K, Level>>, ...keys: K[]): void {
  for (const key of keys) {
    const level = options[key];
    if (level === undefined) continue;
    if (level !== 'one' && level !== 'quorum' && level !== 'all' && !(Number.isInteger(level) && (level as number) >= 0 && (level as number) <= 255)) {
      throw new InvalidRequestError(`${key} must be one, quorum, all or a whole number, got ${JSON.stringify(level)}`, { field: key });
    }
    request[key] = level;
  }
}

function unexpected(reply: ClientReply): ChorusError {
  return new InvalidRequestError(`unexpected reply ${reply.t}`);
}
