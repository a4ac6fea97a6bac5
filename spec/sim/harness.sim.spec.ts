/**
 * Proves the simulator itself, so that the membership figures measured on it mean something:
 * a run replays exactly from its seed; the network delays, loses, duplicates and reorders
 * messages and cuts links as configured (partitions both ways and one way, unknown and own
 * addresses reported back as unreachable or self, connections reset on a kill and not on a
 * silent crash); the disk makes writes durable only after a delay and a crash loses the rest;
 * a restart comes back from what was durable, one incarnation up; a paused node gets nothing
 * until it resumes; and the checkers catch a broken cluster and say how to replay it.
 */

import { expect } from 'chai';
import { Prng } from '../../lib/base/prng.js';
import type { PeerMessage } from '../../lib/codec/messages.js';
import { decodeUint, encodeUint, INCARNATION_RESERVE, META_INCARNATION } from '../../lib/node/core.js';
import { checkCluster, failure } from '../../lib/sim/checkers.js';
import { SimCluster } from '../../lib/sim/cluster.js';
import { SimDisk } from '../../lib/sim/disk.js';
import { SimNetwork, type NetworkEvent } from '../../lib/sim/network.js';
import { runScenario, waitFor } from '../../lib/sim/scenarios.js';
import { Trace } from '../../lib/sim/trace.js';
import { replay } from './support.js';

const gossip = (from: string): PeerMessage => ({ t: 'gossip', from, upd: [] });

/** A network of named nodes a…e, stepped by hand. */
function network(seed: number, options: ConstructorParameters<typeof SimNetwork>[1] = {}): SimNetwork {
  console.log(`      network seed ${seed}`);
  const net = new SimNetwork({ prng: new Prng(seed), trace: new Trace(50) }, options);
  for (const id of ['a', 'b', 'c', 'd', 'e']) net.bind(`${id}:1`, id);
  return net;
}

/** Everything the network hands out from tick `from` to tick `to`, with its tick. */
function drain(net: SimNetwork, from: number, to: number): (NetworkEvent & { tick: number })[] {
  const out: (NetworkEvent & { tick: number })[] = [];
  for (let tick = from; tick <= to; tick++) for (const event of net.due(tick)) out.push({ ...event, tick });
  return out;
}

