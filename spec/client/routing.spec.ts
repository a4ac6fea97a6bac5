/**
 * Proves how the SDK places requests. First as pure functions: a topology reply is checked
 * before use; the SDK's primaries for a key are the ring's (`preferenceList` over the members
 * that have not left, with the bucket's n capped by the ring size); a write goes to the first
 * alive primary with a ready link and reads rotate over those; level options are checked
 * for shape only; a resolver turns siblings into one value. Then end to end against small
 * in-process fake nodes (real WebSockets and handshakes, scripted replies): one seed is enough
 * to reach every member, requests reach the key's primaries, a dying node's in-flight get
 * moves on while its in-flight put fails with `mayHaveLanded`, later requests go to the other
 * replica, a refusal marked `retry` is retried once on another node, links to members that
 * left are closed, and a node that cannot answer `topology` leaves the client working as
 * before.
 */

import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChorusError, InvalidRequestError } from '../../lib/base/errors.js';
import { encodeValue } from '../../lib/codec/cbor.js';
import { clientRequestSchema, type ClientReply, type ClientRequest, type GetRequest } from '../../lib/codec/messages.js';
import { PAIR_DIGEST_WAIT_MS } from '../../lib/client/limits.js';
import { connect, type Client } from '../../lib/client/client.js';
import { isLevel, resolveSiblings, setLevels, setSloppy } from '../../lib/client/request-options.js';
import { chooseReplica, parseTopology, Placement, type Topology, type TopologyMember } from '../../lib/client/topology.js';
import { buildRing, preferenceList } from '../../lib/ring/ring.js';
import { keyToken } from '../../lib/ring/token.js';
import { attachAcceptor, type Acceptor } from '../../lib/transport/accept.js';
import type { Connection } from '../../lib/transport/connection.js';

function member(id: string, overrides: Partial<TopologyMember> = {}): TopologyMember {
  return { id, addr: `127.0.0.1:${7000 + Number(id.slice(1))}`, zone: 'z1', vnodes: 16, status: 'up', live: 'alive', ...overrides };
}

function topologyOf(members: TopologyMember[], n = 3, buckets: Topology['buckets'] = {}): Topology {
  const ring = buildRing(members.filter((m) => m.status !== 'left').map(({ id, zone, vnodes }) => ({ id, zone, vnodes })));
  return { checksum: ring.checksum, n, members, buckets };
}

function expectInvalid(run: () => void, field: string): void {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).details['field']).to.equal(field);
    return;
  }
  expect.fail(`expected INVALID_REQUEST on ${field}`);
}

