/**
 * Proves the laws of dotted version vector sets on clocks that real histories produce.
 *
 * How: fast-check generates histories of puts at up to four replica actors, each with a random
 * context (none, a fresh read of some replicas, or the join of any earlier state, so often
 * stale), interleaved with random replica-to-replica syncs. Every value written is a unique
 * number, so clocks can be compared exactly. On those clocks the spec checks:
 *
 * - the compact clock agrees, step by step, with a reference model that keeps explicit sets of
 *   seen and live dots (causal histories, as in the DAIS 2014 paper), and a value is lost only
 *   if some later put's context covered its dot;
 * - `descends` is a partial order (reflexive, antisymmetric, transitive), on history clocks and
 *   on arbitrary vectors, and `mergeVectors` is the least upper bound;
 * - `sync` is commutative, associative and idempotent, and its result descends both inputs;
 * - no sibling growth: when k writers always write with the context of their latest read, no
 *   replica ever holds more than k siblings, and with one writer exactly one.
 *
 * Every property prints its seed; `SEED=<n>` repeats a run.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import {
  concurrent,
  descends,
  dominates,
  dvvDescends,
  emptyDvv,
  equalDvv,
  equalVectors,
  join,
  mergeVectors,
  siblingCount,
  sync,
  update,
  values,
  type Actor,
  type Dvv,
  type VersionVector,
} from '../../lib/clock/index.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/clock/dvv.property.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

/** Replica actors, listed out of order so that entry sorting is exercised ('Z' < 'a' < 'n10' < 'n2'). */
const ACTORS: readonly Actor[] = ['n2', 'n10', 'Z', 'a'];

function actorOf(replica: number): Actor {
  return ACTORS[replica] as Actor;
}

const sameValue = (x: number, y: number): boolean => x === y;

// ---- histories ----

type ContextChoice = { kind: 'none' } | { kind: 'read'; from: number[] } | { kind: 'stale'; pick: number };
type Step = { t: 'put'; at: number; ctx: ContextChoice } | { t: 'sync'; from: number; to: number };
interface History {
  readonly replicas: number;
  readonly steps: readonly Step[];
}

function indices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function contextArb(n: number): fc.Arbitrary<ContextChoice> {
  return fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('read' as const), from: fc.subarray(indices(n), { minLength: 1 }) }),
    fc.record({ kind: fc.constant('stale' as const), pick: fc.nat() }),
  );
}

function stepArb(n: number): fc.Arbitrary<Step> {
  return fc.oneof(
    fc.record({ t: fc.constant('put' as const), at: fc.nat(n - 1), ctx: contextArb(n) }),
    fc.record({ t: fc.constant('sync' as const), from: fc.nat(n - 1), to: fc.nat(n - 1) }),
  );
}

const historyArb: fc.Arbitrary<History> = fc
  .integer({ min: 1, max: ACTORS.length })
  .chain((replicas) => fc.record({ replicas: fc.constant(replicas), steps: fc.array(stepArb(replicas), { maxLength: 60, size: 'max' }) }));

/** What one step did, for the model to replay. */
type Event = { t: 'put'; at: number; ctx: VersionVector; value: number } | { t: 'sync'; from: number; to: number };

interface Run {
  /** Each replica's clock after every step, starting from the empty clock. */
  readonly timelines: Dvv<number>[][];
  /** Every clock that occurred: replica states and reads. */
  readonly clocks: Dvv<number>[];
  readonly events: Event[];
}

function contextFor(choice: ContextChoice, states: readonly Dvv<number>[], clocks: Dvv<number>[]): VersionVector {
  if (choice.kind === 'none') return [];
  if (choice.kind === 'stale') return join(clocks[choice.pick % clocks.length] as Dvv<number>);
  const read = choice.from.reduce((acc, i) => sync(acc, states[i] as Dvv<number>), emptyDvv<number>());
  clocks.push(read);
  return join(read);
}

