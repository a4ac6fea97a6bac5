/**
 * Anti-entropy benchmark on real `chorus start` processes: how fast a replica that missed
 * writes is repaired, and what always-on anti-entropy costs the foreground while it repairs.
 *
 * Three nodes (the built CLI, defaults: n = 3, so every node holds every key; durability
 * fsync) on 127.0.0.1 with fresh data directories, driven through the SDK. Values are
 * `--value-bytes` (100) bytes; keys are YCSB's `user<number>` in the `ycsb` bucket.
 *
 * 1. `repair`: load `--records` keys with w = quorum and wait until every node holds them all.
 *    SIGKILL node 3, write `--differing` new keys with w = 2 (with three nodes and n = 3 there
 *    is no fallback; the coordinators would still keep hints for node 3, so hinted handoff is
 *    turned off with handoff.hintBytesPerTargetMax 1 on every node in both parts, leaving the
 *    repair to anti-entropy alone), restart node 3 on the same data directory, id and seeds,
 *    and once it is ready and every node sees three members, send it the admin request
 *    `repair` and poll `repair-status` until done. Reports the wall time of
 *    the repair, the time until node 3's `storage.keys` reaches records + differing, keys/s,
 *    and the anti-entropy bytes the nodes count (sent + received, summed over the nodes, over
 *    the repair) per differing key. Scheduled exchanges are pushed out of the way
 *    (antiEntropy.intervalMs 600000), so only the forced repair runs, at 16× the configured
 *    keysPerSecond budget.
 * 2. `foreground`: a fixed-rate open loop (YCSB B-like: 95% reads, 5% updates of the loaded
 *    keys, scrambled zipfian, r = w = quorum, `--rate` ops/s, latency from when each operation
 *    was due) for `--seconds` per phase:
 *    - ceiling: anti-entropy disabled on every node (antiEntropy.enabled false);
 *    - A: the nodes restarted with anti-entropy on (intervalMs 500), the cluster in sync, so
 *      exchanges run but find nothing to ship: the baseline the goal is judged against;
 *    - R (a control): node 3 SIGKILLed and restarted at once, with nothing to repair, so
 *      what a restart alone costs (a cold process, links reconnecting) is told apart from
 *      what the repair costs;
 *    - B: node 3 SIGKILLed, `--differing` new keys written with w = 2, node 3 restarted, and
 *      phase B started as soon as it is ready, while anti-entropy (default budget, backing
 *      off when client latency rises) repairs it.
 *      (`--no-restart-repair` skips B.)
 *    - P (a control): node 3 paused (SIGSTOP) until nodes 1 and 2 see it dead, and resumed
 *      (SIGCONT) at once, with nothing to repair (`--no-pause-control` skips it);
 *    - W: node 3, holding every key, paused the same way while `--differing` more keys are
 *      written with w = 2, then resumed: the same repair as B on a warm process, so what
 *      anti-entropy costs is told apart from what a fresh process costs (`--no-warm` skips
 *      it); P tells what the pause alone costs.
 *    Reports p50/p99/p99.9 of each phase, the p99 rise of B and W over A (goal ≤ 25%), the keys
 *    anti-entropy repaired during B and whether node 3 held every key by the end of B (if
 *    not, how long it took afterwards, up to `--settle` seconds without load).
 *
 * Figures only: nothing is asserted about timing. Every child process is stopped and every
 * data directory removed, also on error and Ctrl-C. The nodes run the JavaScript in dist/;
 * when it is missing the script builds it first (npx tsc -p tsconfig.json).
 *
 * Usage: npm run bench:ae-live -- [--parts repair,foreground] [--records 100000]
 *          [--differing N (default 10000 for repair, 30000 for foreground)] [--rate 1000]
 *          [--seconds 15] [--warmup 3] [--settle 60] [--clients 4] [--inflight 32]
 *          [--value-bytes 100] [--keys-per-second N] [--no-ceiling] [--no-restart-control]
 *          [--no-restart-repair] [--no-pause-control] [--no-warm]
 *          [--timeout-ms 5000] [--seed 1]
 */

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { AntiEntropyStats } from '../../lib/antientropy/exchange.js';
import { REPAIR_BUDGET_FACTOR } from '../../lib/antientropy/exchange.js';
import { Prng } from '../../lib/base/prng.js';
import { DEFAULTS } from '../../lib/config/defaults.js';
import { envNameFor } from '../../lib/config/settings.js';
import { connect, type Client } from '../../lib/index.js';
import { buildState, cleanEnv, CLI, freePort, ROOT, signalGroup, spawnNode, stop, tempDir, waitFor, waitReady, positive, runBench, type Child } from './children.js';
import { load, openLoop, type PhaseResult } from './drivers.js';
import { Histogram } from './hdr.js';
import { BUCKET, chorusTarget, type Target } from './targets.js';
import { keyName, WORKLOADS, ZIPFIAN_CONSTANT, type Workload } from './ycsb.js';

