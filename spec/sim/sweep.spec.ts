/**
 * Proves the seed sweep of `npm run sim`: three seeds of two scenarios, run by two worker
 * processes with the checkers of a single run, all pass, the exit status is 0, and the
 * summary table accounts for every seed of both scenarios; bad usage exits with status 2
 * before anything runs.
 *
 * The script runs as a child process from the repository root, as a developer runs it. Each
 * child gets its own process group, so killing the group reaches the workers it forked too,
 * and every child still running is killed when a test ends, whether it passed or not.
 */

import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from '../support/processes.js';

/** A generous deadline: the sweep below takes about 12 s on an idle 2-core box. */
const SWEEP_DEADLINE_MS = 100_000;
const USAGE_DEADLINE_MS = 30_000;

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Runs `scripts/sim.ts` with `args` to completion; fails, after killing it, if it outlives `deadlineMs`. */
function sim(args: readonly string[], deadlineMs: number): Promise<Run> {
  console.log(`      node --import tsx scripts/sim.ts ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/sim.ts', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`sim ${args.join(' ')} did not finish within ${deadlineMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, deadlineMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      live.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The cells of the summary row of `scenario`: name, seeds, passed, failed, time, …. */
function summaryRow(stdout: string, scenario: string): string[] | undefined {
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cells) => cells[0] === scenario);
}

describe('sim: the seed sweep', function () {
  this.timeout(SWEEP_DEADLINE_MS + 20_000);

  afterEach(() => {
    for (const child of live) killGroup(child);
    live.clear();
  });

  it('runs 3 seeds of crdt-calm and replication-calm on 2 jobs, and the summary counts 3 of 3 passed for each', async () => {
    const run = await sim(['--seeds', '3', '--scenario', 'crdt-calm,replication-calm', '--jobs', '2'], SWEEP_DEADLINE_MS);
    const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect(run.code, context).to.equal(0);
    expect(run.stdout, context).to.include('seeds 1..3 of crdt-calm, replication-calm; 6 runs on 2 jobs');
    expect(run.stdout, context).to.not.include('FAIL');
    for (const scenario of ['crdt-calm', 'replication-calm']) {
      const row = summaryRow(run.stdout, scenario);
      expect(row, `no summary row for ${scenario}; ${context}`).to.not.equal(undefined);
      // seeds run, passed, failed
      expect(row?.slice(1, 4), `${scenario}'s row; ${context}`).to.deep.equal(['3', '3', '0']);
      // Both scenarios acknowledge operations, and neither injects a fault.
      expect(Number(row?.[7]), `${scenario}'s acknowledged operations; ${context}`).to.be.greaterThan(0);
      expect(row?.[9], `${scenario}'s faults; ${context}`).to.equal('0');
    }
    expect(summaryRow(run.stdout, 'total')?.slice(1, 4), context).to.deep.equal(['6', '6', '0']);
    expect(run.stdout, context).to.match(/seeds 1\.\.3: 6 runs, 0 failed/);
  });

  it('exits with status 2 on bad usage, before running anything', async () => {
    const cases: readonly (readonly string[])[] = [
      ['--seeds', '3'],
      ['--seeds', '3', '--scenario', 'crdt-calm,no-such-scenario'],
      ['--seeds', '3', '--seed', '4', '--scenario', 'crdt-calm'],
      ['--seeds', '0', '--scenario', 'crdt-calm'],
    ];
    const runs = await Promise.all(cases.map((args) => sim(args, USAGE_DEADLINE_MS)));
    runs.forEach((run, i) => {
      const context = `args: ${cases[i]?.join(' ')}; stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      expect(run.code, context).to.equal(2);
      expect(run.stdout, context).to.not.include('sweep:');
      expect(run.stderr, context).to.match(/usage:|must be an integer/);
    });
  });
});
