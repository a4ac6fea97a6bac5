/**
 * Anti-entropy on the deterministic simulator: replicas converge on their own, with no reads.
 *
 * - A node whose data is wiped while the cluster holds 100,000 keys gets every key it is a
 *   replica of back from anti-entropy alone (no client request touches the cluster after the
 *   wipe), and what the exchanges ship is what differed.
 * - Replicas diverged by dropped messages (writes at w=1 under 30% loss) converge, once the
 *   network heals, to identical hash trees over every range any two of them share.
 * - A delete missed by one replica is not undone: the exchange carries the tombstone to it.
 */

import { expect } from 'chai';
import { sharedBounds } from '../../lib/ring/shared-ranges.js';
import type { ClientReply } from '../../lib/codec/messages.js';
import { buildTree, keySetHash, objectDigest, rootHash, TreeLeaves, type SegmentHashes } from '../../lib/merkle/index.js';
import { buildRing } from '../../lib/ring/ring.js';
import { SimCluster, type SimNode } from '../../lib/sim/cluster.js';
import { call, inspect, primariesOf, waitUntil } from '../../lib/sim/replication.js';
import { otherSeeds } from '../../lib/sim/scenarios.js';

const BUCKET = 'ae';
const encoder = new TextEncoder();
const MEMBERSHIP_TICKS_MAX = 3000;

/** A converged cluster, one zone per node (so every node holds about n/nodes of the keys). */
function cluster(seed: number, nodes: number): SimCluster {
  console.log(`      cluster seed ${seed}`);
  const zones = Array.from({ length: nodes }, (_, i) => `z${i + 1}`);
  const c = new SimCluster({ seed, nodes, zones, seeds: (index) => otherSeeds(index, nodes) });
  waitUntil(c, 'the cluster to form', () => c.converged(), MEMBERSHIP_TICKS_MAX);
  return c;
}

/** Puts keys `${prefix}0..count-1` through n1..nK in waves of `wave` requests in flight; every one must succeed. */
function load(c: SimCluster, prefix: string, count: number, options: { w?: 1 | 2 | 3; wave?: number; mustSucceed?: boolean } = {}): number {
  const wave = options.wave ?? 500;
  const nodes = c.activeNodes().map((n) => n.id);
  let ok = 0;
  for (let from = 0; from < count; from += wave) {
    const ids: number[] = [];
    for (let i = from; i < Math.min(count, from + wave); i++) {
      ids.push(c.request(nodes[i % nodes.length]!, { t: 'put', b: BUCKET, k: `${prefix}${i}`, v: encoder.encode(`v${i}`), ...(options.w === undefined ? {} : { w: options.w }) }));
    }
    c.runUntil(() => ids.every((id) => c.replyTo(id) !== undefined), 2000);
    for (const id of ids) {
      const reply = c.replyTo(id);
      if (reply?.t === 'put-ok') ok++;
      else if (options.mustSucceed !== false) throw new Error(`put #${id} was answered ${JSON.stringify(reply)}`);
    }
  }
  return ok;
}

/** The ring every node agrees on, from a running node's member table. */
function ringOf(node: SimNode): ReturnType<typeof buildRing> {
  const view = node.core!.membership.view().filter((m) => m.status !== 'left');
  return buildRing(view.map((m) => ({ id: m.id, zone: m.zone, vnodes: m.vnodes })));
}

/** The root hash of the tree over the spans `a` and `b` share, as `node` holds them (partial leaves from its disk). */
function sharedRoot(node: SimNode, a: string, b: string, ring: ReturnType<typeof buildRing>): string {
  const segments: SegmentHashes = node.core!.segments;
  const bounds = sharedBounds(ring, a, b, 3);
  if (bounds.length === 0) return 'shares nothing';
  const leaves = TreeLeaves.of(segments.depth, bounds);
  const tree = buildTree(segments, leaves, {
    partialHash: (_leaf, span) =>
      keySetHash([...node.disk.scan(span.fromToken, span.toToken)].map((e) => ({ bucket: e.bucket, key: e.key, digest: objectDigest(e.object) }))),
  });
  return Buffer.from(rootHash(tree)).toString('hex');
}

/** Whether every pair of running nodes holds identical trees over the ranges they share. */
function treesAgree(c: SimCluster): boolean {
  const nodes = c.activeNodes();
  const ring = ringOf(nodes[0]!);
  for (const x of nodes) {
    for (const y of nodes) {
      if (x.id >= y.id) continue;
      if (sharedRoot(x, x.id, y.id, ring) !== sharedRoot(y, x.id, y.id, ring)) return false;
    }
  }
  return true;
}

function aeTotals(c: SimCluster): { completed: number; repaired: number; sent: number; received: number } {
  const out = { completed: 0, repaired: 0, sent: 0, received: 0 };
  for (const node of c.activeNodes()) {
    const s = node.core!.antiEntropy;
    out.completed += s.exchangesCompleted;
    out.repaired += s.keysRepaired;
    out.sent += s.recordsSent;
    out.received += s.recordsReceived;
  }
  return out;
}

