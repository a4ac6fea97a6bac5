/**
 * Runs simulation scenarios from their seeds and prints what they measured: one run, or a
 * sweep of many seeds over many scenarios.
 *
 *   npm run sim -- --seed 42 --scenario crash [--nodes 20] [--trace 60]
 *   npm run sim -- --seed 7 --scenario replication --key k3
 *   npm run sim -- --seeds 1000 --scenario all [--from 1] [--jobs 2]
 *   npm run sim -- --seeds 50 --from 200 --scenario crdt,replication-wipe
 *   npm run sim -- --list
 *
 * `--trace N` prints, after a passing run too, the last N state events (member changes,
 * faults) and the last N messages. `--key K` prints, after the run, everything that happened
 * to key K of the replication scenarios: client requests and replies, replica messages with
 * the objects they carry and their answers, storage writes and when they became durable, and
 * the faults.
 *
 * A failing run prints its problems, the replay command and the tail of the trace, and exits
 * with status 1. The same seed replays the same run exactly. Without `--seed`, a seed is
 * drawn and printed.
 *
 * A sweep (`--seeds N`) runs seeds `--from` (default 1) … from+N−1 of each scenario named by
 * `--scenario`: `all`, or a comma-separated list. Each run is exactly the single run of that
 * seed, with the same checkers, so every failure replays with `--seed`. `--jobs J` (default:
 * one per available core) runs the seeds in J worker processes, forks of this script that
 * take one seed at a time and report its result back; with `--jobs 1` everything runs in
 * this process. The sweep prints its seed range first, so it can be repeated, then one line
 * per failing seed with its first problems and its replay command, a progress line every
 * few seconds (redrawn in place on a terminal), and at the end a table per scenario: seeds
 * run, passed, failed, time, and the sums of the acknowledged operations, unknown outcomes
 * and faults where the scenario measures them. It exits with status 1 if any seed failed,
 * 130 when interrupted (Ctrl-C kills the workers and prints what was done), 2 on bad usage.
 *
 * `all` is every scenario but `gossip`. Measured per seed in one warm process on the 2-core
 * box (seeds 1–3): the membership scenarios take 2–110 ms (loss ≈ 110, traffic ≈ 75,
 * converge ≈ 70, the rest under 35), replication-* 0.4–0.9 s, crdt-* 0.8–1.0 s, and gossip
 * about 5 s. Gossip is the 100-node convergence benchmark, with no fault, and `converge` and
 * `traffic` sweep the same code at 5 and 20 nodes; a list still runs it. A seed of `all`
 * costs about 3 s of CPU (seeds 21–120: 2100 runs, 302 s of user time), so
 * `--seeds 1000 --scenario all --jobs 2` comes to about 25 minutes on two idle cores; with the
 * box shared by other work (load 10–13) those 100 seeds took 12 minutes.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { replayCommand, SimFailure } from '../lib/sim/checkers.js';
import { runScenario, SCENARIOS, type Measurements } from '../lib/sim/scenarios.js';

const USAGE = [
  'usage: npm run sim -- --seed N --scenario NAME [--nodes N] [--trace LINES] [--key KEY]',
  '       npm run sim -- --seeds N [--from SEED] --scenario all|NAME[,NAME…] [--jobs J] [--nodes N]',
  '       npm run sim -- --list',
].join('\n');

/** The internal flag (declared in `parse`) that makes a fork of this script a sweep worker. */
const WORKER_FLAG = '--sweep-worker';
const SCRIPT = fileURLToPath(import.meta.url);

/** Scenarios that `--scenario all` leaves out, with why. */
const SWEEP_SKIPPED: ReadonlyMap<string, string> = new Map([['gossip', 'about 5 s a seed: the 100-node benchmark, with no fault']]);

/** Measurements summed over a sweep's passing seeds, in scenarios that measure them. */
const SUMMED = ['acknowledged', 'unknown', 'faults'] as const;

/** Problems named on a failing seed's line, each cut to its first line and this many characters. */
const LINE_PROBLEMS_MAX = 2;
const PROBLEM_CHARS_MAX = 200;

/** How often progress is shown: redrawn in place on a terminal, as a new line into a file or pipe. */
const PROGRESS_TTY_MS = 1000;
const PROGRESS_PLAIN_MS = 10_000;

