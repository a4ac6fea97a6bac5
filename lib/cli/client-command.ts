/**
 * What every CLI command that talks to a node shares: the connection flags, one SDK client
 * for the duration of the command, level and usage parsing, and the exit codes (0 ok, 1 an
 * error from the node or the network, 2 bad usage).
 */

import { ChorusError } from '../base/errors.js';
import { connect, type Client } from '../client/client.js';
import type { Level } from '../codec/messages.js';

export interface ClientFlags {
  readonly node: string;
  readonly cluster: string;
  readonly secret?: string;
  readonly timeout: string;
  readonly json?: boolean;
}

/** A mistake in the command line itself: exit code 2. */
export class UsageError extends Error {}

/** `one`, `quorum`, `all` or a whole number from `min`; undefined when the flag was not given. */
export function parseLevel(text: string | undefined, name: string, min = 0): Level | undefined {
  if (text === undefined) return undefined;
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (/^\d{1,3}$/.test(text) && Number(text) >= min && Number(text) <= 255) return Number(text);
  throw new UsageError(`--${name} must be one, quorum, all or a number from ${min} to 255, got ${text}`);
}

/**
 * Checks the command line (`prepare`, before any connection, so a usage mistake is exit 2
 * even when the node is down), connects to `--node`, runs the command, closes the client,
 * and turns failures into exit codes.
 */
export async function withClient<T>(flags: ClientFlags, prepare: () => T, run: (client: Client, prepared: T) => Promise<number>): Promise<number> {
  let client: Client | undefined;
  try {
    const timeoutMs = Number(flags.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got ${flags.timeout}`);
    const prepared = prepare();
    // A command talks to `--node` alone: it forwards data requests to replicas, and admin requests act on it.
    client = await connect({ nodes: [flags.node], cluster: flags.cluster, secret: flags.secret ?? null, timeoutMs, connectTimeoutMs: timeoutMs, discover: false });
    return await run(client, prepared);
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

/** Prints a result as JSON with --json, otherwise as the text `text()` renders (nothing when empty). */
export function print(flags: ClientFlags, result: unknown, text: () => string): void {
  const out = flags.json === true ? JSON.stringify(result) : text();
  if (out !== '') process.stdout.write(out + '\n');
}
