/**
 * The production driver of one node: it feeds the deterministic core from real timers,
 * WebSocket connections and LMDB, and carries out what the core asks for.
 *
 * - Ticks: a timer steps the core once per `tickMs`, catching up on ticks missed while the
 *   event loop was busy (bounded, so a long stall does not replay thousands at once).
 * - Storage: every `store-write` the core emits during one event-loop turn goes to the store
 *   as one batch (one commit, one fsync), and each batch reports back as `store-durable` or
 *   `store-failed`. A reply that depends on a write is therefore sent only once it is on disk.
 * - Connections: each accepted client connection gets a number; its requests become core
 *   inputs, and replies go back through the connection's per-turn batching.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';
import { IdTable } from '../base/id-table.js';
import { FRAME_OVERHEAD_BYTES, type DataLimits } from '../base/limits.js';
import { clientRequestSchema, peerMessageSchema, type ClientReply, type ClientRequest } from '../codec/messages.js';
import type { ChorusConfig } from '../config/index.js';
import { createHttpServer } from '../http/server.js';
import { decodePeers, decodeStatus, decodeUint, encodeUint, INCARNATION_RESERVE, META_INCARNATION, META_METADATA, META_PEERS, META_STATUS, NodeCore } from '../node/core.js';
import { PROFILES, profileTicks } from '../membership/profile.js';
import type { NodeInput, NodeOutput } from '../node/io.js';
import type { StoreWrite } from '../node/ports.js';
import { SegmentHashes } from '../merkle/index.js';
import { openStore, segmentsOf, type Store } from '../storage/index.js';
import { attachAcceptor } from '../transport/accept.js';
import type { Connection } from '../transport/connection.js';
import { InvalidRequestError, OverloadedError } from '../base/errors.js';
import { errorReply } from '../node/coordinator.js';
import { DocValidator } from './doc-validator.js';
import { loadIdentity, recordCleanStop, type Identity } from './identity.js';
import { NodeMetrics, type Operation } from './metrics.js';
import { PeerLinks } from './peers.js';
import { readTestFault, withTestFault } from './test-faults.js';

/** Node metadata holding the segment hash snapshot a clean stop leaves. */
const META_SEGMENTS = 'segment-hashes';

/**
 * Client requests stepped per turn of the event loop. 64 requests take well under a
 * millisecond, so a turn stays short, while replies still leave in frames large enough to
 * share their syscalls.
 */
const REQUESTS_PER_TURN_MAX = 64;

/**
 * Client requests received and not yet stepped. Past this, connections that add more stop
 * being read until the queue is empty, so a flood waits in the clients' sockets (TCP
 * backpressure) rather than in the node's memory.
 */
const INTAKE_REQUESTS_MAX = 16_384;

/**
 * Ticks the event loop may fall behind before the runtime treats it as a stall (half a second
 * at the default 10 ms): less is replayed tick by tick, more is skipped and reported.
 */
const STALL_TICKS_MIN = 50;

/** How often the shell tells the core how slow client requests are (anti-entropy's backoff). */
const LOAD_WINDOW_MS = 1000;
/** Fewer requests in a window say nothing about latency. */
const LOAD_SAMPLES_MIN = 20;
/**
 * The percentile of a window's client latencies reported: high enough to follow the tail, low
 * enough that a window's few hundred requests pin it down (the 99th of 300 is the 3rd worst).
 */
const LOAD_PERCENTILE = 0.95;
/** Latencies kept per window at most: a percentile of the first ones is as good. */
const LOAD_SAMPLES_MAX = 10_000;

export interface RunningNode {
  readonly nodeId: string;
  readonly actor: string;
  /** `host:port` clients and peers connect to (the real port when 0 was configured). */
  readonly address: string;
  readonly logger: Logger;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
}

interface OpenRequest {
  readonly op: Operation;
  readonly startedMs: number;
}