function run(history: History): Run {
  const states = indices(history.replicas).map(() => emptyDvv<number>());
  const timelines = states.map((state) => [state]);
  const clocks: Dvv<number>[] = [emptyDvv()];
  const events: Event[] = [];
  history.steps.forEach((step, value) => {
    if (step.t === 'put') {
      const ctx = contextFor(step.ctx, states, clocks);
      states[step.at] = update(states[step.at] as Dvv<number>, ctx, value, actorOf(step.at));
      events.push({ t: 'put', at: step.at, ctx, value });
    } else {
      states[step.to] = sync(states[step.to] as Dvv<number>, states[step.from] as Dvv<number>);
      events.push(step);
    }
    states.forEach((state, i) => (timelines[i] as Dvv<number>[]).push(state));
    clocks.push(...states);
  });
  return { timelines, clocks, events };
}

// ---- the reference model: explicit sets of dots ----

interface LiveDot {
  readonly actor: Actor;
  readonly counter: number;
  readonly value: number;
}

interface ModelReplica {
  /** Seen events per actor; always downward closed, so one counter per actor describes it. */
  readonly seen: ReadonlyMap<Actor, number>;
  /** Live dots by key `actor#counter`. */
  readonly live: ReadonlyMap<string, LiveDot>;
}

const dotKey = (actor: Actor, counter: number): string => `${actor}#${counter}`;
const hasSeen = (seen: ReadonlyMap<Actor, number>, dot: { actor: Actor; counter: number }): boolean => (seen.get(dot.actor) ?? 0) >= dot.counter;

function mergeSeen(a: ReadonlyMap<Actor, number>, b: Iterable<readonly [Actor, number]>): Map<Actor, number> {
  const out = new Map(a);
  for (const [actor, n] of b) out.set(actor, Math.max(out.get(actor) ?? 0, n));
  return out;
}

function modelPut(m: ModelReplica, ctx: VersionVector, value: number, actor: Actor): ModelReplica {
  const ctxSeen = new Map(ctx);
  const live = new Map([...m.live].filter(([, dot]) => !hasSeen(ctxSeen, dot)));
  const seen = mergeSeen(m.seen, ctx);
  const counter = (seen.get(actor) ?? 0) + 1;
  seen.set(actor, counter);
  live.set(dotKey(actor, counter), { actor, counter, value });
  return { seen, live };
}

/** A dot survives unless the other side has seen it and no longer holds it. */
function modelSync(x: ModelReplica, y: ModelReplica): ModelReplica {
  const live = new Map<string, LiveDot>();
  for (const [key, dot] of x.live) if (!hasSeen(y.seen, dot) || y.live.has(key)) live.set(key, dot);
  for (const [key, dot] of y.live) if (!hasSeen(x.seen, dot) || x.live.has(key)) live.set(key, dot);
  return { seen: mergeSeen(x.seen, y.seen), live };
}

function liveDotsOf(d: Dvv<number>): Map<string, LiveDot> {
  const out = new Map<string, LiveDot>();
  for (const { actor, counter, values: list } of d.entries) {
    list.forEach((value, i) => out.set(dotKey(actor, counter - i), { actor, counter: counter - i, value }));
  }
  return out;
}

/** Replays a run in the model and compares every replica after every step. */
function checkAgainstModel(history: History, result: Run): void {
  let model: ModelReplica[] = indices(history.replicas).map(() => ({ seen: new Map(), live: new Map() }));
  const written: LiveDot[] = [];
  const killed = new Set<string>();
  result.events.forEach((event, step) => {
    if (event.t === 'put') {
      const ctxSeen = new Map(event.ctx);
      for (const dot of written) if (hasSeen(ctxSeen, dot)) killed.add(dotKey(dot.actor, dot.counter));
      const next = modelPut(model[event.at] as ModelReplica, event.ctx, event.value, actorOf(event.at));
      model = model.map((m, i) => (i === event.at ? next : m));
      written.push([...next.live.values()].find((dot) => dot.value === event.value) as LiveDot);
    } else {
      const next = modelSync(model[event.to] as ModelReplica, model[event.from] as ModelReplica);
      model = model.map((m, i) => (i === event.to ? next : m));
    }
    model.forEach((m, i) => compareReplica(m, (result.timelines[i] as Dvv<number>[])[step + 1] as Dvv<number>, written, killed));
  });
}

