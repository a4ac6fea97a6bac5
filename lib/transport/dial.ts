/**
 * The connecting side of a connection: open a WebSocket to `host:port/path` and run the
 * connector half of the handshake. Used by a node dialing its peers and by the SDK.
 *
 * Outgoing connections can be bound to a local address (`localAddress`), so that firewall
 * rules between 127.0.0.x addresses can cut links between nodes in tests. The whole dial,
 * TCP connect to `ready`, is bounded by `handshakeTimeoutMs`: an unanswered SYN could
 * otherwise hang for minutes.
 */

import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { ChorusError, ClosedError, ProtocolError, TimeoutError, UnauthorizedError } from '../base/errors.js';
import { decodeFrame, encodeFrame } from '../codec/frame.js';
import { makeProof, verifyProof } from '../codec/handshake.js';
import { NONCE_BYTES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type Hello, type Welcome } from '../codec/messages.js';
import { connectorExpects } from './handshake-schemas.js';
import { CLOSE, closeReasonText, toBytes } from './connection.js';

export interface DialOptions {
  readonly address: string;
  readonly role: 'client' | 'peer';
  readonly cluster: string;
  /** This node's id when dialing as a peer. */
  readonly node?: string;
  readonly secret: string | null;
  readonly handshakeTimeoutMs: number;
  /** The largest frame accepted from the other side. */
  readonly frameBytesMaxIn: number;
  readonly localAddress?: string;
}

export interface Dialed {
  readonly ws: WebSocket;
  readonly welcome: Welcome;
}

/** Opens and authenticates a connection; rejects with a typed error saying why it could not. */
export function dial(options: DialOptions): Promise<Dialed> {
  return new Promise<Dialed>((resolve, reject) => {
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    const ws = new WebSocket(`ws://${options.address}/${options.role}`, {
      maxPayload: options.frameBytesMaxIn,
      perMessageDeflate: false,
      handshakeTimeout: options.handshakeTimeoutMs,
      // RFC 6455 masks client frames so that script in a browser cannot steer the bytes a
      // proxy's cache sees. Chorus connections come from Node processes, not pages, and a
      // zero mask lets ws skip the per-byte XOR on every frame we send.
      generateMask: (mask: Buffer) => mask.fill(0),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let welcome: Welcome | undefined;
    let settled = false;

    const fail = (error: ChorusError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('message');
      if (ws.readyState === ws.OPEN) ws.close(CLOSE.policyViolation, closeReasonText(error.message));
      else ws.terminate();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new TimeoutError(`handshake with ${options.address} not completed within ${options.handshakeTimeoutMs} ms`, { address: options.address })),
      options.handshakeTimeoutMs,
    );

    ws.on('error', (error) => fail(new ClosedError(`cannot connect to ${options.address}: ${error.message}`, { address: options.address })));
    ws.on('close', (code, reason) => {
      const text = reason.toString('utf8');
      if (code === CLOSE.policyViolation) fail(new UnauthorizedError(`${options.address} refused the connection: ${text}`, { address: options.address }));
      else fail(new ClosedError(`${options.address} closed the connection during the handshake (${code}${text ? `: ${text}` : ''})`, { address: options.address }));
    });
    ws.on('open', () => {
      const hello: Hello = {
        t: 'hello',
        role: options.role,
        vmin: PROTOCOL_VERSION_MIN,
        vmax: PROTOCOL_VERSION_MAX,
        cluster: options.cluster,
        nonce,
        ...(options.node !== undefined ? { node: options.node } : {}),
      };
      ws.send(encodeFrame([hello]));
    });
    ws.on('message', (data, isBinary) => {
      if (settled) return;
      const parsed = isBinary ? decodeFrame(toBytes(data), connectorExpects) : { ok: false as const, reason: 'text frame' };
      if (!parsed.ok) return fail(new ProtocolError(`bad handshake from ${options.address}: ${parsed.reason}`, { address: options.address }));
      for (const message of parsed.value) {
        if (message.t === 'welcome') {
          if (welcome !== undefined) return fail(new ProtocolError('welcome sent twice'));
          welcome = message;
          const refusal = checkWelcome(message, options, nonce);
          if (refusal) return fail(refusal);
          if (message.auth) ws.send(encodeFrame([{ t: 'auth', proof: makeProof(options.secret as string, 'connector', nonce, message.nonce) }]));
        } else {
          if (welcome === undefined) return fail(new ProtocolError('ready before welcome'));
          settled = true;
          clearTimeout(timer);
          ws.removeAllListeners('message');
          ws.removeAllListeners('close');
          ws.removeAllListeners('error');
          resolve({ ws, welcome });
          return;
        }
      }
    });
  });
}

function checkWelcome(welcome: Welcome, options: DialOptions, nonce: Uint8Array): ChorusError | undefined {
  if (welcome.cluster !== options.cluster) return new UnauthorizedError(`${options.address} belongs to cluster "${welcome.cluster}", not "${options.cluster}"`);
  if (welcome.v < PROTOCOL_VERSION_MIN || welcome.v > PROTOCOL_VERSION_MAX) return new ProtocolError(`${options.address} chose protocol version ${welcome.v}`);
  if (welcome.auth && options.secret === null) return new UnauthorizedError(`${options.address} requires a secret and none is configured`);
  if (options.secret !== null) {
    // A connector that has a secret insists that the other side proves it too: no downgrade.
    if (welcome.proof === undefined) return new UnauthorizedError(`${options.address} did not prove it knows the secret`);
    if (!verifyProof(options.secret, 'acceptor', welcome.proof, welcome.nonce, nonce)) return new UnauthorizedError(`${options.address} does not know the secret`);
  }
  return undefined;
}
