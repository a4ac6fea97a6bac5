/**
 * Proves that object digests and key hashes are canonical, injective in practice, and pinned.
 *
 * How: a reference encoder written here, straight from the byte layout in digest.ts's header
 * (plain concatenation and one SHA-256), must agree with `objectDigest` on random objects and
 * on objects large enough to take its streaming path; named mutations (a value byte, a
 * counter, an actor, sibling order, a tombstone for an empty value, a value moved between
 * entries) must each change the digest; on random pairs from a small space, where near-equal
 * objects are common, digests are equal exactly when the objects are. Key hashes are checked
 * against the MurmurHash3 x86_128 of `murmurhash3js-revisited` over the documented bytes.
 * Golden values (checked once against an independent Python encoding) pin both formats,
 * because persisted segment hashes and every peer's trees depend on them.
 *
 * Random properties print their seed; `SEED=<n>` repeats a run.
 */

import { createHash } from 'node:crypto';

import { expect } from 'chai';
import fc from 'fast-check';
import murmurHash3 from 'murmurhash3js-revisited';

import { equalDvv, type KvObject, type Sibling } from '../../lib/clock/index.js';
import { DIGEST_BYTES, KEY_HASH_BYTES, keyHash, objectDigest } from '../../lib/merkle/index.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/merkle/digest.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

const utf8 = new TextEncoder();
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The object digest's bytes, written the plain way from the documented layout. */
function referenceDigest(object: KvObject): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x01)];
  const u32 = (v: number): Uint8Array => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  parts.push(u32(object.entries.length));
  for (const entry of object.entries) {
    const actor = utf8.encode(entry.actor);
    parts.push(u32(actor.length), actor, u32(Math.floor(entry.counter / 2 ** 32)), u32(entry.counter % 2 ** 32), u32(entry.values.length));
    for (const value of entry.values) {
      if (value === null) parts.push(Uint8Array.of(0));
      else parts.push(Uint8Array.of(1), u32(value.length), value);
    }
  }
  return new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest().subarray(0, 16));
}

interface Murmur128 {
  readonly x86: { hash128(bytes: Uint8Array, seed?: number): string };
}

/** The key hash as documented: MurmurHash3 x86_128 of bucket ‖ 0 ‖ key ‖ digest, words little-endian. */
function referenceKeyHash(bucket: string, key: string, digest: Uint8Array): Uint8Array {
  const input = Buffer.concat([utf8.encode(`${bucket}\u0000${key}`), digest]);
  const words = (murmurHash3 as unknown as Murmur128).x86.hash128(input, 0);
  const out = Buffer.alloc(16);
  for (let w = 0; w < 4; w++) out.writeUInt32LE(parseInt(words.slice(w * 8, w * 8 + 8), 16), w * 4);
  return new Uint8Array(out);
}

const sameSibling = (x: Sibling, y: Sibling): boolean => (x === null || y === null ? x === y : Buffer.from(x).equals(Buffer.from(y)));

function object(...entries: [string, number, Sibling[]][]): KvObject {
  return { entries: entries.map(([actor, counter, values]) => ({ actor, counter, values })) };
}

const bytes = (s: string): Uint8Array => utf8.encode(s);

/** Objects from a small space (2 actors, short values over 2 letters), so near-equal pairs are common. */
const smallSibling: fc.Arbitrary<Sibling> = fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 2, min: 97, max: 98 }));
const smallObject: fc.Arbitrary<KvObject> = fc
  .subarray(['a', 'b'])
  .chain((actors) =>
    fc.tuple(...actors.map((actor) => fc.record({ actor: fc.constant(actor), counter: fc.integer({ min: 1, max: 2 }), values: fc.array(smallSibling, { maxLength: 2 }) }))),
  )
  .map((entries) => ({ entries }));

const anyObject: fc.Arbitrary<KvObject> = fc
  .uniqueArray(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }), { maxLength: 4 })
  .chain((actors) =>
    fc.tuple(
      ...[...actors].sort().map((actor) =>
        fc.record({
          actor: fc.constant(actor),
          counter: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 2 ** 52 })),
          values: fc.array(fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 300 })), { maxLength: 4 }),
        }),
      ),
    ),
  )
  .map((entries) => ({ entries }));

