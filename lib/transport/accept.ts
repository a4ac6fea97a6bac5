/**
 * The accepting side of a connection: WebSocket upgrades on `/client` and `/peer`, and the
 * server half of the handshake (codec/handshake.ts).
 *
 * Nothing but the handshake is accepted until it completes. A wrong cluster name, a protocol
 * range with no overlap, a missing or wrong proof of the secret, a role that does not match
 * the path, or a handshake that does not finish within `handshakeTimeoutMs` closes the
 * connection with a reason (1008) and is logged; the rest of the node carries on.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { z } from 'zod';
import { SOCKET_BUFFERED_BYTES_MAX } from '../base/limits.js';
import { decodeFrame, encodeFrame } from '../codec/frame.js';
import { makeProof, negotiateVersion, verifyProof } from '../codec/handshake.js';
import { NONCE_BYTES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type Hello, type Welcome } from '../codec/messages.js';
import { acceptorExpects } from './handshake-schemas.js';
import { CLOSE, closeReasonText, Connection, toBytes } from './connection.js';

export type Role = 'client' | 'peer';

/** The refusal a node gives itself when a seed list leads it to its own address. */
export const SELF_CONNECTION_REASON = 'a node cannot connect to itself';

export interface RoleOptions<In> {
  /** Messages this role may send once the handshake is done. */
  readonly schema: z.ZodType<In>;
  /** The largest frame accepted from this role (ws `maxPayload`). */
  readonly frameBytesMaxIn: number;
  /** The largest frame this side sends to it. */
  readonly frameBytesMaxOut: number;
  /** The secret this role must prove it knows, or null for none. */
  readonly secret: string | null;
  /** Data limits announced in the welcome (clients only). */
  readonly limits?: { readonly bucketBytesMax: number; readonly keyBytesMax: number; readonly valueBytesMax: number };
}

export interface AcceptOptions<ClientIn, PeerIn> {
  readonly cluster: string;
  readonly nodeId: string;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly client: RoleOptions<ClientIn>;
  readonly peer: RoleOptions<PeerIn>;
  readonly onClient: (conn: Connection<ClientIn, unknown>, info: AcceptedInfo) => void;
  readonly onPeer: (conn: Connection<PeerIn, unknown>, info: AcceptedInfo) => void;
  readonly onRefused: (info: { role: Role; remote: string; reason: string }) => void;
  /** The highest protocol version offered (PROTOCOL_VERSION_MAX unless given): lets a spec stand in for a node of an older build. */
  readonly versionMax?: number;
}

export interface AcceptedInfo {
  readonly role: Role;
  readonly remote: string;
  readonly version: number;
  /** The peer's node id (peers only). */
  readonly node: string | undefined;
}

export interface Acceptor {
  /** Open accepted connections, for shutdown. */
  readonly connections: Set<WebSocket>;
  close(): void;
}

export function attachAcceptor<ClientIn, PeerIn>(server: Server, options: AcceptOptions<ClientIn, PeerIn>): Acceptor {
  const servers = {
    client: new WebSocketServer({ noServer: true, maxPayload: options.client.frameBytesMaxIn, perMessageDeflate: false }),
    peer: new WebSocketServer({ noServer: true, maxPayload: options.peer.frameBytesMaxIn, perMessageDeflate: false }),
  };
  const connections = new Set<WebSocket>();

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    const role: Role | undefined = path === '/client' ? 'client' : path === '/peer' ? 'peer' : undefined;
    if (role === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    servers[role].handleUpgrade(request, socket, head, (ws) => {
      connections.add(ws);
      ws.on('close', () => connections.delete(ws));
      const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
      handshake(ws, role, remote, options);
    });
  });

  return {
    connections,
    close() {
      for (const ws of connections) ws.close(CLOSE.goingAway, 'node shutting down');
      servers.client.close();
      servers.peer.close();
    },
  };
}

