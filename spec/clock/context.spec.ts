/**
 * Proves that a causal context survives the trip to a client and back, and that the bytes a
 * client sends are checked strictly: anything but a CBOR array of `[actor, counter]` pairs,
 * strictly sorted by actor, with acceptable actors and counters and at most 1024 of them, is
 * refused with a reason and never throws.
 *
 * How: round trips on fixed and seeded random vectors; a table of malformed contexts, each
 * encoded with the project's CBOR encoder or written byte by byte where the encoder would not
 * produce it (tags, trailing bytes); and seeded random byte strings, which must either be
 * refused or decode to a vector that is valid and encodes back to the same meaning.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { CONTEXT_BYTES_MAX } from '../../lib/base/limits.js';
import { decodeContext, EMPTY_CONTEXT, encodeContext, validateVector, type VersionVector } from '../../lib/clock/index.js';
import { encode } from '../../lib/codec/cbor.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/clock/context.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

/** A CBOR text string header and bytes, for hand-built inputs. */
function text(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  if (bytes.length >= 24) throw new Error('test helper only writes short strings');
  return [0x60 | bytes.length, ...bytes];
}

const sortedVectorArb: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }), fc.integer({ min: 1, max: 2 ** 52 })), {
    selector: ([actor]) => actor,
    maxLength: 20,
  })
  .map((pairs) => pairs.sort(([x], [y]) => (x < y ? -1 : 1)));

describe('clock/context', () => {
  describe('round trip', () => {
    const examples: VersionVector[] = [
      [],
      [['a', 1]],
      [['n1@0001', 7], ['n2@0001', 2 ** 40], ['n3@0002', 2 ** 52]],
      [['Z', 1], ['a', 2], ['é', 3], ['日本', 4], ['😀', 5]],
      [['x'.repeat(256), 1]],
    ];
    for (const vv of examples) {
      it(`decodes what it encoded: ${JSON.stringify(vv).slice(0, 60)}`, () => {
        const decoded = decodeContext(encodeContext(vv));
        expect(decoded).to.deep.equal({ ok: true, value: vv });
      });
    }

    it('decodes what it encoded, for random sorted vectors', () => {
      check(
        fc.property(sortedVectorArb, (vv) => {
          expect(decodeContext(encodeContext(vv))).to.deep.equal({ ok: true, value: vv });
        }),
        500,
      );
    });

    it('reads no bytes, or an empty byte string, as no context', () => {
      for (const none of [undefined, null, new Uint8Array(0)]) {
        expect(decodeContext(none)).to.deep.equal({ ok: true, value: EMPTY_CONTEXT });
      }
      expect(EMPTY_CONTEXT).to.deep.equal([]);
      expect(Object.isFrozen(EMPTY_CONTEXT)).to.equal(true);
    });

    it('accepts the largest context: 1024 actors', () => {
      const vv: VersionVector = Array.from({ length: 1024 }, (_, i) => [`n${String(i).padStart(4, '0')}`, i + 1] as const);
      expect(decodeContext(encodeContext(vv))).to.deep.equal({ ok: true, value: vv });
    });
  });

  describe('refuses', () => {
    const encoded: [string, unknown][] = [
      ['a map', { a: 1 }],
      ['a string', 'a'],
      ['a number', 5],
      ['null', null],
      ['a byte string', new Uint8Array([0x80])],
      ['a pair that is not an array', ['a', 1]],
      ['a pair of three', [['a', 1, 2]]],
      ['a pair of one', [['a']]],
      ['a pair as a map', [{ actor: 'a', counter: 1 }]],
      ['unsorted actors', [['b', 1], ['a', 1]]],
      ['duplicate actors', [['a', 1], ['a', 2]]],
      ['a zero counter', [['a', 0]]],
      ['a negative counter', [['a', -1]]],
      ['a non-integer counter', [['a', 1.5]]],
      ['a counter over 2^52', [['a', 2 ** 52 + 1]]],
      ['a NaN counter', [['a', Number.NaN]]],
      ['an infinite counter', [['a', Number.POSITIVE_INFINITY]]],
      ['a counter that is a string', [['a', '1']]],
      ['a counter that is a boolean', [['a', true]]],
      ['an actor that is a number', [[1, 1]]],
      ['an empty actor', [['', 1]]],
      ['an actor of 257 bytes', [['x'.repeat(257), 1]]],
      ['an actor of 258 bytes in 129 two-byte characters', [['é'.repeat(129), 1]]],
      ['a pair nested one level too deep', [[['a', 1]]]],
      ['1025 actors', Array.from({ length: 1025 }, (_, i) => [`n${String(i).padStart(4, '0')}`, 1])],
    ];
    for (const [name, value] of encoded) {
      it(name, () => expectRefused(encode(value)));
    }

    const raw: [string, number[]][] = [
      ['a tag around the vector (tag 55799, self-described CBOR)', [0xd9, 0xd9, 0xf7, 0x81, 0x82, ...text('a'), 0x01]],
      ['a date tag around the vector', [0xc1, 0x80]],
      ['a bignum tag as a counter', [0x81, 0x82, ...text('a'), 0xc2, 0x41, 0x01]],
      ['a 64-bit counter beyond the safe integers', [0x81, 0x82, ...text('a'), 0x1b, 0x00, 0x40, 0, 0, 0, 0, 0, 0]],
      ['trailing bytes after the vector', [0x80, 0x00]],
      ['a truncated vector', [0x81, 0x82, ...text('a')]],
      ['an indefinite-length vector', [0x9f, 0x82, ...text('a'), 0x01, 0xff]],
      ['invalid UTF-8 in an actor', [0x81, 0x82, 0x61, 0xff, 0x01]],
      ['a lone break byte', [0xff]],
    ];
    for (const [name, bytes] of raw) {
      it(name, () => expectRefused(Uint8Array.from(bytes)));
    }

    it(`more than ${CONTEXT_BYTES_MAX} bytes, before decoding them`, () => {
      expectRefused(new Uint8Array(CONTEXT_BYTES_MAX + 1));
    });

    it('random bytes, or decodes them to a valid vector', () => {
      check(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
          const decoded = decodeContext(bytes);
          if (decoded.ok) {
            expect(validateVector(decoded.value).ok).to.equal(true);
            expect(decodeContext(encodeContext(decoded.value))).to.deep.equal(decoded);
          } else expect(decoded.reason).to.be.a('string').and.not.equal('');
        }),
        2000,
      );
    });

    it('valid contexts with one byte changed, or decodes them to a valid vector', () => {
      check(
        fc.property(sortedVectorArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (vv, at, byte) => {
          const bytes = encodeContext(vv);
          bytes[at % bytes.length] = byte;
          const decoded = decodeContext(bytes);
          if (decoded.ok) expect(validateVector(decoded.value).ok).to.equal(true);
        }),
        1000,
      );
    });
  });
});

function expectRefused(bytes: Uint8Array): void {
  const decoded = decodeContext(bytes);
  expect(decoded.ok, JSON.stringify(decoded)).to.equal(false);
  if (!decoded.ok) expect(decoded.reason).to.be.a('string').and.not.equal('');
}
