/**
 * Proves, with real `chorus start` processes, that the cluster loses nothing acknowledged
 * under faults, and that the chaos harness can tell when it does.
 *
 * - A run of scripts/chaos.ts: 3 nodes under load for 35 s while a seeded nemesis kills and
 *   pauses nodes (and partitions them, when this runs as root with iptables and unshare);
 *   then heal, converge, read everything at r=all, and every check must pass: no
 *   acknowledged write lost, no zombie, no phantom, replicas equal, cluster healthy, every
 *   fault took effect.
 * - The canary: the same harness against nodes started with CHORUS_TEST_FAULT=
 *   ack-before-durable (a replica acknowledges writes a second before its store has them),
 *   under kills, must report lost writes. A checker that cannot fail proves nothing.
 * - An unknown test fault stops a node at start-up, so a misspelt canary cannot pass.
 * - Ctrl-C in the middle of a run leaves no process, data directory or firewall rule behind.
 *
 * The harness runs as a child process in its own process group; whatever happens, the spec
 * stops it (SIGTERM, which makes it clean up; SIGKILL after a deadline), and the harness's own
 * clean-up is checked: no process still names the run's data directory, the directory is
 * gone, and the host's firewall has no chain of ours. Every run prints its seed and the
 * command that repeats it; CHORUS_TEST_CHAOS_SEED fixes the seed.
 */

import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHAIN, partitionUnsupported } from '../../scripts/chaos/netns.js';
import type { Verdict } from '../../scripts/chaos/report.js';
import { CLI, ROOT, runCli } from '../support/processes.js';

const SCRIPT = join(ROOT, 'scripts/chaos.ts');
/** A run's own deadline beyond its load: start-up, healing, convergence, final reads. */
const RUN_OVERHEAD_MS = 90_000;
/** After SIGTERM, the harness has this long to clean up before it is killed. */
const CLEANUP_DEADLINE_MS = 20_000;

interface ChaosResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly verdict: Verdict | undefined;
  readonly reportDir: string;
}

const running = new Set<ChildProcess>();
const reports: string[] = [];

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Stops a harness still running: SIGTERM (it cleans up), SIGKILL after the deadline. */
async function stopHarness(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), CLEANUP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

process.on('exit', () => {
  for (const child of running) signalGroup(child, 'SIGKILL');
});

function seedOf(): number {
  const fixed = process.env.CHORUS_TEST_CHAOS_SEED;
  return fixed !== undefined && fixed !== '' ? Number(fixed) : 1 + Math.floor(Math.random() * 2 ** 31);
}

/**
 * Runs the harness with `args`; `onLine` sees each line of its output as it comes. Resolves
 * when it exits, or after `timeoutMs`, once it has been stopped.
 */
function runChaos(args: readonly string[], timeoutMs: number, onLine?: (line: string, child: ChildProcess) => void): Promise<ChaosResult> {
  const reportDir = mkdtempSync(join(tmpdir(), 'chorus-chaos-report-'));
  reports.push(reportDir);
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args, '--no-build', '--report', reportDir], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHORUS_'))),
  });
  running.add(child);
  let output = '';
  let buffered = '';
  const take = (data: Buffer): void => {
    const text = data.toString();
    output += text;
    buffered += text;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine?.(buffered.slice(0, newline), child);
      buffered = buffered.slice(newline + 1);
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output += `\n(spec: the harness did not finish within ${timeoutMs} ms; stopping it)\n`;
      void stopHarness(child);
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const file = join(reportDir, 'verdict.json');
      const verdict = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Verdict) : undefined;
      resolve({ code, signal, output, verdict, reportDir });
    });
  });
}

/** Processes whose command line names `text` (a run's data directory). */
function processesNaming(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.slice(0, 200)}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Nothing of the run is left: processes, data directory, firewall chain on the host. */
function expectNoLeftovers(result: ChaosResult): void {
  const dataDir = result.verdict?.dataDir;
  expect(dataDir, 'the verdict names the data directory').to.be.a('string');
  expect(processesNaming(dataDir as string), 'node processes left running').to.deep.equal([]);
  expect(existsSync(dataDir as string), `${dataDir} still exists`).to.equal(false);
  if (process.platform === 'linux' && process.getuid?.() === 0) {
    const rules = spawnSync('iptables', ['-S'], { encoding: 'utf8' });
    if (rules.status === 0) expect(rules.stdout, 'a firewall chain of the harness on the host').to.not.include(CHAIN);
  }
}

function describeRun(result: ChaosResult): string {
  return `exit ${result.code ?? result.signal}; report ${result.reportDir}\n${result.output.split('\n').slice(-60).join('\n')}`;
}

