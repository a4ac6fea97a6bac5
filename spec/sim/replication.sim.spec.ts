/**
 * Proves replication under faults on the deterministic simulator: 5 real node cores, n=3,
 * r=w=quorum, sloppy quorums, over a network that loses, duplicates and reorders messages and
 * disks that lose what was not yet durable when a node is killed.
 *
 * Directed cases first, one fixed seed each: quorums with a primary down, siblings and their
 * resolution, deletes and the reaping of their tombstones, hinted handoff to a restarted node,
 * a wiped node writing under a new storage epoch (Riak kv679), and the corner cases where a
 * replica could issue the same dot twice, a reaped tombstone could let an old context or a
 * late hint undo what came after it, or a restarted node could take writes alone.
 *
 * Then the randomized scenarios (lib/sim/replication.ts) over fixed seeds (plus $SEED): clients
 * put, get and delete on 24 keys while a seeded schedule crashes, pauses, cuts off and wipes
 * nodes; after healing, every hint must be delivered, every primary must hold the final r=all
 * read of each key, and the history must show no lost, resurrected or invented value, while
 * the disks check all along that no replica's copy of a key ever went back. Each seed prints
 * its figures; a failing seed prints its problems and the command that replays it.
 *
 * Last, canaries: a checker that never fails proves nothing, so each check is shown to fail
 * on a broken history, a regressing disk and a cluster whose data was destroyed.
 */

import { expect } from 'chai';
import { Prng } from '../../lib/base/prng.js';
import type { ClientReply, Level } from '../../lib/codec/messages.js';
import { checkRegisters, SimCheckError, SimFailure } from '../../lib/sim/checkers.js';
import { nodeAddress, SIM_SEGMENT_DEPTH, SimCluster } from '../../lib/sim/cluster.js';
import { segmentsOf } from '../../lib/storage/segments.js';
import { SimDisk } from '../../lib/sim/disk.js';
import { call, inspect, primariesOf, runReplication, waitUntil } from '../../lib/sim/replication.js';
import { otherSeeds, runScenario, type Measurements } from '../../lib/sim/scenarios.js';
import type { Operation } from '../../lib/sim/workload.js';
import { replay, seeds } from './support.js';

const BUCKET = 'sim';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Ticks for membership to notice a crash or a restart: the longest suspicion and then some. */
const MEMBERSHIP_TICKS_MAX = 3000;
/** The simulated cluster's tombstone grace period (10 s) in ticks, and a margin for the reap to land. */
const REAP_TICKS = 1000 + 200;

/** A converged 5-node cluster whose nodes are seeded with three other nodes each. */
function converged(seed: number, seedList: (index: number) => string[] = (index) => otherSeeds(index, 5)): SimCluster {
  console.log(`      cluster seed ${seed}`);
  const cluster = new SimCluster({ seed, nodes: 5, seeds: seedList });
  waitUntil(cluster, 'the cluster to form', () => cluster.converged(), MEMBERSHIP_TICKS_MAX);
  return cluster;
}

/** The first key `d0`, `d1`, … whose primaries pass `accept`. */
function keyWhere(cluster: SimCluster, accept: (primaries: readonly string[]) => boolean, prefix = 'd'): string {
  for (let i = 0; i < 1000; i++) {
    const key = `${prefix}${i}`;
    if (accept(primariesOf(cluster, viewer(cluster), BUCKET, key))) return key;
  }
  throw new Error('no key fits');
}

/** A running node to ask about placement. */
function viewer(cluster: SimCluster): string {
  const node = cluster.activeNodes()[0];
  if (node === undefined) throw new Error('no node is running');
  return node.id;
}

function put(cluster: SimCluster, node: string, key: string, value: string, options: { ctx?: Uint8Array; w?: Level; sloppy?: boolean } = {}): ClientReply {
  const reply = call(cluster, node, { t: 'put', b: BUCKET, k: key, v: encoder.encode(value), ...options });
  if (reply === undefined) throw new Error(`put ${key}=${value} via ${node} got no answer`);
  return reply;
}

