/**
 * The Store contract: what every storage adapter must do, run against each of them
 * (spec/storage/memory-store.spec.ts, spec/storage/lmdb-store.spec.ts).
 *
 * The core and the simulator are tested against the memory store and production runs on
 * LMDB, so any difference between the two is a bug the simulator cannot find. This suite
 * pins the behaviour both must share: lookups, round trips of every object shape (tombstones,
 * several actors, empty and binary values), deletes, atomic batches (a refused write refuses
 * the whole batch), ordered token-range scans (plain, wrapping, whole ring, colliding tokens,
 * keys with non-ASCII characters and zero bytes), scan snapshots, counts, metadata, no
 * aliasing between what a caller holds and what is stored, concurrent applies, closing,
 * and, for engines that persist, everything surviving a close and reopen.
 *
 * Hints (writes kept for another node) get the same treatment in their own keyspace: they
 * round-trip, stay invisible to `get`, `scan` and `count` (a hint and an object under the same
 * bucket/key are independent), list per target in storage-key order up to a limit, sum per
 * target in `hintTargets`, share batches (and their atomic refusal) with object writes, are
 * never aliased, and persist.
 *
 * Expected scan results are computed here independently of lib/storage/keys.ts: the token
 * from lib/ring (pinned by its own golden spec) and the order from Node's Buffer.compare.
 */

import { expect } from 'chai';

import { ChorusError, StorageError } from '../../lib/base/errors.js';
import { Prng } from '../../lib/base/prng.js';
import type { KvObject, Sibling } from '../../lib/clock/object.js';
import type { HintEntry, HintTargetSummary, StoreWrite } from '../../lib/node/ports.js';
import { keyToken } from '../../lib/ring/index.js';
import type { Store, StoreEntry } from '../../lib/storage/index.js';
import { encodeObject } from '../../lib/storage/object-codec.js';

const RING = 2 ** 32;

/** Builds an object from `[actor, counter, ...siblings]` tuples, given in actor order. */
function object(...entries: readonly (readonly [string, number, ...Sibling[]])[]): KvObject {
  return { entries: entries.map(([actor, counter, ...values]) => ({ actor, counter, values })) };
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function put(bucket: string, key: string, value: KvObject): StoreWrite {
  return { op: 'put', bucket, key, object: value };
}

function del(bucket: string, key: string): StoreWrite {
  return { op: 'delete', bucket, key };
}

function hintPut(target: string, bucket: string, key: string, value: KvObject): StoreWrite {
  return { op: 'hint-put', target, bucket, key, object: value };
}

function hintDel(target: string, bucket: string, key: string): StoreWrite {
  return { op: 'hint-delete', target, bucket, key };
}

/** What `hintsFor(target)` must return for these entries: storage-key order, at most `limit`. */
function expectedHints(data: readonly StoreEntry[], limit = Infinity): HintEntry[] {
  return [...data]
    .sort(storageOrder)
    .slice(0, limit)
    .map(({ bucket, key, object: value }) => ({ bucket, key, object: value }));
}

/** `hintTargets()` in target order, so specs do not depend on the order a store lists them in. */
function targetsOf(store: Store): HintTargetSummary[] {
  return [...store.hintTargets()].sort((a, b) => Buffer.compare(Buffer.from(a.target), Buffer.from(b.target)));
}

/** Encoded bytes of an object, as `hintTargets` counts them. */
function sizeOf(value: KvObject): number {
  return encodeObject(value).length;
}

/** The (token, bucket, key) byte order of the data model, computed with Buffer rather than lib code. */
function storageOrder(a: { bucket: string; key: string }, b: { bucket: string; key: string }): number {
  const encode = (x: { bucket: string; key: string }): Buffer => {
    const token = Buffer.alloc(4);
    token.writeUInt32BE(keyToken(x.bucket, x.key));
    return Buffer.concat([token, Buffer.from(x.bucket, 'utf8'), Buffer.of(0), Buffer.from(x.key, 'utf8')]);
  };
  return Buffer.compare(encode(a), encode(b));
}

/** Whether a token lies in the ring range [from, to) as the port defines it. */
function inRange(token: number, from: number, to: number): boolean {
  if (from < to) return token >= from && token < to;
  return token >= from || token < to;
}

/** What a scan of [from, to) must return: ring order starting at `from`. */
function expectedScan(data: readonly StoreEntry[], from: number, to: number): StoreEntry[] {
  const sorted = data.filter((e) => inRange(e.token, from, to)).sort(storageOrder);
  return [...sorted.filter((e) => e.token >= from), ...sorted.filter((e) => e.token < from)];
}

function keysOf(entries: Iterable<StoreEntry>): string[] {
  return Array.from(entries, (e) => `${e.token}/${e.bucket}/${JSON.stringify(e.key)}`);
}

/**
 * Two pairs of keys whose tokens collide, found by search and pinned here (the precondition is
 * asserted). They check that entries sharing a token come back in (bucket, key) byte order.
 */
const COLLISIONS = [
  { token: 18219421, pairs: [['c', 'k55620'], ['c', 'k115111']] },
  { token: 4276728425, pairs: [['a', '24147'], ['ab', '47078']] },
] as const;

/** A data set that exercises the key encoding: non-ASCII, zero bytes, empty parts, collisions. */
function scanData(): StoreEntry[] {
  const pairs: [string, string][] = [
    ['users', 'alice'],
    ['users', 'bob'],
    ['users', ''],
    ['', 'empty-bucket'],
    ['café', 'crème brûlée'],
    ['日本語', 'キー'],
    ['emoji', '🦀🌈'],
    ['zero', 'a\u0000b'],
    ['zero', '\u0000'],
    ['zero', 'a\u0000'],
    ['bom', '\uFEFFleading-bom'],
    ...COLLISIONS.flatMap((c) => c.pairs.map(([b, k]) => [b, k] as [string, string])),
  ];
  for (let i = 0; i < 200; i++) pairs.push([`b${i % 7}`, `key-${i}`]);
  return pairs.map(([bucket, key], i) => ({
    token: keyToken(bucket, key),
    bucket,
    key,
    object: object([`node-${i % 3}/e1`, i + 1, text(`${bucket}/${key}`)]),
  }));
}

function expectStorageError(error: unknown, message?: RegExp): void {
  expect(error, 'expected a StorageError').to.be.instanceOf(StorageError);
  expect((error as ChorusError).code).to.equal('STORAGE');
  if (message !== undefined) expect((error as Error).message).to.match(message);
}

/** The error a promise rejects with; fails the spec if it resolves. Shared with adapter-specific specs. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The error a call throws; fails the spec if it returns. */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, but the call returned');
}

