/**
 * Typed buckets under faults: counters, sets and Yjs documents written by simulated clients
 * while the fault schedule of the replication story (faults.ts) crashes, pauses and cuts off
 * nodes and the network loses, duplicates and reorders messages; then everything heals and
 * the values are checked.
 *
 * Clients pick one of three buckets (`counter`, `set`, `doc`) and one of a few keys each:
 *
 * - increments of a counter by 1 to 5, each with its own operation id;
 * - adds of set members nobody else ever adds (`c3.17`), and removes of members the client
 *   saw in its last read of the key;
 * - Yjs updates that each insert a token nobody else inserts into the document's text;
 * - reads (`fetch`) of any of them at `r=quorum` or `r=one`.
 *
 * After healing (every node up, tables converged, hints drained) every key is read at `r=all`
 * twice, and the checks are:
 *
 * - a counter's value is at least the sum of its acknowledged increments and at most that
 *   plus the increments whose outcome is unknown (the exactness the operation ids buy);
 * - a set holds every acknowledged add of a member no remove ever named, and no member
 *   nobody added;
 * - a document's text holds every acknowledged token and none that nobody sent;
 * - every primary of every key holds the same clock and the same value, both final reads
 *   agree, and no node keeps a hint.
 */

import * as Y from 'yjs';
import type { Prng } from '../base/prng.js';
import type { ClientReply, Level } from '../codec/messages.js';
import { typedValue, type TypedBucketType } from '../crdt/stored.js';
import { check, SimCheckError } from './checkers.js';
import type { DataRequestWithoutId, SimCluster } from './cluster.js';
import { FaultSchedule, type FaultOptions } from './faults.js';
import { inspect, primariesOf, waitUntil, type StoryMeasurements } from './replication.js';
import { definitelyNotApplied, type Outcome } from './workload.js';

export interface TypedStory {
  readonly loadTicks: number;
  readonly faults?: Partial<FaultOptions>;
  readonly clients?: number;
  readonly keysPerType?: number;
  /** Called after healing, before the final reads: a canary destroys data here. */
  readonly sabotage?: (cluster: SimCluster) => void;
}

type Kind = 'inc' | 'add' | 'remove' | 'edit' | 'fetch';

/** What the typed checker needs of an operation (the simulator's and the chaos run's alike). */
export interface TypedRecord {
  readonly index: number;
  readonly kind: Kind;
  readonly type: TypedBucketType;
  readonly key: string;
  readonly invokeTick: number;
  /** An increment's amount. */
  readonly amount: number;
  /** Members added or removed, or the token an edit inserts. */
  readonly items: readonly string[];
  readonly outcome: Outcome;
}

interface TypedOperation extends TypedRecord {
  readonly index: number;
  readonly client: number;
  readonly kind: Kind;
  readonly type: TypedBucketType;
  readonly key: string;
  readonly requestId: number;
  readonly invokeTick: number;
  /** An increment's amount. */
  readonly amount: number;
  /** Members added or removed, or the token an edit inserts. */
  readonly items: readonly string[];
  outcome: Outcome;
  code: string | undefined;
  /** What a fetch returned. */
  value: unknown;
}

const TYPES: readonly { readonly type: TypedBucketType; readonly bucket: string }[] = [
  { type: 'counter', bucket: 'sim-counters' },
  { type: 'set', bucket: 'sim-sets' },
  { type: 'doc', bucket: 'sim-docs' },
];
const WRITE_LEVELS: readonly Level[] = ['quorum', 2, 1];
const CLIENT_TIMEOUT_TICKS = 800;
const THINK_TICKS_MAX = 10;
const CONVERGE_TICKS_MAX = 3000;
const DRAIN_TICKS_MAX = 6000;
const READ_TICKS_MAX = 1000;
const LISTED_MAX = 10;

interface Client {
  readonly id: number;
  pending: TypedOperation | undefined;
  nextTick: number;
  written: number;
  /** Per set key, the members of the client's last read. */
  readonly seen: Map<string, readonly string[]>;
}

