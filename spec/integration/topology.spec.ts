/**
 * Anti-entropy and topology changes on real `chorus start` processes (LMDB, sockets, SIGKILL):
 *
 * - Three nodes hold 100,000 keys; one is killed, its data directory wiped, and it restarts
 *   under the same id. With no client request at all, anti-entropy gives it back every key
 *   (its key count reaches the others'), and `/status` and `/metrics` show the exchanges.
 * - Four nodes, a workload of acknowledged puts and r=quorum gets running throughout: a 5th
 *   node joins (it is `joining`, not ready, until its ranges are streamed to it), then leaves
 *   (`chorus leave`), then a killed node is removed (`chorus remove`); between the join and the
 *   leave, `chorus cleanup` drops from n1 what it no longer replicates. No acknowledged write is
 *   lost, no get of a key acknowledged before a change returns not-found, and every key ends
 *   at its n = 3 primaries.
 */

import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, type Client } from '../../lib/client/index.js';
import { fetchMetrics, fetchReady, fetchStatus, waitForTables, type NodeStatus } from '../support/cluster.js';
import { killAll, removeTempDirs, runCli, startNodeProcess, tempDir, waitFor, type NodeProcess } from '../support/processes.js';

/** Anti-entropy a little brisker than the defaults, so the spec does not wait on the schedule. */
const AE_ENV = { CHORUS_ANTI_ENTROPY_INTERVAL_MS: '500', CHORUS_ANTI_ENTROPY_KEYS_PER_SECOND: '50000' };

interface TopologyStatus extends NodeStatus {
  readonly status: string;
  readonly storage: { readonly keys: number };
  readonly antiEntropy: { readonly exchangesCompleted: number; readonly keysRepaired: number; readonly ranges: { readonly count: number; readonly neverExchanged: number } };
}

async function statusOf(node: NodeProcess): Promise<TopologyStatus> {
  return (await fetchStatus(node.address)) as TopologyStatus;
}

async function startCluster(count: number): Promise<{ nodes: NodeProcess[]; dataDirs: string[] }> {
  const hosts = Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
  const dataDirs = hosts.map(() => tempDir());
  const seed = await startNodeProcess({ host: hosts[0], dataDir: dataDirs[0], args: ['--id', 'n1'], env: AE_ENV });
  const others = await Promise.all(
    hosts.slice(1).map((host, i) => startNodeProcess({ host, dataDir: dataDirs[i + 1], args: ['--id', `n${i + 2}`, '--seeds', seed.address], env: AE_ENV })),
  );
  const nodes = [seed, ...others];
  await waitForTables(nodes, `${count} members, all up and alive`, (s) => s.members.length === count && s.members.every((m) => m.status === 'up' && m.live === 'alive'), 20000);
  return { nodes, dataDirs };
}

/** Puts keys with up to `concurrency` requests in flight; throws on any failure. */
async function load(client: Client, prefix: string, count: number, concurrency = 256): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await client.put('t', `${prefix}${i}`, `v${i}`, { w: 'quorum' });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Requests the workload keeps in flight. */
const WORKERS = 8;

/** Puts acknowledged whose last copy may still be on its way: a few per worker. */
const LAGGING = 4 * WORKERS;

/** A workload of puts of new keys and r=quorum gets of keys acknowledged before `mark()`. */
class Workload {
  readonly acked: string[] = [];
  readonly notFound: string[] = [];
  readonly errors: string[] = [];
  private before = 0;
  private running = true;
  private readonly done: Promise<void>;
  private next = 0;

  constructor(
    private readonly client: Client,
    private readonly prefix: string,
    workers = WORKERS,
  ) {
    this.done = Promise.all(Array.from({ length: workers }, () => this.worker())).then(() => undefined);
  }

