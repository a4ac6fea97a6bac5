/**
 * Connections to peer nodes: one (or, briefly after both sides dialed at once, two) per
 * peer, dialed on demand when the core first sends to a peer, bound to this node's own
 * address so that firewall rules between 127.0.0.x addresses cut exactly one link.
 *
 * The transport is best-effort, as SWIM expects: messages to a peer that cannot be reached
 * are dropped (and counted), and the core is told with a `peer-unreachable` hint; it never
 * waits on the socket layer. A failed address is not redialed before a backoff that doubles
 * up to `reconnectDelayMsMax`, so a dead peer costs one attempt per interval at most. Each
 * address has a bounded queue of messages waiting for its dial.
 */

import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { ChorusError } from '../base/errors.js';
import { SOCKET_BUFFERED_BYTES_MAX } from '../base/limits.js';
import { peerMessageSchema, type PeerMessage } from '../codec/messages.js';
import type { PeerTarget } from '../membership/membership.js';
import { SELF_CONNECTION_REASON } from '../transport/accept.js';
import { Connection } from '../transport/connection.js';
import { dial } from '../transport/dial.js';

/** Messages waiting for one address's dial; membership messages are small and soon stale. */
export const PEER_DIAL_QUEUE_MAX = 256;

/**
 * Bytes queued to one peer's socket beyond which new messages to it are dropped: a peer that
 * stopped reading (paused, partitioned without a reset) must not grow our memory.
 */
export const PEER_BACKLOG_BYTES_MAX = 8 * 1024 * 1024;

export interface PeerLinksOptions {
  readonly nodeId: string;
  readonly host: string;
  readonly cluster: string;
  readonly secret: string | null;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly reconnectDelayMs: number;
  readonly reconnectDelayMsMax: number;
  readonly frameBytesMax: number;
  readonly logger: Logger;
}

export interface PeerEvents {
  onMessage(from: string, message: PeerMessage): void;
  onUnreachable(node: string | undefined, addr: string, reason: 'unreachable' | 'self'): void;
  /** Bytes of frames sent and received, for metrics. */
  /** Messages that were not sent (no route, a full queue, a failed dial): the core may act on them at once. */
  onDropped(node: string | undefined, messages: readonly PeerMessage[]): void;
}

interface Dialing {
  readonly queue: PeerMessage[];
}

interface Backoff {
  /** On the monotonic clock (`performance.now()`): a step of the wall clock must not stretch or cut a backoff. */
  untilMs: number;
  delayMs: number;
}

export class PeerLinks {
  private readonly options: PeerLinksOptions;
  private readonly events: PeerEvents;
  private readonly byNode = new Map<string, Set<Connection<PeerMessage, PeerMessage>>>();
  private readonly dialing = new Map<string, Dialing>();
  private readonly backoff = new Map<string, Backoff>();
  private readonly selfAddresses = new Set<string>();
  /** The address each peer was last sent to, so a peer that reconnects to us clears its backoff. */
  private readonly addressOf = new Map<string, string>();
  private closed = false;

  constructor(options: PeerLinksOptions, events: PeerEvents) {
    this.options = options;
    this.events = events;
  }

  /** Peers with at least one open connection. */
  get connected(): string[] {
    return [...this.byNode.entries()].filter(([, set]) => set.size > 0).map(([node]) => node);
  }

  send(to: PeerTarget, message: PeerMessage): void {
    if (this.closed) return;
    if (to.node !== undefined && to.addr !== '') this.addressOf.set(to.node, to.addr);
    const open = to.node === undefined ? undefined : this.openConnection(to.node);
    if (open) {
      if (open.backlogBytes > PEER_BACKLOG_BYTES_MAX) return this.events.onDropped(to.node, [message]);
      return open.send(message);
    }
    if (to.addr === '') return this.events.onDropped(to.node, [message]);
    if (this.selfAddresses.has(to.addr)) return this.events.onUnreachable(to.node, to.addr, 'self');
    const pending = this.dialing.get(to.addr);
    if (pending) {
      if (pending.queue.length >= PEER_DIAL_QUEUE_MAX) return this.events.onDropped(to.node, [message]);
      pending.queue.push(message);
      return;
    }
    const backoff = this.backoff.get(to.addr);
    if (backoff && performance.now() < backoff.untilMs) return this.events.onDropped(to.node, [message]);
    this.dial(to, [message]);
  }

