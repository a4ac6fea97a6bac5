/**
 * The PN-counter (Shapiro, Preguiça, Baquero, Zawirski, "A comprehensive study of Convergent
 * and Commutative Replicated Data Types", INRIA RR-7506, 2011), with a reset for map fields.
 *
 * Design. One entry per actor, `[actor, p, n, c]`: the increments and decrements that actor
 * applied, and `c`, the dot counter of its latest change. An actor always changes its entry on
 * a state holding its previous entry, so the entries of one actor form a chain ordered by `c`,
 * and a merge keeps, per actor, the one with the larger `c` (rather than the larger `p` and `n`
 * separately: both give the same answer on a chain, and `c` makes the choice explicit).
 *
 * A removed map field must drop to zero and count only what comes after (or concurrently).
 * Removing it records a tombstone per actor, `[actor, p, n]`: the totals the remover observed.
 * Tombstones merge by pointwise maximum, and the value is the sum of `p - n` over entries minus
 * the sum over tombstones. The observed totals of one actor are prefixes of its chain, so the
 * maximum is the longest prefix anyone removed, and what is left is exactly the increments no
 * remove had seen: a concurrent increment survives a remove, as in every other type here.
 *
 * Each total is a safe integer (an increment that would pass 2^53 - 1 is refused); the value is
 * their sum as a double, exact while it stays within ±2^53.
 *
 * Invariants: entries and tombstones strictly sorted by actor, totals non-negative safe
 * integers, no all-zero tombstone, a tombstone only for an actor with an entry. The wire form
 * is `[[[actor, p, n, c]...], [[actor, p, n]...]]`.
 */

import { actorProblem, counterProblem } from '../clock/validate.js';
import {
  compareStrings,
  isPlainObject,
  isTotal,
  isTuple,
  joinSorted,
  refuse,
  refuseOp,
  unknownKey,
  type Applied,
  type Checked,
  type Kind,
  type NextDot,
  type OpChecked,
} from './causal.js';

export interface CounterOp {
  readonly inc: number;
}

/**
 * Largest change one operation may make, either way: 2^48. Totals must stay safe integers
 * (2^53), so a single actor can take 32 maximal changes before it is refused; real counters
 * (likes, visits, stock) are nowhere near.
 */
export const COUNTER_INC_MAX = 2 ** 48;

export type CounterEntry = readonly [actor: string, p: number, n: number, c: number];
export type CounterTombstone = readonly [actor: string, p: number, n: number];

export interface CounterBody {
  /** Strictly sorted by actor. */
  readonly entries: readonly CounterEntry[];
  /** Strictly sorted by actor; what removes of the enclosing map field observed. */
  readonly tombstones: readonly CounterTombstone[];
}

const EMPTY: CounterBody = Object.freeze({ entries: Object.freeze([]), tombstones: Object.freeze([]) });

function checkCounterOp(op: unknown, path: string): OpChecked<CounterOp> {
  if (!isPlainObject(op) || !('inc' in op)) return refuseOp('a counter operation is { inc: integer }', path);
  const extra = unknownKey(op, ['inc']);
  if (extra !== undefined) return refuseOp(`a counter operation has no property ${JSON.stringify(extra)}`, `${path}.${extra}`);
  const inc = op['inc'];
  if (typeof inc !== 'number' || !Number.isSafeInteger(inc)) return refuseOp('inc must be a safe integer', `${path}.inc`);
  if (Math.abs(inc) > COUNTER_INC_MAX) return refuseOp(`inc must be within ±2^48, got ${inc}`, `${path}.inc`);
  return { ok: true, op: { inc: inc === 0 ? 0 : inc } };
}

/** Adds to this actor's entry under a fresh dot; refuses a total past 2^53 - 1. */
function applyCounter(body: CounterBody, op: CounterOp, next: NextDot, path: string): Applied<CounterBody> {
  const [actor, c] = next();
  const found = body.entries.find((entry) => entry[0] === actor);
  const p = (found?.[1] ?? 0) + Math.max(op.inc, 0);
  const n = (found?.[2] ?? 0) + Math.max(-op.inc, 0);
  if (!Number.isSafeInteger(p) || !Number.isSafeInteger(n)) return refuseOp(`the counter's total at ${actor} would pass 2^53 - 1`, `${path}.inc`);
  const entry: CounterEntry = [actor, p, n, c];
  const entries = joinSorted(body.entries, [entry], byActor, (_, y) => y, (x) => x, (y) => y);
  return { ok: true, body: { entries, tombstones: body.tombstones } };
}