/** Seeds are 32-bit (the runner takes them `>>> 0`), so a sweep's range must fit. */
const SEED_MAX = 0xffff_ffff;

function parse() {
  return parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string' },
      jobs: { type: 'string' },
      scenario: { type: 'string' },
      nodes: { type: 'string' },
      trace: { type: 'string' },
      key: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      'sweep-worker': { type: 'boolean', default: false },
    },
    strict: true,
  });
}

type Values = ReturnType<typeof parse>['values'];

async function main(): Promise<number | undefined> {
  let values: Values;
  try {
    values = parse().values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  if (values['sweep-worker']) {
    serveSweep();
    return undefined;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const scenario of SCENARIOS.values()) console.log(`${scenario.name.padEnd(16)} ${String(scenario.nodes).padStart(3)} nodes  ${scenario.summary}`);
    return 0;
  }
  if (values.seeds !== undefined) return sweep(values);
  if (values.from !== undefined || values.jobs !== undefined) {
    console.error(`--from and --jobs belong to a sweep (--seeds N)\n${USAGE}`);
    return 2;
  }
  return runOne(values);
}

function runOne(values: Values): number {
  if (values.scenario === undefined || !SCENARIOS.has(values.scenario)) {
    const known = `scenarios: ${[...SCENARIOS.keys()].join(', ')}`;
    console.error(values.scenario === undefined ? `${USAGE}\n${known}` : `no scenario "${values.scenario}"; ${known}`);
    return 2;
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 0x1_0000_0000) : integer('--seed', values.seed, 0);
  const nodes = values.nodes === undefined ? undefined : integer('--nodes', values.nodes, 2);
  const traceLines = values.trace === undefined ? 0 : integer('--trace', values.trace, 0);
  console.log(`scenario ${values.scenario}, seed ${seed}${nodes === undefined ? '' : `, ${nodes} nodes`}`);
  const startedMs = performance.now();
  const keyLines: string[] = [];
  const key = values.key;
  const cluster = key === undefined ? {} : { cluster: { watch: { key, sink: (line: string) => void keyLines.push(line) } } };
  const printKey = (): void => {
    if (key !== undefined) console.log(`everything that happened to key ${key} (${keyLines.length} lines):\n${keyLines.join('\n')}`);
  };
  try {
    const result = runScenario(values.scenario, { seed, ...(nodes === undefined ? {} : { nodes }), ...cluster });
    for (const [name, value] of Object.entries(result.measurements)) console.log(`  ${name.padEnd(28)} ${String(value)}`);
    console.log(`ok: ${result.cluster.now} ticks simulated in ${Math.round(performance.now() - startedMs)} ms`);
    if (traceLines > 0) console.log(result.cluster.trace.lines(traceLines).join('\n'));
    printKey();
    return 0;
  } catch (error) {
    if (error instanceof SimFailure) {
      printKey();
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

function integer(flag: string, text: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    console.error(`${flag} must be an integer ≥ ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` and ≤ ${max}`}, got "${text}"`);
    process.exit(2);
  }
  return value;
}

// ---- sweep ----

/** One seed of one scenario, as a worker receives it. */
interface SweepTask {
  readonly scenario: string;
  readonly seed: number;
  readonly nodes?: number;
}

/** What a worker reports for one seed. */
interface SeedResult {
  readonly scenario: string;
  readonly seed: number;
  readonly ok: boolean;
  readonly ms: number;
  /** The first problems, one line each, and how many there were in all. */
  readonly problems: readonly string[];
  readonly problemCount: number;
  readonly command: string;
  /** The summed measurements this seed has (passing seeds only). */
  readonly figures: Readonly<Record<string, number>>;
}

interface SweepPlan {
  readonly scenarios: readonly string[];
  readonly from: number;
  readonly count: number;
  readonly jobs: number;
  readonly nodes: number | undefined;
}

/** The sweep the flags ask for, or what is wrong with them. */
function sweepPlan(values: Values): SweepPlan | string {
  if (values.seed !== undefined) return '--seed runs one seed, --seeds a sweep: give one of them';
  if (values.trace !== undefined || values.key !== undefined) return '--trace and --key belong to a single run (--seed N)';
  if (values.scenario === undefined) return '--seeds needs --scenario all or a comma-separated list of scenarios';
  const names = values.scenario === 'all' ? [...SCENARIOS.keys()].filter((name) => !SWEEP_SKIPPED.has(name)) : values.scenario.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !SCENARIOS.has(name));
  if (unknown.length > 0 || names.length === 0) return `no scenario "${unknown.join('", "')}"; scenarios: all, ${[...SCENARIOS.keys()].join(', ')}`;
  const count = integer('--seeds', values.seeds ?? '', 1);
  const from = values.from === undefined ? 1 : integer('--from', values.from, 0, SEED_MAX);
  if (from + count - 1 > SEED_MAX) return `seeds ${from}..${from + count - 1} go past ${SEED_MAX}`;
  const jobs = values.jobs === undefined ? availableParallelism() : integer('--jobs', values.jobs, 1);
  const nodes = values.nodes === undefined ? undefined : integer('--nodes', values.nodes, 2);
  return { scenarios: [...new Set(names)], from, count, jobs, nodes };
}

async function sweep(values: Values): Promise<number> {
  const plan = sweepPlan(values);
  if (typeof plan === 'string') {
    console.error(`${plan}\n${USAGE}`);
    return 2;
  }
  const tasks: SweepTask[] = [];
  for (let seed = plan.from; seed < plan.from + plan.count; seed++) {
    for (const scenario of plan.scenarios) tasks.push({ scenario, seed, ...(plan.nodes === undefined ? {} : { nodes: plan.nodes }) });
  }
  const jobs = Math.min(plan.jobs, tasks.length);
  const range = `seeds ${plan.from}..${plan.from + plan.count - 1}`;
  const skipped = values.scenario === 'all' && SWEEP_SKIPPED.size > 0 ? ` (all but ${[...SWEEP_SKIPPED.keys()].join(', ')})` : '';
  console.log(`sweep: ${range} of ${plan.scenarios.join(', ')}${skipped}; ${tasks.length} runs on ${jobs} job${jobs === 1 ? '' : 's'}`);
  console.log(`repeat: npm run sim -- --seeds ${plan.count} --from ${plan.from} --scenario ${values.scenario}${plan.nodes === undefined ? '' : ` --nodes ${plan.nodes}`}`);
  const tallies = new Map(plan.scenarios.map((name) => [name, new Tally()]));
  const progress = new Progress(tasks.length);
  const interrupt = new Interrupt();
  const onResult = (result: SeedResult): void => {
    tallies.get(result.scenario)?.add(result);
    progress.count(result.ok);
    if (!result.ok) progress.print(failureLine(result));
  };
  const startedMs = performance.now();
  try {
    await (jobs === 1 ? runInProcess(tasks, interrupt, onResult) : runForked(tasks, jobs, interrupt, onResult));
  } finally {
    progress.stop();
    interrupt.close();
  }
  const wallMs = performance.now() - startedMs;
  console.log(summaryTable(tallies).join('\n'));
  const total = new Tally();
  for (const tally of tallies.values()) total.merge(tally);
  const stopped = interrupt.signal === undefined ? '' : `; interrupted by ${interrupt.signal} after ${total.runs} of ${tasks.length} runs`;
  console.log(`${range}: ${total.runs} runs, ${total.failed} failed, ${duration(wallMs)} wall time on ${jobs} job${jobs === 1 ? '' : 's'}${stopped}`);
  if (interrupt.signal !== undefined) return 130;
  return total.failed > 0 ? 1 : 0;
}

/** Runs one seed with the checkers of a single run, and never throws. */
function runSeed(task: SweepTask): SeedResult {
  const startedMs = performance.now();
  const defaultNodes = SCENARIOS.get(task.scenario)?.nodes ?? 0;
  const context = { scenario: task.scenario, seed: task.seed, nodes: task.nodes ?? defaultNodes, defaultNodes };
  const base = { scenario: task.scenario, seed: task.seed, command: replayCommand(context) };
  try {
    const { measurements } = runScenario(task.scenario, { seed: task.seed, ...(task.nodes === undefined ? {} : { nodes: task.nodes }) });
    return { ...base, ok: true, ms: performance.now() - startedMs, problems: [], problemCount: 0, figures: summed(measurements) };
  } catch (error) {
    const problems = error instanceof SimFailure ? error.problems : [`the run threw: ${error instanceof Error ? error.message : String(error)}`];
    const command = error instanceof SimFailure ? error.command : base.command;
    return { ...base, command, ok: false, ms: performance.now() - startedMs, problems: problems.slice(0, LINE_PROBLEMS_MAX).map(oneLine), problemCount: problems.length, figures: {} };
  }
}

function summed(measurements: Measurements): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const name of SUMMED) {
    const value = measurements[name];
    if (typeof value === 'number') figures[name] = value;
  }
  return figures;
}

