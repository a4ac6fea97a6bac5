/**
 * The fast-check setting of spec/support/properties.ts is in force: an arbitrary that names a
 * `maxLength` draws lengths from its whole range. Without it (the setting not loaded, or
 * fast-check's default changed) lengths stop at twice the minimum plus ten, and every property
 * over long sequences quietly tests short ones.
 */

import { expect } from 'chai';
import fc from 'fast-check';

describe('property spec setting', () => {
  it('draws lengths past twice the minimum plus ten when the maximum allows', () => {
    const lengths = fc.sample(fc.array(fc.nat(), { maxLength: 80 }), { numRuns: 200, seed: 1 }).map((a) => a.length);
    expect(Math.max(...lengths)).to.be.above(20);
  });
});
