/**
 * Dotted version vector sets: the causal clock of one key and the sibling values it holds.
 *
 * Paper: Almeida, Baquero, Gonçalves, Preguiça, Fonte, "Scalable and Accurate Causality
 * Tracking for Eventually Consistent Stores" (DAIS 2014); the algebra is the one of Riak's
 * `dvvset.erl`. Actors are replicas (a node's storage epoch), never clients, so the clock grows
 * with the number of replicas that coordinated a write, not with the number of writers.
 *
 * Design. A clock is a list of entries `(actor, counter, values)` sorted by actor. The counter
 * says the clock has seen every event `(actor, 1) ... (actor, counter)`; the values are the
 * siblings still alive among those events, newest first, and `values[i]` was written by the
 * event (its "dot") `(actor, counter - i)`. The live dots of one actor are therefore always the
 * newest ones, a contiguous run ending at the counter: writes only ever add a dot one above the
 * counter, and both discarding by a context and merging with another clock remove a prefix of
 * older dots. That is what lets a clock store one integer per actor instead of a set of dots.
 *
 * - `update` is a put: drop the server's values whose dots the writer's context covers, then
 *   add the new value under a fresh dot of the coordinating replica.
 * - `sync` merges two replicas' clocks: a value survives unless the other side has seen its dot
 *   and no longer holds it (someone superseded it there).
 * - `join` is the causal context handed to a reader: one counter per actor.
 * - `validateDvv` turns a clock from a peer or the disk into a result, never trusting it.
 *
 * Invariants of every clock built here: entries sorted by actor (plain `<` on strings) with no
 * duplicates, counters positive integers with `counter >= values.length`. Clocks are plain,
 * immutable data (CBOR-friendly); functions never mutate their inputs and may share entries
 * between input and output.
 */

import { assert } from '../base/assert.js';
import { ACTORS_MAX } from './limits.js';
import { actorProblem, counterProblem, isRecord, refuse, type Checked } from './validate.js';

/** A replica that creates events: a node's storage epoch. */
export type Actor = string;

/** One event: the `counter`-th write coordinated by `actor`. */
export type Dot = readonly [Actor, number];

export interface DvvEntry<T> {
  readonly actor: Actor;
  /** Every event of `actor` up to this counter has been seen. */
  readonly counter: number;
  /** Newest first: `values[i]` carries the dot `(actor, counter - i)`. */
  readonly values: readonly T[];
}

export interface Dvv<T> {
  /** Sorted by actor (plain `<` on strings), one entry per actor. */
  readonly entries: readonly DvvEntry<T>[];
}

/** A causal context: sorted by actor, unique actors, counters > 0. */
export type VersionVector = readonly (readonly [Actor, number])[];

const EMPTY: Dvv<never> = Object.freeze({ entries: Object.freeze([]) });

/** The clock of a key nobody has written. */
export function emptyDvv<T>(): Dvv<T> {
  return EMPTY;
}

/**
 * A put coordinated by replica `actor`: every server value whose dot `context` covers is
 * discarded, and `value` is added under the dot `(actor, n + 1)`, where n is the highest counter
 * of `actor` known to either the server or the context (so a dot is never issued twice).
 *
 * The result also keeps the context's counters: if a value the writer saw has not reached this
 * replica yet, it is discarded when it arrives. This is `dvvset:update/3`: a sync of the context
 * (as a clock with no values) with the server clock, followed by a new event.
 *
 * `floor`: when `actor` holds no value of the key, the new dot's counter is at least `floor`.
 * A coordinator passes one above every counter it ever issued, so that a key whose clock was
 * forgotten (a reaped tombstone) never gets a dot an old context already covers. Skipping
 * counters is safe there: only `actor` issues its dots, and it holds none of this key's.
 */
export function update<T>(server: Dvv<T>, context: VersionVector, value: T, actor: Actor, floor = 0): Dvv<T> {
  assert(actor.length > 0, 'dvv: a put needs a coordinating actor');
  assertVector(context);
  const seen = syncEntries(server.entries, contextEntries<T>(context));
  const result = { entries: event(seen, actor, value, floor) };
  assertDvv(result);
  return result;
}

/**
 * Merges two replicas' clocks (`dvvset:sync/2`). For each actor the counter is the larger one,
 * and a value survives unless the other side has seen its dot and no longer holds it.
 * Commutative, associative and idempotent on clocks where one dot always carries one value.
 */
export function sync<T>(a: Dvv<T>, b: Dvv<T>): Dvv<T> {
  if (a === b) return a;
  const result = { entries: syncEntries(a.entries, b.entries) };
  assertDvv(result);
  return result;
}

/** The causal context of a clock: for each actor, the highest event seen. */
export function join<T>(d: Dvv<T>): VersionVector {
  return d.entries.map((entry) => [entry.actor, entry.counter] as const);
}

/** Every sibling value, ordered by actor and, within one actor, newest first. */
export function values<T>(d: Dvv<T>): T[] {
  const out: T[] = [];
  for (const entry of d.entries) out.push(...entry.values);
  return out;
}

export function siblingCount<T>(d: Dvv<T>): number {
  let count = 0;
  for (const entry of d.entries) count += entry.values.length;
  return count;
}

