/**
 * LocalReplica keeps the segment hashes anti-entropy compares in step with the store, also
 * when storage batches fail: a seeded random walk of puts, deletes and hint writes across a
 * few keys (now and then one key twice in a batch), batches completing in order, some
 * failing; half the writes of the node's own data name the version they replace, as the
 * coordinator and the replica server do. Whenever no write is on its way, the hashes must
 * equal a rebuild from what the store holds; and nothing may throw.
 */

import { expect } from 'chai';

import { Prng } from '../../lib/base/prng.js';
import type { KvObject } from '../../lib/clock/object.js';
import { SegmentHashes } from '../../lib/merkle/index.js';
import type { NodeOutput } from '../../lib/node/io.js';
import { LocalReplica, type SlotWrite } from '../../lib/node/local-replica.js';
import type { StoreWrite } from '../../lib/node/ports.js';
import { MemoryStore } from '../../lib/storage/memory-store.js';
import { segmentsOf } from '../../lib/storage/segments.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/node/local-replica.spec.ts)`);

const DEPTH = 4;

function object(counter: number, value: string): KvObject {
  return { entries: [{ actor: 'n1/e1', counter, values: [new TextEncoder().encode(value)] }] };
}

describe('LocalReplica segment hashes', () => {
  it('follow the store through failed batches (seeded random walk)', async () => {
    const prng = new Prng(seed);
    const store = new MemoryStore();
    const local = new LocalReplica(store, new SegmentHashes(DEPTH));
    const batches: { writeId: number; writes: readonly StoreWrite[] }[] = [];
    const keys = ['a', 'b', 'c', 'd', 'e'];
    let counter = 1;
    let failed = 0;
    let checks = 0;
    for (let step = 0; step < 4000; step++) {
      const roll = prng.int(10);
      if (roll < 3) {
        const key = prng.pick(keys);
        const out: NodeOutput[] = [];
        const hintFor = prng.int(6) === 0 ? 'n2' : undefined;
        const write = (): SlotWrite => ({ bucket: 'b', key, hintFor, object: prng.int(4) === 0 ? undefined : object(counter++, `v${step}`) });
        // Now and then a batch writes the same key twice; a single write of own data may say what it replaces.
        const writes = prng.int(8) === 0 ? [write(), write()] : [write()];
        const single = writes[0] as SlotWrite;
        if (writes.length === 1 && hintFor === undefined && prng.int(2) === 0) writes[0] = { ...single, replaces: { object: local.latest(single) } };
        local.write(writes, out, () => {});
        for (const o of out) if (o.kind === 'store-write') batches.push({ writeId: o.writeId, writes: o.writes });
      } else if (roll < 8 && batches.length > 0) {
        const batch = batches.shift() as { writeId: number; writes: readonly StoreWrite[] };
        if (prng.int(4) === 0) {
          failed++;
          local.onStoreDone(batch.writeId, 'disk full', []);
        } else {
          await store.apply(batch.writes);
          local.onStoreDone(batch.writeId, undefined, []);
        }
      }
      if (batches.length === 0) {
        checks++;
        expect(local.segments.equals(segmentsOf(store.scan(0, 0), DEPTH)), `step ${step}`).to.equal(true);
      }
    }
    expect(failed, 'failed batches').to.be.greaterThan(50);
    expect(checks, 'quiet moments checked').to.be.greaterThan(50);
  });

  it('take the replaced version from the caller without reading the store again', () => {
    const store = new CountingStore();
    const local = new LocalReplica(store, new SegmentHashes(DEPTH));
    const slot = { bucket: 'b', key: 'k' };
    const current = local.latest(slot);
    expect(store.reads).to.equal(1);
    local.write([{ ...slot, object: object(1, 'v1'), replaces: { object: current } }], [], () => {});
    expect(store.reads, 'reads after a write that names what it replaces').to.equal(1);
    local.write([{ bucket: 'b', key: 'other', object: object(2, 'v2') }], [], () => {});
    expect(store.reads, 'reads after a write that does not').to.equal(2);
  });
});

/** A memory store that counts the objects read from it. */
class CountingStore extends MemoryStore {
  reads = 0;

  override get(bucket: string, key: string): KvObject | undefined {
    this.reads++;
    return super.get(bucket, key);
  }
}