export async function startNode(config: ChorusConfig, options: StartOptions = {}): Promise<RunningNode> {
  const logger = options.logger ?? createLogger(config.log.level);
  // Test fault (CHORUS_TEST_FAULT, see test-faults.ts): a deliberately broken store for the chaos canary.
  const testFault = readTestFault(process.env);
  const store = withTestFault(await openConfiguredStore(config), testFault);
  let identity: Identity;
  try {
    identity = await loadIdentity(store, config.node.id, config.node.dataDir);
  } catch (error) {
    await store.close();
    throw error;
  }
  const log = logger.child({ node: identity.nodeId });
  if (testFault !== undefined) log.warn({ testFault }, 'test fault enabled: this node is deliberately unsafe');
  if (identity.fresh) log.info({ actor: identity.actor, dataDir: config.node.dataDir }, 'new storage epoch');
  if (identity.afterCrash) log.warn({ actor: identity.actor }, 'the last run did not stop cleanly: new storage epoch');
  // A restarted node must be newer news than anything it said before: one above the persisted
  // ceiling, with a new ceiling a reserve above it kept at once (INCARNATION_RESERVE).
  const incarnation = decodeUint(store.getMeta(META_INCARNATION)) + 1;
  await store.setMeta(META_INCARNATION, encodeUint(incarnation + INCARNATION_RESERVE));
  const runtime = new NodeRuntime(config, store, identity, incarnation, log);
  try {
    await runtime.listen();
  } catch (error) {
    await runtime.stop();
    throw error;
  }
  log.info({ address: runtime.address, engine: store.engine, durability: config.storage.durability, incarnation, seeds: config.node.seeds.length }, 'ready');
  return runtime;
}

