/**
 * Replication under faults, as one story a scenario tells: clients write, read and delete
 * over a small key space while a seeded fault schedule crashes, pauses, cuts off and wipes
 * nodes and the network loses, duplicates and reorders messages; then everything heals and
 * the data is checked.
 *
 * After the load: every fault is undone (crashed nodes restart from their durable disks),
 * the clients get their last answers, the member tables converge, and every hint is
 * delivered (`hintsPending` 0 on every node, within a deadline). Then every key is read at
 * `r=all` twice: the first round read-repairs, the second gives the final sibling set S.
 * The checks:
 *
 * - the register checker (checkers.ts): no acknowledged put lost, no superseded value back,
 *   no value nobody wrote;
 * - every primary of every key holds exactly S as its live values, under one clock (a deleted
 *   key's primaries may differ in whether they reaped its tombstone yet), and no node keeps a
 *   hint for it any more;
 * - both final rounds agree (a repair changes no merged value);
 * - (in the disk, for the whole run) no replica's copy of a key ever went back.
 *
 * Problems are collected rather than thrown one by one, so a failure report lists them all.
 */

import type { Prng } from '../base/prng.js';
import type { ClientReply } from '../codec/messages.js';
import { check, checkRegisters, SimCheckError, type RegisterReport } from './checkers.js';
import type { SimCluster } from './cluster.js';
import { FaultSchedule, type FaultOptions } from './faults.js';
import { Workload, summarize, type WorkloadOptions } from './workload.js';

export interface ReplicationStory {
  /** Ticks of client load, while faults run. */
  readonly loadTicks: number;
  readonly workload?: Partial<WorkloadOptions>;
  readonly faults?: Partial<FaultOptions>;
  /**
   * Called once everything has healed and every hint is delivered, before the final reads:
   * a canary destroys data here to prove that the checks see it.
   */
  readonly sabotage?: (cluster: SimCluster) => void;
}

export type StoryMeasurements = Record<string, number | string | boolean>;

/** Ticks for the member tables to converge once everything is up again. */
const CONVERGE_TICKS_MAX = 3000;
/** Ticks for every hint to be delivered once everything is up: many rounds of the longest backoff. */
const DRAIN_TICKS_MAX = 6000;
/** Ticks for a round of final reads to be answered. */
const READ_TICKS_MAX = 1000;
/** Ticks for read repairs to become durable after a round. */
const REPAIR_TICKS_MAX = 500;
/** Problems of one kind listed in full. */
const LISTED_MAX = 10;

export function runReplication(cluster: SimCluster, prng: Prng, story: ReplicationStory): StoryMeasurements {
  for (const node of cluster.nodes) if (node.state === 'down' && node.starts === 0) cluster.start(node.id);
  waitUntil(cluster, 'the nodes to converge on one member table', () => cluster.converged(), CONVERGE_TICKS_MAX);
  const workload = new Workload({ cluster, prng: prng.fork('workload') }, story.workload);
  const faults = new FaultSchedule({ cluster, prng: prng.fork('faults') }, story.faults);
  faults.begin();
  for (let i = 0; i < story.loadTicks; i++) {
    workload.step();
    faults.step();
    cluster.tick();
  }
  const ticks = heal(cluster, workload, faults);
  story.sabotage?.(cluster);
  const { problems, report, keysEqual } = checkData(cluster, prng, workload);
  if (problems.length > 0) throw new SimCheckError(problems);
  return measure(cluster, workload, faults, report, { ...ticks, keysEqual });
}

/** Stops the load, undoes every fault, and waits for the answers, the member tables and the hints. */
function heal(cluster: SimCluster, workload: Workload, faults: FaultSchedule): { healTick: number; convergedTick: number; drainedTick: number } {
  workload.stop();
  faults.finish();
  const healTick = cluster.now;
  for (let i = 0; !workload.idle && i <= workload.options.clientTimeoutTicks; i++) {
    workload.step();
    cluster.tick();
  }
  workload.step();
  check(workload.idle, 'the clients still wait for answers after their own timeout');
  const everyoneUp = (): boolean => cluster.activeNodes().length === cluster.nodes.length && cluster.converged();
  waitUntil(cluster, 'every node to be up and the member tables to converge after healing', everyoneUp, CONVERGE_TICKS_MAX);
  const convergedTick = cluster.now;
  waitUntil(cluster, `every hint to be delivered (${cluster.hintsPending()} pending)`, () => cluster.hintsPending() === 0, DRAIN_TICKS_MAX);
  return { healTick, convergedTick, drainedTick: cluster.now };
}

