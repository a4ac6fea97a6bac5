/**
 * Proves that `scanCbor` accepts exactly the CBOR we mean to hand to cbor-x, and says why
 * it refuses the rest, without ever throwing or recursing.
 *
 * How: fixed byte vectors written by hand (many from RFC 8949 Appendix A), so the scanner is
 * checked against the standard rather than against cbor-x echoing itself; one vector per
 * refusal rule with the reason it must give; inputs nested ten thousand deep and headers
 * claiming 2^60 elements, timed; and seeded properties: random bytes never make the scan
 * throw, cbor-x's encoding of random plain values is always accepted, and whatever the scan
 * accepts (from random mutations of valid frames) cbor-x decodes without throwing.
 */

import { expect } from 'chai';
import { Decoder, Encoder } from 'cbor-x';
import fc from 'fast-check';

import { scanCbor, type ScanLimits } from '../../lib/codec/cbor-scan.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/codec/cbor-scan.spec.ts)`);

const WIRE: ScanLimits = { depthMax: 16, itemsMax: 1_000_000 };
const VALUE: ScanLimits = { depthMax: 256, itemsMax: 1_000_000, allowTags: true, allowBigInts: true, allowNonTextKeys: true };

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of arrays) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A CBOR text string with a one-byte length header (strings here are short). */
function text(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  return bytes.length < 24 ? concat([0x60 | bytes.length], bytes) : concat([0x78, bytes.length], bytes);
}

/** A map header for up to 255 entries. */
function mapHeader(entries: number): number[] {
  return entries < 24 ? [0xa0 | entries] : [0xb8, entries];
}

/** `depth` nested one-element arrays around a zero, or maps keyed "a". */
function nested(kind: 'array' | 'map', depth: number): Uint8Array {
  const open = kind === 'array' ? [0x81] : [0xa1, 0x61, 0x61];
  const out = new Uint8Array(depth * open.length + 1);
  for (let i = 0; i < depth; i++) out.set(open, i * open.length);
  return out;
}

const plainEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });
const plainDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