describe('client: topology and placement', () => {
  const members = ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => member(id));

  it('accepts a well-formed topology, ignoring unknown fields, and refuses a malformed one', () => {
    const good = parseTopology({ ...topologyOf(members), extra: 1, buckets: { b: { n: 2, r: 'quorum', w: 1, type: 'kv' } } });
    expect(good.ok).to.equal(true);
    if (good.ok) {
      expect(good.topology.members.map((m) => m.id)).to.deep.equal(['n1', 'n2', 'n3', 'n4', 'n5']);
      expect(good.topology.buckets).to.deep.equal({ b: { n: 2, r: 'quorum', w: 1, type: 'kv' } });
    }
    const twice = parseTopology({ ...topologyOf([member('n1')]), members: [member('n1'), member('n1')] });
    expect(twice).to.deep.equal({ ok: false, reason: 'topology lists member n1 twice' });
    expect(parseTopology({ ...topologyOf(members), n: 0 }).ok).to.equal(false);
    expect(parseTopology({ ...topologyOf(members), members: [{ ...member('n1'), live: 'zombie' }] }).ok).to.equal(false);
    expect(parseTopology(undefined).ok).to.equal(false);
    expect(parseTopology('not a topology').ok).to.equal(false);
  });

  it("gives a key the ring's primaries, over members that have not left, with the bucket's n capped by the ring", () => {
    const withLeft = [...members, member('n6', { status: 'left' })];
    const placement = new Placement(topologyOf(withLeft, 3, { two: { n: 2 }, many: { n: 9 } }));
    const ring = buildRing(members.map(({ id, zone, vnodes }) => ({ id, zone, vnodes })));
    expect(placement.ring.checksum).to.equal(ring.checksum);
    for (let i = 0; i < 200; i++) {
      const key = `k${i}`;
      const expected = preferenceList(ring, keyToken('b', key), 3).primaries;
      expect(placement.primaries('b', key).map((m) => m.id)).to.deep.equal(expected);
      expect(placement.primaries('two', key).map((m) => m.id)).to.deep.equal(preferenceList(ring, keyToken('two', key), 2).primaries);
      expect(placement.primaries('many', key)).to.have.length(5);
      expect(placement.primaries('b', key).map((m) => m.id)).not.to.include('n6');
    }
    expect(new Placement(topologyOf([])).primaries('b', 'k')).to.deep.equal([]);
  });

  it('sends a write to the first alive primary with a ready link, and rotates reads over such primaries', () => {
    const placement = new Placement(topologyOf(members));
    const [p1, p2, p3] = placement.primaries('b', 'k').map((m) => m.id) as [string, string, string];
    const ready = (ids: string[]) => (m: TopologyMember) => ids.includes(m.id);
    const all = ready(members.map((m) => m.id));
    expect(chooseReplica(placement, 'put', 'b', 'k', all)?.id).to.equal(p1);
    expect(chooseReplica(placement, 'del', 'b', 'k', all, 7)?.id).to.equal(p1);
    expect(chooseReplica(placement, 'put', 'b', 'k', ready([p2, p3]))?.id).to.equal(p2);
    const reads = [0, 1, 2, 3, 4, 5].map((turn) => chooseReplica(placement, 'get', 'b', 'k', all, turn)?.id);
    expect(reads).to.deep.equal([p1, p2, p3, p1, p2, p3]);
    expect(chooseReplica(placement, 'get', 'b', 'k', ready([p1, p3]), 1)?.id).to.equal(p3);
    // Nobody holding the key is reachable: the caller sends anywhere and the node forwards.
    const others = members.map((m) => m.id).filter((id) => ![p1, p2, p3].includes(id));
    expect(chooseReplica(placement, 'put', 'b', 'k', ready(others))).to.equal(undefined);

    // Liveness as the topology reports it counts too.
    const suspect = new Placement(topologyOf(members.map((m) => (m.id === p1 ? { ...m, live: 'suspect' as const } : m.id === p2 ? { ...m, live: 'dead' as const } : m))));
    expect(chooseReplica(suspect, 'put', 'b', 'k', all)?.id).to.equal(p3);
    expect([0, 1, 2].map((turn) => chooseReplica(suspect, 'get', 'b', 'k', all, turn)?.id)).to.deep.equal([p3, p3, p3]);
  });
});

describe('client: request options', () => {
  it('checks levels for shape only and leaves ranges to the node', () => {
    for (const level of ['one', 'quorum', 'all', 0, 1, 3, 300]) expect(isLevel(level), String(level)).to.equal(true);
    for (const level of ['two', 'ONE', '1', 1.5, Number.NaN, Infinity, null, true, {}]) expect(isLevel(level), String(level)).to.equal(false);
    const request: { w?: string | number; pw?: string | number } = {};
    setLevels(request, { w: 'quorum', pw: 5 }, 'w', 'pw');
    expect(request).to.deep.equal({ w: 'quorum', pw: 5 });
    expectInvalid(() => setLevels({}, { r: 'most' as never }, 'r'), 'r');
    expectInvalid(() => setLevels({}, { pr: 0.5 }, 'pr'), 'pr');
    const sloppy: { sloppy?: boolean } = {};
    setSloppy(sloppy, undefined);
    expect(sloppy).to.deep.equal({});
    setSloppy(sloppy, false);
    expect(sloppy).to.deep.equal({ sloppy: false });
    expectInvalid(() => setSloppy({}, 'yes'), 'sloppy');
  });

  it('resolves only real conflicts, reporting how many siblings there were', () => {
    const longest = (values: string[]) => values.reduce((a, b) => (b.length > a.length ? b : a));
    expect(resolveSiblings(['a'], longest)).to.deep.equal({ values: ['a'] });
    expect(resolveSiblings([], longest)).to.deep.equal({ values: [] });
    expect(resolveSiblings(['a', 'ccc', 'bb'], longest)).to.deep.equal({ values: ['ccc'], siblings: 3 });
    expect(resolveSiblings(['a', 'ccc'], undefined)).to.deep.equal({ values: ['a', 'ccc'] });
  });
});

