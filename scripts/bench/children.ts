/**
 * Child processes for the scripts that run local clusters: spawning, waiting with deadlines,
 * and stopping every one of them whatever happens.
 *
 * Each child runs in its own process group (`detached`), so a Ctrl-C in the terminal reaches
 * only the script, which then decides how the children stop: SIGTERM first (a Chorus node
 * finishes the writes under way and closes LMDB), SIGKILL once a deadline passes. A child
 * still running when the script exits is killed with SIGKILL from the `exit` handler, and
 * temporary directories made here are removed then too. Waiting is always polling with a
 * deadline, and a wait that fails names what it awaited.
 */

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');

/** How long a child has to stop after SIGTERM before it gets SIGKILL. */
export const STOP_DEADLINE_MS = 10_000;
/** Lines of output kept per child, to show when it fails; older lines are dropped. */
const TAIL_LINES_MAX = 50;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  /** The last lines the child wrote (stdout and stderr). */
  readonly tail: string[];
  /** True once `stop` was called: an exit after that is expected. */
  stopping: boolean;
}

const children = new Set<Child>();

/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on every mainstream Linux. */
const PROC_TICKS_PER_SECOND = 100;

/** What /proc says a group of processes has used so far. */
export interface ProcSample {
  /** CPU seconds, user + system, all threads. */
  readonly cpuSeconds: number;
  /** CPU seconds of the main threads alone (the event loops); the rest is other threads (LMDB commits, V8's GC helpers, libuv's pool). */
  readonly mainCpuSeconds: number;
  /**
   * Context switches of the main threads, voluntary and not: about once each time an event
   * loop goes to sleep with nothing to do and is woken again.
   */
  readonly mainSwitches: number;
}

/**
 * CPU use of the children so far, from /proc/PID/stat and the main thread's
 * /proc/PID/task/PID/{stat,status}; undefined where there is no /proc (not Linux) or a child
 * is gone.
 */
