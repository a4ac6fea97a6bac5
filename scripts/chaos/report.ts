/**
 * What a chaos run leaves behind: the summary it prints, and the report directory.
 *
 * The directory holds `history.jsonl` (one operation per line, in invocation order),
 * `faults.json` (the schedule as it was played), `verdict.json` (options, counts, every
 * check with its examples, and the command that repeats the schedule), `timeline.svg`
 * (throughput and latency over time with the fault windows shaded) and `logs/<node>.log`
 * (every line each node wrote, across its restarts).
 */

import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckResult } from './checks.js';
import { seconds, type Episode } from './nemesis.js';
import type { ChaosOptions } from './options.js';
import { offsetText, skewText } from './skew.js';
import type { ChaosOperation } from './workload.js';

/** Operations serialized per write of history.jsonl. */
const HISTORY_CHUNK_LINES = 10_000;

export interface Availability {
  readonly label: string;
  readonly operations: number;
  readonly ok: number;
  /** Acknowledged operations per second of the windows with this label: clients stuck on a dead node show here. */
  readonly okPerSecond: number;
}

export interface Verdict {
  readonly passed: boolean;
  readonly seed: number;
  readonly replay: string;
  readonly options: ChaosOptions;
  readonly startedAt: string;
  readonly loadMs: number;
  readonly totalMs: number;
  readonly operations: Record<string, Record<string, number>>;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly availability: readonly Availability[];
  readonly faults: readonly Episode[];
  readonly skipped: readonly string[];
  readonly checks: readonly CheckResult[];
  /** Set when the run ended early: a signal or an error before the checks. */
  readonly aborted?: string;
  /** The temporary directory that held the nodes' data (removed at the end of the run). */
  readonly dataDir?: string;
}

/** Operations by kind and outcome, with totals. */
export function countOperations(history: readonly ChaosOperation[]): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const op of history) {
    for (const kind of [op.kind, 'all']) {
      const row = (counts[kind] ??= { total: 0, ok: 0, fail: 0, unknown: 0, pending: 0 });
      row.total = (row.total ?? 0) + 1;
      row[op.outcome] = (row[op.outcome] ?? 0) + 1;
    }
  }
  return counts;
}

export function latency(history: readonly ChaosOperation[]): { p50: number; p99: number; max: number } {
  const sorted = history.filter((op) => op.outcome === 'ok' && op.latencyMs !== undefined).map((op) => op.latencyMs as number).sort((a, b) => a - b);
  const at = (q: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  return { p50: at(0.5), p99: at(0.99), max: round(sorted[sorted.length - 1] ?? 0) };
}

/**
 * Outside any fault and during each kind of fault: the share of operations invoked there that
 * succeeded, and how many succeeded per second (a client waiting on a paused node invokes
 * little, so the share alone would flatter a stall).
 */
export function availability(history: readonly ChaosOperation[], episodes: readonly Episode[], loadMs: number): Availability[] {
  const windowOf = (op: ChaosOperation): Episode | undefined => episodes.find((e) => op.invokeTick >= e.startMs && op.invokeTick < (e.endMs ?? Infinity));
  const rows = new Map<string, { operations: number; ok: number; ms: number }>();
  const row = (label: string): { operations: number; ok: number; ms: number } => {
    let found = rows.get(label);
    if (found === undefined) rows.set(label, (found = { operations: 0, ok: 0, ms: 0 }));
    return found;
  };
  let faultMs = 0;
  for (const e of episodes) {
    const ms = Math.max(0, (e.endMs ?? loadMs) - e.startMs);
    row(e.kind).ms += ms;
    faultMs += ms;
  }
  row('no fault').ms += Math.max(0, loadMs - faultMs);
  for (const op of history) {
    if (op.outcome === 'pending') continue;
    const counted = row(windowOf(op)?.kind ?? 'no fault');
    counted.operations++;
    if (op.outcome === 'ok') counted.ok++;
  }
  const order = ['no fault', 'kill', 'pause', 'partition', 'wipe', 'skew'];
  return [...rows]
    .filter(([, r]) => r.ms > 0 || r.operations > 0)
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([label, r]) => ({ label, operations: r.operations, ok: r.ok, okPerSecond: r.ms > 0 ? Math.round((r.ok * 1000) / r.ms) : 0 }));
}

/**
 * Writes the report files; the verdict first, and the plot last, drawn by `svg()`: a plot that
 * cannot be drawn is reported in its place rather than costing the rest.
 */
export function writeReport(dir: string, verdict: Verdict, history: readonly ChaosOperation[], svg: () => string): void {
  writeFileSync(join(dir, 'verdict.json'), `${JSON.stringify(verdict, null, 2)}\n`);
  writeFileSync(join(dir, 'faults.json'), `${JSON.stringify(verdict.faults, null, 2)}\n`);
  // In chunks: a long run's history is more text than one string should hold.
  const file = join(dir, 'history.jsonl');
  writeFileSync(file, '');
  for (let i = 0; i < history.length; i += HISTORY_CHUNK_LINES) {
    appendFileSync(file, `${history.slice(i, i + HISTORY_CHUNK_LINES).map((op) => JSON.stringify(historyLine(op))).join('\n')}\n`);
  }
  let plot: string;
  try {
    plot = svg();
  } catch (error) {
    plot = `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="24">the timeline could not be drawn: ${String(error).replace(/[<>&]/g, '')}</text></svg>\n`;
  }
  writeFileSync(join(dir, 'timeline.svg'), plot);
}

