/**
 * The load generators of the cluster benchmark.
 *
 * - `load` inserts every record once (YCSB's load phase), a fixed number of writes in flight.
 * - `closedLoop` measures saturation: each client connection keeps `inflight` operations
 *   outstanding for the whole phase, issuing the next as soon as one completes. Latency runs
 *   from issue to completion.
 * - `openLoop` offers a fixed rate: operation k is due at t0 + k / rate whatever happened to
 *   the operations before it, round-robin over the connections. Latency runs from the time an
 *   operation was due, not from when it was sent, so a stalled server is charged for every
 *   operation it delayed (Gil Tene's "coordinated omission"; wrk2 and HdrHistogram do the
 *   same). The scheduler wakes on a 1 ms timer, so it sends up to about a millisecond late;
 *   that lag is recorded in its own histogram and printed, and it is part of the latency.
 *   A connection holds at most `inflightMax` operations; further due operations wait in the
 *   client, their latency still counted from when they were due.
 *
 * Every operation's kind and key come from the client's own seeded `OpStream`. Failures are
 * counted by error code; a phase in which most operations fail stops early with the first
 * error, as the figures would mean nothing.
 */

import type { Prng } from '../../lib/base/prng.js';
import { Histogram } from './hdr.js';
import type { Target, TargetClient } from './targets.js';
import { keyName, OpStream, type Workload } from './ycsb.js';

export interface PhaseResult {
  readonly label: string;
  /** Offered operations per second, for open-loop phases. */
  readonly offeredOps: number | undefined;
  /** Completed operations per second over the phase. */
  readonly throughput: number;
  readonly ops: number;
  readonly read: Histogram;
  readonly update: Histogram;
  /** How late the open-loop scheduler sent operations (only open-loop phases). */
  readonly lag: Histogram | undefined;
  readonly errors: Map<string, number>;
  /** Reads that found no value (every key was loaded, so these are reads of a replica that missed it). */
  readonly notFound: number;
  /** Operations still outstanding when the phase gave up waiting for them. */
  readonly unfinished: number;
  /** CPU this process used during the phase, in cores (its clients share the machine with the servers). */
  readonly clientCores: number;
  /** Of `clientCores`, what ran in user space; the rest is the kernel (system calls). */
  readonly clientUserCores: number;
  /** CPU the server processes used during the phase, in cores, where it can be read (Linux). */
  readonly serverCores?: number | undefined;
  /** Of `serverCores`, what their main threads (event loops) used; the rest is their other threads (LMDB commits, GC helpers). */
  readonly serverMainCores?: number | undefined;
  /** Context switches of the servers' main threads per second: about how often an event loop slept and woke. */
  readonly serverSwitches?: number | undefined;
}

/** A phase stops early once this many operations failed and they are most of those done. */
const FAILURES_FATAL_MIN = 1000;
/** How long an open-loop phase waits for its last operations after the schedule ends. */
const DRAIN_MS_MAX = 30_000;
/** Error messages kept per phase, to show the first of them. */
const ERROR_SAMPLES_MAX = 3;

class Tally {
  readonly read = new Histogram();
  readonly update = new Histogram();
  readonly errors = new Map<string, number>();
  readonly samples: string[] = [];
  notFound = 0;
  failed = 0;

  fail(error: unknown): void {
    const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : (error as Error).name ?? 'Error';
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    this.failed++;
    if (this.samples.length < ERROR_SAMPLES_MAX) this.samples.push(`${code}: ${(error as Error).message ?? String(error)}`);
  }

  get done(): number {
    return this.read.count + this.update.count + this.failed;
  }

  get hopeless(): boolean {
    return this.failed >= FAILURES_FATAL_MIN && this.failed * 2 > this.done;
  }

  /** An error naming how many operations failed and the first errors. */
  hopelessError(label: string): Error {
    return new Error(`${label}: ${this.failed} of ${this.done} operations failed; first errors: ${this.samples.join(' | ')}`);
  }
}

async function runOp(client: TargetClient, stream: OpStream, value: Uint8Array, tally: Tally, startedMs: number): Promise<void> {
  const op = stream.next();
  try {
    if (op.kind === 'read') {
      const found = await client.read(op.key);
      if (!found) tally.notFound++;
      tally.read.recordMs(performance.now() - startedMs);
    } else {
      await client.update(op.key, value);
      tally.update.recordMs(performance.now() - startedMs);
    }
  } catch (error) {
    tally.fail(error);
  }
}

function streams(target: Target, workload: Workload, records: number, prng: Prng): OpStream[] {
  return target.clients.map((_, i) => new OpStream(workload, records, prng.fork(`client-${i}`)));
}

