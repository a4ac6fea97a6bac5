/**
 * Checks client-supplied Yjs updates before the core merges them, with bounded time and memory.
 *
 * Why a worker. Yjs trusts its input. Some updates of a few bytes make its decoder loop for a
 * very long time or allocate without end (yjs issue 687: a struct count is a varint, so a
 * few bytes can claim billions of structs, and the v2 format's run-length decoders keep
 * answering after their input is used up). Clients send v1, whose decoder in yjs 13.6 throws
 * at the end of its input, so those short bombs fail fast; but valid-looking v1 updates can
 * still cost time quadratic in their size (a delete set whose ranges all cover the same
 * structs: 240 KB of them keep Yjs busy for seconds), and the next decoder bug is unknown.
 * None of this can be ruled out by a size check or interrupted inside the event loop. So each
 * update is decoded in a `worker_threads` Worker with `resourceLimits` (a heap and stack of
 * its own: running out kills the worker, not the node) under a watchdog: a check that
 * overruns its time budget (`timeoutMs`, scaled up for large updates) has its worker
 * terminated, the update is refused as taking too long, and a fresh worker takes the rest of
 * the queue. The core (lib/crdt/doc.ts) then merges only updates known to decode.
 *
 * What the worker checks. An update must be 1 to DOC_UPDATE_BYTES_MAX bytes; `Y.decodeUpdate`
 * (v1) must read it; every struct and delete range must end at a clock Yjs can count exactly
 * (at most 2^53 − 1: past it, clocks stop advancing); it must apply to a fresh Y.Doc and
 * encode back; and `Y.mergeUpdates` and `Y.encodeStateVectorFromUpdate`, which the core runs
 * on it, must read it too. An update that depends on history the fresh document lacks is
 * accepted: Yjs keeps such structs pending, carries them through merges and re-encodes them
 * with the document, and applies them once their dependencies arrive. What matters here is
 * only that decoding it ends.
 *
 * Shape. Checks are serialized through one worker (a FIFO queue of at most `queueMax`
 * validations waiting or running; past it the answer is "busy", which the caller turns into
 * OVERLOADED), each with its own watchdog, which starts once the worker is ready, so a cold
 * start is not charged to the update. The worker starts on first use and is replaced after
 * it crashes, exits, runs out of memory or is terminated. An idle worker is unref'd, so it
 * never keeps a process alive; while checks are queued or running it is ref'd, like any
 * pending I/O, so an awaited validation is answered before the process may exit (the
 * watchdogs bound how long that is). `validate` never rejects.
 *
 * Loading. The worker is an inline CommonJS script (`eval: true`), so it needs no file of its
 * own and runs the same from TypeScript sources under tsx and from the compiled dist/; it is
 * started without the parent's `execArgv` (no loader hooks, nothing to compile). It imports
 * yjs by an absolute URL that this module resolves, so the working directory does not matter,
 * and it takes yjs's ES build, the one the node runs: the CommonJS build reaches lib0 through
 * namespace getters that make merging about five times slower.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DOC_UPDATE_BYTES_MAX } from '../crdt/doc.js';

export interface DocValidatorOptions {
  /**
   * Milliseconds the check of a small update may take before its worker is terminated; 250
   * unless given. Larger updates get as much again per TIMEOUT_SCALE_BYTES of their size.
   */
  readonly timeoutMs?: number;
  /** Validations waiting or running before more are answered "busy"; 1024 unless given. */
  readonly queueMax?: number;
}

/** `busy` marks a refusal that is not the update's fault: the caller answers OVERLOADED. */
export type DocValidation = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly busy?: true };

/**
 * Milliseconds the check of a small update may take. A keystroke's update is checked in well
 * under a millisecond once the worker is warm; the updates of yjs issue 687 would take
 * minutes or forever.
 */
const TIMEOUT_MS_DEFAULT = 250;

/**
 * Bytes of update per further `timeoutMs` of watchdog. Legitimate large updates (an existing
 * document uploaded whole) cost time in proportion to their size: a 1 MiB update of 100,000
 * map entries takes about 250 ms to check in a warm worker and more in a fresh one. Scaling
 * gives it 9 × 250 ms, while a bomb still costs the worker at most that, off the event loop.
 */
const TIMEOUT_SCALE_BYTES = 128 * 1024;

/**
 * Validations waiting or running. Each holds its update (at most 1 MiB), and checks run one
 * at a time, so a deeper queue would only hold memory and add latency.
 */
const QUEUE_MAX_DEFAULT = 1024;

/**
 * Milliseconds a new worker may take to load yjs and say it is ready. Starting a thread and
 * importing yjs takes tens of milliseconds; past this something is wrong with the host.
 */
const WORKER_START_MS_MAX = 10_000;