// ---- end to end against fake nodes ----

/** What a fake node does with a request: a reply, nothing (it keeps the request), or the default. */
type Script = (request: ClientRequest, node: FakeNode) => ClientReply | 'silent' | undefined;

interface FakeNode {
  readonly id: string;
  readonly address: string;
  readonly received: ClientRequest[];
  script: Script | undefined;
  close(): Promise<void>;
}

const CTX = new Uint8Array([1, 2, 3]);

class FakeCluster {
  readonly nodes: FakeNode[] = [];
  /** The topology every node answers, or an error code when `topology` is not understood. */
  topology: (() => Topology) | 'unknown' = () => this.describe();
  n = 2;
  left = new Set<string>();
  /** Nodes that speak only protocol version 1, as a node of the build before paired gets. */
  readonly oldProtocol = new Set<string>();

  async start(count: number): Promise<void> {
    for (let i = 1; i <= count; i++) this.nodes.push(await this.startNode(`n${i}`));
  }

  describe(): Topology {
    return topologyOf(
      this.nodes.map((node) => ({ ...member(node.id), addr: node.address, status: this.left.has(node.id) ? 'left' : 'up' })),
      this.n,
    );
  }

  node(id: string): FakeNode {
    return this.nodes.find((n) => n.id === id) as FakeNode;
  }

