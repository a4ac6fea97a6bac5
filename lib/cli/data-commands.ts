/** `chorus put|get|del`: one request through the SDK, printed for a person or as JSON. */

import { unreachable } from '../base/assert.js';
import { parseLevel, print, UsageError, withClient, type ClientFlags } from './client-command.js';

export interface DataFlags extends ClientFlags {
  readonly context?: string;
  readonly w?: string;
  readonly r?: string;
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
  const prepare = () => ({
    w: parseLevel(flags.w, 'w', 1),
    r: parseLevel(flags.r, 'r', 1),
    value: op === 'put' ? parseValue(args.value ?? '', flags.json === true) : undefined,
  });
  return withClient(flags, prepare, async (client, { w, r, value }) => {
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
  });
}
