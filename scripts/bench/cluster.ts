/**
 * Cluster benchmark: three Chorus nodes against a bare three-replica prototype, on YCSB
 * workloads A, B and C, in one run.
 *
 * Chorus: three `chorus start` processes (the built CLI, defaults: n = 3, durability fsync)
 * on 127.0.0.1 with fresh data directories, driven through the SDK with r = w = quorum.
 * Bare: three bare-replica.ts processes (ws + cbor-x + LMDB, fsync) and a quorum coordinator
 * in this process that sends one frame per operation per replica: a write to all three,
 * done after two acknowledgements; a read to two, done after two answers.
 *
 * For each system: load the records (YCSB's load phase), then per workload a warm-up, a
 * saturation phase (closed loop: `clients` connections × `inflight` operations outstanding)
 * and open-loop phases at fixed shares of the measured saturation throughput (and at any
 * absolute `--rates`), latency measured from when each operation was due. Keys follow YCSB's
 * scrambled zipfian (constant 0.99) over `records` keys; values are 100 bytes. The systems
 * run one after the other, never together, since they share the machine's cores, and each
 * with its clients in a fresh process forked from this one (see runSystemApart).
 *
 * Workload C (reads only) is there to take B apart: it measures the read path alone, so the
 * difference between C and B is what B's 5% of updates cost each system.
 *
 * Prints one table per workload and whether the goals hold: Chorus ≥ 1.0× bare on workload B
 * at saturation; at half of Chorus's saturation throughput, read p99 ≤ 5 ms and write
 * p99 ≤ 15 ms. A second table per workload says where the CPU went per operation (from
 * /proc, on Linux): the benchmark process in user space and in the kernel, the servers' main
 * threads and their other threads, and how often a server's event loop slept and woke.
 * Every child process is stopped and every data directory removed, also on error and Ctrl-C.
 *
 * `--server-flags` passes Node.js options (space-separated) to every server process of both
 * systems, to measure a runtime setting an operator would start nodes with, for example
 * `--server-flags=--max-semi-space-size=64`. The processes that run the clients of both
 * systems use the nodes' V8 heap settings (lib/runtime/heap-tuning.ts); `--client-pretenuring`
 * leaves V8's defaults, as an application started without options has them.
 *
 * Usage: npm run bench:cluster -- [--seconds 8] [--warmup 2] [--records 10000] [--clients 4]
 *          [--inflight 64] [--loads 0.25,0.5,0.75] [--rates 2000,5000] [--workloads A,B,C]
 *          [--systems bare,chorus] [--r quorum] [--w quorum] [--read-fanout 2]
 *          [--value-bytes 100] [--timeout-ms 5000] [--seed 1] [--server-flags ''] [--client-pretenuring]
 */

import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Prng } from '../../lib/base/prng.js';
import type { Level } from '../../lib/index.js';
import { tuneHeap } from '../../lib/runtime/heap-tuning.js';
import { buildState, CLI, forkBench, freePort, procSample, GiveUp, spawnNode, stop, tempDir, waitFor, waitReady, positive, runBench, type Child, type ProcSample } from './children.js';
import { closedLoop, load, openLoop, type PhaseResult } from './drivers.js';
import { Histogram } from './hdr.js';
import { cpuTable, goalLines, workloadTable, type SystemResults, type WorkloadResults } from './report.js';
import { bareTarget, chorusTarget, type Target } from './targets.js';
import { WORKLOADS, ZIPFIAN_CONSTANT, type Workload } from './ycsb.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    records: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '4' },
    inflight: { type: 'string', default: '64' },
    loads: { type: 'string', default: '0.25,0.5,0.75' },
    rates: { type: 'string', default: '' },
    workloads: { type: 'string', default: 'A,B,C' },
    systems: { type: 'string', default: 'bare,chorus' },
    'client-pretenuring': { type: 'boolean', default: false },
    r: { type: 'string', default: 'quorum' },
    w: { type: 'string', default: 'quorum' },
    'read-fanout': { type: 'string', default: '2' },
    'value-bytes': { type: 'string', default: '100' },
    'timeout-ms': { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
    'server-flags': { type: 'string', default: '' },
    // Internal: set on the process forked to run one system (see runSystemApart).
    'one-system': { type: 'string' },
  },
});

function list(name: string, text: string | undefined): number[] {
  return (text ?? '')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => positive(name, s.trim(), false));
}

/** Replicas per key: three processes, each holding every key. */
const REPLICAS = 3;

function parseLevel(name: string, text: string | undefined): Level {
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  return positive(name, text);
}

