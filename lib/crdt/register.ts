/**
 * The multi-value register of strings (MVRegister in Almeida, Shoker, Baquero, "Delta State
 * Replicated Data Types", JPDC 2018; Dynamo's siblings, kept inside one state).
 *
 * Design. The state is a set of `(dot, value)` pairs under a causal context. Setting a value
 * replaces every pair this replica observed with one pair under a fresh dot. On merge a pair
 * survives unless the other side saw its dot and dropped it, so assignments made concurrently
 * are all kept, and the next assignment that has seen them all collapses them into one. The
 * value is the sorted list of distinct values held.
 *
 * Invariants: pairs strictly sorted by dot, every dot within the context. The wire form is
 * `[[[dot, value]...], context]`.
 */

import {
  checkContext,
  checkDot,
  compareDots,
  compareStrings,
  isPlainObject,
  isTuple,
  mergeContexts,
  mergeDotted,
  refuse,
  refuseOp,
  seenIn,
  stringProblem,
  unknownKey,
  withDot,
  type Checked,
  type Dot,
  type Kind,
  type NextDot,
  type OpChecked,
  type VersionVector,
} from './causal.js';

export interface RegisterOp {
  readonly set: string;
}

export type RegisterEntry = readonly [dot: Dot, value: string];

export interface RegisterBody {
  /** Strictly sorted by dot. */
  readonly entries: readonly RegisterEntry[];
  readonly context: VersionVector;
}

const EMPTY: RegisterBody = Object.freeze({ entries: Object.freeze([]), context: Object.freeze([]) });

function checkRegisterOp(op: unknown, path: string): OpChecked<RegisterOp> {
  if (!isPlainObject(op) || !('set' in op)) return refuseOp('a register operation is { set: string }', path);
  const extra = unknownKey(op, ['set']);
  if (extra !== undefined) return refuseOp(`a register operation has no property ${JSON.stringify(extra)}`, `${path}.${extra}`);
  const problem = stringProblem(op['set']);
  if (problem !== undefined) return refuseOp(`a register value ${problem}`, `${path}.set`);
  return { ok: true, op: { set: op['set'] as string } };
}

function applyRegister(body: RegisterBody, op: RegisterOp, next: NextDot): RegisterBody {
  const dot = next();
  return { entries: [[dot, op.set]], context: withDot(body.context, dot) };
}

function mergeRegisters(a: RegisterBody, b: RegisterBody): RegisterBody {
  if (a === b) return a;
  const entries = mergeDotted(a.entries, b.entries, seenIn(a.context), seenIn(b.context), dotOf, (x, y) => (x[1] <= y[1] ? x : y));
  return { entries, context: mergeContexts(a.context, b.context) };
}

function valueOfRegister(body: RegisterBody): string[] {
  return [...new Set(body.entries.map(([, value]) => value))].sort(compareStrings);
}

function fromWire(raw: unknown, path: string): Checked<RegisterBody> {
  if (!isTuple(raw, 2)) return refuse(`${path} is not a [values, context] pair`);
  const context = checkContext(raw[1], `${path}.context`);
  if (!context.ok) return context;
  if (!Array.isArray(raw[0])) return refuse(`${path}.values is not an array`);
  const seen = seenIn(context.value);
  const entries: RegisterEntry[] = [];
  for (const [i, item] of (raw[0] as unknown[]).entries()) {
    const at = `${path}.values[${i}]`;
    if (!isTuple(item, 2)) return refuse(`${at} is not a [dot, value] pair`);
    const dot = checkDot(item[0], `${at}.dot`);
    if (!dot.ok) return dot;
    if (!seen(dot.value)) return refuse(`${at}: dot is not in the causal context`);
    const previous = entries[i - 1];
    if (previous !== undefined && !(compareDots(previous[0], dot.value) < 0)) return refuse(`${at}: dots not strictly sorted`);
    const problem = stringProblem(item[1]);
    if (problem !== undefined) return refuse(`${at}: value ${problem}`);
    entries.push([dot.value, item[1] as string]);
  }
  return { ok: true, value: { entries, context: context.value } };
}

function dotOf(entry: RegisterEntry): Dot {
  return entry[0];
}

export const registerKind: Kind<RegisterBody, RegisterOp> = {
  empty: EMPTY,
  check: (op, path) => checkRegisterOp(op, path),
  apply: (body, op, next) => ({ ok: true, body: applyRegister(body, op, next) }),
  merge: mergeRegisters,
  value: valueOfRegister,
  reset: (body) => (body.entries.length === 0 ? body : { entries: [], context: body.context }),
  isEmpty: (body) => body.entries.length === 0 && body.context.length === 0,
  toWire: (body) => [body.entries, body.context],
  fromWire: (raw, path) => fromWire(raw, path),
};
