/**
 * Operator commands over the authenticated client connection: `status`, `leave`,
 * `bucket set` and `bucket list`.
 *
 * `status` prints the member table as the node sees it, with a legend, and exits 2 when any
 * member that has not left is suspect or dead, so scripts and health checks can use it.
 */

import type { Client } from '../client/client.js';
import { decodeValue } from '../codec/cbor.js';
import type { Level } from '../codec/messages.js';
import { parseLevel, UsageError, withClient, type ClientFlags } from './client-command.js';

export type AdminFlags = ClientFlags;

interface StatusRow {
  readonly id: string;
  readonly addr: string;
  readonly zone: string;
  readonly status: string;
  readonly live: string;
  readonly inc: number;
  readonly heardMsAgo: number | null;
}

interface HintRow {
  readonly target: string;
  readonly pending: number;
  readonly delivered: number;
  readonly dropped: number;
}

interface StatusResult {
  readonly node: string;
  readonly joined: boolean;
  readonly localHealth: number;
  readonly members: StatusRow[];
  readonly replication?: { readonly hintsPending: number; readonly hints: readonly HintRow[]; readonly readRepairs: number };
}

export const LEGEND = [
  'status:   joining (its ranges are being streamed to it) · up · leaving (handing its ranges over) · left (departed gracefully)',
  'liveness: alive · suspect (missed probes; will be declared dead unless it refutes) · dead',
  'inc:      incarnation, raised by a member to refute a suspicion or when it restarts',
  'heard:    time since this node last heard from the member directly',
].join('\n');

/** Runs an operator command against `--node`; exit codes as for every client command. */
export function runAdmin(flags: AdminFlags, run: (client: Client) => Promise<number>, prepare: () => void = () => undefined): Promise<number> {
  return withClient(flags, prepare, (client) => run(client));
}

export async function status(client: Client, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('status')) as StatusResult;
  const unhealthy = result.members.filter((m) => m.status !== 'left' && m.live !== 'alive');
  if (flags.json === true) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(renderStatus(result) + '\n');
  }
  return unhealthy.length > 0 ? 2 : 0;
}