export function runTyped(cluster: SimCluster, prng: Prng, story: TypedStory): StoryMeasurements {
  for (const node of cluster.nodes) if (node.state === 'down' && node.starts === 0) cluster.start(node.id);
  waitUntil(cluster, 'the nodes to converge on one member table', () => cluster.converged(), CONVERGE_TICKS_MAX);
  declareTypes(cluster);
  const keys = Array.from({ length: story.keysPerType ?? 4 }, (_, i) => `k${i}`);
  const clients: Client[] = Array.from({ length: story.clients ?? 8 }, (_, id) => ({ id, pending: undefined, nextTick: 0, written: 0, seen: new Map() }));
  const history: TypedOperation[] = [];
  const workPrng = prng.fork('typed-workload');
  const faults = new FaultSchedule({ cluster, prng: prng.fork('faults') }, story.faults);
  const step = (issuing: boolean): void => {
    for (const client of clients) {
      const pending = client.pending;
      if (pending !== undefined) {
        const reply = cluster.replyTo(pending.requestId);
        if (reply !== undefined) complete(client, pending, reply, cluster.now, workPrng);
        else if (cluster.now - pending.invokeTick >= CLIENT_TIMEOUT_TICKS) {
          client.pending = undefined;
          pending.outcome = 'unknown';
          pending.code = 'NO_REPLY';
        }
      }
      if (issuing && client.pending === undefined && cluster.now >= client.nextTick) issue(cluster, workPrng, client, keys, history);
    }
  };
  faults.begin();
  for (let i = 0; i < story.loadTicks; i++) {
    step(true);
    faults.step();
    cluster.tick();
  }
  faults.finish();
  const healTick = cluster.now;
  for (let i = 0; clients.some((c) => c.pending !== undefined) && i <= CLIENT_TIMEOUT_TICKS; i++) {
    step(false);
    cluster.tick();
  }
  step(false);
  check(clients.every((c) => c.pending === undefined), 'the clients still wait for answers after their own timeout');
  waitUntil(cluster, 'every node to be up and the member tables to converge after healing', () => cluster.activeNodes().length === cluster.nodes.length && cluster.converged(), CONVERGE_TICKS_MAX);
  waitUntil(cluster, `every hint to be delivered (${cluster.hintsPending()} pending)`, () => cluster.hintsPending() === 0, DRAIN_TICKS_MAX);
  const drainTicks = cluster.now - healTick;
  story.sabotage?.(cluster);

  const problems: string[] = [...cluster.violations];
  const first = readAll(cluster, prng, keys, problems);
  cluster.run(50);
  const finals = readAll(cluster, prng, keys, problems);
  for (const [id, value] of finals) {
    if (first.has(id) && JSON.stringify(first.get(id)) !== JSON.stringify(value)) problems.push(`${id}: the two final r=all reads differ: ${JSON.stringify(first.get(id))} then ${JSON.stringify(value)}`);
  }
  const verdict = checkTypedHistory(history, finals);
  problems.push(...verdict.problems);
  problems.push(...checkReplicas(cluster, keys, finals));
  if (problems.length > 0) throw new SimCheckError(problems.slice(0, 40));

  const count = (predicate: (op: TypedOperation) => boolean): number => history.reduce((n, op) => n + (predicate(op) ? 1 : 0), 0);
  const faultCounts = Object.fromEntries([...faults.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([kind, n]) => [`fault:${kind}`, n]));
  return {
    operations: history.length,
    acknowledged: count((op) => op.outcome === 'ok'),
    unknown: count((op) => op.outcome === 'unknown'),
    failed: count((op) => op.outcome === 'fail'),
    incrementsAcknowledged: count((op) => op.kind === 'inc' && op.outcome === 'ok'),
    addsAcknowledged: count((op) => op.kind === 'add' && op.outcome === 'ok'),
    editsAcknowledged: count((op) => op.kind === 'edit' && op.outcome === 'ok'),
    counterSlack: verdict.counterSlack,
    faults: faults.total,
    ...faultCounts,
    drainTicks,
    ticks: cluster.now,
  };
}

/** Sets the three buckets' types at one node and waits until every node knows them. */
function declareTypes(cluster: SimCluster): void {
  const first = (cluster.nodes[0] as { id: string }).id;
  for (const { type, bucket } of TYPES) {
    const reply = cluster.admin(first, 'bucket-set', { bucket, props: { type } });
    check(reply?.t === 'admin-ok', () => `bucket-set ${bucket} was answered ${JSON.stringify(reply)}`);
  }
  const known = (): boolean =>
    cluster.nodes.every((node) => {
      const reply = cluster.admin(node.id, 'bucket-list');
      if (reply?.t !== 'admin-ok') return false;
      const buckets = (reply.result as { buckets: Record<string, { type?: string }> }).buckets;
      return TYPES.every(({ type, bucket }) => buckets[bucket]?.type === type);
    });
  waitUntil(cluster, 'every node to learn the bucket types', known, CONVERGE_TICKS_MAX);
}

