/** `chorus put|get|del`: one request through the SDK, printed for a person or as JSON. */

import { unreachable } from '../base/assert.js';
import { ChorusError } from '../base/errors.js';
import { connect, type Client } from '../client/client.js';
import type { Level } from '../codec/messages.js';

export interface DataFlags {
  readonly node: string;
  readonly cluster: string;
  readonly secret?: string;
  readonly timeout: string;
  readonly json?: boolean;
  readonly context?: string;
  readonly w?: string;
  readonly r?: string;
}

class UsageError extends Error {}

function level(text: string | undefined, name: string): Level | undefined {
  if (text === undefined) return undefined;
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (/^\d{1,3}$/.test(text)) return Number(text);
  throw new UsageError(`--${name} must be one, quorum, all or a number, got ${text}`);
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

export async function runDataCommand(op: 'put' | 'get' | 'del', args: { bucket: string; key: string; value?: string }, flags: DataFlags): Promise<number> {
  let client: Client | undefined;
  try {
    const timeoutMs = Number(flags.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got ${flags.timeout}`);
    const w = level(flags.w, 'w');
    const r = level(flags.r, 'r');
    const value = op === 'put' ? parseValue(args.value ?? '', flags.json === true) : undefined;
    client = await connect({ nodes: [flags.node], cluster: flags.cluster, secret: flags.secret ?? null, timeoutMs, connectTimeoutMs: timeoutMs });
    const common = { ...(flags.context !== undefined ? { context: flags.context } : {}), ...(w !== undefined ? { w } : {}) };
    switch (op) {
      case 'put': {
        const result = await client.put(args.bucket, args.key, value, common);
        print(flags, result, () => `ok (${result.siblings} ${result.siblings === 1 ? 'value' : 'siblings'})${result.context ? `\ncontext: ${result.context}` : ''}`);
        return 0;
      }
      case 'get': {
        const result = await client.get(args.bucket, args.key, r !== undefined ? { r } : {});
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
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`chorus: ${error.message}\n`);
      return 2;
    }
    if (flags.json === true && error instanceof ChorusError) process.stdout.write(JSON.stringify({ error: error.toJSON() }) + '\n');
    process.stderr.write(`chorus: ${error instanceof ChorusError ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await client?.close();
  }
}

function print(flags: DataFlags, result: unknown, text: () => string): void {
  const out = flags.json === true ? JSON.stringify(result) : text();
  if (out !== '') process.stdout.write(out + '\n');
}
