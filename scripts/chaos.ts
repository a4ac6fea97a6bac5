/**
 * `npm run chaos`: real Chorus nodes under load while a seeded nemesis kills, pauses,
 * partitions, wipes and skews the wall clocks of them; then heal, converge, and check that
 * nothing acknowledged was lost (issue 7; TESTING.md lists the faults and the checkers).
 *
 *   npm run chaos -- [--nodes 5] [--duration 60] [--faults kill,pause,partition,wipe,skew]
 *                    [--seed N] [--clients 4] [--report DIR]        (--help for every option)
 *
 * With partitions enabled and root, the script re-executes itself inside private network
 * and PID namespaces (scripts/chaos/netns.ts), so its firewall rules never touch the host and
 * no node can outlive it; without root, iptables or unshare, partitions are skipped with a
 * message and the other faults still run. Clock skew needs libfaketime (Debian `faketime`),
 * and is skipped the same way without it.
 *
 * It prints a summary, writes a report directory (history.jsonl, faults.json, verdict.json,
 * timeline.svg, logs/), and exits 0 when every check passed, 1 when one failed (or the run
 * could not complete), 2 on bad usage and 130 when interrupted. Ctrl-C or SIGTERM at any
 * point kills every node, removes the firewall chain and the data directories, and writes
 * the report of what ran so far.
 */

import { spawn } from 'node:child_process';
import { buildState, CLI, ROOT } from './bench/children.js';
import { insideNamespace, partitionUnsupported, reexecInNamespace } from './chaos/netns.js';
import { parseOptions, UsageError, USAGE, type ChaosOptions } from './chaos/options.js';
import { ChaosRun } from './chaos/run.js';

function say(line: string): void {
  process.stdout.write(`[chaos] ${line}\n`);
}

async function build(options: ChaosOptions): Promise<void> {
  const state = buildState();
  if (state === 'fresh') return;
  if (options.noBuild) {
    if (state === 'missing') throw new Error(`${CLI} is missing; run without --no-build (or npm run build)`);
    say('lib/ is newer than dist/; running what dist/ holds (--no-build)');
    return;
  }
  say(state === 'missing' ? 'dist/ is missing: building (npm run build)' : 'lib/ changed since the last build: building (npm run build)');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (c) => resolve(c));
    child.on('error', () => resolve(null));
  });
  if (code !== 0) throw new Error('the build failed (see above); fix it, or pass --no-build to run what dist/ holds');
}

async function main(): Promise<number> {
  let options: ChaosOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`chaos: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!insideNamespace()) {
    await build(options);
    if (options.faults.includes('partition') && partitionUnsupported() === undefined) {
      say('partitions enabled: running inside private network and PID namespaces (unshare --net --pid)');
      return reexecInNamespace();
    }
  }
  return runOnce(options);
}

async function runOnce(options: ChaosOptions): Promise<number> {
  const run = new ChaosRun(options, say);
  say(`seed ${options.seed}; report in ${options.reportDir}`);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping every node, removing the firewall chain and the data directories`);
    void (async () => {
      const verdict = run.report([], `interrupted by ${signal}`);
      await run.cleanup();
      process.stdout.write(`${run.summary(verdict)}\n`);
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const verdict = await run.run();
    await run.cleanup();
    process.stdout.write(`\n${run.summary(verdict)}\n`);
    return verdict.passed ? 0 : 1;
  } catch (error) {
    if (interrupted) return new Promise<number>(() => undefined);
    say(`the run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    const verdict = run.report([], `error: ${error instanceof Error ? error.message : String(error)}`);
    await run.cleanup();
    process.stdout.write(`\n${run.summary(verdict)}\n`);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