/** A new clock with every value passed through `f` (given the value and its dot); dots are kept. */
export function mapValues<T, U>(d: Dvv<T>, f: (value: T, dot: Dot) => U): Dvv<U> {
  return {
    entries: d.entries.map((entry) => ({
      actor: entry.actor,
      counter: entry.counter,
      values: entry.values.map((value, i) => f(value, [entry.actor, entry.counter - i])),
    })),
  };
}

/** Whether `a` has seen everything `b` has: `a >= b` pointwise, a missing actor counting as 0. */
export function descends(a: VersionVector, b: VersionVector): boolean {
  let i = 0;
  for (const [actor, counter] of b) {
    while (i < a.length && (a[i] as readonly [Actor, number])[0] < actor) i++;
    const mine = a[i];
    if (mine === undefined || mine[0] !== actor || mine[1] < counter) return false;
  }
  return true;
}

/** Whether `a` has seen everything `b` has and more. */
export function dominates(a: VersionVector, b: VersionVector): boolean {
  return descends(a, b) && !descends(b, a);
}

/** Whether each has seen something the other has not. Equal vectors are not concurrent. */
export function concurrent(a: VersionVector, b: VersionVector): boolean {
  return !descends(a, b) && !descends(b, a);
}

/** Same actors with the same counters. Vectors are canonical (sorted, no zeros), so this is `descends` both ways. */
export function equalVectors(a: VersionVector, b: VersionVector): boolean {
  if (a.length !== b.length) return false;
  return a.every(([actor, counter], i) => {
    const other = b[i] as readonly [Actor, number];
    return other[0] === actor && other[1] === counter;
  });
}

/** The pointwise maximum: the least vector that descends both. */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: (readonly [Actor, number])[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as readonly [Actor, number];
    const y = b[j] as readonly [Actor, number];
    if (x[0] < y[0]) {
      out.push(x);
      i++;
    } else if (y[0] < x[0]) {
      out.push(y);
      j++;
    } else {
      out.push(x[1] >= y[1] ? x : y);
      i++;
      j++;
    }
  }
  out.push(...a.slice(i), ...b.slice(j));
  return out;
}

/** Whether clock `a` has seen every event clock `b` has. */
export function dvvDescends<T>(a: Dvv<T>, b: Dvv<T>): boolean {
  return descends(join(a), join(b));
}

/** Structural equality: same actors, counters and values (compared with `eqValue`) in the same order. */
export function equalDvv<T>(a: Dvv<T>, b: Dvv<T>, eqValue: (x: T, y: T) => boolean): boolean {
  if (a.entries.length !== b.entries.length) return false;
  return a.entries.every((x, i) => {
    const y = b.entries[i] as DvvEntry<T>;
    if (x.actor !== y.actor || x.counter !== y.counter || x.values.length !== y.values.length) return false;
    return x.values.every((value, k) => eqValue(value, y.values[k] as T));
  });
}

/**
 * Checks a clock handed over by a peer or read from disk; `isValue` checks each sibling and
 * vouches for `T`. Refuses anything but `{ entries: [{ actor, counter, values }] }` with at most
 * `ACTORS_MAX` entries, actors strictly sorted, acceptable actors and counters (`validate.ts`)
 * and no entry holding more values than it has events. What passes is rebuilt as fresh plain
 * data holding only those fields, so it meets every invariant the functions above assert.
 */
export function validateDvv<T>(d: unknown, isValue: (v: unknown) => boolean): Checked<Dvv<T>> {
  if (!isRecord(d) || !Array.isArray(d.entries)) return refuse('clock is not an object with an entries array');
  return validateEntries<T>(d.entries as unknown[], isValue, (item) => (isRecord(item) ? [item.actor, item.counter, item.values] : undefined), 'not an object', true);
}

/**
 * `validateDvv` for a clock stored as `[actor, counter, values]` tuples (a record on disk),
 * building each entry once. `values` arrays are taken as they are, not copied: the caller
 * hands over arrays it just decoded and holds no other reference to.
 */
export function validateDvvTuples<T>(tuples: unknown, isValue: (v: unknown) => boolean): Checked<Dvv<T>> {
  if (!Array.isArray(tuples)) return refuse('record is not an array');
  return validateEntries<T>(tuples as unknown[], isValue, (item) => (Array.isArray(item) && item.length === 3 ? (item as [unknown, unknown, unknown]) : undefined), 'not an [actor, counter, values] array', false);
}

// ---- internals ----