/**
 * JSON lines on stdout with the level as a word and the time in ISO 8601, for operators and
 * log shippers alike: `{"level":"info","time":"…","node":"n-1","msg":"ready",…}`.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}

async function openConfiguredStore(config: ChorusConfig): Promise<Store> {
  if (config.storage.engine === 'memory') return openStore({ engine: 'memory' });
  mkdirSync(config.node.dataDir, { recursive: true });
  return openStore({ engine: 'lmdb', path: config.node.dataDir, durability: config.storage.durability, mapSizeBytes: config.storage.mapSizeBytes });
}

class NodeRuntime implements RunningNode {
  readonly nodeId: string;
  readonly actor: string;
  readonly logger: Logger;
  private readonly config: ChorusConfig;
  private readonly store: Store;
  /** Created once the port is bound: the node's address is part of its membership state. */
  private core!: NodeCore;
  private readonly incarnation: number;
  private readonly counterFloor: number;
  /** Whether this start followed a clean stop (so the snapshots it left are current). */
  private readonly cleanStart: boolean;
  private readonly metrics: NodeMetrics;
  private readonly peers: PeerLinks;
  private readonly http = createHttpServer({
    readiness: () => this.readiness(),
    status: () => this.status(),
    metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
  });
  private readonly acceptor;
  /** Open client connections, each with its requests awaiting a reply (by request id). */
  private readonly clients = new Map<number, { readonly conn: Connection<ClientRequest, ClientReply>; readonly open: IdTable<OpenRequest> }>();
  private connNext = 1;
  /** Client requests not yet stepped, oldest first, and the index of the next one. */
  private intake: { conn: number; request: ClientRequest }[] = [];
  private intakeNext = 0;
  private intakeScheduled = false;
  /** Connections not being read until the intake drains. */
  private readonly held = new Set<Connection<ClientRequest, ClientReply>>();
  private writeBatch: { writeId: number; writes: readonly StoreWrite[] }[] = [];
  private readonly applying = new Set<Promise<void>>();
  private readonly docValidator = new DocValidator();
  private ticker: NodeJS.Timeout | undefined;
  /** Client request latencies (ms) of the current load window. */
  private loadSamples: number[] = [];
  /** The event loop's delay over the current load window. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private loadWindowStartMs = 0;
  private tickOriginMs = 0;
  private ticksDone = 0;
  private listening = false;
  private stopping = false;
  private storeFailure: string | undefined;
  private readonly startedMs = performance.now();
  address = '';

  constructor(config: ChorusConfig, store: Store, identity: Identity, incarnation: number, logger: Logger) {
    this.config = config;
    this.store = store;
    this.nodeId = identity.nodeId;
    this.actor = identity.actor;
    this.incarnation = incarnation;
    this.counterFloor = identity.counterFloor;
    this.cleanStart = !identity.fresh && !identity.afterCrash;
    this.logger = logger;
    this.metrics = new NodeMetrics({ node: identity.nodeId }, {
      inflight: () => this.core?.inflight ?? 0,
      replication: () => this.core?.replication,
      antiEntropy: () => (this.core === undefined ? undefined : { stats: this.core.antiEntropy, peers: this.core.antiEntropyPeers, ranges: this.core.rangeAges() }),
      members: () => this.core?.membership.view() ?? [],
      localHealth: () => this.core?.membership.localHealth ?? 0,
    });
    const limits: DataLimits = config.limits;
    this.peers = new PeerLinks(
      {
        nodeId: identity.nodeId,
        host: config.node.host,
        cluster: config.cluster.name,
        secret: config.cluster.secret,
        handshakeTimeoutMs: config.transport.handshakeTimeoutMs,
        pingIntervalMs: config.transport.pingIntervalMs,
        reconnectDelayMs: config.transport.reconnectDelayMs,
        reconnectDelayMsMax: config.transport.reconnectDelayMsMax,
        frameBytesMax: config.transport.peerFrameBytesMax,
        logger,
      },
      {
        onMessage: (from, message) => this.step({ kind: 'peer-message', from, message }),
        onUnreachable: (node, addr, reason) => this.step({ kind: 'peer-unreachable', node, addr, reason }),
        onDropped: (node, messages) => {
          this.metrics.peerDropped.inc(messages.length);
          if (node !== undefined && this.core !== undefined) for (const message of messages) this.step({ kind: 'peer-undeliverable', node, message });
        },
      },
    );
    this.acceptor = attachAcceptor(this.http, {
      cluster: config.cluster.name,
      nodeId: identity.nodeId,
      handshakeTimeoutMs: config.transport.handshakeTimeoutMs,
      pingIntervalMs: config.transport.pingIntervalMs,
      client: {
        schema: clientRequestSchema,
        frameBytesMaxIn: limits.valueBytesMax + limits.keyBytesMax + limits.bucketBytesMax + FRAME_OVERHEAD_BYTES,
        // Replies carry every sibling of a key, each up to valueBytesMax; frames split between messages.
        frameBytesMaxOut: config.transport.peerFrameBytesMax,
        secret: config.cluster.clientSecret,
        limits: { bucketBytesMax: limits.bucketBytesMax, keyBytesMax: limits.keyBytesMax, valueBytesMax: limits.valueBytesMax },
      },
      peer: {
        schema: peerMessageSchema,
        frameBytesMaxIn: config.transport.peerFrameBytesMax,
        frameBytesMaxOut: config.transport.peerFrameBytesMax,
        secret: config.cluster.secret,
      },
      onClient: (conn, info) => this.onClient(conn, info.remote),
      onPeer: (conn, info) => {
        this.logger.debug({ peer: info.node, remote: info.remote }, 'peer connected');
        conn.onClose((reason) => {
          if (reason.code !== 1002 && reason.code !== 1009) return;
          this.metrics.protocolErrors.inc({ role: 'peer' });
          this.logger.warn({ peer: info.node, remote: info.remote, code: reason.code, reason: reason.reason }, 'peer connection closed for bad input');
        });
        if (this.core === undefined || info.node === undefined) return conn.close(1001, 'node is starting');
        this.peers.accept(conn, info.node);
      },
      onRefused: ({ role, remote, reason }) => {
        this.metrics.refused.inc({ role });
        this.logger.warn({ role, remote, reason }, 'connection refused');
      },
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.config.node.port, this.config.node.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const bound = this.http.address() as AddressInfo;
    this.address = `${this.config.node.host}:${bound.port}`;
    const config = this.config;
    const knownPeers = decodePeers(this.store.getMeta(META_PEERS));
    this.core = new NodeCore(
      { store: this.store, segments: this.loadSegments() },
      {
        nodeId: this.nodeId,
        actor: this.actor,
        limits: config.limits,
        replication: config.replication,
        requestTimeoutMs: config.replication.requestTimeoutMs,
        tickMs: config.runtime.tickMs,
        self: { id: this.nodeId, addr: this.address, zone: config.node.zone, vnodes: config.node.vnodes },
        incarnation: this.incarnation,
        // The members known before a restart are asked too: a node restarted without its seeds still finds its cluster.
        seeds: [...new Set([...config.node.seeds, ...knownPeers])],
        knownPeers,
        profile: profileTicks(PROFILES[config.membership.profile], config.runtime.tickMs),
        metadata: this.store.getMeta(META_METADATA),
        seed: randomBytes(4).readUInt32BE(0),
        handoff: config.handoff,
        antiEntropy: config.antiEntropy,
        counterFloor: this.counterFloor,
        ...statusOf(decodeStatus(this.store.getMeta(META_STATUS))),
      },
    );
    // The first tick runs before any client is served: a node that forms a cluster alone (no
    // seeds, or none but itself and nothing persisted) is up from it, instead of answering
    // the first requests as a joining node that holds no ranges yet.
    this.tickOriginMs = performance.now() - this.config.runtime.tickMs;
    this.tick();
    this.ticker = setInterval(() => this.tick(), this.config.runtime.tickMs);
    this.loopDelay.enable();
    this.listening = true;
  }

  /**
   * The segment hashes of the stored data: the snapshot a clean stop left (valid only when
   * this start followed one, since writes after it would have changed the data), or one scan
   * of every stored object.
   */
  private loadSegments(): SegmentHashes {
    if (this.cleanStart) {
      const snapshot = SegmentHashes.decode(this.store.getMeta(META_SEGMENTS));
      if (snapshot.ok && snapshot.value.keyCount === this.store.count()) return snapshot.value;
      this.logger.warn({ reason: snapshot.ok ? 'key count differs from the store' : snapshot.reason }, 'segment hash snapshot unusable; rebuilding');
    }
    const startedMs = performance.now();
    const segments = segmentsOf(this.store.scan(0, 0));
    this.logger.info({ keys: segments.keyCount, ms: Math.round(performance.now() - startedMs) }, 'segment hashes rebuilt');
    return segments;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    this.loopDelay.disable();
    this.peers.close();
    this.acceptor.close();
    await this.docValidator.close();
    await new Promise<void>((resolve) => {
      if (!this.listening) return resolve();
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    // Writes already handed to the store finish before it closes, so nothing acknowledged is cut short.
    this.flushWrites(true);
    const settled = await Promise.allSettled([...this.applying]);
    // Every write is durable (or failed, and the node had stopped serving): the next start may keep the actor.
    if (this.core !== undefined && this.storeFailure === undefined && settled.every((s) => s.status === 'fulfilled')) {
      const core = this.core;
      await this.store
        .setMeta(META_SEGMENTS, core.segments.encode())
        .then(() => recordCleanStop(this.store, core.counterIssued))
        .catch((error: unknown) => this.logger.warn({ reason: String(error) }, 'recording the clean stop failed'));
    }
    await this.store.close();
    this.logger.info('stopped');
  }

  private readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.stopping) return { ready: false, reason: 'node is shutting down' };
    if (!this.listening) return { ready: false, reason: 'node is starting' };
    if (this.storeFailure !== undefined) return { ready: false, reason: `storage failed: ${this.storeFailure}` };
    if (!this.core.membership.hasJoined) return { ready: false, reason: 'joining: no seed has answered yet' };
    if (!this.core.servesData && this.core.membership.status !== 'left') return { ready: false, reason: 'rejoining: no member it knew has answered yet' };
    if (this.core.membership.status === 'left') return { ready: false, reason: 'this node has left the cluster' };
    if (this.core.membership.status === 'joining') return { ready: false, reason: 'joining: its ranges are being streamed to it' };
    if (this.core.membership.status === 'leaving') return { ready: false, reason: 'leaving: handing its ranges over (it still serves meanwhile)' };
    return { ready: true };
  }

  private status(): unknown {
    return {
      node: this.nodeId,
      actor: this.actor,
      address: this.address,
      cluster: this.config.cluster.name,
      zone: this.config.node.zone,
      ready: this.readiness().ready,
      uptimeSeconds: Math.round((performance.now() - this.startedMs) / 1000),
      storage: { engine: this.store.engine, durability: this.config.storage.durability, keys: this.store.count() },
      requestsInflight: this.core.inflight,
      clientConnections: this.clients.size,
      incarnation: this.core.membership.incarnation,
      status: this.core.membership.status,
      joined: this.core.membership.hasJoined,
      localHealth: this.core.membership.localHealth,
      peersConnected: this.peers.connected.length,
      replication: this.core.replication,
      antiEntropy: this.core.antiEntropyStatus(),
      cleanup: this.core.cleanupProgress,
      members: this.core.membership.view().map((m) => ({
        id: m.id,
        addr: m.addr,
        zone: m.zone,
        status: m.status,
        live: m.live,
        incarnation: m.inc,
        heardMsAgo: m.heardTicksAgo === undefined ? null : m.heardTicksAgo * this.config.runtime.tickMs,
      })),
      buckets: this.core.metadata.listBuckets(),
    };
  }

  private onClient(conn: Connection<ClientRequest, ClientReply>, remote: string): void {
    const id = this.connNext++;
    // Salted: the client picks the request ids (see lib/base/id-table.ts).
    const open = new IdTable<OpenRequest>(randomBytes(4).readInt32BE(0));
    this.clients.set(id, { conn, open });
    this.metrics.clientConnections.set(this.clients.size);
    conn.onMessages((requests) => {
      const startedMs = performance.now();
      for (const request of requests) {
        open.set(request.id, { op: request.t, startedMs });
        const update = docUpdateIn(request);
        if (update === undefined) this.intake.push({ conn: id, request });
        else this.validateDocUpdate(id, request, update);
      }
      if (this.intake.length - this.intakeNext > INTAKE_REQUESTS_MAX && !this.held.has(conn)) {
        this.held.add(conn);
        conn.holdInput(true);
      }
      this.drainIntake();
    });
    conn.onClose((reason) => {
      this.clients.delete(id);
      this.metrics.clientConnections.set(this.clients.size);
      if (reason.code === 1002 || reason.code === 1009 || reason.code === 1003) {
        this.metrics.protocolErrors.inc({ role: 'client' });
        this.logger.warn({ remote, code: reason.code, reason: reason.reason }, 'client connection closed for bad input');
      }
      this.step({ kind: 'client-closed', conn: id });
    });
  }

  /**
   * A Yjs update from a client is decoded in a worker with bounded memory and time before the
   * request reaches the core (a few bytes can make Yjs's decoder spin: yjs issue 687); the
   * core then merges only updates known to decode.
   */
  private validateDocUpdate(conn: number, request: ClientRequest, update: Uint8Array): void {
    void this.docValidator.validate(update).then((result) => {
      if (!this.clients.has(conn) || this.stopping) return;
      if (result.ok) {
        this.intake.push({ conn, request });
        this.drainIntake();
        return;
      }
      const error =
        'busy' in result && result.busy === true
          ? new OverloadedError('too many Yjs updates are waiting to be checked; retry later', { mayHaveLanded: false })
          : new InvalidRequestError(`the Yjs update is malformed: ${result.reason}`, { field: 'op.update' });
      this.sendReply(conn, errorReply(request.id, error));
    });
  }

  /**
   * Steps queued client requests, at most REQUESTS_PER_TURN_MAX per turn of the event loop.
   * A frame of thousands of requests then cannot hold the loop (timers, other connections)
   * for long, and replies leave in chunks as they are ready, so a pipelining client works on
   * the first replies while the node computes the rest instead of both taking turns idling.
   */
  private drainIntake(): void {
    if (this.intakeScheduled) return;
    const end = Math.min(this.intake.length, this.intakeNext + REQUESTS_PER_TURN_MAX);
    for (; this.intakeNext < end; this.intakeNext++) {
      const item = this.intake[this.intakeNext] as { conn: number; request: ClientRequest };
      if (this.clients.has(item.conn)) this.step({ kind: 'client-request', conn: item.conn, request: item.request });
    }
    if (this.intakeNext < this.intake.length) {
      this.intakeScheduled = true;
      setImmediate(() => {
        this.intakeScheduled = false;
        this.drainIntake();
      });
    } else {
      this.intake = [];
      this.intakeNext = 0;
      for (const conn of this.held) conn.holdInput(false);
      this.held.clear();
    }
  }

  private tick(): void {
    const due = Math.floor((performance.now() - this.tickOriginMs) / this.config.runtime.tickMs);
    const behind = due - this.ticksDone;
    if (behind > STALL_TICKS_MIN) {
      // A pause (SIGSTOP) or a long GC: replaying the missed ticks would fire every timeout at
      // once on a stale view. Time jumps one tick instead, and the core re-probes first.
      this.ticksDone = due - 1;
      this.step({ kind: 'stalled', ticks: behind });
    } else if (behind > 1) {
      this.step({ kind: 'loop-lag', ticks: behind - 1 });
    }
    for (; this.ticksDone < due; ) {
      this.ticksDone++;
      this.step({ kind: 'tick' });
    }
    this.reportLoad();
  }

  /**
   * Once per LOAD_WINDOW_MS, the LOAD_PERCENTILE of client request latency over the window
   * plus the event loop's delay p99, for anti-entropy to back off while foreground requests
   * slow down. Quiet windows (too few requests to say) report nothing.
   */
  private reportLoad(): void {
    const now = performance.now();
    if (now - this.loadWindowStartMs < LOAD_WINDOW_MS) return;
    this.loadWindowStartMs = now;
    const samples = this.loadSamples;
    this.loadSamples = [];
    // A request waits for a blocked event loop before it is even read, which its own latency
    // (from when it was read) does not show: add the loop's delay (its tail: blocks are rare).
    const loopDelayMs = this.loopDelay.percentile(99) / 1e6;
    this.loopDelay.reset();
    if (samples.length < LOAD_SAMPLES_MIN) return;
    samples.sort((a, b) => a - b);
    this.step({ kind: 'load', latencyMs: samples[Math.floor(samples.length * LOAD_PERCENTILE)]! + loopDelayMs });
  }

  private step(input: NodeInput): void {
    const out: NodeOutput[] = [];
    this.core.step(input, out);
    for (const output of out) this.execute(output);
  }

  private execute(output: NodeOutput): void {
    switch (output.kind) {
      case 'client-reply':
        return this.sendReply(output.conn, output.reply);
      case 'store-write':
        if (this.writeBatch.length === 0 && this.applying.size === 0) setImmediate(() => this.flushWrites());
        this.writeBatch.push({ writeId: output.writeId, writes: output.writes });
        return;
      case 'log':
        this.logger[output.level](output.fields, output.msg);
        return;
      case 'send':
        this.peers.send(output.to, output.message);
        return;
      case 'meta-write':
        this.store.setMeta(output.name, output.value).catch((error: unknown) => {
          this.logger.error({ name: output.name, reason: String(error) }, 'writing node metadata failed');
        });
        return;
    }
  }

  private sendReply(connId: number, reply: ClientReply): void {
    const client = this.clients.get(connId);
    if (client === undefined) return;
    const open = client.open.get(reply.id);
    if (open) {
      client.open.delete(reply.id);
      const ms = performance.now() - open.startedMs;
      this.metrics.requestDone(open.op, reply.t === 'err' ? reply.code : 'ok', ms / 1000);
      if (open.op !== 'admin' && this.loadSamples.length < LOAD_SAMPLES_MAX) this.loadSamples.push(ms);
    }
    client.conn.send(reply);
  }

  /**
   * Applies everything the core asked to write since the last batch as one batch. One batch
   * is on its way to disk at a time (group commit): writes asked for meanwhile wait for it
   * and go together in the next, so a busy node commits and syncs once for many turns'
   * writes instead of once a turn. `force` starts one regardless (on stop).
   */
  private flushWrites(force = false): void {
    if (this.writeBatch.length === 0 || (this.applying.size > 0 && !force)) return;
    const batch = this.writeBatch;
    this.writeBatch = [];
    const writes = batch.flatMap((b) => b.writes);
    this.metrics.storeBatches.inc();
    this.metrics.storeWrites.inc(writes.length);
    const applying = this.store.apply(writes).then(
      () => {
        for (const { writeId } of batch) this.step({ kind: 'store-durable', writeId });
      },
      (error: unknown) => {
        this.storeFailure = error instanceof Error ? error.message : String(error);
        this.logger.error({ reason: this.storeFailure, writes: writes.length }, 'storage batch failed');
        for (const { writeId } of batch) this.step({ kind: 'store-failed', writeId, reason: this.storeFailure });
      },
    );
    this.applying.add(applying);
    void applying.finally(() => {
      this.applying.delete(applying);
      this.flushWrites();
    });
  }
}

/** The NodeCoreInit field for a kept status, or none. */
function statusOf(status: 'up' | 'leaving' | 'left' | undefined): { status?: 'up' | 'leaving' | 'left' } {
  return status === undefined ? {} : { status };
}

/** The Yjs update a client request carries, if it is a doc update. */
function docUpdateIn(request: ClientRequest): Uint8Array | undefined {
  if (request.t !== 'upd' || request.type !== 'doc') return undefined;
  const op = request.op;
  if (typeof op !== 'object' || op === null) return undefined;
  const update = (op as { update?: unknown }).update;
  return update instanceof Uint8Array ? update : undefined;
}