describe('sim: the simulator', function () {
  this.timeout(60_000);

  it('replays a run exactly from its seed, and another seed gives another run', () => {
    console.log(`      ${replay('crash', 7, 8)}`);
    const first = runScenario('crash', { seed: 7, nodes: 8 });
    const again = runScenario('crash', { seed: 7, nodes: 8 });
    const other = runScenario('crash', { seed: 8, nodes: 8 });
    expect(again.measurements).to.deep.equal(first.measurements);
    expect(again.cluster.trace.lines(300)).to.deep.equal(first.cluster.trace.lines(300));
    expect(again.cluster.now).to.equal(first.cluster.now);
    expect(other.cluster.trace.lines(300)).to.not.deep.equal(first.cluster.trace.lines(300));
  });

  describe('network', () => {
    it('delivers within [min, max] ticks, in an order the delays shuffle, with the sender as `from`', () => {
      const net = network(1, { delayTicksMin: 2, delayTicksMax: 6 });
      for (let i = 0; i < 200; i++) net.send('a', { node: 'b', addr: 'b:1' }, { t: 'nack', seq: i, from: 'a' }, 0);
      const events = drain(net, 0, 10);
      expect(events).to.have.length(200);
      expect(events.every((e) => e.tick >= 2 && e.tick <= 6 && e.kind === 'message' && e.from === 'a' && e.to === 'b')).to.equal(true);
      const seqs = events.map((e) => (e.kind === 'message' && e.message.t === 'nack' ? e.message.seq : -1));
      expect(seqs).to.not.deep.equal([...seqs].sort((x, y) => x - y));
      expect(net.trafficOf('a').messagesSent).to.equal(200);
      expect(net.trafficOf('a').bytesSent).to.be.greaterThan(200 * 5);
      expect(net.trafficOf('b').messagesReceived).to.equal(200);
    });

    it('loses and duplicates messages with the configured probabilities', () => {
      const lossy = network(2, { loss: 0.3 });
      for (let i = 0; i < 2000; i++) lossy.send('a', { node: 'b', addr: 'b:1' }, gossip('a'), 0);
      const delivered = drain(lossy, 0, 5).length;
      expect(delivered).to.be.within(1250, 1550);
      expect(lossy.drops('loss')).to.equal(2000 - delivered);
      const doubling = network(3, { duplication: 0.2 });
      for (let i = 0; i < 2000; i++) doubling.send('a', { node: 'b', addr: 'b:1' }, gossip('a'), 0);
      expect(drain(doubling, 0, 5).length).to.be.within(2300, 2500);
    });

    it('cuts links between partition groups both ways, one way when blocked, and heals', () => {
      const net = network(4);
      net.partition([['a', 'b'], ['c']]);
      net.block('d', 'e');
      const pairs = [['a', 'b'], ['a', 'c'], ['c', 'a'], ['a', 'd'], ['d', 'e'], ['e', 'd'], ['c', 'd']] as const;
      for (const [x, y] of pairs) net.send(x, { node: y, addr: `${y}:1` }, gossip(x), 0);
      const got = drain(net, 0, 5).map((e) => (e.kind === 'message' ? `${e.from}${e.to}` : '?'));
      // Nodes in no group (d, e) form a group of their own.
      expect(got.sort()).to.deep.equal(['ab', 'ed']);
      expect(net.drops('partition')).to.equal(5);
      net.heal();
      for (const [x, y] of pairs) net.send(x, { node: y, addr: `${y}:1` }, gossip(x), 10);
      expect(drain(net, 10, 15)).to.have.length(pairs.length);
    });

    it('reports unknown addresses and wrong nodes as unreachable, and its own address as self', () => {
      const net = network(5, { unreachableTicksMin: 3, unreachableTicksMax: 3 });
      net.bind('alias-of-a:1', 'a');
      net.send('a', { addr: 'nobody:1' }, gossip('a'), 0);
      net.send('a', { node: 'c', addr: 'b:1' }, gossip('a'), 0);
      net.send('a', { addr: 'alias-of-a:1' }, gossip('a'), 0);
      const events = drain(net, 0, 5);
      expect(events.map((e) => (e.kind === 'unreachable' ? `${e.tick} ${e.to} ${e.target.addr} ${e.reason}` : 'message'))).to.have.members([
        '3 a nobody:1 unreachable',
        '3 a b:1 unreachable',
        '3 a alias-of-a:1 self',
      ]);
    });

    it('refuses, as a receiving peer would, a message outside the wire schema', () => {
      const net = network(6);
      net.send('a', { node: 'b', addr: 'b:1' }, { t: 'gossip', from: 'a', upd: [{ id: 'x', addr: '', zone: 'z', vnodes: 1, status: 'up', live: 'alive', inc: 1 }] }, 0);
      expect(drain(net, 0, 5)).to.have.length(0);
      expect(net.violations.join('\n')).to.match(/a -> b: the receiver would refuse the message: invalid gossip message at upd\.0\.addr/);
    });
  });

  describe('disk', () => {
    it('makes writes durable in order after a delay, and a crash loses what was not', () => {
      console.log('      disk seed 9');
      const disk = new SimDisk({ prng: new Prng(9) }, { durableTicksMin: 2, durableTicksMax: 5 });
      disk.writeMeta('m', encodeUint(1), 0);
      disk.write(1, [], 0);
      disk.write(2, [{ op: 'delete', bucket: '', key: 'k' }], 0);
      expect(disk.getMeta('m')).to.equal(undefined);
      const done: number[] = [];
      for (let tick = 0; tick <= 10; tick++) done.push(...disk.complete(tick).map((c) => c.writeId));
      expect(done).to.deep.equal([1, 2]);
      expect(decodeUint(disk.getMeta('m'))).to.equal(1);
      disk.writeMeta('m', encodeUint(2), 11);
      disk.write(3, [], 11);
      expect(disk.crash()).to.equal(2);
      expect(disk.complete(100)).to.deep.equal([]);
      expect(decodeUint(disk.getMeta('m'))).to.equal(1);
    });

    it('refuses a batch the store would refuse, and reports it as failed', () => {
      const disk = new SimDisk({ prng: new Prng(10) });
      disk.write(7, [{ op: 'delete', bucket: 'bad\0bucket', key: 'k' }], 0);
      const [completion] = disk.complete(10);
      expect(completion?.writeId).to.equal(7);
      expect(completion?.error).to.be.a('string');
    });
  });

  describe('cluster', () => {
    it('restarts a node one above its durable incarnation ceiling, with a new ceiling persisted before it starts', () => {
      const cluster = new SimCluster({ seed: 11, nodes: 3 });
      waitFor(cluster, 'convergence', () => cluster.converged());
      const node = cluster.node('n2');
      const durable = decodeUint(node.disk.getMeta(META_INCARNATION));
      expect(durable).to.equal(1 + INCARNATION_RESERVE);
      expect(node.core?.membership.incarnation ?? 0).to.be.below(durable);
      cluster.crash('n2');
      cluster.start('n2');
      expect(node.core?.membership.incarnation).to.equal(durable + 1);
      expect(decodeUint(node.disk.getMeta(META_INCARNATION))).to.equal(durable + 1 + INCARNATION_RESERVE);
      expect(node.startIncarnations).to.deep.equal([1, durable + 1]);
    });

    it('resets connections on a kill, so peers hear at once, but not on a silent crash', () => {
      const reports = (silent: boolean): string[] => {
        const cluster = new SimCluster({ seed: 12, nodes: 4 });
        waitFor(cluster, 'convergence', () => cluster.converged());
        cluster.run(100);
        const crashTick = cluster.now;
        cluster.crash('n3', { silent });
        // Too soon for any probe to have reached the dead node.
        cluster.run(6);
        return cluster.trace
          .tail(0, 300)
          .filter((e) => e.kind === 'unreachable' && e.peer === 'n3' && e.tick > crashTick)
          .map((e) => e.node)
          .filter((node, i, all) => all.indexOf(node) === i)
          .sort();
      };
      expect(reports(false)).to.deep.equal(['n1', 'n2', 'n4']);
      expect(reports(true)).to.deep.equal([]);
    });

    it('gives a paused node no ticks and no messages, then `stalled` and what was held', () => {
      const cluster = new SimCluster({ seed: 13, nodes: 3 });
      waitFor(cluster, 'convergence', () => cluster.converged());
      const node = cluster.node('n2');
      const ticks = node.core?.ticks ?? 0;
      cluster.pause('n2');
      cluster.run(300);
      expect(node.core?.ticks).to.equal(ticks);
      expect(node.held.length).to.be.greaterThan(0);
      const stalls: number[] = [];
      cluster.onLog((at, _tick, log) => {
        if (at.id === 'n2' && log.msg.startsWith('event loop stalled')) stalls.push(log.fields.ticks as number);
      });
      cluster.resume('n2');
      expect(stalls).to.deep.equal([300]);
      expect(node.held).to.have.length(0);
      waitFor(cluster, 'convergence after the pause', () => cluster.converged());
    });
  });

  describe('checkers', () => {
    it('catch a cluster that did not heal, and name the seed, the scenario and the replay command', () => {
      const cluster = new SimCluster({ seed: 14, nodes: 4 });
      waitFor(cluster, 'convergence', () => cluster.converged());
      cluster.partition([['n1', 'n2'], ['n3', 'n4']]);
      cluster.run(2000);
      const problems = checkCluster(cluster);
      expect(problems.join('\n')).to.match(/views disagree between n1 and n3/);
      expect(problems.join('\n')).to.match(/holds n3:up\/dead@\d+, but n3 is running and reachable/);
      const report = failure(cluster, { scenario: 'partition', seed: 14, nodes: 4, defaultNodes: 6 }, problems).message;
      expect(report).to.include('seed 14');
      expect(report).to.include('npm run sim -- --seed 14 --scenario partition --nodes 4');
      expect(report).to.match(/last trace lines \(\d+\):\n {2}t=\d+/);
      expect(report).to.include('[fault] partition {n1,n2} | {n3,n4}');
    });

    it('catch a crashed node still held alive, and a left node not held left', () => {
      const cluster = new SimCluster({ seed: 15, nodes: 4 });
      waitFor(cluster, 'convergence', () => cluster.converged());
      cluster.crash('n4', { silent: true });
      cluster.run(5);
      expect(checkCluster(cluster).join('\n')).to.match(/holds n4:up\/alive@\d+, but n4 is down/);
      // n3 leaves while cut off (removed by force, since a graceful leave would wait to hand
      // its data over), so nobody hears of it, then stops.
      cluster.partition([['n3']]);
      cluster.admin('n3', 'remove', { node: 'n3', force: true });
      waitFor(cluster, 'n3 to finish leaving', () => cluster.node('n3').leftAtIncarnation !== undefined);
      cluster.crash('n3', { silent: true });
      expect(checkCluster(cluster).join('\n')).to.match(/holds n3:up\/\w+@\d+, but n3 has left the cluster/);
    });

    it('catch an incarnation that went backwards across a restart', () => {
      const cluster = new SimCluster({ seed: 16, nodes: 3 });
      waitFor(cluster, 'convergence', () => cluster.converged());
      cluster.crash('n2');
      // A lost incarnation write: the disk forgets what the node had persisted.
      cluster.node('n2').disk.setMetaNow(META_INCARNATION, encodeUint(0));
      cluster.start('n2');
      expect(checkCluster(cluster).join('\n')).to.match(/n2 restarted with incarnation 1, not above the \d+ it had before/);
    });
  });
});
