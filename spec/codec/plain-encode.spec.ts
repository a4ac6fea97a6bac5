/**
 * Holds the short encoding path (lib/codec/plain-encode.ts) to cbor-x: whatever it encodes
 * comes out byte for byte as cbor-x writes it; the hot messages of the wire take it; anything
 * it does not take falls back whole; and its results are views that later encodes never
 * overwrite, across slab boundaries too.
 *
 * How: seeded random values mixing what the path takes (ASCII strings and keys, 32-bit
 * integers, booleans, null, byte strings, arrays, plain objects) with what it must leave to
 * cbor-x (floats, large and unsafe integers, -0, non-ASCII and lone-surrogate strings,
 * undefined, Maps, Dates, bigints, deep nesting); then fixed messages and large values.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { decodeSafe, encode, encodeGeneral } from '../../lib/codec/cbor.js';
import { encodePlain } from '../../lib/codec/plain-encode.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/codec/plain-encode.spec.ts)`);

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

const leaf = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 5 }),
  fc.string({ unit: 'binary', maxLength: 5 }),
  fc.constantFrom('', 'x'.repeat(23), 'x'.repeat(24), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000), '\ud800', 'é'),
  fc.integer(),
  fc.constantFrom(0, -0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -(2 ** 53) + 1, 0.5, NaN, Infinity),
  fc.constantFrom(-(2 ** 32), -(2 ** 32) - 1, -(2 ** 32) + 0.5, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, 3 * 2 ** 32 + 6),
  fc.integer({ min: -(2 ** 33), max: -(2 ** 31) }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 40 }),
  fc.constantFrom(new Uint8Array(300), new Uint8Array(70_000), new Map([['a', 1]]), new Date(0), 10n, new Uint16Array(2)),
);

const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 5 }),
  object: fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('t', 'id', 'é', '1', '__proto__')), tie('node'), { maxKeys: 5, noNullPrototype: true }),
})).node;

describe('plain encoding path', () => {
  it('writes exactly the bytes cbor-x writes, or leaves the value to cbor-x', () => {
    let taken = 0;
    let left = 0;
    fc.assert(
      fc.property(value, (v) => {
        const plain = encodePlain(v);
        if (plain === undefined) {
          left++;
          return;
        }
        taken++;
        expect(hex(plain)).to.equal(hex(encodeGeneral(v)));
      }),
      { seed, numRuns: 3000 },
    );
    expect(taken, 'values the path took').to.be.greaterThan(100);
    expect(left, 'values it left to cbor-x').to.be.greaterThan(100);
  });

  it('takes the hot messages of the wire', () => {
    const v = new Uint8Array(100).fill(120);
    const messages = [
      { t: 'get', id: 7, b: 'ycsb', k: 'user1', r: 'quorum' },
      { t: 'put', id: 8, b: 'ycsb', k: 'user1', v, ctx: new Uint8Array(20), w: 2 },
      { t: 'get-ok', id: 7, found: true, values: [v, null], ctx: new Uint8Array(20) },
      { t: 'put-ok', id: 8, ctx: new Uint8Array(20), siblings: 1 },
      // Peer request ids are incarnation · 2^32 + n.
      { t: 'rget', from: 'n1', rid: 4_000_000_000, b: 'ycsb', k: 'user1', dg: true },
      { t: 'rget-ok', from: 'n2', rid: 3 * 2 ** 32 + 5, dg: [['n1/e1', 12, 1]] },
      { t: 'rput', from: 'n1', rid: 3 * 2 ** 32 + 6, b: 'ycsb', k: 'user1', obj: { entries: [{ actor: 'n1/e1', counter: 12, values: [v] }] } },
      { t: 'rput-ok', from: 'n2', rid: 3 * 2 ** 32 + 6 },
    ];
    for (const message of messages) {
      const plain = encodePlain(message);
      expect(plain, message.t).to.not.equal(undefined);
      expect(hex(plain as Uint8Array)).to.equal(hex(encodeGeneral(message)));
      expect(decodeSafe(encode(message))).to.deep.equal({ ok: true, value: message });
    }
  });

  it('is the path encode takes for plain values', () => {
    // A value over a slab's size leaves the next ones a fresh slab, so the three below share one.
    encodePlain({ big: new Uint8Array(70_000) });
    const message = { t: 'rput-ok', from: 'n2', rid: 6 };
    const before = encodePlain(message) as Uint8Array;
    const encoded = encode(message);
    const after = encodePlain(message) as Uint8Array;
    expect(encoded.buffer).to.equal(before.buffer);
    expect(after.buffer).to.equal(before.buffer);
    expect(encoded.byteOffset).to.equal(before.byteOffset + before.byteLength);
  });

  it('never overwrites what it returned, across slabs', () => {
    const kept: { bytes: Uint8Array; copy: string }[] = [];
    for (let i = 0; i < 5000; i++) {
      const message = { t: 'rget', from: 'n1', rid: i, b: 'bucket', k: `key-${i}`, big: new Uint8Array(i % 97 === 0 ? 40_000 : 10).fill(i & 0xff) };
      const bytes = encodePlain(message) as Uint8Array;
      kept.push({ bytes, copy: hex(bytes) });
    }
    for (const { bytes, copy } of kept) expect(hex(bytes)).to.equal(copy);
  });

  it('falls back whole when a value deep inside is not plain, and encodes it as before', () => {
    const odd = { t: 'x', list: [1, 2, { deep: [1.5, 'é'] }] };
    expect(encodePlain(odd)).to.equal(undefined);
    expect(hex(encode(odd))).to.equal(hex(encodeGeneral(odd)));
    let nested: unknown = 1;
    for (let i = 0; i < 40; i++) nested = [nested];
    expect(encodePlain(nested)).to.equal(undefined);
    expect(hex(encode(nested))).to.equal(hex(encodeGeneral(nested)));
    expect(() => encode({ f: () => 1 })).to.throw();
  });
});
