/**
 * Proves typed buckets between real `chorus start` processes, through the SDK and the CLI.
 *
 * Three nodes (n = 3). Four clients increment counters concurrently while one node is killed
 * and restarted: every counter ends equal to its acknowledged increments (plus at most those
 * whose outcome the client could not know), and every replica's own copy holds that value
 * (the r=all read repairs the one that missed increments while it was down). Two clients, each connected to
 * a different node, edit the same Yjs text concurrently, sending every local change as an
 * update and syncing by state vector: both end with the same text, which is the server's.
 * Sets keep every add not removed. A malformed Yjs update and a struct-count bomb are refused
 * with INVALID_REQUEST before they reach any replica, and the node keeps serving. The CLI's
 * `counter`, `set` and `doc` commands work end to end.
 */

import { expect } from 'chai';
import * as Y from 'yjs';
import { ChorusError } from '../../lib/base/errors.js';
import { connect, type Client } from '../../lib/client/index.js';
import { typedValue } from '../../lib/crdt/stored.js';
import { fetchStatus, waitForTables, type NodeStatus } from '../support/cluster.js';
import { killAll, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor, type NodeProcess } from '../support/processes.js';

interface TypedStatus extends NodeStatus {
  readonly buckets: Record<string, { type?: string }>;
  readonly replication: { readonly hintsPending: number };
}

function allUpAndAlive(count: number): (status: NodeStatus) => boolean {
  return (status) => status.members.length === count && status.members.every((m) => m.status === 'up' && m.live === 'alive');
}

async function declare(client: Client, nodes: readonly NodeProcess[], types: Record<string, string>): Promise<void> {
  for (const [bucket, type] of Object.entries(types)) await client.admin('bucket-set', { bucket, props: { type: type as 'counter' } });
  await waitFor(
    'every node to know the bucket types',
    async () => {
      const statuses = (await Promise.all(nodes.map((n) => fetchStatus(n.address)))) as TypedStatus[];
      return statuses.every((s) => Object.entries(types).every(([bucket, type]) => s.buckets[bucket]?.type === type)) ? true : undefined;
    },
    15000,
    50,
  );
}

