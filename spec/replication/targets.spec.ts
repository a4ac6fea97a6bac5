/**
 * Proves how a request picks its replicas: alive primaries in preference-list order, and in
 * a sloppy quorum one distinct alive fallback per primary that is down, each fallback naming
 * the primary it keeps hints for; and how levels from a request are checked against `n`.
 */

import { expect } from 'chai';
import { checkLevel, resolveLevel } from '../../lib/replication/levels.js';
import { chooseTargets } from '../../lib/replication/targets.js';

const aliveExcept =
  (...down: string[]) =>
  (id: string): boolean =>
    !down.includes(id);

describe('replication: targets of a request', () => {
  const list = { primaries: ['a', 'b', 'c'], fallbacks: ['d', 'e', 'f'] };

  it('takes every primary when all are alive', () => {
    expect(chooseTargets({ ...list, alive: aliveExcept(), sloppy: true })).to.deep.equal([
      { node: 'a', primary: true },
      { node: 'b', primary: true },
      { node: 'c', primary: true },
    ]);
  });

  it('replaces each primary that is down by the next alive fallback, which keeps its hints', () => {
    expect(chooseTargets({ ...list, alive: aliveExcept('b', 'd'), sloppy: true })).to.deep.equal([
      { node: 'a', primary: true },
      { node: 'e', primary: false, hintFor: 'b' },
      { node: 'c', primary: true },
    ]);
    expect(chooseTargets({ ...list, alive: aliveExcept('a', 'c'), sloppy: true })).to.deep.equal([
      { node: 'd', primary: false, hintFor: 'a' },
      { node: 'b', primary: true },
      { node: 'e', primary: false, hintFor: 'c' },
    ]);
  });

  it('leaves a down primary without stand-in when fallbacks run out, or when the quorum is strict', () => {
    expect(chooseTargets({ primaries: ['a', 'b', 'c'], fallbacks: ['d'], alive: aliveExcept('a', 'b'), sloppy: true })).to.deep.equal([
      { node: 'd', primary: false, hintFor: 'a' },
      { node: 'c', primary: true },
    ]);
    expect(chooseTargets({ ...list, alive: aliveExcept('b'), sloppy: false })).to.deep.equal([
      { node: 'a', primary: true },
      { node: 'c', primary: true },
    ]);
  });
});

describe('replication: levels from a request', () => {
  it('accepts names and whole numbers from 1 to n', () => {
    expect(checkLevel('r', 'one', 3)).to.deep.equal({ ok: true, level: 'one' });
    expect(checkLevel('w', 'quorum', 3)).to.deep.equal({ ok: true, level: 'quorum' });
    expect(checkLevel('pw', 'all', 3)).to.deep.equal({ ok: true, level: 'all' });
    expect(checkLevel('w', 3, 3)).to.deep.equal({ ok: true, level: 3 });
  });

  for (const [value, pattern] of [
    [0, /at least 1/],
    [-1, /at least 1/],
    [1.5, /at least 1/],
    [4, /exceeds n=3/],
    ['most', /one, quorum, all/],
    ['', /one, quorum, all/],
  ] as const) {
    it(`refuses ${JSON.stringify(value)} with INVALID_REQUEST naming the option`, () => {
      for (const name of ['r', 'w', 'pr', 'pw'] as const) {
        const checked = checkLevel(name, value, 3);
        expect(checked.ok).to.equal(false);
        if (checked.ok) continue;
        expect(checked.error.code).to.equal('INVALID_REQUEST');
        expect(checked.error.details.field).to.equal(name);
        expect(checked.error.message).to.match(pattern);
      }
    });
  }

  it('resolves names against the replicas a key has', () => {
    expect([1, 2, 3, 4, 5].map((n) => resolveLevel('quorum', n))).to.deep.equal([1, 2, 2, 3, 3]);
    expect(resolveLevel('all', 2)).to.equal(2);
    expect(resolveLevel('one', 5)).to.equal(1);
  });
});