export function renderStatus(result: StatusResult): string {
  const header = ['ID', 'ADDRESS', 'ZONE', 'STATUS', 'LIVENESS', 'INC', 'HEARD'];
  const rows = result.members.map((m) => [
    m.id === result.node ? `${m.id} (this node)` : m.id,
    m.addr,
    m.zone,
    m.status,
    m.live,
    String(m.inc),
    m.heardMsAgo === null ? (m.id === result.node ? '-' : 'never') : formatAge(m.heardMsAgo),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  const counts = ['alive', 'suspect', 'dead'].map((live) => `${result.members.filter((m) => m.live === live && m.status !== 'left').length} ${live}`);
  const summary = `${result.members.length} members: ${counts.join(', ')}, ${result.members.filter((m) => m.status === 'left').length} left${result.joined ? '' : ' (this node has not joined yet)'}`;
  const hints = result.replication?.hints.filter((h) => h.pending > 0 || h.dropped > 0) ?? [];
  const handoff =
    hints.length === 0
      ? 'hints: none pending'
      : `hints: ${hints.map((h) => `${h.pending} for ${h.target}${h.dropped > 0 ? ` (${h.dropped} dropped over budget)` : ''}`).join(', ')}`;
  return [line(header), ...rows.map(line), '', summary, handoff, '', LEGEND].join('\n');
}

function formatAge(ms: number): string {
  return ms < 1000 ? `${ms}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

export interface LeaveFlags extends AdminFlags {
  /** Leave even though fewer than n nodes would remain. */
  readonly force?: boolean;
}

export async function leave(client: Client, flags: LeaveFlags): Promise<number> {
  const result = (await client.admin('leave', flags.force === true ? { force: true } : {})) as { node: string; status: string };
  const text =
    result.status === 'leaving'
      ? `${result.node} is leaving: it hands its ranges to their new owners and is marked left when done (chorus transfers --node ${flags.node} shows the progress)`
      : `${result.node} is ${result.status}`;
  process.stdout.write(flags.json === true ? JSON.stringify(result) + '\n' : text + '\n');
  return 0;
}

export interface BucketFlags extends AdminFlags {
  readonly n?: string;
  readonly r?: string;
  readonly w?: string;
  readonly type?: string;
}

const TYPES = ['kv', 'counter', 'set', 'map', 'register', 'flag', 'doc'] as const;

/** The properties `bucket set` asks for; throws UsageError for a bad flag. */
export function bucketProps(flags: BucketFlags): { n?: number; r?: Level; w?: Level; type?: (typeof TYPES)[number] } {
  const props: { n?: number; r?: Level; w?: Level; type?: (typeof TYPES)[number] } = {};
  if (flags.n !== undefined) {
    if (!/^\d{1,2}$/.test(flags.n) || Number(flags.n) < 1 || Number(flags.n) > 16) throw new UsageError(`--n must be a number from 1 to 16, got ${flags.n}`);
    props.n = Number(flags.n);
  }
  const r = parseLevel(flags.r, 'r', 1);
  const w = parseLevel(flags.w, 'w', 1);
  if (r !== undefined) props.r = r;
  if (w !== undefined) props.w = w;
  if (flags.type !== undefined) {
    if (!(TYPES as readonly string[]).includes(flags.type)) throw new UsageError(`--type must be one of ${TYPES.join(', ')}, got ${flags.type}`);
    props.type = flags.type as (typeof TYPES)[number];
  }
  if (Object.keys(props).length === 0) throw new UsageError('bucket set needs at least one of --n, --r, --w, --type');
  return props;
}

export async function bucketSet(client: Client, name: string, flags: BucketFlags): Promise<number> {
  const result = (await client.admin('bucket-set', { bucket: name, props: bucketProps(flags) })) as { bucket: string; props: unknown };
  process.stdout.write(flags.json === true ? JSON.stringify(result) + '\n' : `${result.bucket}: ${JSON.stringify(result.props)}\n`);
  return 0;
}

export async function bucketList(client: Client, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('bucket-list')) as { buckets: Record<string, Record<string, unknown>> };
  if (flags.json === true) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  }
  const names = Object.keys(result.buckets);
  if (names.length === 0) process.stdout.write('no bucket has properties set; every bucket uses the cluster defaults\n');
  for (const name of names) {
    const props = result.buckets[name] ?? {};
    process.stdout.write(`${name}  ${Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join(' ')}\n`);
  }
  return 0;
}

interface OwnershipRow {
  readonly id: string;
  readonly zone: string;
  readonly vnodes: number;
  readonly primary: number;
  readonly replica: number;
}

export async function ring(client: Client, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('ring')) as { checksum: string; n: number; members: OwnershipRow[] };
  if (flags.json === true) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  }
  const header = ['ID', 'ZONE', 'VNODES', 'PRIMARY', `REPLICA (n=${result.n})`];
  const rows = result.members.map((m) => [m.id, m.zone, String(m.vnodes), percent(m.primary), percent(m.replica)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  process.stdout.write([line(header), ...rows.map(line), '', `ring checksum ${result.checksum.slice(0, 16)}`, 'primary: share of keys whose first replica is the node; replica: share of keys it holds a copy of'].join('\n') + '\n');
  return 0;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

export async function whereis(client: Client, bucket: string, key: string, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('whereis', { bucket, key })) as { token: number; n: number; primaries: string[]; fallbacks: string[]; alive: string[] };
  if (flags.json === true) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  }
  const alive = new Set(result.alive);
  const mark = (id: string): string => (alive.has(id) ? id : `${id} (down)`);
  process.stdout.write(
    [`token ${result.token} (n=${result.n})`, `primaries: ${result.primaries.map(mark).join(', ')}`, `fallbacks: ${result.fallbacks.join(', ') || '(none)'}`].join('\n') + '\n',
  );
  return 0;
}

interface InspectResult {
  readonly node: string;
  readonly found: boolean;
  readonly tombstone: boolean;
  readonly values: Uint8Array[];
  readonly clock: [string, number][];
  readonly hints: readonly { readonly target: string; readonly found: boolean; readonly values: Uint8Array[]; readonly clock: [string, number][] }[];
}

/** The node's own copy of a key: exit 0 when it holds live values, 1 when not (as `get`). */
export async function inspect(client: Client, bucket: string, key: string, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('inspect', { bucket, key })) as InspectResult;
  if (flags.json === true) {
    const hex = (values: Uint8Array[]): string[] => values.map((v) => Buffer.from(v).toString('hex'));
    process.stdout.write(JSON.stringify({ ...result, values: hex(result.values), hints: result.hints.map((h) => ({ ...h, values: hex(h.values) })) }) + '\n');
    return result.found ? 0 : 1;
  }
  const clock = (c: [string, number][]): string => (c.length === 0 ? '(empty)' : c.map(([actor, counter]) => `${actor}:${counter}`).join(' '));
  const state = result.found ? `${result.values.length} value(s)` : result.tombstone ? 'a tombstone (deleted)' : 'nothing';
  const lines = [`${result.node} holds ${state}`, `clock: ${clock(result.clock)}`];
  for (const value of result.values) lines.push(`  ${describeValue(value)}`);
  for (const hint of result.hints) lines.push(`hint for ${hint.target}: ${hint.values.length} value(s), clock ${clock(hint.clock)}`);
  process.stdout.write(lines.join('\n') + '\n');
  return result.found ? 0 : 1;
}

/** A stored value as text when it is a CBOR string, else its size. */
function describeValue(bytes: Uint8Array): string {
  try {
    const decoded = decodeValue(bytes);
    if (decoded.ok) return JSON.stringify(decoded.value) ?? `<${bytes.byteLength} bytes>`;
  } catch {
    // Fall through to the size.
  }
  return `<${bytes.byteLength} bytes>`;
}