function compareReplica(m: ModelReplica, d: Dvv<number>, written: readonly LiveDot[], killed: ReadonlySet<string>): void {
  const seen = [...m.seen].sort(([x], [y]) => (x < y ? -1 : 1));
  expect(join(d), 'context equals the seen set').to.deep.equal(seen);
  const live = liveDotsOf(d);
  expect([...live.entries()].sort(), 'live dots equal the model').to.deep.equal([...m.live.entries()].sort());
  // A value this replica has seen is either still here or was covered by a later put's context.
  for (const dot of written) {
    const key = dotKey(dot.actor, dot.counter);
    if (hasSeen(m.seen, dot) && !live.has(key)) expect(killed.has(key), `value ${dot.value} (${key}) was lost`).to.equal(true);
  }
}

// ---- arbitrary vectors ----

const vectorArb: fc.Arbitrary<VersionVector> = fc
  .dictionary(fc.constantFrom(...ACTORS), fc.integer({ min: 1, max: 3 }), { maxKeys: ACTORS.length })
  .map((record) => Object.entries(record).sort(([x], [y]) => (x < y ? -1 : 1)));

function pick<T>(items: readonly T[], i: number): T {
  return items[i % items.length] as T;
}

describe('clock/dvv properties', function () {
  this.timeout(20_000);

  it('agrees with a model of explicit dot sets, and loses a value only when a later context covered it', () => {
    check(
      fc.property(historyArb, (history) => {
        checkAgainstModel(history, run(history));
      }),
      300,
    );
  });

  it('sync is commutative, associative and idempotent, and descends both inputs', () => {
    check(
      fc.property(historyArb, fc.nat(), fc.nat(), fc.nat(), (history, i, j, k) => {
        const { clocks } = run(history);
        const [a, b, c] = [pick(clocks, i), pick(clocks, j), pick(clocks, k)];
        const ab = sync(a, b);
        expect(equalDvv(ab, sync(b, a), sameValue), 'commutative').to.equal(true);
        expect(equalDvv(sync(ab, c), sync(a, sync(b, c)), sameValue), 'associative').to.equal(true);
        expect(equalDvv(sync(a, a), a, sameValue), 'idempotent').to.equal(true);
        expect(equalDvv(sync(ab, a), ab, sameValue), 'absorbs an input').to.equal(true);
        expect(dvvDescends(ab, a) && dvvDescends(ab, b), 'descends both').to.equal(true);
        expect(equalVectors(join(ab), mergeVectors(join(a), join(b))), 'context is the merge').to.equal(true);
        const inputs = new Set([...values(a), ...values(b)]);
        expect(values(ab).every((v) => inputs.has(v)), 'no value from nowhere').to.equal(true);
      }),
      500,
    );
  });

  it('descends is a partial order on the clocks of a history, and a replica only moves forward', () => {
    check(
      fc.property(historyArb, fc.nat(), fc.nat(), fc.nat(), (history, i, j, k) => {
        const { clocks, timelines } = run(history);
        const [a, b, c] = [pick(clocks, i), pick(clocks, j), pick(clocks, k)].map((d) => join(d)) as [VersionVector, VersionVector, VersionVector];
        checkPartialOrder(a, b, c);
        for (const timeline of timelines) {
          timeline.forEach((d, t) => expect(t === 0 || dvvDescends(d, timeline[t - 1] as Dvv<number>), 'monotone').to.equal(true));
        }
      }),
      300,
    );
  });

  it('descends is a partial order on arbitrary vectors, and mergeVectors is the least upper bound', () => {
    check(
      fc.property(vectorArb, vectorArb, vectorArb, (a, b, c) => {
        checkPartialOrder(a, b, c);
        const ab = mergeVectors(a, b);
        expect(descends(ab, a) && descends(ab, b), 'upper bound').to.equal(true);
        if (descends(c, a) && descends(c, b)) expect(descends(c, ab), 'least').to.equal(true);
        const cases = [equalVectors(a, b), dominates(a, b), dominates(b, a), concurrent(a, b)];
        expect(cases.filter(Boolean), 'exactly one of equal, a > b, b > a, concurrent').to.have.length(1);
      }),
      2000,
    );
  });

  it('keeps at most k siblings when k writers each pass the context of their latest read', () => {
    check(
      fc.property(writersArb(4), (world) => {
        runWriters(world, (states, read) => {
          for (const state of [...states, read]) expect(siblingCount(state)).to.be.at.most(world.homes.length);
        });
      }),
      1000,
    );
  });

  it('keeps exactly one value when a single writer passes the context of its latest read', () => {
    check(
      fc.property(writersArb(1), (world) => {
        runWriters(world, (states, read) => {
          for (const state of [...states, read]) expect(siblingCount(state)).to.equal(state.entries.length === 0 ? 0 : 1);
        });
      }),
      300,
    );
  });
});

