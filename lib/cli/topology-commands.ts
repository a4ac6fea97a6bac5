/**
 * Operator commands for repair and topology changes: `repair`, `remove`, `transfers`, `plan`
 * and `cleanup`.
 *
 * `repair` starts a full anti-entropy pass at the node, one exchange with every peer it shares
 * ranges with, and follows it to the end: exit 0 when every exchange completed, 2 when one
 * failed (as `status` does for an unhealthy member), 1 when it gave up waiting. `remove` takes a
 * dead member out of the ring for good; `transfers` shows the ranges a joining or leaving node
 * is moving; `plan` says what a join, leave or removal would move before anyone makes it;
 * `cleanup` removes from a node what it holds of ranges it no longer replicates (after a join)
 * and follows it to the end (exit 2 when the pass stopped early).
 *
 * The flag checks and the render functions are pure, so they can be tested without a node.
 * Keys and bytes in `plan` and `remove` are estimates from the answering node's own data.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError } from '../base/errors.js';
import type { Client } from '../client/client.js';
import { NAME_PATTERN } from '../config/schema.js';
import type { AdminFlags } from './admin-commands.js';
import type { ExchangeProgress, RepairProgress as NodeRepairProgress } from '../antientropy/exchange.js';
import type { TransferView } from '../node/core.js';
import type { CleanupProgress } from '../handoff/cleanup.js';
import { UsageError } from './client-command.js';

// ---- result shapes, as the node answers them ----

/** A share of the ring, in [0, 1] (more for replica-ranges summed over nodes), with about how many keys and bytes it holds. */
export interface Estimate {
  readonly share: number;
  readonly keys: number;
  readonly bytes: number;
}

export interface NodeChange {
  readonly node: string;
  readonly gains: Estimate;
  readonly loses: Estimate;
}

export type Change = 'join' | 'leave' | 'remove';

export interface PlanResult {
  readonly change: Change;
  readonly node: string;
  readonly n: number;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly ranges: number;
  readonly moved: Estimate;
  readonly betweenExistingNodes: Estimate;
  readonly nodes: readonly NodeChange[];
}

export interface RemoveResult {
  readonly removed: string;
  readonly ranges: number;
  readonly moved: Estimate;
  readonly betweenExistingNodes: Estimate;
  readonly nodes: readonly NodeChange[];
}

/** A repair's progress as it arrives in JSON (an absent bucket is dropped, or null). */
export type RepairProgress = Omit<NodeRepairProgress, 'bucket'> & { readonly bucket?: string | null };

export interface RepairStatusResult {
  readonly node: string;
  readonly repair: RepairProgress | null;
  readonly running: ExchangeProgress | null;
}

export type TransferRow = TransferView;

export interface TransfersResult {
  readonly node: string;
  readonly status: string;
  readonly transfers: readonly TransferRow[];
  readonly exchange: ExchangeProgress | null;
  readonly repair: RepairProgress | null;
  readonly rangesNeverExchanged: number;
}

// ---- flags ----

export interface RepairFlags extends AdminFlags {
  readonly bucket?: string;
  /** Seconds to follow the repair before giving up (the repair goes on at the node). */
  readonly maxTime?: string;
}

export interface ForceFlags extends AdminFlags {
  readonly force?: boolean;
}

export interface PlanFlags extends AdminFlags {
  readonly join?: string;
  readonly leave?: string;
  readonly remove?: string;
  readonly vnodes?: string;
  readonly zone?: string;
}

export interface RepairRequest {
  readonly bucket?: string;
  readonly maxTimeMs: number;
}

export interface PlanRequest {
  readonly change: Change;
  readonly member: string;
  readonly vnodes?: number;
  readonly zone?: string;
}

/** How long `repair` follows a repair by default: an hour. */
export const REPAIR_MAX_TIME_S = 3600;
/** How often `repair` asks the node how its repair is going. */
export const REPAIR_POLL_MS = 500;
const VNODES_MAX = 4096;
/** The bucket field's limit on the wire. */
const BUCKET_CHARS_MAX = 64 * 1024;