/** The final reads and every check on them; problems are collected, not thrown. */
function checkData(cluster: SimCluster, prng: Prng, workload: Workload): { problems: string[]; report: RegisterReport; keysEqual: number } {
  // Invariants the cluster recorded along the way: a replica's copy going back, an incarnation going back.
  const problems: string[] = [...cluster.violations];
  const { bucket } = workload.options;
  const keys = workload.keys;
  const first = readAll(cluster, prng, bucket, keys, problems);
  settle(cluster);
  const finals = readAll(cluster, prng, bucket, keys, problems);
  settle(cluster);
  for (const key of keys) {
    const a = first.get(key);
    const b = finals.get(key);
    if (a !== undefined && b !== undefined && !sameSet(a, b)) problems.push(`${key}: the two final r=all reads differ: [${a.join(', ')}] then [${b.join(', ')}]`);
  }
  const replicas = checkReplicas(cluster, bucket, keys, finals);
  problems.push(...replicas.problems);
  const report = checkRegisters(workload.history, finals);
  problems.push(...listed('lost', report.lost), ...listed('zombie', report.zombies), ...listed('phantom', report.phantoms));
  return { problems, report, keysEqual: replicas.equal };
}

function measure(
  cluster: SimCluster,
  workload: Workload,
  faults: FaultSchedule,
  report: RegisterReport,
  ticks: { healTick: number; convergedTick: number; drainedTick: number; keysEqual: number },
): StoryMeasurements {
  const summary = summarize(workload.history);
  const totals = cluster.replicationTotals();
  const faultCounts = Object.fromEntries([...faults.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([kind, count]) => [`fault:${kind}`, count]));
  return {
    operations: summary.operations,
    acknowledged: summary.acknowledged,
    putsAcknowledged: summary.putsAcknowledged,
    deletesAcknowledged: summary.deletesAcknowledged,
    getsAcknowledged: summary.getsAcknowledged,
    failed: summary.failed,
    unknown: summary.unknown,
    siblingReads: summary.siblingReads,
    superseded: report.superseded,
    lost: report.lost.length,
    zombies: report.zombies.length,
    phantoms: report.phantoms.length,
    faults: faults.total,
    ...faultCounts,
    lossPercent: Math.round(faults.loss * 1000) / 10,
    hintsDelivered: totals.hintsDelivered,
    hintsDropped: totals.hintsDropped,
    handoffBatches: totals.handoffBatchesReceived,
    readRepairs: totals.readRepairs,
    pairedReads: totals.pairedReads,
    pairsUnsettled: workload.unsettledPairs,
    forwarded: totals.forwarded,
    tombstonesReaped: totals.tombstonesReaped,
    convergeTicks: ticks.convergedTick - ticks.healTick,
    drainTicks: ticks.drainedTick - ticks.convergedTick,
    keysEqual: ticks.keysEqual,
    ticks: cluster.now,
  };
}

/** Runs the cluster until `condition` holds; a SimCheckError naming `what` after `maxTicks`. */
export function waitUntil(cluster: SimCluster, what: string, condition: () => boolean, maxTicks: number): number {
  const ticks = cluster.runUntil(condition, maxTicks);
  check(ticks !== undefined, () => `${what}: not within ${maxTicks} ticks, at t=${cluster.now}`);
  return ticks;
}

/** Sends a request and runs the cluster until its reply comes; undefined after `maxTicks`. */
export function call(cluster: SimCluster, node: string, request: Parameters<SimCluster['request']>[1], maxTicks = READ_TICKS_MAX): ClientReply | undefined {
  const id = cluster.request(node, request);
  cluster.runUntil(() => cluster.replyTo(id) !== undefined, maxTicks);
  return cluster.replyTo(id);
}