/** Checks and builds the entries; `fields` reads an item's actor, counter and values, or says it has none. */
function validateEntries<T>(
  raw: readonly unknown[],
  isValue: (v: unknown) => boolean,
  fields: (item: unknown) => readonly [unknown, unknown, unknown] | undefined,
  shapeProblem: string,
  copyValues: boolean,
): Checked<Dvv<T>> {
  if (raw.length > ACTORS_MAX) return refuse(`clock has over ${ACTORS_MAX} actors`);
  const entries: DvvEntry<T>[] = [];
  for (let i = 0; i < raw.length; i++) {
    const parts = fields(raw[i]);
    if (parts === undefined) return refuse(`entry ${i}: ${shapeProblem}`);
    const [actor, counter, values] = parts;
    const problem = actorProblem(actor) ?? counterProblem(counter) ?? valuesProblem(values, counter as number, isValue);
    if (problem !== undefined) return refuse(`entry ${i}: ${problem}`);
    const previous = entries[i - 1];
    if (previous !== undefined && !(previous.actor < (actor as Actor))) return refuse(`entry ${i}: actors not strictly sorted`);
    const list = values as T[];
    entries.push({ actor: actor as Actor, counter: counter as number, values: copyValues ? list.slice() : list });
  }
  return { ok: true, value: { entries } };
}

function valuesProblem(values: unknown, counter: number, isValue: (v: unknown) => boolean): string | undefined {
  if (!Array.isArray(values)) return 'values is not an array';
  if (values.length > counter) return 'more values than events';
  for (let k = 0; k < values.length; k++) if (!isValue(values[k])) return 'a value is malformed';
  return undefined;
}

/** A context as clock entries without values, so that `update` can reuse the merge. */
function contextEntries<T>(context: VersionVector): DvvEntry<T>[] {
  return context.map(([actor, counter]) => ({ actor, counter, values: [] }));
}

/** Merges two sorted entry lists, merging the entries of an actor both sides know. */
function syncEntries<T>(a: readonly DvvEntry<T>[], b: readonly DvvEntry<T>[]): DvvEntry<T>[] {
  const out: DvvEntry<T>[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as DvvEntry<T>;
    const y = b[j] as DvvEntry<T>;
    if (x.actor < y.actor) {
      out.push(x);
      i++;
    } else if (y.actor < x.actor) {
      out.push(y);
      j++;
    } else {
      out.push(mergeEntry(x, y));
      i++;
      j++;
    }
  }
  out.push(...a.slice(i), ...b.slice(j));
  return out;
}

/**
 * Merges two entries of one actor (`dvvset:merge/5`). Let `hi` be the side with the larger
 * counter. Its live dots are `(hi.counter - hi.values.length, hi.counter]`. The other side, `lo`,
 * has seen every dot up to `lo.counter` but still holds only those above
 * `floor = lo.counter - lo.values.length`: a dot of `hi` at or below `floor` was superseded
 * there, so it goes. Every live dot of `lo` is at most `hi.counter`, so it survives only if `hi`
 * still holds it too, and then `hi` carries the same value. Hence: `hi`'s values above `floor`.
 */
function mergeEntry<T>(x: DvvEntry<T>, y: DvvEntry<T>): DvvEntry<T> {
  const [hi, lo] = x.counter >= y.counter ? [x, y] : [y, x];
  const floor = lo.counter - lo.values.length;
  const keep = Math.min(hi.values.length, hi.counter - floor);
  if (keep === hi.values.length) return hi;
  return { actor: hi.actor, counter: hi.counter, values: hi.values.slice(0, keep) };
}

/** Adds `value` under the next dot of `actor` (`dvvset:event/3`), keeping the entries sorted. */
function event<T>(entries: readonly DvvEntry<T>[], actor: Actor, value: T, floor: number): DvvEntry<T>[] {
  const at = entries.findIndex((entry) => entry.actor >= actor);
  const found = at >= 0 && (entries[at] as DvvEntry<T>).actor === actor ? (entries[at] as DvvEntry<T>) : undefined;
  const next = (found?.counter ?? 0) + 1;
  // Values carry consecutive dots down from the counter, so it may only jump when there are none.
  const counter = found === undefined || found.values.length === 0 ? Math.max(next, floor) : next;
  // Counters arriving from outside are capped at 2^52 (limits.ts), so only 2^52 real writes get here.
  assert(Number.isSafeInteger(counter), `dvv: counter of ${actor} overflows`);
  const entry: DvvEntry<T> = { actor, counter, values: [value, ...(found?.values ?? [])] };
  if (at < 0) return [...entries, entry];
  return [...entries.slice(0, at), entry, ...entries.slice(found === undefined ? at : at + 1)];
}

/** Contexts reach `update` only through `decodeContext` or `join`; a malformed one here is our bug. */
function assertVector(v: VersionVector): void {
  v.forEach(([actor, counter], i) => {
    assert(Number.isSafeInteger(counter) && counter > 0, `dvv: context counter of ${actor} is ${counter}`);
    assert(i === 0 || (v[i - 1] as readonly [Actor, number])[0] < actor, `dvv: context not sorted at ${actor}`);
  });
}

/** Checks the invariants of a clock we built; one pass over the entries, none over the values. */
function assertDvv<T>(d: Dvv<T>): void {
  d.entries.forEach((entry, i) => {
    assert(i === 0 || (d.entries[i - 1] as DvvEntry<T>).actor < entry.actor, `dvv: entries not sorted at ${entry.actor}`);
    assert(Number.isSafeInteger(entry.counter) && entry.counter > 0, `dvv: counter of ${entry.actor} is ${entry.counter}`);
    assert(entry.counter >= entry.values.length, `dvv: ${entry.actor} holds more values than events`);
  });
}