/** A node id or zone as the configuration accepts it; throws UsageError naming `what`. */
export function parseName(text: string | undefined, what: string): string {
  if (text === undefined || text === '') throw new UsageError(`${what} needs a node id`);
  if (!NAME_PATTERN.test(text)) throw new UsageError(`${what} must be 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(text)}`);
  return text;
}

export function repairRequest(flags: RepairFlags): RepairRequest {
  const text = flags.maxTime ?? String(REPAIR_MAX_TIME_S);
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new UsageError(`--max-time must be a positive whole number of seconds, got ${text}`);
  const maxTimeMs = Number(text) * 1000;
  if (flags.bucket === undefined) return { maxTimeMs };
  if (flags.bucket === '') throw new UsageError('--bucket must not be empty');
  if (flags.bucket.length > BUCKET_CHARS_MAX) throw new UsageError(`--bucket must be at most ${BUCKET_CHARS_MAX} characters`);
  return { bucket: flags.bucket, maxTimeMs };
}

/** Exactly one of --join, --leave, --remove; --vnodes and --zone with --join only. */
export function planRequest(flags: PlanFlags): PlanRequest {
  const given = (['join', 'leave', 'remove'] as const).filter((change) => flags[change] !== undefined);
  if (given.length === 0) throw new UsageError('plan needs one of --join NODE_ID, --leave NODE_ID or --remove NODE_ID');
  if (given.length > 1) throw new UsageError(`plan takes one change at a time, got ${given.map((change) => `--${change}`).join(' and ')}`);
  const change = given[0] as Change;
  const member = parseName(flags[change], `--${change}`);
  if (change !== 'join') {
    if (flags.vnodes !== undefined || flags.zone !== undefined) throw new UsageError('--vnodes and --zone go with --join only');
    return { change, member };
  }
  const request: { change: Change; member: string; vnodes?: number; zone?: string } = { change, member };
  if (flags.vnodes !== undefined) {
    if (!/^\d{1,4}$/.test(flags.vnodes) || Number(flags.vnodes) < 1 || Number(flags.vnodes) > VNODES_MAX) {
      throw new UsageError(`--vnodes must be a whole number from 1 to ${VNODES_MAX}, got ${flags.vnodes}`);
    }
    request.vnodes = Number(flags.vnodes);
  }
  if (flags.zone !== undefined) {
    if (!NAME_PATTERN.test(flags.zone)) throw new UsageError(`--zone must be 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(flags.zone)}`);
    request.zone = flags.zone;
  }
  return request;
}

// ---- commands ----

/**
 * Starts a repair and follows it until the node says it is done: a bar redrawn on stderr at a
 * terminal, else a line on stdout whenever the progress changes, then a summary.
 */
export async function repair(client: Client, flags: RepairFlags, request: RepairRequest): Promise<number> {
  const json = flags.json === true;
  const started = (await client.admin('repair', request.bucket !== undefined ? { bucket: request.bucket } : {})) as RepairProgress & { node: string };
  const deadline = performance.now() + request.maxTimeMs;
  const line = json ? undefined : new ProgressLine(process.stderr.isTTY === true);
  if (!json) process.stdout.write(`repair started at ${started.node}${bucketNote(started.bucket)}: one exchange with each of ${started.peersTotal} peer(s)\n`);
  let status: RepairStatusResult;
  for (;;) {
    await sleep(REPAIR_POLL_MS);
    status = (await client.admin('repair-status')) as RepairStatusResult;
    if (status.repair === null) {
      line?.clear();
      throw new Error(`${status.node} reports no repair any more (did it restart?): run chorus repair again`);
    }
    if (status.repair.done) break;
    line?.show(status);
    if (performance.now() >= deadline) {
      line?.clear();
      const { peersTotal, peersDone, peersFailed } = status.repair;
      throw new TimeoutError(
        `gave up following the repair after ${request.maxTimeMs / 1000}s with ${peersDone + peersFailed} of ${peersTotal} peers done; it goes on at ${status.node} (chorus transfers --node ${flags.node} shows it)`,
        { peersTotal, peersDone, peersFailed },
      );
    }
  }
  line?.clear();
  const result = { node: status.node, ...status.repair };
  process.stdout.write((json ? JSON.stringify(result) : renderRepairSummary(result)) + '\n');
  return result.peersFailed > 0 ? 2 : 0;
}