  dataRequests(id: string): ClientRequest[] {
    return this.node(id).received.filter((r) => r.t !== 'admin');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  private reply(request: ClientRequest): ClientReply | undefined {
    switch (request.t) {
      case 'put':
        return { t: 'put-ok', id: request.id, ctx: CTX, siblings: 1 };
      case 'get':
        return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('v')], ctx: CTX };
      case 'del':
        return { t: 'del-ok', id: request.id };
      case 'admin':
        if (request.op !== 'topology') return { t: 'admin-ok', id: request.id, result: { op: request.op } };
        if (this.topology === 'unknown') return { t: 'err', id: request.id, code: 'INVALID_REQUEST', msg: 'unknown admin op topology', details: { field: 'op' } };
        return { t: 'admin-ok', id: request.id, result: this.topology() };
    }
  }

  private async startNode(id: string): Promise<FakeNode> {
    const server: Server = createServer();
    const role = { schema: clientRequestSchema, frameBytesMaxIn: 1024 * 1024, frameBytesMaxOut: 1024 * 1024, secret: null };
    const node: FakeNode = {
      id,
      address: '',
      received: [],
      script: undefined,
      close: async () => {
        acceptor.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
    const acceptor: Acceptor = attachAcceptor(server, {
      cluster: 'chorus',
      nodeId: id,
      handshakeTimeoutMs: 1000,
      pingIntervalMs: 1000,
      client: role,
      peer: role,
      onClient: (conn) => {
        const replies = conn as Connection<ClientRequest, ClientReply>;
        replies.onMessages((requests) => {
          for (const request of requests) {
            node.received.push(request);
            const scripted = node.script?.(request, node);
            if (scripted === 'silent') continue;
            const reply = scripted ?? this.reply(request);
            if (reply !== undefined) replies.send(reply);
          }
        });
      },
      onPeer: (conn) => conn.close(1008, 'no peers here'),
      onRefused: () => undefined,
      ...(this.oldProtocol.has(id) ? { versionMax: 1 } : {}),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    (node as { address: string }).address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return node;
  }
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function rejection(promise: Promise<unknown>): Promise<ChorusError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ChorusError);
    return error as ChorusError;
  }
  throw new Error('expected the request to fail, but it succeeded');
}

/** A key of bucket `b` whose primaries (n = 2 of the cluster's members) exclude `notOn`. */
function keyAvoiding(cluster: FakeCluster, notOn: string): { key: string; primaries: string[] } {
  const placement = new Placement(cluster.describe());
  for (let i = 0; ; i++) {
    const primaries = placement.primaries('b', `k${i}`).map((m) => m.id);
    if (!primaries.includes(notOn)) return { key: `k${i}`, primaries };
  }
}

describe('client: routing against fake nodes', function () {
  this.timeout(20000);
  let cluster: FakeCluster;
  let client: Client | undefined;

  beforeEach(async () => {
    cluster = new FakeCluster();
    await cluster.start(3);
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await cluster.stop();
  });

  it('reaches every member from one seed and sends requests to the primaries of the key', async () => {
    const seed = cluster.node('n1');
    client = await connect({ nodes: [seed.address] });
    await waitUntil(() => client?.connectedNodes.length === 3, 'links to all three members');
    expect(client.topology()?.members.map((m) => m.id)).to.deep.equal(['n1', 'n2', 'n3']);

    const { key, primaries } = keyAvoiding(cluster, 'n1');
    for (let i = 0; i < 4; i++) await client.put('b', key, i, { w: 'quorum', sloppy: false });
    await client.delete('b', key, { pw: 1 });
    for (let i = 0; i < 6; i++) await client.get('b', key, { r: 1 });

    expect(cluster.dataRequests('n1')).to.deep.equal([]);
    const [first, second] = primaries as [string, string];
    const writes = cluster.dataRequests(first).filter((r) => r.t !== 'get');
    expect(writes.map((r) => r.t)).to.deep.equal(['put', 'put', 'put', 'put', 'del']);
    expect(writes[0]).to.include({ w: 'quorum', sloppy: false });
    expect(writes[4]).to.include({ pw: 1 });
    expect(cluster.dataRequests(second).filter((r) => r.t !== 'get')).to.deep.equal([]);
    // Reads alternate between the two replicas.
    expect(cluster.dataRequests(first).filter((r) => r.t === 'get')).to.have.length(3);
    expect(cluster.dataRequests(second).filter((r) => r.t === 'get')).to.have.length(3);
  });

  it('moves an in-flight get to another replica when its node dies, fails an in-flight put as maybe landed, and routes later requests to the survivors', async () => {
    client = await connect({ nodes: cluster.nodes.map((n) => n.address), topologyRefreshMs: 100 });
    await waitUntil(() => client?.topology() !== undefined && client.connectedNodes.length === 3, 'the topology and three links');
    const { key, primaries } = keyAvoiding(cluster, 'n3');
    const [first, second] = primaries as [string, string];
    const doomed = cluster.node(first);
    doomed.script = (request) => (request.t === 'admin' ? undefined : 'silent');

    const put = client.put('b', key, 'x');
    let get: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < 2; i++) {
      // Of two gets in a row, one lands on the first primary (which keeps it unanswered).
      const attempt = client.get('b', key);
      get = get.then(() => attempt);
    }
    await waitUntil(() => doomed.received.filter((r) => r.t === 'put' || r.t === 'get').length === 2, 'the put and one get at the doomed node');
    await doomed.close();

    const failed = await rejection(put);
    expect(failed.code).to.equal('CLOSED');
    expect(failed.details['mayHaveLanded']).to.equal(true);
    await get;
    expect(cluster.dataRequests(second).filter((r) => r.t === 'get')).to.have.length(2);

    // The rest of the stream goes through the other replica.
    for (let i = 0; i < 3; i++) await client.put('b', key, i);
    expect(cluster.dataRequests(second).filter((r) => r.t === 'put')).to.have.length(3);
  });

  it('retries a request once on another node when a node refuses it with retry, and not twice', async () => {
    client = await connect({ nodes: cluster.nodes.map((n) => n.address) });
    await waitUntil(() => client?.topology() !== undefined, 'the topology');
    const { key, primaries } = keyAvoiding(cluster, 'n3');
    const refuse: Script = (request) =>
      request.t === 'admin'
        ? undefined
        : { t: 'err', id: request.id, code: 'UNAVAILABLE', msg: 'placement changed', details: { mayHaveLanded: false, retry: true } };
    cluster.node(primaries[0] as string).script = refuse;
    const result = await client.put('b', key, 'x');
    expect(result.siblings).to.equal(1);
    expect(cluster.dataRequests(primaries[0] as string)).to.have.length(1);
    expect(cluster.dataRequests(primaries[1] as string)).to.have.length(1);

    for (const node of cluster.nodes) node.script = refuse;
    const refused = await rejection(client.put('b', key, 'y'));
    expect(refused.code).to.equal('UNAVAILABLE');
    expect(cluster.nodes.reduce((sum, n) => sum + cluster.dataRequests(n.id).length, 0)).to.equal(2 + 2);

    // A refusal without `retry` is final at once.
    for (const node of cluster.nodes) {
      node.script = (request) =>
        request.t === 'admin' ? undefined : { t: 'err', id: request.id, code: 'UNAVAILABLE', msg: 'too few replicas', details: { mayHaveLanded: false } };
    }
    expect((await rejection(client.put('b', key, 'z'))).code).to.equal('UNAVAILABLE');
    expect(cluster.nodes.reduce((sum, n) => sum + cluster.dataRequests(n.id).length, 0)).to.equal(4 + 1);
  });

  it('closes the link to a member that left but keeps the given nodes', async () => {
    const seed = cluster.node('n1');
    client = await connect({ nodes: [seed.address], topologyRefreshMs: 50 });
    await waitUntil(() => client?.connectedNodes.length === 3, 'links to all three members');
    cluster.left.add('n2');
    cluster.left.add('n1');
    await waitUntil(() => client?.connectedNodes.length === 2, 'the link to n2 closed');
    expect(client.connectedNodes.sort()).to.deep.equal([seed.address, cluster.node('n3').address].sort());
  });

  it('works as before when the node cannot answer topology', async () => {
    cluster.topology = 'unknown';
    const seed = cluster.node('n2');
    client = await connect({ nodes: [seed.address] });
    await waitUntil(() => seed.received.some((r) => r.t === 'admin' && r.op === 'topology'), 'a topology request');
    await client.put('b', 'k', 1);
    expect((await client.get('b', 'k')).values).to.deep.equal(['v']);
    await client.delete('b', 'k');
    expect(client.topology()).to.equal(undefined);
    expect(client.connectedNodes).to.deep.equal([seed.address]);
    expect(cluster.dataRequests('n2').map((r) => r.t)).to.deep.equal(['put', 'get', 'del']);
  });

  it('resolves siblings with the caller’s resolver and writes the resolution back with the read’s context', async () => {
    client = await connect({ nodes: [cluster.node('n1').address], discover: false });
    for (const node of cluster.nodes) {
      node.script = (request) => (request.t === 'get' ? { t: 'get-ok', id: request.id, found: true, values: [encodeValue(3), encodeValue(5)], ctx: CTX } : undefined);
    }
    const plain = await client.get<number>('b', 'k');
    expect(plain).to.deep.equal({ found: true, values: [3, 5], context: 'AQID' });
    const resolved = await client.get<number>('b', 'k', { resolver: (values) => Math.max(...values) });
    expect(resolved).to.deep.equal({ found: true, values: [5], context: 'AQID', siblings: 2 });
    expect(cluster.dataRequests('n1').filter((r) => r.t === 'put')).to.deep.equal([]);

    const written = await client.get<number>('b', 'k', { resolver: (values) => Math.max(...values), writeBack: true });
    expect(written.values).to.deep.equal([5]);
    const put = cluster.dataRequests('n1').find((r) => r.t === 'put');
    expect(put?.t === 'put' && Buffer.from(put.ctx ?? []).equals(Buffer.from(CTX))).to.equal(true);
    expect(put?.t === 'put' && Buffer.from(put.v).equals(Buffer.from(encodeValue(5)))).to.equal(true);
    expect((await rejection(client.get('b', 'k', { resolver: 'max' as never }))).code).to.equal('INVALID_REQUEST');
  });

  it('pairs a quorum get: the same digest at the pair completes it, a different one or a silent pair sends it again unpaired', async () => {
    client = await connect({ nodes: cluster.nodes.map((n) => n.address) });
    await waitUntil(() => client?.topology() !== undefined && client.connectedNodes.length === 3, 'the topology and three links');
    const ours: [string, number, number][] = [['n1/e1', 4, 1]];
    let pairDigest: [string, number, number][] | 'silent' = ours;
    for (const node of cluster.nodes) {
      node.script = (request) => {
        if (request.t === 'get' && request.pair !== undefined) return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('paired')], ctx: CTX, dg: ours };
        if (request.t === 'get') return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('coordinated')], ctx: CTX };
        if (request.t === 'dget') return pairDigest === 'silent' ? 'silent' : { t: 'dget-ok', id: request.id, dg: pairDigest };
        return undefined;
      };
    }
    const { key, primaries } = keyAvoiding(cluster, 'n3');
    type Seen = ClientRequest & { readonly at: string };
    const requests = (): Seen[] => cluster.nodes.flatMap((n) => n.received.filter((r) => r.t !== 'admin').map((r): Seen => Object.assign({ at: n.id }, r)));
    const clear = (): void => cluster.nodes.forEach((n) => n.received.splice(0));

    clear();
    expect((await client.get('b', key)).values).to.deep.equal(['paired']);
    const sent = requests();
    expect(sent.map((r) => r.t).sort()).to.deep.equal(['dget', 'get']);
    const get = sent.find((r) => r.t === 'get') as GetRequest & { at: string };
    const dget = sent.find((r) => r.t === 'dget') as Seen;
    expect([get.at, dget.at].sort(), 'one message to each primary').to.deep.equal([...primaries].sort());
    expect(get.pair, 'the get names the node asked for its digest').to.equal(dget.at);
    expect(client.stats.pairsUnsettled).to.equal(0);

    clear();
    pairDigest = [['n1/e1', 5, 1]];
    expect((await client.get('b', key)).values, 'different digests: read again, unpaired').to.deep.equal(['coordinated']);
    expect(requests().map((r) => `${r.t}${r.t === 'get' && r.pair !== undefined ? ' paired' : ''}`).sort()).to.deep.equal(['dget', 'get', 'get paired']);
    expect(client.stats.pairsUnsettled).to.equal(1);

    clear();
    pairDigest = 'silent';
    const started = performance.now();
    expect((await client.get('b', key)).values, 'a silent pair: read again, unpaired').to.deep.equal(['coordinated']);
    expect(performance.now() - started).to.be.at.least(PAIR_DIGEST_WAIT_MS - 1);
    expect(client.stats.pairsUnsettled).to.equal(2);

    clear();
    pairDigest = ours;
    await client.get('b', key, { r: 'one' });
    expect(requests().map((r) => r.t), 'r=one is never paired').to.deep.equal(['get']);
  });

  it('settles a paired get by whichever half fails: a failing pair reads again unpaired, a failing replica fails the get, a whole reply needs no pair', async () => {
    client = await connect({ nodes: cluster.nodes.map((n) => n.address) });
    await waitUntil(() => client?.topology() !== undefined && client.connectedNodes.length === 3, 'the topology and three links');
    const ours: [string, number, number][] = [['n1/e1', 4, 1]];
    type Mode = 'pair errs' | 'replica errs' | 'replica coordinates';
    let mode: Mode = 'pair errs';
    for (const node of cluster.nodes) {
      node.script = (request): ClientReply | 'silent' | undefined => {
        if (request.t === 'get' && request.pair !== undefined) {
          if (mode === 'replica errs') return { t: 'err', id: request.id, code: 'STORAGE', msg: 'cannot read', details: { mayHaveLanded: false } };
          if (mode === 'replica coordinates') return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('whole')], ctx: CTX };
          return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('paired')], ctx: CTX, dg: ours };
        }
        if (request.t === 'get') return { t: 'get-ok', id: request.id, found: true, values: [encodeValue('coordinated')], ctx: CTX };
        if (request.t === 'dget') {
          if (mode === 'pair errs') return { t: 'err', id: request.id, code: 'TIMEOUT', msg: 'no answer', details: { required: 1, received: 0 } };
          // A silent pair would hold a read that waited for it.
          if (mode === 'replica coordinates') return 'silent';
          return { t: 'dget-ok', id: request.id, dg: ours };
        }
        return undefined;
      };
    }
    const { key } = keyAvoiding(cluster, 'n3');
    const clear = (): void => cluster.nodes.forEach((n) => n.received.splice(0));

    clear();
    const erred = performance.now();
    expect((await client.get('b', key)).values, 'a pair that answers with an error: read again, unpaired').to.deep.equal(['coordinated']);
    expect(performance.now() - erred, 'at once, not after waiting for the pair').to.be.below(PAIR_DIGEST_WAIT_MS);
    expect(client.stats.pairsUnsettled).to.equal(1);

    clear();
    mode = 'replica errs';
    const failed = await rejection(client.get('b', key));
    expect(failed.code).to.equal('STORAGE');
    expect(cluster.nodes.flatMap((n) => n.received).filter((r) => r.t === 'get').length, 'a failed replica is not read again by the pairing').to.equal(1);
    expect(client.stats.pairsUnsettled).to.equal(1);

    clear();
    mode = 'replica coordinates';
    const started = performance.now();
    expect((await client.get('b', key)).values, 'a reply without a digest is whole').to.deep.equal(['whole']);
    expect(performance.now() - started, 'and waits for no pair').to.be.below(PAIR_DIGEST_WAIT_MS);
    expect(client.stats.pairsUnsettled).to.equal(1);
  });

  it('never pairs with a node that speaks only the protocol before paired gets', async () => {
    await cluster.stop();
    cluster = new FakeCluster();
    cluster.oldProtocol.add('n3');
    await cluster.start(3);
    client = await connect({ nodes: cluster.nodes.map((n) => n.address) });
    await waitUntil(() => client?.topology() !== undefined && client.connectedNodes.length === 3, 'the topology and three links');
    const placement = new Placement(cluster.describe());
    const keyWith = (wanted: boolean): string => {
      for (let i = 0; ; i++) if (placement.primaries('b', `k${i}`).some((m) => m.id === 'n3') === wanted) return `k${i}`;
    };
    for (let i = 0; i < 4; i++) await client.get('b', keyWith(true));
    const sent = cluster.nodes.flatMap((n) => n.received.filter((r) => r.t === 'get' || r.t === 'dget'));
    expect(sent.map((r) => r.t)).to.deep.equal(['get', 'get', 'get', 'get']);
    expect(sent.filter((r) => r.t === 'get' && r.pair !== undefined)).to.deep.equal([]);
    await client.get('b', keyWith(false));
    expect(cluster.node('n3').received.filter((r) => r.t === 'dget' || (r.t === 'get' && r.pair !== undefined)), 'nothing paired reaches n3').to.deep.equal([]);
    const paired = cluster.nodes.flatMap((n) => n.received.filter((r) => r.t === 'dget'));
    expect(paired, 'two nodes of this build still pair their reads').to.have.length(1);
  });
});
