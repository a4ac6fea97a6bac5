/**
 * Typed-bucket benchmark, three figures in one run:
 *
 * 1. Counter increments per second on a local 3-node cluster (n = 3, w = quorum, durable
 *    writes), driven through the SDK by `--clients` connections × `--inflight` increments
 *    outstanding over `--keys` counters, with p50/p99 latency. The ceiling, measured in the
 *    same run on the same cluster, is plain `kv` puts of an 8-byte value, each in-flight slot
 *    writing a key of its own with the context of its previous write (a counter kept in a
 *    `kv` bucket by a writer that never conflicts: what an update costs the cluster besides
 *    the merge).
 * 2. Yjs update merges per second as a replica does them (`applyDocUpdate`: merge the update
 *    into the stored bytes, compacting now and then), against `Y.mergeUpdates` without
 *    compaction and, as the ceiling, `Y.applyUpdate` into a live Y.Doc (what an editor does,
 *    with no bytes to rewrite; a replica holding a Y.Doc per key in memory could do this).
 * 3. The stored size of a document after `--edits` small edits (typing, with backspaces and
 *    cursor jumps, each sent as its own update), relative to its live content: the document
 *    re-encoded by a garbage-collecting Y.Doc (the text, plus the tombstones Yjs needs to
 *    merge concurrent edits), and, for reference, the UTF-8 bytes of the text. Goal: ≤ 2×.
 *
 * Usage: npm run bench:crdt -- [--seconds 8] [--clients 4] [--inflight 32] [--keys 100] [--edits 50000] [--seed 1]
 *          [--parts counters,docs]
 */

import { rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as Y from 'yjs';
import { Prng } from '../../lib/base/prng.js';
import { applyDocUpdate, compactDoc, emptyDocState } from '../../lib/crdt/doc.js';
import { connect, type Client, type Context } from '../../lib/index.js';
import { buildState, CLI, freePort, spawnNode, stop, tempDir, waitFor, waitReady, positive, runBench, type Child } from './children.js';
import { Histogram } from './hdr.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    clients: { type: 'string', default: '4' },
    inflight: { type: 'string', default: '32' },
    keys: { type: 'string', default: '100' },
    edits: { type: 'string', default: '50000' },
    seed: { type: 'string', default: '1' },
    parts: { type: 'string', default: 'counters,docs' },
  },
});

const SECONDS = positive('seconds', flags.seconds);
const CLIENTS = positive('clients', flags.clients);
const INFLIGHT = positive('inflight', flags.inflight);
const KEYS = positive('keys', flags.keys);
const EDITS = positive('edits', flags.edits);
const SEED = positive('seed', flags.seed);
const NODES = 3;
const WARMUP_SECONDS = 2;
const START_TIMEOUT_MS = 30_000;

interface Phase {
  readonly label: string;
  readonly throughput: number;
  readonly latency: Histogram;
  readonly errors: number;
  readonly ops: number;
}

/** Keeps `INFLIGHT` operations outstanding per client for `SECONDS`; latency from issue to completion. */
async function closedLoop(label: string, clients: readonly Client[], op: (db: Client, key: string, slot: string) => Promise<unknown>, prng: Prng, seconds = SECONDS): Promise<Phase> {
  const latency = new Histogram();
  let done = 0;
  let errors = 0;
  const endsAt = performance.now() + seconds * 1000;
  const startedMs = performance.now();
  await Promise.all(
    clients.flatMap((db, c) =>
      Array.from({ length: INFLIGHT }, async (_, slot) => {
        const draw = prng.fork(`${c}.${slot}`);
        while (performance.now() < endsAt) {
          const key = `k${draw.int(KEYS)}`;
          const issued = performance.now();
          try {
            await op(db, key, `${c}.${slot}`);
            latency.recordMs(performance.now() - issued);
            done++;
          } catch {
            errors++;
            if (errors > 1000 && errors > done) throw new Error(`${label}: most operations fail`);
          }
        }
      }),
    ),
  );
  return { label, throughput: done / ((performance.now() - startedMs) / 1000), latency, errors, ops: done };
}

function line(phase: Phase): string {
  return (
    `${phase.label.padEnd(26)} ${Math.round(phase.throughput).toLocaleString('en-US').padStart(8)} ops/s   ` +
    `p50 ${phase.latency.percentileMs(50).toFixed(2)} ms   p99 ${phase.latency.percentileMs(99).toFixed(2)} ms${phase.errors > 0 ? `   ${phase.errors} errors` : ''}`
  );
}

