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
 * Expected scan results are computed here independently of lib/storage/keys.ts: the token
 * from lib/ring (pinned by its own golden spec) and the order from Node's Buffer.compare.
 */

import { expect } from 'chai';

import { ChorusError, StorageError } from '../../lib/base/errors.js';
import { Prng } from '../../lib/base/prng.js';
import type { KvObject, Sibling } from '../../lib/clock/object.js';
import type { StoreWrite } from '../../lib/node/ports.js';
import { keyToken } from '../../lib/ring/index.js';
import type { Store, StoreEntry } from '../../lib/storage/index.js';

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
