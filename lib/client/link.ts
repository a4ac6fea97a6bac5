/**
 * The SDK's connection to one node: dial, handshake, and redial with capped exponential
 * backoff while the client is open. A link is `ready` or not; the client routes requests
 * only to ready links.
 *
 * The connection batches what is sent in one turn of the event loop and writes it on the
 * next `setImmediate`; a connection that closes before that drops the batch. The link keeps
 * the ids of requests not yet handed to the socket, so that when it goes down the client can
 * tell a request the node never received (safe to send elsewhere) from one it may have.
 */

import type { ChorusError } from '../base/errors.js';
import { CLIENT_FRAME_BYTES_IN_MAX } from './limits.js';
import { clientReplySchema, type ClientReply, type ClientRequest, type Welcome } from '../codec/messages.js';
import { Connection, type CloseReason } from '../transport/connection.js';
import { dial } from '../transport/dial.js';
import { SOCKET_BUFFERED_BYTES_MAX } from '../base/limits.js';

export interface LinkOptions {
  readonly address: string;
  readonly cluster: string;
  readonly secret: string | null;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly reconnectDelayMs: number;
  readonly reconnectDelayMsMax: number;
}

export interface LinkEvents {
  onReply(link: Link, reply: ClientReply): void;
  onDown(link: Link, reason: CloseReason): void;
  onUp(link: Link): void;
}

export class Link {
  readonly address: string;
  private readonly options: LinkOptions;
  private readonly events: LinkEvents;
  private conn: Connection<ClientReply, ClientRequest> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private closed = false;
  /**
   * Ids of requests queued on the current connection and not yet written to its socket. An
   * array emptied in place each turn: a long-lived Set would allocate a new table in V8's old
   * generation at every clear.
   */
  private unwritten: number[] = [];
  /** The `unwritten` list a write check is scheduled for. */
  private writeCheckFor: number[] | undefined;
  welcome: Welcome | undefined;
  lastError: ChorusError | undefined;

  constructor(options: LinkOptions, events: LinkEvents) {
    this.address = options.address;
    this.options = options;
    this.events = events;
    this.delayMs = options.reconnectDelayMs;
  }

  get ready(): boolean {
    return this.conn?.isOpen === true;
  }

  /** The id of the node this link reached last; undefined before its first handshake. */
  get node(): string | undefined {
    return this.welcome?.node;
  }

  /** Whether request `id`, sent on this link, may have reached the node. */
  mayHaveSent(id: number): boolean {
    return !this.unwritten.includes(id);
  }

  /** Dials once; resolves true when the link is up. Failures schedule a redial. */
  async open(): Promise<boolean> {
    if (this.closed || this.ready) return this.ready;
    try {
      const { ws, welcome } = await dial({
        address: this.address,
        role: 'client',
        cluster: this.options.cluster,
        secret: this.options.secret,
        handshakeTimeoutMs: this.options.handshakeTimeoutMs,
        frameBytesMaxIn: CLIENT_FRAME_BYTES_IN_MAX,
      });
      if (this.closed) {
        ws.terminate();
        return false;
      }
      this.welcome = welcome;
      this.lastError = undefined;
      this.delayMs = this.options.reconnectDelayMs;
      const conn = new Connection<ClientReply, ClientRequest>(ws, {
        schema: clientReplySchema,
        frameBytesMax: welcome.frameBytesMax,
        bufferedBytesMax: SOCKET_BUFFERED_BYTES_MAX,
        pingIntervalMs: this.options.pingIntervalMs,
      });
      this.conn = conn;
      this.unwritten = [];
      conn.onMessages((replies) => {
        for (const reply of replies) this.events.onReply(this, reply);
      });
      conn.onClose((reason) => {
        if (this.conn === conn) this.conn = undefined;
        this.events.onDown(this, reason);
        this.unwritten.length = 0;
        this.scheduleRedial();
      });
      this.events.onUp(this);
      return true;
    } catch (error) {
      this.lastError = error as ChorusError;
      this.scheduleRedial();
      return false;
    }
  }

  send(request: ClientRequest): boolean {
    const conn = this.conn;
    if (!conn?.isOpen) return false;
    conn.send(request);
    const ids = this.unwritten;
    ids.push(request.id);
    if (this.writeCheckFor !== ids) {
      this.writeCheckFor = ids;
      // Runs after the connection's flush, which the send above (or an earlier one this turn) scheduled.
      setImmediate(() => {
        if (this.writeCheckFor === ids) this.writeCheckFor = undefined;
        if (conn.isOpen && conn.ws.readyState === conn.ws.OPEN) ids.length = 0;
      });
    }
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Closing an open socket writes what is queued first.
    if (this.conn?.isOpen && this.conn.ws.readyState === this.conn.ws.OPEN) this.unwritten.length = 0;
    this.conn?.close(1000, 'client closed');
    this.conn = undefined;
  }

  private scheduleRedial(): void {
    if (this.closed || this.retryTimer) return;
    const jitter = Math.random() * this.delayMs * 0.5;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.open();
    }, this.delayMs + jitter);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.options.reconnectDelayMsMax, this.delayMs * 2);
  }
}
