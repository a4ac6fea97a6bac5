/**
 * Proves the laws of every typed-bucket CRDT on states that real histories produce.
 *
 * How: for each type, fast-check generates histories at three replicas (actors 'a', 'b', 'c'):
 * each replica applies random valid operations to its own state, drawing dots from its own
 * counter (which skips numbers, as a node-wide counter does), often with an operation id from
 * a small pool so that retries happen; at random times a replica merges another's state. Every
 * state that occurs is deep-frozen, so an operation or merge that mutated its input would
 * throw. On those states the spec checks:
 *
 * - the value agrees, at every replica after every step and after a full merge, with a model
 *   of causal histories: every operation is an event that has seen the events its replica had
 *   seen; a write (an add, an assignment, an enable, an increment, a map field update) is live
 *   unless a later event that had seen it removed it (a remove, a reassignment, a disable, a
 *   removal of the field or of a map holding it). So a set holds exactly the members with a
 *   live add (in particular every member added and never removed), a register the values of
 *   its live assignments, and a counter the sum of its live increments, which at top level is
 *   the sum of every increment applied as a non-duplicate;
 * - merge is commutative, associative and idempotent, and absorbs its inputs, with equality
 *   checked both by `equalStates` and by identical `encodeState` bytes;
 * - merging the replicas' final states in any order and grouping gives the same state;
 * - every state round-trips through its bytes, and `decodeState` never throws on random bytes
 *   or on a valid state with one part replaced, and whatever it accepts stays decodable after
 *   merges (decoding is closed under merge).
 *
 * Every property prints its seed; `SEED=<n>` repeats a run.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { decodeSafe, encode } from '../../lib/codec/cbor.js';
import {
  applyOp,
  CRDT_TYPES,
  decodeState,
  emptyState,
  encodeState,
  equalStates,
  mergeStates,
  valueOf,
  type CounterOp,
  type CrdtOp,
  type CrdtState,
  type CrdtType,
  type CrdtValue,
  type FlagOp,
  type MapOp,
  type MapValue,
  type RegisterOp,
  type SetOp,
} from '../../lib/crdt/index.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/crdt/crdt.property.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

const ACTORS = ['a', 'b', 'c'] as const;
const MEMBERS = ['x', 'y', 'z', 'w'] as const;
const VALUES = ['p', 'q', 'r'] as const;
const OP_IDS = ['o1', 'o2', 'o3', 'o4', 'o5'] as const;

/** Map fields the histories use: few, so that updates and removes meet; `f` and `g` both hold a set. */
const FIELDS: readonly (readonly [string, CrdtType])[] = [
  ['f', 'counter'],
  ['f', 'set'],
  ['f', 'map'],
  ['g', 'register'],
  ['g', 'flag'],
  ['g', 'set'],
];

/** Levels of maps in generated operations (the limit is far deeper; two already exercise nesting). */
const MAP_LEVELS = 2;

// ---- operations and histories ----

const counterOpArb: fc.Arbitrary<CounterOp> = fc.integer({ min: -5, max: 9 }).map((inc) => ({ inc }));

/** Adds and removes of a few members; the last word on a member wins, so none is both. */
const setOpArb: fc.Arbitrary<SetOp> = fc
  .array(fc.tuple(fc.constantFrom(...MEMBERS), fc.boolean()), { minLength: 1, maxLength: 3 })
  .map((pairs) => {
    const last = new Map(pairs);
    const add = [...last].filter(([, adds]) => adds).map(([m]) => m);
    const remove = [...last].filter(([, adds]) => !adds).map(([m]) => m);
    return { ...(add.length > 0 ? { add } : {}), ...(remove.length > 0 ? { remove } : {}) };
  });

const registerOpArb: fc.Arbitrary<RegisterOp> = fc.constantFrom(...VALUES).map((set) => ({ set }));

const flagOpArb: fc.Arbitrary<FlagOp> = fc.boolean().map((enable) => ({ enable }));

const mapOpArbs = new Map<number, fc.Arbitrary<MapOp>>();

/** A map operation at map level `level` (1 at the top): field updates and removes, at least one. */
function mapOpArb(level: number): fc.Arbitrary<MapOp> {
  const cached = mapOpArbs.get(level);
  if (cached !== undefined) return cached;
  const fields = FIELDS.filter(([, type]) => type !== 'map' || level < MAP_LEVELS);
  const update = fc.oneof(
    ...fields.map(([field, type]) => opArb(type, level + 1).map((op) => ({ field, type, op }))),
  );
  const remove = fc.constantFrom(...fields).map(([field, type]) => ({ field, type }));
  const arb = fc
    .record({ update: fc.array(update, { maxLength: 3 }), remove: fc.array(remove, { maxLength: 2 }) })
    .filter((op) => op.update.length + op.remove.length > 0)
    .map((op) => ({ ...(op.update.length > 0 ? { update: op.update } : {}), ...(op.remove.length > 0 ? { remove: op.remove } : {}) }));
  mapOpArbs.set(level, arb);
  return arb;
}

