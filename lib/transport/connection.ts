/**
 * One WebSocket after its handshake: batching, backpressure, liveness, and closing with a reason.
 *
 * - Batching: messages sent during one turn of the event loop are encoded as they come and
 *   leave together on `setImmediate` as one frame (split only to stay under the peer's limit).
 * - Backpressure: bytes handed to the socket and not yet written are counted through the send
 *   callbacks. Past `bufferedBytesMax` the connection stops reading from the other side
 *   (`ws.pause()`), so a client that sends faster than it reads its replies is slowed down
 *   rather than growing our memory; reading resumes below half the limit.
 * - Liveness: a `ws` ping every `pingIntervalMs`; a connection that missed two pongs is
 *   terminated, since a silently dropped TCP connection would otherwise stay ESTABLISHED.
 * - Bad input: a frame that does not decode or validate closes the connection with a reason
 *   (1002 protocol error); it never throws into the caller.
 */

import type { WebSocket, RawData } from 'ws';
import type { z } from 'zod';
import { decodeFrame, encodeMessage, packFrames } from '../codec/frame.js';

export interface ConnectionOptions<In> {
  readonly schema: z.ZodType<In>;
  /** The largest frame the other side accepts. */
  readonly frameBytesMax: number;
  readonly bufferedBytesMax: number;
  readonly pingIntervalMs: number;
}

export type CloseReason = { readonly code: number; readonly reason: string };

/** WebSocket close codes we use (RFC 6455 section 7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
} as const;

export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** Close reasons are limited to 123 bytes by the protocol. */
export function closeReasonText(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  return bytes.byteLength <= 123 ? reason : bytes.subarray(0, 120).toString('utf8') + '...';
}

export class Connection<In, Out> {
  readonly ws: WebSocket;
  private readonly options: ConnectionOptions<In>;
  private outbox: Uint8Array[] = [];
  private flushScheduled = false;
  private unwrittenBytes = 0;
  /** Why reading from the other side is paused: our own unsent backlog, or the owner's request. */
  private readonly holds = new Set<'backlog' | 'owner'>();
  private pongMissed = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private closedWith: CloseReason | undefined;
  private onFrame: (messages: In[]) => void = () => {};
  private readonly closeHandlers: ((reason: CloseReason) => void)[] = [];

  constructor(ws: WebSocket, options: ConnectionOptions<In>) {
    this.ws = ws;
    this.options = options;
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('pong', () => {
      this.pongMissed = 0;
    });
    ws.on('close', (code, reason) => this.closed({ code, reason: reason.toString('utf8') }));
    ws.on('error', (error) => this.closed({ code: CLOSE.internalError, reason: error.message }));
    this.pingTimer = setInterval(() => this.checkAlive(), options.pingIntervalMs);
    this.pingTimer.unref();
  }

  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  /** Bytes queued or written to the socket but not yet on the wire. */
  get backlogBytes(): number {
    return this.unwrittenBytes + this.outbox.reduce((sum, m) => sum + m.byteLength, 0);
  }

  onMessages(handler: (messages: In[]) => void): void {
    this.onFrame = handler;
  }

  onClose(handler: (reason: CloseReason) => void): void {
    if (this.closedWith) handler(this.closedWith);
    else this.closeHandlers.push(handler);
  }

  send(message: Out): void {
    if (!this.isOpen) return;
    this.outbox.push(encodeMessage(message));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Closes with a reason the other side can read; idempotent. */
  close(code: number, reason: string): void {
    if (!this.isOpen) return;
    this.flush();
    this.ws.close(code, closeReasonText(reason));
    // A peer that never answers the close handshake is cut off after a grace period.
    setTimeout(() => this.ws.terminate(), 2000).unref();
    this.closed({ code, reason });
  }

  terminate(reason: string): void {
    this.ws.terminate();
    this.closed({ code: CLOSE.goingAway, reason });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.ws.readyState !== this.ws.OPEN) return;
    const frames = packFrames(this.outbox, this.options.frameBytesMax);
    this.outbox = [];
    for (const frame of frames) {
      this.unwrittenBytes += frame.byteLength;
      this.ws.send(frame, { binary: true }, () => this.written(frame.byteLength));
    }
    if (this.unwrittenBytes > this.options.bufferedBytesMax) this.hold('backlog', true);
  }

  /** Stops (or resumes) reading frames from the other side, e.g. while its requests queue up. */
  holdInput(on: boolean): void {
    this.hold('owner', on);
  }

  private hold(reason: 'backlog' | 'owner', on: boolean): void {
    const before = this.holds.size;
    if (on) this.holds.add(reason);
    else this.holds.delete(reason);
    if (!this.isOpen) return;
    if (before === 0 && this.holds.size > 0) this.ws.pause();
    else if (before > 0 && this.holds.size === 0) this.ws.resume();
  }

  private written(bytes: number): void {
    this.unwrittenBytes -= bytes;
    if (this.unwrittenBytes < this.options.bufferedBytesMax / 2) this.hold('backlog', false);
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (!this.isOpen) return;
    if (!isBinary) return this.close(CLOSE.unsupportedData, 'frames must be binary CBOR');
    const parsed = decodeFrame(toBytes(data), this.options.schema);
    if (!parsed.ok) return this.close(CLOSE.protocolError, parsed.reason);
    this.onFrame(parsed.value);
  }

  private checkAlive(): void {
    if (!this.isOpen) return;
    if (this.pongMissed >= 2) return this.terminate('no pong for two ping intervals');
    this.pongMissed++;
    this.ws.ping();
  }

  private closed(reason: CloseReason): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.closedWith) return;
    this.closedWith = reason;
    this.outbox = [];
    for (const handler of this.closeHandlers.splice(0)) handler(reason);
  }
}
