/**
 * The anti-entropy exchange between two replicas, driven by hand: messages are handed from
 * one side to the other and storage writes complete at once (a MemoryStore under each
 * node's LocalReplica).
 *
 * - Two replicas holding different versions, keys the other lacks and a tombstone converge in
 *   one exchange, to equal segment hashes, and the records shipped are those that differ.
 * - Replicas that agree settle after comparing one root hash.
 * - The responder answers bad requests with a typed `rerr` and changes nothing: an unknown
 *   exchange, another ring, a level or parent outside its tree, a malformed record.
 */

import { expect } from 'chai';
import { AntiEntropy, type AntiEntropySettings } from '../../lib/antientropy/exchange.js';
import { sync } from '../../lib/clock/dvv.js';
import type { KvObject } from '../../lib/clock/object.js';
import { encode } from '../../lib/codec/cbor.js';
import type { PeerMessage, Rerr } from '../../lib/codec/messages.js';
import { SegmentHashes } from '../../lib/merkle/index.js';
import type { NodeOutput } from '../../lib/node/io.js';
import { LocalReplica } from '../../lib/node/local-replica.js';
import { buildRing } from '../../lib/ring/ring.js';
import { MemoryStore } from '../../lib/storage/memory-store.js';

const SETTINGS: AntiEntropySettings = { enabled: true, intervalMs: 100, keysPerSecond: 1_000_000, bytesPerSecond: 1_000_000_000, batchKeys: 16, timeoutMs: 1000 };
const RING = buildRing([
  { id: 'a', zone: 'a', vnodes: 16 },
  { id: 'b', zone: 'b', vnodes: 16 },
]);

function version(actor: string, counter: number, value: string | null): KvObject {
  return { entries: [{ actor, counter, values: [value === null ? null : encode(value)] }] } as unknown as KvObject;
}

class Replica {
  readonly store = new MemoryStore();
  readonly local: LocalReplica;
  readonly ae: AntiEntropy<NodeOutput>;
  readonly outbox: PeerMessage[] = [];
  now = 0;

  constructor(
    readonly id: string,
    settings = SETTINGS,
  ) {
    this.local = new LocalReplica(this.store, new SegmentHashes(8));
    this.ae = new AntiEntropy<NodeOutput>(
      {
        nodeId: id,
        tickMs: 10,
        local: this.local,
        scan: (from, to) => this.store.scan(from, to),
        rid: (() => {
          let next = 1;
          return () => next++;
        })(),
        salt: (() => {
          let next = 0x5eed;
          return () => (next = (next * 48271) % 0x7fffffff);
        })(),
        ring: () => RING,
        replicas: () => 3,
        alive: () => true,
        send: (_node, message) => void this.outbox.push(message),
        log: () => undefined,
      },
      settings,
    );
  }

  /** Writes through the local replica, as a coordinator would, and makes it durable at once. */
  put(key: string, object: KvObject): void {
    const out: NodeOutput[] = [];
    this.local.write([{ bucket: 'b', key, object }], out, () => undefined);
    this.run(out);
  }

  /** Carries out storage writes at once. */
  run(out: NodeOutput[]): void {
    for (const o of out) {
      if (o.kind !== 'store-write') continue;
      void this.store.apply(o.writes);
      const done: NodeOutput[] = [];
      this.local.onStoreDone(o.writeId, undefined, done);
      this.run(done);
    }
  }

  deliver(from: string, message: PeerMessage): void {
    const out: NodeOutput[] = [];
    if (message.t === 'rerr') this.ae.onError(from, message.rid, message.msg);
    else this.ae.onMessage(from, message, out);
    this.run(out);
  }

  tick(): void {
    const out: NodeOutput[] = [];
    this.ae.onTick(++this.now, out);
    this.run(out);
  }
}

/** Ticks both and carries messages between them until neither has anything to say. */
function settle(x: Replica, y: Replica, ticks = 200): { messages: number; types: Record<string, number> } {
  const types: Record<string, number> = {};
  let messages = 0;
  for (let t = 0; t < ticks; t++) {
    x.tick();
    y.tick();
    for (let moved = true; moved; ) {
      moved = false;
      for (const [from, to] of [
        [x, y],
        [y, x],
      ] as const) {
        const batch = from.outbox.splice(0);
        for (const m of batch) {
          moved = true;
          messages++;
          types[m.t] = (types[m.t] ?? 0) + 1;
          to.deliver(from.id, m);
        }
      }
    }
  }
  return { messages, types };
}

