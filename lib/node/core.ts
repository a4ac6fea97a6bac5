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

import { InvalidRequestError, UnavailableError } from '../base/errors.js';
import { Prng } from '../base/prng.js';
import type { AdminRequest, ClientReply } from '../codec/messages.js';
import { Membership, type MembershipOutput, type MembershipSelf } from '../membership/membership.js';
import { ClusterMetadata } from '../membership/metadata.js';
import type { Profile } from '../membership/profile.js';
import { ownership } from '../ring/ownership.js';
import { buildRing, type Ring } from '../ring/ring.js';
import { keyToken } from '../ring/token.js';
import { Coordinator, errorReply, type CoordinatorInit } from './coordinator.js';
import type { ConnId, NodeInput, NodeOutput } from './io.js';
import { singleNodePlacement } from './placement.js';
import type { StoreReader } from './ports.js';

/** Names under which the core keeps node metadata in the store. */
export const META_INCARNATION = 'incarnation';
export const META_METADATA = 'cluster-metadata';

export interface NodeCoreInit extends CoordinatorInit {
  readonly self: MembershipSelf;
  /** The incarnation to start with (one above the persisted one). */
  readonly incarnation: number;
  readonly seeds: readonly string[];
  readonly profile: Profile;
  /** The persisted metadata document, if any. */
  readonly metadata: Uint8Array | undefined;
  /** Seed of the node's PRNG; every random choice in the core derives from it. */
  readonly seed: number;
}

export interface NodeCoreDeps {
  readonly store: StoreReader;
}

export class NodeCore {
  readonly membership: Membership;
  readonly metadata: ClusterMetadata;
  private readonly coordinator: Coordinator;
  private readonly tickMs: number;
  private readonly replicas: number;
  private now = 0;

  constructor(deps: NodeCoreDeps, init: NodeCoreInit) {
    const prng = new Prng(init.seed);
    this.metadata = new ClusterMetadata(prng.fork('metadata'), init.metadata);
    this.membership = new Membership(
      { prng: prng.fork('membership'), metadata: this.metadata },
      { self: init.self, incarnation: init.incarnation, seeds: init.seeds, profile: init.profile },
    );
    this.coordinator = new Coordinator({ store: deps.store, placement: singleNodePlacement(init.nodeId) }, init);
    this.tickMs = init.tickMs;
    this.replicas = init.replication.n;
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
        this.coordinator.onTick(out);
        this.membership.tick(this.now, events);
        break;
      case 'client-request':
        if (input.request.t === 'admin') this.onAdmin(input.conn, input.request, out, events);
        else this.coordinator.onClientRequest(input.conn, input.request, out);
        break;
      case 'client-closed':
        this.coordinator.onClientClosed(input.conn);
        break;
      case 'store-durable':
        this.coordinator.onStoreDone(input.writeId, undefined, out);
        break;
      case 'store-failed':
        this.coordinator.onStoreDone(input.writeId, input.reason, out);
        break;
      case 'peer-message':
        if (input.message.from !== input.from) {
          out.push({ kind: 'log', level: 'warn', msg: 'peer message with a forged sender dropped', fields: { from: input.from, claimed: input.message.from } });
          break;
        }
        this.membership.onMessage(input.from, input.message, this.now, events);
        break;
      case 'peer-unreachable':
        this.membership.onUnreachable(input.node, input.addr, input.reason, this.now, events);
        break;
      case 'stalled':
        this.membership.onStall(input.ticks, this.now, events);
        break;
      case 'loop-lag':
        this.membership.onLoopLag(input.ticks);
        break;
    }
    for (const event of events) this.emit(event, out);
  }

  private emit(event: MembershipOutput, out: NodeOutput[]): void {
    switch (event.kind) {
      case 'send':
        out.push(event);
        return;
      case 'incarnation':
        out.push({ kind: 'meta-write', name: META_INCARNATION, value: encodeUint(event.value) });
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
          localHealth: this.membership.localHealth,
          members: this.membership.view().map(({ heardTicksAgo, ...member }) => ({
            ...member,
            heardMsAgo: heardTicksAgo === undefined ? null : heardTicksAgo * this.tickMs,
          })),
        });
      case 'leave':
        if (this.membership.status === 'left') {
          out.push({ kind: 'client-reply', conn, reply: errorReply(request.id, new UnavailableError('this node has already left the cluster')) });
          return;
        }
        this.membership.leave(events);
        return reply({ node: this.membership.id, status: this.membership.status });
      case 'bucket-set': {
        const invalid = checkBucketProps(request);
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
    }
  }

  /**
   * The ring of every member that has not left: ownership follows membership, not liveness,
   * so a dead member keeps its ranges until an operator removes it.
   */
  private ring(): Ring {
    return buildRing(this.membership.view().filter((m) => m.status !== 'left').map((m) => ({ id: m.id, zone: m.zone, vnodes: m.vnodes })));
  }
}

function checkBucketProps(request: AdminRequest): InvalidRequestError | undefined {
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
  return undefined;
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
