/**
 * What a chaos run checks once every fault is healed, and how it waits for the cluster first.
 *
 * Convergence: every node ready, every member table showing every node `up` and alive, and
 * no hint left anywhere (`replication.hintsPending` 0 on every node), within a deadline.
 *
 * Then every key is read at `r=all` twice through a fresh client: the first round
 * read-repairs, the second gives the final sibling set S of each key. The checks:
 *
 * 1. registers (lib/sim/checkers.ts, TESTING.md's versioned-values checker): no acknowledged
 *    put lost (each is in S or was observed by a write that took effect), no zombie (a value
 *    in S that a write which surely landed had seen and superseded; when that write is a
 *    delete, the delete was resurrected), no phantom (a value nobody wrote, or read before
 *    it was written); a key whose final reads failed cannot be judged and fails the check;
 * 2. replicas: every primary of every key (as `whereis` places it) holds exactly S under one
 *    clock (a deleted key's primaries may differ in whether they reaped its tombstone yet), no
 *    node keeps a hint for it, and both final rounds agreed. The same comparison made before
 *    the final reads is reported too, as how far the cluster converged without read repair;
 * 3. health: every node's process runs, answers /readyz, and sees every node up and alive,
 *    and no node exited on its own during the run;
 * 4. nemesis: every fault took effect: each partition was seen by the failure detectors and
 *    each restarted node served again, so a fault that did nothing cannot pass as tested;
 * 5. typed buckets (lib/sim/typed.ts's checker, over their own final `r=all` reads, twice):
 *    each counter at least its acknowledged increments and at most those plus the increments
 *    of unknown outcome; each set holding every acknowledged add no remove named, and nothing
 *    nobody added; every primary holding the same clock and the same merged value.
 */

import { decodeValue } from '../../lib/codec/cbor.js';
import { connect, type Client } from '../../lib/client/index.js';
import { typedValue, type TypedBucketType } from '../../lib/crdt/stored.js';
import { checkRegisters, type RegisterReport } from '../../lib/sim/checkers.js';
import { checkTypedHistory, keyId } from '../../lib/sim/typed.js';
import { poll, sleep, type ChaosCluster, type NodeStatus } from './cluster.js';
import type { Episode } from './nemesis.js';
import { BUCKET, TYPED_BUCKETS, TYPED_KEYS, type ChaosOperation, type ChaosTypedOperation } from './workload.js';

export interface CheckResult {
  readonly name: string;
  readonly passed: boolean;
  /** One line on what was checked and found. */
  readonly summary: string;
  /** Violations (or the first of them), one line each. */
  readonly examples: readonly string[];
  readonly counts: Record<string, number>;
}

export interface Convergence {
  readonly converged: boolean;
  readonly afterMs: number;
  /** What was still wrong at the deadline. */
  readonly waiting: readonly string[];
}

/** Examples kept per check; the counts say how many there were. */
const EXAMPLES_MAX = 10;
/** Each final read: a deadline per attempt, and attempts before the key counts as unreadable. */
const FINAL_READ_TIMEOUT_MS = 10_000;
const FINAL_READ_ATTEMPTS = 3;
/** How long a problem seen in the final health check may take to clear before it fails the check. */
const HEALTH_SETTLE_MS = 5000;
/** Final reads in flight at once. */
const FINAL_READ_PARALLEL = 16;

/** What is still unconverged, one line per problem; empty when the cluster has converged. */
export async function unconverged(cluster: ChaosCluster): Promise<string[]> {
  const problems: string[] = [];
  const ids = cluster.nodes.map((node) => node.id);
  const statuses = await Promise.all(cluster.nodes.map(async (node) => ({ node, notReady: await cluster.notReady(node), status: await cluster.status(node) })));
  for (const { node, notReady, status } of statuses) {
    if (node.state !== 'running') problems.push(`${node.id} is ${node.state}`);
    else if (notReady !== undefined) problems.push(`${node.id} is not ready: ${notReady}`);
    if (status === undefined) {
      if (node.state === 'running') problems.push(`${node.id} does not answer /status`);
      continue;
    }
    const notAlive = ids.filter((id) => !status.members.some((m) => m.id === id && m.live === 'alive' && m.status === 'up'));
    if (notAlive.length > 0) problems.push(`${node.id} sees ${describeRows(status, notAlive)}`);
    if (status.replication.hintsPending > 0) problems.push(`${node.id} keeps ${status.replication.hintsPending} hints`);
  }
  return problems;
}

