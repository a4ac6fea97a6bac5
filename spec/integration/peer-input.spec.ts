/**
 * Proves that bad input on the peer path cannot join a cluster, inject gossip or take a node
 * down. Two real `chorus start` processes share a cluster secret; a rogue in this process
 * speaks to node 1 as a peer, with `dial` and raw WebSockets. A peer of another cluster name,
 * another protocol version range, without the secret or with a wrong one is refused with a
 * reason (close 1008, UnauthorizedError), logged as "connection refused", and never shows up
 * in a member table. An authenticated rogue that gossips "node 2 is dead" at node 2's current
 * incarnation does not remove node 2: node 2 refutes under a higher incarnation and stays
 * alive everywhere. A message whose `from` is not the authenticated node id is dropped
 * (membership unchanged), and malformed gossip closes only the rogue's connection (1002)
 * and is counted in `chorus_protocol_errors_total{role="peer"}`. An SDK client on node 1
 * keeps reading and writing after every case.
 */

import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { ChorusError } from '../../lib/base/errors.js';
import { connect, type Client } from '../../lib/client/index.js';
import { decodeFrame, encodeFrame } from '../../lib/codec/frame.js';
import { makeProof } from '../../lib/codec/handshake.js';
import { NONCE_BYTES, peerMessageSchema, type MemberState, type PeerMessage, type Welcome } from '../../lib/codec/messages.js';
import { Connection } from '../../lib/transport/connection.js';
import { dial, type DialOptions } from '../../lib/transport/dial.js';
import { connectorExpects } from '../../lib/transport/handshake-schemas.js';
import { counterValue, describeTables, fetchMetrics, fetchStatus, memberOf, waitForTables, type NodeStatus } from '../support/cluster.js';
import { killAll, removeTempDirs, startNodeProcess, waitFor, type NodeProcess } from '../support/processes.js';

const SECRET = 'a-cluster-secret-of-some-length';
/** The default vnode count: status JSON does not show it, gossip must carry it. */
const VNODES = 256;

interface Closed {
  readonly code: number;
  readonly reason: string;
}