function issue(cluster: SimCluster, prng: Prng, client: Client, keys: readonly string[], history: TypedOperation[]): void {
  const nodes = cluster.nodes.filter((node) => node.state !== 'down');
  if (nodes.length === 0) return;
  const node = prng.pick(nodes);
  const { type, bucket } = prng.pick(TYPES);
  const key = prng.pick(keys);
  const w = prng.pick(WRITE_LEVELS);
  const name = (): string => `c${client.id}.${++client.written}`;
  let kind: Kind;
  let amount = 0;
  let items: string[] = [];
  let request: DataRequestWithoutId;
  if (prng.chance(0.3)) {
    kind = 'fetch';
    request = { t: 'fetch', b: bucket, k: key, type, r: prng.chance(0.3) ? 'one' : 'quorum' };
  } else if (type === 'counter') {
    kind = 'inc';
    amount = 1 + prng.int(5);
    request = { t: 'upd', b: bucket, k: key, type, op: { inc: amount }, oid: name(), w };
  } else if (type === 'set') {
    const seen = client.seen.get(key) ?? [];
    if (seen.length > 0 && prng.chance(0.25)) {
      kind = 'remove';
      items = [prng.pick(seen)];
      request = { t: 'upd', b: bucket, k: key, type, op: { remove: items }, oid: name(), w };
    } else {
      kind = 'add';
      items = [name()];
      request = { t: 'upd', b: bucket, k: key, type, op: { add: items }, oid: name(), w };
    }
  } else {
    kind = 'edit';
    const token = name();
    items = [token];
    request = { t: 'upd', b: bucket, k: key, type, op: { update: editUpdate(client.id, client.written, token) }, oid: token, w };
  }
  const requestId = cluster.request(node.id, request);
  const operation: TypedOperation = { index: history.length, client: client.id, kind, type, key, requestId, invokeTick: cluster.now, amount, items, outcome: 'pending', code: undefined, value: undefined };
  history.push(operation);
  client.pending = operation;
  const reply = cluster.replyTo(requestId);
  if (reply !== undefined) complete(client, operation, reply, cluster.now, prng);
}

/** A Yjs update from a document of its own (a fixed client id, so runs replay) that inserts `token` and a separator. */
function editUpdate(client: number, n: number, token: string): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client * 1_000_000 + n;
  doc.getText('text').insert(0, `${token};`);
  return Y.encodeStateAsUpdate(doc);
}

function complete(client: Client, operation: TypedOperation, reply: ClientReply, now: number, prng: Prng): void {
  client.pending = undefined;
  client.nextTick = now + 1 + prng.int(THINK_TICKS_MAX + 1);
  if (reply.t === 'err') {
    operation.code = reply.code;
    operation.outcome = definitelyNotApplied(reply) ? 'fail' : 'unknown';
    return;
  }
  if (reply.t !== 'upd-ok' && reply.t !== 'fetch-ok') {
    operation.outcome = 'unknown';
    operation.code = `UNEXPECTED_REPLY ${reply.t}`;
    return;
  }
  operation.outcome = 'ok';
  if (reply.t === 'fetch-ok') {
    operation.value = reply.value;
    if (operation.type === 'set') client.seen.set(operation.key, reply.value as string[]);
  }
}

/** A key's id in the checks: its type and key. */
export function keyId(type: TypedBucketType, key: string): string {
  return `${type}/${key}`;
}

/** The value as the checks compare it: a doc as the tokens of its text, sorted. */
function comparable(type: TypedBucketType, value: unknown): unknown {
  if (type !== 'doc') return value;
  const doc = new Y.Doc();
  Y.applyUpdate(doc, value as Uint8Array);
  return doc
    .getText('text')
    .toString()
    .split(';')
    .filter((t) => t !== '')
    .sort();
}

function readAll(cluster: SimCluster, prng: Prng, keys: readonly string[], problems: string[]): Map<string, unknown> {
  const nodes = cluster.nodes.map((node) => node.id);
  const ids = new Map<string, { type: TypedBucketType; id: number }>();
  for (const { type, bucket } of TYPES) for (const key of keys) ids.set(keyId(type, key), { type, id: cluster.request(prng.pick(nodes), { t: 'fetch', b: bucket, k: key, type, r: 'all' }) });
  cluster.runUntil(() => [...ids.values()].every(({ id }) => cluster.replyTo(id) !== undefined), READ_TICKS_MAX);
  const values = new Map<string, unknown>();
  for (const [name, { type, id }] of ids) {
    const reply = cluster.replyTo(id);
    if (reply?.t === 'fetch-ok') values.set(name, comparable(type, reply.value));
    else problems.push(`${name}: the final r=all read ${reply === undefined ? 'got no answer' : `was answered ${reply.t === 'err' ? `${reply.code}: ${reply.msg}` : reply.t}`}`);
  }
  return values;
}

