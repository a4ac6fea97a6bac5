/**
 * Real `chorus start` processes for integration specs.
 *
 * Each node runs the built CLI (`dist/cli/main.js`, built by `npm test`'s pretest step) in
 * its own process group (`detached`), so a kill reaches the node itself and never an npm
 * wrapper. Every started process is tracked and killed when the spec ends, and again when
 * the mocha process exits, so a failing spec leaves nothing running. Start-up waits for the
 * node's `"msg":"ready"` log line with a deadline, never a bare sleep.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly address: string;
  readonly nodeId: string;
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartNodeOptions {
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly dataDir?: string;
  readonly host?: string;
  readonly port?: number;
  readonly readyTimeoutMs?: number;
}

/** A fresh temporary directory, removed by `removeTempDirs()`. */
const tempDirs: string[] = [];
export function tempDir(prefix = 'chorus-spec-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Runs the CLI to completion (for put/get/del and bad-config checks). */
export function runCli(args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...cleanEnv(), ...options.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(new Error(`chorus ${args.join(' ')} did not finish within ${options.timeoutMs ?? 15000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 15000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The environment without CHORUS_* variables of the caller, so a developer's shell cannot skew a spec. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CHORUS_') && v !== undefined) env[k] = v;
  return env;
}

export async function startNodeProcess(options: StartNodeOptions = {}): Promise<NodeProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const args = [
    CLI,
    'start',
    '--host',
    options.host ?? '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--data',
    dataDir,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...cleanEnv(), ...options.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolveExit({ code, signal });
    });
  });
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));

  const ready = new Promise<Record<string, unknown>>((resolveReady, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(new Error(`node did not log "ready" within ${options.readyTimeoutMs ?? 15000} ms; stderr: ${stderr.join('')}; logs: ${JSON.stringify(logs.slice(-5))}`));
    }, options.readyTimeoutMs ?? 15000);
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'ready') {
            clearTimeout(timer);
            resolveReady(entry);
          }
        } catch {
          stderr.push(`(stdout, not JSON) ${line}\n`);
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node exited before it was ready (code ${code}, signal ${signal}); stderr: ${stderr.join('')}`));
    });
  });
  const entry = await ready;
  return {
    child,
    address: String(entry.address),
    nodeId: String(entry.node),
    logs,
    stderr,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      killGroup(child, signal);
      return exited;
    },
  };
}

/** Kills every process still running; for `after`/`afterEach` hooks. */
export async function killAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(new Promise((r) => child.once('exit', r)));
    killGroup(child, 'SIGKILL');
  }
  await Promise.all(waits);
}

/** Polls `check` until it returns a value other than undefined, or fails naming what was awaited. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
