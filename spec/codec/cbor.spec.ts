/**
 * Proves that the CBOR codec round-trips plain data, returns only plain data, and answers
 * every hostile frame with `{ ok: false, reason }` instead of a throw, a stack overflow or a
 * polluted prototype; and that user values keep their tags while staying bounded in depth.
 *
 * How: round trips of fixed values of every kind, then of seeded random plain values, with
 * a walk that checks every decoded object's prototype; the exact bytes of byte strings, so a
 * tag 64 cannot slip in; hostile frames written byte by byte (every truncation, trailing
 * garbage, ten thousand levels of nesting, absurd lengths, each tag cbor-x would turn into
 * an object, indefinite lengths, `__proto__`, non-text and duplicate keys, bad UTF-8, unsafe
 * integers) followed each time by a good decode, to show cbor-x's shared state survived;
 * seeded random bytes and mutated frames; and the buffer ownership rules, by mutating inputs
 * and by encoding thousands of frames after the one under test.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { VALUE_DEPTH_MAX } from '../../lib/base/limits.js';
import { checkValueBytes, decodeSafe, decodeValue, encode, encodeValue, type DecodeResult } from '../../lib/codec/cbor.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/codec/cbor.spec.ts)`);

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
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

/** `depth` nested one-element arrays around a zero, or maps keyed "a". */
function nested(kind: 'array' | 'map', depth: number): Uint8Array {
  const open = kind === 'array' ? [0x81] : [0xa1, 0x61, 0x61];
  const out = new Uint8Array(depth * open.length + 1);
  for (let i = 0; i < depth; i++) out.set(open, i * open.length);
  return out;
}

function nestedValue(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function expectOk(result: DecodeResult): unknown {
  if (result.ok) return result.value;
  throw new Error(`expected a decoded value, got: ${result.reason}`);
}

function expectRefused(result: DecodeResult, reason?: string): void {
  if (result.ok) throw new Error(`expected a refusal, got a value: ${String(result.value)}`);
  if (reason !== undefined) expect(result.reason).to.equal(reason);
}

/** Decodes a private copy, so byte strings come back as plain Uint8Arrays over it. */
function roundTrip(value: unknown): unknown {
  return expectOk(decodeSafe(Uint8Array.from(encode(value))));
}

/** Walks a decoded wire value: only plain objects, plain arrays, Uint8Arrays and primitives. */
function expectPlain(value: unknown, path = '$'): void {
  if (value === null || typeof value !== 'object') {
    expect(['string', 'number', 'boolean', 'undefined', 'object'], path).to.include(typeof value);
    return;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (value instanceof Uint8Array) {
    expect(proto, path).to.equal(Uint8Array.prototype);
  } else if (Array.isArray(value)) {
    expect(proto, path).to.equal(Array.prototype);
    value.forEach((item, i) => expectPlain(item, `${path}[${i}]`));
  } else {
    expect(proto, path).to.equal(Object.prototype);
    for (const [key, item] of Object.entries(value)) expectPlain(item, `${path}.${key}`);
  }
}

const GOOD_MESSAGE = { t: 'put', id: 42, bucket: 'users', key: 'user:ü', value: new Uint8Array(100).fill(7), timeoutMs: 5000 };

/** After a hostile frame, a good one must still decode: cbor-x's shared state is intact. */
function expectDecoderHealthy(): void {
  expect(roundTrip(GOOD_MESSAGE)).to.deep.equal(GOOD_MESSAGE);
}

const plainValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    // cbor-x writes -0 as the integer 0 (its integer test is `x >>> 0 === x`), so -0 is not a round-trip value.
    fc.double().map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'grapheme-ascii', minLength: 60, maxLength: 200 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.constantFrom(true, false, null, undefined),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ unit: 'grapheme' }).filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 6, noNullPrototype: true },
    ),
  ),
})).value;