function closed(ws: WebSocket, boundMs = 3000): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection not closed within ${boundMs} ms`)), boundMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
}

/** Dials node `address` as peer `node`, by default knowing the secret. */
function dialAsPeer(address: string, node: string, overrides: Partial<DialOptions> = {}): ReturnType<typeof dial> {
  return dial({ address, role: 'peer', cluster: 'chorus', node, secret: SECRET, handshakeTimeoutMs: 3000, frameBytesMaxIn: 1024 * 1024, ...overrides });
}

async function expectRefusal(attempt: Promise<unknown>, reason: RegExp): Promise<void> {
  try {
    await attempt;
  } catch (error) {
    expect(error).to.be.instanceOf(ChorusError);
    expect((error as ChorusError).code).to.equal('UNAUTHORIZED', (error as Error).message);
    expect((error as Error).message).to.match(reason);
    return;
  }
  throw new Error(`expected a refusal matching ${reason}, but the dial succeeded`);
}

/** A raw peer handshake: opens /peer, sends a hello, and returns the welcome (or undefined if the node closed instead). */
async function rawHello(address: string, hello: Record<string, unknown>): Promise<{ ws: WebSocket; nonce: Uint8Array; welcome: Welcome | undefined; close: Promise<Closed> }> {
  const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const close = closed(ws);
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const first = new Promise<Welcome | undefined>((resolve) => {
    ws.once('message', (data: Buffer) => {
      const parsed = decodeFrame(new Uint8Array(data), connectorExpects);
      resolve(parsed.ok && parsed.value[0]?.t === 'welcome' ? parsed.value[0] : undefined);
    });
    ws.once('close', () => resolve(undefined));
  });
  ws.send(encodeFrame([{ t: 'hello', role: 'peer', vmin: 1, vmax: 1, cluster: 'chorus', nonce, ...hello }]));
  return { ws, nonce, welcome: await first, close };
}

/** A rogue peer that passed the handshake, able to send well-formed peer messages. */
async function authenticatedRogue(address: string, node: string): Promise<{ conn: Connection<PeerMessage, PeerMessage>; ws: WebSocket }> {
  const { ws, welcome } = await dialAsPeer(address, node);
  const conn = new Connection<PeerMessage, PeerMessage>(ws, { schema: peerMessageSchema, frameBytesMax: welcome.frameBytesMax, bufferedBytesMax: 1024 * 1024, pingIntervalMs: 60_000 });
  // Whatever the node sends the rogue (probes, gossip) is ignored.
  conn.onMessages(() => {});
  return { conn, ws };
}

const plainEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

describe('integration: bad peer input against a two-node cluster with a secret', function () {
  this.timeout(30000);
  let node1: NodeProcess;
  let node2: NodeProcess;
  let db: Client;
  let writes = 0;
  const rogues: string[] = [];

  /** The state node 1 holds about node 2, as a gossip update would carry it. */
  async function node2State(): Promise<MemberState> {
    const row = memberOf(await fetchStatus(node1.address), node2.nodeId);
    if (row === undefined) throw new Error('node 1 does not know node 2');
    return { id: row.id, addr: row.addr, zone: row.zone, vnodes: VNODES, status: 'up', live: row.live, inc: row.incarnation };
  }

  async function refusalLogged(reason: RegExp): Promise<void> {
    await waitFor(
      `node 1 to log "connection refused" for a peer with a reason matching ${reason}`,
      () => (node1.logs.some((l) => l.msg === 'connection refused' && l.role === 'peer' && reason.test(String(l.reason))) ? true : undefined),
      3000,
    );
  }

  /**
   * Waits until both nodes list exactly the two of them, up and alive, and agree on node 2's
   * incarnation with node 2 itself; returns that incarnation.
   */
  async function membershipIntact(): Promise<number> {
    const ids = [node1.nodeId, node2.nodeId].sort();
    let own = -1;
    let tables: NodeStatus[] = [];
    try {
      return await waitFor(
        'only nodes 1 and 2, up and alive, agreeing on node 2\'s incarnation',
        async () => {
          tables = await Promise.all([fetchStatus(node1.address), fetchStatus(node2.address)]);
          own = (tables[1] as NodeStatus).incarnation;
          const intact = tables.every(
            (s) => s.members.length === 2 && s.members.every((m, i) => m.id === ids[i] && m.status === 'up' && m.live === 'alive') && memberOf(s, node2.nodeId)?.incarnation === own,
          );
          return intact ? own : undefined;
        },
        5000,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; node 2 says incarnation ${own}; last tables: ${describeTables(tables)}`);
    }
  }

  before(async () => {
    const env = { CHORUS_CLUSTER_SECRET: SECRET };
    node1 = await startNodeProcess({ host: '127.0.0.1', env });
    node2 = await startNodeProcess({ host: '127.0.0.2', env, args: ['--seeds', node1.address] });
    db = await connect({ nodes: [node1.address] });
    await membershipIntact();
  });

  afterEach(async () => {
    // The node keeps serving clients whatever a rogue peer sent.
    const key = `k${writes++}`;
    await db.put('peer-input', key, key);
    expect((await db.get('peer-input', key)).values).to.deep.equal([key]);
  });

  after(async () => {
    await db?.close();
    await killAll();
    removeTempDirs();
  });

  it('refuses a peer of another cluster name, with a reason, and logs it', async () => {
    rogues.push('rogue-cluster');
    await expectRefusal(dialAsPeer(node1.address, 'rogue-cluster', { cluster: 'other' }), /cluster name mismatch/);
    await refusalLogged(/cluster name mismatch/);
  });

  it('refuses a peer of another protocol version range, with a reason, and logs it', async () => {
    rogues.push('rogue-version');
    const { welcome, close } = await rawHello(node1.address, { node: 'rogue-version', vmin: 50, vmax: 60 });
    expect(welcome).to.equal(undefined);
    const outcome = await close;
    expect(outcome.code).to.equal(1008);
    expect(outcome.reason).to.match(/no common protocol version/);
    await refusalLogged(/no common protocol version/);
  });

  it('refuses a peer without the secret, even one that skips the proof and sends gossip, and logs it', async () => {
    rogues.push('rogue-nosecret', 'phantom-nosecret');
    await expectRefusal(dialAsPeer(node1.address, 'rogue-nosecret', { secret: null }), /requires a secret/);
    const { ws, welcome, close } = await rawHello(node1.address, { node: 'rogue-nosecret' });
    expect(welcome?.auth).to.equal(true);
    const phantom: MemberState = { id: 'phantom-nosecret', addr: '127.0.0.99:1', zone: 'default', vnodes: VNODES, status: 'up', live: 'alive', inc: 1 };
    ws.send(encodeFrame([{ t: 'gossip', from: 'rogue-nosecret', upd: [phantom, { ...(await node2State()), live: 'dead' }] }]));
    const outcome = await close;
    expect(outcome.code).to.equal(1008);
    await refusalLogged(/invalid gossip message/);
  });

  it('refuses a peer with a wrong secret, with a reason, and logs it', async () => {
    rogues.push('rogue-wrong');
    await expectRefusal(dialAsPeer(node1.address, 'rogue-wrong', { secret: 'not-the-cluster-secret-at-all' }), /does not know the secret/);
    const { ws, nonce, welcome, close } = await rawHello(node1.address, { node: 'rogue-wrong' });
    if (welcome === undefined) throw new Error('node 1 closed before its welcome');
    ws.send(encodeFrame([{ t: 'auth', proof: makeProof('not-the-cluster-secret-at-all', 'connector', nonce, welcome.nonce) }]));
    const outcome = await close;
    expect(outcome.code).to.equal(1008);
    expect(outcome.reason).to.match(/authentication failed/);
    await refusalLogged(/authentication failed: wrong secret/);
  });

  it('lists none of the refused peers in any member table', async () => {
    await membershipIntact();
    for (const status of await Promise.all([fetchStatus(node1.address), fetchStatus(node2.address)])) {
      for (const id of rogues) expect(memberOf(status, id), `${id} in ${describeTables([status])}`).to.equal(undefined);
    }
    const metrics = await fetchMetrics(node1.address);
    expect(counterValue(metrics, 'chorus_handshakes_refused_total', 'role="peer"')).to.be.at.least(4);
  });

  it('does not remove node 2 on forged gossip that it is dead: node 2 refutes and stays alive everywhere', async () => {
    const before = await membershipIntact();
    const { conn } = await authenticatedRogue(node1.address, 'rogue-forger');
    conn.send({ t: 'gossip', from: 'rogue-forger', upd: [{ ...(await node2State()), live: 'dead', inc: before }] });
    await waitFor(
      `node 2 to refute with an incarnation above ${before}`,
      () => (node2.logs.some((l) => l.msg === 'refuting' && l.said === 'dead') ? true : undefined),
      5000,
    );
    const after = await waitForTables(
      [node1, node2],
      `node 2 alive with an incarnation above ${before} in both tables`,
      (s) => {
        const row = memberOf(s, node2.nodeId);
        return row?.live === 'alive' && row.incarnation > before;
      },
      5000,
    );
    const refuted = after.map((s) => memberOf(s, node2.nodeId)?.incarnation).join(' and ');
    console.log(`      node 2 incarnation ${before} when the forged death was sent, ${refuted} (nodes 1 and 2) after it refuted`);
    expect((await fetchStatus(node2.address)).incarnation).to.be.greaterThan(before);
    await membershipIntact();
    conn.close(1000, 'done');
  });

  it('drops a message whose `from` is not the authenticated node id', async () => {
    const before = await membershipIntact();
    const { conn } = await authenticatedRogue(node1.address, 'rogue-liar');
    const phantom: MemberState = { id: 'phantom-liar', addr: '127.0.0.99:1', zone: 'default', vnodes: VNODES, status: 'up', live: 'alive', inc: 1 };
    conn.send({ t: 'gossip', from: node2.nodeId, upd: [phantom, { ...(await node2State()), live: 'dead', inc: before }] });
    await waitFor(
      'node 1 to log that it dropped a message with a forged sender',
      () => (node1.logs.some((l) => l.msg === 'peer message with a forged sender dropped' && l.from === 'rogue-liar' && l.claimed === node2.nodeId) ? true : undefined),
      3000,
    );
    expect(await membershipIntact()).to.equal(before);
    expect(node2.logs.some((l) => l.msg === 'refuting' && Number(l.inc) === before)).to.equal(false);
    conn.close(1000, 'done');
  });

  it('closes only the connection that sent malformed gossip (1002), and counts it', async () => {
    const incarnation = await membershipIntact();
    const metricsBefore = counterValue(await fetchMetrics(node1.address), 'chorus_protocol_errors_total', 'role="peer"');
    // A well-behaved peer connection opened first must outlive every bad one.
    const bystander = await authenticatedRogue(node1.address, 'rogue-bystander');
    const payloads: [string, Uint8Array][] = [
      ['wrong field types', plainEncoder.encode([{ t: 'gossip', from: 42, upd: 'everyone is dead' }])],
      ['an unknown message type', encodeFrame([{ t: 'explode', from: 'rogue-garbage' }])],
      ['random bytes', new Uint8Array(randomBytes(64))],
    ];
    for (const [what, payload] of payloads) {
      const { ws } = await dialAsPeer(node1.address, 'rogue-garbage');
      const close = closed(ws);
      ws.send(payload);
      const outcome = await close;
      expect(outcome.code, `${what}: ${outcome.reason}`).to.equal(1002);
    }
    await waitFor(
      'chorus_protocol_errors_total{role="peer"} to count the three malformed frames',
      async () => (counterValue(await fetchMetrics(node1.address), 'chorus_protocol_errors_total', 'role="peer"') >= metricsBefore + 3 ? true : undefined),
      3000,
    );
    expect(await membershipIntact()).to.equal(incarnation);
    expect(bystander.ws.readyState).to.equal(WebSocket.OPEN);
    expect(bystander.conn.isOpen).to.equal(true);
    bystander.conn.close(1000, 'done');
    expect((await fetchStatus(node1.address)).members.map((m) => m.id)).to.not.include('rogue-garbage');
  });
});