function describeRows(status: NodeStatus, ids: readonly string[]): string {
  return ids.map((id) => {
    const row = status.members.find((m) => m.id === id);
    return row === undefined ? `${id} absent` : `${id} ${row.status}/${row.live}`;
  }).join(', ');
}

export async function waitConverged(cluster: ChaosCluster, timeoutMs: number): Promise<Convergence> {
  const started = performance.now();
  let waiting: string[] = [];
  const done = await poll(
    async () => {
      waiting = await unconverged(cluster);
      return waiting.length === 0 ? true : undefined;
    },
    timeoutMs,
    250,
  );
  return { converged: done === true, afterMs: performance.now() - started, waiting };
}

export interface FinalReads {
  readonly first: Map<string, string[]>;
  readonly finals: Map<string, string[]>;
  /** Keys whose read failed in every attempt, with the last error. */
  readonly unreadable: Map<string, string>;
}

export async function openChecker(cluster: ChaosCluster): Promise<Client> {
  return connect({ nodes: cluster.nodes.map((node) => node.address), timeoutMs: FINAL_READ_TIMEOUT_MS });
}

/** Every key at `r=all`, twice (the first round repairs); retries each read a few times. */
export async function finalReads(db: Client, keys: readonly string[]): Promise<FinalReads> {
  const unreadable = new Map<string, string>();
  const round = async (): Promise<Map<string, string[]>> => {
    const values = new Map<string, string[]>();
    await inParallel(keys, FINAL_READ_PARALLEL, async (key) => {
      let last = '';
      for (let attempt = 1; attempt <= FINAL_READ_ATTEMPTS; attempt++) {
        try {
          const result = await db.get<string>(BUCKET, key, { r: 'all', timeoutMs: FINAL_READ_TIMEOUT_MS });
          values.set(key, result.values.map(String).sort());
          unreadable.delete(key);
          return;
        } catch (error) {
          const e = error as { code?: string; message?: string };
          last = `${e.code ?? 'ERROR'}: ${e.message ?? String(error)}`;
          await sleep(500 * attempt);
        }
      }
      unreadable.set(key, last);
    });
    return values;
  };
  const first = await round();
  // Repairs are written asynchronously: the second round reads after they had time to land.
  await sleep(500);
  const finals = await round();
  return { first, finals, unreadable };
}

/** Check 1: the register checker over the history, against the final reads. */
export function checkHistory(history: readonly ChaosOperation[], reads: FinalReads): { result: CheckResult; report: RegisterReport } {
  // A key without a final read cannot be judged: its operations are left out and the check fails.
  const judged = history.filter((op) => !reads.unreadable.has(op.key));
  const report = checkRegisters(judged, reads.finals);
  const resurrected = report.resurrected;
  const acknowledgedPuts = history.filter((op) => op.kind === 'put' && op.outcome === 'ok').length;
  const acknowledgedDeletes = history.filter((op) => op.kind === 'del' && op.outcome === 'ok').length;
  const unreadable = [...reads.unreadable].map(([key, error]) => `${key}: no final r=all read succeeded (${error})`);
  const examples = [
    ...report.lost.slice(0, EXAMPLES_MAX).map((line) => `lost: ${line}`),
    ...resurrected.slice(0, EXAMPLES_MAX).map((line) => `resurrected: ${line}`),
    ...report.zombies.filter((line) => !resurrected.includes(line)).slice(0, EXAMPLES_MAX).map((line) => `zombie: ${line}`),
    ...report.phantoms.slice(0, EXAMPLES_MAX).map((line) => `phantom: ${line}`),
    ...unreadable.slice(0, EXAMPLES_MAX),
  ];
  const passed = report.lost.length === 0 && report.zombies.length === 0 && report.phantoms.length === 0 && unreadable.length === 0;
  const finalValues = [...reads.finals.values()].reduce((n, values) => n + values.length, 0);
  return {
    report,
    result: {
      name: 'registers',
      passed,
      summary:
        `${acknowledgedPuts} acknowledged puts (${report.superseded} superseded, ${finalValues} values in the final reads), ${acknowledgedDeletes} acknowledged deletes: ` +
        `${report.lost.length} lost, ${report.zombies.length} zombies (${resurrected.length} resurrected by a delete's own context), ${report.phantoms.length} phantoms` +
        (unreadable.length > 0 ? `, ${unreadable.length} keys unreadable` : ''),
      examples,
      counts: {
        acknowledgedPuts,
        acknowledgedDeletes,
        superseded: report.superseded,
        lost: report.lost.length,
        zombies: report.zombies.length,
        resurrected: resurrected.length,
        phantoms: report.phantoms.length,
        unreadable: unreadable.length,
      },
    },
  };
}

