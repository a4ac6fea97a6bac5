/**
 * `chorus counter|set|doc`: typed buckets from the command line, for quick use.
 *
 * - `chorus counter get|inc|dec BUCKET KEY [N]`
 * - `chorus set members|add|remove BUCKET KEY [MEMBER...]`
 * - `chorus doc get|append BUCKET KEY [TEXT] [--field NAME]`: the text of one `Y.Text` of a
 *   Yjs document, and appending to it (the command reads the document, edits a local copy and
 *   sends only the update).
 *
 * Consistency flags are those of put (updates) and get (reads).
 */

import * as Y from 'yjs';
import { unreachable } from '../base/assert.js';
import { print, UsageError, withClient } from './client-command.js';
import { consistency, type DataFlags } from './data-commands.js';

export interface TypedFlags extends DataFlags {
  readonly field?: string;
}

export type CounterAction = 'get' | 'inc' | 'dec';
export type SetAction = 'members' | 'add' | 'remove';
export type DocAction = 'get' | 'append';

function levels(flags: DataFlags): { read: Record<string, unknown>; write: Record<string, unknown> } {
  const { r, pr, w, pw, sloppy } = consistency(flags);
  const read = { ...(r !== undefined ? { r } : {}), ...(pr !== undefined ? { pr } : {}), ...(sloppy !== undefined ? { sloppy } : {}) };
  const write = { ...(w !== undefined ? { w } : {}), ...(pw !== undefined ? { pw } : {}), ...(sloppy !== undefined ? { sloppy } : {}) };
  return { read, write };
}

function amount(text: string | undefined): number {
  if (text === undefined) return 1;
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`N must be a whole number, got ${text}`);
  return Number(text);
}

export async function runCounter(action: CounterAction, args: { bucket: string; key: string; n?: string }, flags: DataFlags): Promise<number> {
  return withClient(
    flags,
    () => ({ ...levels(flags), by: amount(args.n) }),
    async (client, { read, write, by }) => {
      const counter = client.counter(args.bucket, args.key);
      switch (action) {
        case 'get': {
          const value = await counter.value(read);
          print(flags, { value }, () => String(value));
          return 0;
        }
        case 'inc':
        case 'dec': {
          const result = await (action === 'inc' ? counter.increment(by, { ...write, returnValue: true }) : counter.decrement(by, { ...write, returnValue: true }));
          print(flags, { value: result.value }, () => String(result.value));
          return 0;
        }
        default:
          return unreachable(action);
      }
    },
  );
}

export async function runSet(action: SetAction, args: { bucket: string; key: string; members: string[] }, flags: DataFlags): Promise<number> {
  return withClient(
    flags,
    () => {
      if (action !== 'members' && args.members.length === 0) throw new UsageError(`set ${action} needs at least one MEMBER`);
      return levels(flags);
    },
    async (client, { read, write }) => {
      const set = client.set(args.bucket, args.key);
      switch (action) {
        case 'members': {
          const members = await set.members(read);
          print(flags, { members }, () => members.join('\n'));
          return 0;
        }
        case 'add':
        case 'remove': {
          const options = { ...write, returnValue: true };
          const result = await (action === 'add' ? set.addAll(args.members, options) : set.removeAll(args.members, options));
          const members = result.value as string[];
          print(flags, { members }, () => members.join('\n'));
          return 0;
        }
        default:
          return unreachable(action);
      }
    },
  );
}

export async function runDoc(action: DocAction, args: { bucket: string; key: string; text?: string }, flags: TypedFlags): Promise<number> {
  return withClient(
    flags,
    () => {
      if (action === 'append' && (args.text === undefined || args.text === '')) throw new UsageError('doc append needs TEXT');
      return { ...levels(flags), field: flags.field ?? 'text' };
    },
    async (client, { read, write, field }) => {
      const handle = client.doc(args.bucket, args.key);
      const local = new Y.Doc();
      Y.applyUpdate(local, await handle.state(read));
      const text = local.getText(field);
      if (action === 'append') {
        const before = Y.encodeStateVector(local);
        text.insert(text.length, args.text as string);
        await handle.applyUpdate(Y.encodeStateAsUpdate(local, before), write);
      } else if (action !== 'get') {
        return unreachable(action);
      }
      const content = text.toString();
      print(flags, { field, text: content }, () => content);
      return 0;
    },
  );
}
