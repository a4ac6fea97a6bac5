/**
 * The chaos run's command line: what to start, for how long, which faults, and where the
 * report goes. Every option is checked here, so a run never starts half-configured.
 */

import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TEST_FAULTS } from '../../lib/runtime/test-faults.js';
import { ROOT } from '../bench/children.js';

export const FAULT_KINDS = ['kill', 'pause', 'partition', 'wipe', 'skew'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Loopback addresses 127.0.0.1 … 127.0.0.N; 127.0.0.254 is kept for the clients inside a namespace. */
export const NODES_MAX = 200;

export interface ChaosOptions {
  readonly nodes: number;
  /** Seconds of load while the nemesis runs. */
  readonly durationS: number;
  readonly faults: readonly FaultKind[];
  readonly seed: number;
  readonly clients: number;
  readonly keys: number;
  readonly reportDir: string;
  /** Passed to every node as CHORUS_TEST_FAULT: a deliberately broken build the checker must catch. */
  readonly testFault: string | undefined;
  /** Seconds the cluster has to converge after healing. */
  readonly convergeTimeoutS: number;
  /** Run what dist/ holds even when lib/ is newer. */
  readonly noBuild: boolean;
}

export const USAGE = `Usage: npm run chaos -- [options]    (or: npx tsx scripts/chaos.ts [options])

  --nodes N              nodes to start on 127.0.0.1 … 127.0.0.N (default 5, at least 3)
  --duration S           seconds of load while faults run (default 60)
  --faults LIST          comma-separated: ${FAULT_KINDS.join(', ')}; or none (default all)
                         kill: SIGKILL a minority, restart; pause: SIGSTOP, SIGCONT;
                         partition: DROP rules between two sides (root, iptables, unshare);
                         wipe: kill, delete the data, restart (once per run);
                         skew: restart one node with its wall clock off by -3d … +7d (libfaketime)
  --seed N               seed of the fault schedule and the workload (default random, printed)
  --clients N            concurrent SDK clients (default 4)
  --keys N               keys the clients share (default 4 per client)
  --report DIR           report directory (default chaos-reports/<time>-seed<N>)
  --converge-timeout S   seconds the healed cluster has to converge (default 60)
  --test-fault NAME      run deliberately broken nodes (CHORUS_TEST_FAULT), e.g. ack-before-durable
  --no-build             run what dist/ holds even when lib/ is newer
  --help                 this text

Exit codes: 0 every check passed, 1 a check failed, 2 bad usage, 130 interrupted.`;

export class UsageError extends Error {}

export function parseOptions(argv: readonly string[]): ChaosOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        nodes: { type: 'string', default: '5' },
        duration: { type: 'string', default: '60' },
        faults: { type: 'string', default: FAULT_KINDS.join(',') },
        seed: { type: 'string' },
        clients: { type: 'string', default: '4' },
        keys: { type: 'string' },
        report: { type: 'string' },
        'converge-timeout': { type: 'string', default: '60' },
        'test-fault': { type: 'string' },
        'no-build': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const flags = parsed.values;
  if (flags.help) return 'help';
  const nodes = integer('--nodes', flags.nodes, 3, NODES_MAX);
  const clients = integer('--clients', flags.clients, 1, 64);
  const seed = flags.seed === undefined ? randomInt(1, 2 ** 31) : integer('--seed', flags.seed, 0, 2 ** 32 - 1);
  const reportDir = flags.report ?? join(ROOT, 'chaos-reports', `${new Date().toISOString().replace(/[:.]/g, '-')}-seed${seed}`);
  return {
    nodes,
    durationS: number('--duration', flags.duration, 1, 24 * 3600),
    faults: faultList(flags.faults),
    seed,
    clients,
    keys: flags.keys === undefined ? clients * 4 : integer('--keys', flags.keys, 1, 100_000),
    reportDir,
    testFault: testFault(flags['test-fault']),
    convergeTimeoutS: number('--converge-timeout', flags['converge-timeout'], 1, 3600),
    noBuild: flags['no-build'],
  };
}

function testFault(name: string | undefined): string | undefined {
  if (name === undefined || (TEST_FAULTS as readonly string[]).includes(name)) return name;
  throw new UsageError(`--test-fault: unknown test fault ${JSON.stringify(name)}; known: ${TEST_FAULTS.join(', ')}`);
}

function faultList(text: string): FaultKind[] {
  if (text.trim() === '' || text.trim() === 'none') return [];
  const kinds = text.split(',').map((s) => s.trim());
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--faults: unknown fault ${JSON.stringify(kind)}; known: ${FAULT_KINDS.join(', ')}`);
  }
  return [...new Set(kinds as FaultKind[])];
}

function number(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) throw new UsageError(`${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = number(flag, text, min, max);
  if (!Number.isInteger(value)) throw new UsageError(`${flag}: expected a whole number, got ${JSON.stringify(text)}`);
  return value;
}

/** The command that repeats a run's fault schedule. */
export function replayCommand(options: ChaosOptions): string {
  const parts = ['npm run chaos --', `--nodes ${options.nodes}`, `--duration ${options.durationS}`, `--faults ${options.faults.length === 0 ? 'none' : options.faults.join(',')}`, `--seed ${options.seed}`, `--clients ${options.clients}`];
  if (options.keys !== options.clients * 4) parts.push(`--keys ${options.keys}`);
  if (options.testFault !== undefined) parts.push(`--test-fault ${options.testFault}`);
  return parts.join(' ');
}
