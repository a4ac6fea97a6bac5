/**
 * Topology changes on the deterministic simulator, under a running workload: a 4th and 5th
 * node join, a node leaves, a dead node is removed. Throughout, clients put new keys (w =
 * quorum) and read keys acknowledged earlier (r = quorum):
 *
 * - no acknowledged write is lost: at the end every key is at every one of its primaries;
 * - no read of a key acknowledged before the change began returns not-found, during or after;
 * - a joining node serves as a replica only once its ranges are streamed to it (it is
 *   `joining` until then, and out of the ring that places reads);
 * - nothing moves between nodes that were members before the join;
 * - a transfer cut short by a crash of the joining node starts again and completes.
 *
 * - after a join, `cleanup` removes from an old node what it no longer replicates, and nothing
 *   else; its segment hashes follow.
 *
 * Bad input: removing a live node, or a change that would leave fewer than n nodes, is refused
 * with the reason unless forced; a cleanup while a node joins is refused.
 */

import { expect } from 'chai';
import type { ClientReply } from '../../lib/codec/messages.js';
import { SimCluster } from '../../lib/sim/cluster.js';
import { inspect, primariesOf, waitUntil } from '../../lib/sim/replication.js';
import { segmentsOf } from '../../lib/storage/segments.js';
import { otherSeeds } from '../../lib/sim/scenarios.js';

const BUCKET = 'topo';
const encoder = new TextEncoder();
const MEMBERSHIP_TICKS_MAX = 3000;

function cluster(seed: number, nodes: number): SimCluster {
  console.log(`      cluster seed ${seed}`);
  // One zone per node (n1..n9), so the ring is the plain vnode ring.
  const zones = Array.from({ length: 9 }, (_, i) => `z${i + 1}`);
  const c = new SimCluster({ seed, nodes, zones, seeds: (index) => otherSeeds(index, Math.max(nodes, 3)).filter((_, i) => i < 3) });
  waitUntil(c, 'the cluster to form', () => c.converged() && c.activeNodes().every((n) => n.core?.membership.status === 'up'), MEMBERSHIP_TICKS_MAX);
  return c;
}

/**
 * Clients: a put of a new key and a get of an earlier acknowledged key every tick, through the
 * nodes `via` names, recording what was acknowledged and any get that found nothing.
 */
class Traffic {
  readonly acked: string[] = [];
  readonly notFound: string[] = [];
  readonly failedPuts: string[] = [];
  private readonly inflight = new Map<number, { kind: 'put' | 'get'; key: string }>();
  private next = 0;
  /** Keys acknowledged before this index were acknowledged before the change. */
  before = 0;

  constructor(
    private readonly c: SimCluster,
    private readonly prefix: string,
    private readonly via: () => string[],
  ) {}

  /** Runs `ticks` ticks with traffic. */
  run(ticks: number, until?: () => boolean): void {
    for (let t = 0; t < ticks; t++) {
      if (until?.() === true) return;
      this.step();
      this.c.run(1);
    }
  }

  private step(): void {
    const nodes = this.via();
    const node = nodes[this.next % nodes.length]!;
    const key = `${this.prefix}${this.next++}`;
    this.inflight.set(this.c.request(node, { t: 'put', b: BUCKET, k: key, v: encoder.encode(key) }), { kind: 'put', key });
    if (this.before > 0) {
      const old = this.acked[this.next % this.before]!;
      this.inflight.set(this.c.request(nodes[(this.next + 1) % nodes.length]!, { t: 'get', b: BUCKET, k: old, r: 'quorum' }), { kind: 'get', key: old });
    }
    for (const [id, what] of this.inflight) {
      const reply: ClientReply | undefined = this.c.replyTo(id);
      if (reply === undefined) continue;
      this.inflight.delete(id);
      if (what.kind === 'put') {
        if (reply.t === 'put-ok') this.acked.push(what.key);
        else this.failedPuts.push(what.key);
      } else if (reply.t === 'get-ok' && !reply.found) {
        this.notFound.push(what.key);
      }
    }
  }

  /** Marks every key acknowledged so far as "before the change". */
  mark(): void {
    this.before = this.acked.length;
  }

  /** Lets requests in flight finish. */
  drain(): void {
    this.c.run(600);
    this.step();
  }
}

/** Every acknowledged key is held by every one of its primaries (as `viewer` places it). */
function everyKeyAtN(c: SimCluster, keys: readonly string[], viewer: string): string[] {
  const missing: string[] = [];
  for (const key of keys) {
    for (const node of primariesOf(c, viewer, BUCKET, key)) if (!inspect(c, node, BUCKET, key).found) missing.push(`${key}@${node}`);
  }
  return missing;
}

function status(c: SimCluster, id: string): string | undefined {
  return c.node(id).core?.membership.status;
}