function serverFlags(text: string): string[] {
  const options = text.split(/\s+/).filter((s) => s !== '');
  for (const option of options) {
    if (!option.startsWith('--')) throw new Error(`--server-flags takes Node.js options (each starting with --), got ${JSON.stringify(option)}`);
  }
  return options;
}

function levelCount(level: Level): number {
  if (level === 'one') return 1;
  if (level === 'quorum') return Math.floor(REPLICAS / 2) + 1;
  if (level === 'all') return REPLICAS;
  return level as number;
}

const SECONDS = positive('seconds', flags.seconds, false);
const WARMUP_SECONDS = Number(flags.warmup);
const RECORDS = positive('records', flags.records);
const CLIENTS = positive('clients', flags.clients);
const INFLIGHT = positive('inflight', flags.inflight);
/** Shares of saturation offered in the open-loop phases; 0.5 is always among them, for the latency goals. */
const LOADS = [...new Set([...list('loads', flags.loads), 0.5])].sort((a, b) => a - b);
const RATES = list('rates', flags.rates);
const WORKLOAD_NAMES = (flags.workloads ?? '').split(',').map((s) => s.trim().toUpperCase());
const SYSTEMS = (flags.systems ?? '').split(',').map((s) => s.trim());
const R = parseLevel('r', flags.r);
const W = parseLevel('w', flags.w);
const READ_FANOUT = positive('read-fanout', flags['read-fanout']);
const VALUE_BYTES = positive('value-bytes', flags['value-bytes']);
const TIMEOUT_MS = positive('timeout-ms', flags['timeout-ms']);
const SEED = Number(flags.seed);
/** Node.js options for every server process (both systems), before the script. */
const SERVER_FLAGS = serverFlags(flags['server-flags'] ?? '');
// The clients of both systems run in this script (each system in a process forked from it),
// with the nodes' heap settings unless asked otherwise (lib/runtime/heap-tuning.ts): in some
// runs V8 pretenured the SDK's request path, which cost it a third more CPU per request and
// decided the ratio more than either system did.
if (flags['client-pretenuring'] !== true) tuneHeap();
/** Open-loop operations outstanding per connection before more wait in the client: four times the closed-loop window. */
const OPEN_INFLIGHT_MAX = 4 * INFLIGHT;
/** How long a process has to come up. */
const START_TIMEOUT_MS = 30_000;
/** How long the three nodes have to see each other as up and alive. */
const MEMBERSHIP_TIMEOUT_MS = 30_000;

for (const name of WORKLOAD_NAMES) if (WORKLOADS[name] === undefined) throw new Error(`unknown workload ${name}; known: ${Object.keys(WORKLOADS).join(', ')}`);
for (const name of SYSTEMS) if (name !== 'bare' && name !== 'chorus') throw new Error(`unknown system ${name}; known: bare, chorus`);

interface Cluster {
  readonly target: Target;
  /** What the server processes have used so far; undefined where it cannot be read. */
  sample(): ProcSample | undefined;
  /** What went wrong with the processes, when some exited on their own: names, exit codes and last output. */
  casualties(): string;
  stop(): Promise<void>;
}

/** Says at once when a child exits without being asked to: the figures after that are not for three replicas. */
function watchExits(children: readonly Child[]): void {
  for (const child of children) {
    void child.exited.then((exit) => {
      if (!child.stopping) console.log(`  ${child.name} exited unexpectedly (code ${exit.code}, signal ${exit.signal}); the figures from here on are not for ${REPLICAS} replicas`);
    });
  }
}

/** Describes the children that exited without being asked to. */
function casualties(children: readonly Child[]): string {
  return children
    .filter((c) => !c.stopping && (c.process.exitCode !== null || c.process.signalCode !== null))
    .map((c) => `${c.name} exited on its own (code ${c.process.exitCode}, signal ${c.process.signalCode}); its last output:\n    ${c.tail.slice(-10).join('\n    ')}`)
    .join('\n  ');
}