/**
 * The typed checker. `finals` holds each key's final value (by `keyId`; a doc as its sorted
 * tokens): a counter must be at least its acknowledged increments and at most those plus the
 * increments of unknown outcome; a set or doc must hold every acknowledged add or edit whose
 * item no remove named, and nothing nobody wrote. Problems are one line each, `lost:` or
 * `phantom:` first.
 */
export function checkTypedHistory(history: readonly TypedRecord[], finals: ReadonlyMap<string, unknown>): { problems: string[]; counterSlack: number } {
  const problems: string[] = [];
  let counterSlack = 0;
  const byKey = new Map<string, TypedRecord[]>();
  for (const op of history) {
    if (op.kind === 'fetch') continue;
    const id = keyId(op.type, op.key);
    const ops = byKey.get(id);
    if (ops === undefined) byKey.set(id, [op]);
    else ops.push(op);
  }
  for (const [id, value] of finals) {
    const ops = byKey.get(id) ?? [];
    const type = id.slice(0, id.indexOf('/')) as TypedBucketType;
    if (type === 'counter') {
      const acked = ops.filter((op) => op.outcome === 'ok').reduce((n, op) => n + op.amount, 0);
      const unknown = ops.filter((op) => op.outcome === 'unknown').reduce((n, op) => n + op.amount, 0);
      const final = value as number;
      if (final < acked) problems.push(`lost: ${id} is ${final}, below the ${acked} its acknowledged increments add up to`);
      if (final > acked + unknown) problems.push(`phantom: ${id} is ${final}, above the ${acked} acknowledged plus ${unknown} unknown`);
      counterSlack += final - acked;
      continue;
    }
    const members = new Set(value as string[]);
    const removed = new Set(ops.filter((op) => op.kind === 'remove' && op.outcome !== 'fail').flatMap((op) => op.items));
    const written = new Set(ops.filter((op) => op.outcome !== 'fail').flatMap((op) => op.items));
    const lost = ops.filter((op) => (op.kind === 'add' || op.kind === 'edit') && op.outcome === 'ok' && !removed.has(op.items[0] as string) && !members.has(op.items[0] as string));
    for (const op of lost.slice(0, LISTED_MAX)) problems.push(`lost: ${id} lacks ${op.items[0]}, acknowledged by op #${op.index} at t=${op.invokeTick}`);
    const phantoms = [...members].filter((m) => !written.has(m));
    for (const m of phantoms.slice(0, LISTED_MAX)) problems.push(`phantom: ${id} holds ${m}, which nobody wrote`);
  }
  return { problems, counterSlack };
}

/** Every primary of every key holds one clock and the final value; no node keeps a hint. */
function checkReplicas(cluster: SimCluster, keys: readonly string[], finals: ReadonlyMap<string, unknown>): string[] {
  const problems: string[] = [];
  const viewer = (cluster.nodes[0] as { id: string }).id;
  for (const { type, bucket } of TYPES) {
    for (const key of keys) {
      const id = keyId(type, key);
      if (!finals.has(id)) continue;
      const expected = JSON.stringify(finals.get(id));
      const copies = primariesOf(cluster, viewer, bucket, key).map((node) => ({ node, copy: inspect(cluster, node, bucket, key) }));
      for (const { node, copy } of copies) {
        const held = typedValue(type, copy.values, undefined);
        const text = held.ok ? JSON.stringify(comparable(type, held.value)) : `unreadable (${held.reason})`;
        if (text !== expected) problems.push(`${id}: primary ${node} holds ${text}, the final read ${expected}`);
      }
      const clocks = new Set(copies.map(({ copy }) => JSON.stringify(copy.clock)));
      if (clocks.size > 1) problems.push(`${id}: the primaries hold different clocks: ${copies.map(({ node, copy }) => `${node} ${JSON.stringify(copy.clock)}`).join(', ')}`);
      for (const node of cluster.nodes) {
        const hints = inspect(cluster, node.id, bucket, key).hints;
        if (hints.length > 0) problems.push(`${id}: ${node.id} still keeps hints for ${hints.map((h) => h.target).join(', ')}`);
      }
    }
  }
  return problems;
}