  /** An incoming connection from `node`, authenticated by the handshake. */
  accept(conn: Connection<PeerMessage, PeerMessage>, node: string): void {
    // It is back (a restart, a healed link): messages to it need not wait out the backoff.
    const addr = this.addressOf.get(node);
    if (addr !== undefined) this.backoff.delete(addr);
    this.register(conn, node);
  }

  close(): void {
    this.closed = true;
    for (const set of this.byNode.values()) for (const conn of set) conn.close(1001, 'node shutting down');
    this.byNode.clear();
  }

  private openConnection(node: string): Connection<PeerMessage, PeerMessage> | undefined {
    for (const conn of this.byNode.get(node) ?? []) if (conn.isOpen) return conn;
    return undefined;
  }

  private dial(to: PeerTarget, queue: PeerMessage[]): void {
    const pending: Dialing = { queue };
    this.dialing.set(to.addr, pending);
    const localAddress = isIP(this.options.host) && this.options.host !== '0.0.0.0' && this.options.host !== '::' ? this.options.host : undefined;
    dial({
      address: to.addr,
      role: 'peer',
      cluster: this.options.cluster,
      node: this.options.nodeId,
      secret: this.options.secret,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      frameBytesMaxIn: this.options.frameBytesMax,
      ...(localAddress !== undefined ? { localAddress } : {}),
    }).then(
      ({ ws, welcome }) => {
        this.dialing.delete(to.addr);
        this.backoff.delete(to.addr);
        if (this.closed) return ws.terminate();
        const conn = new Connection<PeerMessage, PeerMessage>(ws, {
          schema: peerMessageSchema,
          frameBytesMax: welcome.frameBytesMax,
          bufferedBytesMax: SOCKET_BUFFERED_BYTES_MAX,
          pingIntervalMs: this.options.pingIntervalMs,
        });
        this.register(conn, welcome.node);
        for (const message of pending.queue) conn.send(message);
      },
      (error: unknown) => {
        this.dialing.delete(to.addr);
        const reason = error instanceof ChorusError ? error.message : String(error);
        if (reason.includes(SELF_CONNECTION_REASON)) {
          this.selfAddresses.add(to.addr);
          this.events.onUnreachable(to.node, to.addr, 'self');
          return;
        }
        const previous = this.backoff.get(to.addr);
        const delayMs = previous ? Math.min(this.options.reconnectDelayMsMax, previous.delayMs * 2) : this.options.reconnectDelayMs;
        this.backoff.set(to.addr, { untilMs: performance.now() + delayMs, delayMs });
        this.events.onDropped(to.node, pending.queue);
        this.options.logger.debug({ addr: to.addr, node: to.node, reason }, 'peer unreachable');
        this.events.onUnreachable(to.node, to.addr, 'unreachable');
      },
    );
  }

  private register(conn: Connection<PeerMessage, PeerMessage>, node: string): void {
    let set = this.byNode.get(node);
    if (set === undefined) this.byNode.set(node, (set = new Set()));
    set.add(conn);
    conn.onMessages((messages) => {
      for (const message of messages) this.events.onMessage(node, message);
    });
    conn.onClose((reason) => {
      set.delete(conn);
      if (set.size > 0 || this.closed) return;
      this.byNode.delete(node);
      this.options.logger.debug({ peer: node, code: reason.code, reason: reason.reason }, 'peer connection closed');
      this.events.onUnreachable(node, '', 'unreachable');
    });
  }
}
