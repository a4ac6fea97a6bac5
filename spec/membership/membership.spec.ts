/**
 * Proves the membership state machine's protocol steps with a few instances wired by an
 * in-test network that delivers every message on the next tick unless a test drops it:
 * joining through a seed (and alone when the only seed is itself), refuting a forged
 * death, ignoring stale news, the probe → indirect probe → suspect → dead timeline with
 * nacks from relays, graceful leave, stalls that drop the probe in flight, and metadata
 * merging through push-pull. Whole-cluster behaviour under faults is in spec/sim.
 */

import { expect } from 'chai';
import { Prng } from '../../lib/base/prng.js';
import type { PeerMessage } from '../../lib/codec/messages.js';
import { Membership, type MembershipOutput } from '../../lib/membership/membership.js';
import { ClusterMetadata } from '../../lib/membership/metadata.js';
import { PROFILES, profileTicks, suspicionMinTicks } from '../../lib/membership/profile.js';

const profile = profileTicks(PROFILES.lan, 10);

interface Envelope {
  readonly from: string;
  readonly to: string;
  readonly message: PeerMessage;
}

class Net {
  readonly nodes = new Map<string, Membership>();
  readonly metadata = new Map<string, ClusterMetadata>();
  readonly events: { node: string; event: MembershipOutput }[] = [];
  readonly sent: Envelope[] = [];
  now = 0;
  drop: (e: Envelope) => boolean = () => false;
  private inflight: Envelope[] = [];

  add(id: string, seeds: string[] = [], incarnation = 1): Membership {
    const prng = new Prng(id.charCodeAt(id.length - 1));
    const metadata = new ClusterMetadata(prng.fork('meta'));
    const member = new Membership({ prng, metadata }, { self: { id, addr: `${id}:1`, zone: 'z', vnodes: 8 }, incarnation, seeds, profile });
    this.nodes.set(id, member);
    this.metadata.set(id, metadata);
    return member;
  }

  collect(node: string, out: MembershipOutput[]): void {
    for (const event of out) {
      if (event.kind !== 'send') {
        this.events.push({ node, event });
        continue;
      }
      const to = event.to.node ?? event.to.addr.split(':')[0];
      if (to === undefined) continue;
      const envelope = { from: node, to, message: event.message };
      this.sent.push(envelope);
      if (!this.drop(envelope)) this.inflight.push(envelope);
    }
  }