export function procSample(group: readonly Child[]): ProcSample | undefined {
  let ticks = 0;
  let mainTicks = 0;
  let mainSwitches = 0;
  for (const child of group) {
    const pid = child.process.pid;
    try {
      ticks += statTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      mainTicks += statTicks(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
      const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
      mainSwitches += statusField(status, 'voluntary_ctxt_switches') + statusField(status, 'nonvoluntary_ctxt_switches');
    } catch {
      return undefined;
    }
  }
  return { cpuSeconds: ticks / PROC_TICKS_PER_SECOND, mainCpuSeconds: mainTicks / PROC_TICKS_PER_SECOND, mainSwitches };
}

/** utime + stime of a /proc stat line. */
function statTicks(stat: string): number {
  // Fields after the command name (which may hold spaces, inside parentheses): state is the
  // first, utime and stime the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A counter of a /proc status file. */
function statusField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(status);
  if (match === null) throw new Error(`/proc status has no ${name}`);
  return Number(match[1]);
}
const tempDirs: string[] = [];

process.on('exit', () => {
  for (const child of children) signalGroup(child, 'SIGKILL');
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Sends `signal` to the child's process group, unless it has exited. */
export function signalGroup(child: Child, signal: NodeJS.Signals): void {
  const pid = child.process.pid;
  if (pid === undefined || child.process.exitCode !== null || child.process.signalCode !== null) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** The environment without CHORUS_* variables of the caller, so a developer's shell cannot skew a run. */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CHORUS_') && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** Called with each complete line of output; lines are also kept in `tail`. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

/** Starts `node ARGS` from the repository root in its own process group. */
export function spawnNode(name: string, args: readonly string[], options: SpawnOptions = {}): Child {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: options.env ?? cleanEnv(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const child = track(name, proc, tail);
  for (const stream of ['stdout', 'stderr'] as const) {
    let buffered = '';
    proc[stream]?.on('data', (data: Buffer) => {
      buffered += data.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        tail.push(line);
        if (tail.length > TAIL_LINES_MAX) tail.shift();
        options.onLine?.(line, stream);
      }
    });
  }
  return child;
}

/**
 * Runs `script` (a benchmark of this directory) in a child Node.js process with this process's
 * options (`--import tsx`), its output interleaved with this one's and a channel for results
 * (`serialization: 'advanced'`: Maps and typed arrays arrive intact, class instances as plain
 * objects). Stopped with the others by `stopAll`, so Ctrl-C reaches its own children too.
 */
export function forkBench(name: string, script: string, args: readonly string[]): Child {
  const proc = fork(script, args, {
    cwd: ROOT,
    execArgv: process.execArgv,
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return track(name, proc, []);
}

/** A started process as a Child, stopped by `stopAll` until it exits. */
function track(name: string, proc: ChildProcess, tail: string[]): Child {
  const exited = new Promise<Exit>((resolveExit) => {
    proc.on('exit', (code, signal) => resolveExit({ code, signal }));
  });
  const child: Child = { name, process: proc, exited, tail, stopping: false };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if the child is still running after `deadlineMs`. Resolves with how it ended. */
export async function stop(child: Child, deadlineMs = STOP_DEADLINE_MS): Promise<Exit & { killed: boolean }> {
  child.stopping = true;
  signalGroup(child, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolveLate) => {
    timer = setTimeout(() => resolveLate('late'), deadlineMs);
  });
  const first = await Promise.race([child.exited, late]);
  clearTimeout(timer);
  if (first !== 'late') return { ...first, killed: false };
  signalGroup(child, 'SIGKILL');
  return { ...(await child.exited), killed: true };
}

/** Stops every child started here that is still running, in parallel. */
export async function stopAll(deadlineMs = STOP_DEADLINE_MS): Promise<void> {
  await Promise.all([...children].map((child) => stop(child, deadlineMs)));
}

/** A fresh temporary directory, removed when the process exits (or by `removeTempDirs`). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Thrown by a `waitFor` check to stop waiting at once: the condition can no longer hold. */
export class GiveUp extends Error {}

/**
 * Polls `check` until it returns something other than undefined, or fails naming what was
 * awaited. Errors thrown by `check` count as "not yet", except `GiveUp`.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The status code of `GET http://ADDRESS/readyz`, within one second. */
export async function readyStatus(address: string): Promise<number> {
  const response = await fetch(`http://${address}/readyz`, { signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Waits until the node at `address` answers `/readyz` with 200. Fails early, with the
 * child's last output, if the child exits first.
 */
export async function waitReady(child: Child, address: string, timeoutMs: number): Promise<void> {
  let exit: Exit | undefined;
  void child.exited.then((e) => (exit = e));
  await waitFor(
    `${child.name} (${address}) to answer /readyz with 200`,
    async () => {
      if (exit !== undefined) {
        throw new GiveUp(`${child.name} exited before it was ready (code ${exit.code}, signal ${exit.signal}); its last output:\n${child.tail.join('\n')}`);
      }
      return (await readyStatus(address)) === 200 ? true : undefined;
    },
    timeoutMs,
  );
}

/** A TCP port nothing listens on at the moment of the call, found by binding port 0 on `host`. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** True when something already listens on `host:port`, or the port cannot be bound. */
export function portTaken(host: string, port: number): Promise<boolean> {
  return new Promise((resolveTaken) => {
    const server = createServer();
    server.once('error', () => resolveTaken(true));
    server.listen(port, host, () => server.close(() => resolveTaken(false)));
  });
}

/**
 * Whether the built CLI is there and newer than every source file under lib/: 'missing',
 * 'stale' (some source changed after the last build) or 'fresh'.
 */
export function buildState(): 'missing' | 'stale' | 'fresh' {
  if (!existsSync(CLI)) return 'missing';
  const builtMs = statSync(CLI).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return newer(path);
      return entry.name.endsWith('.ts') && statSync(path).mtimeMs > builtMs;
    });
  return newer(join(ROOT, 'lib')) ? 'stale' : 'fresh';
}

/**
 * Runs a benchmark's `main` as the process: on Ctrl-C or SIGTERM every child is stopped and
 * every temporary directory removed (exit 130); at the end the same, then exit with `main`'s
 * code once stdout is flushed (a pipe takes writes asynchronously, and exit would cut them).
 */
export function runBench(main: () => Promise<number>): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      console.log(`\n${signal}: stopping every child process`);
      void stopAll(5000).finally(() => {
        removeTempDirs();
        process.exit(130);
      });
    });
  }
  main().then(
    async (code) => {
      await stopAll();
      removeTempDirs();
      process.stdout.write('', () => process.exit(code));
    },
    async (error: unknown) => {
      console.error(error);
      await stopAll();
      removeTempDirs();
      process.exit(1);
    },
  );
}

/** A command-line number that must be positive (and whole unless `integer` is false); throws naming the flag. */
export function positive(name: string, text: string | undefined, integer = true): number {
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new Error(`--${name} must be a positive ${integer ? 'whole ' : ''}number, got ${text}`);
  return value;
}
