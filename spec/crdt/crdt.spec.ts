/**
 * Proves the behaviour clients see from typed buckets, one scenario at a time, through the
 * public API of lib/crdt: what each operation does to the value; that a concurrent add beats a
 * remove (set, flag, map field) while a remove that saw the add wins; that a register keeps
 * concurrent values until an assignment that saw them all; that a retried counter increment
 * counts once where its first attempt landed, and that different ids all count; that removing
 * a map field resets it (a later increment shows alone) but loses to a concurrent update;
 * that `checkOp` refuses malformed operations and names the field; that `decodeState` refuses
 * garbage, wrong shapes, broken invariants and the wrong type without throwing; and that
 * states round-trip through their canonical bytes. Replicas are simulated by hand: each has
 * an actor and a counter that skips numbers, as a node-wide counter does.
 */

import { expect } from 'chai';

import { AssertionError } from '../../lib/base/assert.js';
import { Prng } from '../../lib/base/prng.js';
import { encode } from '../../lib/codec/cbor.js';
import {
  applyOp,
  checkOp,
  CRDT_TYPES,
  decodeState,
  emptyState,
  encodeState,
  equalStates,
  mergeStates,
  valueOf,
  COUNTER_INC_MAX,
  MAP_DEPTH_MAX,
  MAP_OP_FIELDS_MAX,
  OP_IDS_KEPT,
  SET_OP_MEMBERS_MAX,
  STRING_BYTES_MAX,
  type CrdtOp,
  type CrdtState,
  type CrdtType,
  type MapOp,
  type MapValue,
} from '../../lib/crdt/index.js';

/** A replica coordinating operations: its actor and its node-wide counter, which skips numbers. */
class Replica {
  private counter = 0;

  constructor(readonly actor: string) {}

  /** Applies `op` and returns the new state; the operation must be accepted. */
  apply(type: CrdtType, state: CrdtState, op: CrdtOp, opId?: string): CrdtState {
    const applied = this.tryApply(type, state, op, opId);
    if (!applied.ok) expect.fail(`refused: ${applied.field}: ${applied.reason}`);
    return applied.state;
  }

  tryApply(type: CrdtType, state: CrdtState, op: CrdtOp, opId?: string): ReturnType<typeof applyOp> {
    return applyOp(type, state, op, {
      actor: this.actor,
      nextCounter: () => (this.counter += 3),
      ...(opId === undefined ? {} : { opId }),
    });
  }
}

const emptyMap: MapValue = { counters: {}, sets: {}, registers: {}, flags: {}, maps: {} };