function handshake<ClientIn, PeerIn>(ws: WebSocket, role: Role, remote: string, options: AcceptOptions<ClientIn, PeerIn>): void {
  const roleOptions = role === 'client' ? options.client : options.peer;
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  let hello: Hello | undefined;
  let version = 0;
  let done = false;

  const refuse = (reason: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    options.onRefused({ role, remote, reason });
    ws.close(CLOSE.policyViolation, closeReasonText(reason));
    setTimeout(() => ws.terminate(), 1000).unref();
  };
  const timer = setTimeout(() => refuse(`handshake not completed within ${options.handshakeTimeoutMs} ms`), options.handshakeTimeoutMs);
  timer.unref();

  const accept = (): void => {
    done = true;
    clearTimeout(timer);
    ws.removeAllListeners('message');
    const info: AcceptedInfo = { role, remote, version, node: hello?.node };
    const common = { bufferedBytesMax: SOCKET_BUFFERED_BYTES_MAX, pingIntervalMs: options.pingIntervalMs };
    if (role === 'client') {
      options.onClient(new Connection(ws, { ...common, schema: options.client.schema, frameBytesMax: options.client.frameBytesMaxOut }), info);
    } else {
      options.onPeer(new Connection(ws, { ...common, schema: options.peer.schema, frameBytesMax: options.peer.frameBytesMaxOut }), info);
    }
  };

  ws.on('error', () => refuse('socket error during handshake'));
  ws.on('message', (data, isBinary) => {
    if (done) return;
    if (!isBinary) return refuse('frames must be binary CBOR');
    const parsed = decodeFrame(toBytes(data), acceptorExpects);
    if (!parsed.ok) return refuse(parsed.reason);
    const [message] = parsed.value;
    if (parsed.value.length !== 1 || message === undefined) return refuse('a handshake frame holds exactly one message');

    if (message.t === 'hello') {
      if (hello !== undefined) return refuse('hello sent twice');
      hello = message;
      if (message.role !== role) return refuse(`role ${message.role} connected on the ${role} path`);
      if (message.cluster !== options.cluster) return refuse(`cluster name mismatch: this node belongs to "${options.cluster}"`);
      const versionMax = options.versionMax ?? PROTOCOL_VERSION_MAX;
      const chosen = negotiateVersion(message.vmin, message.vmax, versionMax);
      if (chosen === undefined) return refuse(`no common protocol version: this node speaks ${PROTOCOL_VERSION_MIN}..${versionMax}`);
      if (role === 'peer' && !message.node) return refuse('a peer must name its node id');
      if (role === 'peer' && message.node === options.nodeId) return refuse(SELF_CONNECTION_REASON);
      if (message.nonce.byteLength !== NONCE_BYTES) return refuse(`nonce must be ${NONCE_BYTES} bytes`);
      version = chosen;
      const secret = roleOptions.secret;
      const welcome: Welcome = {
        t: 'welcome',
        v: chosen,
        cluster: options.cluster,
        node: options.nodeId,
        nonce,
        auth: secret !== null,
        frameBytesMax: roleOptions.frameBytesMaxIn,
        ...(roleOptions.limits ? { limits: roleOptions.limits } : {}),
        ...(secret !== null ? { proof: makeProof(secret, 'acceptor', nonce, message.nonce) } : {}),
      };
      if (secret === null) {
        ws.send(encodeFrame([welcome, { t: 'ready' }]));
        return accept();
      }
      ws.send(encodeFrame([welcome]));
      return;
    }

    // message.t === 'auth'
    const secret = roleOptions.secret;
    if (hello === undefined) return refuse('auth before hello');
    if (secret === null) return refuse('auth sent but none was asked for');
    if (!verifyProof(secret, 'connector', message.proof, hello.nonce, nonce)) return refuse('authentication failed: wrong secret');
    ws.send(encodeFrame([{ t: 'ready' }]));
    accept();
  });
}