async function stopChildren(children: readonly Child[], dirs: readonly string[]): Promise<void> {
  const exits = await Promise.all(children.map((c) => stop(c)));
  exits.forEach((exit, i) => {
    if (exit.killed || exit.code !== 0) console.log(`  ${children[i]?.name} stopped with code ${exit.code}, signal ${exit.signal}${exit.killed ? ' (killed after the deadline)' : ''}`);
  });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

async function startBare(): Promise<Cluster> {
  const children: Child[] = [];
  const dirs: string[] = [];
  try {
    const ports: number[] = [];
    for (let i = 1; i <= REPLICAS; i++) {
      const dir = tempDir(`chorus-bench-bare-r${i}-`);
      dirs.push(dir);
      const child = spawnNode(`bare r${i}`, [...SERVER_FLAGS, '--import', 'tsx', 'scripts/bench/bare-replica.ts', dir]);
      children.push(child);
    }
    for (const child of children) {
      let exited = false;
      void child.exited.then(() => (exited = true));
      const port = await waitFor(
        `${child.name} to print "listening PORT"`,
        () => {
          if (exited) throw new GiveUp(`${child.name} exited before listening:\n${child.tail.join('\n')}`);
          const line = child.tail.find((l) => l.startsWith('listening '));
          return line === undefined ? undefined : Number(line.slice('listening '.length));
        },
        START_TIMEOUT_MS,
      );
      ports.push(port);
    }
    watchExits(children);
    const target = await bareTarget({ ports, clients: CLIENTS, r: levelCount(R), w: levelCount(W), readFanout: Math.max(READ_FANOUT, levelCount(R)) });
    return {
      target,
      sample: () => procSample(children),
      casualties: () => casualties(children),
      async stop() {
        await target.close();
        await stopChildren(children, dirs);
      },
    };
  } catch (error) {
    await stopChildren(children, dirs);
    throw error;
  }
}

interface StatusMember {
  readonly id: string;
  readonly status: string;
  readonly live: string;
}

async function membersUp(address: string): Promise<number> {
  const response = await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(1000) });
  const status = (await response.json()) as { members?: StatusMember[] };
  return (status.members ?? []).filter((m) => m.status === 'up' && m.live === 'alive').length;
}

async function startChorus(): Promise<Cluster> {
  const state = buildState();
  if (state === 'missing') throw new Error(`${CLI} is missing: run npm run build first`);
  if (state === 'stale') console.log('  note: lib/ has changed since the last build; the nodes run the JavaScript in dist/ (npm run build to refresh it)');
  const children: Child[] = [];
  const dirs: string[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < REPLICAS; i++) ports.push(await freePort('127.0.0.1'));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    for (let i = 0; i < REPLICAS; i++) {
      const dir = tempDir(`chorus-bench-n${i + 1}-`);
      dirs.push(dir);
      const seeds = addresses.filter((_, j) => j !== i).join(',');
      const args = [...SERVER_FLAGS, CLI, 'start', '--host', '127.0.0.1', '--port', String(ports[i]), '--data', dir, '--id', `n${i + 1}`, '--seeds', seeds];
      children.push(spawnNode(`n${i + 1}`, args));
    }
    await Promise.all(children.map((child, i) => waitReady(child, addresses[i] as string, START_TIMEOUT_MS)));
    watchExits(children);
    await waitFor(
      `every node to see ${REPLICAS} members up and alive`,
      async () => ((await Promise.all(addresses.map(membersUp))).every((n) => n >= REPLICAS) ? true : undefined),
      MEMBERSHIP_TIMEOUT_MS,
    );
    const target = await chorusTarget({ addresses, clients: CLIENTS, r: R, w: W, timeoutMs: TIMEOUT_MS });
    return {
      target,
      sample: () => procSample(children),
      casualties: () => casualties(children),
      async stop() {
        await target.close();
        await stopChildren(children, dirs);
      },
    };
  } catch (error) {
    await stopChildren(children, dirs);
    throw error;
  }
}

/** Runs a phase and adds what the servers used meanwhile. */
async function measured(cluster: Cluster, run: () => Promise<PhaseResult>): Promise<PhaseResult> {
  const before = cluster.sample();
  const started = performance.now();
  const phase = await run();
  const after = cluster.sample();
  const seconds = (performance.now() - started) / 1000;
  if (before === undefined || after === undefined) return phase;
  return {
    ...phase,
    serverCores: (after.cpuSeconds - before.cpuSeconds) / seconds,
    serverMainCores: (after.mainCpuSeconds - before.mainCpuSeconds) / seconds,
    serverSwitches: (after.mainSwitches - before.mainSwitches) / seconds,
  };
}

function progress(system: string, phase: PhaseResult): void {
  const errors = [...phase.errors.values()].reduce((a, b) => a + b, 0);
  const p99 = (label: string, count: number, value: number): string => (count === 0 ? '' : `, ${label} p99 ${value.toFixed(2)} ms`);
  console.log(
    `  ${system} ${phase.label}: ${Math.round(phase.throughput).toLocaleString('en-US')} ops/s` +
      p99('read', phase.read.count, phase.read.percentileMs(99)) +
      p99('write', phase.update.count, phase.update.percentileMs(99)) +
      `, bench cpu ${phase.clientCores.toFixed(2)} cores` +
      (phase.serverCores === undefined ? '' : `, servers ${phase.serverCores.toFixed(2)} cores (${Math.round((phase.serverCores * 1e6) / phase.throughput)} µs per op)`) +
      (errors > 0 ? `, ${errors} errors` : '') +
      (phase.unfinished > 0 ? `, ${phase.unfinished} unfinished` : ''),
  );
}

