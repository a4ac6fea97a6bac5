/**
 * Proves typed buckets under faults on the deterministic simulator: 5 real node cores, n=3,
 * counters, add-wins sets and Yjs documents updated by clients while a seeded schedule
 * crashes, pauses and cuts off nodes over a network that loses, duplicates and reorders
 * messages (lib/sim/typed.ts).
 *
 * After healing, every primary of every key must hold the same clock and value, each counter
 * must equal its acknowledged increments plus at most those of unknown outcome, and each set
 * and document must hold every acknowledged add or edit not later removed, and nothing nobody
 * wrote. Directed cases pin the paths one by one (a retried increment, a type mismatch,
 * siblings from concurrent primaries collapsing); a canary shows the checks fail when data is
 * destroyed. Each seed prints its figures; `SEED=n` adds one.
 */

import { expect } from 'chai';
import * as Y from 'yjs';
import { Prng } from '../../lib/base/prng.js';
import type { ClientReply } from '../../lib/codec/messages.js';
import { SimCheckError, SimFailure } from '../../lib/sim/checkers.js';
import { SimCluster } from '../../lib/sim/cluster.js';
import { call, inspect, primariesOf, waitUntil } from '../../lib/sim/replication.js';
import { bootstrap, otherSeeds, runScenario, type Measurements } from '../../lib/sim/scenarios.js';
import { runTyped } from '../../lib/sim/typed.js';
import { replay, seeds } from './support.js';

const MEMBERSHIP_TICKS_MAX = 3000;

function cluster5(seed: number): SimCluster {
  const cluster = new SimCluster({ seed, nodes: 5, seeds: (index) => otherSeeds(index, 5) });
  bootstrap(cluster);
  waitUntil(cluster, 'the cluster to converge', () => cluster.converged(), MEMBERSHIP_TICKS_MAX);
  return cluster;
}

function typedBucket(cluster: SimCluster, bucket: string, type: string): void {
  const reply = cluster.admin('n1', 'bucket-set', { bucket, props: { type: type as 'counter' } });
  expect(reply?.t).to.equal('admin-ok');
  const knows = (): boolean =>
    cluster.nodes.every((node) => {
      const list = cluster.admin(node.id, 'bucket-list');
      return list?.t === 'admin-ok' && (list.result as { buckets: Record<string, { type?: string }> }).buckets[bucket]?.type === type;
    });
  waitUntil(cluster, `every node to know ${bucket} is a ${type} bucket`, knows, MEMBERSHIP_TICKS_MAX);
}

function ok(reply: ClientReply | undefined, t: ClientReply['t'], what: string): ClientReply {
  expect(reply?.t, `${what}: ${JSON.stringify(reply)}`).to.equal(t);
  return reply as ClientReply;
}

function value(reply: ClientReply | undefined): unknown {
  return (ok(reply, 'fetch-ok', 'fetch') as Extract<ClientReply, { t: 'fetch-ok' }>).value;
}

