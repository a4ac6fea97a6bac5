/**
 * `chorus put|get|del`: one request through the SDK, printed for a person or as JSON, with
 * the per-request consistency flags `--r`, `--pr` (get), `--w`, `--pw` (put, del) and
 * `--sloppy`/`--no-sloppy` (all three; without either, the node's default applies).
 */

import type { Command } from 'commander';
import { unreachable } from '../base/assert.js';
import type { Level } from '../codec/messages.js';
import { parseLevel, print, UsageError, withClient, type ClientFlags } from './client-command.js';

export interface DataFlags extends ClientFlags {
  readonly context?: string;
  readonly w?: string;
  readonly r?: string;
  readonly pw?: string;
  readonly pr?: string;
  /** true with --sloppy, false with --no-sloppy, undefined with neither. */
  readonly sloppy?: boolean;
}

type DataOp = 'put' | 'get' | 'del';

const LEVEL_FLAGS: Readonly<Record<DataOp, readonly (readonly [flag: string, help: string])[]>> = {
  put: [
    ['--w <level>', 'write quorum: one, quorum, all or a number'],
    ['--pw <level>', 'of those, how many must be primaries: one, quorum, all or a number'],
  ],
  del: [
    ['--w <level>', 'write quorum: one, quorum, all or a number'],
    ['--pw <level>', 'of those, how many must be primaries: one, quorum, all or a number'],
  ],
  get: [
    ['--r <level>', 'read quorum: one, quorum, all or a number'],
    ['--pr <level>', 'of those, how many must be primaries: one, quorum, all or a number'],
  ],
};

/** Adds the consistency flags of `op` to its command, skipping any the command already has. */
export function addDataOptions(command: Command, op: DataOp): Command {
  const has = (flag: string): boolean => command.options.some((option) => option.long === flag.split(' ')[0]);
  const flags: (readonly [string, string])[] = [
    ...LEVEL_FLAGS[op],
    ['--sloppy', 'let fallbacks stand in for primaries that are down (sloppy quorum)'],
    ['--no-sloppy', 'only primaries count towards the quorum'],
  ];
  for (const [flag, help] of flags) if (!has(flag)) command.option(flag, help);
  return command;
}

interface Consistency {
  r?: Level;
  w?: Level;
  pr?: Level;
  pw?: Level;
  sloppy?: boolean;
}

/** The consistency options the flags give, without the ones not given. */
export function consistency(flags: DataFlags): Consistency {
  const out: Consistency = {};
  const levels = { w: parseLevel(flags.w, 'w', 1), r: parseLevel(flags.r, 'r', 1), pw: parseLevel(flags.pw, 'pw'), pr: parseLevel(flags.pr, 'pr') };
  for (const name of ['r', 'w', 'pr', 'pw'] as const) {
    const level = levels[name];
    if (level !== undefined) out[name] = level;
  }
  if (flags.sloppy !== undefined) out.sloppy = flags.sloppy;
  return out;
}

function parseValue(text: string, json: boolean): unknown {
  if (!json) return text;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`VALUE is not valid JSON: ${(error as Error).message}`);
  }
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export async function runDataCommand(op: DataOp, args: { bucket: string; key: string; value?: string }, flags: DataFlags): Promise<number> {
  const prepare = () => ({
    levels: consistency(flags),
    value: op === 'put' ? parseValue(args.value ?? '', flags.json === true) : undefined,
  });
  return withClient(flags, prepare, async (client, { levels, value }) => {
    const { r, pr, ...writeLevels } = levels;
    const readLevels = { ...(r !== undefined ? { r } : {}), ...(pr !== undefined ? { pr } : {}), ...(levels.sloppy !== undefined ? { sloppy: levels.sloppy } : {}) };
    const common = { ...(flags.context !== undefined ? { context: flags.context } : {}), ...writeLevels };
    switch (op) {
      case 'put': {
        const result = await client.put(args.bucket, args.key, value, common);
        print(flags, result, () => `ok (${result.siblings} ${result.siblings === 1 ? 'value' : 'siblings'})${result.context ? `\ncontext: ${result.context}` : ''}`);
        return 0;
      }
      case 'get': {
        const result = await client.get(args.bucket, args.key, readLevels);
        print(flags, result, () => (result.found ? result.values.map(show).join('\n') + `\ncontext: ${result.context}` : ''));
        if (!result.found && flags.json !== true) process.stderr.write('not found\n');
        return result.found ? 0 : 1;
      }
      case 'del': {
        await client.delete(args.bucket, args.key, common);
        print(flags, { deleted: true }, () => 'deleted');
        return 0;
      }
      default:
        return unreachable(op);
    }
  });
}