const { values: flags } = parseArgs({
  options: {
    parts: { type: 'string', default: 'repair,foreground' },
    records: { type: 'string', default: '100000' },
    differing: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    settle: { type: 'string', default: '60' },
    clients: { type: 'string', default: '4' },
    inflight: { type: 'string', default: '32' },
    'value-bytes': { type: 'string', default: '100' },
    'keys-per-second': { type: 'string' },
    'no-ceiling': { type: 'boolean', default: false },
    'no-restart-control': { type: 'boolean', default: false },
    'no-warm': { type: 'boolean', default: false },
    'no-restart-repair': { type: 'boolean', default: false },
    'no-pause-control': { type: 'boolean', default: false },
    'timeout-ms': { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
  },
});

const PARTS = (flags.parts ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const part of PARTS) if (part !== 'repair' && part !== 'foreground') throw new Error(`unknown part ${part}; known: repair, foreground`);
const RECORDS = positive('records', flags.records);
const REPAIR_DIFFERING = flags.differing === undefined ? 10_000 : positive('differing', flags.differing);
const FOREGROUND_DIFFERING = flags.differing === undefined ? 30_000 : positive('differing', flags.differing);
const RATE = positive('rate', flags.rate, false);
const SECONDS = positive('seconds', flags.seconds, false);
const WARMUP_SECONDS = Number(flags.warmup);
const SETTLE_SECONDS = Number(flags.settle);
const CLIENTS = positive('clients', flags.clients);
const INFLIGHT = positive('inflight', flags.inflight);
const VALUE_BYTES = positive('value-bytes', flags['value-bytes']);
const KEYS_PER_SECOND = flags['keys-per-second'] === undefined ? undefined : positive('keys-per-second', flags['keys-per-second']);
const CEILING = flags['no-ceiling'] !== true;
const RESTART_CONTROL = flags['no-restart-control'] !== true;
const WARM = flags['no-warm'] !== true;
const RESTART_REPAIR = flags['no-restart-repair'] !== true;
const PAUSE_CONTROL = flags['no-pause-control'] !== true;
const TIMEOUT_MS = positive('timeout-ms', flags['timeout-ms']);
const SEED = positive('seed', flags.seed);
if (!(WARMUP_SECONDS >= 0)) throw new Error(`--warmup must be 0 or more, got ${flags.warmup}`);
if (!(SETTLE_SECONDS >= 0)) throw new Error(`--settle must be 0 or more, got ${flags.settle}`);

const NODES = 3;
const WORKLOAD = WORKLOADS['B'] as Workload;
/** Writes in flight while writing the keys node 3 misses. */
const DIFFERING_INFLIGHT = 64;
/** Open-loop operations outstanding per connection before more wait in the client. */
const OPEN_INFLIGHT_MAX = 256;
const START_TIMEOUT_MS = 60_000;
const MEMBERSHIP_TIMEOUT_MS = 60_000;
/** How long the replicas have to agree on the loaded keys after the load. */
const CONVERGE_TIMEOUT_MS = 120_000;
/** How long a forced repair may take before the benchmark gives up on it. */
const REPAIR_TIMEOUT_MS = 600_000;
const REPAIR_POLL_MS = 50;
const STATUS_POLL_MS = 500;
/** Repairs tried when one ends with node 3 still missing keys (an exchange with a peer failed). */
const REPAIR_ATTEMPTS_MAX = 3;
const VALUE = new Uint8Array(VALUE_BYTES).fill(120);

/** The configured anti-entropy budget the nodes run with. */
const KEYS_BUDGET = KEYS_PER_SECOND ?? DEFAULTS.antiEntropy.keysPerSecond;
const ENV_INTERVAL = envNameFor('antiEntropy.intervalMs');
const ENV_ENABLED = envNameFor('antiEntropy.enabled');
const ENV_KEYS = envNameFor('antiEntropy.keysPerSecond');
/**
 * A coordinator keeps a hint for a primary that is down even when no fallback stands in (a
 * cluster of n nodes), and hands it over once the primary is back: that would race
 * anti-entropy for the keys node 3 missed. A budget of one byte of hints per target admits
 * none, so anti-entropy alone repairs node 3.
 */
const ENV_HINT_BYTES = envNameFor('handoff.hintBytesPerTargetMax');

/** Node settings for a part: the defaults, no hints, with `overrides` and the budget if one was given. */
function nodeEnv(overrides: Readonly<Record<string, string>>): Record<string, string> {
  return cleanEnv({ [ENV_HINT_BYTES]: '1', ...(KEYS_PER_SECOND === undefined ? {} : { [ENV_KEYS]: String(KEYS_PER_SECOND) }), ...overrides });
}

// ---- formatting ----

function ms(value: number): string {
  if (Number.isNaN(value)) return '–';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function secs(msValue: number): string {
  return `${(msValue / 1000).toFixed(2)} s`;
}

function bytes(value: number): string {
  if (value >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  if (value >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${Math.round(value)} B`;
}

function percent(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}%`;
}

function table(rows: string[][], rightAligned: (column: number) => boolean): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => ('  ' + r.map((cell, c) => (rightAligned(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')).trimEnd()).join('\n');
}

const sleep = (delayMs: number): Promise<void> => new Promise((r) => setTimeout(r, delayMs));

// ---- node status ----

/** The counters `/status` shows under `antiEntropy` (the core's AntiEntropyStats, as JSON). */
type AeStatus = Pick<AntiEntropyStats, Counter | 'rate'> & { readonly lastFailure?: { readonly peer: string; readonly reason: string } | null };

interface NodeStatus {
  readonly node: string;
  readonly storage: { readonly keys: number };
  readonly antiEntropy: AeStatus;
  readonly replication?: { readonly hintsPending?: number };
  readonly members?: readonly { readonly id: string; readonly status: string; readonly live: string }[];
}

const AE_ZERO: AeStatus = {
  exchangesCompleted: 0,
  exchangesFailed: 0,
  exchangesInSync: 0,
  keysRepaired: 0,
  recordsSent: 0,
  recordsReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
  rate: 1,
};

async function fetchStatus(address: string): Promise<NodeStatus> {
  const response = await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(2000) });
  if (response.status !== 200) throw new Error(`GET /status on ${address} answered ${response.status}`);
  return (await response.json()) as NodeStatus;
}

type Counter = 'exchangesCompleted' | 'exchangesFailed' | 'exchangesInSync' | 'keysRepaired' | 'recordsSent' | 'recordsReceived' | 'bytesSent' | 'bytesReceived';

/** What the nodes' anti-entropy counters grew by, summed over the nodes; a baseline of AE_ZERO stands for a node that restarted. */
function aeDelta(before: readonly AeStatus[], after: readonly AeStatus[]): Record<Counter, number> {
  const fields: Counter[] = ['exchangesCompleted', 'exchangesFailed', 'exchangesInSync', 'keysRepaired', 'recordsSent', 'recordsReceived', 'bytesSent', 'bytesReceived'];
  const out = {} as Record<Counter, number>;
  for (const field of fields) out[field] = after.reduce((sum, a, i) => sum + a[field] - (before[i] ?? AE_ZERO)[field], 0);
  return out;
}

// ---- the local cluster ----

interface LocalNode {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly dir: string;
  readonly seeds: string;
  child: Child | undefined;
}

class LocalCluster {
  private readonly all: Child[] = [];

  private constructor(
    readonly nodes: readonly LocalNode[],
    private env: Record<string, string>,
  ) {}

  /** Three nodes on fresh data directories, ready and seeing each other. */
  static async start(label: string, env: Record<string, string>): Promise<LocalCluster> {
    const ports: number[] = [];
    for (let i = 0; i < NODES; i++) ports.push(await freePort('127.0.0.1'));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    const nodes: LocalNode[] = addresses.map((address, i) => ({
      id: `n${i + 1}`,
      address,
      port: ports[i] as number,
      dir: tempDir(`chorus-bench-ae-${label}-n${i + 1}-`),
      seeds: addresses.filter((_, j) => j !== i).join(','),
      child: undefined,
    }));
    const cluster = new LocalCluster(nodes, env);
    try {
      for (const node of nodes) cluster.spawn(node);
      await cluster.waitAllReady();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  private spawn(node: LocalNode): Child {
    const args = [CLI, 'start', '--host', '127.0.0.1', '--port', String(node.port), '--data', node.dir, '--id', node.id, '--seeds', node.seeds];
    const child = spawnNode(node.id, args, { env: this.env });
    node.child = child;
    this.all.push(child);
    void child.exited.then((exit) => {
      if (!child.stopping) console.log(`  ${child.name} exited unexpectedly (code ${exit.code}, signal ${exit.signal}); its last output:\n    ${child.tail.slice(-10).join('\n    ')}`);
    });
    return child;
  }

  private async waitAllReady(): Promise<void> {
    await Promise.all(this.nodes.map((n) => waitReady(n.child as Child, n.address, START_TIMEOUT_MS)));
    await this.waitMembers();
  }

  /** Waits until every node sees every member up and alive. */
  async waitMembers(): Promise<void> {
    await waitFor(
      `every node to see ${NODES} members up and alive`,
      async () => {
        const statuses = await Promise.all(this.addresses.map(fetchStatus));
        return statuses.every((s) => (s.members ?? []).filter((m) => m.status === 'up' && m.live === 'alive').length >= NODES) ? true : undefined;
      },
      MEMBERSHIP_TIMEOUT_MS,
      100,
    );
  }

  /** SIGKILL to the node's process group; resolves once it is gone. */
  async kill(node: LocalNode): Promise<void> {
    const child = node.child;
    if (child === undefined) return;
    child.stopping = true;
    signalGroup(child, 'SIGKILL');
    await child.exited;
    node.child = undefined;
  }

  /** SIGSTOP (pause) or SIGCONT (resume) to the node's process group. */
  signal(node: LocalNode, signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (node.child === undefined) throw new Error(`${node.id} is not running`);
    signalGroup(node.child, signal);
  }

  /** Starts a stopped node again on its data directory, id and seeds; resolves once it is ready. */
  async restart(node: LocalNode): Promise<void> {
    if (node.child !== undefined) throw new Error(`${node.id} is still running`);
    await waitReady(this.spawn(node), node.address, START_TIMEOUT_MS);
  }

  /** Stops every node cleanly and starts them again on their data with `env`. */
  async restartAll(env: Record<string, string>): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      if (n.child !== undefined) await stop(n.child);
      n.child = undefined;
    }));
    this.env = env;
    for (const node of this.nodes) this.spawn(node);
    await this.waitAllReady();
  }

  async statuses(): Promise<NodeStatus[]> {
    return Promise.all(this.addresses.map(fetchStatus));
  }

  /** Waits until every node holds at least `keys` keys. */
  async waitKeys(keys: number, timeoutMs: number): Promise<void> {
    let last: number[] = [];
    try {
      await waitFor(
        `every node to hold ${int(keys)} keys`,
        async () => {
          last = (await this.statuses()).map((s) => s.storage.keys);
          return last.every((k) => k >= keys) ? true : undefined;
        },
        timeoutMs,
        200,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message} (last seen: ${last.map(int).join(', ')})`);
    }
  }

  async stop(): Promise<void> {
    const exits = await Promise.all(this.all.map(async (child) => ({ child, exit: await stop(child) })));
    for (const { child, exit } of exits) {
      if (exit.killed) console.log(`  ${child.name} did not stop within the deadline and was killed`);
    }
    for (const node of this.nodes) {
      node.child = undefined;
      rmSync(node.dir, { recursive: true, force: true });
    }
  }
}

/** Hints the nodes at `addresses` hold for other nodes, summed. */
async function hintsPending(addresses: readonly string[]): Promise<string> {
  const statuses = await Promise.all(addresses.map(fetchStatus));
  const counts = statuses.map((s) => s.replication?.hintsPending);
  return counts.some((c) => c === undefined) ? 'not reported' : int(counts.reduce((a: number, b) => a + (b ?? 0), 0));
}

/** Writes keys `from`..`from + count - 1` with w = 2 through the given nodes only; any failure ends the run. */
async function writeDiffering(addresses: readonly string[], from: number, count: number): Promise<number> {
  const db = await connect({ nodes: addresses, discover: false, timeoutMs: TIMEOUT_MS });
  const started = performance.now();
  try {
    let next = 0;
    let failed = 0;
    let first: unknown;
    const lane = async (): Promise<void> => {
      while (next < count && failed === 0) {
        const key = keyName(from + next++);
        try {
          await db.put(BUCKET, key, VALUE, { w: 2 });
        } catch (error) {
          failed++;
          first ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: DIFFERING_INFLIGHT }, lane));
    if (failed > 0) throw new Error(`writing the keys node 3 misses: ${failed} writes failed, the first with ${String(first)}`);
  } finally {
    await db.close();
  }
  return count / ((performance.now() - started) / 1000);
}

async function loadRecords(cluster: LocalCluster): Promise<Target> {
  const target = await chorusTarget({ addresses: cluster.addresses, clients: CLIENTS, r: 'quorum', w: 'quorum', timeoutMs: TIMEOUT_MS });
  try {
    const loaded = await load(target, RECORDS, INFLIGHT, VALUE);
    console.log(`  loaded ${int(RECORDS)} keys (w=quorum) at ${int(loaded.throughput)} inserts/s`);
    await cluster.waitKeys(RECORDS, CONVERGE_TIMEOUT_MS);
    console.log('  every node holds every key');
    return target;
  } catch (error) {
    await target.close();
    throw error;
  }
}

// ---- part 1: forced repair ----

interface RepairResult {
  readonly differing: number;
  readonly missingAfterRestart: number;
  readonly repairMs: number;
  readonly keysMs: number | undefined;
  readonly keysRepaired: number;
  readonly keysCompared: number;
  readonly peers: string;
  readonly attempts: number;
  readonly aeBytes: number;
  readonly recordsShipped: number;
}

interface RepairStatus {
  readonly repair: { readonly done: boolean; readonly peersDone: number; readonly peersFailed?: number; readonly peersTotal: number; readonly keysCompared: number; readonly keysRepaired: number } | null;
}

async function repairPart(): Promise<RepairResult> {
  const differing = REPAIR_DIFFERING;
  console.log(`\n1. repair: ${NODES} nodes, ${int(RECORDS)} keys, node 3 misses ${int(differing)} new keys; forced repair ('repair' to node 3), scheduled exchanges off (${ENV_INTERVAL}=600000)`);
  const cluster = await LocalCluster.start('repair', nodeEnv({ [ENV_INTERVAL]: '600000' }));
  let target: Target | undefined;
  let admin: Client | undefined;
  try {
    target = await loadRecords(cluster);
    const n3 = cluster.nodes[2] as LocalNode;
    await cluster.kill(n3);
    const writeRate = await writeDiffering(cluster.addresses.slice(0, 2), RECORDS, differing);
    console.log(`  node 3 killed (SIGKILL); wrote ${int(differing)} new keys with w=2 at ${int(writeRate)} writes/s; hints pending on nodes 1 and 2: ${await hintsPending(cluster.addresses.slice(0, 2))}`);
    const restartedAt = performance.now();
    await cluster.restart(n3);
    await cluster.waitMembers();
    console.log(`  node 3 restarted on its data and ready after ${secs(performance.now() - restartedAt)}; every node sees ${NODES} members`);
    const expected = RECORDS + differing;
    const before = await cluster.statuses();
    const held = before[2]?.storage.keys ?? 0;
    const ae3 = before[2]?.antiEntropy ?? AE_ZERO;
    console.log(`  node 3 holds ${int(held)} keys (missing ${int(expected - held)} of ${int(expected)}); its anti-entropy so far: ${ae3.exchangesCompleted} exchanges, ${int(ae3.keysRepaired)} keys repaired`);
    if (held >= expected) console.log('  note: node 3 already holds every key: something other than anti-entropy (hints?) delivered the writes it missed');

    admin = await connect({ nodes: [n3.address], discover: false, timeoutMs: TIMEOUT_MS });
    const started = performance.now();
    let keysMs: number | undefined;
    let repairMs = 0;
    let last: RepairStatus['repair'] = null;
    let keysRepaired = 0;
    let keysCompared = 0;
    let attempts = 0;
    for (;;) {
      attempts++;
      await admin.admin('repair', { node: n3.address });
      const deadline = performance.now() + REPAIR_TIMEOUT_MS;
      for (;;) {
        await sleep(REPAIR_POLL_MS);
        const [status, node3] = await Promise.all([admin.admin('repair-status', { node: n3.address }) as Promise<RepairStatus>, fetchStatus(n3.address)]);
        if (keysMs === undefined && node3.storage.keys >= expected) keysMs = performance.now() - started;
        if (status.repair === null) throw new Error('node 3 reports no repair (did it restart?)');
        last = status.repair;
        if (last.done) break;
        if (performance.now() > deadline) throw new Error(`the repair did not finish within ${REPAIR_TIMEOUT_MS / 1000} s: ${JSON.stringify(last)}`);
      }
      repairMs = performance.now() - started;
      keysRepaired += last.keysRepaired;
      keysCompared += last.keysCompared;
      if ((last.peersFailed ?? 0) === 0 || keysMs !== undefined || attempts >= REPAIR_ATTEMPTS_MAX) break;
      const failure = (await fetchStatus(n3.address)).antiEntropy.lastFailure;
      console.log(`  repair attempt ${attempts}: ${last.peersFailed} of ${last.peersTotal} exchanges failed (${failure === null || failure === undefined ? 'no reason given' : `${failure.peer}: ${failure.reason}`}); repairing again in a second`);
      await sleep(1000);
    }
    // The last merged records may become durable (and counted) just after the repair reports done.
    if (keysMs === undefined) {
      await waitFor(`node 3 to hold ${int(expected)} keys after the repair`, async () => ((await fetchStatus(n3.address)).storage.keys >= expected ? true : undefined), 30_000, 20).then(
        () => (keysMs = performance.now() - started),
        (error: unknown) => console.log(`  ${(error as Error).message}`),
      );
    }
    const after = await cluster.statuses();
    const delta = aeDelta(before.map((s) => s.antiEntropy), after.map((s) => s.antiEntropy));
    const perNode = after.map((s, i) => {
      const d = aeDelta([before[i]?.antiEntropy ?? AE_ZERO], [s.antiEntropy]);
      return `${s.node} sent ${int(d.recordsSent)} records, ${bytes(d.bytesSent)}, received ${bytes(d.bytesReceived)}, changed ${int(d.keysRepaired)} keys`;
    });
    console.log(`  anti-entropy during the repair: ${perNode.join('; ')}`);
    const peers = `${last?.peersDone ?? 0}/${last?.peersTotal ?? 0}${(last?.peersFailed ?? 0) > 0 ? ` (${last?.peersFailed} failed)` : ''}`;
    console.log(
      `  repair done in ${secs(repairMs)} (${attempts} request${attempts > 1 ? 's' : ''}): peers ${peers}, keys compared ${int(keysCompared)}, keys repaired ${int(keysRepaired)}; ` +
        `node 3 held all ${int(expected)} keys after ${keysMs === undefined ? 'NEVER (within the wait)' : secs(keysMs)}`,
    );
    return { differing, missingAfterRestart: expected - held, repairMs, keysMs, keysRepaired, keysCompared, peers, attempts, aeBytes: delta.bytesSent + delta.bytesReceived, recordsShipped: delta.recordsSent };
  } finally {
    await admin?.close();
    await target?.close();
    await cluster.stop();
  }
}

// ---- part 2: foreground latency while anti-entropy repairs ----

interface Phase {
  readonly name: string;
  readonly ae: string;
  readonly result: PhaseResult;
  readonly all: Histogram;
  /** Keys anti-entropy changed on any node during the phase (summed over the nodes). */
  readonly keysRepaired: number;
  /** Records anti-entropy shipped during the phase (each counted by its sender). */
  readonly recordsShipped: number;
  readonly exchanges: number;
  readonly exchangesFailed: number;
  /** The last failure a node reported for an exchange, when some failed during the phase. */
  readonly failure: string | undefined;
}

interface ForegroundResult {
  readonly differing: number;
  readonly phases: Phase[];
  readonly baseline: Phase;
  readonly control: Phase | undefined;
  readonly restart: RestartResult | undefined;
  /** Phase P: node 3 paused and resumed with nothing to repair. */
  readonly pauseControl: Phase | undefined;
  /** Phase W: the same repair as B, on a node 3 that was paused instead of restarted (a warm process). */
  readonly warm: WarmResult | undefined;
}

/** Phase B: node 3 restarted after missing keys, repaired while the phase runs. */
interface RestartResult {
  readonly during: Phase;
  readonly missingAfterRestart: number;
  /** Milliseconds from the start of phase B until node 3 was seen holding every key, if it was. */
  readonly fullAtMs: number | undefined;
  readonly phaseMs: number;
  readonly heldAtEnd: number;
  readonly expected: number;
  readonly minRate: number[];
}

interface WarmResult {
  readonly phase: Phase;
  readonly missing: number;
  readonly fullAtMs: number | undefined;
  readonly heldAtEnd: number;
  readonly expected: number;
}

function combined(result: PhaseResult): Histogram {
  const all = new Histogram();
  all.add(result.read);
  all.add(result.update);
  return all;
}

function phaseLine(phase: Phase): string {
  const r = phase.result;
  const errors = [...r.errors.values()].reduce((a, b) => a + b, 0);
  return (
    `  ${phase.name}: ${int(r.throughput)} ops/s done of ${int(RATE)} offered; all ops p50 ${ms(phase.all.percentileMs(50))} / p99 ${ms(phase.all.percentileMs(99))} / p99.9 ${ms(phase.all.percentileMs(99.9))} ms; ` +
    `read p99 ${ms(r.read.percentileMs(99))}, write p99 ${ms(r.update.percentileMs(99))}, lag p99 ${ms(r.lag?.percentileMs(99) ?? NaN)} ms` +
    (errors > 0 ? `; ${errors} errors (${[...r.errors].map(([c, n]) => `${c} ${n}`).join(', ')})` : '') +
    (r.unfinished > 0 ? `; ${r.unfinished} unfinished` : '') +
    (r.notFound > 0 ? `; ${r.notFound} reads found nothing` : '') +
    `; anti-entropy: ${phase.exchanges} exchanges done, ${phase.exchangesFailed} failed${phase.failure === undefined ? '' : ` (last: ${phase.failure})`}, ${int(phase.keysRepaired)} keys repaired`
  );
}

async function runPhase(cluster: LocalCluster, target: Target, name: string, ae: string, prng: Prng, restarted: readonly boolean[] = []): Promise<Phase> {
  const before = (await cluster.statuses()).map((s, i) => (restarted[i] === true ? AE_ZERO : s.antiEntropy));
  const result = await openLoop(target, { label: name, workload: WORKLOAD, records: RECORDS, seconds: SECONDS, inflight: 1, value: VALUE, rate: RATE, inflightMax: OPEN_INFLIGHT_MAX, prng });
  const after = await cluster.statuses();
  const delta = aeDelta(before, after.map((s) => s.antiEntropy));
  const failed = after.map((s) => s.antiEntropy.lastFailure).find((f) => f !== null && f !== undefined);
  const phase: Phase = {
    name,
    ae,
    result,
    all: combined(result),
    keysRepaired: delta.keysRepaired,
    recordsShipped: delta.recordsSent,
    exchanges: delta.exchangesCompleted,
    exchangesFailed: delta.exchangesFailed,
    failure: delta.exchangesFailed > 0 && failed !== undefined && failed !== null ? `${failed.peer}: ${failed.reason}` : undefined,
  };
  console.log(phaseLine(phase));
  return phase;
}

async function warmUp(target: Target, prng: Prng): Promise<void> {
  if (WARMUP_SECONDS <= 0) return;
  await openLoop(target, { label: 'warm-up', workload: WORKLOAD, records: RECORDS, seconds: WARMUP_SECONDS, inflight: 1, value: VALUE, rate: RATE, inflightMax: OPEN_INFLIGHT_MAX, prng });
}

async function foregroundPart(): Promise<ForegroundResult> {
  const differing = FOREGROUND_DIFFERING;
  const aeOn = nodeEnv({ [ENV_INTERVAL]: '500' });
  console.log(
    `\n2. foreground: ${NODES} nodes, ${int(RECORDS)} keys, open loop at ${int(RATE)} ops/s (workload B: 95% reads, 5% updates, zipfian ${ZIPFIAN_CONSTANT}), ` +
      `${SECONDS} s per phase after ${WARMUP_SECONDS} s of warm-up; node 3 then misses ${int(differing)} new keys`,
  );
  const cluster = await LocalCluster.start('fg', CEILING ? nodeEnv({ [ENV_ENABLED]: 'false' }) : aeOn);
  let target: Target | undefined;
  try {
    target = await loadRecords(cluster);
    const prng = new Prng(SEED);
    const phases: Phase[] = [];
    if (CEILING) {
      await warmUp(target, prng.fork('warm-ceiling'));
      phases.push(await runPhase(cluster, target, 'ceiling', 'disabled', prng.fork('ceiling')));
      await target.close();
      target = undefined;
      await cluster.restartAll(aeOn);
      console.log(`  restarted every node with anti-entropy on (${ENV_INTERVAL}=500)`);
      target = await chorusTarget({ addresses: cluster.addresses, clients: CLIENTS, r: 'quorum', w: 'quorum', timeoutMs: TIMEOUT_MS });
    }
    await warmUp(target, prng.fork('warm-a'));
    const baseline = await runPhase(cluster, target, 'A', 'on, in sync', prng.fork('A'));
    phases.push(baseline);

    const n3 = cluster.nodes[2] as LocalNode;
    let control: Phase | undefined;
    if (RESTART_CONTROL) {
      await cluster.kill(n3);
      const killedAt = performance.now();
      await cluster.restart(n3);
      console.log(`  node 3 killed (SIGKILL) and restarted at once, nothing to repair; ready after ${secs(performance.now() - killedAt)}; phase R starts now`);
      control = await runPhase(cluster, target, 'R', 'on, node 3 restarted, in sync', prng.fork('R'), [false, false, true]);
      phases.push(control);
    }
    let restart: RestartResult | undefined;
    let held = RECORDS;
    if (RESTART_REPAIR) {
      await cluster.kill(n3);
      const writeRate = await writeDiffering(cluster.addresses.slice(0, 2), RECORDS, differing);
      console.log(`  node 3 killed (SIGKILL); wrote ${int(differing)} new keys with w=2 at ${int(writeRate)} writes/s; hints pending on nodes 1 and 2: ${await hintsPending(cluster.addresses.slice(0, 2))}`);
      const restartedAt = performance.now();
      await cluster.restart(n3);
      console.log(`  node 3 restarted on its data and ready after ${secs(performance.now() - restartedAt)}; phase B starts now`);
      const expected = RECORDS + differing;

      // Watch node 3 fill up, and how far anti-entropy backs off, while phase B runs.
      let polling = true;
      let fullAtMs: number | undefined;
      let heldFirst: number | undefined;
      let heldAtEnd = 0;
      const minRate = [1, 1, 1];
      const phaseStart = performance.now();
      const poller = (async () => {
        while (polling) {
          try {
            const statuses = await cluster.statuses();
            const held = statuses[2]?.storage.keys ?? 0;
            heldFirst ??= held;
            heldAtEnd = held;
            if (fullAtMs === undefined && held >= expected) fullAtMs = performance.now() - phaseStart;
            statuses.forEach((s, i) => (minRate[i] = Math.min(minRate[i] ?? 1, s.antiEntropy.rate)));
          } catch {
            // A status that does not answer in time is skipped.
          }
          await sleep(STATUS_POLL_MS);
        }
      })();
      // Node 3's counters start from zero in its new process.
      const during = await runPhase(cluster, target, 'B', 'on, repairing node 3', prng.fork('B'), [false, false, true]);
      const phaseMs = performance.now() - phaseStart;
      polling = false;
      await poller;
      phases.push(during);
      const final = await cluster.statuses();
      heldAtEnd = final[2]?.storage.keys ?? heldAtEnd;
      if (fullAtMs === undefined && heldAtEnd >= expected) fullAtMs = phaseMs;
      console.log(
        `  during B: anti-entropy repaired ${int(during.keysRepaired)} keys, shipped ${int(during.recordsShipped)} records; node 3 held ${int(heldAtEnd)} of ${int(expected)} keys at the end` +
          (fullAtMs === undefined ? '' : `, all of them ${secs(fullAtMs)} into the phase`) +
          `; lowest budget rate seen per node: ${minRate.map((r) => r.toFixed(3)).join(', ')}`,
      );
      let settleMs: number | undefined;
      if (fullAtMs === undefined && SETTLE_SECONDS > 0) {
        const settleStart = performance.now();
        try {
          await waitFor(`node 3 to hold ${int(expected)} keys`, async () => ((await fetchStatus(n3.address)).storage.keys >= expected ? true : undefined), SETTLE_SECONDS * 1000, 200);
          settleMs = performance.now() - settleStart;
          console.log(`  without load, node 3 held every key ${secs(settleMs)} after phase B ended (${secs(phaseMs + settleMs)} after it was ready)`);
        } catch {
          console.log(`  node 3 still missed keys ${SETTLE_SECONDS} s after phase B ended (${int((await fetchStatus(n3.address)).storage.keys)} of ${int(expected)})`);
        }
      }
      restart = { during, missingAfterRestart: expected - (heldFirst ?? 0), fullAtMs, phaseMs, heldAtEnd, expected, minRate };
      held = expected;
    }
    let pauseControl: Phase | undefined;
    if (WARM && PAUSE_CONTROL) {
      pauseControl = (await warmPhase(cluster, target, prng.fork('P'), held, 0, 'P', 'on, node 3 paused and resumed, in sync')).phase;
      phases.push(pauseControl);
    }
    let warm: WarmResult | undefined;
    if (WARM) {
      warm = await warmPhase(cluster, target, prng.fork('W'), held, differing, 'W', 'on, repairing node 3 (paused, warm)');
      phases.push(warm.phase);
    }
    return { differing, phases, baseline, control, restart, pauseControl, warm };
  } finally {
    await target?.close();
    await cluster.stop();
  }
}

/**
 * Phase W: node 3, holding every key, is paused until the others see it dead, misses
 * `differing` keys, and is resumed; the phase runs while anti-entropy repairs it, in the same
 * (warm) process.
 */
async function warmPhase(cluster: LocalCluster, target: Target, prng: Prng, before: number, differing: number, name: string, label: string): Promise<WarmResult> {
  const n3 = cluster.nodes[2] as LocalNode;
  await waitFor(`node 3 to hold ${int(before)} keys before phase W`, async () => ((await fetchStatus(n3.address)).storage.keys >= before ? true : undefined), SETTLE_SECONDS * 1000, 200);
  const pausedAt = performance.now();
  cluster.signal(n3, 'SIGSTOP');
  let writeRate: number;
  try {
    await waitFor(
      'nodes 1 and 2 to see node 3 down',
      async () => {
        const statuses = await Promise.all(cluster.addresses.slice(0, 2).map(fetchStatus));
        return statuses.every((s) => (s.members ?? []).some((m) => m.id === n3.id && m.live !== 'alive')) ? true : undefined;
      },
      MEMBERSHIP_TIMEOUT_MS,
      100,
    );
    writeRate = differing === 0 ? 0 : await writeDiffering(cluster.addresses.slice(0, 2), before, differing);
  } finally {
    cluster.signal(n3, 'SIGCONT');
  }
  await cluster.waitMembers();
  const expected = before + differing;
  const heldFirst = (await fetchStatus(n3.address)).storage.keys;
  console.log(
    `  node 3 paused (SIGSTOP) for ${secs(performance.now() - pausedAt)} while ${int(differing)} new keys were written with w=2 at ${int(writeRate)} writes/s, ` +
      `then resumed holding ${int(heldFirst)} of ${int(expected)}; phase ${name} starts now`,
  );
  let polling = true;
  let fullAtMs: number | undefined;
  let heldAtEnd = heldFirst;
  const phaseStart = performance.now();
  const poller = (async () => {
    while (polling) {
      try {
        heldAtEnd = (await fetchStatus(n3.address)).storage.keys;
        if (fullAtMs === undefined && heldAtEnd >= expected) fullAtMs = performance.now() - phaseStart;
      } catch {
        // A status that does not answer in time is skipped.
      }
      await sleep(STATUS_POLL_MS);
    }
  })();
  const phase = await runPhase(cluster, target, name, label, prng, [false, false, false]);
  polling = false;
  await poller;
  heldAtEnd = (await fetchStatus(n3.address)).storage.keys;
  return { phase, missing: expected - heldFirst, fullAtMs, heldAtEnd, expected };
}

// ---- summary ----

function rise(b: number, a: number): number {
  return ((b - a) / a) * 100;
}

function repairSummary(r: RepairResult): string[] {
  const timeMs = r.keysMs ?? r.repairMs;
  const rows = [
    ['differing keys', 'missing at restart', 'repair wall', 'all keys held at', 'keys/s', 'keys repaired', 'keys compared', 'peers', 'AE bytes (sum)', 'bytes/differing key'],
    [
      int(r.differing),
      int(r.missingAfterRestart),
      secs(r.repairMs),
      r.keysMs === undefined ? 'never' : secs(r.keysMs),
      int(r.differing / (timeMs / 1000)),
      int(r.keysRepaired),
      int(r.keysCompared),
      r.peers,
      bytes(r.aeBytes),
      int(r.aeBytes / r.differing),
    ],
  ];
  return [
    `repair (forced; budget ${int(KEYS_BUDGET)} keys/s configured, a repair runs at ${REPAIR_BUDGET_FACTOR}× = ${int(KEYS_BUDGET * REPAIR_BUDGET_FACTOR)} keys/s)`,
    table(rows, () => true),
    '  keys/s: differing keys over the time until node 3 held every key (the repair wall time if it never did);',
    '  AE bytes: the bytes of anti-entropy messages the nodes estimate, sent + received summed over the nodes during the',
    '  repair, so a shipped byte is counted once by its sender and once by its receiver (the traffic is about half)',
  ];
}

function foregroundSummary(f: ForegroundResult): string[] {
  const header = ['phase', 'anti-entropy', 'offered/s', 'done/s', 'p50', 'p99', 'p99.9', 'read p99', 'write p99', 'lag p99', 'errors', 'AE keys repaired'];
  const rows = [header];
  for (const p of f.phases) {
    const r = p.result;
    const errors = [...r.errors.values()].reduce((a, b) => a + b, 0) + r.unfinished;
    rows.push([p.name, p.ae, int(RATE), int(r.throughput), ms(p.all.percentileMs(50)), ms(p.all.percentileMs(99)), ms(p.all.percentileMs(99.9)), ms(r.read.percentileMs(99)), ms(r.update.percentileMs(99)), ms(r.lag?.percentileMs(99) ?? NaN), int(errors), int(p.keysRepaired)]);
  }
  const a = f.baseline.all.percentileMs(99);
  const riseLine = (name: string, phase: Phase): string => {
    const p99 = phase.all.percentileMs(99);
    const up = rise(p99, a);
    return (
      `  p99 rise of ${name} over A: ${percent(up)} (${ms(a)} → ${ms(p99)} ms; goal ≤ 25%: ${up <= 25 ? 'met' : 'NOT MET'}); ` +
      `reads ${percent(rise(phase.result.read.percentileMs(99), f.baseline.result.read.percentileMs(99)))}, writes ${percent(rise(phase.result.update.percentileMs(99), f.baseline.result.update.percentileMs(99)))}`
    );
  };
  const lines = [`foreground (latencies in ms, all operations; from when each was due)`, table(rows, (c) => c >= 2)];
  const ceiling = f.phases.find((p) => p.name === 'ceiling');
  if (ceiling !== undefined) lines.push(`  A over the ceiling (anti-entropy disabled): p99 ${percent(rise(a, ceiling.all.percentileMs(99)))} (${ms(ceiling.all.percentileMs(99))} → ${ms(a)} ms)`);
  const restart = f.restart;
  if (restart !== undefined) {
    const b = restart.during.all.percentileMs(99);
    lines.push(riseLine('B (repairing a restarted node 3)', restart.during));
    if (f.control !== undefined) {
      const r = f.control.all.percentileMs(99);
      lines.push(`  a restart alone (R over A): p99 ${percent(rise(r, a))} (${ms(a)} → ${ms(r)} ms); the repair on top of a restart (B over R): p99 ${percent(rise(b, r))} (${ms(r)} → ${ms(b)} ms)`);
    }
    lines.push(
      `  repair during B: ${int(restart.during.keysRepaired)} keys repaired for ${int(f.differing)} differing (node 3 missed ${int(restart.missingAfterRestart)} when B started); ` +
        (restart.fullAtMs === undefined ? `NOT finished within B (node 3 held ${int(restart.heldAtEnd)} of ${int(restart.expected)})` : `finished within B, ${secs(restart.fullAtMs)} in (B lasted ${secs(restart.phaseMs)})`),
    );
    lines.push(`  lowest anti-entropy budget rate seen during B (share of ${int(KEYS_BUDGET)} keys/s), per node: ${restart.minRate.map((r) => r.toFixed(3)).join(', ')}`);
    lines.push(`  note: node 3 runs in a freshly started process during B (cold JIT and caches), which B's figures include${f.control === undefined ? '' : '; R measures that alone'}`);
  }
  if (f.warm !== undefined) {
    const w = f.warm.phase.all.percentileMs(99);
    lines.push(riseLine('W (repairing a paused node 3)', f.warm.phase));
    if (f.pauseControl !== undefined) {
      const p = f.pauseControl.all.percentileMs(99);
      lines.push(`  a pause alone (P over A): p99 ${percent(rise(p, a))} (${ms(a)} → ${ms(p)} ms); the repair on top of a pause (W over P): p99 ${percent(rise(w, p))} (${ms(p)} → ${ms(w)} ms)`);
    }
    lines.push(
      `  repair during W: ${int(f.warm.phase.keysRepaired)} keys repaired (node 3 missed ${int(f.warm.missing)} when W started); ` +
        (f.warm.fullAtMs === undefined ? `NOT finished within W (node 3 held ${int(f.warm.heldAtEnd)} of ${int(f.warm.expected)})` : `finished within W, ${secs(f.warm.fullAtMs)} in`),
    );
  }
  return lines;
}

// ---- main ----

function ensureBuilt(): void {
  const state = buildState();
  if (state === 'stale') console.log('note: lib/ has changed since the last build; the nodes run the JavaScript in dist/ (npm run build to refresh it)');
  if (state !== 'missing') return;
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  if (!existsSync(tsc)) throw new Error(`${CLI} is missing and TypeScript is not installed: run npm install, then npm run build`);
  console.log(`${CLI} is missing: building it (tsc -p tsconfig.json)`);
  const built = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  if (built.status !== 0 || buildState() === 'missing') throw new Error('the build failed: run npm run build, then try again');
}

async function main(): Promise<number> {
  ensureBuilt();
  console.log(
    `anti-entropy benchmark: ${NODES} nodes (n=3, durability fsync), ${int(RECORDS)} keys of ${VALUE_BYTES} bytes, parts ${PARTS.join(', ')}; ` +
      `anti-entropy budget ${int(KEYS_BUDGET)} keys/s${KEYS_PER_SECOND === undefined ? ' (default)' : ''}; seed ${SEED}`,
  );
  console.log(`hinted handoff off on every node (${ENV_HINT_BYTES}=1), so only anti-entropy repairs the keys node 3 misses`);
  console.log(`machine: ${availableParallelism()} cores, load average ${loadavg()[0]?.toFixed(2)} before the run (other work on the machine skews every figure)`);
  let repair: RepairResult | undefined;
  let foreground: ForegroundResult | undefined;
  const failures: string[] = [];
  if (PARTS.includes('repair')) {
    try {
      repair = await repairPart();
    } catch (error) {
      failures.push(`repair: ${(error as Error).message}`);
      console.log(`  repair failed: ${(error as Error).message}`);
    }
  }
  if (PARTS.includes('foreground')) {
    try {
      foreground = await foregroundPart();
    } catch (error) {
      failures.push(`foreground: ${(error as Error).message}`);
      console.log(`  foreground failed: ${(error as Error).message}`);
    }
  }
  console.log('\nsummary');
  if (repair !== undefined) for (const line of repairSummary(repair)) console.log(line);
  if (foreground !== undefined) for (const line of foregroundSummary(foreground)) console.log(line);
  for (const failure of failures) console.log(`did not complete: ${failure}`);
  return failures.length > 0 ? 1 : 0;
}

runBench(main);
