/**
 * The cluster benchmark's printed results: one table per workload, then the goals.
 *
 * Latencies are in milliseconds, from HDR-style histograms (hdr.ts, under 1% error).
 * "lag p99" is how late the open-loop scheduler itself sent operations; it is included in
 * the latencies (they run from when each operation was due), so it bounds how much of a
 * small latency is the benchmark's own.
 */

import type { Histogram } from './hdr.js';
import type { PhaseResult } from './drivers.js';

export interface WorkloadResults {
  readonly saturation: PhaseResult;
  /** Open-loop phases, in the order run. */
  readonly fixed: readonly PhaseResult[];
}

export interface SystemResults {
  readonly name: string;
  load: PhaseResult | undefined;
  readonly workloads: Map<string, WorkloadResults>;
  readonly notes: string[];
  error: string | undefined;
}

/** The goals the benchmark checks. */
export const GOALS = {
  /** Chorus saturation throughput over the bare prototype's, workload B. */
  ratioMinB: 1.0,
  /** At half of Chorus's saturation throughput. */
  readP99MsMax: 5,
  writeP99MsMax: 15,
} as const;

function ms(value: number): string {
  if (Number.isNaN(value)) return '–';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function triple(h: Histogram): string[] {
  return [ms(h.percentileMs(50)), ms(h.percentileMs(99)), ms(h.percentileMs(99.9))];
}

function errorsOf(phase: PhaseResult): string {
  const parts = [...phase.errors].map(([code, count]) => `${code} ${count}`);
  if (phase.unfinished > 0) parts.push(`unfinished ${phase.unfinished}`);
  return parts.length === 0 ? '0' : parts.join(', ');
}

function table(rows: string[][], rightAligned: (column: number) => boolean): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => ('  ' + r.map((cell, c) => (rightAligned(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')).trimEnd()).join('\n');
}

/** One row of a workload's table. */
function phaseRow(system: string, phase: PhaseResult): string[] {
  return [
    system,
    phase.label,
    phase.offeredOps === undefined ? '–' : int(phase.offeredOps),
    int(phase.throughput),
    ...triple(phase.read),
    ...triple(phase.update),
    phase.lag === undefined ? '–' : ms(phase.lag.percentileMs(99)),
    phase.clientCores.toFixed(2),
    phase.serverCores === undefined ? '–' : phase.serverCores.toFixed(2),
    phase.serverCores === undefined ? '–' : int((phase.serverCores * 1e6) / phase.throughput),
    int(phase.notFound),
    errorsOf(phase),
  ];
}

/** Per completed operation, in microseconds, or '–'. */
function perOp(cores: number | undefined, phase: PhaseResult): string {
  return cores === undefined ? '–' : int((cores * 1e6) / phase.throughput);
}

/** One row of a workload's CPU table. */
function cpuRow(system: string, phase: PhaseResult): string[] {
  const workers = phase.serverCores === undefined || phase.serverMainCores === undefined ? undefined : phase.serverCores - phase.serverMainCores;
  return [
    system,
    phase.label,
    int(phase.throughput),
    perOp(phase.clientUserCores, phase),
    perOp(phase.clientCores - phase.clientUserCores, phase),
    perOp(phase.serverMainCores, phase),
    perOp(workers, phase),
    phase.serverSwitches === undefined ? '–' : (phase.serverSwitches / phase.throughput).toFixed(2),
  ];
}

/**
 * Where each workload's CPU went, per completed operation: the benchmark process in user
 * space and in the kernel, the servers' main threads (event loops) and their other threads
 * (LMDB commits and syncs, V8's garbage-collector helpers, libuv's pool), and how often a
 * server's event loop slept and woke.
 */
export function cpuTable(workload: string, systems: readonly SystemResults[]): string {
  const header = ['system', 'phase', 'done/s', 'bench user µs/op', 'bench sys µs/op', 'servers main µs/op', 'servers other µs/op', 'server wakeups/op'];
  return table([header, ...rowsOf(workload, systems, cpuRow)], (c) => c >= 2);
}

/** One row per phase of the workload (saturation first), system by system. */
function rowsOf(workload: string, systems: readonly SystemResults[], row: (system: string, phase: PhaseResult) => string[]): string[][] {
  const rows: string[][] = [];
  for (const system of systems) {
    const results = system.workloads.get(workload);
    if (results === undefined) continue;
    rows.push(row(system.name, results.saturation));
    for (const phase of results.fixed) rows.push(row(system.name, phase));
  }
  return rows;
}

export function workloadTable(workload: string, systems: readonly SystemResults[]): string {
  const lines: string[] = [];
  const byName = new Map(systems.map((s) => [s.name, s.workloads.get(workload)]));
  const chorus = byName.get('chorus')?.saturation.throughput;
  const bare = byName.get('bare')?.saturation.throughput;
  lines.push(`  saturation: chorus ${chorus === undefined ? '–' : int(chorus)} ops/s, bare ${bare === undefined ? '–' : int(bare)} ops/s, ratio ${chorus !== undefined && bare !== undefined ? `${(chorus / bare).toFixed(2)}×` : '–'}`);
  const header = ['system', 'phase', 'offered/s', 'done/s', 'read p50', 'p99', 'p99.9', 'write p50', 'p99', 'p99.9', 'lag p99', 'bench cpu', 'servers cpu', 'µs/op', 'not found', 'errors'];
  lines.push(table([header, ...rowsOf(workload, systems, phaseRow)], (c) => c >= 2 && c <= 14));
  return lines.join('\n');
}

function verdict(holds: boolean): string {
  return holds ? 'met' : 'NOT MET';
}

/** The goal lines; `half` picks the open-loop phase at half of a system's own saturation. */
export function goalLines(systems: readonly SystemResults[], workloads: readonly string[], half: (phase: PhaseResult) => boolean): string[] {
  const lines: string[] = [];
  const chorus = systems.find((s) => s.name === 'chorus');
  const bare = systems.find((s) => s.name === 'bare');
  const chorusB = chorus?.workloads.get('B')?.saturation.throughput;
  const bareB = bare?.workloads.get('B')?.saturation.throughput;
  if (chorusB !== undefined && bareB !== undefined) {
    const ratio = chorusB / bareB;
    lines.push(`workload B, chorus ≥ ${GOALS.ratioMinB.toFixed(1)}× bare at saturation: ${ratio.toFixed(2)}× — ${verdict(ratio >= GOALS.ratioMinB)}`);
  } else {
    lines.push(`workload B, chorus ≥ ${GOALS.ratioMinB.toFixed(1)}× bare at saturation: not measured`);
  }
  for (const workload of workloads) {
    const phase = chorus?.workloads.get(workload)?.fixed.find(half);
    if (phase === undefined) {
      lines.push(`workload ${workload}, at half of chorus saturation, read p99 ≤ ${GOALS.readP99MsMax} ms and write p99 ≤ ${GOALS.writeP99MsMax} ms: not measured`);
      continue;
    }
    const judged = againstLimits(phase);
    // A read-only workload (C) has no write latency to judge.
    const writes = judged.write === undefined ? '' : `; write p99 ${ms(judged.write)} ms ≤ ${GOALS.writeP99MsMax} — ${verdict(judged.writeHolds)}`;
    lines.push(
      `workload ${workload}, at half of chorus saturation (${int(phase.offeredOps ?? 0)}/s): read p99 ${ms(judged.read)} ms ≤ ${GOALS.readP99MsMax} — ${verdict(judged.readHolds)}` +
        `${writes}${judged.clean ? '' : ' (errors in the phase)'}`,
    );
    const reference = bare?.workloads.get(workload)?.fixed.find(half);
    if (reference !== undefined) lines.push(`  ${referenceLine(reference)}`);
  }
  return lines;
}

/** A phase's read and write p99 against the latency limits; a limit holds only in a phase without errors. */
function againstLimits(phase: PhaseResult): { read: number; write: number | undefined; clean: boolean; readHolds: boolean; writeHolds: boolean } {
  const read = phase.read.percentileMs(99);
  const write = phase.update.count === 0 ? undefined : phase.update.percentileMs(99);
  const clean = phase.errors.size === 0 && phase.unfinished === 0;
  return { read, write, clean, readHolds: clean && read <= GOALS.readP99MsMax, writeHolds: clean && write !== undefined && write <= GOALS.writeP99MsMax };
}

/**
 * The bare prototype held to the same latency limits at half of its own saturation: not a
 * goal, but what the limits ask of this machine, where the clients share the cores with the
 * three servers.
 */
function referenceLine(phase: PhaseResult): string {
  const judged = againstLimits(phase);
  const side = (holds: boolean): string => (holds ? 'within' : 'beyond');
  const writes = judged.write === undefined ? '' : `, write p99 ${ms(judged.write)} ms — ${side(judged.writeHolds)} the write limit`;
  return `reference, bare at half of its own saturation (${int(phase.offeredOps ?? 0)}/s): read p99 ${ms(judged.read)} ms — ${side(judged.readHolds)} the read limit${writes}`;
}
