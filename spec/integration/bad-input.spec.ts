/**
 * Proves that bad input closes only the connection that sent it, with a reason, and that the
 * node keeps serving everyone else with bounded memory. A raw WebSocket speaks to a real
 * node: random bytes, truncated and trailing CBOR, nesting 10,000 deep, CBOR tags that would
 * decode to Date/Set/RegExp/Error, a `__proto__` key, unknown message types and fields, an
 * oversized frame, text frames, a wrong protocol version or cluster name, a wrong secret,
 * and a handshake that never finishes. Each is answered by a close within a bound, and a
 * well-behaved SDK client on the same node keeps working throughout.
 */

import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { connect, type Client } from '../../lib/client/index.js';
import { encodeFrame } from '../../lib/codec/frame.js';
import { makeProof } from '../../lib/codec/handshake.js';
import { killAll, removeTempDirs, startNodeProcess, type NodeProcess } from '../support/processes.js';

interface Closed {
  readonly code: number;
  readonly reason: string;
  readonly ms: number;
}

const hello = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  t: 'hello',
  role: 'client',
  vmin: 1,
  vmax: 1,
  cluster: 'chorus',
  nonce: new Uint8Array(randomBytes(16)),
  ...overrides,
});

function open(address: string, path = 'client'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${address}/${path}`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket, boundMs = 3000): Promise<Closed> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection not closed within ${boundMs} ms`)), boundMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString('utf8'), ms: Date.now() - started });
    });
  });
}

/** Opens a connection and completes the handshake, leaving the socket ready for requests. */
async function handshaken(address: string): Promise<WebSocket> {
  const ws = await open(address);
  const ready = new Promise<void>((resolve) => ws.once('message', () => resolve()));
  ws.send(encodeFrame([hello()]));
  await ready;
  return ws;
}

async function sendAndExpectClose(address: string, payload: Uint8Array | string, code: number, reason: RegExp): Promise<Closed> {
  const ws = await handshaken(address);
  const result = closed(ws);
  ws.send(payload);
  const outcome = await result;
  expect(outcome.code, outcome.reason).to.equal(code);
  expect(outcome.reason).to.match(reason);
  return outcome;
}

const plainEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const taggingEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: true });

function nested(depth: number, open: number): Uint8Array {
  const bytes = new Uint8Array(depth + 2);
  bytes[0] = 0x81; // the frame array
  bytes.fill(open, 1, depth + 1);
  bytes[depth + 1] = 0x01;
  return bytes;
}

