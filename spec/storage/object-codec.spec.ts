/**
 * Proves the record format of a stored object: CBOR [[actor, counter, [value | null, ...]], ...],
 * pinned byte for byte for one object, round-tripping every shape a replica stores, and
 * decoding damaged records to a result (never a throw): truncations and bit flips of a valid
 * record, seeded random bytes, and records that are valid CBOR but not a valid clock.
 * Decoded values must own their memory, whatever buffer the record was read from.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import type { KvObject } from '../../lib/clock/object.js';
import { encode } from '../../lib/codec/cbor.js';
import { decodeObject, encodeObject } from '../../lib/storage/object-codec.js';

const SAMPLE: KvObject = {
  entries: [
    { actor: 'a', counter: 2, values: [Uint8Array.of(1, 2), null] },
    { actor: 'b', counter: 1, values: [] },
  ],
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('storage/object-codec', () => {
  it('writes the pinned record bytes', () => {
    // 82 array(2); 83 array(3) "a" 2 array(2) h'0102' null; 83 array(3) "b" 1 array(0)
    expect(hex(encodeObject(SAMPLE))).to.equal('82' + '83' + '6161' + '02' + '82' + '420102' + 'f6' + '83' + '6162' + '01' + '80');
  });

  it('round-trips objects with tombstones, several actors, empty and large values', () => {
    const shapes: KvObject[] = [
      SAMPLE,
      { entries: [] },
      { entries: [{ actor: 'n1/e1', counter: 1, values: [null] }] },
      { entries: [{ actor: 'n1/e1', counter: 3, values: [new Uint8Array(0), new Uint8Array(70_000).fill(1)] }] },
      { entries: [{ actor: 'n1/e1', counter: 2 ** 40, values: [Uint8Array.of(0)] }, { actor: 'n2/é', counter: 5, values: [null, null] }] },
    ];
    for (const shape of shapes) expect(decodeObject(encodeObject(shape))).to.deep.equal({ ok: true, object: shape });
  });

  it('returns plain Uint8Array values that own their memory, even when read from a Buffer', () => {
    const record = Buffer.from(encodeObject(SAMPLE));
    const decoded = decodeObject(record);
    if (!decoded.ok) throw new Error(decoded.reason);
    const value = decoded.object.entries[0]?.values[0];
    expect(value?.constructor).to.equal(Uint8Array);
    record.fill(0);
    expect(Array.from(value ?? [])).to.deep.equal([1, 2]);
  });

  it('decodes the bytes of a view, not the rest of the buffer behind it', () => {
    const record = encodeObject(SAMPLE);
    const big = new Uint8Array(record.length + 16).fill(0xff);
    big.set(record, 5);
    expect(decodeObject(big.subarray(5, 5 + record.length))).to.deep.equal({ ok: true, object: SAMPLE });
  });

  it('refuses valid CBOR that is not a valid object, with a reason', () => {
    const bad: [string, unknown][] = [
      ['not an array', { a: 1 }],
      ['entry not a triple', [['a', 1]]],
      ['counter zero', [['a', 0, []]]],
      ['more values than events', [['a', 1, [null, null]]]],
      ['a value that is a string', [['a', 1, ['text']]]],
      ['actors out of order', [['b', 1, []], ['a', 1, []]]],
      ['duplicate actors', [['a', 1, []], ['a', 2, []]]],
      ['empty actor', [['', 1, []]]],
    ];
    for (const [what, value] of bad) {
      const result = decodeObject(encode(value));
      expect(result.ok, what).to.equal(false);
      if (!result.ok) expect(result.reason, what).to.be.a('string').and.not.equal('');
    }
  });

  it('never throws on truncated or bit-flipped records', () => {
    const record = encodeObject(SAMPLE);
    for (let length = 0; length < record.length; length++) expect(decodeObject(record.subarray(0, length)).ok, `truncated to ${length}`).to.equal(false);
    for (let i = 0; i < record.length * 8; i++) {
      const flipped = record.slice();
      flipped[i >> 3]! ^= 1 << (i & 7);
      expect(() => decodeObject(flipped), `bit ${i}`).to.not.throw();
    }
  });

  it('never throws on seeded random bytes', () => {
    const seed = 0x0bec7;
    console.log(`      fast-check seed ${seed} (repeat: npx mocha spec/storage/object-codec.spec.ts)`);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const result = decodeObject(bytes);
        return typeof result.ok === 'boolean';
      }),
      { seed, numRuns: 2000 },
    );
  });
});