describe('sim: anti-entropy', function () {
  this.timeout(600_000);

  it('a wiped node gets back every key it is a replica of from anti-entropy alone, with 100,000 keys in the cluster', () => {
    const c = cluster(201, 5);
    const started = Date.now();
    load(c, 'k', 100_000);
    console.log(`      100,000 keys loaded in ${((Date.now() - started) / 1000).toFixed(1)} s of real time`);
    c.run(300);
    const n3 = c.node('n3');
    const held = n3.disk.recordCount;
    expect(held, 'n3 holds about 3/5 of the keys (16 vnodes a node: not evenly)').to.be.within(40_000, 80_000);
    c.crash('n3');
    c.wipe('n3');
    c.start('n3');
    waitUntil(c, 'n3 to be back', () => c.converged(), MEMBERSHIP_TICKS_MAX);
    expect(n3.disk.recordCount, 'n3 right after the wipe').to.be.below(held);
    const before = aeTotals(c);
    const startTick = c.now;
    // No client request from here on: only anti-entropy can bring the keys back.
    waitUntil(c, 'n3 to hold every key again', () => n3.disk.recordCount === held, 60_000);
    const ticks = c.now - startTick;
    const after = aeTotals(c);
    const shipped = after.sent - before.sent;
    console.log(`      ${held} keys restored to n3 in ${(ticks * 10) / 1000} s of cluster time; ${shipped} records shipped, ${after.repaired - before.repaired} keys repaired`);
    // Records shipped are the records that differed: each of n3's keys once per peer that pushed it at most.
    expect(shipped).to.be.at.most(held * 2);
    c.run(500);
    expect(treesAgree(c), 'every pair of nodes holds identical trees over the ranges it shares').to.equal(true);
    // Spot-check values, not just counts.
    for (let i = 0; i < 100_000; i += 997) {
      const key = `k${i}`;
      if (!primariesOf(c, 'n1', BUCKET, key).includes('n3')) continue;
      const copy = inspect(c, 'n3', BUCKET, key);
      expect(copy.found, `${key} at n3`).to.equal(true);
    }
  });

  it('replicas diverged by dropped messages converge to identical hash trees once the network heals', () => {
    const c = cluster(202, 5);
    c.setLoss(0.3);
    const ok = load(c, 'd', 3000, { w: 1, mustSucceed: false });
    c.setLoss(0);
    expect(treesAgree(c), 'replicas differ after writes under 30% loss').to.equal(false);
    const before = aeTotals(c);
    // Segment hashes follow writes still on their way to disk; reads see only durable ones.
    const settled = (): boolean => c.activeNodes().every((node) => node.disk.undurable === 0) && treesAgree(c);
    waitUntil(c, 'every pair of replicas to hold identical trees, every write durable', settled, 30_000);
    const after = aeTotals(c);
    console.log(`      ${ok} of 3000 puts acknowledged under loss; converged after ${after.completed - before.completed} exchanges, ${after.repaired - before.repaired} keys repaired`);
    // Every acknowledged key is at every primary, with one value.
    for (let i = 0; i < 3000; i += 7) {
      const key = `d${i}`;
      const copies = primariesOf(c, 'n1', BUCKET, key).map((node) => inspect(c, node, BUCKET, key));
      const first = JSON.stringify(copies[0]);
      for (const copy of copies) expect(JSON.stringify(copy).replace(/"node":"n\d"/, ''), key).to.equal(first.replace(/"node":"n\d"/, ''));
    }
  });

  it('carries a tombstone to a replica that missed the delete, so the value does not come back', () => {
    const c = cluster(203, 3);
    const put = call(c, 'n1', { t: 'put', b: BUCKET, k: 'gone', v: encoder.encode('x'), w: 'all' });
    expect(put?.t).to.equal('put-ok');
    const read = call(c, 'n1', { t: 'get', b: BUCKET, k: 'gone', r: 'all' }) as Extract<ClientReply, { t: 'get-ok' }>;
    // n3 is cut off while the delete happens: it still holds the value.
    c.partition([['n1', 'n2'], ['n3']]);
    const del = call(c, 'n1', { t: 'del', b: BUCKET, k: 'gone', ctx: read.ctx, w: 2, sloppy: false });
    expect(del?.t).to.equal('del-ok');
    expect(inspect(c, 'n3', BUCKET, 'gone').found, 'n3 missed the delete').to.equal(true);
    c.heal();
    waitUntil(c, 'n3 to hold the tombstone', () => inspect(c, 'n3', BUCKET, 'gone').tombstone, 5000);
    for (const node of ['n1', 'n2', 'n3']) expect(inspect(c, node, BUCKET, 'gone').found, node).to.equal(false);
  });
});