interface Inspection {
  readonly found: boolean;
  readonly tombstone: boolean;
  readonly values: readonly Uint8Array[];
  readonly clock: readonly (readonly [string, number])[];
  readonly hints?: readonly { readonly target: string }[];
}

/**
 * Every primary's copy against `expected` (the final reads), or, without it, against the
 * first primary's copy; one line per difference.
 */
export async function compareReplicas(
  db: Client,
  cluster: ChaosCluster,
  keys: readonly string[],
  expected: ReadonlyMap<string, readonly string[]> | undefined,
): Promise<{ differing: Map<string, string[]>; compared: number }> {
  const differing = new Map<string, string[]>();
  let compared = 0;
  await inParallel(keys, FINAL_READ_PARALLEL, async (key) => {
    if (expected !== undefined && !expected.has(key)) return;
    compared++;
    const problems: string[] = [];
    try {
      const where = (await db.admin('whereis', { bucket: BUCKET, key })) as { primaries: string[] };
      const copies = await Promise.all(where.primaries.map(async (node) => ({ node, copy: (await db.admin('inspect', { bucket: BUCKET, key, node })) as Inspection })));
      const first = copies[0];
      const values = expected?.get(key) ?? (first === undefined ? [] : decodeValues(first.copy.values));
      const against = expected === undefined ? `primary ${first?.node ?? '?'}` : 'the final read';
      for (const { node, copy } of copies) {
        const held = decodeValues(copy.values);
        if (!sameSet(held, values)) problems.push(`${key}: primary ${node} holds [${held.join(', ')}], ${against} [${values.join(', ')}]`);
      }
      const clocks = new Set(copies.map(({ copy }) => clockText(copy.clock)));
      if (values.length > 0 && clocks.size > 1) problems.push(`${key}: the primaries hold different clocks: ${copies.map(({ node, copy }) => `${node} ${clockText(copy.clock)}`).join(', ')}`);
      const hinted = await Promise.all(cluster.nodes.map(async (node) => ({ node: node.id, copy: (await db.admin('inspect', { bucket: BUCKET, key, node: node.id })) as Inspection })));
      for (const { node, copy } of hinted) {
        if ((copy.hints ?? []).length > 0) problems.push(`${key}: ${node} still keeps hints for ${(copy.hints ?? []).map((h) => h.target).join(', ')}`);
      }
    } catch (error) {
      problems.push(`${key}: inspecting the replicas failed: ${String(error)}`);
    }
    if (problems.length > 0) differing.set(key, problems);
  });
  return { differing, compared };
}

/** Check 2: the replicas agree with the final reads, and both rounds agreed. */
export function replicaResult(reads: FinalReads, after: { differing: Map<string, string[]>; compared: number }, before: { differing: Map<string, string[]>; compared: number }): CheckResult {
  const rounds: string[] = [];
  for (const [key, finals] of reads.finals) {
    const first = reads.first.get(key);
    if (first !== undefined && !sameSet(first, finals)) rounds.push(`${key}: the two final r=all reads differ: [${first.join(', ')}] then [${finals.join(', ')}]`);
  }
  const problems = [...[...after.differing.values()].flat(), ...rounds];
  const keysBad = new Set([...after.differing.keys(), ...rounds.map((line) => line.slice(0, line.indexOf(':')))]);
  return {
    name: 'replicas',
    passed: problems.length === 0,
    summary:
      `${after.compared - keysBad.size} of ${after.compared} keys identical on every primary after the final reads` +
      ` (before them, without read repair: ${before.compared - before.differing.size} of ${before.compared})`,
    examples: problems.slice(0, EXAMPLES_MAX),
    counts: { keys: after.compared, keysDiffering: keysBad.size, keysDifferingBeforeRepair: before.differing.size },
  };
}