describe('codec/cbor', () => {
  describe('round trips plain data', () => {
    it('integers, including negative and the largest safe ones', () => {
      const ints = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
      for (const n of ints) {
        expect(roundTrip(n)).to.equal(n);
        expect(roundTrip(-n)).to.equal(-n === 0 ? 0 : -n);
      }
    });

    it('8-byte safe integers from other encoders decode as numbers, not bigints', () => {
      expect(expectOk(decodeSafe(hex('1b001fffffffffffff')))).to.equal(Number.MAX_SAFE_INTEGER);
      expect(expectOk(decodeSafe(hex('3b001ffffffffffffe')))).to.equal(Number.MIN_SAFE_INTEGER);
      expect(expectOk(decodeSafe(hex('1b0000000000000005')))).to.equal(5);
    });

    it('floats of every width', () => {
      for (const x of [0.5, -1.25, 1e300, -1e-300, Number.MIN_VALUE, 2 ** 53 + 2, Infinity, -Infinity]) {
        expect(roundTrip(x)).to.equal(x);
      }
      expect(roundTrip(NaN)).to.be.NaN;
      expect(expectOk(decodeSafe(hex('f93c00')))).to.equal(1);
      expect(expectOk(decodeSafe(hex('fa47c35000')))).to.equal(100000);
    });

    it('strings, ASCII and not, short and long', () => {
      for (const s of ['', 'a', 'ü', '水', '🎉', 'x'.repeat(100), 'é'.repeat(70), 'mixed ü 水 🎉 '.repeat(20)]) {
        expect(roundTrip(s)).to.equal(s);
      }
    });

    it('nested maps and arrays, null, booleans and undefined', () => {
      const value = {
        a: [1, [2, [3, { deep: true }]]],
        b: { c: null, d: false, e: true, f: undefined, g: [] as unknown[], h: {} },
        'ü key': 'ü value',
        constructor: 'just a key',
        toString: 'also a key',
      };
      expect(roundTrip(value)).to.deep.equal(value);
    });

    it('random plain values (seeded), which decode to plain data only', () => {
      fc.assert(
        fc.property(plainValue, (value) => {
          const decoded = roundTrip(value);
          expect(decoded).to.deep.equal(value);
          expectPlain(decoded);
        }),
        { seed, numRuns: 500 },
      );
    });
  });

  describe('byte strings', () => {
    it('encode as plain byte strings (major type 2, no tag 64), from Uint8Array and Buffer alike', () => {
      expect(toHex(encode(new Uint8Array([1, 2, 3])))).to.equal('43010203');
      expect(toHex(encode(Buffer.from([1, 2, 3])))).to.equal('43010203');
      expect(toHex(encode({ v: new Uint8Array(24) }))).to.equal(`a1617658 18${'00'.repeat(24)}`.replace(' ', ''));
    });

    it('decode as plain Uint8Arrays, even from a Buffer', () => {
      for (const input of [Uint8Array.from(encode(GOOD_MESSAGE)), Buffer.from(encode(GOOD_MESSAGE))]) {
        const decoded = expectOk(decodeSafe(input)) as { value: unknown };
        expect(Object.getPrototypeOf(decoded.value)).to.equal(Uint8Array.prototype);
        expect(decoded.value).to.deep.equal(new Uint8Array(100).fill(7));
      }
    });

    it('are views of a small input buffer, copies of a large one, or as asked', () => {
      const frame = Uint8Array.from(encode(GOOD_MESSAGE));
      const large = new Uint8Array(1024 * 1024);
      large.set(frame, 1000);
      const inLarge = large.subarray(1000, 1000 + frame.length);
      const valueOf = (bytes: Uint8Array, copyBytes?: boolean): Uint8Array =>
        (expectOk(decodeSafe(bytes, copyBytes === undefined ? {} : { copyBytes })) as { value: Uint8Array }).value;

      expect(valueOf(frame).buffer).to.equal(frame.buffer);
      expect(valueOf(inLarge).buffer).not.to.equal(large.buffer);
      expect(valueOf(inLarge, false).buffer).to.equal(large.buffer);

      const copied = valueOf(frame, true);
      frame.fill(0xee, frame.length - 110);
      expect(copied).to.deep.equal(new Uint8Array(100).fill(7));
    });
  });

  describe('encoded frames', () => {
    it('are never overwritten by later encodes, including one that grows the slab', () => {
      const first = encode(GOOD_MESSAGE);
      const snapshot = Uint8Array.from(first);
      const big = encode({ blob: new Uint8Array(1024 * 1024).fill(1), s: 'x'.repeat(1000) });
      const bigSnapshot = Uint8Array.from(big);
      for (let i = 0; i < 20_000; i++) encode({ i, s: `message ${i} ${'y'.repeat(i % 300)}` });
      expect(first).to.deep.equal(snapshot);
      expect(big).to.deep.equal(bigSnapshot);
    });

    it('do not pin a slab that one large frame grew', () => {
      encode({ blob: new Uint8Array(1024 * 1024) });
      const small = encode({ a: 1 });
      expect(small.buffer.byteLength).to.be.at.most(64 * 1024);
      expect(roundTrip({ s: 'z'.repeat(500) })).to.deep.equal({ s: 'z'.repeat(500) });
    });

    it('still come out right after an encode that threw', () => {
      expect(() => encode({ f: () => 1 })).to.throw();
      expect(roundTrip(GOOD_MESSAGE)).to.deep.equal(GOOD_MESSAGE);
    });
  });

  describe('refuses hostile frames without throwing', () => {
    afterEach(expectDecoderHealthy);

    it('random bytes (seeded), and decodes whatever it accepts to plain data', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          const result = decodeSafe(bytes);
          if (result.ok) expectPlain(result.value);
        }),
        { seed, numRuns: 5000 },
      );
    });

    it('random mutations of valid frames (seeded)', () => {
      const mutated = fc
        .tuple(plainValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
        .map(([value, edits]) => {
          const bytes = Uint8Array.from(encode(value));
          for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          return bytes;
        });
      fc.assert(
        fc.property(mutated, (bytes) => {
          const result = decodeSafe(bytes);
          if (result.ok) expectPlain(result.value);
        }),
        { seed, numRuns: 3000 },
      );
    });

    it('every truncation of a valid frame', () => {
      const frame = Uint8Array.from(encode([GOOD_MESSAGE, { t: 'get', id: 43, nested: { list: [1, -2, 3.5, 'ü'] } }]));
      for (let cut = 0; cut < frame.length; cut++) expectRefused(decodeSafe(frame.subarray(0, cut)));
    });

    it('trailing garbage', () => {
      const frame = Uint8Array.from(encode(GOOD_MESSAGE));
      for (const garbage of [[0x00], [0xff], [0xa0], [0x01, 0x02, 0x03]]) {
        expectRefused(decodeSafe(concat(frame, garbage)), 'trailing bytes');
      }
    });

    it('nesting 10,000 deep, arrays and maps, quickly', () => {
      const started = performance.now();
      expectRefused(decodeSafe(nested('array', 10_000)), 'nesting deeper than 16');
      expectRefused(decodeSafe(nested('map', 10_000)), 'nesting deeper than 16');
      expectRefused(decodeSafe(nested('array', 100_000), { depthMax: 1_000_000 }), undefined);
      expect(performance.now() - started).to.be.below(1000);
    });

    it('frames claiming huge arrays, maps and strings', () => {
      for (const bytes of ['9b100000000000000001', 'bb10000000000000006161', '5b1000000000000000', '7affffffff61', '9a7fffffff 00']) {
        expectRefused(decodeSafe(hex(bytes)), 'length exceeds buffer');
      }
    });

    it('more items than allowed', () => {
      expectRefused(decodeSafe(Uint8Array.from(encode([1, 2, 3, 4])), { itemsMax: 3 }), 'too many items');
    });

    it('tags cbor-x would turn into objects', () => {
      const tagged: [number, string][] = [
        [1, 'c11a514b67b0'],
        [258, 'd901028101'],
        [35, 'd8236161'],
        [27, 'd81b8265 4572726f72 6178'],
        [105, 'd869 83 19e000 8161 61 01'],
        [51, 'd833 84 8161 61 80 80 e0'],
        [57343, 'd9dfff 83 19e000 8161 61 01'],
        [57344, 'd9e000 8101'],
        [28, 'd81c 8101'],
        [29, 'd81d 00'],
      ];
      for (let tag = 64; tag <= 87; tag++) tagged.push([tag, `d8${tag.toString(16)} 44 01020304`]);
      for (const [tag, bytes] of tagged) {
        expectRefused(decodeSafe(hex(bytes)), `tag ${tag} not allowed`);
        expectDecoderHealthy();
      }
    });

    it('indefinite lengths', () => {
      for (const bytes of ['5f4101ff', '7f6161ff', '9f01ff', 'bf616101ff', 'ff']) expectRefused(decodeSafe(hex(bytes)));
    });

    it('__proto__ keys, leaving every prototype untouched', () => {
      // {"__proto__": {"polluted": true}} and the same one level down.
      const proto = '695f5f70726f746f5f5f a1 68706f6c6c75746564 f5';
      expectRefused(decodeSafe(hex(`a1 ${proto}`)), 'map key __proto__ not allowed');
      expectRefused(decodeSafe(hex(`a1 6161 a1 ${proto}`)), 'map key __proto__ not allowed');
      expect(({} as { polluted?: unknown }).polluted).to.equal(undefined);
    });

    it('keys that are not text strings', () => {
      for (const bytes of ['a10101', 'a1416101', 'a18001', 'a1a001', 'a1f601', 'a1f93c0001']) {
        expectRefused(decodeSafe(hex(bytes)), 'map key is not a text string');
      }
    });

    it('duplicate keys', () => {
      expectRefused(decodeSafe(hex('a2616101616102')), 'duplicate map key');
    });

    it('invalid UTF-8 in values and keys', () => {
      for (const bytes of ['6180', '62c328', '62c080', '63eda080', 'a161ff01']) {
        expectRefused(decodeSafe(hex(bytes)), 'text string is not valid UTF-8');
      }
    });

    it('integers outside the safe range', () => {
      for (const bytes of ['1b0020000000000000', '3b001fffffffffffff', '1bffffffffffffffff', '3bffffffffffffffff']) {
        expectRefused(decodeSafe(hex(bytes)), 'integer outside the safe range');
      }
    });
  });

  describe('user values', () => {
    it('keep their tags: Date, Map, Set, bigint, typed arrays', () => {
      const value = {
        when: new Date(1_700_000_000_123),
        map: new Map<unknown, unknown>([[1, 'one'], ['two', 2]]),
        set: new Set(['a', 'b']),
        small: 5n,
        huge: 2n ** 70n,
        negative: -(2n ** 70n),
        floats: new Float64Array([1.5, -2]),
        bytes: new Uint8Array([9, 8, 7]),
      };
      const bytes = encodeValue(value);
      expect(checkValueBytes(bytes)).to.equal(undefined);
      expect(expectOk(decodeValue(bytes))).to.deep.equal(value);
    });

    it('accept a Date tag written by another encoder', () => {
      const decoded = expectOk(decodeValue(hex('c11a514b67b0')));
      expect(decoded).to.be.instanceOf(Date);
      expect((decoded as Date).getTime()).to.equal(1_363_896_240_000);
    });

    it('are nested at most VALUE_DEPTH_MAX deep, checked before sending and on decoding', () => {
      const limit = encodeValue(nestedValue(VALUE_DEPTH_MAX));
      const beyond = encodeValue(nestedValue(VALUE_DEPTH_MAX + 1));
      expect(checkValueBytes(limit)).to.equal(undefined);
      expect(expectOk(decodeValue(limit))).to.deep.equal(nestedValue(VALUE_DEPTH_MAX));
      expect(checkValueBytes(beyond)).to.equal(`nesting deeper than ${VALUE_DEPTH_MAX}`);
      expectRefused(decodeValue(beyond), `nesting deeper than ${VALUE_DEPTH_MAX}`);
      expectRefused(decodeValue(encodeValue(nestedValue(5)), 4), 'nesting deeper than 4');
      expectRefused(decodeValue(nested('map', 10_000)), `nesting deeper than ${VALUE_DEPTH_MAX}`);
    });

    it("refuse cbor-x's stateful tags", () => {
      expectRefused(decodeValue(hex('d869 83 19e000 8161 61 01')), 'tag 105 not allowed');
      expectRefused(decodeValue(hex('d833 84 8161 61 80 80 e0')), 'tag 51 not allowed');
      expectRefused(decodeValue(hex('d81c 8101')), 'tag 28 not allowed');
    });

    it('come back with byte strings of their own', () => {
      const input = Uint8Array.from(encodeValue({ b: new Uint8Array([1, 2, 3]) }));
      const decoded = expectOk(decodeValue(input)) as { b: Uint8Array };
      input.fill(0);
      expect(decoded.b).to.deep.equal(new Uint8Array([1, 2, 3]));
    });

    it('never throw on random bytes (seeded)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          const result = decodeValue(bytes);
          expect(typeof result.ok).to.equal('boolean');
        }),
        { seed, numRuns: 5000 },
      );
      expectDecoderHealthy();
    });

    it('refuse to encode what is not data, with a TypeError that says so', () => {
      expect(() => encodeValue(() => 1)).to.throw(TypeError, 'cannot encode value as CBOR: a function is not data');
      expect(() => encodeValue(Symbol('s'))).to.throw(TypeError, 'a symbol is not data');
      expect(() => encodeValue({ nested: [1, { f() {} }] })).to.throw(TypeError, 'a function is not data');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(() => encodeValue(cyclic)).to.throw(TypeError, 'cyclic or nested too deeply');
      expectDecoderHealthy();
    });

    it('encode a Date as tag 1, which the value check accepts', () => {
      const bytes = encodeValue(new Date(1_363_896_240_000));
      expect(toHex(bytes)).to.equal('c11a514b67b0');
      expect(checkValueBytes(bytes)).to.equal(undefined);
    });

    it('that cannot decode again are caught by the value check before sending', () => {
      function* generated(): Generator<number> {
        yield 1;
      }
      expect(checkValueBytes(encodeValue(generated()))).to.equal('indefinite-length array not allowed');
      expect(checkValueBytes(encodeValue('\ud800'))).to.equal('text string is not valid UTF-8');
    });
  });
});