function result(label: string, tally: Tally, elapsedMs: number, cpu: NodeJS.CpuUsage, extra: { offeredOps?: number; lag?: Histogram; unfinished?: number } = {}): PhaseResult {
  const ops = tally.read.count + tally.update.count;
  const used = process.cpuUsage(cpu);
  return {
    label,
    offeredOps: extra.offeredOps,
    throughput: ops / (elapsedMs / 1000),
    ops,
    read: tally.read,
    update: tally.update,
    lag: extra.lag,
    errors: tally.errors,
    notFound: tally.notFound,
    unfinished: extra.unfinished ?? 0,
    clientCores: (used.user + used.system) / 1000 / elapsedMs,
    clientUserCores: used.user / 1000 / elapsedMs,
  };
}

/** Inserts keys 0..records-1 with `inflight` writes outstanding per connection; returns inserts per second. */
export async function load(target: Target, records: number, inflight: number, value: Uint8Array): Promise<PhaseResult> {
  const tally = new Tally();
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const lane = async (client: TargetClient): Promise<void> => {
    while (next < records && !tally.hopeless) {
      const key = keyName(next++);
      const issued = performance.now();
      try {
        await client.update(key, value);
        tally.update.recordMs(performance.now() - issued);
      } catch (error) {
        tally.fail(error);
      }
    }
  };
  await Promise.all(target.clients.flatMap((client) => Array.from({ length: inflight }, () => lane(client))));
  // Every key must exist for the reads that follow to mean anything.
  if (tally.failed > 0) throw tally.hopelessError(`${target.name} load`);
  return result(`${target.name} load`, tally, performance.now() - started, cpu);
}

export interface ClosedLoopOptions {
  readonly label: string;
  readonly workload: Workload;
  readonly records: number;
  readonly seconds: number;
  readonly inflight: number;
  readonly value: Uint8Array;
  readonly prng: Prng;
}

export async function closedLoop(target: Target, options: ClosedLoopOptions): Promise<PhaseResult> {
  const tally = new Tally();
  const opStreams = streams(target, options.workload, options.records, options.prng);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const lane = async (client: TargetClient, stream: OpStream): Promise<void> => {
    while (performance.now() < deadline && !tally.hopeless) await runOp(client, stream, options.value, tally, performance.now());
  };
  await Promise.all(target.clients.flatMap((client, i) => Array.from({ length: options.inflight }, () => lane(client, opStreams[i] as OpStream))));
  if (tally.hopeless) throw tally.hopelessError(options.label);
  return result(options.label, tally, performance.now() - started, cpu);
}

export interface OpenLoopOptions extends ClosedLoopOptions {
  /** Offered operations per second, over all connections. */
  readonly rate: number;
  /** Most operations outstanding per connection. */
  readonly inflightMax: number;
}

export function openLoop(target: Target, options: OpenLoopOptions): Promise<PhaseResult> {
  const tally = new Tally();
  const lag = new Histogram();
  const opStreams = streams(target, options.workload, options.records, options.prng);
  const clients = target.clients.length;
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const intervalMs = 1000 / options.rate;
  const inflight = new Array<number>(clients).fill(0);
  const waiting: number[][] = Array.from({ length: clients }, () => []);
  const waitingHead = new Array<number>(clients).fill(0);
  let issued = 0;
  let completed = 0;
  let lastCompletionMs = 0;
  let finished = false;
  const cpu = process.cpuUsage();
  const t0 = performance.now();

  return new Promise<PhaseResult>((resolve, reject) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(drainTimer);
      if (tally.hopeless) reject(tally.hopelessError(options.label));
      else resolve(result(options.label, tally, Math.max(lastCompletionMs, t0 + options.seconds * 1000) - t0, cpu, { offeredOps: options.rate, lag, unfinished: total - completed }));
    };
    const start = (c: number, dueMs: number): void => {
      inflight[c]!++;
      lag.recordMs(performance.now() - dueMs);
      void runOp(target.clients[c] as TargetClient, opStreams[c] as OpStream, options.value, tally, dueMs).then(() => {
        if (finished) return;
        inflight[c]!--;
        completed++;
        lastCompletionMs = performance.now();
        if (tally.hopeless) return finish();
        const queue = waiting[c] as number[];
        if (waitingHead[c]! < queue.length) start(c, queue[waitingHead[c]!++] as number);
        if (issued === total && completed === total) finish();
      });
    };
    const tick = (): void => {
      if (finished) return;
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / intervalMs) + 1);
      for (; issued < due; issued++) {
        const c = issued % clients;
        const dueMs = t0 + issued * intervalMs;
        if (inflight[c]! < options.inflightMax) start(c, dueMs);
        else (waiting[c] as number[]).push(dueMs);
      }
      if (issued < total) setTimeout(tick, Math.max(0, t0 + issued * intervalMs - performance.now()));
      else drainTimer = setTimeout(finish, DRAIN_MS_MAX);
    };
    tick();
  });
}