function mergeCounters(a: CounterBody, b: CounterBody): CounterBody {
  if (a === b) return a;
  return {
    entries: joinSorted(a.entries, b.entries, byActor, later, (x) => x, (y) => y),
    tombstones: mergeTombstones(a.tombstones, b.tombstones),
  };
}

/** The entry with the larger dot counter; ties (only in forged states) broken by totals, so the choice commutes. */
function later(x: CounterEntry, y: CounterEntry): CounterEntry {
  return (x[3] - y[3] || x[1] - y[1] || x[2] - y[2]) >= 0 ? x : y;
}

function mergeTombstones(a: readonly CounterTombstone[], b: readonly CounterTombstone[]): readonly CounterTombstone[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return joinSorted(a, b, byActor, maxTombstone, (x) => x, (y) => y);
}

/** The pointwise maximum of one actor's tombstones, reusing one that already is it. */
function maxTombstone(x: CounterTombstone, y: CounterTombstone): CounterTombstone {
  if (x[1] >= y[1] && x[2] >= y[2]) return x;
  if (y[1] >= x[1] && y[2] >= x[2]) return y;
  return [x[0], Math.max(x[1], y[1]), Math.max(x[2], y[2])];
}

function valueOfCounter(body: CounterBody): number {
  let total = 0;
  for (const [, p, n] of body.entries) total += p - n;
  for (const [, p, n] of body.tombstones) total -= p - n;
  return total;
}

/** Tombstones every total observed, so the counter reads zero until something new arrives. */
function resetCounter(body: CounterBody): CounterBody {
  const observed = body.entries.filter(([, p, n]) => p > 0 || n > 0).map(([actor, p, n]): CounterTombstone => [actor, p, n]);
  return { entries: body.entries, tombstones: mergeTombstones(body.tombstones, observed) };
}

function fromWire(raw: unknown, path: string): Checked<CounterBody> {
  if (!isTuple(raw, 2)) return refuse(`${path} is not an [entries, tombstones] pair`);
  const [rawEntries, rawTombstones] = raw;
  if (!Array.isArray(rawEntries) || !Array.isArray(rawTombstones)) return refuse(`${path}: entries and tombstones must be arrays`);
  const entries: CounterEntry[] = [];
  for (const [i, item] of (rawEntries as unknown[]).entries()) {
    const at = `${path}.entries[${i}]`;
    if (!isTuple(item, 4)) return refuse(`${at} is not an [actor, p, n, c] entry`);
    const [actor, p, n, c] = item;
    const problem = actorProblem(actor) ?? counterProblem(c) ?? totalsProblem(p, n);
    if (problem !== undefined) return refuse(`${at}: ${problem}`);
    const previous = entries[i - 1];
    if (previous !== undefined && !(previous[0] < (actor as string))) return refuse(`${at}: actors not strictly sorted`);
    entries.push([actor as string, p as number, n as number, c as number]);
  }
  const actors = new Set(entries.map(([actor]) => actor));
  const tombstones: CounterTombstone[] = [];
  for (const [i, item] of (rawTombstones as unknown[]).entries()) {
    const at = `${path}.tombstones[${i}]`;
    if (!isTuple(item, 3)) return refuse(`${at} is not an [actor, p, n] tombstone`);
    const [actor, p, n] = item;
    const problem = actorProblem(actor) ?? totalsProblem(p, n);
    if (problem !== undefined) return refuse(`${at}: ${problem}`);
    if (!actors.has(actor as string)) return refuse(`${at}: a tombstone for an actor without an entry`);
    if (p === 0 && n === 0) return refuse(`${at}: an empty tombstone`);
    const previous = tombstones[i - 1];
    if (previous !== undefined && !(previous[0] < (actor as string))) return refuse(`${at}: actors not strictly sorted`);
    tombstones.push([actor as string, p as number, n as number]);
  }
  return { ok: true, value: { entries, tombstones } };
}

function totalsProblem(p: unknown, n: unknown): string | undefined {
  return isTotal(p) && isTotal(n) ? undefined : 'totals must be non-negative safe integers';
}

function byActor(x: readonly [string, ...unknown[]], y: readonly [string, ...unknown[]]): number {
  return compareStrings(x[0], y[0]);
}

export const counterKind: Kind<CounterBody, CounterOp> = {
  empty: EMPTY,
  check: (op, path) => checkCounterOp(op, path),
  apply: applyCounter,
  merge: mergeCounters,
  value: valueOfCounter,
  reset: resetCounter,
  isEmpty: (body) => body.entries.length === 0 && body.tombstones.length === 0,
  toWire: (body) => [body.entries, body.tombstones],
  fromWire: (raw, path) => fromWire(raw, path),
};
