/**
 * Proves replication between real `chorus start` processes, as a user and an operator see
 * it: through the SDK and each node's `inspect` of its own copy of a key.
 *
 * Three nodes (n = 3, every node a replica of every key): writes reach every replica;
 * two writers without context make siblings and a write with the merged context resolves
 * them everywhere; a delete is not-found on every replica. With one node killed, `w=2`
 * puts keep succeeding while `w=all` and `pw=all` fail at once with UNAVAILABLE; restarted,
 * the node receives the hints kept for it, and every replica holds every acknowledged
 * write. A client whose node is killed finishes its stream of operations through another.
 *
 * Five nodes: with one node killed, writes at `w=3` succeed through fallbacks (sloppy
 * quorum), which keep hints; with `sloppy: false` the same write is UNAVAILABLE; restarted,
 * the hints drain and every primary of every key holds every acknowledged write.
 */

import { expect } from 'chai';
import { mkdirSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ChorusError } from '../../lib/base/errors.js';
import { connect, type Client } from '../../lib/client/index.js';
import { fetchMetrics, fetchStatus, waitForTables, type NodeStatus } from '../support/cluster.js';
import { killAll, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor, type NodeProcess } from '../support/processes.js';

/** A failed quorum must be refused before anything is sent: well under one round trip to a timeout. */
const FAIL_FAST_MS_MAX = 250;

interface Inspected {
  readonly node: string;
  readonly found: boolean;
  readonly tombstone: boolean;
  readonly values: Uint8Array[];
  readonly clock: [string, number][];
}

interface ReplicationStatus extends NodeStatus {
  readonly replication: { readonly hintsPending: number; readonly hints: readonly { target: string; pending: number; delivered: number }[] };
}

function allUpAndAlive(count: number): (status: NodeStatus) => boolean {
  return (status) => status.members.length === count && status.members.every((m) => m.status === 'up' && m.live === 'alive');
}

/** The values a node holds for a key, decoded as the SDK encodes strings. */
async function valuesAt(client: Client, node: NodeProcess, bucket: string, key: string): Promise<Inspected> {
  return (await client.admin('inspect', { bucket, key, node: node.address })) as Inspected;
}

function decoded(inspected: Inspected): string[] {
  return inspected.values.map((v) => decodeString(v)).sort();
}

/** The SDK stores a string as CBOR: a text-string header, then UTF-8. */
function decodeString(bytes: Uint8Array): string {
  const major = (bytes[0] as number) >> 5;
  if (major !== 3) return `<${bytes.length} bytes>`;
  const info = (bytes[0] as number) & 0x1f;
  const skip = info < 24 ? 1 : info === 24 ? 2 : info === 25 ? 3 : 5;
  return new TextDecoder().decode(bytes.subarray(skip));
}

async function startCluster(count: number): Promise<{ nodes: NodeProcess[]; dataDirs: string[] }> {
  const hosts = Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
  const dataDirs = hosts.map(() => tempDir());
  const seed = await startNodeProcess({ host: hosts[0], dataDir: dataDirs[0], args: ['--id', 'n1'] });
  const others = await Promise.all(hosts.slice(1).map((host, i) => startNodeProcess({ host, dataDir: dataDirs[i + 1], args: ['--id', `n${i + 2}`, '--seeds', seed.address] })));
  const nodes = [seed, ...others];
  await waitForTables(nodes, `${count} members, all up and alive, in every table`, allUpAndAlive(count), 15000);
  return { nodes, dataDirs };
}

async function restart(node: NodeProcess, dataDir: string, seed: string): Promise<NodeProcess> {
  const host = node.address.slice(0, node.address.lastIndexOf(':'));
  const port = Number(node.address.slice(node.address.lastIndexOf(':') + 1));
  return startNodeProcess({ host, port, dataDir, args: ['--id', node.nodeId, '--seeds', seed] });
}

async function expectUnavailableFast(attempt: Promise<unknown>, what: string): Promise<number> {
  const startedMs = performance.now();
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsedMs = performance.now() - startedMs;
  expect(error, `${what} should fail`).to.be.instanceOf(ChorusError);
  expect((error as ChorusError).code, `${what}: ${(error as Error).message}`).to.equal('UNAVAILABLE');
  expect((error as ChorusError).details.mayHaveLanded, what).to.equal(false);
  expect(elapsedMs, `${what} took ${elapsedMs.toFixed(0)} ms`).to.be.below(FAIL_FAST_MS_MAX);
  return elapsedMs;
}