describe('sim: typed buckets under faults', function () {
  this.timeout(180_000);

  describe('directed cases', () => {
    it('a counter increment retried with the same operation id at the same primary counts once', () => {
      const cluster = cluster5(301);
      typedBucket(cluster, 'likes', 'counter');
      const [primary] = primariesOf(cluster, 'n1', 'likes', 'p1');
      const first = ok(call(cluster, primary as string, { t: 'upd', b: 'likes', k: 'p1', type: 'counter', op: { inc: 3 }, oid: 'op-1' }), 'upd-ok', 'first');
      expect(first).to.not.have.property('dup');
      const retry = ok(call(cluster, primary as string, { t: 'upd', b: 'likes', k: 'p1', type: 'counter', op: { inc: 3 }, oid: 'op-1', ret: true }), 'upd-ok', 'retry');
      expect(retry).to.deep.include({ dup: true, value: 3 });
      ok(call(cluster, primary as string, { t: 'upd', b: 'likes', k: 'p1', type: 'counter', op: { inc: 4 }, oid: 'op-2' }), 'upd-ok', 'another');
      cluster.run(50);
      expect(value(call(cluster, 'n5', { t: 'fetch', b: 'likes', k: 'p1', type: 'counter', r: 'all' }))).to.equal(7);
    });

    it('refuses an operation of the wrong type, a put or get on a typed bucket, and a malformed operation, naming the field', () => {
      const cluster = cluster5(302);
      typedBucket(cluster, 'tags', 'set');
      const refused = (reply: ClientReply | undefined): Record<string, unknown> => {
        expect(reply?.t, JSON.stringify(reply)).to.equal('err');
        const err = reply as Extract<ClientReply, { t: 'err' }>;
        expect(err.code).to.equal('INVALID_REQUEST');
        return err.details;
      };
      expect(refused(call(cluster, 'n1', { t: 'upd', b: 'tags', k: 'x', type: 'counter', op: { inc: 1 } }))).to.include({ field: 'type', bucketType: 'set' });
      expect(refused(call(cluster, 'n1', { t: 'upd', b: 'plain', k: 'x', type: 'counter', op: { inc: 1 } }))).to.include({ field: 'type', bucketType: 'kv' });
      expect(refused(call(cluster, 'n1', { t: 'put', b: 'tags', k: 'x', v: new Uint8Array([1]) }))).to.include({ field: 'type' });
      expect(refused(call(cluster, 'n1', { t: 'get', b: 'tags', k: 'x' }))).to.include({ field: 'type' });
      expect(refused(call(cluster, 'n1', { t: 'upd', b: 'tags', k: 'x', type: 'set', op: { add: [42] } })).field).to.match(/^op/);
      expect(refused(call(cluster, 'n1', { t: 'upd', b: 'tags', k: 'x', type: 'set', op: 'add' })).field).to.match(/^op/);
      // Nothing was stored by any of them.
      for (const node of primariesOf(cluster, 'n1', 'tags', 'x')) expect(inspect(cluster, node, 'tags', 'x').found).to.equal(false);
      // A bucket's type, once set, does not change.
      const change = cluster.admin('n1', 'bucket-set', { bucket: 'tags', props: { type: 'counter' } });
      expect(change?.t === 'err' && change.code).to.equal('INVALID_REQUEST');
    });

    it('concurrent adds at two primaries cut off from each other leave siblings that a read merges and the next update collapses', () => {
      const cluster = cluster5(303);
      typedBucket(cluster, 'tags', 'set');
      const [a, b] = primariesOf(cluster, 'n1', 'tags', 'post') as [string, string];
      const others = cluster.nodes.map((n) => n.id).filter((id) => id !== a && id !== b);
      cluster.partition([[a, ...others.slice(0, 1)], [b, ...others.slice(1)]]);
      ok(call(cluster, a, { t: 'upd', b: 'tags', k: 'post', type: 'set', op: { add: ['x'] }, w: 1 }), 'upd-ok', 'add x');
      ok(call(cluster, b, { t: 'upd', b: 'tags', k: 'post', type: 'set', op: { add: ['y'] }, w: 1 }), 'upd-ok', 'add y');
      cluster.heal();
      waitUntil(cluster, 'the cluster to converge after the partition', () => cluster.converged(), MEMBERSHIP_TICKS_MAX);
      expect(value(call(cluster, 'n1', { t: 'fetch', b: 'tags', k: 'post', type: 'set', r: 'all' }))).to.deep.equal(['x', 'y']);
      cluster.run(50);
      expect(inspect(cluster, a, 'tags', 'post').values.length, 'read repair leaves both siblings').to.equal(2);
      ok(call(cluster, a, { t: 'upd', b: 'tags', k: 'post', type: 'set', op: { remove: ['x'] }, w: 'all' }), 'upd-ok', 'remove x');
      cluster.run(50);
      for (const node of primariesOf(cluster, 'n1', 'tags', 'post')) expect(inspect(cluster, node, 'tags', 'post').values.length, node).to.equal(1);
      expect(value(call(cluster, 'n1', { t: 'fetch', b: 'tags', k: 'post', type: 'set', r: 'all' }))).to.deep.equal(['y']);
    });

    it('Yjs updates through different nodes merge into one document, and a reader with a state vector gets only what it lacks', () => {
      const cluster = cluster5(304);
      typedBucket(cluster, 'notes', 'doc');
      const alice = new Y.Doc();
      const bob = new Y.Doc();
      alice.getText('text').insert(0, 'hello ');
      bob.getText('text').insert(0, 'world');
      ok(call(cluster, 'n1', { t: 'upd', b: 'notes', k: 'n1', type: 'doc', op: { update: Y.encodeStateAsUpdate(alice) } }), 'upd-ok', 'alice');
      ok(call(cluster, 'n4', { t: 'upd', b: 'notes', k: 'n1', type: 'doc', op: { update: Y.encodeStateAsUpdate(bob) } }), 'upd-ok', 'bob');
      const missing = value(call(cluster, 'n2', { t: 'fetch', b: 'notes', k: 'n1', type: 'doc', sv: Y.encodeStateVector(alice), r: 'all' })) as Uint8Array;
      Y.applyUpdate(alice, missing);
      const full = value(call(cluster, 'n3', { t: 'fetch', b: 'notes', k: 'n1', type: 'doc', r: 'all' })) as Uint8Array;
      Y.applyUpdate(bob, full);
      expect(alice.getText('text').toString()).to.equal(bob.getText('text').toString());
      expect(alice.getText('text').toString()).to.have.length('hello world'.length);
      expect(missing.byteLength, 'the diff holds only what alice lacked').to.be.lessThan(full.byteLength);
    });
  });

  describe('randomized, seeded', () => {
    const runs: readonly (readonly [string, number])[] = [
      ['crdt-calm', 3],
      ['crdt', 8],
      ['crdt-wipe', 5],
    ];
    for (const [scenario, count] of runs) {
      it(`${scenario}: seeds 1..${count}, counters exact, no acknowledged add or edit lost, replicas equal`, () => {
        const failures: string[] = [];
        for (const seed of seeds(count)) {
          try {
            const { measurements } = runScenario(scenario, { seed });
            console.log(`      seed ${seed}: ${figures(measurements)}`);
          } catch (error) {
            if (!(error instanceof SimFailure)) throw error;
            console.log(`      seed ${seed}: FAILED; replay: ${replay(scenario, seed, 5)}\n${error.problems.slice(0, 3).map((p) => `          ${p}`).join('\n')}`);
            failures.push(`seed ${seed}: ${error.problems[0] ?? '?'}; replay: ${replay(scenario, seed, 5)}`);
          }
        }
        expect(failures, failures.join('\n')).to.deep.equal([]);
      });
    }
  });

  describe('canaries: the checks fail when they should', () => {
    it('a run whose counters and sets lose their data after healing fails with lost updates', () => {
      const cluster = new SimCluster({ seed: 310, nodes: 5, seeds: (index) => otherSeeds(index, 5) });
      const sabotage = (c: SimCluster): void => {
        // Every primary of the counter k0 and the set k0 loses its data.
        const victims = new Set([...primariesOf(c, 'n1', 'sim-counters', 'k0'), ...primariesOf(c, 'n1', 'sim-sets', 'k0')]);
        for (const id of victims) {
          c.crash(id);
          c.wipe(id);
          c.start(id);
        }
        waitUntil(c, 'the wiped nodes to rejoin', () => c.activeNodes().length === 5 && c.converged(), MEMBERSHIP_TICKS_MAX);
      };
      let problems: readonly string[] = [];
      try {
        runTyped(cluster, new Prng(310), { loadTicks: 1500, faults: { kinds: [], lossMin: 0, lossMax: 0, duplication: 0 }, sabotage });
      } catch (error) {
        if (!(error instanceof SimCheckError)) throw error;
        problems = error.problems;
      }
      expect(problems.join('\n')).to.match(/^lost: (counter|set)\/k\d+/m);
    });
  });
});

function figures(m: Measurements): string {
  const faults = Object.entries(m)
    .filter(([name]) => name.startsWith('fault:'))
    .map(([name, count]) => `${name.slice('fault:'.length)} ${String(count)}`)
    .join(', ');
  return (
    `${String(m.operations)} ops, ${String(m.acknowledged)} acknowledged (${String(m.incrementsAcknowledged)} increments, ${String(m.addsAcknowledged)} adds, ${String(m.editsAcknowledged)} edits), ` +
    `${String(m.unknown)} unknown, ${String(m.failed)} failed; counters above acknowledged by ${String(m.counterSlack)}; ${String(m.faults)} faults${faults === '' ? '' : ` (${faults})`}`
  );
}