describe('merkle: object digests and key hashes', () => {
  it('are pinned by golden values', () => {
    const a = object(['n1-epoch1', 3, [bytes('hello'), null]], ['n2-epoch1', 1, []]);
    const tombstone = object(['ö-actor', 2 ** 40 + 5, [null]]);
    expect(hex(objectDigest(a))).to.equal('1a9c8f356ad850efe8fb38392b015402');
    expect(hex(objectDigest(object()))).to.equal('957b88b12730e646e0f33d3618b77dfa');
    expect(hex(objectDigest(tombstone))).to.equal('ae5ed2d4d686df303e97b0fc96580bd2');
    expect(hex(keyHash('users', 'alice', objectDigest(a)))).to.equal('173d22dcb771facb20027971fc87f60b');
    expect(hex(keyHash('bücket', 'ключ', objectDigest(tombstone)))).to.equal('81f2d5095f15a4af31cf297996997fb2');
  });

  it('have the documented sizes and come back as plain Uint8Arrays', () => {
    const digest = objectDigest(object(['a', 1, [bytes('x')]]));
    expect(digest).to.have.length(DIGEST_BYTES);
    expect(keyHash('b', 'k', digest)).to.have.length(KEY_HASH_BYTES);
    expect(Object.getPrototypeOf(digest)).to.equal(Uint8Array.prototype);
  });

  it('follow the documented byte layout on random objects', () => {
    check(
      fc.property(anyObject, (o) => {
        expect(hex(objectDigest(o))).to.equal(hex(referenceDigest(o)));
      }),
      300,
    );
  });

  it('follow the layout when an object is too large for one buffer (the streaming path)', () => {
    const filled = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);
    const cases = [
      object(['a', 3, [filled(65_536, 1), filled(65_535, 2), null]]),
      object(['a', 2, [filled(70_000, 3)]], ['b', 9, [filled(10, 4), filled(64 * 1024 - 20, 5)]]),
      object(...Array.from({ length: 40 }, (_, i): [string, number, Sibling[]] => [`actor-${String(i).padStart(2, '0')}`, i + 1, [filled(3000, i)]])),
      object(['x'.repeat(30_000), 1, [filled(40_000, 6)]]),
      object(['a', 1, [filled(1024 * 1024, 7)]]),
    ];
    for (const o of cases) expect(hex(objectDigest(o))).to.equal(hex(referenceDigest(o)));
  });

  it('change with every change to the object', () => {
    const base = object(['a', 3, [bytes('v3'), bytes('v2')]], ['b', 1, [null]]);
    const variants: [string, KvObject][] = [
      ['a value byte', object(['a', 3, [bytes('v3'), bytes('v1')]], ['b', 1, [null]])],
      ['a counter', object(['a', 4, [bytes('v3'), bytes('v2')]], ['b', 1, [null]])],
      ['an actor', object(['c', 3, [bytes('v3'), bytes('v2')]], ['b', 1, [null]])],
      ['sibling order (dots move with it)', object(['a', 3, [bytes('v2'), bytes('v3')]], ['b', 1, [null]])],
      ['a tombstone for an empty value', object(['a', 3, [bytes('v3'), bytes('v2')]], ['b', 1, [new Uint8Array(0)]])],
      ['a value moved to another entry', object(['a', 3, [bytes('v3')]], ['b', 1, [null, bytes('v2')]])],
      ['a dropped sibling', object(['a', 3, [bytes('v3')]], ['b', 1, [null]])],
      ['a dropped entry', object(['a', 3, [bytes('v3'), bytes('v2')]])],
      ['bytes shifted between values', object(['a', 3, [bytes('v3v'), bytes('2')]], ['b', 1, [null]])],
      ['a counter past 2^32', object(['a', 3 + 2 ** 32, [bytes('v3'), bytes('v2')]], ['b', 1, [null]])],
    ];
    const digests = new Set([hex(objectDigest(base)), ...variants.map(([, o]) => hex(objectDigest(o)))]);
    expect(digests.size, 'every variant has its own digest').to.equal(variants.length + 1);
    const copy = object(['a', 3, [bytes('v3'), bytes('v2')]], ['b', 1, [null]]);
    expect(hex(objectDigest(copy))).to.equal(hex(objectDigest(base)));
  });

  it('are equal exactly when the objects are (random pairs from a small space)', () => {
    check(
      fc.property(smallObject, smallObject, fc.boolean(), (a, other, copy) => {
        // Half the pairs are an object and a deep copy of it (fresh arrays, equal bytes).
        const b = copy ? object(...a.entries.map((e): [string, number, Sibling[]] => [e.actor, e.counter, e.values.map((v) => (v === null ? null : new Uint8Array(v)))])) : other;
        const same = equalDvv(a, b, sameSibling);
        expect(hex(objectDigest(a)) === hex(objectDigest(b)), JSON.stringify([a, b])).to.equal(same);
      }),
      2000,
    );
  });

  it('key hashes are MurmurHash3 x86_128 of bucket, 0, key and digest', () => {
    check(
      fc.property(
        fc.string({ maxLength: 20, unit: 'grapheme' }).filter((s) => !s.includes('\u0000')),
        fc.string({ maxLength: 80, unit: 'grapheme' }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (bucket, key, digest) => {
          expect(hex(keyHash(bucket, key, digest))).to.equal(hex(referenceKeyHash(bucket, key, digest)));
        },
      ),
      500,
    );
    // Long keys grow the hasher's buffer.
    const long = 'κ'.repeat(3000);
    const digest = new Uint8Array(16).fill(9);
    expect(hex(keyHash('b', long, digest))).to.equal(hex(referenceKeyHash('b', long, digest)));
  });

  it('key hashes tell keys, buckets and versions apart', () => {
    const d1 = objectDigest(object(['a', 1, [bytes('x')]]));
    const d2 = objectDigest(object(['a', 2, [bytes('x')]]));
    const hashes = [keyHash('b', 'k1', d1), keyHash('b', 'k2', d1), keyHash('b', 'k1', d2), keyHash('b2', 'k1', d1), keyHash('b', '2k1', d1)];
    expect(new Set(hashes.map(hex)).size).to.equal(hashes.length);
  });
});
