/**
 * Proves SWIM membership and gossiped metadata between real `chorus start` processes with
 * the default `lan` profile. Five nodes on 127.0.0.1 … 127.0.0.5, all seeded with node 1,
 * must all list five members `up`/`alive`; after `kill -9` of node 4, every other node must
 * report it `dead` within 5 s of the kill, and `chorus status` must exit 2; restarted on its
 * data directory, node 4 must be `alive` everywhere under a higher incarnation; concurrent
 * `chorus bucket set` at two nodes must merge at every node; `chorus leave` must make node 5
 * `left` everywhere while `chorus status` exits 0. A second cluster shows that a seed list
 * holding the node's own address and a dead one still lets a node start alone and others
 * join it, and that a node whose only seed is down at first joins once the seed comes up.
 *
 * Every check polls `GET /status` (or runs the CLI) with a deadline; the figures that matter
 * (time to converge, kill to dead-everywhere, incarnations) are printed.
 */

import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { connect, type Client } from '../../lib/client/index.js';
import { fetchReady, fetchStatus, freePort, memberOf, portOf, waitForTables, type NodeStatus } from '../support/cluster.js';
import { killAll, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor, type NodeProcess } from '../support/processes.js';

/** The bound: a crashed node is dead in every table within this of the kill. */
const DEAD_EVERYWHERE_MS_MAX = 5000;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function allUpAndAlive(count: number): (status: NodeStatus) => boolean {
  return (status) => status.members.length === count && status.members.every((m) => m.status === 'up' && m.live === 'alive');
}