async function runWorkload(system: string, cluster: Cluster, workload: Workload, value: Uint8Array, prng: Prng): Promise<WorkloadResults> {
  const target = cluster.target;
  const base = { workload, records: RECORDS, inflight: INFLIGHT, value };
  if (WARMUP_SECONDS > 0) await closedLoop(target, { ...base, label: `${workload.name} warm-up`, seconds: WARMUP_SECONDS, prng: prng.fork('warmup') });
  const saturation = await measured(cluster, () => closedLoop(target, { ...base, label: `${workload.name} saturation`, seconds: SECONDS, prng: prng.fork('saturation') }));
  progress(system, saturation);
  const fixed: PhaseResult[] = [];
  const offered = [
    ...LOADS.map((share) => ({ label: `${workload.name} ${Math.round(share * 100)}%`, rate: share * saturation.throughput })),
    ...RATES.map((rate) => ({ label: `${workload.name} ${rate}/s`, rate })),
  ];
  for (const { label, rate } of offered) {
    const phase = await measured(cluster, () => openLoop(target, { ...base, label, seconds: SECONDS, rate, inflightMax: OPEN_INFLIGHT_MAX, prng: prng.fork(label) }));
    progress(system, phase);
    fixed.push(phase);
  }
  return { saturation, fixed };
}

async function runSystem(name: 'bare' | 'chorus'): Promise<SystemResults> {
  const results: SystemResults = { name, load: undefined, workloads: new Map(), notes: [], error: undefined };
  console.log(`\n${name}: starting ${REPLICAS} ${name === 'chorus' ? 'nodes' : 'replicas'}`);
  let cluster: Cluster | undefined;
  try {
    cluster = await (name === 'chorus' ? startChorus() : startBare());
    const value = new Uint8Array(VALUE_BYTES).fill(120);
    const loaded = await load(cluster.target, RECORDS, INFLIGHT, value);
    results.load = loaded;
    console.log(`  ${name} load: ${RECORDS.toLocaleString('en-US')} records at ${Math.round(loaded.throughput).toLocaleString('en-US')} inserts/s`);
    // The same seed for both systems: each client draws the same sequence of operations.
    const prng = new Prng(SEED);
    for (const workloadName of WORKLOAD_NAMES) {
      const workload = WORKLOADS[workloadName] as Workload;
      results.workloads.set(workloadName, await runWorkload(name, cluster, workload, value, prng.fork(workloadName)));
    }
    const notes = cluster.target.notes();
    if (notes !== '') results.notes.push(notes);
    const dead = cluster.casualties();
    if (dead !== '') results.notes.push(`${name}: ${dead}`);
  } catch (error) {
    const dead = cluster?.casualties() ?? '';
    results.error = (error instanceof Error ? error.message : String(error)) + (dead === '' ? '' : `\n  ${dead}`);
    console.log(`  ${name} failed: ${results.error}`);
  } finally {
    await cluster?.stop();
  }
  return results;
}

/**
 * Each system runs in a process of its own, forked from this one, so that both meet a client
 * process in the same state. In one process the system measured second inherited the first
 * one's compiled code and heap, and lost by it: on workload B, Chorus measured 24,000–25,500
 * ops/s after the prototype against 28,000 alone or first, and the prototype 27,000 after
 * Chorus against 27,700–30,100 first.
 */
async function runSystemApart(name: 'bare' | 'chorus'): Promise<SystemResults> {
  const child = forkBench(`${name} benchmark`, fileURLToPath(import.meta.url), [...process.argv.slice(2), '--one-system', name]);
  let received: SystemResults | undefined;
  child.process.on('message', (message) => {
    received = reviveResults(message as SystemResults);
  });
  // 'close' comes after the channel has delivered every message the child sent.
  await once(child.process, 'close');
  if (received !== undefined) return received;
  const exit = await child.exited;
  const how = exit.signal === null ? `with code ${exit.code}` : `on ${exit.signal}`;
  return { name, load: undefined, workloads: new Map(), notes: [], error: `its benchmark process ended ${how} without results` };
}

/** The forked side of runSystemApart: runs one system and sends its results to the parent. */
async function runAsChild(name: string): Promise<number> {
  if (name !== 'bare' && name !== 'chorus') throw new Error(`--one-system takes bare or chorus, got ${JSON.stringify(name)}`);
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('--one-system is for the process the benchmark forks for each system');
  const results = await runSystem(name);
  await new Promise<void>((resolveSent, rejectSent) => send(results, undefined, {}, (error) => (error === null ? resolveSent() : rejectSent(error))));
  return 0;
}