  mark(): void {
    this.before = this.acked.length;
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const key = `${this.prefix}${this.next++}`;
      try {
        await this.client.put('t', key, key, { w: 'quorum' });
        this.acked.push(key);
      } catch (error) {
        this.errors.push(`put ${key}: ${(error as Error).message}`);
      }
      if (this.before > 0) {
        const old = this.acked[this.next % this.before] as string;
        try {
          const got = await this.client.get('t', old, { r: 'quorum' });
          if (!got.found) this.notFound.push(old);
        } catch (error) {
          this.errors.push(`get ${old}: ${(error as Error).message}`);
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Keys (a sample) not held by every one of their primaries, as `viewer` places them. */
async function missingCopies(client: Client, nodes: readonly NodeProcess[], keys: readonly string[], viewer: NodeProcess): Promise<string[]> {
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  const missing: string[] = [];
  for (const key of keys) {
    const where = (await client.admin('whereis', { bucket: 't', key, node: viewer.address })) as { primaries: string[] };
    for (const primary of where.primaries) {
      const node = byId.get(primary);
      if (node === undefined) {
        missing.push(`${key}: primary ${primary} is not a running node`);
        continue;
      }
      const copy = (await client.admin('inspect', { bucket: 't', key, node: node.address })) as { found: boolean };
      if (!copy.found) missing.push(`${key}@${primary}`);
    }
  }
  return missing;
}

function sample<T>(items: readonly T[], count: number): T[] {
  const step = Math.max(1, Math.floor(items.length / count));
  return items.filter((_, i) => i % step === 0);
}

describe('integration: anti-entropy and topology changes on real nodes', function () {
  this.timeout(300_000);

  afterEach(async () => {
    await killAll();
  });

  after(() => {
    removeTempDirs();
  });

  it('a node whose data directory is wiped gets all 100,000 keys back from anti-entropy alone', async () => {
    const { nodes, dataDirs } = await startCluster(3);
    const client = await connect({ nodes: [nodes[0]!.address, nodes[1]!.address] });
    try {
      const loadStart = performance.now();
      await load(client, 'k', 100_000);
      console.log(`      100,000 keys loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);
      const full = await waitFor('every node to hold every key', async () => {
        const counts = await Promise.all(nodes.map(async (n) => (await statusOf(n)).storage.keys));
        return counts.every((c) => c === 100_000) ? counts : undefined;
      }, 30000, 200);
      expect(full).to.deep.equal([100_000, 100_000, 100_000]);

      const victim = nodes[2]!;
      await victim.kill('SIGKILL');
      rmSync(dataDirs[2]!, { recursive: true, force: true });
      const restarted = await startNodeProcess({ host: '127.0.0.3', port: Number(victim.address.split(':')[1]), dataDir: dataDirs[2], args: ['--id', 'n3', '--seeds', nodes[0]!.address], env: AE_ENV });
      nodes[2] = restarted;
      expect((await statusOf(restarted)).storage.keys, 'the restarted node starts empty').to.equal(0);
      const restoreStart = performance.now();
      // No client request from here on: only anti-entropy can bring the keys back.
      await waitFor('the wiped node to hold every key again', async () => ((await statusOf(restarted)).storage.keys === 100_000 ? true : undefined), 180_000, 500);
      const seconds = (performance.now() - restoreStart) / 1000;
      const status = await statusOf(restarted);
      const metrics = await fetchMetrics(restarted.address);
      console.log(`      100,000 keys restored in ${seconds.toFixed(1)} s; ${status.antiEntropy.keysRepaired} keys repaired at the wiped node`);
      expect(status.antiEntropy.keysRepaired).to.be.at.least(100_000);
      expect(metrics).to.match(/chorus_ae_keys_repaired_total\{[^}]*\} \d+/);
      expect(metrics).to.match(/chorus_ae_last_exchange_age_seconds\{[^}]*peer="n1"[^}]*\} [\d.]+/);
      const others = await Promise.all(nodes.slice(0, 2).map(statusOf));
      for (const other of others) expect(other.antiEntropy.exchangesCompleted).to.be.above(0);
    } finally {
      await client.close();
    }
  });

  it('a 5th node joins, then leaves, then a killed node is removed, under load: nothing acknowledged lost, nothing earlier not found', async () => {
    const { nodes } = await startCluster(4);
    const client = await connect({ nodes: nodes.map((n) => n.address) });
    const admin = await connect({ nodes: nodes.map((n) => n.address) });
    const work = new Workload(client, 'w');
    try {
      await waitFor('some writes', () => (work.acked.length > 2000 ? true : undefined), 60000, 50);

      // Join: a 5th node, joining (not ready) until its ranges are streamed to it.
      work.mark();
      const joiner = await startNodeProcess({ host: '127.0.0.5', dataDir: tempDir(), args: ['--id', 'n5', '--seeds', nodes[0]!.address], env: AE_ENV });
      // Readiness, then status, until it is up: a node that answered ready must not be joining
      // after it (up never goes back), and while it says joining it answers 503.
      const samples: string[] = [];
      await waitFor('n5 up', async () => {
        const ready = await fetchReady(joiner.address);
        const status = (await statusOf(joiner)).status;
        samples.push(`${ready}/${status}`);
        return status === 'up' ? true : undefined;
      }, 60000, 20);
      expect(samples.filter((s) => s === '200/joining'), samples.join(' ')).to.deep.equal([]);
      await waitForTables([...nodes, joiner], '5 members, all up', (s) => s.members.length === 5 && s.members.every((m) => m.status === 'up' && m.live === 'alive'), 60000);
      expect(await fetchReady(joiner.address), 'ready once up').to.equal(200);
      const joiningSamples = samples.filter((s) => s.endsWith('/joining')).length;
      console.log(`      n5 joined (${joiningSamples} of ${samples.length} polls saw it joining, each answering 503); ${work.acked.length} puts acknowledged, ${(await statusOf(joiner)).storage.keys} keys at n5`);

      // Cleanup: n1 drops what it no longer replicates since the join; reads go on finding every
      // key. Puts go on meanwhile, so n1's count may rise: each put acknowledged in the window
      // adds at most one key there, and so may a put acknowledged (w = 2) just before it opened
      // whose third copy had not yet reached n1 (a few per worker at most).
      const ackedBefore = work.acked.length;
      const heldBefore = (await statusOf(nodes[0]!)).storage.keys;
      const cleaned = await runCli(['cleanup', '--node', nodes[0]!.address], { timeoutMs: 60000 });
      expect(cleaned.code, cleaned.stderr).to.equal(0);
      const done = /cleanup at n1 done: ([\d,]+) keys removed/.exec(cleaned.stdout);
      expect(done, cleaned.stdout).to.not.equal(null);
      const dropped = Number(done![1]!.replaceAll(',', ''));
      const heldAfter = (await statusOf(nodes[0]!)).storage.keys;
      const ackedDuring = work.acked.length - ackedBefore;
      expect(dropped, 'keys removed by the cleanup').to.be.above(0);
      expect(heldAfter, `n1 holds what it held, less what was removed, plus at most the ${ackedDuring} puts acknowledged meanwhile`).to.be.at.most(heldBefore - dropped + ackedDuring + LAGGING);
      console.log(`      chorus cleanup at n1: ${heldBefore} keys held before, ${dropped} removed, ${heldAfter} after (${ackedDuring} puts acknowledged meanwhile)`);

      // Leave: n5 hands its ranges over, then is left everywhere.
      work.mark();
      const left = await runCli(['leave', '--node', joiner.address]);
      expect(left.code, left.stderr).to.equal(0);
      await waitForTables(nodes, 'n5 left everywhere', (s) => s.members.find((m) => m.id === 'n5')?.status === 'left', 60000);
      await joiner.kill('SIGTERM');
      console.log(`      n5 left; ${work.acked.length} puts acknowledged`);

      // Remove: n4 is killed, then removed; the survivors re-create its copies.
      work.mark();
      const refused = await runCli(['remove', 'n4', '--node', nodes[0]!.address]);
      expect(refused.code, 'removing a live node is refused').to.not.equal(0);
      expect(refused.stderr + refused.stdout).to.match(/alive/);
      await nodes[3]!.kill('SIGKILL');
      await waitForTables(nodes.slice(0, 3), 'n4 dead everywhere', (s) => s.members.find((m) => m.id === 'n4')?.live === 'dead', 30000);
      const removed = await runCli(['remove', 'n4', '--node', nodes[0]!.address]);
      expect(removed.code, removed.stderr).to.equal(0);
      const acked = work.acked.length;
      await waitFor('writes after the removal', () => (work.acked.length > acked + 500 ? true : undefined), 30000, 50);
    } finally {
      await work.stop();
    }
    try {
      console.log(`      ${work.acked.length} puts acknowledged in all; ${work.errors.length} requests failed during the changes${work.errors.length === 0 ? '' : ` (first: ${work.errors.slice(0, 3).join('; ')})`}`);
      expect(work.notFound.slice(0, 10), `${work.notFound.length} gets of earlier keys found nothing`).to.deep.equal([]);
      // The removed node's copies are re-created by anti-entropy: wait for it, then every key is at n.
      const keys = sample(work.acked, 400);
      let missing: string[] = [];
      const settleStart = performance.now();
      await waitFor('every sampled key at its 3 primaries', async () => {
        missing = await missingCopies(admin, nodes.slice(0, 3), keys, nodes[0]!);
        return missing.length === 0 ? true : undefined;
      }, 90000, 1000).catch(() => undefined);
      console.log(`      every sampled key (${keys.length}) at its 3 primaries ${((performance.now() - settleStart) / 1000).toFixed(1)} s after the workload stopped`);
      expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
    } finally {
      await client.close();
      await admin.close();
    }
  });
});