function opArb(type: CrdtType, level = 1): fc.Arbitrary<CrdtOp> {
  switch (type) {
    case 'counter':
      return counterOpArb;
    case 'set':
      return setOpArb;
    case 'register':
      return registerOpArb;
    case 'flag':
      return flagOpArb;
    case 'map':
      return mapOpArb(level);
  }
}

type Step = { t: 'op'; at: number; op: CrdtOp; opId: string | undefined } | { t: 'merge'; from: number; to: number };

function historyArb(type: CrdtType): fc.Arbitrary<Step[]> {
  const replica = fc.nat(ACTORS.length - 1);
  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('op' as const),
        at: replica,
        op: opArb(type),
        opId: fc.option(fc.constantFrom(...OP_IDS), { nil: undefined }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('merge' as const), from: replica, to: replica }) },
  );
  return fc.array(step, { maxLength: 30, size: 'max' });
}

// ---- the model: causal histories ----

/** A write under a key (`root/f:set/e:x`), with the value or amount it carries. */
interface Write {
  readonly key: string;
  readonly value?: string;
  readonly amount?: number;
}

/** Kills end with '/' to kill every key under them (a removed field), or name one key exactly. */
interface ModelEvent {
  readonly writes: readonly Write[];
  readonly kills: readonly string[];
  /** The events its replica had seen before it. */
  readonly past: ReadonlySet<number>;
}

type Effect = { readonly writes: readonly Write[]; readonly kills: readonly string[] };

/**
 * What an operation does, as a sequence of effects applied one after the other at its replica
 * (a map operation's removes first, then each update, its presence before its nested effects).
 */
function effects(type: CrdtType, op: CrdtOp, path: string): Effect[] {
  switch (type) {
    case 'counter':
      return [{ writes: [{ key: `${path}/+`, amount: (op as CounterOp).inc }], kills: [] }];
    case 'set': {
      const { add = [], remove = [] } = op as SetOp;
      return [{ writes: add.map((m) => ({ key: `${path}/e:${m}` })), kills: remove.map((m) => `${path}/e:${m}`) }];
    }
    case 'register':
      return [{ writes: [{ key: `${path}/=`, value: (op as RegisterOp).set }], kills: [`${path}/=`] }];
    case 'flag':
      return (op as FlagOp).enable ? [{ writes: [{ key: `${path}/!` }], kills: [] }] : [{ writes: [], kills: [`${path}/!`] }];
    case 'map': {
      const { update = [], remove = [] } = op as MapOp;
      return [
        ...remove.map(({ field, type: t }) => ({ writes: [], kills: [`${path}/${field}:${t}/`] })),
        ...update.flatMap(({ field, type: t, op: nested }) => [
          { writes: [{ key: `${path}/${field}:${t}/@` }], kills: [] },
          ...effects(t, nested, `${path}/${field}:${t}`),
        ]),
      ];
    }
  }
}

class Model {
  private readonly events: ModelEvent[] = [];
  readonly seen: Set<number>[] = ACTORS.map(() => new Set());

  apply(at: number, list: readonly Effect[]): void {
    const seen = this.seen[at] as Set<number>;
    for (const effect of list) {
      this.events.push({ ...effect, past: new Set(seen) });
      seen.add(this.events.length - 1);
    }
  }

  merge(from: number, to: number): void {
    for (const id of this.seen[from] as Set<number>) (this.seen[to] as Set<number>).add(id);
  }

  everything(): Set<number> {
    return new Set(this.events.keys());
  }

  /** The writes among `seen` that no event among `seen` killed after seeing them. */
  live(seen: ReadonlySet<number>): Write[] {
    const killers = [...seen].map((id) => this.events[id] as ModelEvent).filter((e) => e.kills.length > 0);
    const out: Write[] = [];
    for (const id of seen) {
      for (const write of (this.events[id] as ModelEvent).writes) {
        const killed = killers.some((k) => k.past.has(id) && k.kills.some((kill) => (kill.endsWith('/') ? write.key.startsWith(kill) : write.key === kill)));
        if (!killed) out.push(write);
      }
    }
    return out;
  }
}

