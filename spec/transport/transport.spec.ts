/**
 * Proves the transport on real sockets inside one process: the peer handshake with and
 * without a cluster secret (both directions must prove it; a wrong or missing secret, or an
 * acceptor that cannot prove it, is refused), protocol version and cluster checks, messages
 * sent in one event-loop turn leaving as one frame, batches split under the receiver's frame
 * limit, and a frame that fails validation closing the connection with a reason.
 */

import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { ChorusError } from '../../lib/base/errors.js';
import { attachAcceptor, type Acceptor } from '../../lib/transport/accept.js';
import { Connection } from '../../lib/transport/connection.js';
import { dial } from '../../lib/transport/dial.js';

const note = z.strictObject({ t: z.literal('note'), n: z.number().int(), pad: z.string().optional() });
type Note = z.infer<typeof note>;

interface Fixture {
  server: Server;
  acceptor: Acceptor;
  address: string;
  accepted: Connection<Note, unknown>[];
  refused: string[];
}

async function acceptor(secret: string | null, cluster = 'c1'): Promise<Fixture> {
  const server = createServer();
  const accepted: Connection<Note, unknown>[] = [];
  const refused: string[] = [];
  const role = { schema: note, frameBytesMaxIn: 1024 * 1024, frameBytesMaxOut: 1024 * 1024, secret };
  const acc = attachAcceptor(server, {
    cluster,
    nodeId: 'acceptor',
    handshakeTimeoutMs: 1000,
    pingIntervalMs: 1000,
    client: role,
    peer: role,
    onClient: (c) => accepted.push(c as Connection<Note, unknown>),
    onPeer: (c) => accepted.push(c as Connection<Note, unknown>),
    onRefused: ({ reason }) => refused.push(reason),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, acceptor: acc, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, accepted, refused };
}

async function close(f: Fixture): Promise<void> {
  f.acceptor.close();
  f.server.closeAllConnections();
  await new Promise((r) => f.server.close(r));
}

const peerDial = (address: string, secret: string | null, cluster = 'c1') =>
  dial({ address, role: 'peer', cluster, node: 'dialer', secret, handshakeTimeoutMs: 1000, frameBytesMaxIn: 1024 * 1024, localAddress: '127.0.0.1' });

async function refusedWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ChorusError);
    expect((error as ChorusError).code).to.equal(code);
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail('the dial succeeded');
}