function del(cluster: SimCluster, node: string, key: string, options: { ctx?: Uint8Array; w?: Level } = {}): ClientReply {
  const reply = call(cluster, node, { t: 'del', b: BUCKET, k: key, ...options });
  if (reply === undefined) throw new Error(`del ${key} via ${node} got no answer`);
  return reply;
}

function get(cluster: SimCluster, node: string, key: string, r: Level = 'all'): Extract<ClientReply, { t: 'get-ok' }> {
  const reply = call(cluster, node, { t: 'get', b: BUCKET, k: key, r });
  if (reply?.t !== 'get-ok') throw new Error(`get ${key} via ${node} was answered ${JSON.stringify(reply)}`);
  return reply;
}

function values(reply: { values: readonly Uint8Array[] }): string[] {
  return reply.values.map((v) => decoder.decode(v)).sort();
}

/** What every primary of the key holds: live values and clock, by node. */
function copies(cluster: SimCluster, key: string): Map<string, { values: string[]; clock: string; found: boolean; tombstone: boolean }> {
  const out = new Map<string, { values: string[]; clock: string; found: boolean; tombstone: boolean }>();
  for (const node of primariesOf(cluster, viewer(cluster), BUCKET, key)) {
    const copy = inspect(cluster, node, BUCKET, key);
    out.set(node, { values: values(copy), clock: JSON.stringify(copy.clock), found: copy.found, tombstone: copy.tombstone });
  }
  return out;
}

function deadEverywhere(cluster: SimCluster, id: string): void {
  waitUntil(cluster, `${id} to be dead everywhere`, () => cluster.allSee(id, (s) => s.live === 'dead'), MEMBERSHIP_TICKS_MAX);
}

function backAndDrained(cluster: SimCluster): void {
  const everyoneUp = (): boolean => cluster.activeNodes().length === cluster.nodes.length && cluster.converged();
  waitUntil(cluster, 'every node to be up and agree', everyoneUp, MEMBERSHIP_TICKS_MAX);
  waitUntil(cluster, 'every hint to be delivered', () => cluster.hintsPending() === 0, 6000);
}

function expectOk(reply: ClientReply, what: string): void {
  expect(reply.t, `${what}: ${JSON.stringify(reply)}`).to.be.oneOf(['put-ok', 'del-ok', 'get-ok']);
}

