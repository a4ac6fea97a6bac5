/**
 * What every typed bucket shares: dots, causal contexts, the merge rule of dot stores, and the
 * checks applied to operations from clients and to states from peers and disk.
 *
 * Paper: Almeida, Shoker, Baquero, "Delta State Replicated Data Types" (JPDC 2018), section 5
 * on causal CRDTs. A state is a dot store (which events are still live) together with a causal
 * context (which events it has seen). Merging two states keeps a dot that both hold, and a dot
 * that one holds and the other has never seen; a dot one side has seen but no longer holds was
 * removed there, so it goes. An operation replaces what its replica observed with a fresh dot,
 * and that is why concurrent adds win over removes: the remover never saw the new dot.
 *
 * Design. A dot is `[actor, counter]`, where the actor is the coordinating replica. A causal
 * context is a version vector (actor -> highest counter seen, sorted by actor, as in
 * lib/clock/dvv.ts) rather than an arbitrary set of dots. That is sound because an actor always
 * applies an operation to a state holding all of its own earlier dots of that key: so a replica
 * that has seen dot `(a, n)` of one data type has also seen every earlier dot of `a` in it. The
 * counters of one actor need not be contiguous (one node-wide counter serves every key), which
 * a version vector does not mind.
 *
 * Each data type (counter.ts, set.ts, register.ts, flag.ts, map.ts) is a `Kind`: a record of
 * pure functions over its own plain, immutable state (its "body"). Bodies hold only arrays
 * sorted by a fixed key, strings and integers, so their wire form is canonical: two replicas
 * holding the same lattice element encode it to the same bytes, whatever order the merges
 * happened in. Strings sort by plain `<` (UTF-16 code units), as in the clock.
 *
 * Two kinds of failure: an operation or a state from outside is checked into a result with a
 * reason (and, for operations, the offending field), never thrown on; what our own code gets
 * wrong is an assertion.
 */

import { isWellFormed, utf8Length } from '../base/utf8.js';
import { mergeVectors, type VersionVector } from '../clock/dvv.js';
import { actorProblem, counterProblem, refuse, type Checked } from '../clock/validate.js';

export type { Checked } from '../clock/validate.js';
export type { VersionVector } from '../clock/dvv.js';
export { refuse } from '../clock/validate.js';

export type CrdtType = 'counter' | 'set' | 'map' | 'register' | 'flag';

export const CRDT_TYPES: readonly CrdtType[] = Object.freeze(['counter', 'set', 'map', 'register', 'flag'] as const);

/** One event: the `counter`-th event coordinated by replica `actor` (counters may skip). */
export type Dot = readonly [actor: string, counter: number];

/** A map's value: each live field's value, filed by the field's type. */
export type MapValue = {
  counters: Record<string, number>;
  sets: Record<string, string[]>;
  registers: Record<string, string[]>;
  flags: Record<string, boolean>;
  maps: Record<string, MapValue>;
};

/** counter: a number; set: sorted members; register: sorted concurrent values; flag: a boolean; map: a MapValue. */
export type CrdtValue = number | string[] | boolean | MapValue;

/**
 * UTF-8 bytes of a set member, a register value or a map field name. These are names and short
 * values, not documents (a `doc` bucket holds those); 1 KiB matches the key limit.
 */
export const STRING_BYTES_MAX = 1024;

/** Why an operation was refused, and which part of it (`op.add[3]`). */
export type Refusal = { readonly ok: false; readonly reason: string; readonly field: string };

export type OpChecked<O> = { readonly ok: true; readonly op: O } | Refusal;

export type Applied<B> = { readonly ok: true; readonly body: B } | Refusal;

/** Hands out the fresh dots of one operation, each above the last. */
export type NextDot = () => Dot;

/**
 * One data type: its empty state, and pure functions over states `B` and checked operations
 * `O`. `path` names the part of the client's operation being handled (for refusals) or of the
 * stored state being decoded (for reasons); `depth` is the map nesting level, 1 at the top.
 */
export interface Kind<B, O> {
  readonly empty: B;
  /** Checks a client's operation (unknown input); the result is rebuilt as fresh plain data. */
  check(op: unknown, path: string, depth: number): OpChecked<O>;
  /** Applies a checked operation; refuses only what depends on the state (a counter overflow). */
  apply(body: B, op: O, next: NextDot, path: string): Applied<B>;
  /** The least upper bound: commutative, associative, idempotent. */
  merge(a: B, b: B): B;
  value(body: B): CrdtValue;
  /** Observed-remove of everything: what removing a map field does to the field's state. */
  reset(body: B): B;
  /** Whether the body is the empty state (so a map may forget the field holding it). */
  isEmpty(body: B): boolean;
  /** Canonical plain arrays for CBOR. */
  toWire(body: B): unknown;
  /** Checks a decoded wire form fully; the result is rebuilt as fresh plain data. */
  fromWire(raw: unknown, path: string, depth: number): Checked<B>;
}

// ---- ordering ----

