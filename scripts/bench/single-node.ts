/**
 * Single-node throughput: Chorus through its SDK against the raw ceiling, in one run.
 *
 * Starts a real `chorus start` node (LMDB, durability fsync) and the raw server
 * (raw-server.ts: bare ws + cbor-x + LMDB, same durability) as separate processes, then
 * drives each from this process with the same pipelining window (requests in flight) and
 * the same per-turn frame batching: puts of unique keys with 100-byte values, then gets of
 * those keys. Prints operations per second for both and their ratio. The ratio is against
 * the raw server with Chorus's key layout (token-ordered); the raw server with plain keys is
 * printed too, to show what the layout itself costs LMDB.
 *
 * Usage: npm run bench -- [--seconds 5] [--window 256] [--value-bytes 100]
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Encoder } from 'cbor-x';
import { WebSocket } from 'ws';
import { connect } from '../../lib/client/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const SECONDS = arg('seconds', 5);
const WINDOW = arg('window', 256);
const VALUE_BYTES = arg('value-bytes', 100);

const children: ChildProcess[] = [];
const dirs: string[] = [];
function cleanup(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function spawnUntil(command: string[], pattern: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, command, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${command.join(' ')} did not start: ${out}`)), 20000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = pattern.exec(out);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ child, match });
      }
    });
    child.on('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}: ${out}`)));
  });
}

/** Runs `op(i)` with `WINDOW` in flight for `SECONDS`; returns operations per second. */
async function drive(op: (i: number) => Promise<unknown>, count?: number): Promise<{ rate: number; done: number }> {
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while ((count === undefined ? performance.now() < deadline : next < count)) {
      const i = next++;
      await op(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, lane));
  return { rate: done / ((performance.now() - started) / 1000), done };
}

/** A minimal pipelining client for the raw server, batching per turn like the SDK. */
async function rawClient(port: number): Promise<{ put(b: string, k: string, v: Uint8Array): Promise<void>; get(b: string, k: string): Promise<void>; close(): void }> {
  const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const pending = new Map<number, () => void>();
  let outbox: unknown[] = [];
  let id = 0;
  ws.on('message', (data: Buffer) => {
    for (const reply of cbor.decode(data) as { id: number }[]) {
      pending.get(reply.id)?.();
      pending.delete(reply.id);
    }
  });
  const send = (request: Record<string, unknown>): Promise<void> =>
    new Promise((r) => {
      const rid = id++;
      pending.set(rid, r);
      if (outbox.length === 0) setImmediate(() => {
        const batch = outbox;
        outbox = [];
        ws.send(cbor.encode(batch));
      });
      outbox.push({ ...request, id: rid });
    });
  return {
    put: (b, k, v) => send({ t: 'put', b, k, v }),
    get: (b, k) => send({ t: 'get', b, k }),
    close: () => ws.close(),
  };
}

async function main(): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).fill(120);
  console.log(`single-node benchmark: ${SECONDS}s per phase, ${WINDOW} requests in flight, ${VALUE_BYTES}-byte values, durability fsync`);

  const raw = async (layout: 'token' | 'plain'): Promise<{ put: number; get: number }> => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-raw-'));
    dirs.push(dir);
    const server = await spawnUntil(['--import', 'tsx', 'scripts/bench/raw-server.ts', dir, layout], /listening (\d+)/);
    const client = await rawClient(Number(server.match[1]));
    const put = await drive((i) => client.put('bench', `k${i}`, value));
    const get = await drive((i) => client.get('bench', `k${i % put.done}`));
    client.close();
    server.child.kill('SIGTERM');
    return { put: put.rate, get: get.rate };
  };
  const rawToken = await raw('token');
  const rawPlain = await raw('plain');

  const nodeDir = mkdtempSync(join(tmpdir(), 'chorus-bench-node-'));
  dirs.push(nodeDir);
  const node = await spawnUntil(['dist/cli/main.js', 'start', '--port', '0', '--data', nodeDir], /"msg":"ready"[^\n]*"address":"([^"]+)"|"address":"([^"]+)"[^\n]*"msg":"ready"/);
  const address = node.match[1] ?? node.match[2];
  const db = await connect({ nodes: [address as string], timeoutMs: 30000 });
  const put = await drive((i) => db.put('bench', `k${i}`, value));
  const get = await drive((i) => db.get('bench', `k${i % put.done}`));
  await db.close();
  node.child.kill('SIGTERM');

  const row = (name: string, chorus: number, ceiling: number): string =>
    `${name.padEnd(5)} chorus ${chorus.toFixed(0).padStart(8)} ops/s   raw ${ceiling.toFixed(0).padStart(8)} ops/s   ratio ${((100 * chorus) / ceiling).toFixed(1)}%`;
  console.log(row('put', put.rate, rawToken.put));
  console.log(row('get', get.rate, rawToken.get));
  console.log(`raw with plain (unhashed, sequential) keys, for scale: put ${rawPlain.put.toFixed(0)} ops/s, get ${rawPlain.get.toFixed(0)} ops/s`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
