/**
 * Runs one simulation scenario from its seed and prints what it measured.
 *
 *   npm run sim -- --seed 42 --scenario crash [--nodes 20] [--trace 60]
 *   npm run sim -- --seed 7 --scenario replication --key k3
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
 */

import { parseArgs } from 'node:util';
import { SimFailure } from '../lib/sim/checkers.js';
import { runScenario, SCENARIOS } from '../lib/sim/scenarios.js';

const USAGE = 'usage: npm run sim -- --seed N --scenario NAME [--nodes N] [--trace LINES] [--key KEY] | --list';

function main(): number {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      scenario: { type: 'string' },
      nodes: { type: 'string' },
      trace: { type: 'string' },
      key: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const scenario of SCENARIOS.values()) console.log(`${scenario.name.padEnd(16)} ${String(scenario.nodes).padStart(3)} nodes  ${scenario.summary}`);
    return 0;
  }
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

function integer(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`${flag} must be an integer ≥ ${min}, got "${text}"`);
    process.exit(2);
  }
  return value;
}

// `npm run sim … | head` closes stdout early; that is not a failure of the run.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = main();