describe('integration: membership of five real nodes from one seed', function () {
  this.timeout(60000);
  const hosts = [1, 2, 3, 4, 5].map((i) => `127.0.0.${i}`);
  let dataDirs: string[] = [];
  // Filled by the first case; each later case builds on the cluster the one before left.
  let nodes: NodeProcess[] = [];
  const node = (i: number): NodeProcess => {
    const found = nodes[i - 1];
    if (found === undefined) throw new Error(`node ${i} was not started (an earlier case failed)`);
    return found;
  };
  let clients: Client[] = [];

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await killAll();
    removeTempDirs();
  });

  it('(a) finds all five members, up and alive, in every node', async () => {
    dataDirs = hosts.map(() => tempDir());
    const startedMs = performance.now();
    const seed = await startNodeProcess({ host: hosts[0], dataDir: dataDirs[0] });
    const joiners = await Promise.all(
      hosts.slice(1).map((host, i) => startNodeProcess({ host, dataDir: dataDirs[i + 1], args: ['--seeds', seed.address] })),
    );
    nodes = [seed, ...joiners];
    const readyMs = performance.now();
    const statuses = await waitForTables(nodes, 'five members, all up and alive, in every table', allUpAndAlive(5), 15000);
    const convergedMs = performance.now();
    console.log(`      five nodes found each other ${seconds(convergedMs - readyMs)} after the last was ready (${seconds(convergedMs - startedMs)} from the first spawn)`);
    const ids = nodes.map((n) => n.nodeId).sort();
    for (const status of statuses) {
      expect(status.members.map((m) => m.id)).to.deep.equal(ids);
      expect(status.joined).to.equal(true);
    }
    for (const n of nodes) expect(await fetchReady(n.address)).to.equal(200);
    const healthy = await runCli(['status', '--node', node(1).address]);
    expect(healthy.code, healthy.stdout + healthy.stderr).to.equal(0);
    expect(healthy.stdout).to.match(/5 members: 5 alive, 0 suspect, 0 dead, 0 left/);
  });

  it('(a) shows the same ring at every node: ownership per node and a key\'s preference list', async () => {
    const rings = await Promise.all(nodes.map((n) => runCli(['ring', '--json', '--node', n.address])));
    const parsed = rings.map((r) => JSON.parse(r.stdout) as { checksum: string; n: number; members: { id: string; primary: number; replica: number }[] });
    expect(new Set(parsed.map((r) => r.checksum)).size).to.equal(1);
    const first = parsed[0] as (typeof parsed)[number];
    expect(first.members).to.have.length(5);
    expect(first.members.reduce((sum, m) => sum + m.primary, 0)).to.be.closeTo(1, 1e-9);
    expect(first.members.reduce((sum, m) => sum + m.replica, 0)).to.be.closeTo(3, 1e-9);
    const where = await Promise.all(nodes.map((n) => runCli(['whereis', 'users', 'ada', '--json', '--node', n.address])));
    const lists = where.map((w) => {
      const { primaries, fallbacks } = JSON.parse(w.stdout) as { primaries: string[]; fallbacks: string[] };
      return { primaries, fallbacks };
    });
    for (const list of lists) expect(list).to.deep.equal(lists[0]);
    expect(new Set(lists[0]?.primaries).size).to.equal(3);
    expect(lists[0]?.fallbacks).to.have.length(2);
  });

  let incarnationBefore = 0;

  it('(b) reports a node killed with SIGKILL dead everywhere within 5 s, and `chorus status` exits 2', async () => {
    const victim = node(4);
    incarnationBefore = (await fetchStatus(victim.address)).incarnation;
    const survivors = nodes.filter((n) => n !== victim);
    const logMarks = survivors.map((n) => n.logs.length);
    const killedMs = performance.now();
    const killedAt = Date.now();
    const exit = await victim.kill('SIGKILL');
    expect(exit.signal).to.equal('SIGKILL');
    await waitForTables(survivors, `${victim.nodeId} dead in every other table`, (s) => memberOf(s, victim.nodeId)?.live === 'dead', DEAD_EVERYWHERE_MS_MAX + 5000);
    const deadMs = performance.now() - killedMs;
    console.log(`      kill -9 to dead in all four other tables: ${seconds(deadMs)}`);
    // On failure, the survivors' membership events since the kill show where the time went.
    const timeline = survivors.flatMap((n, i) =>
      n.logs
        .slice(logMarks[i])
        .filter((l) => typeof l.msg === 'string' && /^member |^refuting|stalled/.test(l.msg))
        .map((l) => `${n.nodeId} +${Date.parse(String(l.time)) - killedAt}ms ${String(l.msg)} ${String(l.member ?? '')}@${String(l.inc ?? '')} from ${String(l.from ?? '')}`),
    );
    expect(deadMs, `kill to dead everywhere; events since the kill:\n${timeline.join('\n')}`).to.be.at.most(DEAD_EVERYWHERE_MS_MAX);
    const unhealthy = await runCli(['status', '--node', node(1).address]);
    expect(unhealthy.code, unhealthy.stdout + unhealthy.stderr).to.equal(2);
    expect(unhealthy.stdout).to.match(new RegExp(`${victim.nodeId}\\s.*\\sdead\\s`));
    expect(unhealthy.stdout).to.match(/4 alive, 0 suspect, 1 dead/);
  });

  it('(c) brings the restarted node back alive everywhere under a higher incarnation', async () => {
    const killed = node(4);
    const restarted = await startNodeProcess({ host: hosts[3], port: portOf(killed.address), dataDir: dataDirs[3], args: ['--seeds', node(1).address] });
    expect(restarted.nodeId).to.equal(killed.nodeId);
    nodes[3] = restarted;
    const statuses = await waitForTables(
      nodes,
      `${restarted.nodeId} alive with an incarnation above ${incarnationBefore} everywhere`,
      (s) => {
        const row = memberOf(s, restarted.nodeId);
        return s.members.length === 5 && row?.live === 'alive' && row.incarnation > incarnationBefore;
      },
      10000,
    );
    const after = Math.min(...statuses.map((s) => memberOf(s, restarted.nodeId)?.incarnation ?? 0));
    console.log(`      node 4 incarnation ${incarnationBefore} before the kill, ${after} after the restart`);
    expect(after).to.be.greaterThan(incarnationBefore);
    await waitForTables(nodes, 'all five up and alive again', allUpAndAlive(5), 10000);
    const healthy = await runCli(['status', '--node', node(1).address]);
    expect(healthy.code, healthy.stdout + healthy.stderr).to.equal(0);
  });

  // Runs before (d), so the change must reach every node, the one that later leaves included.
  it('(e) merges concurrent `chorus bucket set` at two nodes into the same properties at every node', async () => {
    // Two CLI runs start together but may land a few hundred ms apart, so one node may already
    // know of the other's change; two open SDK clients send in one turn of the event loop, so
    // neither node can have heard of the other's change to the same new bucket first.
    clients = await Promise.all([connect({ nodes: [node(4).address] }), connect({ nodes: [node(5).address] })]);
    const [left, right] = clients as [Client, Client];
    const [sizes, reads] = await Promise.all([
      runCli(['bucket', 'set', 'users', '--n', '3', '--w', '2', '--node', node(2).address]),
      runCli(['bucket', 'set', 'users', '--r', 'one', '--node', node(3).address]),
      left.admin('bucket-set', { bucket: 'orders', props: { n: 2 } }),
      right.admin('bucket-set', { bucket: 'orders', props: { type: 'counter' } }),
    ]);
    expect(sizes.code, sizes.stderr).to.equal(0);
    expect(reads.code, reads.stderr).to.equal(0);
    const merged = { orders: { n: 2, type: 'counter' }, users: { n: 3, r: 'one', w: 2 } };
    const startedMs = performance.now();
    await waitForTables(nodes, `buckets merged to ${JSON.stringify(merged)} at every node`, (s) => sameJson(s.buckets, merged), 25000, 100);
    console.log(`      bucket properties merged at all five nodes ${seconds(performance.now() - startedMs)} after both changes were acknowledged`);
    const lists = await Promise.all(nodes.map((n) => runCli(['bucket', 'list', '--json', '--node', n.address])));
    for (const list of lists) {
      expect(list.code, list.stderr).to.equal(0);
      expect(sameJson(JSON.parse(list.stdout), { buckets: merged }), list.stdout).to.equal(true);
    }
  });

  it('(d) makes a node that runs `chorus leave` left in every other table, and `chorus status` exits 0', async () => {
    const leaver = node(5);
    const result = await runCli(['leave', '--node', leaver.address]);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/is leaving/);
    const others = nodes.filter((n) => n !== leaver);
    await waitForTables(others, `${leaver.nodeId} left in every other table`, (s) => memberOf(s, leaver.nodeId)?.status === 'left', 10000);
    await waitForTables(others, 'every member that has not left alive', (s) => s.members.every((m) => m.status === 'left' || m.live === 'alive'), 5000);
    expect((await fetchStatus(leaver.address)).status).to.equal('left');
    expect(await fetchReady(leaver.address)).to.equal(503);
    const status = await runCli(['status', '--node', node(1).address]);
    expect(status.code, status.stdout + status.stderr).to.equal(0);
    expect(status.stdout).to.match(/4 alive, 0 suspect, 0 dead, 1 left/);
  });
});