/** Results as they arrive from a forked process: the histograms are plain objects again. */
function reviveResults(results: SystemResults): SystemResults {
  const phase = (p: PhaseResult): PhaseResult => ({
    ...p,
    read: Histogram.revive(p.read),
    update: Histogram.revive(p.update),
    lag: p.lag === undefined ? undefined : Histogram.revive(p.lag),
  });
  const workloads = new Map<string, WorkloadResults>();
  for (const [key, w] of results.workloads) workloads.set(key, { saturation: phase(w.saturation), fixed: w.fixed.map(phase) });
  return { ...results, load: results.load === undefined ? undefined : phase(results.load), workloads };
}

async function main(): Promise<number> {
  if (flags['one-system'] !== undefined) return runAsChild(flags['one-system']);
  console.log(
    `cluster benchmark: ${REPLICAS} replicas, r=${String(R)} w=${String(W)}, ${CLIENTS} clients × ${INFLIGHT} in flight at saturation, ` +
      `${RECORDS.toLocaleString('en-US')} records, zipfian ${ZIPFIAN_CONSTANT} (YCSB scrambled), ${VALUE_BYTES}-byte values, durability fsync, ` +
      `${SECONDS} s per phase (warm-up ${WARMUP_SECONDS} s), open loop at ${LOADS.map((s) => `${Math.round(s * 100)}%`).join(', ')} of saturation${RATES.length > 0 ? ` and ${RATES.join(', ')} ops/s` : ''}, seed ${SEED}`,
  );
  console.log(`machine: ${availableParallelism()} cores, load average ${loadavg()[0]?.toFixed(2)} before the run (other work on the machine skews every figure)`);
  if (SERVER_FLAGS.length > 0) console.log(`server processes (both systems) run with node ${SERVER_FLAGS.join(' ')}`);
  console.log(flags['client-pretenuring'] === true ? 'the clients run with V8\'s default heap settings (--client-pretenuring)' : 'the clients run with the nodes\' V8 heap settings (lib/runtime/heap-tuning.ts)');
  console.log(`bare reads go to ${Math.max(READ_FANOUT, levelCount(R))} replicas and complete after ${levelCount(R)} answers; writes go to all ${REPLICAS} and complete after ${levelCount(W)}`);
  const systems: SystemResults[] = [];
  for (const name of SYSTEMS) systems.push(await runSystemApart(name as 'bare' | 'chorus'));

  for (const workloadName of WORKLOAD_NAMES) {
    console.log(`\nworkload ${workloadName} (${(WORKLOADS[workloadName] as Workload).description}); latencies in ms`);
    console.log(workloadTable(workloadName, systems));
  }
  console.log(
    '\nlatency runs from issue (saturation) or from when the operation was due (fixed loads); "lag p99" is how late the\n' +
      'scheduler itself sent, part of those latencies; "bench cpu" is the cores this process (clients, and the bare\n' +
      'coordinator) used, out of the same cores the servers run on; "servers cpu" is the cores the three server processes\n' +
      'used (all threads, user and system), and "µs/op" that CPU per completed operation; "not found" counts reads that\n' +
      'found no value although every key was loaded',
  );
  console.log('\nwhere the CPU went, per completed operation');
  for (const workloadName of WORKLOAD_NAMES) {
    console.log(`\nworkload ${workloadName}`);
    console.log(cpuTable(workloadName, systems));
  }
  console.log(
    '\n"bench user/sys" split the benchmark process\'s CPU between user space (the SDK or bare coordinator, the driver) and\n' +
      'the kernel (its system calls); "servers main" is the three servers\' main threads (their event loops: transport,\n' +
      'request handling, storage reads), "servers other" their other threads (LMDB commits and syncs, V8\'s garbage\n' +
      'collector helpers, libuv\'s pool); "server wakeups/op" counts the main threads\' context switches per operation, about\n' +
      'how often an event loop went to sleep and was woken: fewer means more work shared each wake-up',
  );
  console.log('\ngoals');
  for (const line of goalLines(systems, WORKLOAD_NAMES, (phase) => phase.label.endsWith(' 50%'))) console.log(`  ${line}`);
  for (const system of systems) {
    for (const note of system.notes) console.log(`  note: ${note}`);
    if (system.error !== undefined) console.log(`  ${system.name} did not complete: ${system.error}`);
  }
  return systems.some((s) => s.error !== undefined) ? 1 : 0;
}

runBench(main);
