/**
 * Proves the storage key layout of DESIGN.md's data model: token (4 bytes, big-endian) ‖
 * utf8(bucket) ‖ 0x00 ‖ utf8(key), decoded by splitting at the first zero after the token.
 *
 * The layout is the on-disk format, so the bytes of a few keys are pinned literally. Round
 * trips are checked on seeded random strings (including zero characters in keys, non-ASCII
 * and astral characters), byte order is checked to follow (token, bucket, key), and the
 * refusals (zero in a bucket, lone surrogates, over STORAGE_KEY_BYTES_MAX) are checked at
 * their exact boundaries. Token ranges are checked to map onto the byte segments a scan reads.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { STORAGE_KEY_BYTES_MAX } from '../../lib/base/limits.js';
import { keyToken } from '../../lib/ring/index.js';
import { compareBytes, decodeStorageKey, encodeStorageKey, tokenPrefix, tokenRangeSegments } from '../../lib/storage/keys.js';

function encoded(bucket: string, key: string): Uint8Array {
  const result = encodeStorageKey(bucket, key);
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return result.bytes;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('storage/keys', () => {
  it('lays out token (big-endian) ‖ bucket ‖ 0 ‖ key, byte for byte', () => {
    // keyToken('users', 'alice') = 3863318648 = 0xe6459078, pinned in spec/ring/token.spec.ts.
    expect(hex(encoded('users', 'alice'))).to.equal(`e6459078${hex(Buffer.from('users'))}00${hex(Buffer.from('alice'))}`);
    // keyToken('b', 'k\0z') = 2830782707 = 0xa8ba50f3; the key keeps its own zero byte.
    expect(hex(encoded('b', 'k\u0000z'))).to.equal('a8ba50f3' + '62' + '00' + '6b007a');
    expect(hex(encoded('日本語', 'キー'))).to.equal(
      keyToken('日本語', 'キー').toString(16).padStart(8, '0') + hex(Buffer.from('日本語')) + '00' + hex(Buffer.from('キー')),
    );
  });

  it('decodes what it encodes, splitting at the first zero after the token', () => {
    const cases: [string, string][] = [['users', 'alice'], ['', ''], ['b', '\u0000'], ['b', 'a\u0000\u0000b'], ['café', '🦀'], ['bom', '\uFEFFx']];
    for (const [bucket, key] of cases) {
      expect(decodeStorageKey(encoded(bucket, key)), JSON.stringify([bucket, key])).to.deep.equal({ token: keyToken(bucket, key), bucket, key });
    }
  });

  it('round-trips seeded random buckets and keys', () => {
    const seed = 0x6b657973;
    console.log(`      fast-check seed ${seed} (repeat: npx mocha spec/storage/keys.spec.ts)`);
    const bucket = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\u0000'));
    const key = fc.string({ unit: 'grapheme', maxLength: 40 });
    fc.assert(
      fc.property(bucket, key, (b, k) => {
        const parts = decodeStorageKey(encoded(b, k));
        return parts !== undefined && parts.bucket === b && parts.key === k && parts.token === keyToken(b, k);
      }),
      { seed, numRuns: 1000 },
    );
  });

  it('sorts by token, then bucket, then key', () => {
    const seed = 0x6f726472;
    fc.assert(
      fc.property(fc.string({ maxLength: 6 }).filter((s) => !s.includes('\u0000')), fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }).filter((s) => !s.includes('\u0000')), fc.string({ maxLength: 6 }), (b1, k1, b2, k2) => {
        const byBytes = Math.sign(compareBytes(encoded(b1, k1), encoded(b2, k2)));
        const t1 = keyToken(b1, k1);
        const t2 = keyToken(b2, k2);
        const byParts = Math.sign(t1 - t2 || Buffer.compare(Buffer.from(b1), Buffer.from(b2)) || Buffer.compare(Buffer.from(k1), Buffer.from(k2)));
        return byBytes === byParts;
      }),
      { seed, numRuns: 1000 },
    );
  });

  it('refuses a bucket with a zero character and strings with lone surrogates', () => {
    expect(encodeStorageKey('a\u0000b', 'k')).to.deep.include({ ok: false });
    expect(encodeStorageKey('b', 'k\uD800')).to.deep.include({ ok: false });
    expect(encodeStorageKey('b\uDC00', 'k')).to.deep.include({ ok: false });
    expect(encodeStorageKey('b', 'k\uD83E\uDD80').ok).to.equal(true);
  });

  it(`accepts a storage key of exactly ${STORAGE_KEY_BYTES_MAX} bytes and refuses one more`, () => {
    const fits = 'é'.repeat((STORAGE_KEY_BYTES_MAX - 6) / 2);
    expect(encoded('b', fits)).to.have.length(STORAGE_KEY_BYTES_MAX);
    expect(encodeStorageKey('b', `${fits}x`)).to.deep.include({ ok: false });
  });

  it('rejects bytes that are not a storage key', () => {
    expect(decodeStorageKey(new Uint8Array(0))).to.equal(undefined);
    expect(decodeStorageKey(Uint8Array.of(0, 0, 0, 1))).to.equal(undefined);
    expect(decodeStorageKey(Uint8Array.of(0, 0, 0, 1, 0x61))).to.equal(undefined);
    expect(decodeStorageKey(Uint8Array.of(0, 0, 0, 1, 0xff, 0, 0x61))).to.equal(undefined);
    expect(decodeStorageKey(Uint8Array.of(0, 0, 0, 1, 0x61, 0, 0xc3))).to.equal(undefined);
  });

  it('decodes a storage key that is a view into a larger buffer', () => {
    const inner = encoded('b', 'k');
    const outer = new Uint8Array(inner.length + 8);
    outer.set(inner, 3);
    expect(decodeStorageKey(outer.subarray(3, 3 + inner.length))).to.deep.equal({ token: keyToken('b', 'k'), bucket: 'b', key: 'k' });
  });

  it('maps token ranges onto byte segments: plain, wrapping, ending at 0, and the whole ring', () => {
    const hexes = (from: number, to: number): [string | undefined, string | undefined][] =>
      tokenRangeSegments(from, to).map(({ start, end }) => [start && hex(start), end && hex(end)]);
    expect(hexes(1, 0xff00)).to.deep.equal([['00000001', '0000ff00']]);
    expect(hexes(0xffff0000, 0x10)).to.deep.equal([['ffff0000', undefined], [undefined, '00000010']]);
    expect(hexes(0x10, 0)).to.deep.equal([['00000010', undefined]]);
    expect(hexes(0, 0)).to.deep.equal([['00000000', undefined]]);
    expect(hexes(7, 7)).to.deep.equal([['00000007', undefined], [undefined, '00000007']]);
    expect(hex(tokenPrefix(2 ** 32 - 1))).to.equal('ffffffff');
    expect(() => tokenPrefix(2 ** 32)).to.throw(/token out of range/);
    expect(() => tokenRangeSegments(-1, 5)).to.throw(/token out of range/);
  });
});