/**
 * Runs the contract. `open` returns a fresh, empty store for each test; `reopen`, for engines
 * that persist, closes the given store and opens the same data again.
 */
export function runStoreContract(name: string, open: () => Promise<Store>, reopen?: (store: Store) => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    describe('get, put and delete', () => {
      it('returns undefined for a key that was never written', () => {
        expect(store.get('users', 'nobody')).to.equal(undefined);
        expect(store.get('', '')).to.equal(undefined);
      });

      it('returns an equal object after a put, for every object shape', async () => {
        const shapes: [string, KvObject][] = [
          ['single', object(['n1/e1', 1, text('hello')])],
          ['tombstone', object(['n1/e1', 2, null])],
          ['value and tombstone siblings', object(['n1/e1', 3, text('new'), null])],
          ['several actors', object(['n1/e1', 4, text('a')], ['n2/e1', 2, null, text('b')], ['n3/e9', 7])],
          ['empty value', object(['n1/e1', 1, new Uint8Array(0)])],
          ['all byte values', object(['n1/e1', 1, Uint8Array.from({ length: 256 }, (_, i) => i)])],
          ['large value', object(['n1/e1', 1, new Uint8Array(256 * 1024).fill(7)])],
          ['no entries', { entries: [] }],
        ];
        await store.apply(shapes.map(([key, value]) => put('shapes', key, value)));
        for (const [key, value] of shapes) expect(store.get('shapes', key), key).to.deep.equal(value);
      });

      it('stores a value given as a Buffer and returns plain bytes', async () => {
        await store.apply([put('b', 'k', object(['n1/e1', 1, Buffer.from('buffered')]))]);
        const value = store.get('b', 'k')?.entries[0]?.values[0];
        expect(value).to.be.instanceOf(Uint8Array);
        expect(Array.from(value ?? [])).to.deep.equal(Array.from(text('buffered')));
      });

      it('replaces the object on a second put', async () => {
        await store.apply([put('b', 'k', object(['n1/e1', 1, text('one')]))]);
        await store.apply([put('b', 'k', object(['n1/e1', 2, text('two')]))]);
        expect(store.get('b', 'k')).to.deep.equal(object(['n1/e1', 2, text('two')]));
      });

      it('removes an object on delete, and deleting a missing key is a no-op', async () => {
        await store.apply([put('b', 'k', object(['n1/e1', 1, text('v')])), put('b', 'other', object(['n1/e1', 1, text('w')]))]);
        await store.apply([del('b', 'k')]);
        expect(store.get('b', 'k')).to.equal(undefined);
        expect(store.get('b', 'other')).to.deep.equal(object(['n1/e1', 1, text('w')]));
        await store.apply([del('b', 'never-written')]);
        expect(store.count()).to.equal(1);
      });

      it('keeps keys apart that differ only around the bucket/key boundary or in zero bytes', async () => {
        const pairs: [string, string][] = [['ab', 'c'], ['a', 'bc'], ['a', 'b\u0000c'], ['a', ''], ['a', '\u0000']];
        await store.apply(pairs.map(([b, k], i) => put(b, k, object(['n1/e1', i + 1, text(`${i}`)]))));
        pairs.forEach(([b, k], i) => expect(store.get(b, k), JSON.stringify([b, k])).to.deep.equal(object(['n1/e1', i + 1, text(`${i}`)])));
        expect(store.count()).to.equal(pairs.length);
      });

      it('applies an empty batch', async () => {
        await store.apply([]);
        expect(store.count()).to.equal(0);
      });
    });

    describe('batches', () => {
      it('applies the writes of a batch in order: the last write to a key wins', async () => {
        await store.apply([
          put('b', 'put-then-delete', object(['n1/e1', 1, text('x')])),
          del('b', 'put-then-delete'),
          del('b', 'delete-then-put'),
          put('b', 'delete-then-put', object(['n1/e1', 1, text('y')])),
          put('b', 'twice', object(['n1/e1', 1, text('first')])),
          put('b', 'twice', object(['n1/e1', 2, text('second')])),
        ]);
        expect(store.get('b', 'put-then-delete')).to.equal(undefined);
        expect(store.get('b', 'delete-then-put')).to.deep.equal(object(['n1/e1', 1, text('y')]));
        expect(store.get('b', 'twice')).to.deep.equal(object(['n1/e1', 2, text('second')]));
      });

      it('refuses a whole batch with StorageError when one write has a bucket with a zero character', async () => {
        await store.apply([put('b', 'existing', object(['n1/e1', 1, text('old')]))]);
        const error = await rejection(
          store.apply([
            put('b', 'new', object(['n1/e1', 1, text('new')])),
            del('b', 'existing'),
            put('bad\u0000bucket', 'k', object(['n1/e1', 1, text('v')])),
          ]),
        );
        expectStorageError(error, /zero character/);
        expect(store.get('b', 'new')).to.equal(undefined);
        expect(store.get('b', 'existing')).to.deep.equal(object(['n1/e1', 1, text('old')]));
        expect(store.count()).to.equal(1);
      });

      it('refuses a whole batch with StorageError when one storage key is over the limit', async () => {
        const error = await rejection(
          store.apply([put('b', 'fine', object(['n1/e1', 1, text('v')])), put('b', 'k'.repeat(5000), object(['n1/e1', 1, text('v')]))]),
        );
        expectStorageError(error, /over the 1978-byte limit/);
        expect(store.get('b', 'fine')).to.equal(undefined);
        expect(store.get('b', 'k'.repeat(5000))).to.equal(undefined);
        expect(store.count()).to.equal(0);
      });

      it('refuses keys with lone surrogates, which UTF-8 cannot hold', async () => {
        expectStorageError(await rejection(store.apply([put('b', 'lone\uD800', object(['n1/e1', 1, null]))])), /surrogate/);
        expect(store.count()).to.equal(0);
      });

      it('resolves every one of many applies issued at once, and stores them all', async () => {
        const writes = Array.from({ length: 1000 }, (_, i) => put('concurrent', `k${i}`, object(['n1/e1', i + 1, text(`v${i}`)])));
        await Promise.all([...writes.map((w) => store.apply([w])), store.setMeta('during', text('meta'))]);
        expect(store.count()).to.equal(1000);
        for (let i = 0; i < 1000; i += 97) expect(store.get('concurrent', `k${i}`)).to.deep.equal(object(['n1/e1', i + 1, text(`v${i}`)]));
        expect(store.getMeta('during')).to.deep.equal(text('meta'));
      });
    });

    describe('aliasing', () => {
      it('is not changed by mutating an object returned by get', async () => {
        await store.apply([put('b', 'k', object(['n1/e1', 1, text('abc')]))]);
        const first = store.get('b', 'k');
        const value = first?.entries[0]?.values[0];
        expect(value).to.be.instanceOf(Uint8Array);
        value?.fill(0);
        (first?.entries as unknown as { counter: number }[])[0]!.counter = 99;
        expect(store.get('b', 'k')).to.deep.equal(object(['n1/e1', 1, text('abc')]));
      });

      it('is not changed by mutating the written object after apply was called', async () => {
        const value = text('abc');
        const written = object(['n1/e1', 1, value]);
        const applying = store.apply([put('b', 'k', written)]);
        value.fill(0);
        (written.entries as unknown as { counter: number }[])[0]!.counter = 99;
        await applying;
        expect(store.get('b', 'k')).to.deep.equal(object(['n1/e1', 1, text('abc')]));
      });

      it('returns objects that later writes do not change', async () => {
        await store.apply([put('b', 'k', object(['n1/e1', 1, text('one')]))]);
        const before = store.get('b', 'k');
        await store.apply([put('b', 'k', object(['n1/e1', 2, text('two')]))]);
        expect(before).to.deep.equal(object(['n1/e1', 1, text('one')]));
      });
    });

    describe('scan', () => {
      let data: StoreEntry[];
      let tokens: number[];

      beforeEach(async () => {
        data = scanData();
        tokens = [...new Set(data.map((e) => e.token))].sort((a, b) => a - b);
        await store.apply(data.map((e) => put(e.bucket, e.key, e.object)));
      });

      it('returns entries with their token, bucket, key and object', () => {
        const all = [...store.scan(0, 0)];
        expect(all).to.have.length(data.length);
        expect(all).to.deep.equal(expectedScan(data, 0, 0));
      });

      it('returns exactly the entries of [from, to), from inclusive and to exclusive, in order', () => {
        const from = tokens[20] as number;
        const to = tokens[120] as number;
        const found = [...store.scan(from, to)];
        expect(keysOf(found)).to.deep.equal(keysOf(expectedScan(data, from, to)));
        expect(found[0]?.token).to.equal(from);
        expect(found.every((e) => e.token >= from && e.token < to)).to.equal(true);
        expect(found.some((e) => e.token === to)).to.equal(false);
      });

      it('wraps around the top of the ring when from > to', () => {
        const from = tokens[150] as number;
        const to = tokens[30] as number;
        const found = [...store.scan(from, to)];
        expect(keysOf(found)).to.deep.equal(keysOf(expectedScan(data, from, to)));
        // Ring order: the top of the ring first, then the bottom.
        const wrapAt = found.findIndex((e) => e.token < from);
        expect(found.slice(0, wrapAt).every((e) => e.token >= from)).to.equal(true);
        expect(found.slice(wrapAt).every((e) => e.token < to)).to.equal(true);
      });

      it('scans the whole ring when from == to, starting at from', () => {
        const from = tokens[77] as number;
        const whole = keysOf(store.scan(from, from));
        expect(whole).to.have.length(data.length);
        expect(whole).to.deep.equal(keysOf(expectedScan(data, from, from)));
        expect(keysOf(store.scan(0, 0))).to.deep.equal(keysOf([...data].sort(storageOrder)));
        expect(keysOf(store.scan(RING - 1, RING - 1))).to.have.length(data.length);
      });

      it('handles the edges of the ring: [x, 0) runs to the top, [0, x) from the bottom', () => {
        const mid = tokens[100] as number;
        expect(keysOf(store.scan(mid, 0))).to.deep.equal(keysOf(expectedScan(data, mid, 0)));
        expect(keysOf(store.scan(0, mid))).to.deep.equal(keysOf(expectedScan(data, 0, mid)));
        expect(keysOf(store.scan(0, 1))).to.deep.equal(keysOf(expectedScan(data, 0, 1)));
      });

      it('returns entries that share a token in (bucket, key) byte order, and bounds them by token', () => {
        for (const { token, pairs } of COLLISIONS) {
          for (const [bucket, key] of pairs) expect(keyToken(bucket, key), 'collision precondition').to.equal(token);
          const found = [...store.scan(token, (token + 1) % RING)];
          const expected = pairs.map(([bucket, key]) => ({ bucket, key })).sort(storageOrder);
          expect(found.map((e) => [e.bucket, e.key])).to.deep.equal(expected.map((e) => [e.bucket, e.key]));
          const outside = [...store.scan((token + 1) % RING, token)];
          expect(outside.filter((e) => e.token === token)).to.deep.equal([]);
          expect(outside).to.have.length(data.length - pairs.length);
        }
      });

      it('round-trips keys with non-ASCII characters, zero bytes and a leading byte-order mark', () => {
        const found = new Map([...store.scan(0, 0)].map((e) => [`${e.bucket}/${e.key}`, e]));
        for (const [bucket, key] of [['日本語', 'キー'], ['emoji', '🦀🌈'], ['zero', 'a\u0000b'], ['zero', '\u0000'], ['bom', '\uFEFFleading-bom'], ['', 'empty-bucket'], ['users', '']]) {
          const entry = found.get(`${bucket}/${key}`);
          expect(entry, JSON.stringify([bucket, key])).to.not.equal(undefined);
          expect(entry?.token).to.equal(keyToken(bucket as string, key as string));
          expect(entry?.object).to.deep.equal(object([entry?.object.entries[0]?.actor ?? '', entry?.object.entries[0]?.counter ?? 0, text(`${bucket}/${key}`)]));
        }
      });

      it('agrees with the expected result on seeded random ranges', () => {
        const seed = 0xc0ffee;
        const prng = new Prng(seed);
        for (let i = 0; i < 200; i++) {
          // Half the bounds are data tokens (edges matter most), half anywhere on the ring.
          const bound = (): number => (prng.chance(0.5) ? prng.pick(tokens) : prng.nextUint32());
          const from = bound();
          const to = bound();
          expect(keysOf(store.scan(from, to)), `seed ${seed}, range [${from}, ${to}) (repeat: npx mocha spec/storage)`).to.deep.equal(
            keysOf(expectedScan(data, from, to)),
          );
        }
      });

      it('sees one snapshot: writes landing after the first entry is read are not seen', async () => {
        const iterator = store.scan(0, 0);
        const first = iterator.next();
        expect(first.done).to.equal(false);
        const later = [...data].sort(storageOrder).slice(50, 60);
        await store.apply([
          ...later.map((e) => del(e.bucket, e.key)),
          put('users', 'alice', object(['n9/e1', 1, text('changed')])),
          put('late', 'arrival', object(['n9/e1', 1, text('new')])),
        ]);
        const rest = [...iterator];
        expect(keysOf([first.value as StoreEntry, ...rest])).to.deep.equal(keysOf(expectedScan(data, 0, 0)));
        const alice = [first.value as StoreEntry, ...rest].find((e) => e.bucket === 'users' && e.key === 'alice');
        expect(alice?.object).to.deep.equal(data.find((e) => e.bucket === 'users' && e.key === 'alice')?.object);
      });

      it('can be stopped early and scanned again', () => {
        let seen = 0;
        for (const entry of store.scan(0, 0)) {
          expect(entry.bucket).to.be.a('string');
          if (++seen === 3) break;
        }
        expect([...store.scan(0, 0)]).to.have.length(data.length);
      });

      it('reflects deletes and overwrites', async () => {
        const victim = data[10] as StoreEntry;
        await store.apply([del(victim.bucket, victim.key), put('users', 'bob', object(['n2/e1', 5, null]))]);
        const remaining = data.filter((e) => e !== victim).map((e) => (e.bucket === 'users' && e.key === 'bob' ? { ...e, object: object(['n2/e1', 5, null]) } : e));
        expect([...store.scan(0, 0)]).to.deep.equal(expectedScan(remaining, 0, 0));
      });
    });

    describe('count', () => {
      it('counts stored objects through puts, overwrites and deletes', async () => {
        expect(store.count()).to.equal(0);
        await store.apply([put('b', '1', object(['n/e', 1, null])), put('b', '2', object(['n/e', 1, null])), put('c', '1', object(['n/e', 1, null]))]);
        expect(store.count()).to.equal(3);
        await store.apply([put('b', '1', object(['n/e', 2, text('x')]))]);
        expect(store.count()).to.equal(3);
        await store.apply([del('b', '2'), del('b', 'missing')]);
        expect(store.count()).to.equal(2);
      });
    });

    describe('hints', () => {
      const v1 = object(['n1/e1', 1, text('one')]);
      const v2 = object(['n1/e1', 2, text('two')], ['n3/e1', 1, null]);

      it('returns undefined for a hint never written, and an equal object after a hint-put', async () => {
        expect(store.getHint('n2', 'b', 'k')).to.equal(undefined);
        await store.apply([hintPut('n2', 'b', 'k', v1), hintPut('n2', '', '', { entries: [] }), hintPut('n2', 'zero', 'a\u0000b', v2)]);
        expect(store.getHint('n2', 'b', 'k')).to.deep.equal(v1);
        expect(store.getHint('n2', '', '')).to.deep.equal({ entries: [] });
        expect(store.getHint('n2', 'zero', 'a\u0000b')).to.deep.equal(v2);
        expect(store.getHint('n2', 'zero', 'a')).to.equal(undefined);
      });

      it('replaces a hint on a second hint-put and removes it on hint-delete; deleting a missing hint is a no-op', async () => {
        await store.apply([hintPut('n2', 'b', 'k', v1), hintPut('n2', 'b', 'other', v1)]);
        await store.apply([hintPut('n2', 'b', 'k', v2)]);
        expect(store.getHint('n2', 'b', 'k')).to.deep.equal(v2);
        await store.apply([hintDel('n2', 'b', 'k'), hintDel('n2', 'b', 'never-written'), hintDel('n9', 'b', 'k')]);
        expect(store.getHint('n2', 'b', 'k')).to.equal(undefined);
        expect(store.getHint('n2', 'b', 'other')).to.deep.equal(v1);
        expect(targetsOf(store)).to.deep.equal([{ target: 'n2', count: 1, bytes: sizeOf(v1) }]);
      });

      it('keeps hints out of get, scan and count: a hint and an object under the same key are independent', async () => {
        await store.apply([hintPut('n2', 'b', 'hint-only', v1)]);
        expect(store.get('b', 'hint-only')).to.equal(undefined);
        expect(store.count()).to.equal(0);
        expect([...store.scan(0, 0)]).to.deep.equal([]);

        await store.apply([put('b', 'both', v1), hintPut('n2', 'b', 'both', v2)]);
        expect(store.get('b', 'both')).to.deep.equal(v1);
        expect(store.getHint('n2', 'b', 'both')).to.deep.equal(v2);
        expect(store.count()).to.equal(1);
        expect([...store.scan(0, 0)].map((e) => [e.bucket, e.key, e.object])).to.deep.equal([['b', 'both', v1]]);

        await store.apply([del('b', 'both')]);
        expect(store.get('b', 'both')).to.equal(undefined);
        expect(store.getHint('n2', 'b', 'both')).to.deep.equal(v2);
        await store.apply([put('b', 'both', v1), hintDel('n2', 'b', 'both')]);
        expect(store.get('b', 'both')).to.deep.equal(v1);
        expect(store.getHint('n2', 'b', 'both')).to.equal(undefined);
        expect(store.count()).to.equal(1);
      });

      it('keeps objects out of the hint reads', async () => {
        await store.apply([put('b', 'k', v1)]);
        expect(store.getHint('n2', 'b', 'k')).to.equal(undefined);
        expect(store.hintTargets()).to.deep.equal([]);
      });

      it('keeps the hints of different targets apart, also when one target extends another', async () => {
        const targets = ['n1', 'n1x', 'n1-', 'n1.', 'n', 'node_2', 'N1'];
        await store.apply(targets.map((t, i) => hintPut(t, 'b', 'k', object(['n1/e1', i + 1, text(t)]))));
        targets.forEach((t, i) => {
          expect(store.getHint(t, 'b', 'k'), t).to.deep.equal(object(['n1/e1', i + 1, text(t)]));
          expect(store.hintsFor(t, 100), t).to.deep.equal([{ bucket: 'b', key: 'k', object: object(['n1/e1', i + 1, text(t)]) }]);
        });
        expect(targetsOf(store).map((s) => [s.target, s.count])).to.deep.equal(
          [...targets].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((t) => [t, 1]),
        );
      });

      it('lists the hints of a target in storage-key order, up to the limit', async () => {
        const data = scanData();
        await store.apply([
          ...data.map((e) => hintPut('n2', e.bucket, e.key, e.object)),
          // Neighbours on either side of n2's range, which must not leak into it.
          ...data.slice(0, 20).map((e) => hintPut('n1', e.bucket, e.key, v1)),
          ...data.slice(0, 20).map((e) => hintPut('n3', e.bucket, e.key, v2)),
        ]);
        expect(store.hintsFor('n2', 10_000)).to.deep.equal(expectedHints(data));
        expect(store.hintsFor('n2', data.length)).to.deep.equal(expectedHints(data));
        expect(store.hintsFor('n2', 7)).to.deep.equal(expectedHints(data, 7));
        expect(store.hintsFor('n2', 1)).to.deep.equal(expectedHints(data, 1));
        expect(store.hintsFor('n2', 0)).to.deep.equal([]);
        expect(store.hintsFor('n1', 10_000)).to.have.length(20);
        expect(store.hintsFor('n9', 10)).to.deep.equal([]);
      });

      it('pages through a target by deleting what was listed, as handoff does', async () => {
        const data = scanData().slice(0, 50);
        await store.apply(data.map((e) => hintPut('n2', e.bucket, e.key, e.object)));
        const seen: HintEntry[] = [];
        for (let page = store.hintsFor('n2', 8); page.length > 0; page = store.hintsFor('n2', 8)) {
          expect(page.length).to.be.at.most(8);
          seen.push(...page);
          await store.apply(page.map((h) => hintDel('n2', h.bucket, h.key)));
        }
        expect(seen).to.deep.equal(expectedHints(data));
        expect(store.hintTargets()).to.deep.equal([]);
      });

      it('sums hints per target in hintTargets through puts, overwrites and deletes', async () => {
        expect(store.hintTargets()).to.deep.equal([]);
        await store.apply([hintPut('n1', 'b', '1', v1), hintPut('n1', 'b', '2', v1), hintPut('n1', 'c', '1', v2), hintPut('n3', 'b', '1', v2)]);
        expect(targetsOf(store)).to.deep.equal([
          { target: 'n1', count: 3, bytes: 2 * sizeOf(v1) + sizeOf(v2) },
          { target: 'n3', count: 1, bytes: sizeOf(v2) },
        ]);
        await store.apply([hintPut('n1', 'b', '1', v2)]);
        expect(targetsOf(store)).to.deep.equal([
          { target: 'n1', count: 3, bytes: sizeOf(v1) + 2 * sizeOf(v2) },
          { target: 'n3', count: 1, bytes: sizeOf(v2) },
        ]);
        await store.apply([hintDel('n1', 'b', '2'), hintDel('n1', 'b', 'missing'), hintDel('n3', 'b', '1')]);
        expect(targetsOf(store)).to.deep.equal([{ target: 'n1', count: 2, bytes: 2 * sizeOf(v2) }]);
      });

      it('returns undefined and empty lists for targets that cannot hold hints, rather than throwing', () => {
        for (const target of ['', 'bad\u0000target', 'lone\uD800']) {
          expect(store.getHint(target, 'b', 'k'), JSON.stringify(target)).to.equal(undefined);
          expect(store.hintsFor(target, 10), JSON.stringify(target)).to.deep.equal([]);
        }
        expect(store.getHint('n2', 'bad\u0000bucket', 'k')).to.equal(undefined);
      });

      it('applies a batch mixing object and hint writes in order', async () => {
        await store.apply([put('b', 'old', v1), hintPut('n2', 'b', 'old', v1)]);
        await store.apply([
          put('b', 'k', v1),
          hintPut('n2', 'b', 'k', v2),
          hintPut('n2', 'b', 'put-then-delete', v1),
          hintDel('n2', 'b', 'put-then-delete'),
          hintDel('n2', 'b', 'delete-then-put'),
          hintPut('n2', 'b', 'delete-then-put', v2),
          hintPut('n2', 'b', 'twice', v1),
          hintPut('n2', 'b', 'twice', v2),
          del('b', 'old'),
          hintDel('n2', 'b', 'old'),
        ]);
        expect(store.get('b', 'k')).to.deep.equal(v1);
        expect(store.getHint('n2', 'b', 'k')).to.deep.equal(v2);
        expect(store.getHint('n2', 'b', 'put-then-delete')).to.equal(undefined);
        expect(store.getHint('n2', 'b', 'delete-then-put')).to.deep.equal(v2);
        expect(store.getHint('n2', 'b', 'twice')).to.deep.equal(v2);
        expect(store.get('b', 'old')).to.equal(undefined);
        expect(store.getHint('n2', 'b', 'old')).to.equal(undefined);
        expect(store.count()).to.equal(1);
        expect(targetsOf(store).map((t) => [t.target, t.count])).to.deep.equal([['n2', 3]]);
      });

      for (const [why, target, message] of [
        ['a target with a zero character', 'bad\u0000target', /zero character/],
        ['an empty target', '', /empty/],
        ['a target with a lone surrogate', 'lone\uD800', /surrogate/],
      ] as const) {
        it(`refuses a whole mixed batch with StorageError when one hint has ${why}`, async () => {
          await store.apply([put('b', 'existing', v1), hintPut('n2', 'b', 'existing', v1)]);
          const error = await rejection(
            store.apply([
              put('b', 'new', v2),
              hintPut('n2', 'b', 'new', v2),
              del('b', 'existing'),
              hintDel('n2', 'b', 'existing'),
              hintPut(target, 'b', 'k', v2),
            ]),
          );
          expectStorageError(error, message);
          expect((error as ChorusError).details).to.include({ index: 4, bucket: 'b', key: 'k' });
          expect(store.get('b', 'new')).to.equal(undefined);
          expect(store.getHint('n2', 'b', 'new')).to.equal(undefined);
          expect(store.get('b', 'existing')).to.deep.equal(v1);
          expect(store.getHint('n2', 'b', 'existing')).to.deep.equal(v1);
          expect(store.count()).to.equal(1);
          expect(targetsOf(store)).to.deep.equal([{ target: 'n2', count: 1, bytes: sizeOf(v1) }]);
        });
      }

      it('refuses a hint with a bucket that has a zero character, and nothing of its batch is written', async () => {
        expectStorageError(await rejection(store.apply([put('b', 'k', v1), hintPut('n2', 'bad\u0000bucket', 'k', v1)])), /zero character/);
        expect(store.count()).to.equal(0);
        expect(store.hintTargets()).to.deep.equal([]);
      });

      it('holds the whole hint key to the storage key limit: target ‖ 0 ‖ storage key ≤ 1978 bytes', async () => {
        // A storage key is token (4) + bucket "b" (1) + zero (1) + key; a hint key adds "n2" (2) + zero (1).
        const fits = 'k'.repeat(1978 - 6 - 3);
        await store.apply([hintPut('n2', 'b', fits, v1)]);
        expect(store.getHint('n2', 'b', fits)).to.deep.equal(v1);
        expect(store.hintsFor('n2', 10).map((h) => h.key)).to.deep.equal([fits]);

        // One byte more still fits as an object, but not as a hint: the whole batch is refused.
        const over = `${fits}k`;
        const error = await rejection(store.apply([put('b', over, v1), hintPut('n2', 'b', over, v1)]));
        expectStorageError(error, /over the 1978-byte limit/);
        expect((error as ChorusError).details).to.include({ index: 1, target: 'n2' });
        expect(store.get('b', over)).to.equal(undefined);
        expect(store.getHint('n2', 'b', over)).to.equal(undefined);
        await store.apply([put('b', over, v1)]);
        expect(store.get('b', over)).to.deep.equal(v1);
      });

      it('resolves every one of many mixed applies issued at once, and stores them all', async () => {
        const applies = Array.from({ length: 500 }, (_, i) =>
          store.apply(i % 2 === 0 ? [put('c', `k${i}`, object(['n1/e1', i + 1, null]))] : [hintPut(`n${i % 5}`, 'c', `k${i}`, object(['n1/e1', i + 1, null]))]),
        );
        await Promise.all(applies);
        expect(store.count()).to.equal(250);
        expect(targetsOf(store).reduce((sum, t) => sum + t.count, 0)).to.equal(250);
        expect(store.getHint('n1', 'c', 'k1')).to.deep.equal(object(['n1/e1', 2, null]));
        expect(store.getHint('n4', 'c', 'k499')).to.deep.equal(object(['n1/e1', 500, null]));
      });

      it('returns fresh objects from getHint and hintsFor, which neither callers nor later writes change', async () => {
        await store.apply([hintPut('n2', 'b', 'k', object(['n1/e1', 1, text('abc')]))]);
        for (const read of [store.getHint('n2', 'b', 'k'), store.hintsFor('n2', 1)[0]?.object]) {
          const value = read?.entries[0]?.values[0];
          expect(value).to.be.instanceOf(Uint8Array);
          value?.fill(0);
          (read?.entries as unknown as { counter: number }[])[0]!.counter = 99;
        }
        expect(store.getHint('n2', 'b', 'k')).to.deep.equal(object(['n1/e1', 1, text('abc')]));
        expect(store.hintsFor('n2', 1)).to.deep.equal([{ bucket: 'b', key: 'k', object: object(['n1/e1', 1, text('abc')]) }]);
        expect(store.getHint('n2', 'b', 'k')).to.not.equal(store.getHint('n2', 'b', 'k'));

        const before = store.getHint('n2', 'b', 'k');
        const listed = store.hintsFor('n2', 1);
        await store.apply([hintPut('n2', 'b', 'k', object(['n1/e1', 2, text('two')]))]);
        expect(before).to.deep.equal(object(['n1/e1', 1, text('abc')]));
        expect(listed).to.deep.equal([{ bucket: 'b', key: 'k', object: object(['n1/e1', 1, text('abc')]) }]);
      });

      it('is not changed by mutating the written hint after apply was called', async () => {
        const value = text('abc');
        const written = object(['n1/e1', 1, value]);
        const applying = store.apply([hintPut('n2', 'b', 'k', written)]);
        value.fill(0);
        (written.entries as unknown as { counter: number }[])[0]!.counter = 99;
        await applying;
        expect(store.getHint('n2', 'b', 'k')).to.deep.equal(object(['n1/e1', 1, text('abc')]));
      });
    });

    describe('meta', () => {
      it('returns undefined for an unknown name, and the value after a set', async () => {
        expect(store.getMeta('node-id')).to.equal(undefined);
        await store.setMeta('node-id', text('n-1'));
        expect(store.getMeta('node-id')).to.deep.equal(text('n-1'));
        await store.setMeta('node-id', text('n-2'));
        expect(store.getMeta('node-id')).to.deep.equal(text('n-2'));
        await store.setMeta('empty', new Uint8Array(0));
        expect(store.getMeta('empty')).to.deep.equal(new Uint8Array(0));
      });

      it('keeps metadata out of object scans and counts', async () => {
        await store.setMeta('epoch', text('e1'));
        expect(store.count()).to.equal(0);
        expect([...store.scan(0, 0)]).to.deep.equal([]);
      });

      it('does not alias metadata values in either direction', async () => {
        const value = bytes(1, 2, 3);
        const setting = store.setMeta('m', value);
        value.fill(0);
        await setting;
        const read = store.getMeta('m');
        expect(read).to.deep.equal(bytes(1, 2, 3));
        read?.fill(9);
        expect(store.getMeta('m')).to.deep.equal(bytes(1, 2, 3));
        const buffer = Buffer.from([4, 5]);
        await store.setMeta('buffer', buffer);
        buffer.fill(0);
        expect(Array.from(store.getMeta('buffer') ?? [])).to.deep.equal([4, 5]);
      });
    });

    describe('close', () => {
      it('refuses every operation with StorageError once closed, and closes idempotently', async () => {
        await store.close();
        await store.close();
        expectStorageError(thrown(() => store.get('b', 'k')), /closed/);
        expectStorageError(thrown(() => store.scan(0, 0)), /closed/);
        expectStorageError(thrown(() => store.count()), /closed/);
        expectStorageError(thrown(() => store.getMeta('m')), /closed/);
        expectStorageError(thrown(() => store.getHint('n2', 'b', 'k')), /closed/);
        expectStorageError(thrown(() => store.hintsFor('n2', 10)), /closed/);
        expectStorageError(thrown(() => store.hintTargets()), /closed/);
        expectStorageError(await rejection(store.apply([hintPut('n2', 'b', 'k', object(['n/e', 1, null]))])), /closed/);
        expectStorageError(await rejection(store.apply([put('b', 'k', object(['n/e', 1, null]))])), /closed/);
        expectStorageError(await rejection(store.setMeta('m', bytes(1))), /closed/);
      });
    });

    if (reopen !== undefined) {
      describe('persistence', () => {
        it('keeps every acknowledged object and metadata value across close and reopen', async () => {
          const data = scanData();
          await store.apply(data.map((e) => put(e.bucket, e.key, e.object)));
          await store.apply([del(data[0]!.bucket, data[0]!.key)]);
          await store.setMeta('node-id', text('n-1'));
          store = await reopen(store);
          const expected = expectedScan(data.slice(1), 0, 0);
          expect(store.count()).to.equal(expected.length);
          expect([...store.scan(0, 0)]).to.deep.equal(expected);
          expect(store.get(data[0]!.bucket, data[0]!.key)).to.equal(undefined);
          expect(store.get(data[1]!.bucket, data[1]!.key)).to.deep.equal(data[1]!.object);
          expect(store.getMeta('node-id')).to.deep.equal(text('n-1'));
        });

        it('keeps every acknowledged hint across close and reopen, apart from the objects', async () => {
          const data = scanData();
          await store.apply([
            ...data.map((e) => hintPut('n2', e.bucket, e.key, e.object)),
            hintPut('n3', 'b', 'k', object(['n1/e1', 1, text('for n3')])),
            put('b', 'k', object(['n1/e1', 1, text('own')])),
          ]);
          await store.apply([hintDel('n2', data[0]!.bucket, data[0]!.key)]);
          const targets = targetsOf(store);
          store = await reopen(store);
          expect(store.hintsFor('n2', 10_000)).to.deep.equal(expectedHints(data.slice(1)));
          expect(store.getHint('n2', data[0]!.bucket, data[0]!.key)).to.equal(undefined);
          expect(store.getHint('n3', 'b', 'k')).to.deep.equal(object(['n1/e1', 1, text('for n3')]));
          expect(targetsOf(store)).to.deep.equal(targets);
          expect(targets.map((t) => [t.target, t.count])).to.deep.equal([['n2', data.length - 1], ['n3', 1]]);
          expect(store.count()).to.equal(1);
          expect(store.get('b', 'k')).to.deep.equal(object(['n1/e1', 1, text('own')]));
        });

        it('finishes writes already issued before resolving close', async () => {
          const applying = store.apply([put('b', 'k', object(['n/e', 1, text('v')]))]);
          const settingMeta = store.setMeta('m', bytes(1));
          store = await reopen(store);
          await Promise.all([applying, settingMeta]);
          expect(store.get('b', 'k')).to.deep.equal(object(['n/e', 1, text('v')]));
          expect(store.getMeta('m')).to.deep.equal(bytes(1));
        });
      });
    }
  });
}