/** A restarted node is inspected once the client's link to it is back (it redials with backoff). */
async function waitConnected(client: Client, nodes: readonly NodeProcess[]): Promise<void> {
  await waitFor('the client to reconnect to every node', () => (nodes.every((n) => client.connectedNodes.includes(n.address)) ? true : undefined), 15000, 50);
}

/** A counter's value in Prometheus text (the sample without labels, or the sum of its samples). */
function metricValue(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function waitHintsDrained(nodes: readonly NodeProcess[], timeoutMs: number): Promise<number> {
  let delivered = 0;
  await waitFor(
    'every node to have handed over its hints',
    async () => {
      const statuses = (await Promise.all(nodes.map((n) => fetchStatus(n.address)))) as ReplicationStatus[];
      if (!statuses.every((s) => s.replication.hintsPending === 0)) return undefined;
      delivered = statuses.reduce((sum, s) => sum + s.replication.hints.reduce((t, h) => t + h.delivered, 0), 0);
      return true;
    },
    timeoutMs,
    100,
  );
  return delivered;
}

describe('integration: replication on three real nodes (n = 3)', function () {
  this.timeout(90000);
  let nodes: NodeProcess[] = [];
  let dataDirs: string[] = [];
  let client: Client | undefined;
  const db = (): Client => {
    if (client === undefined) throw new Error('no client (an earlier case failed)');
    return client;
  };
  const acknowledged = new Map<string, string>();

  before(async () => {
    ({ nodes, dataDirs } = await startCluster(3));
    client = await connect({ nodes: nodes.map((n) => n.address) });
  });

  after(async () => {
    await client?.close();
    await killAll();
    removeTempDirs();
  });

  it('writes every acknowledged put to every replica', async () => {
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        await db().put('users', `u${i}`, `v${i}`, { w: 'all' });
        acknowledged.set(`u${i}`, `v${i}`);
      }),
    );
    for (const node of nodes) {
      for (const [key, value] of acknowledged) expect(decoded(await valuesAt(db(), node, 'users', key)), `${key} at ${node.nodeId}`).to.deep.equal([value]);
    }
  });

  it('keeps concurrent writes without context as siblings, and a write with the merged context resolves them everywhere', async () => {
    await db().put('docs', 'd1', 'from-a', { w: 'all' });
    await db().put('docs', 'd1', 'from-b', { w: 'all' });
    const read = await db().get<string>('docs', 'd1', { r: 'all' });
    expect(read.values.sort()).to.deep.equal(['from-a', 'from-b']);
    const written = await db().put('docs', 'd1', 'merged', { context: read.context, w: 'all' });
    expect(written.siblings).to.equal(1);
    for (const node of nodes) expect(decoded(await valuesAt(db(), node, 'docs', 'd1')), node.nodeId).to.deep.equal(['merged']);
  });

  it('reads a deleted key as not found from every replica', async () => {
    await db().put('docs', 'gone', 'soon', { w: 'all' });
    await db().delete('docs', 'gone', { w: 'all' });
    const read = await db().get('docs', 'gone', { r: 'all' });
    expect(read.found).to.equal(false);
    for (const node of nodes) {
      const held = await valuesAt(db(), node, 'docs', 'gone');
      expect(held.found, node.nodeId).to.equal(false);
    }
  });

  it('keeps taking w=2 puts with a node killed, refuses w=all and pw=all at once, and hands the node its writes when it returns', async () => {
    const victim = nodes[2] as NodeProcess;
    await victim.kill('SIGKILL');
    const survivors = nodes.slice(0, 2);
    await waitForTables(survivors, `${victim.nodeId} not alive at the survivors`, (s) => s.members.some((m) => m.id === victim.nodeId && m.live !== 'alive'), 10000);

    const during = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      await db().put('users', `down${i}`, `w${i}`, { w: 2 });
      during.set(`down${i}`, `w${i}`);
    }
    const allMs = await expectUnavailableFast(db().put('users', 'strict', 'x', { w: 'all' }), 'w=all with a replica down');
    const pwMs = await expectUnavailableFast(db().put('users', 'strict', 'x', { pw: 'all' }), 'pw=all with a replica down');
    console.log(`      with ${victim.nodeId} down: 40 puts at w=2 acknowledged; w=all refused in ${allMs.toFixed(1)} ms, pw=all in ${pwMs.toFixed(1)} ms`);

    const back = await restart(victim, dataDirs[2] as string, (nodes[0] as NodeProcess).address);
    nodes[2] = back;
    await waitForTables(nodes, 'three members, all up and alive, in every table', allUpAndAlive(3), 15000);
    const startedMs = performance.now();
    const delivered = await waitHintsDrained(nodes, 20000);
    console.log(`      ${back.nodeId} back: ${delivered} hints delivered, drained ${((performance.now() - startedMs) / 1000).toFixed(2)} s after it was alive everywhere`);
    await waitConnected(db(), nodes);
    for (const [key, value] of [...acknowledged, ...during]) {
      for (const node of nodes) expect(decoded(await valuesAt(db(), node, 'users', key)), `${key} at ${node.nodeId}`).to.deep.equal([value]);
    }
  });

  it('gives a node whose data was lost a new actor, so its new writes are not shadowed by what it wrote before (kv679)', async () => {
    const target = nodes[1] as NodeProcess;
    const actorBefore = ((await fetchStatus(target.address)) as ReplicationStatus & { actor: string }).actor;
    const direct = await connect({ nodes: [target.address], discover: false });
    try {
      await direct.put('kv679', 'k', 'old', { w: 'all' });
      await target.kill('SIGKILL');
      rmSync(dataDirs[1] as string, { recursive: true, force: true });
      mkdirSync(dataDirs[1] as string, { recursive: true });
      nodes[1] = await restart(target, dataDirs[1] as string, (nodes[0] as NodeProcess).address);
      await waitForTables(nodes, 'three members, all up and alive, in every table', allUpAndAlive(3), 15000);
      const actorAfter = ((await fetchStatus((nodes[1] as NodeProcess).address)) as ReplicationStatus & { actor: string }).actor;
      expect(actorAfter).to.not.equal(actorBefore);
      await waitFor('the direct client to reconnect', () => (direct.connectedNodes.length === 1 ? true : undefined), 15000, 50);
      const read = await direct.get<string>('kv679', 'k', { r: 'all' });
      expect(read.values).to.deep.equal(['old']);
      await direct.put('kv679', 'k', 'new', { context: read.context, w: 'all' });
      expect((await direct.get<string>('kv679', 'k', { r: 'all' })).values).to.deep.equal(['new']);
      await waitConnected(db(), nodes);
      for (const node of nodes) expect(decoded(await valuesAt(db(), node, 'kv679', 'k')), node.nodeId).to.deep.equal(['new']);
      console.log(`      ${target.nodeId} wiped: actor ${actorBefore} became ${actorAfter}; its write with a fresh read's context replaced the old value everywhere`);
    } finally {
      await direct.close();
    }
  });

  it('lets a client whose node is killed finish its stream of operations through another node', async () => {
    const first = nodes[0] as NodeProcess;
    const stream = await connect({ nodes: [first.address] });
    try {
      await waitFor('the client to learn every node', () => (stream.connectedNodes.length === 3 ? true : undefined), 10000, 50);
      const outcomes = { ok: 0, unknown: 0, failed: 0 };
      let killed = false;
      for (let i = 0; i < 200; i++) {
        if (i === 50) {
          void first.kill('SIGKILL');
          killed = true;
        }
        try {
          await stream.put('stream', `s${i}`, i, { w: 2, timeoutMs: 3000 });
          const read = await stream.get<number>('stream', `s${i}`, { r: 2, timeoutMs: 3000 });
          expect(read.values).to.include(i);
          outcomes.ok++;
        } catch (error) {
          if (error instanceof ChorusError && error.details.mayHaveLanded === true) outcomes.unknown++;
          else outcomes.failed++;
        }
      }
      expect(killed).to.equal(true);
      console.log(`      stream of 200 put+get pairs with its node killed at 50: ${outcomes.ok} ok, ${outcomes.unknown} unknown, ${outcomes.failed} failed`);
      expect(outcomes.ok).to.be.at.least(195);
      expect(outcomes.failed).to.equal(0);
    } finally {
      await stream.close();
    }
  });
});