describe('transport', function () {
  this.timeout(10000);

  it('completes a mutual secret handshake and names both nodes', async () => {
    const f = await acceptor('shared-secret-0123456789');
    const { ws, welcome } = await peerDial(f.address, 'shared-secret-0123456789');
    expect(welcome.node).to.equal('acceptor');
    expect(welcome.auth).to.equal(true);
    await waitUntil(() => f.accepted.length === 1);
    ws.terminate();
    await close(f);
  });

  it('refuses a wrong secret, a missing secret, and an acceptor that cannot prove the secret', async () => {
    const f = await acceptor('shared-secret-0123456789');
    // The dialer checks the acceptor's proof first, so a different secret fails on its side.
    await refusedWith(peerDial(f.address, 'another-secret-0123456789'), 'UNAUTHORIZED', /does not know the secret/);
    await refusedWith(peerDial(f.address, null), 'UNAUTHORIZED', /requires a secret/);
    expect(f.accepted).to.have.length(0);
    await close(f);
    const open = await acceptor(null);
    await refusedWith(peerDial(open.address, 'shared-secret-0123456789'), 'UNAUTHORIZED', /did not prove/);
    await close(open);
  });

  it('refuses another cluster', async () => {
    const f = await acceptor(null, 'c1');
    await refusedWith(peerDial(f.address, null, 'c2'), 'UNAUTHORIZED', /cluster name mismatch/);
    expect(f.refused.join()).to.match(/cluster name mismatch/);
    await close(f);
  });

  it('bounds a dial to an address that never answers', async () => {
    const started = Date.now();
    // A listening socket that never completes the WebSocket upgrade.
    const silent = createServer(() => undefined);
    const held: import('node:stream').Duplex[] = [];
    silent.on('upgrade', (_request, socket) => held.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const address = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const outcome = await peerDial(address, null).then(
      () => 'connected',
      (error: ChorusError) => error.code,
    );
    // Either our own bound or ws's upgrade timeout fires first; both end the dial in time.
    expect(outcome).to.be.oneOf(['TIMEOUT', 'CLOSED']);
    expect(Date.now() - started).to.be.lessThan(3000);
    for (const socket of held) socket.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('sends everything queued in one turn as one frame, and splits batches under the frame limit', async () => {
    const f = await acceptor(null);
    const { ws } = await peerDial(f.address, null);
    await waitUntil(() => f.accepted.length === 1);
    const server = f.accepted[0] as Connection<Note, unknown>;
    let frames = 0;
    ws.on('message', () => frames++);
    const sender = new Connection<Note, Note>(ws, { schema: note, frameBytesMax: 1024 * 1024, bufferedBytesMax: 1 << 24, pingIntervalMs: 1000 });
    const received: number[] = [];
    const framesAtServer: number[] = [];
    server.onMessages((messages) => {
      framesAtServer.push(messages.length);
      received.push(...messages.map((m) => m.n));
    });
    for (let i = 0; i < 100; i++) sender.send({ t: 'note', n: i });
    await waitUntil(() => received.length === 100);
    expect(framesAtServer).to.deep.equal([100]);
    expect(received).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));

    // 40 messages of 100 KB do not fit one 1 MiB frame: they arrive in order, in several frames.
    received.length = 0;
    framesAtServer.length = 0;
    for (let i = 0; i < 40; i++) sender.send({ t: 'note', n: i, pad: 'x'.repeat(100_000) });
    await waitUntil(() => received.length === 40);
    expect(framesAtServer.length).to.be.greaterThan(1);
    expect(received).to.deep.equal(Array.from({ length: 40 }, (_, i) => i));
    expect(frames).to.equal(0);
    sender.close(1000, 'done');
    await close(f);
  });

  it('binds outgoing connections to the local address it is given', async () => {
    const f = await acceptor(null);
    const seen: string[] = [];
    f.server.on('upgrade', (request) => seen.push(String(request.socket.remoteAddress)));
    const { ws } = await dial({ address: f.address, role: 'peer', cluster: 'c1', node: 'dialer', secret: null, handshakeTimeoutMs: 1000, frameBytesMaxIn: 1 << 20, localAddress: '127.0.0.2' });
    expect(seen).to.deep.equal(['127.0.0.2']);
    ws.terminate();
    await close(f);
  });

  it('terminates a connection whose other side stops answering pings', async () => {
    const server = createServer();
    const closes: string[] = [];
    const role = { schema: note, frameBytesMaxIn: 1 << 20, frameBytesMaxOut: 1 << 20, secret: null };
    const acc = attachAcceptor(server, {
      cluster: 'c1',
      nodeId: 'acceptor',
      handshakeTimeoutMs: 1000,
      pingIntervalMs: 50,
      client: role,
      peer: role,
      onClient: () => undefined,
      onPeer: (c) => c.onClose((r) => closes.push(r.reason)),
      onRefused: () => undefined,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { ws } = await peerDial(address, null);
    const started = Date.now();
    // A paused socket reads nothing, so it answers no ping: as a stopped process or a cut link.
    ws.pause();
    await waitUntil(() => closes.length === 1, 2000);
    expect(closes[0]).to.match(/no pong/);
    expect(Date.now() - started).to.be.lessThan(1000);
    ws.terminate();
    acc.close();
    await new Promise((r) => server.close(r));
  });

  it('closes a connection whose frame fails validation, with the reason', async () => {
    const f = await acceptor(null);
    const { ws } = await peerDial(f.address, null);
    const sender = new Connection<Note, unknown>(ws, { schema: note, frameBytesMax: 1024 * 1024, bufferedBytesMax: 1 << 24, pingIntervalMs: 1000 });
    const reasons: string[] = [];
    sender.onClose((r) => reasons.push(`${r.code} ${r.reason}`));
    sender.send({ t: 'note', n: 'one' });
    await waitUntil(() => reasons.length === 1);
    expect(reasons[0]).to.match(/^1002 invalid note message at n/);
    await close(f);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
