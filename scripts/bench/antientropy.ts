/**
 * Anti-entropy and data movement, measured on the simulator: the real node cores, with every
 * message encoded by the wire codec and counted in bytes by type.
 *
 * - exchange: two nodes (n = 3, so each holds every key) hold `--keys` keys (default 1,000,000)
 *   at production's segment depth (16) and 256 vnodes; one lacks `d` of them, spread over the
 *   ring, for each `d` of `--differing` (default 1,100,10000). Anti-entropy runs until they
 *   agree. Printed per d: records shipped (goal: = d), bytes of anti-entropy messages in all,
 *   bytes of the records themselves (the `{b, k, obj}` entries as encoded), and the bytes
 *   beyond the records per differing key (goal: ≤ 1 KB), by message type; the simulated time
 *   the repair took is printed too (the live benchmark, bench:ae-live, times a real repair).
 * - join: three nodes hold `--join-keys` keys (default 100,000; n = 3, so 300,000 replicas);
 *   a 4th node joins, then a 5th. Printed per join: records the new node received as a
 *   multiple of the ideal share of all replicas, 1/(nodes after) (goal ≤ 1.10), bytes of
 *   anti-entropy records between nodes that were members before (goal: 0), and the new
 *   node's share of the ring as placed by the vnodes (the floor any placement-following
 *   transfer can reach).
 *
 * Usage: npm run bench:ae -- [--parts exchange,join] [--keys 1000000] [--differing 1,100,10000]
 *          [--join-keys 100000] [--seed 1]
 */

import { parseArgs } from 'node:util';
import { SIM_ANTI_ENTROPY, SimCluster, type SimNode } from '../../lib/sim/cluster.js';
import { encode } from '../../lib/codec/cbor.js';
import type { KvObject } from '../../lib/clock/object.js';
import { ownership } from '../../lib/ring/ownership.js';
import { buildRing } from '../../lib/ring/ring.js';
import { META_STATUS } from '../../lib/node/core.js';
import type { StoreWrite } from '../../lib/node/ports.js';