describe('integration: typed buckets on three real nodes', function () {
  this.timeout(120000);
  let nodes: NodeProcess[] = [];
  let dataDirs: string[] = [];
  const clients: Client[] = [];

  before(async () => {
    const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    dataDirs = hosts.map(() => tempDir());
    const seed = await startNodeProcess({ host: hosts[0], dataDir: dataDirs[0], args: ['--id', 'n1'] });
    const others = await Promise.all(hosts.slice(1).map((host, i) => startNodeProcess({ host, dataDir: dataDirs[i + 1], args: ['--id', `n${i + 2}`, '--seeds', seed.address] })));
    nodes = [seed, ...others];
    await waitForTables(nodes, 'three members, all up and alive', allUpAndAlive(3), 15000);
    const admin = await connect({ nodes: nodes.map((n) => n.address) });
    clients.push(admin);
    await declare(admin, nodes, { likes: 'counter', tags: 'set', notes: 'doc' });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await killAll();
    removeTempDirs();
  });

  it('counters incremented by four clients while a node is killed and restarted end exact at every replica', async () => {
    const writers = await Promise.all(Array.from({ length: 4 }, () => connect({ nodes: nodes.map((n) => n.address), timeoutMs: 2000 })));
    clients.push(...writers);
    const keys = ['p1', 'p2', 'p3'];
    const acked = new Map(keys.map((k) => [k, 0]));
    const unknown = new Map(keys.map((k) => [k, 0]));
    let stop = false;
    let sent = 0;
    const loops = writers.map(async (db, w) => {
      for (let i = 0; !stop; i++) {
        const key = keys[(i + w) % keys.length] as string;
        const by = 1 + ((i * 7 + w) % 5);
        sent++;
        try {
          await db.counter('likes', key).increment(by, { w: 2 });
          acked.set(key, (acked.get(key) ?? 0) + by);
        } catch (error) {
          if (!(error instanceof ChorusError)) throw error;
          if (error.details.mayHaveLanded !== false) unknown.set(key, (unknown.get(key) ?? 0) + by);
        }
      }
    });
    await waitFor('some increments', () => (sent > 300 ? true : undefined), 20000, 10);
    const victim = nodes[2] as NodeProcess;
    await victim.kill('SIGKILL');
    await waitFor('more increments with the node down', () => (sent > 900 ? true : undefined), 30000, 10);
    const host = victim.address.slice(0, victim.address.lastIndexOf(':'));
    const port = Number(victim.address.slice(victim.address.lastIndexOf(':') + 1));
    nodes[2] = await startNodeProcess({ host, port, dataDir: dataDirs[2], args: ['--id', victim.nodeId, '--seeds', (nodes[0] as NodeProcess).address] });
    await waitForTables(nodes, 'three members, all up and alive, after the restart', allUpAndAlive(3), 20000);
    await waitFor('more increments with the node back', () => (sent > 1300 ? true : undefined), 30000, 10);
    stop = true;
    await Promise.all(loops);
    await waitFor(
      'every hint to be delivered',
      async () => ((await Promise.all(nodes.map((n) => fetchStatus(n.address)))) as TypedStatus[]).every((s) => s.replication.hintsPending === 0) || undefined,
      20000,
      100,
    );
    const reader = writers[0] as Client;
    await waitFor('the client to reconnect to every node', () => (nodes.every((n) => reader.connectedNodes.includes(n.address)) ? true : undefined), 15000, 50);
    for (const key of keys) {
      const value = await reader.counter('likes', key).value({ r: 'all' });
      const low = acked.get(key) as number;
      const high = low + (unknown.get(key) as number);
      expect(value, `likes/${key}: acknowledged ${low}, unknown ${high - low}`).to.be.within(low, high);
      // Each replica's own copy, merged as a read would, holds the same value.
      for (const node of nodes) {
        const inspected = (await reader.admin('inspect', { bucket: 'likes', key, node: node.address })) as { values: Uint8Array[] };
        const held = typedValue('counter', inspected.values, undefined);
        expect(held.ok && held.value, `likes/${key} at ${node.nodeId}`).to.equal(value);
      }
    }
    const totals = keys.map((k) => `${k} ${acked.get(k)}+${unknown.get(k)}?`).join(', ');
    console.log(`      ${sent} increments sent by 4 clients across a kill and restart; acknowledged+unknown per key: ${totals}`);
  });

  it('two clients editing one Yjs text through different nodes converge to the same text', async () => {
    const [a, b] = await Promise.all([0, 1].map((i) => connect({ nodes: [(nodes[i] as NodeProcess).address], discover: false })));
    clients.push(a as Client, b as Client);
    const edit = async (db: Client, seed: number): Promise<Y.Doc> => {
      const local = new Y.Doc();
      const handle = db.doc('notes', 'shared');
      const sends: Promise<unknown>[] = [];
      local.on('update', (update: Uint8Array, origin: unknown) => {
        if (origin !== 'remote') sends.push(handle.applyUpdate(update));
      });
      let state = seed;
      const random = (): number => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
      for (let i = 0; i < 60; i++) {
        const text = local.getText('text');
        if (text.length > 10 && random() < 0.25) text.delete(Math.floor(random() * (text.length - 3)), 2);
        else text.insert(Math.floor(random() * (text.length + 1)), `${seed % 2 === 0 ? 'a' : 'b'}${i} `);
        if (i % 10 === 9) {
          await Promise.all(sends.splice(0));
          Y.applyUpdate(local, await handle.sync(Y.encodeStateVector(local)), 'remote');
        }
      }
      await Promise.all(sends.splice(0));
      return local;
    };
    const [docA, docB] = await Promise.all([edit(a as Client, 2), edit(b as Client, 7)]);
    for (const [db, doc] of [
      [a, docA],
      [b, docB],
    ] as const) {
      Y.applyUpdate(doc, await (db as Client).doc('notes', 'shared').sync(Y.encodeStateVector(doc), { r: 'all' }));
    }
    const server = new Y.Doc();
    Y.applyUpdate(server, await (a as Client).doc('notes', 'shared').state({ r: 'all' }));
    const text = docA.getText('text').toString();
    expect(docB.getText('text').toString()).to.equal(text);
    expect(server.getText('text').toString()).to.equal(text);
    expect(text).to.match(/a\d+ /);
    expect(text).to.match(/b\d+ /);
    console.log(`      two writers through n1 and n2: ${text.length} characters, equal at both clients and the server`);
  });

  it('keeps every set member added and not removed, and refuses operations of the wrong type', async () => {
    const db = clients[0] as Client;
    await db.set('tags', 'post').add('db', 'crdt', 'yjs');
    await db.set('tags', 'post').remove('yjs');
    await db.set('tags', 'post').add('riak');
    expect(await db.set('tags', 'post').members({ r: 'all' })).to.deep.equal(['crdt', 'db', 'riak']);
    const wrong = await db.counter('tags', 'post').increment(1).catch((e: unknown) => e);
    expect(wrong).to.be.instanceOf(ChorusError);
    expect((wrong as ChorusError).code).to.equal('INVALID_REQUEST');
    expect((wrong as ChorusError).details).to.include({ field: 'type', bucketType: 'set' });
    const put = await db.put('tags', 'post', 'x').catch((e: unknown) => e);
    expect((put as ChorusError).code).to.equal('INVALID_REQUEST');
  });

  it('refuses a malformed Yjs update and a struct-count bomb with INVALID_REQUEST, and keeps serving', async () => {
    const db = clients[0] as Client;
    const garbage = await db.doc('notes', 'bad').applyUpdate(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])).catch((e: unknown) => e);
    expect(garbage).to.be.instanceOf(ChorusError);
    expect((garbage as ChorusError).code).to.equal('INVALID_REQUEST');
    const started = performance.now();
    // One client whose struct count claims billions of structs, in a few bytes.
    const bomb = await db.doc('notes', 'bad').applyUpdate(new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0])).catch((e: unknown) => e);
    expect((bomb as ChorusError).code, String(bomb)).to.equal('INVALID_REQUEST');
    const elapsed = performance.now() - started;
    expect(elapsed, `refused in ${elapsed.toFixed(0)} ms`).to.be.below(3000);
    expect((await db.doc('notes', 'bad').state()).byteLength, 'nothing was stored').to.be.at.most(2);
    await db.counter('likes', 'after-bomb').increment(1);
    expect(await db.counter('likes', 'after-bomb').value()).to.equal(1);
  });

  it('serves typed buckets from the CLI: counter inc and get, set add and members, doc append and get', async () => {
    const node = ['--node', (nodes[0] as NodeProcess).address];
    expect((await runCli(['counter', 'inc', 'likes', 'cli', '5', ...node])).stdout.trim()).to.equal('5');
    expect((await runCli(['counter', 'dec', 'likes', 'cli', ...node])).stdout.trim()).to.equal('4');
    expect((await runCli(['counter', 'get', 'likes', 'cli', '--r', 'all', ...node])).stdout.trim()).to.equal('4');
    expect((await runCli(['set', 'add', 'tags', 'cli', 'x', 'y', ...node])).stdout.trim().split('\n')).to.deep.equal(['x', 'y']);
    expect((await runCli(['set', 'members', 'tags', 'cli', '--json', ...node])).stdout.trim()).to.equal('{"members":["x","y"]}');
    await runCli(['doc', 'append', 'notes', 'cli', 'hello ', ...node]);
    expect((await runCli(['doc', 'append', 'notes', 'cli', 'world', ...node])).stdout.trim()).to.equal('hello world');
    expect((await runCli(['doc', 'get', 'notes', 'cli', ...node])).stdout.trim()).to.equal('hello world');
    const wrong = await runCli(['counter', 'inc', 'tags', 'cli', ...node]);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/INVALID_REQUEST/);
  });
});