async function counters(): Promise<void> {
  const state = buildState();
  if (state === 'missing') throw new Error(`${CLI} is missing: run npm run build first`);
  if (state === 'stale') console.log('  note: lib/ has changed since the last build; the nodes run the JavaScript in dist/');
  const children: Child[] = [];
  const dirs: string[] = [];
  const clients: Client[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < NODES; i++) ports.push(await freePort('127.0.0.1'));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    for (let i = 0; i < NODES; i++) {
      const dir = tempDir(`chorus-bench-crdt-n${i + 1}-`);
      dirs.push(dir);
      const seeds = addresses.filter((_, j) => j !== i).join(',');
      children.push(spawnNode(`n${i + 1}`, [CLI, 'start', '--host', '127.0.0.1', '--port', String(ports[i]), '--data', dir, '--id', `n${i + 1}`, '--seeds', seeds]));
    }
    await Promise.all(children.map((child, i) => waitReady(child, addresses[i] as string, START_TIMEOUT_MS)));
    for (let i = 0; i < CLIENTS; i++) clients.push(await connect({ nodes: addresses.map((_, j) => addresses[(i + j) % NODES] as string) }));
    const admin = clients[0] as Client;
    await admin.admin('bucket-set', { bucket: 'likes', props: { type: 'counter' } });
    await waitFor(
      'every node to know likes is a counter bucket',
      async () => {
        const statuses = await Promise.all(addresses.map(async (a) => (await (await fetch(`http://${a}/status`)).json()) as { buckets: Record<string, { type?: string }> }));
        return statuses.every((s) => s.buckets['likes']?.type === 'counter') ? true : undefined;
      },
      START_TIMEOUT_MS,
    );
    await waitFor('the clients to learn the topology', () => (clients.every((c) => c.topology() !== undefined) ? true : undefined), START_TIMEOUT_MS);
    const prng = new Prng(SEED);
    const contexts = new Map<string, Context>();
    const value = new Uint8Array(8);
    // Each slot writes a key of its own, chaining contexts, so no write ever makes a sibling:
    // the best case of a counter kept in a kv bucket (read-modify-write without conflicts).
    const put = async (db: Client, _key: string, slot: string): Promise<void> => {
      const context = contexts.get(slot);
      const result = await db.put('plain', `slot-${slot}`, value, context === undefined ? {} : { context });
      if (result.context !== undefined) contexts.set(slot, result.context);
    };
    const increment = (db: Client, key: string): Promise<unknown> => db.counter('likes', key).increment(1);
    // Warm both paths up (JIT, connections, the keys' first writes) before measuring.
    await closedLoop('warm-up', clients, put, prng.fork('warm-put'), WARMUP_SECONDS);
    const warm = await closedLoop('warm-up', clients, increment, prng.fork('warm-inc'), WARMUP_SECONDS);
    const ceiling = await closedLoop('kv put with context', clients, put, prng.fork('put'));
    const measured = await closedLoop('counter increment', clients, increment, prng.fork('inc'));
    console.log(`\n1. counters on ${NODES} nodes (n=3, w=quorum, fsync), ${CLIENTS} clients × ${INFLIGHT} in flight, ${KEYS} keys, ${SECONDS} s each`);
    console.log(`  ${line(measured)}`);
    console.log(`  ${line(ceiling)}   (ceiling)`);
    console.log(`  ratio: ${(measured.throughput / ceiling.throughput).toFixed(2)}× the kv put ceiling`);
    const total = (await Promise.all(Array.from({ length: KEYS }, (_, i) => admin.counter('likes', `k${i}`).value({ r: 'all' })))).reduce((a, b) => a + b, 0);
    const acknowledged = warm.ops + measured.ops;
    const failed = warm.errors + measured.errors;
    const verdict = total === acknowledged ? 'equal' : failed > 0 && total > acknowledged && total <= acknowledged + failed ? `within the ${failed} that failed` : 'NOT EQUAL';
    console.log(`  check: the counters sum to ${total.toLocaleString('en-US')}, the increments acknowledged ${acknowledged.toLocaleString('en-US')}: ${verdict}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(children.map((c) => stop(c)));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Edits like typing: a character typed at the cursor, now and then a backspace (4%) or a
 * jump of the cursor to a random place (1%); each edit is its own Yjs update, as an editor
 * sends them.
 */
function edits(count: number, prng: Prng): { updates: Uint8Array[]; text: string } {
  const doc = new Y.Doc();
  doc.clientID = 1;
  const text = doc.getText('text');
  const updates: Uint8Array[] = [];
  doc.on('update', (update: Uint8Array) => updates.push(update));
  let cursor = 0;
  const letters = 'abcdefghijklmnopqrstuvwxyz ';
  for (let i = 0; i < count; i++) {
    const roll = prng.next();
    if (roll < 0.01) {
      cursor = prng.int(text.length + 1);
    } else if (roll < 0.05) {
      if (cursor > 0) text.delete(--cursor, 1);
    } else {
      text.insert(cursor++, letters[prng.int(letters.length)] as string);
    }
  }
  return { updates, text: text.toString() };
}

function docs(): void {
  const prng = new Prng(SEED).fork('doc');
  const { updates, text } = edits(EDITS, prng);
  // 2. merges per second, as replicas do them; a live Y.Doc (what an editor keeps in memory) is the ceiling.
  let state = emptyDocState();
  let startedMs = performance.now();
  for (const update of updates) state = applyDocUpdate(state, update);
  const chorusMs = performance.now() - startedMs;
  let raw = emptyDocState();
  startedMs = performance.now();
  for (const update of updates) raw = Y.mergeUpdates([raw, update]);
  const rawMs = performance.now() - startedMs;
  const live = new Y.Doc();
  startedMs = performance.now();
  for (const update of updates) Y.applyUpdate(live, update);
  const liveMs = performance.now() - startedMs;
  const rate = (ms: number): string => Math.round(EDITS / (ms / 1000)).toLocaleString('en-US').padStart(9);
  console.log(`\n2. Yjs update merges (${EDITS.toLocaleString('en-US')} updates of one edit each, into one growing document)`);
  console.log(`  applyDocUpdate: merged into the stored bytes, compacted now and then  ${rate(chorusMs)} merges/s`);
  console.log(`  Y.mergeUpdates into the bytes, never compacted                       ${rate(rawMs)} merges/s`);
  console.log(`  Y.applyUpdate into a live Y.Doc (ceiling: no bytes to rewrite)       ${rate(liveMs)} merges/s`);
  console.log(`  ratio: ${(liveMs / chorusMs).toFixed(3)}× the ceiling, ${(rawMs / chorusMs).toFixed(2)}× merging without compaction (a merge rewrites the whole state, so its cost grows with the document)`);
  // 3. stored size against live content.
  const check = new Y.Doc();
  Y.applyUpdateV2(check, state);
  if (check.getText('text').toString() !== text) throw new Error('the stored document does not hold the edited text');
  const liveBytes = compactDoc(state).byteLength;
  const utf8 = new TextEncoder().encode(text).byteLength;
  console.log(`\n3. stored size after ${EDITS.toLocaleString('en-US')} edits (typing, 4% backspaces, 1% cursor jumps; ${text.length.toLocaleString('en-US')} characters live)`);
  console.log(`  stored ${state.byteLength.toLocaleString('en-US')} bytes; the same updates merged without compaction ${raw.byteLength.toLocaleString('en-US')} bytes`);
  console.log(`  live document: ${liveBytes.toLocaleString('en-US')} bytes (re-encoded with garbage collection: the text, and what Yjs keeps of deleted items to merge concurrent edits)`);
  const ratio = state.byteLength / liveBytes;
  console.log(`  ratio: ${ratio.toFixed(2)}× the live document (goal ≤ 2×: ${ratio <= 2 ? 'met' : 'NOT met'}); ${(state.byteLength / utf8).toFixed(2)}× the ${utf8.toLocaleString('en-US')} bytes of the text itself`);
}

async function main(): Promise<number> {
  console.log(`typed-bucket benchmark: seed ${SEED}; machine: ${availableParallelism()} cores, load average ${loadavg()[0]?.toFixed(2)} before the run`);
  const parts = (flags.parts ?? '').split(',');
  if (parts.includes('counters')) await counters();
  if (parts.includes('docs')) docs();
  return 0;
}

runBench(main);
