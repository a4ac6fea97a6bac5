/**
 * IdTable and KeyTable against a Map as the model: fast-check runs random sequences of set,
 * delete, get and has over ids drawn from small ranges (so runs collide and wrap around the
 * table's end), from sequences with gaps (as request numbers are), and from anywhere up to
 * MAX_SAFE_INTEGER (as client-chosen ids may be), or over strings from a tiny alphabet and
 * from all of Unicode, checking after every step that size, lookups and entries agree.
 * Removal shifts entries back within a run; the property is what shows that no entry is ever
 * lost from its probe sequence, across growth as well. Each run draws the table's salt too.
 *
 * Flooding: keys crafted to share one home slot of an unsalted table make it one long run;
 * the same keys in salted tables spread like any others.
 *
 * The properties print their seed; `SEED=<n>` repeats a run.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { AssertionError } from '../../lib/base/assert.js';
import { IdTable, KeyTable } from '../../lib/base/id-table.js';
import { Prng } from '../../lib/base/prng.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

type Op<K> = { readonly kind: 'set'; readonly id: K; readonly value: number } | { readonly kind: 'delete' | 'get'; readonly id: K };

interface Table<K> {
  readonly size: number;
  get(key: K): number | undefined;
  has(key: K): boolean;
  set(key: K, value: number): void;
  delete(key: K): boolean;
  entries(): [K, number][];
}

function ops<K>(id: fc.Arbitrary<K>): fc.Arbitrary<Op<K>[]> {
  // More additions than removals, so the tables fill, grow and hold long probe runs.
  const op = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('set' as const), id, value: fc.integer() }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('delete' as const), id }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('get' as const), id }), weight: 1 },
  );
  return fc.array(op, { minLength: 20, maxLength: 800, size: 'max' });
}

/** The tables' own hashes, unsalted, to craft keys that collide. */
class HashOf extends IdTable<number> {
  hashOf(id: number): number {
    return this.hash(id);
  }
}
class KeyHashOf extends KeyTable<number> {
  hashOf(key: string): number {
    return this.hash(key);
  }
}

const byKey = <K>(a: [K, number], b: [K, number]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

function agrees<K>(table: Table<K>, model: Map<K, number>): void {
  expect(table.size).to.equal(model.size);
  expect(table.entries().sort(byKey)).to.deep.equal([...model.entries()].sort(byKey));
  for (const [id, value] of model) {
    expect(table.get(id)).to.equal(value);
    expect(table.has(id)).to.equal(true);
  }
}

function run<K>(table: Table<K>, sequence: Op<K>[]): void {
  const model = new Map<K, number>();
  for (const op of sequence) {
    if (op.kind === 'set') {
      table.set(op.id, op.value);
      model.set(op.id, op.value);
    } else if (op.kind === 'delete') {
      expect(table.delete(op.id)).to.equal(model.delete(op.id));
    } else {
      expect(table.get(op.id)).to.equal(model.get(op.id));
      expect(table.has(op.id)).to.equal(model.has(op.id));
    }
  }
  agrees(table, model);
}

describe('IdTable and KeyTable', () => {
  it('IdTable agrees with a Map on any sequence of operations', () => {
    console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/base/id-table.spec.ts)`);
    const ids = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 5000 }).map((n) => n * 64), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
    fc.assert(
      fc.property(ops(ids), fc.integer(), (sequence, salt) => run(new IdTable<number>(salt), sequence)),
      { seed, numRuns: 300 },
    );
  });

  it('KeyTable agrees with a Map on any sequence of operations', () => {
    console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/base/id-table.spec.ts)`);
    const keys = fc.oneof(fc.string({ unit: fc.constantFrom('a', 'b', '\0'), maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 12 }));
    fc.assert(
      fc.property(ops(keys), fc.integer(), (sequence, salt) => run(new KeyTable<number>(salt), sequence)),
      { seed, numRuns: 300 },
    );
  });

  it('keeps a window of requests in flight, as a client does, without losing one', () => {
    const table = new IdTable<string>();
    const live = new Set<number>();
    let next = 1;
    for (; next <= 256; next++) {
      table.set(next, `r${next}`);
      live.add(next);
    }
    // Requests complete out of order: every step retires one of the oldest few and adds one.
    for (let step = 0; step < 20_000; step++, next++) {
      const done = next - 256 + (step % 7 === 0 ? 3 : 0);
      expect(table.delete(done), `request ${done}`).to.equal(live.delete(done));
      table.set(next, `r${next}`);
      live.add(next);
    }
    expect(table.size).to.equal(live.size);
    for (const id of live) expect(table.get(id), `request ${id}`).to.equal(`r${id}`);
    expect(table.entries().map(([id]) => id).sort((a, b) => a - b)).to.deep.equal([...live].sort((a, b) => a - b));
  });

  it('spreads ids crafted to collide without a salt once it has one', () => {
    // 1,500 ids with one and the same unsalted hash (the high word counts up, the low word down
    // to match), so one home slot at every size: what a client that knows the hash would send.
    const unsalted = new HashOf();
    const crafted = Array.from({ length: 1500 }, (_, high) => high * 0x1_0000_0000 + ((0x1234_5678 - high) >>> 0));
    for (const id of crafted) expect(unsalted.hashOf(id)).to.equal(unsalted.hashOf(crafted[0] as number));
    const flooded = new IdTable<number>();
    for (const id of crafted) flooded.set(id, id);
    expect(flooded.longestRun()).to.be.at.least(1500);
    const salts = new Prng(seed).fork('id salts');
    for (let i = 0; i < 5; i++) {
      const salt = salts.nextUint32();
      const table = new IdTable<number>(salt);
      for (const id of crafted) table.set(id, id);
      expect(table.longestRun(), `salt ${salt} (seed ${seed})`).to.be.below(80);
      for (const id of crafted) expect(table.get(id)).to.equal(id);
    }
  });

  it('spreads keys crafted to collide without a salt once it has one', () => {
    const unsalted = new KeyHashOf();
    const home = unsalted.hashOf('k0') & 2047;
    const crafted: string[] = [];
    for (let i = 0; crafted.length < 800; i++) if ((unsalted.hashOf(`k${i}`) & 2047) === home) crafted.push(`k${i}`);
    const flooded = new KeyTable<number>();
    for (const key of crafted) flooded.set(key, 1);
    expect(flooded.longestRun()).to.be.at.least(800);
    const salts = new Prng(seed).fork('key salts');
    for (let i = 0; i < 5; i++) {
      const salt = salts.nextUint32();
      const table = new KeyTable<number>(salt);
      for (const key of crafted) table.set(key, 1);
      expect(table.longestRun(), `salt ${salt} (seed ${seed})`).to.be.below(80);
    }
  });

  it('refuses an id that is not a non-negative safe integer', () => {
    const table = new IdTable<number>();
    for (const id of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => table.set(id, 1), String(id)).to.throw(AssertionError);
    expect(table.size).to.equal(0);
  });
});