/** Polls between cleanup progress reports. */
const CLEANUP_POLL_MS = 500;

/**
 * Starts a cleanup and follows it until the node says it is done: a line whenever the count
 * of keys removed changes, then a summary.
 */
export async function cleanup(client: Client, flags: AdminFlags): Promise<number> {
  const json = flags.json === true;
  const started = (await client.admin('cleanup')) as CleanupProgress & { node: string };
  if (!json) process.stdout.write(`cleanup started at ${started.node}: ${started.spans} span(s), ${(started.share * 100).toFixed(1)}% of the ring, that it no longer replicates\n`);
  let last = -1;
  let progress: CleanupProgress;
  for (;;) {
    const status = (await client.admin('cleanup-status')) as { node: string; cleanup: CleanupProgress | null };
    if (status.cleanup === null || status.cleanup.ring !== started.ring) throw new Error(`${started.node} reports no such cleanup any more (did it restart?): run chorus cleanup again`);
    progress = status.cleanup;
    if (progress.done) break;
    if (!json && progress.keysRemoved !== last) process.stdout.write(renderCleanup(started.node, progress) + '\n');
    last = progress.keysRemoved;
    await sleep(CLEANUP_POLL_MS);
  }
  process.stdout.write((json ? JSON.stringify({ node: started.node, ...progress }) : renderCleanup(started.node, progress)) + '\n');
  return progress.aborted === null ? 0 : 2;
}

export function renderCleanup(node: string, p: CleanupProgress): string {
  const what = `${p.keysRemoved.toLocaleString('en-US')} keys removed, ${p.spansDone} of ${p.spans} spans done`;
  if (!p.done) return `cleanup at ${node}: ${what}`;
  return p.aborted === null ? `cleanup at ${node} done: ${what}` : `cleanup at ${node} stopped: ${p.aborted} (${what})`;
}

export async function remove(client: Client, member: string, flags: ForceFlags): Promise<number> {
  const result = (await client.admin('remove', { member, ...(flags.force === true ? { force: true } : {}) })) as RemoveResult;
  process.stdout.write((flags.json === true ? JSON.stringify(result) : renderRemove(result, flags.node)) + '\n');
  return 0;
}

export async function transfers(client: Client, flags: AdminFlags): Promise<number> {
  const result = (await client.admin('transfers')) as TransfersResult;
  process.stdout.write((flags.json === true ? JSON.stringify(result) : renderTransfers(result)) + '\n');
  return 0;
}

export async function plan(client: Client, flags: PlanFlags, request: PlanRequest): Promise<number> {
  const result = (await client.admin('plan', request)) as PlanResult;
  process.stdout.write((flags.json === true ? JSON.stringify(result) : renderPlan(result)) + '\n');
  return 0;
}

/** One line of progress: redrawn in place on a terminal (stderr), else printed to stdout when it changes. */
class ProgressLine {
  private shown = false;
  private last = '';

  constructor(private readonly tty: boolean) {}