export function compareStrings(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Dots sort by actor, then counter. */
export function compareDots(x: Dot, y: Dot): number {
  return compareStrings(x[0], y[0]) || x[1] - y[1];
}

/**
 * Joins two lists sorted by `compare` (no duplicates within a list) into one sorted list: items
 * both hold go through `both`, the others through `onlyA` or `onlyB`; `undefined` drops an item.
 */
export function joinSorted<T>(
  a: readonly T[],
  b: readonly T[],
  compare: (x: T, y: T) => number,
  both: (x: T, y: T) => T | undefined,
  onlyA: (x: T) => T | undefined,
  onlyB: (y: T) => T | undefined,
): T[] {
  const out: T[] = [];
  const push = (item: T | undefined): void => {
    if (item !== undefined) out.push(item);
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as T;
    const y = b[j] as T;
    const order = compare(x, y);
    if (order < 0) {
      push(onlyA(x));
      i++;
    } else if (order > 0) {
      push(onlyB(y));
      j++;
    } else {
      push(both(x, y));
      i++;
      j++;
    }
  }
  for (; i < a.length; i++) push(onlyA(a[i] as T));
  for (; j < b.length; j++) push(onlyB(b[j] as T));
  return out;
}

// ---- causal contexts ----

/** Whether a context has seen a dot. */
export type Seen = (dot: Dot) => boolean;

export function seenIn(context: VersionVector): Seen {
  if (context.length === 0) return () => false;
  const max = new Map(context);
  return ([actor, counter]) => (max.get(actor) ?? 0) >= counter;
}

/** The least context that has seen both. */
export function mergeContexts(a: VersionVector, b: VersionVector): VersionVector {
  if (a === b) return a;
  return mergeVectors(a, b);
}

/** The context after a new event. */
export function withDot(context: VersionVector, dot: Dot): VersionVector {
  return mergeVectors(context, [dot]);
}

/**
 * The dot-store merge: an item (sorted by its dot) survives if both sides hold it, or if one
 * side holds it and the other has never seen it. `choose` picks between two items of one dot;
 * they are equal in every real history, and `choose` only keeps a forged pair commutative.
 */
export function mergeDotted<T>(
  a: readonly T[],
  b: readonly T[],
  seenByA: Seen,
  seenByB: Seen,
  dotOf: (item: T) => Dot,
  choose: (x: T, y: T) => T = (x) => x,
): T[] {
  return joinSorted(
    a,
    b,
    (x, y) => compareDots(dotOf(x), dotOf(y)),
    choose,
    (x) => (seenByB(dotOf(x)) ? undefined : x),
    (y) => (seenByA(dotOf(y)) ? undefined : y),
  );
}

export function mergeDots(a: readonly Dot[], b: readonly Dot[], seenByA: Seen, seenByB: Seen): readonly Dot[] {
  if (a.length === 0 && b.length === 0) return a;
  return mergeDotted(a, b, seenByA, seenByB, (dot) => dot);
}

/** The dots the other side has not seen; the same array when that is all of them. */
export function unseenDots(dots: readonly Dot[], seen: Seen): readonly Dot[] {
  return dots.every((dot) => !seen(dot)) ? dots : dots.filter((dot) => !seen(dot));
}

// ---- checks of client operations ----

export function refuseOp(reason: string, field: string): Refusal {
  return { ok: false, reason, field };
}

/** An object literal or a decoded CBOR map: not null, an array, a byte string, a Date or a Map. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The first own key of `v` that is not allowed, if any. */
export function unknownKey(v: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  return Object.keys(v).find((key) => !allowed.includes(key));
}

/** Why `v` cannot be a member, a value or a field name, or `undefined` when it can. */
export function stringProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return `must be a string, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`;
  // Every UTF-16 code unit takes at least one UTF-8 byte, so a long string needs no count.
  if (v.length > STRING_BYTES_MAX || utf8Length(v) > STRING_BYTES_MAX) return `is over ${STRING_BYTES_MAX} UTF-8 bytes`;
  // A lone surrogate would reach the disk as U+FFFD and come back as a different string.
  if (!isWellFormed(v)) return 'holds a lone surrogate, which UTF-8 cannot carry';
  return undefined;
}

// ---- checks of decoded states ----

export function isTuple(v: unknown, length: number): v is unknown[] {
  return Array.isArray(v) && v.length === length;
}

/** A causal context: `[actor, counter]` pairs, actors strictly sorted. */
export function checkContext(raw: unknown, path: string): Checked<VersionVector> {
  if (!Array.isArray(raw)) return refuse(`${path} is not an array`);
  const out: Dot[] = [];
  for (const [i, item] of (raw as unknown[]).entries()) {
    const dot = checkDot(item, `${path}[${i}]`);
    if (!dot.ok) return dot;
    const previous = out[i - 1];
    if (previous !== undefined && !(previous[0] < dot.value[0])) return refuse(`${path}[${i}]: actors not strictly sorted`);
    out.push(dot.value);
  }
  return { ok: true, value: out };
}

/** A dot list: strictly sorted by (actor, counter), every dot seen by the enclosing context. */
export function checkDots(raw: unknown, path: string, seen: Seen): Checked<Dot[]> {
  if (!Array.isArray(raw)) return refuse(`${path} is not an array`);
  const out: Dot[] = [];
  for (const [i, item] of (raw as unknown[]).entries()) {
    const dot = checkDot(item, `${path}[${i}]`);
    if (!dot.ok) return dot;
    const previous = out[i - 1];
    if (previous !== undefined && !(compareDots(previous, dot.value) < 0)) return refuse(`${path}[${i}]: dots not strictly sorted`);
    if (!seen(dot.value)) return refuse(`${path}[${i}]: dot is not in the causal context`);
    out.push(dot.value);
  }
  return { ok: true, value: out };
}

export function checkDot(raw: unknown, path: string): Checked<Dot> {
  if (!isTuple(raw, 2)) return refuse(`${path} is not an [actor, counter] pair`);
  const [actor, counter] = raw;
  const problem = actorProblem(actor) ?? counterProblem(counter);
  if (problem !== undefined) return refuse(`${path}: ${problem}`);
  return { ok: true, value: [actor as string, counter as number] };
}

/** A non-negative safe integer: a counter's running total. */
export function isTotal(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ---- equality ----

/** Structural equality of plain arrays, strings, numbers and booleans (wire forms). */
export function equalPlain(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  return a.every((item, i) => equalPlain(item, (b as unknown[])[i]));
}