describe('chaos: real nodes under kill, pause and partition', function () {
  this.timeout(4 * 60_000);

  const partitionSkip = partitionUnsupported();
  const faults = partitionSkip === undefined ? 'kill,pause,partition' : 'kill,pause';

  after(async () => {
    await Promise.all([...running].map(stopHarness));
  });

  afterEach(function () {
    // A failing run keeps its report for whoever investigates; a passing one is removed.
    const failed = this.currentTest?.state === 'failed';
    for (const dir of reports.splice(0)) {
      if (failed) console.log(`      report kept: ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`3 nodes, 35 s of load under ${faults}: every check passes`, async () => {
    if (partitionSkip !== undefined) console.log(`      partitions skipped: ${partitionSkip}`);
    const seed = seedOf();
    const args = ['--nodes', '3', '--duration', '35', '--clients', '4', '--faults', faults, '--seed', String(seed)];
    console.log(`      seed ${seed}; repeat: CHORUS_TEST_CHAOS_SEED=${seed} npx mocha spec/chaos, or npm run chaos -- ${args.join(' ')}`);
    const result = await runChaos(args, 35_000 + RUN_OVERHEAD_MS);
    const verdict = result.verdict;
    expect(verdict, `no verdict was written; ${describeRun(result)}`).to.not.equal(undefined);
    const failed = (verdict as Verdict).checks.filter((c) => !c.passed);
    expect(failed.map((c) => `${c.name}: ${c.summary}\n  ${c.examples.join('\n  ')}`), describeRun(result)).to.deep.equal([]);
    expect(result.code, describeRun(result)).to.equal(0);
    expect((verdict as Verdict).checks.map((c) => c.name)).to.deep.equal(['registers', 'replicas', 'health', 'nemesis', 'typed']);
    const kinds = new Set((verdict as Verdict).faults.map((e) => e.kind));
    for (const kind of faults.split(',')) expect(kinds.has(kind as never), `no ${kind} episode ran; ${describeRun(result)}`).to.equal(true);
    const registers = (verdict as Verdict).checks[0];
    expect(registers?.counts.acknowledgedPuts, 'acknowledged puts').to.be.greaterThan(500);
    expectNoLeftovers(result);
    console.log(`      ${registers?.summary}`);
  });

  it('a deliberately broken build (ack-before-durable) under kills: the checker reports lost writes', async () => {
    const seed = seedOf();
    const args = ['--nodes', '3', '--duration', '15', '--clients', '4', '--faults', 'kill', '--seed', String(seed), '--test-fault', 'ack-before-durable'];
    console.log(`      seed ${seed}; repeat: npm run chaos -- ${args.join(' ')}`);
    const result = await runChaos(args, 15_000 + RUN_OVERHEAD_MS);
    const verdict = result.verdict;
    expect(verdict, `no verdict was written; ${describeRun(result)}`).to.not.equal(undefined);
    const registers = (verdict as Verdict).checks.find((c) => c.name === 'registers');
    expect(registers?.passed, `the broken build passed the register check; ${describeRun(result)}`).to.equal(false);
    expect(registers?.counts.lost, `no lost write reported; ${describeRun(result)}`).to.be.greaterThan(0);
    expect(result.code, 'a failed check exits 1').to.equal(1);
    expectNoLeftovers(result);
    console.log(`      ${registers?.summary}`);
  });

  it('an unknown test fault stops a node at start-up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chorus-chaos-spec-'));
    try {
      const result = await runCli(['start', '--port', '0', '--data', dataDir], { env: { CHORUS_TEST_FAULT: 'ack-before-durabel' } });
      expect(result.code, result.stderr).to.equal(2);
      expect(result.stderr).to.include('unknown test fault "ack-before-durabel"');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(existsSync(CLI)).to.equal(true);
  });

  it('Ctrl-C during the load leaves no process, data directory or firewall rule', async () => {
    const seed = seedOf();
    let interrupted = false;
    const result = await runChaos(['--nodes', '3', '--duration', '60', '--faults', faults, '--seed', String(seed)], 60_000 + RUN_OVERHEAD_MS, (line, child) => {
      // Interrupted once the load runs: nodes up, clients connected, the nemesis armed.
      if (!interrupted && line.includes('[chaos] load:')) {
        interrupted = true;
        setTimeout(() => signalGroup(child, 'SIGINT'), 2000);
      }
    });
    expect(interrupted, `the load never started; ${describeRun(result)}`).to.equal(true);
    expect(result.code, describeRun(result)).to.equal(130);
    expect(result.verdict?.aborted, 'the verdict says the run was interrupted').to.match(/interrupted by SIGINT/);
    expect(result.verdict?.passed).to.equal(false);
    expectNoLeftovers(result);
  });
});