  show(status: RepairStatusResult): void {
    if (!this.tty) {
      const text = renderRepairProgress(status);
      if (text !== this.last) process.stdout.write(text + '\n');
      this.last = text;
      return;
    }
    const columns = process.stderr.columns > 0 ? process.stderr.columns : 80;
    // A line wider than the terminal wraps, and `\r` would then redraw only its last row.
    process.stderr.write(`\r\x1b[K${renderRepairProgress(status, BAR_WIDTH).slice(0, Math.max(columns - 1, 20))}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

const BAR_WIDTH = 12;

// ---- rendering ----

/**
 * A repair's progress on one line: peers finished of all, keys compared and repaired, and the
 * exchange under way. With `barWidth`, a bar of peers finished leads the line.
 */
export function renderRepairProgress(status: RepairStatusResult, barWidth = 0): string {
  const run = status.repair;
  if (run === null) return `no repair has run at ${status.node}`;
  const finished = run.peersDone + run.peersFailed;
  const parts = [
    `peers ${finished}/${run.peersTotal}${run.peersFailed > 0 ? ` (${run.peersFailed} failed)` : ''}`,
    `${count(run.keysCompared)} keys compared`,
    `${count(run.keysRepaired)} repaired`,
  ];
  const ex = status.running;
  if (run.done) parts.push('done');
  else if (ex === null) parts.push('between peers');
  else if (ex.kind === 'repair') parts.push(`with ${ex.peer} (${ex.phase}${ex.leavesDiffering > 0 ? `, ${ex.leavesDone}/${ex.leavesDiffering} differing leaves` : ''})`);
  else parts.push(`waiting for a ${ex.kind} exchange with ${ex.peer}`);
  let bar = '';
  if (barWidth > 0) {
    const filled = run.peersTotal === 0 ? barWidth : Math.floor((finished / run.peersTotal) * barWidth);
    bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] `;
  }
  return `repair${bucketNote(run.bucket)}: ${bar}${parts.join(' · ')}`;
}

/** The end of a repair: what it compared and repaired, and what to do about peers that failed. */
export function renderRepairSummary(result: RepairProgress & { readonly node: string }): string {
  const lines = [
    `repair at ${result.node}${bucketNote(result.bucket)} finished`,
    `peers:         ${result.peersDone} done, ${result.peersFailed} failed, of ${result.peersTotal}`,
    `keys compared: ${count(result.keysCompared)}`,
    `keys repaired: ${count(result.keysRepaired)}`,
  ];
  if (result.peersTotal === 0) lines.push('this node shares no ranges with another member: there was nothing to compare');
  if (result.peersFailed > 0) {
    lines.push(`${result.peersFailed} exchange(s) ended early (a peer down or too slow; the node's log says why): run chorus repair again once every peer is up`);
  }
  return lines.join('\n');
}

export function renderRemove(result: RemoveResult, node: string): string {
  return [
    `removed ${result.removed} from the ring for good: ${result.ranges} range(s) change owners`,
    `to re-create: ${describe(result.moved)}`,
    '',
    changeTable(result.nodes, result.removed, 'removed'),
    '',
    betweenExisting(result.betweenExistingNodes, 'remove'),
    `the survivors re-create the copies ${result.removed} held through anti-entropy; chorus transfers --node ${node} shows the progress`,
    ESTIMATES,
  ].join('\n');
}

const STATUS_TEXT: Readonly<Record<string, string>> = {
  joining: 'is joining: its ranges are being streamed to it',
  up: 'is up',
  leaving: 'is leaving: it is handing its ranges over',
  left: 'has left the cluster',
};

export function renderTransfers(result: TransfersResult): string {
  const lines = [`${result.node} ${STATUS_TEXT[result.status] ?? `is ${result.status}`}`];
  if (result.transfers.length === 0) {
    lines.push('no transfers: this node is neither joining nor leaving');
  } else {
    const header = ['PEER', 'DIRECTION', 'STATE', 'RANGES', 'SHARE', 'KEYS MOVED', 'ATTEMPTS', 'ERROR'];
    const rows = result.transfers.map((t) => [
      t.peer,
      t.direction,
      t.state,
      String(t.ranges),
      percent(t.share),
      count(t.keysMoved),
      String(t.attempts),
      t.lastError ?? '',
    ]);
    const states = (['done', 'running', 'pending', 'failed'] as const).map((state) => `${result.transfers.filter((t) => t.state === state).length} ${state}`);
    lines.push('', table(header, rows), '', `${result.transfers.length} transfer(s): ${states.join(', ')}`, 'in: the peer sends its copy of the ranges to this node; out: this node sends its copy to the peer');
  }
  const ex = result.exchange;
  lines.push(
    ex === null
      ? 'exchange: none running'
      : `exchange: ${ex.kind} with ${ex.peer}, ${ex.phase}${ex.leavesDiffering > 0 ? `, ${ex.leavesDone}/${ex.leavesDiffering} differing leaves` : ''}, ${count(ex.keysCompared)} keys compared, ${count(ex.keysRepaired)} repaired`,
  );
  if (result.repair !== null && !result.repair.done) lines.push(renderRepairProgress({ node: result.node, repair: result.repair, running: result.exchange }));
  lines.push(
    result.rangesNeverExchanged === 0
      ? 'ranges never exchanged: 0'
      : `ranges never exchanged: ${result.rangesNeverExchanged} (a replica has not yet compared them with this node; anti-entropy will)`,
  );
  return lines.join('\n');
}

export function renderPlan(result: PlanResult): string {
  const verb = { join: 'joining', leave: 'leaving', remove: 'removed' }[result.change];
  return [
    `plan: ${result.change} ${result.node}: ${result.nodesBefore} → ${result.nodesAfter} nodes, n=${result.n}`,
    `${result.ranges} range(s) would change owners`,
    '',
    changeTable(result.nodes, result.node, verb),
    '',
    `moved in all: ${describe(result.moved)}`,
    betweenExisting(result.betweenExistingNodes, result.change),
    ESTIMATES,
  ].join('\n');
}

const ESTIMATES = "keys and bytes are estimates from the answering node's own data";

/** Per node, the share of the ring and about how many keys and bytes it gains and loses. */
function changeTable(nodes: readonly NodeChange[], subject: string, mark: string): string {
  if (nodes.length === 0) return 'no node gains or loses a range';
  const header = ['NODE', 'GAINS', 'KEYS', 'BYTES', 'LOSES', 'KEYS', 'BYTES'];
  const rows = nodes.map((n) => [
    n.node === subject ? `${n.node} (${mark})` : n.node,
    percent(n.gains.share),
    count(n.gains.keys),
    formatBytes(n.gains.bytes),
    percent(n.loses.share),
    count(n.loses.keys),
    formatBytes(n.loses.bytes),
  ]);
  return table(header, rows);
}

/**
 * Data that moves to nodes that were members before: none for a join, which should move data
 * to the new node only; for a leave or a removal, all of it, since the nodes that stay take the
 * ranges over.
 */
function betweenExisting(estimate: Estimate, change: Change): string {
  const amount = `between existing nodes: ${formatBytes(estimate.bytes)}`;
  if (estimate.share === 0) return amount;
  const detail = `${amount} (${percent(estimate.share)} of the ring, about ${count(estimate.keys)} keys)`;
  return change === 'join' ? `${detail}: more than a join should move` : `${detail}: the nodes that stay take the ranges over`;
}

function describe(estimate: Estimate): string {
  return `${percent(estimate.share)} of the ring, about ${count(estimate.keys)} keys, ${formatBytes(estimate.bytes)}`;
}

function bucketNote(bucket: string | null | undefined): string {
  return bucket === undefined || bucket === null ? '' : ` (bucket ${bucket})`;
}

function table(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const COUNT = new Intl.NumberFormat('en-US');

function count(n: number): string {
  return COUNT.format(n);
}

/** A share of the ring as a percentage; a sliver above 0 shows as `<0.1%`, not `0.0%`. */
export function percent(share: number): string {
  if (share === 0) return '0%';
  if (share < 0.001) return '<0.1%';
  return `${(share * 100).toFixed(1)}%`;
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Bytes in binary units with one decimal: `0 bytes`, `512 bytes`, `1.5 KiB`, `2.0 GiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} ${Math.round(bytes) === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  // 1023.96 KiB would print as 1024.0 KiB: round before choosing the unit.
  while (Number(value.toFixed(1)) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit] as string}`;
}