function mapValue(parts: Partial<MapValue>): MapValue {
  return { ...emptyMap, ...parts };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function roundTrip(type: CrdtType, state: CrdtState): CrdtState {
  const decoded = decodeState(type, encodeState(type, state));
  if (!decoded.ok) expect.fail(`refused its own encoding: ${decoded.reason}`);
  return decoded.state;
}

describe('crdt', () => {
  let a: Replica;
  let b: Replica;
  beforeEach(() => {
    a = new Replica('a');
    b = new Replica('b');
  });

  describe('counter', () => {
    it('adds increments and subtracts decrements', () => {
      let s = a.apply('counter', emptyState('counter'), { inc: 5 });
      s = a.apply('counter', s, { inc: -2 });
      s = a.apply('counter', s, { inc: 0 });
      expect(valueOf('counter', s)).to.equal(3);
      expect(valueOf('counter', emptyState('counter'))).to.equal(0);
    });

    it('sums concurrent changes at different replicas once merged, whatever the order', () => {
      const older = a.apply('counter', emptyState('counter'), { inc: 4 });
      const x = a.apply('counter', older, { inc: 1 });
      const y = b.apply('counter', emptyState('counter'), { inc: -7 });
      expect(valueOf('counter', mergeStates('counter', x, y))).to.equal(-2);
      expect(equalStates('counter', mergeStates('counter', x, y), mergeStates('counter', y, x))).to.equal(true);
      // Merging an older state of the same replica changes nothing.
      expect(valueOf('counter', mergeStates('counter', x, older))).to.equal(5);
    });

    it('counts an operation id once at a replica that applied it, and different ids each time', () => {
      let s = a.apply('counter', emptyState('counter'), { inc: 1 }, 'op-1');
      const retry = a.tryApply('counter', s, { inc: 1 }, 'op-1');
      expect(retry.ok && retry.duplicate, 'the retry is a duplicate').to.equal(true);
      expect(retry.ok && retry.state).to.equal(s);
      s = a.apply('counter', s, { inc: 1 }, 'op-2');
      s = a.apply('counter', s, { inc: 1 });
      s = a.apply('counter', s, { inc: 1 });
      expect(valueOf('counter', s)).to.equal(4);
    });

    it('recognizes a retry at another replica that merged the first attempt', () => {
      const first = a.apply('counter', emptyState('counter'), { inc: 10 }, 'op-1');
      const atB = mergeStates('counter', b.apply('counter', emptyState('counter'), { inc: 1 }), first);
      const retry = b.tryApply('counter', atB, { inc: 10 }, 'op-1');
      expect(retry.ok && retry.duplicate).to.equal(true);
      expect(valueOf('counter', atB)).to.equal(11);
    });

    it(`remembers the last ${OP_IDS_KEPT} operation ids of an actor, and forgets older ones`, () => {
      let s = emptyState('counter');
      for (let i = 0; i <= OP_IDS_KEPT; i++) s = a.apply('counter', s, { inc: 1 }, `op-${i}`);
      const recent = a.tryApply('counter', s, { inc: 1 }, `op-${OP_IDS_KEPT}`);
      expect(recent.ok && recent.duplicate, 'a recent id is remembered').to.equal(true);
      const oldest = a.tryApply('counter', s, { inc: 1 }, 'op-0');
      expect(oldest.ok && oldest.duplicate, 'the oldest id was dropped').to.equal(false);
    });

    it('refuses an increment that would take a total past 2^53 - 1, and leaves the state usable', () => {
      let s = emptyState('counter');
      for (let i = 0; i < 31; i++) s = a.apply('counter', s, { inc: COUNTER_INC_MAX });
      const over = a.tryApply('counter', a.apply('counter', s, { inc: COUNTER_INC_MAX - 1 }), { inc: COUNTER_INC_MAX });
      expect(over).to.deep.include({ ok: false, field: 'op.inc' });
      expect(valueOf('counter', a.apply('counter', s, { inc: -1 }))).to.equal(31 * COUNTER_INC_MAX - 1);
    });
  });

  describe('set', () => {
    it('adds and removes members, and lists them sorted', () => {
      let s = a.apply('set', emptyState('set'), { add: ['pear', 'apple', 'fig', 'apple'] });
      s = a.apply('set', s, { remove: ['fig'] });
      s = a.apply('set', s, { add: ['Zebra'], remove: ['pear'] });
      expect(valueOf('set', s)).to.deep.equal(['Zebra', 'apple']);
    });

    it('treats removing an absent member as a no-op, not an error', () => {
      const s = a.apply('set', emptyState('set'), { add: ['x'] });
      const after = a.apply('set', s, { remove: ['nope'] });
      expect(valueOf('set', after)).to.deep.equal(['x']);
      expect(equalStates('set', after, s)).to.equal(true);
    });

    it('lets an add win over a concurrent remove of the same member', () => {
      const shared = a.apply('set', emptyState('set'), { add: ['x', 'y'] });
      const removed = a.apply('set', shared, { remove: ['x', 'y'] });
      const readded = b.apply('set', shared, { add: ['x'] });
      const merged = mergeStates('set', removed, readded);
      expect(valueOf('set', merged)).to.deep.equal(['x']);
      expect(valueOf('set', mergeStates('set', readded, removed))).to.deep.equal(['x']);
    });

    it('lets a remove that saw the add win, even when the add arrives again later', () => {
      const added = b.apply('set', emptyState('set'), { add: ['x'] });
      const removed = a.apply('set', mergeStates('set', emptyState('set'), added), { remove: ['x'] });
      expect(valueOf('set', mergeStates('set', added, removed))).to.deep.equal([]);
      expect(valueOf('set', mergeStates('set', removed, added))).to.deep.equal([]);
    });
  });

  describe('register', () => {
    it('holds the last value assigned at one replica', () => {
      let s = a.apply('register', emptyState('register'), { set: 'one' });
      s = a.apply('register', s, { set: 'two' });
      expect(valueOf('register', s)).to.deep.equal(['two']);
      expect(valueOf('register', emptyState('register'))).to.deep.equal([]);
    });

    it('keeps concurrent values, sorted and distinct, until an assignment that saw them all', () => {
      const x = a.apply('register', emptyState('register'), { set: 'zed' });
      const y = b.apply('register', emptyState('register'), { set: 'alpha' });
      const z = new Replica('c').apply('register', emptyState('register'), { set: 'alpha' });
      const merged = mergeStates('register', mergeStates('register', x, y), z);
      expect(valueOf('register', merged)).to.deep.equal(['alpha', 'zed']);
      const resolved = a.apply('register', merged, { set: 'final' });
      expect(valueOf('register', resolved)).to.deep.equal(['final']);
      expect(valueOf('register', mergeStates('register', y, resolved))).to.deep.equal(['final']);
    });
  });

  describe('flag', () => {
    it('enables and disables', () => {
      let s = a.apply('flag', emptyState('flag'), { enable: true });
      expect(valueOf('flag', s)).to.equal(true);
      s = a.apply('flag', s, { enable: false });
      expect(valueOf('flag', s)).to.equal(false);
      expect(valueOf('flag', a.apply('flag', emptyState('flag'), { enable: false }))).to.equal(false);
    });

    it('lets an enable win over a concurrent disable, and a disable that saw it win', () => {
      const on = a.apply('flag', emptyState('flag'), { enable: true });
      const off = b.apply('flag', on, { enable: false });
      const again = a.apply('flag', on, { enable: true });
      expect(valueOf('flag', mergeStates('flag', off, again))).to.equal(true);
      expect(valueOf('flag', mergeStates('flag', off, on))).to.equal(false);
    });
  });

  describe('map', () => {
    const profile: MapOp = {
      update: [
        { field: 'visits', type: 'counter', op: { inc: 2 } },
        { field: 'tags', type: 'set', op: { add: ['db', 'crdt'] } },
        { field: 'name', type: 'register', op: { set: 'Ada' } },
        { field: 'admin', type: 'flag', op: { enable: true } },
        { field: 'address', type: 'map', op: { update: [{ field: 'city', type: 'register', op: { set: 'London' } }] } },
      ],
    };

    it('files each field by its type, and keeps same-named fields of different types apart', () => {
      let s = a.apply('map', emptyState('map'), profile);
      s = a.apply('map', s, { update: [{ field: 'visits', type: 'set', op: { add: ['monday'] } }] });
      expect(valueOf('map', s)).to.deep.equal({
        counters: { visits: 2 },
        sets: { tags: ['crdt', 'db'], visits: ['monday'] },
        registers: { name: ['Ada'] },
        flags: { admin: true },
        maps: { address: mapValue({ registers: { city: ['London'] } }) },
      });
    });

    it('applies several updates of one field in order, and removes before updates', () => {
      let s = a.apply('map', emptyState('map'), {
        update: [
          { field: 'n', type: 'counter', op: { inc: 1 } },
          { field: 'n', type: 'counter', op: { inc: 1 } },
          { field: 's', type: 'set', op: { add: ['x'] } },
          { field: 's', type: 'set', op: { remove: ['x'] } },
        ],
      });
      expect(valueOf('map', s)).to.deep.equal(mapValue({ counters: { n: 2 }, sets: { s: [] } }));
      s = a.apply('map', s, { update: [{ field: 'n', type: 'counter', op: { inc: 5 } }], remove: [{ field: 'n', type: 'counter' }] });
      expect(valueOf('map', s)).to.deep.equal(mapValue({ counters: { n: 5 }, sets: { s: [] } }));
    });

    it('removes a field, and treats removing an absent one as a no-op', () => {
      let s = a.apply('map', emptyState('map'), profile);
      s = a.apply('map', s, {
        remove: [
          { field: 'tags', type: 'set' },
          { field: 'address', type: 'map' },
          { field: 'tags', type: 'counter' },
          { field: 'nothing', type: 'flag' },
        ],
      });
      expect(valueOf('map', s)).to.deep.equal(mapValue({ counters: { visits: 2 }, registers: { name: ['Ada'] }, flags: { admin: true } }));
    });

    it('shows only the increments after a counter field was reset', () => {
      let s = a.apply('map', emptyState('map'), { update: [{ field: 'n', type: 'counter', op: { inc: 40 } }] });
      s = b.apply('map', s, { update: [{ field: 'n', type: 'counter', op: { inc: 2 } }] });
      s = a.apply('map', s, { remove: [{ field: 'n', type: 'counter' }] });
      expect(valueOf('map', s)).to.deep.equal(emptyMap);
      s = b.apply('map', s, { update: [{ field: 'n', type: 'counter', op: { inc: 3 } }] });
      expect(valueOf('map', s)).to.deep.equal(mapValue({ counters: { n: 3 } }));
    });

    it('lets a concurrent update win over a remove, showing only what the remover had not seen', () => {
      const shared = a.apply('map', emptyState('map'), profile);
      const removed = a.apply('map', shared, {
        remove: [
          { field: 'visits', type: 'counter' },
          { field: 'tags', type: 'set' },
          { field: 'name', type: 'register' },
          { field: 'address', type: 'map' },
          { field: 'admin', type: 'flag' },
        ],
      });
      const updated = b.apply('map', shared, {
        update: [
          { field: 'visits', type: 'counter', op: { inc: 1 } },
          { field: 'tags', type: 'set', op: { add: ['new'] } },
          { field: 'address', type: 'map', op: { update: [{ field: 'zip', type: 'register', op: { set: 'N1' } }] } },
        ],
      });
      const expected = mapValue({ counters: { visits: 1 }, sets: { tags: ['new'] }, maps: { address: mapValue({ registers: { zip: ['N1'] } }) } });
      expect(valueOf('map', mergeStates('map', removed, updated))).to.deep.equal(expected);
      expect(valueOf('map', mergeStates('map', updated, removed))).to.deep.equal(expected);
    });

    it('lets a remove win over an update it saw', () => {
      const updated = b.apply('map', emptyState('map'), profile);
      const removed = a.apply('map', updated, { remove: [{ field: 'tags', type: 'set' }] });
      expect((valueOf('map', mergeStates('map', updated, removed)) as MapValue).sets).to.deep.equal({});
    });

    it(`accepts maps nested ${MAP_DEPTH_MAX} deep, stores and reads them back, and refuses one more level`, () => {
      const nest = (levels: number): MapOp =>
        levels === 1
          ? { update: [{ field: 'leaf', type: 'set', op: { add: ['x'] } }] }
          : { update: [{ field: `level${levels}`, type: 'map', op: nest(levels - 1) }] };
      const s = a.apply('map', emptyState('map'), nest(MAP_DEPTH_MAX));
      expect(equalStates('map', roundTrip('map', s), s)).to.equal(true);
      const refused = checkOp('map', nest(MAP_DEPTH_MAX + 1));
      expect(refused.ok).to.equal(false);
      expect(refused.ok ? '' : refused.field).to.equal(`op${'.update[0].op'.repeat(MAP_DEPTH_MAX)}`);
    });
  });

  describe('checkOp', () => {
    const long = 'x'.repeat(STRING_BYTES_MAX + 1);
    const wide = 'é'.repeat(STRING_BYTES_MAX / 2 + 1);
    const cases: readonly [string, CrdtType, unknown, string][] = [
      ['an op that is not an object', 'counter', 5, 'op'],
      ['an array for an op', 'set', [], 'op'],
      ['a missing inc', 'counter', {}, 'op'],
      ['a fractional inc', 'counter', { inc: 1.5 }, 'op.inc'],
      ['a string inc', 'counter', { inc: '1' }, 'op.inc'],
      ['an inc past 2^48', 'counter', { inc: COUNTER_INC_MAX + 1 }, 'op.inc'],
      ['a decrement past 2^48', 'counter', { inc: -COUNTER_INC_MAX - 1 }, 'op.inc'],
      ['an unsafe inc', 'counter', { inc: 2 ** 60 }, 'op.inc'],
      ['an extra property', 'counter', { inc: 1, by: 2 }, 'op.by'],
      ['a counter op on a set', 'set', { inc: 1 }, 'op.inc'],
      ['a set op on a counter', 'counter', { add: ['x'] }, 'op'],
      ['a non-string member', 'set', { add: ['a', 'b', 'c', 4] }, 'op.add[3]'],
      ['a member past the byte limit', 'set', { remove: ['ok', long] }, 'op.remove[1]'],
      ['a member past the byte limit in UTF-8 only', 'set', { add: [wide] }, 'op.add[0]'],
      ['a lone surrogate', 'set', { add: ['\ud800'] }, 'op.add[0]'],
      ['an empty add and remove', 'set', { add: [], remove: [] }, 'op'],
      ['no add or remove', 'set', {}, 'op'],
      ['too many members', 'set', { add: Array.from({ length: SET_OP_MEMBERS_MAX + 1 }, (_, i) => `m${i}`) }, 'op.add'],
      ['a member added and removed', 'set', { add: ['x', 'y'], remove: ['y'] }, 'op.remove[0]'],
      ['add that is not an array', 'set', { add: 'x' }, 'op.add'],
      ['a register value that is not a string', 'register', { set: 1 }, 'op.set'],
      ['a register value past the byte limit', 'register', { set: long }, 'op.set'],
      ['a flag that is not a boolean', 'flag', { enable: 'yes' }, 'op.enable'],
      ['a flag op on a register', 'register', { enable: true }, 'op'],
      ['an empty map op', 'map', { update: [], remove: [] }, 'op'],
      ['an unknown field type', 'map', { update: [{ field: 'f', type: 'doc', op: {} }] }, 'op.update[0].type'],
      ['a field name past the byte limit', 'map', { remove: [{ field: long, type: 'set' }] }, 'op.remove[0].field'],
      ['a __proto__ field', 'map', { remove: [{ field: '__proto__', type: 'set' }] }, 'op.remove[0].field'],
      ['a nested op of the wrong type', 'map', { update: [{ field: 'f', type: 'counter', op: { add: ['x'] } }] }, 'op.update[0].op'],
      ['a bad nested member', 'map', { update: [{ field: 'f', type: 'set', op: { add: ['x'] } }, { field: 'g', type: 'set', op: { add: [null] } }] }, 'op.update[1].op.add[0]'],
      ['an extra property on a field update', 'map', { update: [{ field: 'f', type: 'flag', op: { enable: true }, why: 1 }] }, 'op.update[0].why'],
      ['a missing nested op', 'map', { update: [{ field: 'f', type: 'flag' }] }, 'op.update[0].op'],
      ['too many field updates', 'map', { update: Array.from({ length: MAP_OP_FIELDS_MAX + 1 }, () => ({ field: 'f', type: 'flag', op: { enable: true } })) }, 'op.update'],
      ['a Map instead of an object', 'flag', new Map([['enable', true]]), 'op'],
      ['a Uint8Array instead of an object', 'register', new Uint8Array(3), 'op'],
    ];
    for (const [what, type, op, field] of cases) {
      it(`refuses ${what} at ${field}`, () => {
        const checked = checkOp(type, op);
        expect(checked.ok).to.equal(false);
        if (!checked.ok) {
          expect(checked.field).to.equal(field);
          expect(checked.reason).to.be.a('string').and.not.equal('');
        }
      });
    }

    it('refuses an unknown type without throwing', () => {
      expect(checkOp('doc' as CrdtType, { inc: 1 })).to.deep.include({ ok: false, field: 'type' });
    });

    it('accepts well-formed operations and returns them as fresh plain data', () => {
      const op = { add: ['a', '', 'x'.repeat(STRING_BYTES_MAX)], remove: ['b'] };
      const checked = checkOp('set', op);
      expect(checked).to.deep.equal({ ok: true, op });
      expect(checked.ok && (checked.op as { add: string[] }).add).to.not.equal(op.add);
      expect(checkOp('counter', { inc: -COUNTER_INC_MAX }).ok).to.equal(true);
      expect(checkOp('set', { add: undefined, remove: ['x'] })).to.deep.equal({ ok: true, op: { remove: ['x'] } });
      expect(checkOp('map', { remove: [{ field: 'f', type: 'map' }] }).ok).to.equal(true);
    });
  });

  describe('applyOp', () => {
    it('refuses an operation of another type, and a malformed operation id', () => {
      expect(a.tryApply('set', emptyState('set'), { inc: 1 })).to.deep.include({ ok: false, field: 'op.inc' });
      expect(a.tryApply('counter', emptyState('counter'), { inc: 1 }, '')).to.deep.include({ ok: false, field: 'opId' });
      expect(a.tryApply('counter', emptyState('counter'), { inc: 1 }, 'x'.repeat(65))).to.deep.include({ ok: false, field: 'opId' });
    });

    it('asserts on our own misuse: a state of another type, a counter that does not grow', () => {
      expect(() => a.tryApply('set', emptyState('counter'), { add: ['x'] })).to.throw(AssertionError);
      expect(() => applyOp('set', emptyState('set'), { add: ['x', 'y'] }, { actor: 'a', nextCounter: () => 7 })).to.throw(AssertionError);
      expect(() => applyOp('flag', emptyState('flag'), { enable: true }, { actor: '', nextCounter: () => 7 })).to.throw(AssertionError);
    });

    it('never mutates its inputs', () => {
      const states = CRDT_TYPES.map((type) => deepFreeze(a.apply(type, emptyState(type), sampleOp(type))));
      CRDT_TYPES.forEach((type, i) => {
        const state = states[i] as CrdtState;
        const op = deepFreeze(sampleOp(type));
        const other = deepFreeze(b.apply(type, emptyState(type), sampleOp(type), 'x'));
        const next = b.apply(type, state, op, 'op');
        mergeStates(type, mergeStates(type, state, other), next);
        expect(valueOf(type, state)).to.deep.equal(valueOf(type, a.apply(type, emptyState(type), sampleOp(type))));
      });
    });
  });

  describe('encoding', () => {
    it('round-trips every type, and encodes equal states to identical bytes', () => {
      for (const type of CRDT_TYPES) {
        const x = a.apply(type, emptyState(type), sampleOp(type), 'op-a');
        const y = b.apply(type, emptyState(type), sampleOp(type));
        const xy = mergeStates(type, x, y);
        const back = roundTrip(type, xy);
        expect(equalStates(type, back, xy), type).to.equal(true);
        expect(valueOf(type, back)).to.deep.equal(valueOf(type, xy));
        expect(encodeState(type, mergeStates(type, y, x))).to.deep.equal(encodeState(type, xy));
        expect(encodeState(type, back)).to.deep.equal(encodeState(type, xy));
        expect(equalStates(type, roundTrip(type, emptyState(type)), emptyState(type))).to.equal(true);
      }
    });

    it('refuses random bytes without throwing', () => {
      const prng = new Prng(20240611);
      let refused = 0;
      for (let i = 0; i < 500; i++) {
        const bytes = Uint8Array.from({ length: 1 + prng.int(40) }, () => prng.int(256));
        for (const type of CRDT_TYPES) if (!decodeState(type, bytes).ok) refused++;
      }
      expect(refused).to.equal(500 * CRDT_TYPES.length);
    });

    it('refuses the state of another type', () => {
      for (const type of CRDT_TYPES) {
        const bytes = encodeState(type, a.apply(type, emptyState(type), sampleOp(type)));
        for (const other of CRDT_TYPES) expect(decodeState(other, bytes).ok, `${type} as ${other}`).to.equal(other === type);
      }
    });

    const dot = (actor: string, counter: number): [string, number] => [actor, counter];
    const shapes: readonly [string, CrdtType, unknown, RegExp][] = [
      ['a bare number', 'counter', 5, /expected \[1, type/],
      ['a map', 'set', { entries: [] }, /expected \[1, type/],
      ['an unknown format', 'set', [2, 'set', [], [[], []]], /expected \[1, type/],
      ['a missing body', 'set', [1, 'set', []], /expected \[1, type/],
      ['members out of order', 'set', [1, 'set', [], [[['b', [dot('a', 1)]], ['a', [dot('a', 2)]]], [dot('a', 2)]]], /members not strictly sorted/],
      ['a member without dots', 'set', [1, 'set', [], [[['a', []]], [dot('a', 1)]]], /member without dots/],
      ['a dot outside the context', 'set', [1, 'set', [], [[['a', [dot('a', 3)]]], [dot('a', 2)]]], /not in the causal context/],
      ['a context out of order', 'flag', [1, 'flag', [], [[], [dot('b', 1), dot('a', 1)]]], /context\[1\]: actors not strictly sorted/],
      ['a zero counter', 'flag', [1, 'flag', [], [[dot('a', 0)], [dot('a', 0)]]], /not positive/],
      ['an empty actor', 'flag', [1, 'flag', [], [[dot('', 1)], [dot('', 1)]]], /actor is empty/],
      ['a register value that is a number', 'register', [1, 'register', [], [[[dot('a', 1), 7]], [dot('a', 1)]]], /value must be a string/],
      ['a negative counter total', 'counter', [1, 'counter', [], [[['a', -1, 0, 1]], []]], /non-negative safe integers/],
      ['a fractional counter total', 'counter', [1, 'counter', [], [[['a', 1.5, 0, 1]], []]], /non-negative safe integers/],
      ['a tombstone without an entry', 'counter', [1, 'counter', [], [[['a', 1, 0, 1]], [['b', 1, 0]]]], /without an entry/],
      ['an empty tombstone', 'counter', [1, 'counter', [], [[['a', 1, 0, 1]], [['a', 0, 0]]]], /empty tombstone/],
      ['a map field of an unknown type', 'map', [1, 'map', [], [[['f', 'doc', [dot('a', 1)], []]], [dot('a', 1)]]], /unknown type/],
      ['an empty map field', 'map', [1, 'map', [], [[['f', 'flag', [], [[], []]]], [dot('a', 1)]]], /neither presence nor state/],
      ['map fields out of order', 'map', [1, 'map', [], [[['f', 'set', [dot('a', 1)], [[], []]], ['f', 'flag', [dot('a', 2)], [[], []]]], [dot('a', 2)]]], /fields not strictly sorted/],
      ['a __proto__ field', 'map', [1, 'map', [], [[['__proto__', 'flag', [dot('a', 1)], [[], []]]], [dot('a', 1)]]], /__proto__/],
      ['duplicate op ids', 'flag', [1, 'flag', [['a', 1, ['x', 'x']]], [[], []]], /appears twice/],
      ['an op id list without ids', 'flag', [1, 'flag', [['a', 1, []]], [[], []]], new RegExp(`1 to ${OP_IDS_KEPT} ids`)],
      ['too many op ids', 'flag', [1, 'flag', [['a', 1, Array.from({ length: OP_IDS_KEPT + 1 }, (_, i) => `${i}`)]], [[], []]], new RegExp(`1 to ${OP_IDS_KEPT} ids`)],
      ['an op id that is too long', 'flag', [1, 'flag', [['a', 1, ['x'.repeat(65)]]], [[], []]], /1 to 64 characters/],
      ['a byte string for a member', 'set', [1, 'set', [], [[[new Uint8Array([1]), [dot('a', 1)]]], [dot('a', 1)]]], /member must be a string/],
    ];
    for (const [what, type, value, reason] of shapes) {
      it(`refuses ${what}`, () => {
        const decoded = decodeState(type, encode(value));
        expect(decoded.ok).to.equal(false);
        if (!decoded.ok) expect(decoded.reason).to.match(reason);
      });
    }

    it('refuses maps nested deeper than the limit', () => {
      let body: unknown = [[], [dot('a', 1)]];
      for (let i = 0; i < MAP_DEPTH_MAX; i++) body = [[['f', 'map', [dot('a', 1)], body]], [dot('a', 1)]];
      expect(decodeState('map', encode([1, 'map', [], body])).ok).to.equal(false);
    });
  });
});

/** One valid operation per type that leaves something in the state. */
function sampleOp(type: CrdtType): CrdtOp {
  switch (type) {
    case 'counter':
      return { inc: 3 };
    case 'set':
      return { add: ['b', 'a'] };
    case 'register':
      return { set: 'v' };
    case 'flag':
      return { enable: true };
    case 'map':
      return {
        update: [
          { field: 'n', type: 'counter', op: { inc: 1 } },
          { field: 'm', type: 'map', op: { update: [{ field: 's', type: 'set', op: { add: ['x'] } }] } },
        ],
      };
  }
}