/** Reads every key at `r=all`, each through a random node, all at once; the live values of each. */
function readAll(cluster: SimCluster, prng: Prng, bucket: string, keys: readonly string[], problems: string[]): Map<string, string[]> {
  const nodes = cluster.nodes.map((node) => node.id);
  const ids = new Map(keys.map((key) => [key, cluster.request(prng.pick(nodes), { t: 'get', b: bucket, k: key, r: 'all' })]));
  cluster.runUntil(() => [...ids.values()].every((id) => cluster.replyTo(id) !== undefined), READ_TICKS_MAX);
  const values = new Map<string, string[]>();
  for (const [key, id] of ids) {
    const reply = cluster.replyTo(id);
    if (reply?.t === 'get-ok') values.set(key, decodeValues(reply.values));
    else problems.push(`${key}: the final r=all read ${reply === undefined ? 'got no answer' : `was answered ${reply.t === 'err' ? `${reply.code}: ${reply.msg}` : reply.t}`}`);
  }
  return values;
}

/** Runs until no node has a request open or a write on its way to disk. */
function settle(cluster: SimCluster): void {
  cluster.run(5);
  cluster.runUntil(() => cluster.nodes.every((node) => (node.core?.inflight ?? 0) === 0 && node.disk.undurable === 0), REPAIR_TICKS_MAX);
}

interface Inspection {
  readonly found: boolean;
  readonly tombstone: boolean;
  readonly values: readonly Uint8Array[];
  readonly clock: readonly (readonly [string, number])[];
  readonly hints: readonly { readonly target: string }[];
}

/** What `node` holds of a key, through the `inspect` admin request. */
export function inspect(cluster: SimCluster, node: string, bucket: string, key: string): Inspection {
  const reply = cluster.admin(node, 'inspect', { bucket, key });
  check(reply?.t === 'admin-ok', () => `inspect ${bucket}/${key} at ${node} was answered ${JSON.stringify(reply)}`);
  return reply.result as Inspection;
}

/** The primaries of a key, as `node` places it. */
export function primariesOf(cluster: SimCluster, node: string, bucket: string, key: string): string[] {
  const reply = cluster.admin(node, 'whereis', { bucket, key });
  check(reply?.t === 'admin-ok', () => `whereis ${bucket}/${key} at ${node} was answered ${JSON.stringify(reply)}`);
  return (reply.result as { primaries: string[] }).primaries;
}

/**
 * Every primary of every key holds the final values under one clock, and no node keeps a
 * hint for the key. Returns the problems and how many keys passed.
 */
function checkReplicas(cluster: SimCluster, bucket: string, keys: readonly string[], finals: ReadonlyMap<string, readonly string[]>): { problems: string[]; equal: number } {
  const problems: string[] = [];
  let equal = 0;
  const viewer = (cluster.nodes[0] as { id: string }).id;
  for (const key of keys) {
    const expected = finals.get(key);
    if (expected === undefined) continue;
    const before = problems.length;
    const primaries = primariesOf(cluster, viewer, bucket, key);
    const copies = primaries.map((node) => ({ node, copy: inspect(cluster, node, bucket, key) }));
    for (const { node, copy } of copies) {
      const values = decodeValues(copy.values);
      if (!sameSet(values, expected)) problems.push(`${key}: primary ${node} holds [${values.join(', ')}], the final read [${expected.join(', ')}]`);
    }
    // A deleted key's primaries may hold its tombstone or nothing: reaps land when they land.
    const clocks = new Set(copies.map(({ copy }) => clockText(copy.clock)));
    if (expected.length > 0 && clocks.size > 1) problems.push(`${key}: the primaries hold different clocks: ${copies.map(({ node, copy }) => `${node} ${clockText(copy.clock)}`).join(', ')}`);
    for (const node of cluster.nodes) {
      const hints = inspect(cluster, node.id, bucket, key).hints;
      if (hints.length > 0) problems.push(`${key}: ${node.id} still keeps hints for ${hints.map((h) => h.target).join(', ')}`);
    }
    if (problems.length === before) equal++;
  }
  return { problems, equal };
}

function clockText(clock: readonly (readonly [string, number])[]): string {
  return `{${clock.map(([actor, counter]) => `${actor}:${counter}`).join(',')}}`;
}

function decodeValues(values: readonly Uint8Array[]): string[] {
  const decoder = new TextDecoder();
  return values.map((v) => decoder.decode(v)).sort();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((v) => set.has(v));
}

/** The first problems of a kind in full, the rest counted. */
function listed(kind: string, problems: readonly string[]): string[] {
  const shown = problems.slice(0, LISTED_MAX).map((p) => `${kind}: ${p}`);
  if (problems.length > LISTED_MAX) shown.push(`${kind}: … and ${problems.length - LISTED_MAX} more`);
  return shown;
}