/** One history line: times in ms since the start of the run. */
function historyLine(op: ChaosOperation): Record<string, unknown> {
  return {
    index: op.index,
    client: op.client,
    node: op.node,
    kind: op.kind,
    key: op.key,
    level: op.level,
    value: op.value,
    context: op.contextSource,
    contextFrom: op.contextFrom,
    invokeMs: round(op.invokeTick),
    completeMs: op.completeTick === undefined ? undefined : round(op.completeTick),
    latencyMs: op.latencyMs === undefined ? undefined : round(op.latencyMs),
    outcome: op.outcome,
    code: op.code,
    message: op.message,
    values: op.values,
    siblings: op.siblings,
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(1)}%`;
}

/** The summary printed at the end of a run; also the text a README can quote. */
export function summaryText(verdict: Verdict, reportDir: string): string {
  const { options } = verdict;
  const all = verdict.operations.all ?? {};
  const lines: string[] = [];
  lines.push(
    `chaos: seed ${verdict.seed}, ${options.nodes} nodes, ${options.clients} clients, ${seconds(verdict.loadMs)} of load, faults ${options.faults.join(',') || 'none'}` +
      (options.testFault === undefined ? '' : `, TEST FAULT ${options.testFault}`),
  );
  lines.push(`operations: ${all.total ?? 0} (ok ${all.ok ?? 0}, fail ${all.fail ?? 0}, unknown ${all.unknown ?? 0}); ok latency p50 ${verdict.latencyMs.p50} ms, p99 ${verdict.latencyMs.p99} ms, max ${verdict.latencyMs.max} ms`);
  for (const kind of ['put', 'get', 'del']) {
    const row = verdict.operations[kind];
    if (row !== undefined) lines.push(`  ${kind.padEnd(4)} ${String(row.total).padStart(6)}: ok ${row.ok ?? 0}, fail ${row.fail ?? 0}, unknown ${row.unknown ?? 0}`);
  }
  lines.push(`faults: ${verdict.faults.length}${verdict.skipped.length > 0 ? ` (skipped: ${verdict.skipped.join('; ')})` : ''}`);
  for (const e of verdict.faults) {
    const window = `${(e.startMs / 1000).toFixed(1).padStart(6)}–${((e.endMs ?? e.startMs) / 1000).toFixed(1).padEnd(6)} s`;
    const extra: string[] = [];
    if (e.kind === 'partition') extra.push(e.verified === true ? `seen after ${seconds(e.seenAfterMs ?? 0)}` : 'NOT seen', `${e.droppedPackets ?? 0} packets dropped`);
    if (e.kind === 'skew') {
      extra.push(e.verified === true ? `clock seen ${skewText(e.clockSkewMs ?? 0)} off` : 'skew NOT seen');
      if (e.clockRestoredMs !== undefined) extra.push(`restored to ${skewText(e.clockRestoredMs)}`);
    }
    if ((e.kind === 'kill' || e.kind === 'wipe' || e.kind === 'skew') && e.recoveredMs !== undefined && e.endMs !== undefined) extra.push(`ready ${seconds(e.recoveredMs - e.endMs)} after restart`);
    extra.push(...e.notes.filter((n) => !n.startsWith('the failure detectors')));
    const what = e.kind === 'partition' ? `partition ${e.targets.join(',')} | rest` : e.kind === 'skew' ? `skew ${e.targets.join(',')} ${offsetText(e.skewS ?? 0)}` : `${e.kind} ${e.targets.join(',')}`;
    lines.push(`  ${window} ${what.padEnd(24)} ${extra.join('; ')}`);
  }
  lines.push('availability (acknowledged / invoked, and acknowledged per second):');
  for (const a of verdict.availability) lines.push(`  ${a.label.padEnd(9)} ${percent(a.ok, a.operations).padStart(6)} of ${String(a.operations).padStart(6)}, ${String(a.okPerSecond).padStart(4)} ok/s`);
  if (verdict.aborted !== undefined) lines.push(`ABORTED: ${verdict.aborted}`);
  lines.push('checks:');
  for (const check of verdict.checks) {
    lines.push(`  ${check.passed ? 'PASS' : 'FAIL'}  ${check.name.padEnd(9)} ${check.summary}`);
    for (const example of check.examples) lines.push(`          ${example}`);
  }
  lines.push(`verdict: ${verdict.passed ? 'PASS' : 'FAIL'} in ${seconds(verdict.totalMs)}; report ${reportDir}`);
  lines.push(`repeat the schedule: ${verdict.replay}`);
  return lines.join('\n');
}