describe('anti-entropy exchange', () => {
  it('two replicas with different data converge in one exchange, shipping only what differs', () => {
    const a = new Replica('a');
    const b = new Replica('b');
    for (let i = 0; i < 200; i++) {
      a.put(`k${i}`, version('x/1', i + 1, `v${i}`));
      b.put(`k${i}`, version('x/1', i + 1, `v${i}`));
    }
    a.put('only-a', version('a/1', 1, 'a'));
    b.put('only-b', version('b/1', 1, 'b'));
    a.put('k5', sync(version('x/1', 6, 'v5'), version('a/1', 2, 'newer at a')));
    b.put('k7', version('x/1', 9, null)); // a delete of k7 that b holds and a missed
    const traffic = settle(a, b);
    expect(a.local.segments.equals(b.local.segments), JSON.stringify(traffic)).to.equal(true);
    expect(a.store.count()).to.equal(201 + 1);
    expect(b.store.get('b', 'only-a')).to.not.equal(undefined);
    expect(a.store.get('b', 'only-b')).to.not.equal(undefined);
    const k7 = a.store.get('b', 'k7')!;
    expect(k7.entries.flatMap((e) => e.values)).to.deep.equal([null]);
    const shipped = a.ae.stats.recordsSent + b.ae.stats.recordsSent;
    // only-a, only-b, k5 (a's newer version) and k7 (b's tombstone): four records differ; an
    // exchange that finds a key changed on both sides ships it each way.
    expect(shipped).to.be.within(4, 6);
    expect(a.ae.stats.exchangesCompleted + b.ae.stats.exchangesCompleted).to.be.at.least(1);
  });

  it('a divergence spread over most leaves converges in one exchange, records shipped = records differing', () => {
    const a = new Replica('a');
    const b = new Replica('b');
    // 9,000 keys over 256 leaves; b lacks every third and holds a concurrent version of every
    // 50th: the descent reaches every leaf, and b's key lists outgrow one answer.
    let lacking = 0;
    let concurrent = 0;
    for (let i = 0; i < 9000; i++) {
      a.put(`k${i}`, version('x/1', i + 1, `v${i}`));
      if (i % 50 === 0) {
        b.put(`k${i}`, version('y/1', 1, `other${i}`));
        concurrent++;
      } else if (i % 3 === 0) {
        lacking++;
      } else {
        b.put(`k${i}`, version('x/1', i + 1, `v${i}`));
      }
    }
    const traffic = settle(a, b, 400);
    expect(a.local.segments.equals(b.local.segments), JSON.stringify(traffic)).to.equal(true);
    expect(b.store.count()).to.equal(9000);
    // Each lacking key goes one way; each concurrent one both ways (each side lacks the other's sibling).
    const shipped = a.ae.stats.recordsSent + b.ae.stats.recordsSent;
    expect(shipped).to.equal(lacking + 2 * concurrent);
    const k50 = b.store.get('b', 'k50')!;
    expect(k50.entries.flatMap((e) => e.values).length, 'the concurrent versions are siblings').to.equal(2);
    expect(traffic.types['ae-keys'] ?? 0, 'leaves whose lists did not fit the answer are asked for').to.be.at.least(1);
    const repairing = (r: Replica): number => r.ae.stats.exchangesCompleted - r.ae.stats.exchangesInSync;
    expect(repairing(a) + repairing(b), 'exchanges that found differences').to.equal(1);
  });

  it('replicas that agree settle after one root hash each way', () => {
    const a = new Replica('a');
    const b = new Replica('b');
    for (let i = 0; i < 50; i++) {
      a.put(`k${i}`, version('x/1', i + 1, 'v'));
      b.put(`k${i}`, version('x/1', i + 1, 'v'));
    }
    const { types } = settle(a, b, 30);
    expect(types['ae-keys'] ?? 0).to.equal(0);
    expect(types['ae-sync'] ?? 0).to.equal(0);
    expect(a.ae.stats.exchangesInSync + b.ae.stats.exchangesInSync).to.be.at.least(1);
    expect(a.ae.confirms(['a', 'b'], 0)).to.equal(true);
  });

  it('backs off while client latency is up, and sheds scheduled exchanges but not transfers', () => {
    const b = new Replica('b');
    for (let i = 0; i < 32; i++) b.ae.onLoad(5); // the usual level, learnt while nothing is shipped
    expect(b.ae.stats.rate).to.equal(1);
    for (let i = 0; i < 4; i++) b.ae.onLoad(40);
    expect(b.ae.stats.rate).to.equal(1 / 16);
    const ring = RING.checksum.slice(0, 16);
    b.deliver('a', { t: 'ae-tree', from: 'a', rid: 1, xid: 1, level: 0, of: [], h: new Uint8Array(4), depth: 8, lc: 256, s: 1, ring, n: 3 });
    expect(b.outbox.pop()).to.deep.include({ t: 'rerr', code: 'OVERLOADED' });
    b.deliver('a', { t: 'ae-tree', from: 'a', rid: 2, xid: 2, level: 0, of: [], h: new Uint8Array(4), depth: 8, lc: 256, s: 1, spans: [[0, 0]] });
    expect(b.outbox.pop()?.t, 'a transfer is still served').to.equal('ae-tree-ok');
    for (let i = 0; i < 32; i++) b.ae.onLoad(5); // a thirty-second of the rate a second
    expect(b.ae.stats.rate).to.equal(1);
  });

  it('pays for the records a peer pushes from its own budget: a sync waits while that is spent', () => {
    const b = new Replica('b', { ...SETTINGS, enabled: false, keysPerSecond: 100 });
    b.tick(); // a start's rate, 1/8: an eighth of a key a tick
    const push = (from: number, count: number): PeerMessage => ({
      t: 'ae-sync',
      from: 'a',
      rid: from,
      xid: 1,
      push: Array.from({ length: count }, (_, i) => ({ b: 'b', k: `p${from + i}`, obj: version('a/1', from + i + 1, 'v') })),
      pull: new Uint8Array(0),
    });
    b.deliver('a', push(0, 10));
    expect(b.outbox.pop()?.t, 'served while the budget lasts').to.equal('ae-sync-ok');
    b.deliver('a', push(10, 1));
    expect(b.outbox, 'waits while it is spent').to.deep.equal([]);
    let ticks = 0;
    while (b.outbox.length === 0 && ticks < 10_000) {
      b.tick();
      ticks++;
    }
    expect(b.outbox.pop()?.t).to.equal('ae-sync-ok');
    expect(ticks, 'ten keys at an eighth of a key a tick').to.be.within(70, 90);
    expect(b.store.count()).to.equal(11);
  });

  describe('refuses bad requests with a typed error and changes nothing', () => {
    const refusal = (message: PeerMessage): Rerr => {
      const b = new Replica('b');
      b.put('k', version('x/1', 1, 'v'));
      b.tick(); // a budget to serve a sync with
      b.deliver('a', message);
      const answer = b.outbox.find((m): m is Rerr => m.t === 'rerr');
      expect(answer, JSON.stringify(b.outbox)).to.not.equal(undefined);
      expect(b.store.count()).to.equal(1);
      return answer!;
    };
    const open = { t: 'ae-tree' as const, from: 'a', rid: 9, xid: 1, level: 0, of: [] as number[], h: new Uint8Array(4), depth: 8, lc: 256, s: 1, n: 3 };

    it('an exchange it does not know (expired, or it restarted)', () => {
      expect(refusal({ t: 'ae-keys', from: 'a', rid: 9, xid: 77, leaves: [0] }).code).to.equal('UNAVAILABLE');
      expect(refusal({ t: 'ae-tree', from: 'a', rid: 9, xid: 77, level: 1, of: [0], h: new Uint8Array(64) }).code).to.equal('UNAVAILABLE');
      expect(refusal({ t: 'ae-sync', from: 'a', rid: 9, xid: 77, push: [], pull: new Uint8Array(6) }).code).to.equal('UNAVAILABLE');
    });

    it('another ring', () => {
      const answer = refusal({ ...open, ring: '0000000000000000' });
      expect(answer.code).to.equal('UNAVAILABLE');
      expect(answer.msg).to.match(/rings differ/);
    });

    it('another segment depth', () => {
      expect(refusal({ ...open, ring: RING.checksum.slice(0, 16), depth: 12 }).msg).to.match(/depth/);
    });

    it('a level or a parent outside its tree', () => {
      expect(refusal({ ...open, ring: RING.checksum.slice(0, 16), level: 40 }).code).to.equal('INVALID_REQUEST');
      expect(refusal({ ...open, ring: RING.checksum.slice(0, 16), level: 1, of: [99] }).code).to.equal('INVALID_REQUEST');
    });

    it('a tree of another shape, or hashes that do not fit the step', () => {
      const ring = RING.checksum.slice(0, 16);
      expect(refusal({ ...open, ring, lc: 255 }).msg).to.match(/trees differ/);
      expect(refusal({ ...open, ring, h: new Uint8Array(8) }).msg).to.match(/bytes of hashes/);
      const { s: _salt, ...unsalted } = { ...open, ring };
      expect(refusal(unsalted).msg).to.match(/salt/);
    });

    it('a malformed record in a sync', () => {
      const answer = refusal({ t: 'ae-sync', from: 'a', rid: 9, xid: 1, push: [{ b: 'b', k: 'evil', obj: { entries: 'nope' } }], pull: new Uint8Array(0) });
      expect(answer.code).to.equal('PROTOCOL');
    });
  });
});