describe('codec/cbor-scan', () => {
  describe('accepts well-formed plain data', () => {
    const vectors: [string, string][] = [
      ['0', '00'],
      ['23', '17'],
      ['24', '1818'],
      ['1000', '1903e8'],
      ['1000000', '1a000f4240'],
      ['2^53 - 1 in 8 bytes', '1b001fffffffffffff'],
      ['-1', '20'],
      ['-1000', '3903e7'],
      ['-(2^53 - 1) in 8 bytes', '3b001ffffffffffffe'],
      ['false, true, null, undefined', '84f4f5f6f7'],
      ['half float 1.0', 'f93c00'],
      ['single float 100000.0', 'fa47c35000'],
      ['double 1.1', 'fb3ff199999999999a'],
      ['empty byte string', '40'],
      ['byte string', '4401020304'],
      ['empty text', '60'],
      ['text "IETF"', '6449455446'],
      ['text "ü"', '62c3bc'],
      ['text "水"', '63e6b0b4'],
      ['text U+10151', '64f0908591'],
      ['empty array', '80'],
      ['[1, [2, 3], [4, 5]]', '8301820203820405'],
      ['{"a": 1, "b": [2, 3]}', 'a26161016162820203'],
      ['non-preferred length header', '780161'],
      ['text "__proto__" as a value', 'a16161695f5f70726f746f5f5f'],
      ['key "constructor"', 'a16b636f6e7374727563746f7201'],
    ];
    for (const [name, bytes] of vectors) {
      it(name, () => expect(scanCbor(hex(bytes), WIRE)).to.equal(undefined));
    }

    it('a typical message as cbor-x encodes it', () => {
      const message = { t: 'put', id: 7, bucket: 'b', key: 'k', value: new Uint8Array(100), timeoutMs: 5000 };
      expect(scanCbor(plainEncoder.encode(message), WIRE)).to.equal(undefined);
    });

    it('nesting exactly at the limit, with keys of inner and outer maps independent', () => {
      expect(scanCbor(nested('array', 16), WIRE)).to.equal(undefined);
      expect(scanCbor(nested('map', 16), WIRE)).to.equal(undefined);
      expect(scanCbor(plainEncoder.encode({ a: { a: 1, b: 2 }, b: { a: { a: 3 } } }), WIRE)).to.equal(undefined);
    });

    it('keys that differ only by a leading byte-order mark, in small and large maps', () => {
      const small = { '\ufeffa': 1, a: 2 };
      const large = { ...small, ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i])) };
      expect(scanCbor(plainEncoder.encode(small), WIRE)).to.equal(undefined);
      expect(scanCbor(plainEncoder.encode(large), WIRE)).to.equal(undefined);
    });

    it('many maps open at once, each full of keys the others share', () => {
      const keys = (): Record<string, number> => Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`key${i}`, i]));
      let value: Record<string, unknown> = { ...keys(), kez0: true };
      for (let level = 0; level < 12; level++) value = { ...keys(), zz: value };
      const bytes = Uint8Array.from(plainEncoder.encode(value));
      expect(scanCbor(bytes, WIRE)).to.equal(undefined);
      bytes.set(new TextEncoder().encode('key0'), Buffer.from(bytes).lastIndexOf('kez0'));
      expect(scanCbor(bytes, WIRE)).to.equal('duplicate map key');
    });

    it('large maps with distinct keys, and scans after them start clean', () => {
      const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, { [`k${i}`]: i }]));
      expect(scanCbor(plainEncoder.encode(big), WIRE)).to.equal(undefined);
      expect(scanCbor(plainEncoder.encode({ k0: 1, k1: 2 }), WIRE)).to.equal(undefined);
    });
  });

  describe('refuses, with a reason', () => {
    const cases: [string, string, string][] = [
      ['empty input', '', 'truncated'],
      ['trailing bytes', '0000', 'trailing bytes'],
      ['a second item after a map', 'a0a0', 'trailing bytes'],
      ['a one-byte argument cut off', '18', 'truncated'],
      ['an eight-byte argument cut off', '1b000000', 'truncated'],
      ['a float cut off', 'fb3ff1', 'truncated'],
      ['an array claiming more elements than bytes remain', '830102', 'length exceeds buffer'],
      ['an array whose last element is cut off', '82 1a0001 1a00', 'truncated'],
      ['a map missing its value', 'a26161016162', 'truncated'],
      ['reserved additional info 28', '1c', 'reserved additional info 28'],
      ['reserved additional info 29', '5d', 'reserved additional info 29'],
      ['reserved additional info 30', 'fe', 'reserved additional info 30'],
      ['an indefinite-length byte string', '5f4101ff', 'indefinite-length byte string not allowed'],
      ['an indefinite-length text string', '7f6161ff', 'indefinite-length text string not allowed'],
      ['an indefinite-length array', '9f01ff', 'indefinite-length array not allowed'],
      ['an indefinite-length map', 'bf616101ff', 'indefinite-length map not allowed'],
      ['a break outside anything', 'ff', 'unexpected break'],
      ['additional info 31 on an integer', '1f', 'additional info 31 is not valid for major type 0'],
      ['simple value 0', 'e0', 'invalid simple value'],
      ['simple value 19', 'f3', 'invalid simple value'],
      ['a two-byte simple value', 'f820', 'invalid simple value'],
      ['false in the two-byte form', 'f814', 'invalid simple value'],
      ['2^53', '1b0020000000000000', 'integer outside the safe range'],
      ['-(2^53)', '3b001fffffffffffff', 'integer outside the safe range'],
      ['2^64 - 1', '1bffffffffffffffff', 'integer outside the safe range'],
      ['a byte string claiming 2^60 bytes', '5b1000000000000000', 'length exceeds buffer'],
      ['a text string claiming 2^32 - 1 bytes', '7affffffff61', 'length exceeds buffer'],
      ['an array claiming 2^60 elements', '9b100000000000000001', 'length exceeds buffer'],
      ['a map claiming 2^60 entries', 'bb10000000000000006161', 'length exceeds buffer'],
      ['a map claiming more entries than bytes allow', 'a3616101', 'length exceeds buffer'],
      ['an integer map key', 'a10101', 'map key is not a text string'],
      ['a byte string map key', 'a1416101', 'map key is not a text string'],
      ['an array map key', 'a18001', 'map key is not a text string'],
      ['a duplicate key', 'a26161016161 02', 'duplicate map key'],
      ['a duplicate key behind a longer header', 'a2616101780161 02', 'duplicate map key'],
      ['key __proto__', 'a1695f5f70726f746f5f5f01', 'map key __proto__ not allowed'],
      ['a nested key __proto__', 'a16161a1695f5f70726f746f5f5fa0', 'map key __proto__ not allowed'],
      ['a stray continuation byte', '6180', 'text string is not valid UTF-8'],
      ['a cut-off two-byte sequence', '61c3', 'text string is not valid UTF-8'],
      ['an overlong NUL', '62c080', 'text string is not valid UTF-8'],
      ['a UTF-8 encoded surrogate', '63eda080', 'text string is not valid UTF-8'],
      ['a code point past U+10FFFF', '64f4908080', 'text string is not valid UTF-8'],
      ['invalid UTF-8 in a key', 'a161ff01', 'text string is not valid UTF-8'],
    ];
    for (const [name, bytes, reason] of cases) {
      it(name, () => expect(scanCbor(hex(bytes), WIRE)).to.equal(reason));
    }

    it('a duplicate key in a map past the pairwise size, at either end', () => {
      const keys = Array.from({ length: 40 }, (_, i) => `key${i}`);
      for (const duplicateAt of [1, 17, 39]) {
        const entries = keys.map((k, i) => concat(text(i === duplicateAt ? 'key0' : k), [0x01]));
        expect(scanCbor(concat(mapHeader(40), ...entries), WIRE)).to.equal('duplicate map key');
      }
    });

    it('nesting one past the limit, naming the limit', () => {
      expect(scanCbor(nested('array', 17), WIRE)).to.equal('nesting deeper than 16');
      expect(scanCbor(nested('map', 17), WIRE)).to.equal('nesting deeper than 16');
      expect(scanCbor(nested('array', 3), { depthMax: 2, itemsMax: 10 })).to.equal('nesting deeper than 2');
    });

    it('empty containers count toward depth, as cbor-x recurses into them too', () => {
      expect(scanCbor(hex('8180'), { depthMax: 1, itemsMax: 10 })).to.equal('nesting deeper than 1');
    });

    it('nesting 10,000 deep, quickly and without throwing, even where deep nesting is allowed', () => {
      const started = performance.now();
      for (const kind of ['array', 'map'] as const) {
        expect(scanCbor(nested(kind, 10_000), WIRE)).to.equal('nesting deeper than 16');
        expect(scanCbor(nested(kind, 10_000), { ...WIRE, depthMax: 1_000_000 })).to.equal(undefined);
        const cut = nested(kind, 10_000);
        const reason = scanCbor(cut.subarray(0, cut.length - 1), { ...WIRE, depthMax: 1_000_000 });
        expect(reason).to.be.oneOf(['truncated', 'length exceeds buffer']);
      }
      expect(performance.now() - started).to.be.below(1000);
    });

    it('more items than allowed, counting elements of nested arrays and map entries', () => {
      const limits = { depthMax: 16, itemsMax: 5 };
      expect(scanCbor(hex('83010203'), { ...limits, itemsMax: 3 })).to.equal(undefined);
      expect(scanCbor(hex('8401020304'), { ...limits, itemsMax: 3 })).to.equal('too many items');
      expect(scanCbor(hex('82820102810 3'), limits)).to.equal(undefined);
      expect(scanCbor(hex('828201028203 04'), limits)).to.equal('too many items');
      expect(scanCbor(hex('a2616101616282 0203'), { ...limits, itemsMax: 3 })).to.equal('too many items');
    });
  });

  describe('tags', () => {
    const wireRefused: [string, string][] = [
      ['tag 0 (date string)', 'c0 6130'],
      ['tag 1 (epoch date)', 'c1 1a514b67b0'],
      ['tag 2 (bignum)', 'c2 4101'],
      ['tag 27 (named object: Error, RegExp)', 'd81b 8265 4572726f72 6178'],
      ['tag 35 (regular expression)', 'd823 6161'],
      ['tag 258 (Set)', 'd90102 8101'],
      ['tag 259 (Map)', 'd90103 a10101'],
      ['tag 55799 (self-described CBOR)', 'd9d9f7 01'],
    ];
    for (const [name, bytes] of wireRefused) {
      const tag = name.match(/tag (\d+)/)![1]!;
      it(`refuses ${name} on the wire, accepts it in a value`, () => {
        expect(scanCbor(hex(bytes), WIRE)).to.equal(`tag ${tag} not allowed`);
        expect(scanCbor(hex(bytes), VALUE)).to.equal(undefined);
      });
    }

    it('refuses every typed-array tag (64 to 87) on the wire', () => {
      for (let tag = 64; tag <= 87; tag++) {
        expect(scanCbor(concat([0xd8, tag, 0x44, 1, 2, 3, 4]), WIRE)).to.equal(`tag ${tag} not allowed`);
      }
    });

    it("refuses cbor-x's stateful tags even where tags are allowed", () => {
      const stateful = [6, 14, 15, 28, 29, 51, 105, 216, 224, 255, 27647, 28704, 32767, 0xdff9, 0xdffe, 0xdfff, 0xe000, 0xffff];
      for (const tag of stateful) {
        const header = tag < 256 ? [0xd8, tag] : [0xd9, tag >> 8, tag & 0xff];
        expect(scanCbor(concat(header, [0x01]), VALUE), `tag ${tag}`).to.equal(`tag ${tag} not allowed`);
        expect(scanCbor(concat(header, [0x01]), WIRE), `tag ${tag}`).to.equal(`tag ${tag} not allowed`);
      }
      expect(scanCbor(hex('da53687264 01'), VALUE)).to.equal(`tag ${0x53687264} not allowed`);
      expect(scanCbor(hex('da70000000 01'), VALUE)).to.equal(`tag ${0x70000000} not allowed`);
      expect(scanCbor(hex('db0000000100000000 01'), VALUE)).to.equal(`tag ${2 ** 32} not allowed`);
    });

    it('count as a level of nesting where allowed', () => {
      expect(scanCbor(hex('81c101'), { ...VALUE, depthMax: 2 })).to.equal(undefined);
      expect(scanCbor(hex('81c1c101'), { ...VALUE, depthMax: 2 })).to.equal('nesting deeper than 2');
    });

    it('need their content', () => {
      expect(scanCbor(hex('c1'), VALUE)).to.equal('truncated');
    });
  });

  describe('user-value relaxations', () => {
    it('accept 64-bit integers beyond the safe range only when asked', () => {
      for (const bytes of ['1b0020000000000000', '1bffffffffffffffff', '3bffffffffffffffff']) {
        expect(scanCbor(hex(bytes), VALUE)).to.equal(undefined);
        expect(scanCbor(hex(bytes), { ...WIRE, allowBigInts: true })).to.equal(undefined);
      }
    });

    it('accept keys of any type only when asked, still refusing duplicate and __proto__ text keys', () => {
      expect(scanCbor(hex('a20101 0202'), VALUE)).to.equal(undefined);
      expect(scanCbor(hex('a1 8101 01'), VALUE)).to.equal(undefined);
      expect(scanCbor(hex('a26161 01 6161 02'), VALUE)).to.equal('duplicate map key');
      expect(scanCbor(hex('a1695f5f70726f746f5f5f01'), VALUE)).to.equal('map key __proto__ not allowed');
    });

    it('keep every other rule', () => {
      expect(scanCbor(hex('9f01ff'), VALUE)).to.equal('indefinite-length array not allowed');
      expect(scanCbor(hex('6180'), VALUE)).to.equal('text string is not valid UTF-8');
      expect(scanCbor(hex('e0'), VALUE)).to.equal('invalid simple value');
      expect(scanCbor(nested('array', 257), VALUE)).to.equal('nesting deeper than 256');
    });
  });

  describe('properties (seeded)', () => {
    const plainValue = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.maxSafeInteger(),
        fc.double(),
        fc.string({ unit: 'grapheme' }),
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(true, false, null, undefined),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(
          fc.string({ unit: 'grapheme' }).filter((k) => k !== '__proto__'),
          tie('value'),
          { maxKeys: 5, noNullPrototype: true },
        ),
      ),
    })).value;

    it('never throws on random bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, values) => {
          const reason = scanCbor(bytes, values ? VALUE : WIRE);
          expect(reason === undefined || typeof reason === 'string').to.equal(true);
        }),
        { seed, numRuns: 5000 },
      );
    });

    it("accepts cbor-x's encoding of any plain value nested within the limit", () => {
      fc.assert(
        fc.property(plainValue, (value) => {
          expect(scanCbor(plainEncoder.encode(value), { ...WIRE, depthMax: 64 })).to.equal(undefined);
        }),
        { seed, numRuns: 500 },
      );
    });

    it('whatever it accepts from mutated frames, cbor-x decodes without throwing', () => {
      const mutated = fc
        .tuple(plainValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
        .map(([value, edits]) => {
          const bytes = Uint8Array.from(plainEncoder.encode(value));
          for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          return bytes;
        });
      fc.assert(
        fc.property(mutated, (bytes) => {
          if (scanCbor(bytes, { ...WIRE, depthMax: 64 }) !== undefined) return;
          expect(() => plainDecoder.decode(bytes)).not.to.throw();
        }),
        { seed, numRuns: 3000 },
      );
    });
  });
});
