/**
 * Proves the memory store's ordered map against a trivially correct model (a Map, sorted on
 * demand with Buffer.compare): a seeded random run of sets, overwrites and deletes, large
 * enough to split chunks many times and empty them again, must agree on every lookup, on the
 * size, and on range reads with open and closed bounds.
 */

import { expect } from 'chai';

import { Prng } from '../../lib/base/prng.js';
import { SortedRecords } from '../../lib/storage/sorted-records.js';

function key(prng: Prng): Uint8Array {
  // Short keys over a small alphabet: many shared prefixes, overwrites and prefix-of cases.
  return Uint8Array.from({ length: prng.int(4) }, () => prng.int(4) * 60);
}

function id(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('storage/sorted-records', () => {
  it('agrees with a sorted Map on a seeded run of sets, deletes and range reads', () => {
    const seed = 0x50e7ed;
    const prng = new Prng(seed);
    const records = new SortedRecords();
    const model = new Map<string, { key: Uint8Array; record: Uint8Array }>();
    const present: Uint8Array[] = [];
    let peak = 0;
    const sorted = () => [...model.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    const context = (step: number) => `seed ${seed}, step ${step} (repeat: npx mocha spec/storage/sorted-records.spec.ts)`;

    for (let step = 0; step < 20_000; step++) {
      // Grow for the first half, shrink for the second, so chunks split and then empty out.
      if (prng.chance(step < 10_000 ? 0.8 : 0.15)) {
        const k = prng.chance(0.3) ? key(prng) : Uint8Array.from({ length: 1 + prng.int(3) }, () => prng.int(256));
        const record = Uint8Array.of(step & 0xff, step >> 8);
        records.set(k, record);
        if (!model.has(id(k))) present.push(k);
        model.set(id(k), { key: k, record });
      } else {
        // Mostly delete a key that is there (so the map really shrinks), sometimes one that is not.
        const at = present.length > 0 && prng.chance(0.9) ? prng.int(present.length) : -1;
        const k = at >= 0 ? (present[at] as Uint8Array) : key(prng);
        records.delete(k);
        if (model.delete(id(k)) && at >= 0) {
          present[at] = present[present.length - 1] as Uint8Array;
          present.pop();
        }
      }
      peak = Math.max(peak, model.size);
      if (step % 1000 === 999) {
        expect(records.size, context(step)).to.equal(model.size);
        const all = sorted();
        expect(records.range(undefined, undefined).map((r) => id(r.key)), context(step)).to.deep.equal(all.map((r) => id(r.key)));
        for (let i = 0; i < 20; i++) {
          const start = prng.chance(0.2) ? undefined : key(prng);
          const end = prng.chance(0.2) ? undefined : key(prng);
          const expected = all.filter((r) => (start === undefined || Buffer.compare(r.key, start) >= 0) && (end === undefined || Buffer.compare(r.key, end) < 0));
          expect(records.range(start, end).map((r) => id(r.key)), `${context(step)}, range ${start && id(start)}..${end && id(end)}`).to.deep.equal(
            expected.map((r) => id(r.key)),
          );
        }
      }
      const probe = key(prng);
      expect(records.get(probe), context(step)).to.deep.equal(model.get(id(probe))?.record);
    }
    expect(peak, 'the run should grow past several chunks').to.be.greaterThan(2000);
    expect(model.size, 'and shrink most of them away again').to.be.lessThan(peak / 4);
  });

  it('returns nothing from an empty map', () => {
    const records = new SortedRecords();
    expect(records.get(Uint8Array.of(1))).to.equal(undefined);
    expect(records.range(undefined, undefined)).to.deep.equal([]);
    records.delete(Uint8Array.of(1));
    expect(records.size).to.equal(0);
  });
});