/**
 * Check 3: every node alive and ready, every table full of live members, no crash on its own.
 * What is wrong at the first look must stay wrong for HEALTH_SETTLE_MS to fail the check (a
 * request lost once is not an unhealthy node), and is reported either way.
 */
export async function healthResult(cluster: ChaosCluster, convergence: Convergence): Promise<CheckResult> {
  const first = await unconverged(cluster);
  const problems = first.length === 0 ? [] : (await waitConverged(cluster, HEALTH_SETTLE_MS)).waiting;
  const transient = problems.length === 0 ? first.map((line) => `at the first look only: ${line}`) : [];
  const crashes = cluster.nodes.flatMap((node) => node.unexpectedExits);
  const all = [...problems, ...crashes];
  return {
    name: 'health',
    passed: all.length === 0,
    summary:
      `${cluster.nodes.length} nodes; ${convergence.converged ? `converged ${(convergence.afterMs / 1000).toFixed(1)} s after healing` : `NOT converged after ${(convergence.afterMs / 1000).toFixed(1)} s`}` +
      `; now ${problems.length === 0 ? 'every node alive and ready, no hints pending' : `${problems.length} problems`}; ${crashes.length} exits nobody asked for`,
    examples: [
      ...all.slice(0, EXAMPLES_MAX),
      ...transient.slice(0, 5),
      ...(convergence.converged ? [] : convergence.waiting.slice(0, 5).map((line) => `at the convergence deadline: ${line}`)),
    ],
    counts: { problems: problems.length, transient: transient.length, unexpectedExits: crashes.length, convergeMs: Math.round(convergence.afterMs) },
  };
}

/** Check 4: every fault took effect. */
export function nemesisResult(episodes: readonly Episode[], skipped: readonly string[]): CheckResult {
  const problems: string[] = [];
  for (const episode of episodes) {
    if (episode.kind === 'partition' && episode.verified !== true) problems.push(`episode ${episode.index} (partition ${episode.targets.join(',')}): ${episode.notes.join('; ') || 'not verified'}`);
    for (const note of episode.notes) if (note.startsWith('restart failed')) problems.push(`episode ${episode.index} (${episode.kind} ${episode.targets.join(',')}): ${note}`);
  }
  const partitions = episodes.filter((e) => e.kind === 'partition');
  const kinds = [...new Set(episodes.map((e) => e.kind))];
  return {
    name: 'nemesis',
    passed: problems.length === 0,
    summary:
      `${episodes.length} faults (${kinds.join(', ') || 'none'}); ${partitions.filter((e) => e.verified === true).length} of ${partitions.length} partitions seen by the failure detectors` +
      (skipped.length > 0 ? `; skipped: ${skipped.join('; ')}` : ''),
    examples: problems.slice(0, EXAMPLES_MAX),
    counts: { faults: episodes.length, partitions: partitions.length, partitionsVerified: partitions.filter((e) => e.verified === true).length },
  };
}

/**
 * Check 5: the typed buckets. Every typed key is read at `r=all` twice (the first round
 * repairs); the second round is judged by the typed checker, and every primary's own copy,
 * merged as a read merges it, must equal it under one clock.
 */