describe('integration: sloppy quorum and hinted handoff on five real nodes', function () {
  this.timeout(90000);
  let nodes: NodeProcess[] = [];
  let dataDirs: string[] = [];
  let client: Client | undefined;
  const db = (): Client => {
    if (client === undefined) throw new Error('no client (an earlier case failed)');
    return client;
  };

  before(async () => {
    ({ nodes, dataDirs } = await startCluster(5));
    client = await connect({ nodes: nodes.map((n) => n.address) });
  });

  after(async () => {
    await client?.close();
    await killAll();
    removeTempDirs();
  });

  it('writes at w=3 through fallbacks while a primary is down, and every primary holds every write once it returns', async () => {
    const victim = nodes[3] as NodeProcess;
    await victim.kill('SIGKILL');
    const survivors = nodes.filter((n) => n !== victim);
    await waitForTables(survivors, `${victim.nodeId} dead at the survivors`, (s) => s.members.some((m) => m.id === victim.nodeId && m.live === 'dead'), 10000);

    const written = new Map<string, string>();
    for (let i = 0; i < 100; i++) {
      await db().put('events', `e${i}`, `x${i}`, { w: 3 });
      written.set(`e${i}`, `x${i}`);
    }
    // A key whose primaries include the dead node: without fallbacks, w=3 cannot be met.
    let strictKey: string | undefined;
    for (let i = 0; strictKey === undefined && i < 200; i++) {
      const where = (await db().admin('whereis', { bucket: 'events', key: `e${i}` })) as { primaries: string[] };
      if (where.primaries.includes(victim.nodeId)) strictKey = `e${i}`;
    }
    expect(strictKey, 'some key has the dead node among its primaries').to.not.equal(undefined);
    const strictMs = await expectUnavailableFast(db().put('events', strictKey as string, 'y', { w: 3, sloppy: false }), 'w=3 without sloppy quorum');
    await expectUnavailableFast(db().put('events', strictKey as string, 'y', { pw: 'all' }), 'pw=all with a primary down');
    const statuses = (await Promise.all(survivors.map((n) => fetchStatus(n.address)))) as ReplicationStatus[];
    const pending = statuses.reduce((sum, s) => sum + s.replication.hintsPending, 0);
    console.log(`      with ${victim.nodeId} down: 100 puts at w=3 acknowledged, ${pending} hints kept for it; w=3 without sloppy refused in ${strictMs.toFixed(1)} ms`);
    expect(pending).to.be.greaterThan(0);

    nodes[3] = await restart(victim, dataDirs[3] as string, (nodes[0] as NodeProcess).address);
    await waitForTables(nodes, 'five members, all up and alive, in every table', allUpAndAlive(5), 15000);
    const delivered = await waitHintsDrained(nodes, 20000);
    console.log(`      ${victim.nodeId} back: ${delivered} hints delivered`);
    expect(delivered).to.be.at.least(pending);
    await waitConnected(db(), nodes);

    const metrics = await Promise.all(nodes.map((n) => fetchMetrics(n.address)));
    const deliveredMetric = metrics.reduce((sum, text) => sum + metricValue(text, 'chorus_hints_delivered_total'), 0);
    expect(deliveredMetric, 'chorus_hints_delivered_total over the nodes').to.equal(delivered);
    expect(metrics.every((text) => text.includes('chorus_hints_dropped_total'))).to.equal(true);

    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    const shown = await runCli(['inspect', 'events', 'e0', '--node', (nodes[0] as NodeProcess).address]);
    expect(shown.stdout, shown.stderr).to.match(/holds (1 value\(s\)|nothing)/);
    for (const [key, value] of written) {
      const where = (await db().admin('whereis', { bucket: 'events', key })) as { primaries: string[] };
      expect(where.primaries).to.have.length(3);
      for (const id of where.primaries) {
        const node = byId.get(id) as NodeProcess;
        expect(decoded(await valuesAt(db(), node, 'events', key)), `${key} at ${id}`).to.deep.equal([value]);
      }
    }
  });
});