function checkPartialOrder(a: VersionVector, b: VersionVector, c: VersionVector): void {
  expect(descends(a, a), 'reflexive').to.equal(true);
  if (descends(a, b) && descends(b, a)) expect(equalVectors(a, b), 'antisymmetric').to.equal(true);
  if (descends(a, b) && descends(b, c)) expect(descends(a, c), 'transitive').to.equal(true);
}

// ---- writers that read before they write ----

type WriterStep = { t: 'write'; writer: number; sees: number[] } | { t: 'sync'; from: number; to: number };
interface Writers {
  readonly replicas: number;
  /** The replica each writer reads from and writes through (its coordinator). */
  readonly homes: readonly number[];
  readonly steps: readonly WriterStep[];
}

function writersArb(writersMax: number): fc.Arbitrary<Writers> {
  return fc.integer({ min: 1, max: ACTORS.length }).chain((replicas) =>
    fc.integer({ min: 1, max: writersMax }).chain((writers) =>
      fc.record({
        replicas: fc.constant(replicas),
        // Writers sharing a home serialize there, so homes are often spread round-robin.
        homes: fc.oneof(
          fc.array(fc.nat(replicas - 1), { minLength: writers, maxLength: writers }),
          fc.nat(replicas - 1).map((offset) => indices(writers).map((w) => (offset + w) % replicas)),
        ),
        steps: fc.array(
          // Writes outnumber syncs, so replicas often diverge and concurrent siblings pile up.
          fc.oneof(
            { weight: 3, arbitrary: fc.record({ t: fc.constant('write' as const), writer: fc.nat(writers - 1), sees: seesArb(replicas) }) },
            { weight: 1, arbitrary: fc.record({ t: fc.constant('sync' as const), from: fc.nat(replicas - 1), to: fc.nat(replicas - 1) }) },
          ),
          { maxLength: 60, size: 'max' },
        ),
      }),
    ),
  );
}

/** The replicas a writer's read reaches besides its home: often none, so writers run concurrently. */
function seesArb(replicas: number): fc.Arbitrary<number[]> {
  return fc.oneof(fc.constant<number[]>([]), fc.subarray(indices(replicas)));
}

/**
 * Runs the writers: a write reads (syncs) its home replica and whatever other replicas it can
 * see, then puts a new value through its home with that read's context. `observe` gets every
 * replica's clock and the latest read after each step.
 */
function runWriters(world: Writers, observe: (states: readonly Dvv<number>[], read: Dvv<number>) => void): void {
  const states = indices(world.replicas).map(() => emptyDvv<number>());
  let read = emptyDvv<number>();
  world.steps.forEach((step, value) => {
    if (step.t === 'write') {
      const home = world.homes[step.writer] as number;
      read = [home, ...step.sees].reduce((acc, i) => sync(acc, states[i] as Dvv<number>), emptyDvv<number>());
      states[home] = update(states[home] as Dvv<number>, join(read), value, actorOf(home));
    } else {
      states[step.to] = sync(states[step.to] as Dvv<number>, states[step.from] as Dvv<number>);
    }
    observe(states, read);
  });
}