export async function checkTyped(db: Client, history: readonly ChaosTypedOperation[]): Promise<CheckResult> {
  const unreadable: string[] = [];
  const round = async (): Promise<Map<string, unknown>> => {
    const values = new Map<string, unknown>();
    const keys = TYPED_BUCKETS.flatMap(({ bucket, type }) => TYPED_KEYS.map((key) => ({ bucket, type, key })));
    await inParallel(keys, FINAL_READ_PARALLEL, async ({ bucket, type, key }) => {
      let last = '';
      for (let attempt = 1; attempt <= FINAL_READ_ATTEMPTS; attempt++) {
        try {
          values.set(keyId(type, key), (await db.fetch(bucket, key, type, { r: 'all', timeoutMs: FINAL_READ_TIMEOUT_MS })).value);
          return;
        } catch (error) {
          const e = error as { code?: string; message?: string };
          last = `${e.code ?? 'ERROR'}: ${e.message ?? String(error)}`;
          await sleep(500 * attempt);
        }
      }
      unreadable.push(`${bucket}/${key}: no final r=all read succeeded (${last})`);
    });
    return values;
  };
  const first = await round();
  await sleep(500);
  const finals = await round();
  const problems: string[] = [...new Set(unreadable)];
  for (const [id, value] of finals) {
    if (first.has(id) && JSON.stringify(first.get(id)) !== JSON.stringify(value)) problems.push(`${id}: the two final r=all reads differ: ${JSON.stringify(first.get(id))} then ${JSON.stringify(value)}`);
  }
  const verdict = checkTypedHistory(history, finals);
  problems.push(...verdict.problems);
  for (const { bucket, type } of TYPED_BUCKETS) {
    for (const key of TYPED_KEYS) {
      const id = keyId(type, key);
      if (!finals.has(id)) continue;
      problems.push(...(await typedReplicaProblems(db, bucket, type, key, JSON.stringify(finals.get(id)))));
    }
  }
  const count = (kind: ChaosTypedOperation['kind'], outcome?: string): number => history.filter((op) => op.kind === kind && (outcome === undefined || op.outcome === outcome)).length;
  const counters = TYPED_KEYS.map((key) => `${key} ${JSON.stringify(finals.get(keyId('counter', key)))}`).join(', ');
  return {
    name: 'typed',
    passed: problems.length === 0,
    summary:
      `${count('inc', 'ok')} acknowledged increments (${count('inc', 'unknown')} unknown), ${count('add', 'ok')} adds, ${count('remove', 'ok')} removes, ${count('fetch', 'ok')} reads; ` +
      `counters ${counters}, ${verdict.counterSlack} above the acknowledged sum; ${problems.length} problems`,
    examples: problems.slice(0, EXAMPLES_MAX),
    counts: {
      increments: count('inc', 'ok'),
      incrementsUnknown: count('inc', 'unknown'),
      adds: count('add', 'ok'),
      removes: count('remove', 'ok'),
      reads: count('fetch', 'ok'),
      counterSlack: verdict.counterSlack,
      problems: problems.length,
    },
  };
}

/** Every primary of a typed key holds `expected` (as JSON) under one clock, and no node keeps a hint for it. */
async function typedReplicaProblems(db: Client, bucket: string, type: TypedBucketType, key: string, expected: string): Promise<string[]> {
  const problems: string[] = [];
  try {
    const where = (await db.admin('whereis', { bucket, key })) as { primaries: string[] };
    const copies = await Promise.all(where.primaries.map(async (node) => ({ node, copy: (await db.admin('inspect', { bucket, key, node })) as Inspection })));
    for (const { node, copy } of copies) {
      const held = typedValue(type, copy.values, undefined);
      const text = held.ok ? JSON.stringify(held.value) : `unreadable (${held.reason})`;
      if (text !== expected) problems.push(`${bucket}/${key}: primary ${node} holds ${text}, the final read ${expected}`);
      if ((copy.hints ?? []).length > 0) problems.push(`${bucket}/${key}: ${node} still keeps hints for ${(copy.hints ?? []).map((h) => h.target).join(', ')}`);
    }
    const clocks = new Set(copies.map(({ copy }) => clockText(copy.clock)));
    if (clocks.size > 1) problems.push(`${bucket}/${key}: the primaries hold different clocks: ${copies.map(({ node, copy }) => `${node} ${clockText(copy.clock)}`).join(', ')}`);
  } catch (error) {
    problems.push(`${bucket}/${key}: inspecting the replicas failed: ${String(error)}`);
  }
  return problems;
}

function decodeValues(values: readonly Uint8Array[]): string[] {
  return values
    .map((bytes) => {
      const decoded = decodeValue(bytes);
      return decoded.ok ? String(decoded.value) : `<undecodable: ${decoded.reason}>`;
    })
    .sort();
}

function clockText(clock: readonly (readonly [string, number])[]): string {
  return `{${clock.map(([actor, counter]) => `${actor}:${counter}`).join(',')}}`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((v) => set.has(v));
}

async function inParallel<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

