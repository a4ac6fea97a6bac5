/**
 * Proves the put/get semantics that clients rely on, one scenario at a time: a put with the
 * context of a read supersedes what that read saw; a put without a context, or with a stale
 * one, keeps concurrent values as siblings; concurrent writes at two replicas merge into
 * siblings; disjoint histories merge without loss; a put with the merged context of all
 * siblings collapses them to one value. Each case builds clocks through the public functions
 * and asserts the exact values, dots and contexts that come out, as `dvvset.erl` would give.
 * Also covered: the version-vector comparisons, that no function mutates its input, that our
 * own misuse trips an assertion, and that `validateDvv` refuses malformed clocks.
 */

import { expect } from 'chai';

import { AssertionError } from '../../lib/base/assert.js';
import {
  concurrent,
  descends,
  dominates,
  dvvDescends,
  emptyDvv,
  equalDvv,
  equalVectors,
  join,
  mapValues,
  mergeVectors,
  siblingCount,
  sync,
  update,
  validateDvv,
  values,
  COUNTER_MAX,
  type Dvv,
  type VersionVector,
} from '../../lib/clock/index.js';

const none: VersionVector = [];

/** A put coordinated by `actor` with no context. */
function blind(server: Dvv<string>, value: string, actor: string): Dvv<string> {
  return update(server, none, value, actor);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

describe('clock/dvv', () => {
  describe('update', () => {
    it('gives the first write the dot (actor, 1)', () => {
      const d = blind(emptyDvv(), 'v1', 'a');
      expect(d.entries).to.deep.equal([{ actor: 'a', counter: 1, values: ['v1'] }]);
      expect(join(d)).to.deep.equal([['a', 1]]);
    });

    it('lets a put with the context of a read supersede what that read saw', () => {
      let server = blind(emptyDvv(), 'v1', 'a');
      server = sync(server, blind(emptyDvv(), 'w1', 'b'));
      const read = join(server);
      expect(values(server)).to.deep.equal(['v1', 'w1']);

      const written = update(server, read, 'v2', 'a');
      expect(values(written)).to.deep.equal(['v2']);
      expect(written.entries).to.deep.equal([
        { actor: 'a', counter: 2, values: ['v2'] },
        { actor: 'b', counter: 1, values: [] },
      ]);
    });

    it('keeps the stored value as a sibling when a put carries no context', () => {
      const server = blind(emptyDvv(), 'v1', 'a');
      const written = update(server, none, 'v2', 'a');
      expect(values(written)).to.deep.equal(['v2', 'v1']);
      expect(written.entries).to.deep.equal([{ actor: 'a', counter: 2, values: ['v2', 'v1'] }]);
    });

    it('keeps values a stale context did not see, and drops those it did', () => {
      const v1 = blind(emptyDvv(), 'v1', 'a');
      const staleRead = join(v1);
      const v2 = update(v1, staleRead, 'v2', 'a');
      const v3 = update(v2, staleRead, 'v3', 'a');
      expect(values(v3)).to.deep.equal(['v3', 'v2']);
      expect(siblingCount(v3)).to.equal(2);
    });

    it('discards a covered value that reaches the replica only after the put', () => {
      // The writer read v1 at replica a; its put lands at replica b, which has not got v1 yet.
      const atA = blind(emptyDvv(), 'v1', 'a');
      const atB = update(emptyDvv<string>(), join(atA), 'v2', 'b');
      expect(join(atB)).to.deep.equal([['a', 1], ['b', 1]]);
      expect(values(sync(atB, atA))).to.deep.equal(['v2']);
      expect(values(sync(atA, atB))).to.deep.equal(['v2']);
    });

    it('never reissues a dot the context has seen, even if the server has not', () => {
      // A context can know more events of the coordinator than the coordinator's own copy.
      const written = update(emptyDvv<string>(), [['a', 5]], 'v', 'a');
      expect(written.entries).to.deep.equal([{ actor: 'a', counter: 6, values: ['v'] }]);
    });

    it('keeps entries sorted by actor when a new actor is added in the middle', () => {
      let d = blind(emptyDvv(), 'x', 'c');
      d = sync(d, blind(emptyDvv(), 'y', 'a'));
      d = update(d, none, 'z', 'b');
      expect(d.entries.map((e) => e.actor)).to.deep.equal(['a', 'b', 'c']);
      expect(values(d)).to.deep.equal(['y', 'z', 'x']);
    });

    it('starts a new dot at the floor when the actor holds no value of the key, so a forgotten clock reuses no dot', () => {
      // The key's tombstone, which covered (a, 3), was reaped: the clock is gone.
      const old: VersionVector = [['a', 3]];
      const fresh = update(emptyDvv<string>(), none, 'new', 'a', 11);
      expect(fresh.entries).to.deep.equal([{ actor: 'a', counter: 11, values: ['new'] }]);
      // A writer holding the context read before the delete sees the new value as concurrent, not covered.
      const later = update(fresh, old, 'stale', 'a', 12);
      expect(values(later).sort()).to.deep.equal(['new', 'stale']);
      // With values of the actor present, counters stay consecutive: the floor does not apply.
      const next = update(fresh, none, 'v2', 'a', 99);
      expect(next.entries).to.deep.equal([{ actor: 'a', counter: 12, values: ['v2', 'new'] }]);
      // A context's counter above the floor still wins.
      expect(update(emptyDvv<string>(), [['a', 40]], 'v', 'a', 11).entries[0]?.counter).to.equal(41);
    });

    it('asserts on a context that is not sorted: contexts are validated before they get here', () => {
      expect(() => update(emptyDvv<string>(), [['b', 1], ['a', 1]], 'v', 'a')).to.throw(AssertionError);
      expect(() => update(emptyDvv<string>(), [['a', 0]], 'v', 'a')).to.throw(AssertionError);
    });
  });

  describe('sync', () => {
    it('merges concurrent writes at two replicas into siblings', () => {
      const atA = blind(emptyDvv(), 'x', 'a');
      const atB = blind(emptyDvv(), 'y', 'b');
      expect(concurrent(join(atA), join(atB))).to.equal(true);

      const merged = sync(atA, atB);
      expect(values(merged)).to.deep.equal(['x', 'y']);
      expect(join(merged)).to.deep.equal([['a', 1], ['b', 1]]);
      expect(equalDvv(merged, sync(atB, atA), (p, q) => p === q)).to.equal(true);
    });

    it('merges disjoint histories without losing a live value', () => {
      let atA = blind(emptyDvv(), 'a1', 'a');
      atA = update(atA, join(atA), 'a2', 'a');
      atA = update(atA, none, 'a3', 'a');
      let atC = blind(emptyDvv(), 'c1', 'c');
      atC = sync(atC, blind(emptyDvv(), 'b1', 'b'));

      const merged = sync(atA, atC);
      expect(values(merged)).to.deep.equal(['a3', 'a2', 'b1', 'c1']);
      expect(join(merged)).to.deep.equal([['a', 3], ['b', 1], ['c', 1]]);
      expect(dvvDescends(merged, atA) && dvvDescends(merged, atC)).to.equal(true);
    });

    it('drops a value the other side has seen and superseded', () => {
      const old = blind(emptyDvv(), 'v1', 'a');
      const newer = update(old, join(old), 'v2', 'a');
      expect(values(sync(old, newer))).to.deep.equal(['v2']);
      expect(values(sync(newer, old))).to.deep.equal(['v2']);
    });

    it('is idempotent and returns the same clock for the same input', () => {
      const d = sync(blind(emptyDvv(), 'x', 'a'), blind(emptyDvv(), 'y', 'b'));
      expect(sync(d, d)).to.equal(d);
      expect(equalDvv(sync(d, { entries: [...d.entries] }), d, (p, q) => p === q)).to.equal(true);
    });

    it('collapses all siblings when a put carries the merged context of all of them', () => {
      const replicas = ['a', 'b', 'c'].map((actor) => blind(emptyDvv(), `from-${actor}`, actor));
      const merged = replicas.reduce((acc, d) => sync(acc, d), emptyDvv<string>());
      expect(siblingCount(merged)).to.equal(3);

      const resolved = update(replicas[1] as Dvv<string>, join(merged), 'resolved', 'b');
      expect(values(resolved)).to.deep.equal(['resolved']);
      // Spreading the resolution to the other replicas removes their stale values too.
      for (const replica of replicas) expect(values(sync(replica, resolved))).to.deep.equal(['resolved']);
    });
  });

  it('leaves k siblings after k concurrent writers, and one after a write that read them all', () => {
    // The bound of the no-sibling-growth property is reached: each writer reads only its own
    // replica, so the three writes are concurrent until a reader merges every replica.
    const replicas = ['a', 'b', 'c'].map((actor) => {
      const first = blind(emptyDvv(), `${actor}1`, actor);
      return update(first, join(first), `${actor}2`, actor);
    });
    const everything = replicas.reduce((acc, d) => sync(acc, d), emptyDvv<string>());
    expect(values(everything)).to.deep.equal(['a2', 'b2', 'c2']);
    expect(values(update(everything, join(everything), 'merged', 'a'))).to.deep.equal(['merged']);
  });

  describe('version vectors', () => {
    const v1: VersionVector = [['a', 2], ['b', 1]];
    const v2: VersionVector = [['a', 1], ['b', 1]];
    const v3: VersionVector = [['a', 1], ['c', 4]];

    it('compares pointwise, a missing actor counting as zero', () => {
      expect(descends(v1, v2)).to.equal(true);
      expect(descends(v2, v1)).to.equal(false);
      expect(descends(v1, [])).to.equal(true);
      expect(descends([], v1)).to.equal(false);
      expect(descends([], [])).to.equal(true);
      expect(dominates(v1, v2)).to.equal(true);
      expect(dominates(v1, v1)).to.equal(false);
      expect(concurrent(v1, v3)).to.equal(true);
      expect(concurrent(v1, v1)).to.equal(false);
    });

    it('merges to the pointwise maximum', () => {
      expect(mergeVectors(v1, v3)).to.deep.equal([['a', 2], ['b', 1], ['c', 4]]);
      expect(mergeVectors([], v3)).to.deep.equal(v3);
      expect(equalVectors(mergeVectors(v2, v1), v1)).to.equal(true);
    });
  });

  describe('reading a clock', () => {
    const d = update(sync(blind(emptyDvv(), 'x', 'b'), blind(blind(emptyDvv(), 'y1', 'a'), 'y2', 'a')), none, 'z', 'c');

    it('lists values by actor, newest first within an actor', () => {
      expect(values(d)).to.deep.equal(['y2', 'y1', 'x', 'z']);
      expect(siblingCount(d)).to.equal(4);
    });

    it('maps values keeping their dots', () => {
      const mapped = mapValues(d, (value, [actor, counter]) => `${value}@${actor}${counter}`);
      expect(values(mapped)).to.deep.equal(['y2@a2', 'y1@a1', 'x@b1', 'z@c1']);
      expect(join(mapped)).to.deep.equal(join(d));
    });
  });

  it('never mutates its inputs', () => {
    const a = deepFreeze(blind(blind(emptyDvv(), 'a1', 'a'), 'a2', 'a'));
    const b = deepFreeze(update(a, join(a), 'b1', 'b'));
    const ctx = deepFreeze(join(b));
    // Frozen inputs make any write throw in strict mode; these must all succeed.
    update(a, ctx, 'n', 'a');
    update(b, none, 'n', 'c');
    sync(a, b);
    sync(b, a);
    mergeVectors(join(a), ctx);
    mapValues(b, (v) => v.length);
  });

  describe('validateDvv', () => {
    const isString = (v: unknown): boolean => typeof v === 'string';

    it('accepts a well-formed clock and rebuilds it as fresh data', () => {
      const input = { entries: [{ actor: 'a', counter: 3, values: ['x', 'y'], extra: 1 }, { actor: 'b', counter: 1, values: [] }] };
      const checked = validateDvv<string>(input, isString);
      expect(checked.ok).to.equal(true);
      if (!checked.ok) return;
      expect(checked.value).to.deep.equal({ entries: [{ actor: 'a', counter: 3, values: ['x', 'y'] }, { actor: 'b', counter: 1, values: [] }] });
      expect(checked.value.entries[0]?.values).to.not.equal(input.entries[0]?.values);
    });

    const bad: [string, unknown][] = [
      ['not an object', [1, 2]],
      ['null', null],
      ['no entries', {}],
      ['entries not an array', { entries: {} }],
      ['entry not an object', { entries: [['a', 1, []]] }],
      ['unsorted actors', { entries: [{ actor: 'b', counter: 1, values: [] }, { actor: 'a', counter: 1, values: [] }] }],
      ['duplicate actors', { entries: [{ actor: 'a', counter: 1, values: [] }, { actor: 'a', counter: 2, values: [] }] }],
      ['empty actor', { entries: [{ actor: '', counter: 1, values: [] }] }],
      ['actor too long', { entries: [{ actor: 'x'.repeat(257), counter: 1, values: [] }] }],
      ['actor not a string', { entries: [{ actor: 7, counter: 1, values: [] }] }],
      ['zero counter', { entries: [{ actor: 'a', counter: 0, values: [] }] }],
      ['negative counter', { entries: [{ actor: 'a', counter: -1, values: [] }] }],
      ['fractional counter', { entries: [{ actor: 'a', counter: 1.5, values: [] }] }],
      ['counter over the limit', { entries: [{ actor: 'a', counter: COUNTER_MAX + 1, values: [] }] }],
      ['counter a string', { entries: [{ actor: 'a', counter: '1', values: [] }] }],
      ['more values than events', { entries: [{ actor: 'a', counter: 1, values: ['x', 'y'] }] }],
      ['values not an array', { entries: [{ actor: 'a', counter: 1, values: 'x' }] }],
      ['a malformed value', { entries: [{ actor: 'a', counter: 2, values: ['x', 3] }] }],
      ['too many actors', { entries: Array.from({ length: 1025 }, (_, i) => ({ actor: `n${String(i).padStart(5, '0')}`, counter: 1, values: [] })) }],
    ];
    for (const [name, input] of bad) {
      it(`refuses ${name}`, () => {
        const checked = validateDvv<string>(input, isString);
        expect(checked.ok).to.equal(false);
        if (!checked.ok) expect(checked.reason).to.be.a('string').and.not.equal('');
      });
    }
  });
});