function oneLine(problem: string): string {
  const line = problem.split('\n', 1)[0] ?? '';
  return line.length > PROBLEM_CHARS_MAX ? `${line.slice(0, PROBLEM_CHARS_MAX - 1)}…` : line;
}

function failureLine(result: SeedResult): string {
  const more = result.problemCount > result.problems.length ? `; … ${result.problemCount - result.problems.length} more` : '';
  return `FAIL ${result.scenario} seed ${result.seed}: ${result.problems.join('; ')}${more} (replay: ${result.command})`;
}

/** The worker side: runs each task the parent sends and reports it; leaves when the parent does. */
function serveSweep(): void {
  // Ctrl-C reaches the whole process group; the parent decides, and kills its workers.
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: unknown) => {
    if (isTask(message)) process.send?.(runSeed(message));
  });
}

function isTask(message: unknown): message is SweepTask {
  const task = message as Partial<SweepTask> | null;
  return typeof task === 'object' && task !== null && typeof task.scenario === 'string' && typeof task.seed === 'number';
}

function isResult(message: unknown): message is SeedResult {
  const result = message as Partial<SeedResult> | null;
  return isTask(message) && typeof result?.ok === 'boolean' && typeof result.ms === 'number' && Array.isArray(result.problems);
}

/** Runs the tasks one after the other in this process, yielding between seeds so progress and signals get through. */
async function runInProcess(tasks: readonly SweepTask[], interrupt: Interrupt, onResult: (result: SeedResult) => void): Promise<void> {
  for (const task of tasks) {
    if (interrupt.signal !== undefined) return;
    onResult(runSeed(task));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Runs the tasks in `jobs` forks of this script, one task at a time each, so a slow seed
 * never holds up the others. A worker that dies during a seed (out of memory, a native
 * crash) fails that seed and is replaced; one that dies before any worker finished a seed
 * means workers cannot run at all, and the sweep stops with that error.
 */
function runForked(tasks: readonly SweepTask[], jobs: number, interrupt: Interrupt, onResult: (result: SeedResult) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const workers = new Set<ChildProcess>();
    const killAll = (): void => {
      for (const worker of workers) worker.kill('SIGKILL');
    };
    process.on('exit', killAll);
    interrupt.onRaise(killAll);
    let next = 0;
    let anyReported = false;
    let broken: Error | undefined;
    const finish = (): void => {
      if (workers.size > 0) return;
      process.off('exit', killAll);
      if (broken === undefined) resolve();
      else reject(broken);
    };
    const start = (): void => {
      const worker = fork(SCRIPT, [WORKER_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.add(worker);
      let current: SweepTask | undefined;
      const assign = (): void => {
        current = interrupt.signal === undefined && broken === undefined ? tasks[next] : undefined;
        if (current !== undefined) {
          next++;
          worker.send(current);
        } else if (worker.connected) worker.disconnect();
      };
      worker.once('spawn', assign);
      worker.on('message', (message: unknown) => {
        if (current === undefined || !isResult(message)) return;
        anyReported = true;
        onResult(message);
        assign();
      });
      worker.on('error', (error) => {
        // A failed spawn never exits; any other error is followed by 'exit'.
        if (worker.pid !== undefined) return;
        broken ??= error;
        workers.delete(worker);
        finish();
      });
      worker.on('exit', (code, signal) => {
        workers.delete(worker);
        if (current !== undefined && interrupt.signal === undefined && broken === undefined) {
          if (!anyReported) broken = new Error(`a sweep worker exited before any seed finished (code ${code}, signal ${signal})`);
          else {
            onResult(died(current, code, signal));
            start();
          }
        }
        finish();
      });
    };
    for (let i = 0; i < jobs; i++) start();
  });
}

function died(task: SweepTask, code: number | null, signal: NodeJS.Signals | null): SeedResult {
  const defaultNodes = SCENARIOS.get(task.scenario)?.nodes ?? 0;
  const command = replayCommand({ scenario: task.scenario, seed: task.seed, nodes: task.nodes ?? defaultNodes, defaultNodes });
  const problem = `the worker process died during the run (code ${code}, signal ${signal})`;
  return { scenario: task.scenario, seed: task.seed, ok: false, ms: 0, problems: [problem], problemCount: 1, command, figures: {} };
}

/** Ctrl-C or SIGTERM: no new seed starts and the workers are killed; a second one exits at once. */
class Interrupt {
  signal: NodeJS.Signals | undefined;
  private readonly listeners: (() => void)[] = [];
  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.signal !== undefined) process.exit(130);
    this.signal = signal;
    for (const listener of this.listeners) listener();
  };

  constructor() {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  onRaise(listener: () => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

/** One scenario's results over a sweep. */
class Tally {
  runs = 0;
  passed = 0;
  failed = 0;
  ms = 0;
  msMax = 0;
  readonly sums = new Map<string, number>();

  add(result: SeedResult): void {
    this.runs++;
    if (result.ok) this.passed++;
    else this.failed++;
    this.ms += result.ms;
    this.msMax = Math.max(this.msMax, result.ms);
    for (const [name, value] of Object.entries(result.figures)) this.sums.set(name, (this.sums.get(name) ?? 0) + value);
  }

  merge(other: Tally): void {
    this.runs += other.runs;
    this.passed += other.passed;
    this.failed += other.failed;
    this.ms += other.ms;
    this.msMax = Math.max(this.msMax, other.msMax);
    for (const [name, value] of other.sums) this.sums.set(name, (this.sums.get(name) ?? 0) + value);
  }
}

/** The per-scenario table and a total row; a sum is `-` where no passing seed measured it. */
function summaryTable(tallies: ReadonlyMap<string, Tally>): string[] {
  const header = ['scenario', 'seeds', 'passed', 'failed', 'time s', 'ms/seed', 'max ms', ...SUMMED];
  const total = new Tally();
  for (const tally of tallies.values()) total.merge(tally);
  const rows = [...tallies].map(([name, tally]) => tallyRow(name, tally));
  const table = [header, ...rows, tallyRow('total', total)];
  const widths = header.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  return table.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
}

function tallyRow(name: string, tally: Tally): string[] {
  const mean = tally.runs === 0 ? 0 : tally.ms / tally.runs;
  const sums = SUMMED.map((key) => String(tally.sums.get(key) ?? '-'));
  return [name, String(tally.runs), String(tally.passed), String(tally.failed), (tally.ms / 1000).toFixed(1), String(Math.round(mean)), String(Math.round(tally.msMax)), ...sums];
}

/** Progress on stderr: redrawn in place on a terminal, a plain line now and then otherwise. */
class Progress {
  private done = 0;
  private failed = 0;
  private shown = false;
  private readonly startedMs = performance.now();
  private readonly tty = process.stderr.isTTY === true;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly total: number) {
    this.timer = setInterval(() => this.show(), this.tty ? PROGRESS_TTY_MS : PROGRESS_PLAIN_MS);
    this.timer.unref();
  }

  count(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
  }

  /** Prints a line on stdout, out of the way of the progress line. */
  print(text: string): void {
    this.clear();
    console.log(text);
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }

  private show(): void {
    const elapsedMs = performance.now() - this.startedMs;
    const left = this.done === 0 ? '' : `, about ${duration((elapsedMs / this.done) * (this.total - this.done))} left`;
    const line = `${duration(elapsedMs)}  ${this.done}/${this.total} runs (${((100 * this.done) / this.total).toFixed(1)}%), ${this.failed} failed${left}`;
    if (!this.tty) {
      console.error(line);
      return;
    }
    process.stderr.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  private clear(): void {
    if (!this.shown) return;
    process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

/** `m:ss`, or `h:mm:ss` past an hour. */
function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

// `npm run sim … | head` closes stdout early; that is not a failure of the run.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main();