const { values: flags } = parseArgs({
  options: {
    parts: { type: 'string', default: 'exchange,join' },
    keys: { type: 'string', default: '1000000' },
    differing: { type: 'string', default: '1,100,10000' },
    'join-keys': { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
  },
});

const parts = new Set(flags.parts.split(','));
const seed = Number(flags.seed);
const BUCKET = 'bench';
const AE_TYPES = ['ae-tree', 'ae-tree-ok', 'ae-keys', 'ae-keys-ok', 'ae-sync', 'ae-sync-ok', 'ae-done'];

/** Anti-entropy that is never short of budget: the bench measures bytes, not throttling. */
const AE_UNTHROTTLED = { ...SIM_ANTI_ENTROPY, intervalMs: 500, keysPerSecond: 10_000_000, bytesPerSecond: 10_000_000_000, batchKeys: 256 };

/** The object a client's put of `value` would leave: one sibling, one dot. */
function objectOf(i: number): KvObject {
  const value = encode(`value-${i}-${'x'.repeat(64)}`);
  return { entries: [{ actor: 'n1/1', counter: i + 1, values: [value] }] } as unknown as KvObject;
}

function keyOf(i: number): string {
  return `key-${i}`;
}

function preload(node: SimNode, count: number, skip: (i: number) => boolean = () => false): void {
  const batch: StoreWrite[] = [];
  for (let i = 0; i < count; i++) {
    if (skip(i)) continue;
    batch.push({ op: 'put', bucket: BUCKET, key: keyOf(i), object: objectOf(i) });
    if (batch.length === 10_000) {
      node.disk.preload(batch);
      batch.length = 0;
    }
  }
  node.disk.preload(batch);
}

function aeBytes(cluster: SimCluster): Map<string, number> {
  const out = new Map<string, number>();
  for (const node of cluster.nodes) {
    const traffic = cluster.network.trafficOf(node.id);
    for (const type of AE_TYPES) out.set(type, (out.get(type) ?? 0) + (traffic.bytesSentByType.get(type) ?? 0));
  }
  return out;
}

function totals(cluster: SimCluster): { repaired: number; sent: number; running: boolean; completed: number } {
  let repaired = 0;
  let sent = 0;
  let running = false;
  let completed = 0;
  for (const node of cluster.activeNodes()) {
    const s = node.core!.antiEntropy;
    repaired += s.keysRepaired;
    sent += s.recordsSent;
    completed += s.exchangesCompleted;
    running ||= s.running !== undefined;
  }
  return { repaired, sent, running, completed };
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function exchangePart(): void {
  const keys = Number(flags.keys);
  console.log(`exchange: 2 nodes, ${fmt(keys)} keys each, segment depth 16, 256 vnodes a node`);
  console.log('  differing  shipped  AE bytes      record bytes  beyond records/key  time (sim)  by type (bytes)');
  for (const d of flags.differing.split(',').map(Number)) {
    const started = performance.now();
    const cluster = new SimCluster({ seed, nodes: 2, zones: ['z1', 'z2'], vnodes: 256, start: false, segmentDepth: 16, antiEntropy: AE_UNTHROTTLED });
    const [a, b] = cluster.nodes as [SimNode, SimNode];
    const stride = Math.floor(keys / d);
    const missing = new Set(Array.from({ length: d }, (_, j) => j * stride + Math.floor(stride / 2)));
    preload(a, keys);
    preload(b, keys, (i) => missing.has(i));
    // Both were members before (as after a restart): scheduled anti-entropy, not a join's transfer, finds the difference.
    for (const node of [a, b]) node.disk.setMetaNow(META_STATUS, new TextEncoder().encode('up'));
    cluster.start(a.id);
    cluster.start(b.id);
    const loadedMs = performance.now() - started;
    // Anti-entropy starts as soon as the nodes are up: count its bytes (only its messages) from the start.
    const before = aeBytes(cluster);
    const startTick = cluster.now;
    const done = cluster.runUntil(() => b.disk.recordCount === keys && !totals(cluster).running && totals(cluster).completed > 0, 200_000, 10);
    if (done === undefined) throw new Error(`not repaired within 2000 s of cluster time: ${b.disk.recordCount} of ${keys}`);
    const after = aeBytes(cluster);
    const spent = new Map(AE_TYPES.map((t) => [t, (after.get(t) ?? 0) - (before.get(t) ?? 0)]));
    const total = [...spent.values()].reduce((s, v) => s + v, 0);
    let recordBytes = 0;
    for (const i of missing) recordBytes += encode({ b: BUCKET, k: keyOf(i), obj: objectOf(i) }).byteLength;
    const t = totals(cluster);
    const byType = AE_TYPES.filter((type) => (spent.get(type) ?? 0) > 0).map((type) => `${type} ${fmt(spent.get(type)!)}`).join(', ');
    console.log(
      `  ${String(d).padStart(9)}  ${String(t.sent).padStart(7)}  ${fmt(total).padStart(12)}  ${fmt(recordBytes).padStart(12)}  ${((total - recordBytes) / d).toFixed(0).padStart(18)}  ${(((cluster.now - startTick) * 10) / 1000).toFixed(2).padStart(8)} s  ${byType}`,
    );
    console.log(`             (${fmt(keys)} keys loaded and hashed in ${(loadedMs / 1000).toFixed(1)} s; ${t.completed} exchanges)`);
  }
}

function joinPart(): void {
  const keys = Number(flags['join-keys']);
  console.log(`join: 3 nodes, ${fmt(keys)} keys (n = 3: ${fmt(keys * 3)} replicas), 256 vnodes a node, one zone per node`);
  const zones = ['z1', 'z2', 'z3', 'z4', 'z5'];
  const cluster = new SimCluster({ seed, nodes: 3, zones, vnodes: 256, start: false, antiEntropy: AE_UNTHROTTLED });
  for (const node of cluster.nodes) preload(node, keys);
  for (const node of cluster.nodes) cluster.start(node.id);
  const formed = cluster.runUntil(() => cluster.converged() && cluster.activeNodes().every((n) => n.core?.membership.status === 'up'), 5000);
  if (formed === undefined) throw new Error('the cluster did not form');
  cluster.run(300);
  console.log('  join   received  ideal     ratio  placement share  bytes to new node  records between old nodes');
  for (const size of [4, 5]) {
    const old = cluster.activeNodes().map((n) => n.id);
    const receivedBefore = new Map(old.map((id) => [id, cluster.node(id).core!.antiEntropy.recordsReceived]));
    const joiner = cluster.addNode();
    const bytesBefore = aeBytes(cluster);
    cluster.start(joiner.id);
    const up = cluster.runUntil(() => joiner.core?.membership.status === 'up' && cluster.converged(), 200_000, 10);
    if (up === undefined) throw new Error(`${joiner.id} did not join`);
    cluster.run(300);
    const received = joiner.core!.antiEntropy.recordsReceived;
    const ideal = (keys * 3) / size;
    let betweenOld = 0;
    for (const id of old) betweenOld += cluster.node(id).core!.antiEntropy.recordsReceived - (receivedBefore.get(id) ?? 0);
    const bytesAfter = aeBytes(cluster);
    const bytes = AE_TYPES.reduce((s, t) => s + (bytesAfter.get(t) ?? 0) - (bytesBefore.get(t) ?? 0), 0);
    const members = cluster.activeNodes().map((n) => ({ id: n.id, zone: n.zone, vnodes: 256 }));
    const share = ownership(buildRing(members), 3).find((o) => o.id === joiner.id)?.replica ?? 0;
    const holds = joiner.disk.recordCount;
    console.log(
      `  ${size - 1}→${size}   ${fmt(received).padStart(8)}  ${fmt(Math.round(ideal)).padStart(8)}  ${(received / ideal).toFixed(3)}  ${(share / (3 / size)).toFixed(3).padStart(15)}  ${fmt(bytes).padStart(17)}  ${betweenOld}`,
    );
    console.log(`         (${joiner.id} holds ${fmt(holds)} keys; it owns ${(share * 100).toFixed(1)}% of the ring as a replica, the ideal is ${((3 / size) * 100).toFixed(1)}%)`);
  }
}

if (parts.has('exchange')) exchangePart();
if (parts.has('join')) joinPart();