describe('integration: bad input closes one connection and harms nothing else', function () {
  this.timeout(60000);
  let node: NodeProcess;
  let secured: NodeProcess;
  let db: Client;

  before(async () => {
    [node, secured] = await Promise.all([
      startNodeProcess({ env: { CHORUS_TRANSPORT_HANDSHAKE_TIMEOUT_MS: '500' } }),
      startNodeProcess({ env: { CHORUS_CLUSTER_CLIENT_SECRET: 'a-client-secret-of-some-length' } }),
    ]);
    db = await connect({ nodes: [node.address] });
    await db.put('good', 'k', 'before');
  });

  afterEach(async () => {
    // The well-behaved client is unaffected by whatever the last case sent.
    expect((await db.get('good', 'k')).values).to.deep.equal(['before']);
  });

  after(async () => {
    await db?.close();
    await killAll();
    removeTempDirs();
  });

  describe('after the handshake', () => {
    const valid = encodeFrame([{ t: 'get', id: 1, b: 'b', k: 'k' }]);

    it('random bytes', async () => {
      for (let i = 0; i < 20; i++) await sendAndExpectClose(node.address, new Uint8Array(randomBytes(1 + (i * 37) % 300)), 1002, /malformed frame|invalid|frame must be|empty frame/);
    });

    it('every truncation of a valid frame, and trailing bytes', async () => {
      for (let cut = 1; cut < valid.byteLength; cut += 3) await sendAndExpectClose(node.address, valid.subarray(0, cut), 1002, /malformed frame/);
      await sendAndExpectClose(node.address, Buffer.concat([valid, Buffer.from([0x00])]), 1002, /malformed frame/);
    });

    it('CBOR nested 10,000 deep (arrays and maps)', async () => {
      const arrays = await sendAndExpectClose(node.address, nested(10000, 0x81), 1002, /nest|deep/);
      expect(arrays.ms).to.be.lessThan(1000);
      const maps = new Uint8Array(10000 * 2 + 3);
      maps[0] = 0x81;
      for (let i = 0; i < 10000; i++) {
        maps[1 + i * 2] = 0xa1; // map of one entry
        maps[2 + i * 2] = 0x60; // key ""
      }
      maps[maps.length - 2] = 0x01;
      await sendAndExpectClose(node.address, maps.subarray(0, maps.length - 1), 1002, /nest|deep/);
    });

    it('CBOR tags that decode to Date, Set, RegExp, Error or typed arrays', async () => {
      for (const value of [new Date(), new Set([1]), /re/g, new Error('x'), new Float64Array([1])]) {
        const frame = taggingEncoder.encode([{ t: 'get', id: 1, b: value, k: 'k' }]);
        await sendAndExpectClose(node.address, frame, 1002, /tag/);
      }
    });

    it('a __proto__ key, unknown fields, unknown message types, wrong field types', async () => {
      const proto = plainEncoder.encode([JSON.parse('{"t":"get","id":1,"b":"b","k":"k","__proto__":{"polluted":true}}')]);
      await sendAndExpectClose(node.address, proto, 1002, /__proto__/);
      await sendAndExpectClose(node.address, encodeFrame([{ t: 'get', id: 1, b: 'b', k: 'k', extra: 1 }]), 1002, /invalid get message/);
      await sendAndExpectClose(node.address, encodeFrame([{ t: 'explode', id: 1 }]), 1002, /invalid explode message/);
      await sendAndExpectClose(node.address, encodeFrame([{ t: 'put', id: 1, b: 'b', k: 'k', v: 'not bytes' }]), 1002, /invalid put message at v/);
      await sendAndExpectClose(node.address, encodeFrame([{ t: 'get', id: -1, b: 'b', k: 'k' }]), 1002, /invalid get message at id/);
      await sendAndExpectClose(node.address, encodeFrame([]), 1002, /empty frame/);
      await sendAndExpectClose(node.address, plainEncoder.encode({ t: 'get' }), 1002, /array of messages/);
      await sendAndExpectClose(node.address, encodeFrame([hello()]), 1002, /invalid hello message/);
    });

    it('a frame over the size limit', async () => {
      const big = encodeFrame([{ t: 'put', id: 1, b: 'b', k: 'k', v: new Uint8Array(2 * 1024 * 1024) }]);
      await sendAndExpectClose(node.address, big, 1009, /.*/);
    });

    it('oversized or empty buckets and keys get a typed error reply, write nothing, and keep the connection', async () => {
      const ws = await handshaken(node.address);
      const replies: Record<string, unknown>[] = [];
      ws.on('message', (data: Buffer) => replies.push(...(plainEncoder.decode(data) as Record<string, unknown>[])));
      ws.send(
        encodeFrame([
          { t: 'put', id: 1, b: 'b', k: 'k'.repeat(1025), v: new Uint8Array([1]) },
          { t: 'put', id: 2, b: 'b'.repeat(65), k: 'k', v: new Uint8Array([1]) },
          { t: 'put', id: 3, b: '', k: 'k', v: new Uint8Array([1]) },
          { t: 'put', id: 4, b: 'raw', k: 'big', v: new Uint8Array(1024 * 1024 + 1) },
          { t: 'put', id: 5, b: 'raw', k: 'fine', v: new Uint8Array([0x01]) },
        ]),
      );
      const deadline = Date.now() + 3000;
      while (replies.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const byId = new Map(replies.map((r) => [r.id, r]));
      expect(byId.get(1)).to.include({ t: 'err', code: 'TOO_LARGE' });
      expect(byId.get(2)).to.include({ t: 'err', code: 'TOO_LARGE' });
      expect(byId.get(3)).to.include({ t: 'err', code: 'INVALID_REQUEST' });
      expect(byId.get(4)).to.include({ t: 'err', code: 'TOO_LARGE' });
      expect(byId.get(5)).to.include({ t: 'put-ok' });
      expect(ws.readyState).to.equal(WebSocket.OPEN);
      ws.close();
      expect((await db.get('raw', 'big')).found).to.equal(false);
      expect((await db.get('raw', 'fine')).values).to.deep.equal([1]);
    });

    it('a text frame', async () => {
      await sendAndExpectClose(node.address, 'hello', 1003, /binary/);
    });
  });

  describe('during the handshake', () => {
    async function handshakeCloses(address: string, frames: Uint8Array[], reason: RegExp): Promise<Closed> {
      const ws = await open(address);
      const result = closed(ws);
      for (const frame of frames) ws.send(frame);
      const outcome = await result;
      expect(outcome.code, outcome.reason).to.equal(1008);
      expect(outcome.reason).to.match(reason);
      return outcome;
    }

    it('a wrong cluster name, protocol version or role', async () => {
      await handshakeCloses(node.address, [encodeFrame([hello({ cluster: 'other' })])], /cluster name mismatch/);
      await handshakeCloses(node.address, [encodeFrame([hello({ vmin: 50, vmax: 60 })])], /no common protocol version/);
      await handshakeCloses(node.address, [encodeFrame([hello({ role: 'peer', node: 'x' })])], /role peer connected on the client path/);
      await handshakeCloses(node.address, [encodeFrame([{ t: 'get', id: 1, b: 'b', k: 'k' }])], /invalid get message|malformed|invalid/);
      await handshakeCloses(node.address, [new Uint8Array(randomBytes(64))], /malformed|invalid|array/);
      await handshakeCloses(node.address, [nested(10000, 0x81)], /nest|deep/);
    });

    it('a wrong secret, a missing one, and a forged proof', async () => {
      const wrong = connect({ nodes: [secured.address], secret: 'not-the-right-secret-at-all' });
      await wrong.then(
        () => expect.fail('connected with a wrong secret'),
        (error: { code?: string }) => expect(error.code).to.equal('UNAUTHORIZED'),
      );
      const missing = connect({ nodes: [secured.address] });
      await missing.then(
        () => expect.fail('connected without a secret'),
        (error: { code?: string }) => expect(error.code).to.equal('UNAUTHORIZED'),
      );
      const ws = await open(secured.address);
      const result = closed(ws);
      const clientNonce = new Uint8Array(randomBytes(16));
      ws.once('message', () => ws.send(encodeFrame([{ t: 'auth', proof: makeProof('guessed-secret-guessed-secret', 'connector', clientNonce, new Uint8Array(16)) }])));
      ws.send(encodeFrame([hello({ nonce: clientNonce })]));
      expect((await result).reason).to.match(/authentication failed/);
      const right = await connect({ nodes: [secured.address], secret: 'a-client-secret-of-some-length' });
      await right.put('b', 'k', 'with the secret');
      expect((await right.get('b', 'k')).values).to.deep.equal(['with the secret']);
      await right.close();
    });

    it('a handshake that never finishes is cut off', async () => {
      const ws = await open(node.address);
      const outcome = await closed(ws, 3000);
      expect(outcome.code).to.equal(1008);
      expect(outcome.reason).to.match(/handshake not completed within 500 ms/);
    });

    it('an unknown upgrade path is refused', async () => {
      await open(node.address, 'admin').then(
        () => expect.fail('upgraded an unknown path'),
        (error: Error) => expect(error.message).to.match(/404/),
      );
    });
  });

  it('keeps memory bounded under a stream of oversized and malformed frames', async () => {
    const rss = async (): Promise<number> => {
      const text = await (await fetch(`http://${node.address}/metrics`)).text();
      const match = /chorus_process_resident_memory_bytes\{[^}]*\} (\d+(\.\d+)?(e\+\d+)?)/.exec(text);
      return Number(match?.[1]);
    };
    const before = await rss();
    const big = encodeFrame([{ t: 'put', id: 1, b: 'b', k: 'k', v: new Uint8Array(1024 * 1024 + 100 * 1024) }]);
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 10 }, () => sendAndExpectClose(node.address, big, 1009, /.*/)));
      await Promise.all(Array.from({ length: 10 }, () => sendAndExpectClose(node.address, nested(5000, 0x81), 1002, /nest|deep/)));
    }
    const after = await rss();
    console.log(`      resident memory ${(before / 2 ** 20).toFixed(0)} MiB before, ${(after / 2 ** 20).toFixed(0)} MiB after 200 bad frames`);
    expect(after - before).to.be.lessThan(150 * 2 ** 20);
    const metrics = await (await fetch(`http://${node.address}/metrics`)).text();
    expect(metrics).to.match(/chorus_protocol_errors_total\{[^}]*role="client"[^}]*\} [1-9]/);
  });
});