describe('sim: replication under faults', function () {
  this.timeout(120_000);

  describe('directed cases', () => {
    it('with a primary crashed, w=2 puts succeed, and w=all without a sloppy quorum is UNAVAILABLE at once', () => {
      const cluster = converged(101);
      const key = keyWhere(cluster, (p) => p.includes('n3') && !p.includes('n1'));
      cluster.crash('n3');
      // Before anyone noticed: the replica write to n3 fails, the two others acknowledge.
      expectOk(put(cluster, 'n1', key, 'a1', { w: 2 }), 'w=2 right after the crash');
      deadEverywhere(cluster, 'n3');
      expectOk(put(cluster, 'n1', key, 'a2', { w: 2 }), 'w=2 with n3 dead');
      expectOk(put(cluster, 'n1', key, 'a3', { w: 'all' }), 'w=all with a fallback standing in for n3');
      const id = cluster.request('n1', { t: 'put', b: BUCKET, k: key, v: encoder.encode('a4'), w: 'all', sloppy: false });
      // No tick has passed: the refusal came before anything was sent.
      const refusal = cluster.replyTo(id);
      expect(refusal?.t, JSON.stringify(refusal)).to.equal('err');
      if (refusal?.t !== 'err') return;
      expect(refusal.code).to.equal('UNAVAILABLE');
      expect(refusal.details.mayHaveLanded).to.equal(false);
      expect(values(get(cluster, 'n2', key, 'quorum'))).to.deep.equal(['a1', 'a2', 'a3']);
    });

    it('two writers without a context make two siblings; a put with the merged context resolves them', () => {
      const cluster = converged(102);
      const key = 'siblings';
      const [p1, p2] = primariesOf(cluster, 'n1', BUCKET, key) as [string, string];
      const first = cluster.request(p1, { t: 'put', b: BUCKET, k: key, v: encoder.encode('b1') });
      const second = cluster.request(p2, { t: 'put', b: BUCKET, k: key, v: encoder.encode('b2') });
      waitUntil(cluster, 'both puts to be answered', () => cluster.replyTo(first) !== undefined && cluster.replyTo(second) !== undefined, 1000);
      expectOk(cluster.replyTo(first) as ClientReply, 'first writer');
      expectOk(cluster.replyTo(second) as ClientReply, 'second writer');
      const read = get(cluster, 'n4', key);
      expect(values(read)).to.deep.equal(['b1', 'b2']);
      const resolved = put(cluster, 'n5', key, 'b3', { ctx: read.ctx });
      expect(resolved.t === 'put-ok' && resolved.siblings, JSON.stringify(resolved)).to.equal(1);
      expect(values(get(cluster, 'n3', key))).to.deep.equal(['b3']);
      cluster.run(20);
      const held = copies(cluster, key);
      for (const [node, copy] of held) expect(copy.values, node).to.deep.equal(['b3']);
      expect(new Set([...held.values()].map((c) => c.clock)).size, 'the primaries hold one clock').to.equal(1);
    });

    it('a delete is not found on any replica, and its tombstone is reaped once every primary held it through the grace period', () => {
      const cluster = converged(103);
      const read = (key: string): Extract<ClientReply, { t: 'get-ok' }> => get(cluster, 'n2', key);
      expectOk(put(cluster, 'n1', 'gone', 'c1', { w: 'all' }), 'put');
      expectOk(del(cluster, 'n3', 'gone', { ctx: read('gone').ctx, w: 'all' }), 'delete with the context of a read');
      expectOk(put(cluster, 'n1', 'gone-blind', 'c2', { w: 'all' }), 'put');
      expectOk(del(cluster, 'n4', 'gone-blind', { w: 'all' }), 'delete without a context');
      for (const key of ['gone', 'gone-blind']) {
        const after = read(key);
        expect(after.found, key).to.equal(false);
        expect(after.values, key).to.have.length(0);
        for (const [node, copy] of copies(cluster, key)) expect(copy.found, `${key} at ${node}`).to.equal(false);
      }
      const reapedBefore = cluster.replicationTotals().tombstonesReaped;
      cluster.run(REAP_TICKS);
      for (const key of ['gone', 'gone-blind']) {
        for (const [node, copy] of copies(cluster, key)) expect(copy.tombstone || copy.found, `${key} at ${node} still holds something`).to.equal(false);
      }
      const reaped = cluster.replicationTotals().tombstonesReaped - reapedBefore;
      console.log(`      tombstones reaped: ${reaped}`);
      expect(reaped).to.equal(6);
    });

    it('a restarted node gets its hints, and every replica ends with every acknowledged write', () => {
      const cluster = converged(104);
      const keys = Array.from({ length: 200 }, (_, i) => `h${i}`).filter((key) => primariesOf(cluster, 'n1', BUCKET, key).includes('n4')).slice(0, 40);
      cluster.crash('n4');
      deadEverywhere(cluster, 'n4');
      const prng = new Prng(104);
      for (const key of keys) expectOk(put(cluster, prng.pick(['n1', 'n2', 'n3', 'n5']), key, `v-${key}`, { w: 2 }), `put ${key}`);
      const pending = cluster.hintsPending();
      expect(pending, 'hints kept while n4 is down').to.equal(keys.length);
      cluster.start('n4');
      // Nothing reached n4 but by handoff: it holds none of the keys before the hints arrive.
      for (const key of keys) expect(inspect(cluster, 'n4', BUCKET, key).found, `${key} at n4 right after its restart`).to.equal(false);
      backAndDrained(cluster);
      const delivered = cluster.replicationTotals().hintsDelivered;
      console.log(`      ${keys.length} keys written with n4 down: ${pending} hints kept, ${delivered} delivered`);
      expect(delivered).to.equal(keys.length);
      for (const key of keys) {
        for (const [node, copy] of copies(cluster, key)) expect(copy.values, `${key} at ${node}`).to.deep.equal([`v-${key}`]);
      }
    });

    it('a wiped node writes under a new epoch: its new writes are not shadowed by those it made before (kv679)', () => {
      const cluster = converged(105);
      const [withContext, blind] = ['w0', 'w1'].map((prefix) => keyWhere(cluster, (p) => p.includes('n2'), prefix)) as [string, string];
      for (const key of [withContext, blind]) expectOk(put(cluster, 'n2', key, `old-${key}`, { w: 'all' }), `put ${key} via n2`);
      expect(inspect(cluster, 'n2', BUCKET, blind).clock.map(([actor]) => actor)).to.include('n2/e1');
      cluster.crash('n2');
      cluster.wipe('n2');
      cluster.start('n2');
      waitUntil(cluster, 'n2 to rejoin after the wipe', () => cluster.activeNodes().length === 5 && cluster.converged() && cluster.node('n2').core?.membership.hasJoined === true, MEMBERSHIP_TICKS_MAX);
      // A write without a context, through the wiped node, before anything repaired it.
      expectOk(put(cluster, 'n2', blind, `new-${blind}`, { w: 'all' }), `blind put ${blind} via n2`);
      expect(inspect(cluster, 'n2', BUCKET, blind).clock.map(([actor]) => actor)).to.include('n2/e2');
      expect(values(get(cluster, 'n1', blind))).to.deep.equal([`new-${blind}`, `old-${blind}`]);
      // With the context of a fresh read, the new value supersedes the old one.
      const fresh = get(cluster, 'n4', withContext, 'quorum');
      expect(values(fresh)).to.deep.equal([`old-${withContext}`]);
      expectOk(put(cluster, 'n2', withContext, `new-${withContext}`, { ctx: fresh.ctx, w: 'all' }), `put ${withContext} via n2`);
      expect(values(get(cluster, 'n5', withContext))).to.deep.equal([`new-${withContext}`]);
    });

    // Found by this simulation (`npm run sim -- --seed 1 --scenario replication --key k7`): a
    // fallback that ordered a write on the hint it kept built the new dot on that hint alone,
    // and once the hint was delivered and deleted it issued the same dot again, which replicas
    // took for "nothing new". Now only a primary orders a write; a fallback forwards it.
    it('a fallback that coordinates two writes to one key never issues the same dot twice', () => {
      const cluster = converged(106);
      const key = keyWhere(cluster, () => true, 'f');
      const primary = (primariesOf(cluster, 'n1', BUCKET, key) as [string])[0];
      const standIn = (): string => {
        deadEverywhere(cluster, primary);
        const reply = cluster.admin(viewer(cluster), 'whereis', { bucket: BUCKET, key });
        return ((reply?.t === 'admin-ok' ? reply.result : { fallbacks: [] }) as { fallbacks: string[] }).fallbacks[0] as string;
      };
      cluster.crash(primary);
      const first = standIn();
      expectOk(put(cluster, first, key, 'f1', { w: 2 }), `put f1 via the fallback ${first}`);
      cluster.start(primary);
      backAndDrained(cluster);
      cluster.crash(primary);
      const second = standIn();
      expectOk(put(cluster, second, key, 'f2', { w: 2 }), `put f2 via the fallback ${second}`);
      cluster.start(primary);
      backAndDrained(cluster);
      // Neither writer saw the other's value: both are siblings.
      expect(values(get(cluster, 'n1', key)), `fallbacks ${first} then ${second} for ${primary}`).to.deep.equal(['f1', 'f2']);
    });

    // The coordinator sends the new version to the other replicas before its own copy is
    // durable; killed in between, it restarts without that dot. A start that did not follow a
    // clean stop takes a new storage epoch, so its next write is under a new actor.
    it('a coordinator killed before its own write is durable does not issue that dot again after restarting', () => {
      const cluster = converged(107);
      const key = keyWhere(cluster, () => true, 'g');
      const [coordinator, ...others] = primariesOf(cluster, 'n1', BUCKET, key) as [string, string, string];
      cluster.request(coordinator, { t: 'put', b: BUCKET, k: key, v: encoder.encode('g1'), w: 2 });
      // Same tick: the replica writes are on the wire, the coordinator's own write is not durable.
      cluster.crash(coordinator);
      waitUntil(cluster, 'the other primaries to hold g1', () => others.every((node) => values(inspect(cluster, node, BUCKET, key)).includes('g1')), 100);
      cluster.start(coordinator);
      waitUntil(cluster, `${coordinator} to rejoin`, () => cluster.activeNodes().length === 5 && cluster.converged() && cluster.node(coordinator).core?.servesData === true, MEMBERSHIP_TICKS_MAX);
      expectOk(put(cluster, coordinator, key, 'g2', { w: 2 }), `put g2 via ${coordinator}`);
      expect(values(get(cluster, 'n1', key))).to.include('g2');
    });

    // A node whose seed list holds its own address counts itself joined at once. Restarted, it
    // must not order writes on a ring of itself alone: data requests wait until a member of
    // the cluster has answered, and members it knew before the restart are asked too.
    it('a restarted node that is its own seed takes no write it cannot place', () => {
      const cluster = converged(108, () => [nodeAddress(1), nodeAddress(2), nodeAddress(3)]);
      const key = keyWhere(cluster, (p) => !p.includes('n1'), 's');
      cluster.crash('n1');
      cluster.start('n1');
      const reply = put(cluster, 'n1', key, 's1');
      console.log(`      put through n1 right after its restart: ${reply.t === 'err' ? reply.code : reply.t}`);
      backAndDrained(cluster);
      if (reply.t === 'put-ok') expect(values(get(cluster, 'n2', key)), 'the acknowledged put is at its primaries').to.include('s1');
    });

    // Anti-entropy will compare segment hashes that each node keeps up to date on every write;
    // after a run with crashes and wipes they must equal hashes rebuilt from its disk.
    it('keeps every node\'s segment hashes equal to a rebuild from what its disk holds', () => {
      const cluster = new SimCluster({ seed: 113, nodes: 5, seeds: (index) => otherSeeds(index, 5) });
      console.log('      cluster seed 113');
      runReplication(cluster, new Prng(113), { loadTicks: 1500, faults: { kinds: ['crash', 'wipe'], lossMin: 0.01, lossMax: 0.02, duplication: 0.01 } });
      cluster.run(50);
      let keys = 0;
      for (const node of cluster.nodes) {
        const core = node.core;
        if (core === undefined) continue;
        const rebuilt = segmentsOf(node.disk.entries(), SIM_SEGMENT_DEPTH);
        expect(core.segments.keyCount, `${node.id}'s key count`).to.equal(rebuilt.keyCount);
        expect(core.segments.equals(rebuilt), `${node.id}'s segment hashes`).to.equal(true);
        keys += rebuilt.keyCount;
      }
      console.log(`      ${keys} stored objects over 5 nodes, every node's hashes equal to a rebuild`);
    });

    // A node restarted with no seeds at all asks the members it knew before (kept in its node
    // metadata), and serves data only once one of them answered.
    it('a node restarted without seeds finds its cluster through the members it knew, and waits for them', () => {
      const cluster = converged(112);
      const key = keyWhere(cluster, () => true, 'p');
      cluster.run(200);
      cluster.crash('n3');
      cluster.node('n3').seeds = [];
      cluster.start('n3');
      const early = put(cluster, 'n3', key, 'p1');
      expect(early.t === 'err' && early.code, 'a write before any member answered').to.equal('UNAVAILABLE');
      waitUntil(cluster, 'n3 back in every table', () => cluster.allSee('n3', (s) => s.live === 'alive') && cluster.converged(), MEMBERSHIP_TICKS_MAX);
      expectOk(put(cluster, 'n3', key, 'p2', { w: 'all' }), 'put via n3 once it is back');
      expect(values(get(cluster, 'n1', key))).to.deep.equal(['p2']);
    });

    // Reaping a tombstone forgets the key's clock, so a coordinator could start the key's
    // counter at 1 again and issue dots a context read before the delete covers (found by
    // `npm run sim -- --seed 7 --scenario replication-wipe --key k2`). A new dot on a key its
    // actor holds no value of now starts above every counter the actor issued.
    it('a write after a tombstone was reaped is not superseded by a context read before the delete', () => {
      const cluster = converged(111);
      const key = keyWhere(cluster, () => true, 'r');
      const [coordinator] = primariesOf(cluster, 'n1', BUCKET, key) as [string];
      expectOk(put(cluster, coordinator, key, 'r1', { w: 'all' }), 'put r1');
      const before = get(cluster, coordinator, key);
      expectOk(del(cluster, coordinator, key, { ctx: before.ctx, w: 'all' }), 'delete');
      cluster.run(REAP_TICKS);
      for (const [node, copy] of copies(cluster, key)) expect(copy.tombstone || copy.found, `${key} at ${node} is reaped`).to.equal(false);
      expectOk(put(cluster, coordinator, key, 'r2', { w: 'all' }), 'put r2 after the reap');
      // A client that read before the delete writes with that old context: it never saw r2.
      expectOk(put(cluster, coordinator, key, 'r3', { ctx: before.ctx, w: 'all' }), 'put r3 with the context read before the delete');
      expect(values(get(cluster, 'n1', key))).to.deep.equal(['r2', 'r3']);
    });

    // A fallback that is down may keep a hint of the value a delete removed; delivered after
    // the reap, it would bring the value back (Cassandra's resurrection past gc_grace). Reaping
    // waits until every member has been alive for a whole grace period, time enough to deliver.
    it('a hint delivered after the tombstone was reaped does not bring the deleted value back', () => {
      const cluster = converged(109);
      const key = keyWhere(cluster, () => true, 'z');
      const [down, coordinator] = primariesOf(cluster, 'n1', BUCKET, key) as [string, string, string];
      cluster.crash(down);
      deadEverywhere(cluster, down);
      expectOk(put(cluster, coordinator, key, 'z1', { w: 'all' }), 'put with a fallback standing in');
      const keeper = cluster.nodes.find((node) => node.core !== undefined && node.core.replication.hintsPending > 0)?.id as string;
      expect(keeper, 'a fallback keeps the hint').to.be.a('string');
      cluster.crash(keeper);
      cluster.start(down);
      waitUntil(cluster, `${down} back and ${keeper} dead everywhere`, () => cluster.allSee(keeper, (s) => s.live === 'dead') && cluster.allSee(down, (s) => s.live === 'alive'), MEMBERSHIP_TICKS_MAX);
      const seen = get(cluster, coordinator, key);
      expectOk(del(cluster, coordinator, key, { ctx: seen.ctx, w: 'all' }), 'delete at every primary');
      cluster.run(REAP_TICKS);
      cluster.start(keeper);
      backAndDrained(cluster);
      expect(values(get(cluster, 'n1', key)), `after ${keeper} delivered its hint`).to.deep.equal([]);
    });
  });

  // A seed that fails prints its problems and the replay command with `--key`, which tells the
  // story of the first key named.
  describe('randomized, seeded', () => {
    const runs: readonly (readonly [string, number, string])[] = [
      ['replication-calm', 5, 'no faults'],
      ['replication-primaries', 15, 'faults, clients routed to primaries'],
      ['replication-wipe', 10, 'a wiped node, then faults'],
      ['replication', 12, 'faults, clients on any node'],
    ];
    for (const [scenario, count, what] of runs) {
      it(`${scenario} (${what}): seeds 1..${count}, no acknowledged write lost, replicas equal, hints drained`, () => {
        const { failures, total } = runSeeds(scenario, seeds(count));
        expect(failures, failures.join('\n')).to.deep.equal([]);
        // The clients pair some of their quorum gets: nodes must have answered some of them paired.
        expect(total('pairedReads'), 'gets the nodes answered paired').to.be.above(0);
      });
    }
  });

  describe('canaries: the checks fail when they should', () => {
    it('the register checker finds a lost write, a resurrected value and a value nobody wrote', () => {
      const history = canaryHistory();
      const fine = checkRegisters(history, new Map([['k', ['v2']]]));
      expect(fine).to.deep.include({ lost: [], zombies: [], phantoms: [], superseded: 1 });
      const lost = checkRegisters(history, new Map([['k', []]]));
      expect(lost.lost.join('\n')).to.match(/acknowledged put v2 #2 .* is gone/);
      const zombie = checkRegisters(history, new Map([['k', ['v1', 'v2']]]));
      expect(zombie.zombies.join('\n')).to.match(/v1 is back, though put v2 #2 .* had seen and superseded it/);
      expect(zombie.resurrected, 'a put superseded it, not a delete').to.deep.equal([]);
      // A delete with the context of a read that saw v2: v2 coming back is a resurrected delete.
      const deleted = [...history, operation(3, { kind: 'get', values: ['v2'] }), operation(4, { kind: 'del', contextFrom: 3 })];
      expect(checkRegisters(deleted, new Map([['k', []]]))).to.deep.include({ lost: [], zombies: [], resurrected: [] });
      const resurrected = checkRegisters(deleted, new Map([['k', ['v2']]]));
      expect(resurrected.resurrected.join('\n')).to.match(/v2 is back, though del #4 .* had seen and superseded it/);
      expect(resurrected.zombies).to.deep.equal(resurrected.resurrected);
      const phantom = checkRegisters(history, new Map([['k', ['v2', 'v9']]]));
      expect(phantom.phantoms.join('\n')).to.match(/returned v9, which no put of k wrote/);
      // A delete without a context covers what its coordinator held: nothing lost.
      const blindDelete = checkRegisters([...history, operation(3, { kind: 'del', value: undefined })], new Map([['k', []]]));
      expect(blindDelete.lost).to.deep.equal([]);
    });

    it('the disk reports a replica whose copy of a key goes back, but not a reap', () => {
      const reports: string[] = [];
      const disk = new SimDisk({ prng: new Prng(7), report: (p) => reports.push(p) });
      const object = (counter: number) => ({ entries: [{ actor: 'n1/e1', counter, values: [encoder.encode(`v${counter}`)] }] });
      disk.write(1, [{ op: 'put', bucket: BUCKET, key: 'k', object: object(2) }], 0);
      disk.write(2, [{ op: 'delete', bucket: BUCKET, key: 'k' }], 0);
      disk.write(3, [{ op: 'put', bucket: BUCKET, key: 'k', object: object(1) }], 0);
      disk.write(4, [{ op: 'put', bucket: BUCKET, key: 'k', object: object(3) }], 0);
      disk.complete(10);
      expect(reports).to.deep.equal([]);
      disk.write(5, [{ op: 'put', bucket: BUCKET, key: 'k', object: object(2) }], 10);
      disk.complete(20);
      expect(reports).to.deep.equal(['write #5 took sim/k back from {n1/e1:3} to {n1/e1:2}']);
    });

    it('a run whose data is destroyed after healing fails with lost writes', () => {
      const cluster = new SimCluster({ seed: 110, nodes: 5, seeds: (index) => otherSeeds(index, 5) });
      console.log(`      cluster seed 110`);
      const sabotage = (c: SimCluster): void => {
        // Every primary of k0 loses its data: what was acknowledged on k0, and on every key with
        // the same primaries, is gone.
        for (const id of primariesOf(c, 'n1', 'sim', 'k0')) {
          c.crash(id);
          c.wipe(id);
          c.start(id);
        }
        waitUntil(c, 'the wiped nodes to rejoin', () => c.activeNodes().length === 5 && c.converged(), MEMBERSHIP_TICKS_MAX);
      };
      let problems: readonly string[] = [];
      try {
        runReplication(cluster, new Prng(110), { loadTicks: 1000, faults: { kinds: [], lossMin: 0, lossMax: 0, duplication: 0 }, sabotage });
      } catch (error) {
        if (!(error instanceof SimCheckError)) throw error;
        problems = error.problems;
      }
      expect(problems.join('\n')).to.match(/^lost: k\d+: acknowledged put/m);
    });
  });
});

/** Runs a scenario over the seeds, printing each seed's figures or problems; returns the failures and the totals over the passing seeds. */
function runSeeds(scenario: string, seedList: readonly number[]): { failures: string[]; total: (name: string) => number } {
  const failures: string[] = [];
  const totals = new Map<string, number>();
  const startedMs = performance.now();
  for (const seed of seedList) {
    try {
      const { measurements } = runScenario(scenario, { seed });
      for (const [name, value] of Object.entries(measurements)) if (typeof value === 'number') totals.set(name, (totals.get(name) ?? 0) + value);
      console.log(`      seed ${seed}: ${figures(measurements)}`);
    } catch (error) {
      if (!(error instanceof SimFailure)) throw error;
      const shown = error.problems.slice(0, 3).map((p) => `          ${p}`);
      // The first key named in the problems, whose whole story `--key` prints.
      const key = /^(?:\w+: )?(k\d+):/.exec(error.problems[0] ?? '')?.[1];
      const command = `${replay(scenario, seed, 5)}${key === undefined ? '' : ` --key ${key}`}`;
      console.log(`      seed ${seed}: FAILED, ${error.problems.length} problems; replay: ${command}\n${shown.join('\n')}`);
      failures.push(`seed ${seed}: ${error.problems.length} problems, first: ${error.problems[0] ?? '?'}; replay: ${command}`);
    }
  }
  const passed = seedList.length - failures.length;
  const total = (name: string): number => totals.get(name) ?? 0;
  console.log(
    `      ${scenario}: ${passed}/${seedList.length} seeds passed in ${Math.round(performance.now() - startedMs)} ms; over the passing seeds: ` +
      `${total('acknowledged')} operations acknowledged (${total('putsAcknowledged')} puts, ${total('deletesAcknowledged')} deletes), ${total('unknown')} unknown, ` +
      `${total('faults')} faults, ${total('hintsDelivered')} hints delivered, ${total('readRepairs')} read repairs, ${total('tombstonesReaped')} tombstones reaped, ` +
      `${total('pairedReads')} paired reads answered (${total('pairsUnsettled')} sent again unpaired)`,
  );
  return { failures, total };
}

function figures(m: Measurements): string {
  const faults = Object.entries(m)
    .filter(([name]) => name.startsWith('fault:'))
    .map(([name, count]) => `${name.slice('fault:'.length)} ${String(count)}`)
    .join(', ');
  return (
    `${String(m.operations)} ops, ${String(m.acknowledged)} acknowledged (${String(m.putsAcknowledged)} puts, ${String(m.deletesAcknowledged)} deletes, ${String(m.getsAcknowledged)} gets), ` +
    `${String(m.unknown)} unknown, ${String(m.failed)} failed; ${String(m.faults)} faults${faults === '' ? '' : ` (${faults})`}, loss ${String(m.lossPercent)}%; ` +
    `hints delivered ${String(m.hintsDelivered)}, read repairs ${String(m.readRepairs)}, superseded ${String(m.superseded)}, ` +
    `converged ${String(m.convergeTicks)} ticks after healing`
  );
}

/** Op 0 puts v1, op 1 reads it, op 2 puts v2 with that read's context: v2 supersedes v1. */
function canaryHistory(): Operation[] {
  return [
    operation(0, { kind: 'put', value: 'v1' }),
    operation(1, { kind: 'get', value: undefined, values: ['v1'], replyContext: new Uint8Array([0x80]) }),
    operation(2, { kind: 'put', value: 'v2', contextFrom: 1 }),
  ];
}

function operation(index: number, fields: Partial<Operation>): Operation {
  return {
    index,
    client: 0,
    kind: 'put',
    key: 'k',
    node: 'n1',
    requestId: index + 1,
    invokeTick: index * 10,
    level: 'quorum',
    value: undefined,
    contextFrom: undefined,
    completeTick: index * 10 + 5,
    outcome: 'ok',
    code: undefined,
    values: undefined,
    replyContext: undefined,
    ...fields,
  };
}