  /** One tick everywhere, then delivery of everything sent so far. */
  tick(): void {
    this.now++;
    for (const [id, member] of this.nodes) {
      const out: MembershipOutput[] = [];
      member.tick(this.now, out);
      this.collect(id, out);
    }
    const batch = this.inflight;
    this.inflight = [];
    for (const envelope of batch) {
      const member = this.nodes.get(envelope.to);
      if (!member) continue;
      const out: MembershipOutput[] = [];
      member.onMessage(envelope.from, envelope.message, this.now, out);
      this.collect(envelope.to, out);
    }
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  until(what: string, condition: () => boolean, ticksMax: number): number {
    const start = this.now;
    while (!condition()) {
      if (this.now - start > ticksMax) throw new Error(`not within ${ticksMax} ticks: ${what}`);
      this.tick();
    }
    return this.now - start;
  }

  liveOf(viewer: string, member: string): string | undefined {
    return this.nodes.get(viewer)?.view().find((m) => m.id === member)?.live;
  }

  stateOf(viewer: string, member: string) {
    return this.nodes.get(viewer)?.view().find((m) => m.id === member);
  }
}

function cluster(ids: string[]): Net {
  const net = new Net();
  const [first, ...rest] = ids as [string, ...string[]];
  net.add(first);
  for (const id of rest) net.add(id, [`${first}:1`]);
  net.until('everyone knows everyone', () => ids.every((a) => ids.every((b) => net.liveOf(a, b) === 'alive')), 2000);
  return net;
}

describe('membership state machine', () => {
  it('starts alone when its only seed is itself, joining until the node marks it up', () => {
    const net = new Net();
    const a = net.add('a', ['a:1']);
    expect(a.hasJoined).to.equal(true);
    expect(a.status).to.equal('joining');
    const out: MembershipOutput[] = [];
    a.markUp(out);
    expect(a.status).to.equal('up');
    expect(a.incarnation).to.equal(2);
  });

  it('starts with the status a restart kept', () => {
    const member = new Membership(
      { prng: new Prng(7), metadata: new ClusterMetadata(new Prng(8)) },
      { self: { id: 'r', addr: 'r:1', zone: 'z', vnodes: 8 }, incarnation: 5, seeds: ['a:1'], profile, status: 'up' },
    );
    expect(member.status).to.equal('up');
  });

  it('a joining node the cluster knows as up (it lost its data and status) comes back up', () => {
    const net = cluster(['a', 'b']);
    const b = net.nodes.get('b') as Membership;
    const out: MembershipOutput[] = [];
    b.markUp(out);
    net.collect('b', out);
    net.until('a sees b up', () => net.stateOf('a', 'b')?.status === 'up', 500);
    // b restarts with nothing kept: a new incarnation, joining.
    const again = net.add('b', ['a:1'], 1);
    expect(again.status).to.equal('joining');
    net.until('b rejoined as up', () => again.status === 'up', 500);
    // Above the incarnation the cluster knew it by, so its news wins.
    expect(again.incarnation).to.be.above(2);
  });

  it('joins through a seed: pulls the table, becomes up under a new incarnation, and is known by the seed', () => {
    const net = new Net();
    net.add('a');
    const b = net.add('b', ['a:1']);
    expect(b.hasJoined).to.equal(false);
    expect(b.status).to.equal('joining');
    net.until('b joined', () => b.hasJoined, 100);
    // Membership only joins; the node marks itself up once it holds its ranges.
    expect(b.status).to.equal('joining');
    const out: MembershipOutput[] = [];
    b.markUp(out);
    net.collect('b', out);
    expect(b.status).to.equal('up');
    expect(b.incarnation).to.equal(2);
    net.until('a sees b up', () => net.stateOf('a', 'b')?.status === 'up', 200);
  });

  it('keeps retrying seeds that do not answer, with backoff', () => {
    const net = new Net();
    const b = net.add('b', ['nobody:1']);
    net.run(profile.joinRetryTicksMax * 3);
    const attempts = net.sent.filter((e) => e.message.t === 'sync').length;
    expect(b.hasJoined).to.equal(false);
    expect(attempts).to.be.within(3, 12);
    net.add('nobody');
    net.until('b joined once the seed is up', () => b.hasJoined, profile.joinRetryTicksMax * 2);
  });

  it('refutes a forged death with a higher incarnation, and the refutation wins everywhere', () => {
    const net = cluster(['a', 'b', 'c']);
    const b = net.nodes.get('b') as Membership;
    const before = b.incarnation;
    const out: MembershipOutput[] = [];
    const forged = { ...(net.stateOf('a', 'b') as NonNullable<ReturnType<Net['stateOf']>>), live: 'dead' as const };
    const { heardTicksAgo: _, ...forgedState } = forged;
    b.onMessage('c', { t: 'gossip', from: 'c', upd: [forgedState] }, net.now, out);
    net.collect('b', out);
    expect(b.incarnation).to.be.greaterThan(before);
    net.until('a and c see b alive at its new incarnation', () => ['a', 'c'].every((v) => net.stateOf(v, 'b')?.inc === b.incarnation && net.liveOf(v, 'b') === 'alive'), 500);
  });

  it('ignores news older than what it knows', () => {
    const net = cluster(['a', 'b']);
    const a = net.nodes.get('a') as Membership;
    const current = net.stateOf('a', 'b') as NonNullable<ReturnType<Net['stateOf']>>;
    const out: MembershipOutput[] = [];
    a.onMessage('b', { t: 'gossip', from: 'b', upd: [{ id: 'b', addr: 'b:1', zone: 'z', vnodes: 8, status: 'up', live: 'dead', inc: current.inc - 1 }] }, net.now, out);
    expect(net.liveOf('a', 'b')).to.equal('alive');
  });

  it('probes, asks others to probe indirectly, suspects, then declares dead; relays nack', () => {
    const net = cluster(['a', 'b', 'c', 'd']);
    net.drop = (e) => e.to === 'd' || e.from === 'd';
    const suspectedAfter = net.until('someone suspects d', () => ['a', 'b', 'c'].some((v) => net.liveOf(v, 'd') !== 'alive'), profile.probeIntervalTicks * 8);
    expect(net.sent.some((e) => e.message.t === 'ping-req' && e.message.target === 'd')).to.equal(true);
    expect(net.sent.some((e) => e.message.t === 'nack')).to.equal(true);
    const deadAfter = net.until('everyone declares d dead', () => ['a', 'b', 'c'].every((v) => net.liveOf(v, 'd') === 'dead'), suspicionMinTicks(profile, 4) * profile.suspicionMaxTimeoutMult + profile.probeIntervalTicks * 6);
    expect(suspectedAfter).to.be.at.most(profile.probeIntervalTicks * 4);
    expect(deadAfter).to.be.at.least(suspicionMinTicks(profile, 4) - profile.probeIntervalTicks);
  });

  it('a member that comes back after being declared dead refutes and is alive again', () => {
    const net = cluster(['a', 'b', 'c']);
    net.drop = (e) => e.to === 'c' || e.from === 'c';
    net.until('c dead at a and b', () => net.liveOf('a', 'c') === 'dead' && net.liveOf('b', 'c') === 'dead', 3000);
    net.drop = () => false;
    net.until('c alive again everywhere', () => net.liveOf('a', 'c') === 'alive' && net.liveOf('b', 'c') === 'alive', 3000);
  });

  it('leaves gracefully: leaving, then left everywhere, and stops probing', () => {
    const net = cluster(['a', 'b', 'c']);
    const c = net.nodes.get('c') as Membership;
    const out: MembershipOutput[] = [];
    c.leave(out);
    net.collect('c', out);
    expect(c.status).to.equal('leaving');
    net.run(200);
    expect(c.status, 'a leaving node stays until its data has moved').to.equal('leaving');
    c.depart();
    net.until('c left everywhere', () => c.status === 'left' && ['a', 'b'].every((v) => net.stateOf(v, 'c')?.status === 'left'), 1000);
    const sentBefore = net.sent.filter((e) => e.from === 'c' && e.message.t === 'ping').length;
    net.run(profile.probeIntervalTicks * 3);
    expect(net.sent.filter((e) => e.from === 'c' && e.message.t === 'ping').length).to.equal(sentBefore);
    expect(['a', 'b'].every((v) => net.liveOf(v, 'c') !== 'dead')).to.equal(true);
  });

  it('after a stall, drops the probe in flight instead of suspecting on a stale view', () => {
    const net = cluster(['a', 'b']);
    const a = net.nodes.get('a') as Membership;
    net.drop = (e) => e.from === 'b';
    net.run(profile.probeTimeoutTicks);
    const out: MembershipOutput[] = [];
    a.onStall(500, net.now, out);
    expect(a.localHealth).to.be.at.least(profile.awarenessMax / 2);
    net.drop = () => false;
    net.run(profile.probeIntervalTicks * 4);
    expect(net.liveOf('a', 'b')).to.equal('alive');
  });

  it('keeps buckets named like Object properties apart from Object.prototype', () => {
    const metadata = new ClusterMetadata(new Prng(7));
    metadata.setBucket('__proto__', { n: 2 });
    metadata.setBucket('constructor', { r: 'one' });
    expect(({} as { n?: number }).n, 'Object.prototype untouched').to.equal(undefined);
    expect(metadata.bucket('__proto__')).to.deep.equal({ n: 2 });
    expect(metadata.bucket('constructor')).to.deep.equal({ r: 'one' });
    expect(metadata.bucket('toString'), 'a bucket never set').to.equal(undefined);
    expect(Object.keys(metadata.listBuckets()).sort()).to.deep.equal(['__proto__', 'constructor']);
  });

  it('merges bucket properties set at different nodes through push-pull', () => {
    const net = cluster(['a', 'b', 'c']);
    (net.metadata.get('a') as ClusterMetadata).setBucket('users', { n: 3, w: 2 });
    (net.metadata.get('c') as ClusterMetadata).setBucket('users', { r: 'one' });
    for (const id of ['a', 'c']) {
      const out: MembershipOutput[] = [];
      (net.nodes.get(id) as Membership).metadataChanged(out);
      net.collect(id, out);
    }
    const sorted = (props: object | undefined): string => JSON.stringify(Object.entries(props ?? {}).sort());
    const want = sorted({ n: 3, w: 2, r: 'one' });
    const ticks = net.until('all agree', () => ['a', 'b', 'c'].every((v) => sorted((net.metadata.get(v) as ClusterMetadata).bucket('users')) === want), profile.pushPullIntervalTicks * 2);
    // The change is pushed at once, not left to the next periodic push-pull.
    expect(ticks).to.be.below(profile.gossipIntervalTicks * 2);
  });
});