function modelValue(type: CrdtType, path: string, live: readonly Write[]): CrdtValue {
  const under = (suffix: string): Write[] => live.filter((w) => w.key === `${path}/${suffix}`);
  switch (type) {
    case 'counter':
      return under('+').reduce((sum, w) => sum + (w.amount as number), 0);
    case 'set':
      return sortedDistinct(live.filter((w) => w.key.startsWith(`${path}/e:`) && !w.key.slice(path.length + 3).includes('/')).map((w) => w.key.slice(path.length + 3)));
    case 'register':
      return sortedDistinct(under('=').map((w) => w.value as string));
    case 'flag':
      return under('!').length > 0;
    case 'map': {
      const value: MapValue = { counters: {}, sets: {}, registers: {}, flags: {}, maps: {} };
      for (const [field, t] of FIELDS) {
        if (under(`${field}:${t}/@`).length === 0) continue;
        const nested = modelValue(t, `${path}/${field}:${t}`, live);
        const record = { counter: value.counters, set: value.sets, register: value.registers, flag: value.flags, map: value.maps }[t];
        (record as Record<string, CrdtValue>)[field] = nested;
      }
      return value;
    }
  }
}

function sortedDistinct(items: readonly string[]): string[] {
  return [...new Set(items)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

// ---- running a history ----

interface Run {
  /** Each replica's state at the end. */
  readonly finals: CrdtState[];
  /** Every state that occurred, the empty one first. */
  readonly states: CrdtState[];
  readonly model: Model;
  /** The increments of every operation applied as a non-duplicate. */
  readonly incremented: number;
  /** Members some top-level set operation added, and members some removed. */
  readonly added: Set<string>;
  readonly removed: Set<string>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** Runs a history; `observe` sees each replica a step changed, with the model's value for it. */
function run(type: CrdtType, steps: readonly Step[], observe?: (state: CrdtState, expected: CrdtValue) => void): Run {
  const model = new Model();
  const finals = ACTORS.map(() => emptyState(type));
  const states = [emptyState(type)];
  const counters = ACTORS.map(() => 0);
  const result = { finals, states, model, incremented: 0, added: new Set<string>(), removed: new Set<string>() };
  steps.forEach((step, i) => {
    let at: number;
    if (step.t === 'op') {
      at = step.at;
      const actor = ACTORS[at] as string;
      // Counters skip numbers, as one node-wide counter shared by many keys does.
      const nextCounter = (): number => (counters[at] = (counters[at] as number) + 1 + (i % 3));
      const applied = applyOp(type, finals[at] as CrdtState, deepFreeze(step.op), { actor, nextCounter, ...(step.opId === undefined ? {} : { opId: step.opId }) });
      if (!applied.ok) expect.fail(`a valid operation was refused: ${applied.field}: ${applied.reason}`);
      if (applied.duplicate) {
        expect(applied.state, 'a duplicate leaves the state alone').to.equal(finals[at]);
      } else {
        model.apply(at, effects(type, step.op, 'root'));
        if (type === 'counter') result.incremented += (step.op as CounterOp).inc;
        if (type === 'set') {
          for (const m of (step.op as SetOp).add ?? []) result.added.add(m);
          for (const m of (step.op as SetOp).remove ?? []) result.removed.add(m);
        }
      }
      finals[at] = deepFreeze(applied.state);
    } else {
      at = step.to;
      finals[at] = deepFreeze(mergeStates(type, finals[step.to] as CrdtState, finals[step.from] as CrdtState));
      model.merge(step.from, step.to);
    }
    states.push(finals[at] as CrdtState);
    observe?.(finals[at] as CrdtState, modelValue(type, 'root', model.live(model.seen[at] as Set<number>)));
  });
  return result;
}

function mergeAll(type: CrdtType, states: readonly CrdtState[]): CrdtState {
  return states.reduce((acc, s) => mergeStates(type, acc, s), emptyState(type));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Equal as lattice elements, and encoded to identical bytes. */
function expectSame(type: CrdtType, x: CrdtState, y: CrdtState, law: string): void {
  expect(equalStates(type, x, y), `${law} (equalStates)`).to.equal(true);
  expect(hex(encodeState(type, x)), `${law} (bytes)`).to.equal(hex(encodeState(type, y)));
}

function pick<T>(items: readonly T[], i: number): T {
  return items[i % items.length] as T;
}

/** Merges `states` in the order given by `order` and the grouping given by `splits`. */
function mergeGrouped(type: CrdtType, states: readonly CrdtState[], splits: readonly number[], at = 0): CrdtState {
  if (states.length === 1) return states[0] as CrdtState;
  const cut = 1 + ((splits[at % Math.max(splits.length, 1)] ?? 0) % (states.length - 1));
  return mergeStates(type, mergeGrouped(type, states.slice(0, cut), splits, at + 1), mergeGrouped(type, states.slice(cut), splits, at + 2));
}

/** Replaces the part of a plain structure that `path` leads to (an index per level, taken modulo). */
function replaceAt(value: unknown, path: readonly number[], replacement: unknown): unknown {
  if (!Array.isArray(value) || value.length === 0 || path.length === 0) return replacement;
  const i = (path[0] as number) % value.length;
  return value.map((item, k) => (k === i ? replaceAt(item, path.slice(1), replacement) : item));
}

/** Replacement parts: mostly plausible (small counters, actor and member names), some plainly wrong. */
const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom('a', 'b', 'c', 'd', 'x', 'y', 'p', 'f', 'set', 'flag') },
  { weight: 2, arbitrary: fc.constantFrom(-1, 1.5, 2 ** 52 + 1, '', '__proto__', null, true, [], [[]], [['a', 1]], [['a', 0]], 'x'.repeat(1025)) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.string({ maxLength: 3 }) },
);

// ---- the properties ----

describe('crdt properties', function () {
  this.timeout(60_000);

  for (const type of CRDT_TYPES) {
    describe(type, () => {
      it('agrees with the causal model at every replica after every step, and after a full merge', () => {
        check(
          fc.property(historyArb(type), (steps) => {
            const result = run(type, steps, (state, expected) => expect(valueOf(type, state)).to.deep.equal(expected));
            const full = mergeAll(type, result.finals);
            const value = valueOf(type, full);
            expect(value, 'full merge').to.deep.equal(modelValue(type, 'root', result.model.live(result.model.everything())));
            if (type === 'counter') expect(value, 'the sum of every increment applied once').to.equal(result.incremented);
            if (type === 'set') {
              for (const m of result.added) if (!result.removed.has(m)) expect(value as string[], `${m} was added and never removed`).to.include(m);
            }
          }),
          300,
        );
      });

      it('merge is commutative, associative and idempotent, and absorbs its inputs', () => {
        check(
          fc.property(historyArb(type), fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
            const { states } = run(type, steps);
            const [a, b, c] = [pick(states, i), pick(states, j), pick(states, k)];
            const ab = mergeStates(type, a, b);
            expectSame(type, ab, mergeStates(type, b, a), 'commutative');
            expectSame(type, mergeStates(type, ab, c), mergeStates(type, a, mergeStates(type, b, c)), 'associative');
            expectSame(type, mergeStates(type, a, a), a, 'idempotent');
            expectSame(type, mergeStates(type, ab, a), ab, 'absorbs a');
            expectSame(type, mergeStates(type, emptyState(type), b), b, 'the empty state is neutral');
          }),
          300,
        );
      });

      it('merging the final states in any order and grouping gives the same state', () => {
        check(
          fc.property(historyArb(type), fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (steps, order, splits) => {
            const { finals } = run(type, steps);
            // Every replica's final state, some twice, in a shuffled order.
            const ranked = [...finals, ...finals.slice(0, order.length % 3)].map((s, n) => ({ s, rank: order[n] ?? n }));
            const shuffled = ranked.sort((x, y) => x.rank - y.rank).map(({ s }) => s);
            const reference = mergeAll(type, finals);
            const grouped = mergeGrouped(type, shuffled, splits);
            expectSame(type, grouped, reference, 'order and grouping do not matter');
            expect(valueOf(type, grouped)).to.deep.equal(valueOf(type, reference));
          }),
          200,
        );
      });

      it('round-trips every state through its canonical bytes', () => {
        check(
          fc.property(historyArb(type), (steps) => {
            for (const state of run(type, steps).states) {
              const decoded = decodeState(type, encodeState(type, state));
              if (!decoded.ok) expect.fail(`refused its own encoding: ${decoded.reason}`);
              expectSame(type, decoded.state, state, 'round trip');
            }
          }),
          100,
        );
      });

      it('decodes damaged bytes to a result, never a throw, and keeps what it accepts decodable under merges', () => {
        check(
          fc.property(historyArb(type), fc.array(fc.nat(), { maxLength: 8 }), junkArb, fc.uint8Array({ maxLength: 64 }), (steps, path, junk, noise) => {
            const { finals } = run(type, steps);
            const full = mergeAll(type, finals);
            expect(() => decodeState(type, noise), 'random bytes').to.not.throw();
            const plain = decodeSafe(encodeState(type, full), { depthMax: 64 });
            if (!plain.ok) expect.fail(plain.reason);
            const damaged = decodeState(type, encode(replaceAt(plain.value, path, junk)));
            if (!damaged.ok) return;
            for (const other of [full, ...finals]) {
              const merged = mergeStates(type, damaged.state, other);
              const again = decodeState(type, encodeState(type, merged));
              expect(again.ok, 'a merge of accepted states is accepted').to.equal(true);
              valueOf(type, merged);
            }
          }),
          300,
        );
      });
    });
  }
});