describe('integration: seeds that include the node itself or are down at first', function () {
  this.timeout(30000);
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  // A names itself and an address nobody listens on as its seeds; B and D join through A.
  let a: NodeProcess | undefined;
  let dead = '';

  it('(f) a node seeded with [itself, a dead address] starts and becomes ready alone', async () => {
    const [portA, portDead] = await Promise.all([freePort('127.0.0.6'), freePort('127.0.0.9')]);
    const addressA = `127.0.0.6:${portA}`;
    dead = `127.0.0.9:${portDead}`;
    a = await startNodeProcess({ host: '127.0.0.6', port: portA, args: ['--seeds', `${addressA},${dead}`] });
    expect(a.address).to.equal(addressA);
    const alone = a;
    await waitFor(`${addressA}, seeded with itself and ${dead}, to answer /readyz 200 alone`, async () => ((await fetchReady(alone.address)) === 200 ? true : undefined), 5000, 50);
    const status = await fetchStatus(alone.address);
    expect(status).to.include({ joined: true, status: 'up' });
    expect(status.members.map((m) => m.id)).to.deep.equal([alone.nodeId]);
  });

  it('(f) a node seeded with [that node, a dead address] joins it', async () => {
    if (a === undefined) throw new Error('node A was not started');
    const first = a;
    const b = await startNodeProcess({ host: '127.0.0.7', args: ['--seeds', `${first.address},${dead}`] });
    const ids = [first.nodeId, b.nodeId].sort();
    await waitForTables(
      [first, b],
      'A and B alive in both tables, B up',
      (s) => sameJson(s.members.map((m) => m.id), ids) && s.members.every((m) => m.live === 'alive') && memberOf(s, b.nodeId)?.status === 'up',
      10000,
    );
    expect(await fetchReady(b.address)).to.equal(200);
  });

  it('(f) a node whose only seed is down at first joins once the seed comes up', async () => {
    if (a === undefined) throw new Error('node A was not started');
    const first = a;
    const portLate = await freePort('127.0.0.10');
    const late = `127.0.0.10:${portLate}`;
    const c = await startNodeProcess({ host: '127.0.0.8', args: ['--seeds', late] });
    expect(await fetchReady(c.address)).to.equal(503);
    expect((await fetchStatus(c.address)).joined).to.equal(false);
    const d = await startNodeProcess({ host: '127.0.0.10', port: portLate, args: ['--seeds', first.address] });
    await waitFor('C, seeded only with D, to answer /readyz 200 once D is up', async () => ((await fetchReady(c.address)) === 200 ? true : undefined), 10000, 50);
    const ids = [first.nodeId, c.nodeId, d.nodeId];
    await waitForTables(
      [first, c, d],
      'A, C and D alive in the tables of A, C and D, C and D up',
      (s) => ids.every((id) => memberOf(s, id)?.live === 'alive') && memberOf(s, c.nodeId)?.status === 'up' && memberOf(s, d.nodeId)?.status === 'up',
      10000,
    );
  });
});

/** Deep equality that ignores key order. */
function sameJson(actual: unknown, expected: unknown): boolean {
  return JSON.stringify(sortKeys(actual)) === JSON.stringify(sortKeys(expected));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, sortKeys(v)]));
}