/**
 * The worker's own limits. Decoding a 1 MiB update builds at most a few hundred thousand
 * structs (tens of MiB), so 128 MiB of old generation leaves room; a decode that needs more
 * is refused, not given the node's heap. The stack bounds Yjs's recursion on nested types.
 */
const WORKER_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

/** Where the worker loads yjs from; see `yjsModuleUrl`. */
const YJS_URL = yjsModuleUrl();

/**
 * The worker: plain CommonJS, so that it needs no compiler. It answers each `{ id, update }`
 * with `{ id, ok, reason? }`, and says `{ ready: true }` once yjs has loaded.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const BYTES_MAX = workerData.updateBytesMax;
const EMPTY = new Uint8Array([0, 0]);
let Y;

function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

function clockProblem(decoded) {
  for (const struct of decoded.structs) {
    if (struct.id.clock + struct.length > Number.MAX_SAFE_INTEGER) return 'a struct ends past clock 2^53 - 1';
  }
  for (const items of decoded.ds.clients.values()) {
    for (const item of items) {
      if (item.clock + item.len > Number.MAX_SAFE_INTEGER) return 'a deletion ends past clock 2^53 - 1';
    }
  }
  return undefined;
}

function check(update) {
  if (!(update instanceof Uint8Array)) return 'not bytes';
  if (update.byteLength === 0 || update.byteLength > BYTES_MAX) {
    return 'must be 1 to ' + BYTES_MAX + ' bytes, got ' + update.byteLength;
  }
  try {
    const problem = clockProblem(Y.decodeUpdate(update));
    if (problem !== undefined) return problem;
  } catch (error) {
    return 'does not decode: ' + describe(error);
  }
  const doc = new Y.Doc({ gc: true, guid: 'validation' });
  doc.clientID = 1;
  try {
    Y.applyUpdate(doc, update);
    Y.encodeStateAsUpdate(doc);
  } catch (error) {
    return 'does not apply to a document: ' + describe(error);
  } finally {
    doc.destroy();
  }
  try {
    Y.mergeUpdates([EMPTY, update]);
    Y.encodeStateVectorFromUpdate(update);
  } catch (error) {
    return 'does not merge: ' + describe(error);
  }
  return undefined;
}

parentPort.on('message', (message) => {
  const reason = check(message.update);
  parentPort.postMessage(reason === undefined ? { id: message.id, ok: true } : { id: message.id, ok: false, reason });
});
// A failed import rejects unhandled, which ends the worker with an error before it is ready.
import(workerData.yjsUrl).then((module) => {
  Y = module;
  parentPort.postMessage({ ready: true });
});
`;

interface Job {
  readonly id: number;
  readonly update: Uint8Array;
  readonly resolve: (result: DocValidation) => void;
}

type WorkerMessage = { readonly ready: true } | { readonly id: number; readonly ok: boolean; readonly reason?: string };

const BUSY: DocValidation = { ok: false, reason: 'validator busy', busy: true };
const CLOSED: DocValidation = { ok: false, reason: 'validator closed' };

export class DocValidator {
  private readonly timeoutMs: number;
  private readonly queueMax: number;
  private readonly waiting: Job[] = [];
  private running: Job | undefined;
  private worker: Worker | undefined;
  private workerReady = false;
  /** The watchdog of the running check, or of a starting worker. */
  private timer: NodeJS.Timeout | undefined;
  private jobIdNext = 1;
  private closed = false;

  constructor(options: DocValidatorOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
    this.queueMax = options.queueMax ?? QUEUE_MAX_DEFAULT;
    if (!(this.timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${this.timeoutMs}`);
    if (!Number.isInteger(this.queueMax) || this.queueMax < 1) throw new RangeError(`queueMax must be a positive integer, got ${this.queueMax}`);
  }

  /** Checks one update; resolves, never rejects. */
  validate(update: Uint8Array): Promise<DocValidation> {
    if (this.closed) return Promise.resolve(CLOSED);
    if (this.waiting.length + (this.running ? 1 : 0) >= this.queueMax) return Promise.resolve(BUSY);
    // Sizes are checked here as well as in the worker, so that an oversized update is never copied to it.
    if (update.byteLength === 0 || update.byteLength > DOC_UPDATE_BYTES_MAX) {
      return Promise.resolve({ ok: false, reason: `must be 1 to ${DOC_UPDATE_BYTES_MAX} bytes, got ${update.byteLength}` });
    }
    return new Promise((resolve) => {
      this.waiting.push({ id: this.jobIdNext++, update, resolve });
      this.pump();
    });
  }

  /** Terminates the worker; every validation not yet answered resolves as closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const jobs = this.running ? [this.running, ...this.waiting] : [...this.waiting];
    this.running = undefined;
    this.waiting.length = 0;
    const worker = this.dropWorker();
    for (const job of jobs) job.resolve(CLOSED);
    if (worker) await worker.terminate();
  }

  /** Starts the next check once a worker is ready and none is running. */
  private pump(): void {
    if (this.closed) return;
    this.holdProcess();
    if (this.running || this.waiting.length === 0) return;
    if (!this.worker) this.startWorker();
    if (!this.workerReady) return;
    const job = this.waiting.shift() as Job;
    this.running = job;
    // A copy of just the update's bytes: posting a view would clone the whole buffer behind it.
    const update = job.update.slice();
    (this.worker as Worker).postMessage({ id: job.id, update }, [update.buffer]);
    this.arm(() => this.onTimeout(job), this.budgetMs(job.update.byteLength));
  }

  private startWorker(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { yjsUrl: YJS_URL, updateBytesMax: DOC_UPDATE_BYTES_MAX },
      resourceLimits: WORKER_RESOURCE_LIMITS,
    });
    this.worker = worker;
    this.workerReady = false;
    worker.on('message', (message: WorkerMessage) => this.onMessage(worker, message));
    worker.on('error', (error) => this.onWorkerGone(worker, error.message));
    worker.on('messageerror', (error) => this.onWorkerGone(worker, `unreadable message: ${error.message}`));
    worker.on('exit', (code) => this.onWorkerGone(worker, `exited with code ${code}`));
    // After the listeners, which ref the worker's port as they are added.
    this.holdProcess();
    this.arm(() => this.onWorkerGone(worker, `not ready after ${WORKER_START_MS_MAX} ms`), WORKER_START_MS_MAX);
  }

  private onMessage(worker: Worker, message: WorkerMessage): void {
    if (worker !== this.worker) return;
    if ('ready' in message) {
      this.disarm();
      this.workerReady = true;
      this.pump();
      return;
    }
    const job = this.running;
    if (!job || message.id !== job.id) return;
    this.finish(job, message.ok ? { ok: true } : { ok: false, reason: message.reason ?? 'refused' });
  }

  /** The watchdog of a check: `timeoutMs`, and as much again per TIMEOUT_SCALE_BYTES. */
  private budgetMs(bytes: number): number {
    return Math.ceil(this.timeoutMs * (1 + bytes / TIMEOUT_SCALE_BYTES));
  }

  /** The running check overran: its worker is terminated and the update refused. */
  private onTimeout(job: Job): void {
    if (this.running !== job) return;
    void this.dropWorker()?.terminate();
    this.finish(job, { ok: false, reason: `took too long to decode (over ${this.budgetMs(job.update.byteLength)} ms)` });
  }

  /**
   * The worker died. If it was checking an update, the update killed it (it ran out of memory
   * or stack), so the update is refused; if it died before it was ready, the node cannot check
   * updates for now, which is not the client's fault, so the waiting one is answered busy.
   */
  private onWorkerGone(worker: Worker, why: string): void {
    if (worker !== this.worker) return;
    const ready = this.workerReady;
    void this.dropWorker()?.terminate();
    const job = this.running ?? (ready ? undefined : this.waiting.shift());
    if (!job) return;
    if (ready) this.finish(job, { ok: false, reason: `the check failed: ${why}` });
    else this.finish(job, { ok: false, reason: `validator unavailable: ${why}`, busy: true });
  }

  private finish(job: Job, result: DocValidation): void {
    if (this.running === job) {
      this.running = undefined;
      this.disarm();
    }
    job.resolve(result);
    this.pump();
  }

  /**
   * A worker with checks to do keeps the process alive, like any pending I/O, so that an
   * awaited validation is answered; an idle one never does.
   */
  private holdProcess(): void {
    if (!this.worker) return;
    if (this.running || this.waiting.length > 0) this.worker.ref();
    else this.worker.unref();
  }

  /** Forgets the current worker (its late events are ignored) and returns it for terminating. */
  private dropWorker(): Worker | undefined {
    const worker = this.worker;
    this.worker = undefined;
    this.workerReady = false;
    this.disarm();
    return worker;
  }

  private arm(onFire: () => void, ms: number): void {
    this.disarm();
    this.timer = setTimeout(onFire, ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The URL of yjs's ES build: the `import` entry of the package's `exports`, found next to the
 * package.json that `require` resolves. Should the package ever stop publishing one, the
 * CommonJS entry works too, only slower.
 */
function yjsModuleUrl(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('yjs/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports?: { '.'?: { import?: unknown } } };
  const entry = manifest.exports?.['.']?.import;
  if (typeof entry === 'string') return pathToFileURL(join(dirname(manifestPath), entry)).href;
  return pathToFileURL(require.resolve('yjs')).href;
}