describe('sim: joining, leaving and removing nodes under load', function () {
  this.timeout(600_000);

  it('a 4th and a 5th node join: no acknowledged write lost, no earlier key ever not found, nothing moved between old nodes', () => {
    const c = cluster(301, 3);
    const traffic = new Traffic(c, 'j', () => c.activeNodes().filter((n) => n.core?.membership.status === 'up').map((n) => n.id));
    traffic.run(600);
    for (const step of [4, 5]) {
      traffic.mark();
      const joiner = c.addNode();
      const recordsBefore = new Map(c.activeNodes().map((n) => [n.id, n.core!.antiEntropy.recordsReceived]));
      c.start(joiner.id);
      let sawJoining = false;
      traffic.run(20_000, () => {
        if (status(c, joiner.id) === 'joining') sawJoining = true;
        return status(c, joiner.id) === 'up' && c.converged();
      });
      expect(status(c, joiner.id), `${joiner.id} joined`).to.equal('up');
      expect(sawJoining, `${joiner.id} was joining before it was up`).to.equal(true);
      traffic.run(300);
      // The joiner received its ranges; the old members moved nothing among themselves. (Under
      // load, anti-entropy between them may still catch a write whose replication was in
      // flight when it compared: a handful of records, never a range.)
      const joinerGot = joiner.core!.antiEntropy.recordsReceived;
      let oldGot = 0;
      for (const node of c.activeNodes()) if (node.id !== joiner.id) oldGot += node.core!.antiEntropy.recordsReceived - (recordsBefore.get(node.id) ?? 0);
      expect(oldGot, 'records the old members received meanwhile').to.be.at.most(Math.ceil(joinerGot / 100));
      console.log(`      join to ${step}: ${joiner.id} received ${joinerGot} records (${joiner.core!.segments.keyCount} keys); old members ${oldGot}; ${traffic.acked.length} puts acknowledged so far`);
    }
    traffic.drain();
    expect(traffic.notFound, 'gets of keys acknowledged before a join that found nothing').to.deep.equal([]);
    const missing = everyKeyAtN(c, traffic.acked, 'n1');
    expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
  });

  it('after a join, cleanup removes from an old node what it no longer replicates, and nothing else', () => {
    const c = cluster(307, 3);
    const traffic = new Traffic(c, 'c', () => c.activeNodes().filter((n) => n.core?.membership.status === 'up').map((n) => n.id));
    traffic.run(1500);
    traffic.mark();
    const joiner = c.addNode();
    c.start(joiner.id);
    traffic.run(5000, () => c.node('n1').core!.membership.view().some((m) => m.id === joiner.id && m.status === 'joining'));
    const refused = c.admin('n1', 'cleanup', {});
    expect(refused?.t, 'a cleanup while a node joins').to.equal('err');
    expect(JSON.stringify(refused)).to.match(/joining/);
    traffic.run(20_000, () => status(c, joiner.id) === 'up' && c.converged());
    traffic.run(300);
    const n1 = c.node('n1');
    const held = n1.disk.recordCount;
    const started = c.admin('n1', 'cleanup', {});
    expect(started?.t, JSON.stringify(started)).to.equal('admin-ok');
    traffic.run(5000, () => n1.core!.cleanupProgress?.done === true);
    const progress = n1.core!.cleanupProgress!;
    expect(progress.done).to.equal(true);
    expect(progress.aborted).to.equal(null);
    // n1 keeps exactly the keys it replicates on the ring after the join.
    const foreign = [...n1.disk.entries()].filter((e) => !primariesOf(c, 'n1', e.bucket, e.key).includes('n1'));
    expect(foreign.map((e) => e.key).slice(0, 5), 'keys n1 holds but does not replicate').to.deep.equal([]);
    expect(progress.keysRemoved).to.be.greaterThan(held / 10);
    traffic.drain();
    // Segment hashes follow writes still on their way to disk: compare once none is.
    waitUntil(c, 'n1 to have no write on its way to disk', () => n1.disk.undurable === 0, 1000);
    expect(n1.core!.segments.equals(segmentsOf(n1.disk.entries(), n1.core!.segments.depth)), 'segment hashes follow the removals').to.equal(true);
    expect(traffic.notFound).to.deep.equal([]);
    const missing = everyKeyAtN(c, traffic.acked, 'n1');
    expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
    console.log(`      n1 held ${held} keys; cleanup removed ${progress.keysRemoved} (${progress.spans} spans), every key still at its 3 primaries`);
  });

  it('a node leaves under load: it hands its ranges over, then is left; every key ends at n replicas', () => {
    const c = cluster(302, 5);
    const traffic = new Traffic(c, 'l', () => c.activeNodes().filter((n) => n.core?.membership.status === 'up').map((n) => n.id));
    traffic.run(800);
    traffic.mark();
    const reply = c.leave('n4');
    expect(reply?.t, JSON.stringify(reply)).to.equal('admin-ok');
    traffic.run(20_000, () => c.allSee('n4', (s) => s.status === 'left'));
    expect(status(c, 'n4')).to.equal('left');
    traffic.run(300);
    traffic.drain();
    expect(traffic.notFound).to.deep.equal([]);
    const missing = everyKeyAtN(c, traffic.acked, 'n1');
    expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
    console.log(`      n4 left; ${traffic.acked.length} puts acknowledged, every key at its 3 primaries`);
  });

  it('a dead node is removed: the survivors re-create its copies, so every key is back at n replicas', () => {
    const c = cluster(303, 5);
    const traffic = new Traffic(c, 'r', () => c.activeNodes().map((n) => n.id));
    traffic.run(800);
    c.crash('n5');
    waitUntil(c, 'n5 dead everywhere', () => c.allSee('n5', (s) => s.live === 'dead'), MEMBERSHIP_TICKS_MAX);
    traffic.mark();
    const alive = c.admin('n1', 'remove', { node: 'n2' });
    expect(alive?.t).to.equal('err');
    expect(JSON.stringify(alive)).to.match(/n2 is alive/);
    const removed = c.admin('n1', 'remove', { node: 'n5' });
    expect(removed?.t, JSON.stringify(removed)).to.equal('admin-ok');
    traffic.run(30_000, () => traffic.acked.length > traffic.before + 200 && everyKeyAtN(c, traffic.acked.slice(0, traffic.before), 'n1').length === 0);
    traffic.drain();
    expect(traffic.notFound).to.deep.equal([]);
    const missing = everyKeyAtN(c, traffic.acked, 'n1');
    expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
    for (const node of c.activeNodes()) expect(primariesOf(c, node.id, BUCKET, 'r1')).to.not.include('n5');
  });

  it('a joining node killed in the middle of its transfer starts it again and joins with everything', () => {
    const c = cluster(304, 3);
    const traffic = new Traffic(c, 'k', () => c.activeNodes().filter((n) => n.core?.membership.status === 'up').map((n) => n.id));
    traffic.run(1500);
    traffic.mark();
    const joiner = c.addNode();
    c.start(joiner.id);
    traffic.run(5000, () => (joiner.core?.antiEntropy.recordsReceived ?? 0) > 100);
    expect(status(c, joiner.id), 'still joining when killed').to.equal('joining');
    c.crash(joiner.id);
    traffic.run(300);
    c.start(joiner.id);
    traffic.run(20_000, () => status(c, joiner.id) === 'up' && c.converged());
    expect(status(c, joiner.id)).to.equal('up');
    traffic.run(300);
    traffic.drain();
    expect(traffic.notFound).to.deep.equal([]);
    const missing = everyKeyAtN(c, traffic.acked, 'n1');
    expect(missing.slice(0, 10), `${missing.length} copies missing`).to.deep.equal([]);
  });

  it('refuses a change that would leave fewer than n nodes, and a removal of a live or unknown node, unless forced', () => {
    const c = cluster(305, 3);
    const leave = c.leave('n3');
    expect(leave?.t).to.equal('err');
    expect(JSON.stringify(leave)).to.match(/fewer than n=3/);
    const unknown = c.admin('n1', 'remove', { node: 'n9' });
    expect(JSON.stringify(unknown)).to.match(/no member n9/);
    const self = c.admin('n1', 'remove', { node: 'n1' });
    expect(JSON.stringify(self)).to.match(/the node you are talking to/);
    c.crash('n3');
    waitUntil(c, 'n3 dead everywhere', () => c.allSee('n3', (s) => s.live === 'dead'), MEMBERSHIP_TICKS_MAX);
    const few = c.admin('n1', 'remove', { node: 'n3' });
    expect(JSON.stringify(few)).to.match(/fewer than n=3/);
    const forced = c.admin('n1', 'remove', { node: 'n3', force: true });
    expect(forced?.t).to.equal('admin-ok');
  });

  it('plans a change before it is made: the ranges, and what each node would gain and lose', () => {
    const c = cluster(306, 3);
    const reply = c.admin('n1', 'plan', { change: 'join', node: 'n4', vnodes: 16, zone: 'z4' });
    expect(reply?.t, JSON.stringify(reply)).to.equal('admin-ok');
    const plan = (reply as Extract<ClientReply, { t: 'admin-ok' }>).result as { ranges: number; moved: { share: number }; betweenExistingNodes: { share: number }; nodes: { node: string; gains: { share: number } }[] };
    expect(plan.ranges).to.be.above(0);
    expect(plan.betweenExistingNodes.share).to.equal(0);
    // A 4th node takes n/4 of the ring's replica-ranges: 3/4 of one ring's worth.
    const n4 = plan.nodes.find((n) => n.node === 'n4');
    expect(n4?.gains.share).to.be.within(0.4, 1);
    expect(plan.moved.share).to.be.closeTo(n4!.gains.share, 1e-9);
  });
});
