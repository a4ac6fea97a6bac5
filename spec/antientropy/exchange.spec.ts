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

  constructor(readonly id: string) {
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
        ring: () => RING,
        replicas: () => 3,
        alive: () => true,
        send: (_node, message) => void this.outbox.push(message),
        log: () => undefined,
      },
      SETTINGS,
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
    for (let i = 0; i < 20; i++) b.ae.onLoad(5); // the usual level, learnt while nothing is shipped
    expect(b.ae.stats.rate).to.equal(1);
    for (let i = 0; i < 4; i++) b.ae.onLoad(40);
    expect(b.ae.stats.rate).to.equal(1 / 16);
    const ring = RING.checksum.slice(0, 16);
    b.deliver('a', { t: 'ae-tree', from: 'a', rid: 1, xid: 1, level: 0, of: [], depth: 8, ring, n: 3 });
    expect(b.outbox.pop()).to.deep.include({ t: 'rerr', code: 'OVERLOADED' });
    b.deliver('a', { t: 'ae-tree', from: 'a', rid: 2, xid: 2, level: 0, of: [], depth: 8, spans: [[0, 0]] });
    expect(b.outbox.pop()?.t, 'a transfer is still served').to.equal('ae-tree-ok');
    for (let i = 0; i < 20; i++) b.ae.onLoad(5);
    expect(b.ae.stats.rate).to.equal(1);
  });

  describe('refuses bad requests with a typed error and changes nothing', () => {
    const refusal = (message: PeerMessage): Rerr => {
      const b = new Replica('b');
      b.put('k', version('x/1', 1, 'v'));
      b.deliver('a', message);
      const answer = b.outbox.find((m): m is Rerr => m.t === 'rerr');
      expect(answer, JSON.stringify(b.outbox)).to.not.equal(undefined);
      expect(b.store.count()).to.equal(1);
      return answer!;
    };
    const open = { t: 'ae-tree' as const, from: 'a', rid: 9, xid: 1, level: 0, of: [] as number[], depth: 8, n: 3 };

    it('an exchange it does not know (expired, or it restarted)', () => {
      expect(refusal({ t: 'ae-keys', from: 'a', rid: 9, xid: 77, leaves: [0] }).code).to.equal('UNAVAILABLE');
      expect(refusal({ t: 'ae-tree', from: 'a', rid: 9, xid: 77, level: 1, of: [0] }).code).to.equal('UNAVAILABLE');
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

    it('a malformed record in a sync', () => {
      const answer = refusal({ t: 'ae-sync', from: 'a', rid: 9, xid: 1, push: [{ b: 'b', k: 'evil', obj: { entries: 'nope' } }], pull: [] });
      expect(answer.code).to.equal('PROTOCOL');
    });
  });
});
