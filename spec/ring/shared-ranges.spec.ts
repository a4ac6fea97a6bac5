/**
 * Shared ranges: which vnode ranges two nodes both replicate, and their scan bounds.
 *
 * Checked against a brute-force placement: for random rings, every token of a span returned
 * for (a, b) has both among its n primaries, and every token outside the spans does not.
 */

import { expect } from 'chai';
import { Prng } from '../../lib/base/prng.js';
import { buildRing, preferenceList } from '../../lib/ring/ring.js';
import { joinedBounds, rangesWith, sharedBounds, type Span } from '../../lib/ring/shared-ranges.js';
import { RING_TOKENS } from '../../lib/ring/token-range.js';

function inSpans(spans: readonly Span[], token: number): boolean {
  return spans.some((s) => {
    if (s.fromToken === s.toToken) return true;
    if (s.fromToken < s.toToken) return token >= s.fromToken && token < s.toToken;
    return token >= s.fromToken || token < s.toToken;
  });
}

describe('shared ranges', () => {
  it('joins adjacent ranges, across the top of the ring too', () => {
    expect(joinedBounds([{ start: 10, end: 20 }, { start: 20, end: 30 }, { start: 50, end: 60 }])).to.deep.equal([
      { fromToken: 11, toToken: 31 },
      { fromToken: 51, toToken: 61 },
    ]);
    const top = RING_TOKENS - 10;
    expect(joinedBounds([{ start: 5, end: 9 }, { start: 40, end: 50 }, { start: top, end: 5 }])).to.deep.equal([
      { fromToken: top + 1, toToken: 10 },
      { fromToken: 41, toToken: 51 },
    ]);
  });

  it('names the whole ring from token 0, so its leaves are whole segments', () => {
    expect(joinedBounds([{ start: 7, end: 7 }])).to.deep.equal([{ fromToken: 0, toToken: 0 }]);
    expect(joinedBounds([{ start: 100, end: 200 }, { start: 200, end: 100 }])).to.deep.equal([{ fromToken: 0, toToken: 0 }]);
  });

  it('with n = 3 on three nodes every pair shares the whole ring', () => {
    const ring = buildRing(['a', 'b', 'c'].map((id) => ({ id, zone: id, vnodes: 64 })));
    expect(sharedBounds(ring, 'a', 'b', 3)).to.deep.equal([{ fromToken: 0, toToken: 0 }]);
  });

  it('matches placement token by token on random rings (seeded)', () => {
    const seed = 4242;
    console.log(`      seed ${seed}`);
    const prng = new Prng(seed);
    for (let trial = 0; trial < 20; trial++) {
      const nodes = 4 + prng.int(4);
      const ring = buildRing(Array.from({ length: nodes }, (_, i) => ({ id: `n${i}`, zone: `z${i}`, vnodes: 8 + prng.int(24) })));
      const n = 2 + prng.int(2);
      const [a, b] = [`n${prng.int(nodes)}`, `n${prng.int(nodes)}`];
      if (a === b) continue;
      const spans = sharedBounds(ring, a, b, n);
      expect(rangesWith(ring, [a, b], n).length > 0).to.equal(spans.length > 0);
      for (let probe = 0; probe < 400; probe++) {
        const token = prng.int(RING_TOKENS);
        const primaries = preferenceList(ring, token, n, { fallbacks: 0 }).primaries;
        const both = primaries.includes(a) && primaries.includes(b);
        expect(inSpans(spans, token), `trial ${trial} token ${token}: ${a},${b} in [${primaries.join(',')}]`).to.equal(both);
      }
    }
  });

  it('has no range for a node that is not in the ring', () => {
    const ring = buildRing(['a', 'b', 'c'].map((id) => ({ id, zone: id, vnodes: 8 })));
    expect(rangesWith(ring, ['a', 'x'], 3)).to.deep.equal([]);
  });
});
