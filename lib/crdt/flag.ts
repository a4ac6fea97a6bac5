/**
 * The enable-wins flag (EWFlag in Almeida, Shoker, Baquero, "Delta State Replicated Data
 * Types", JPDC 2018; Riak's flag in maps).
 *
 * Design. The state is a set of dots under a causal context; the flag is on while any dot is
 * live. Enabling replaces the observed dots with one fresh dot, disabling drops them. On merge
 * a dot survives unless the other side saw it and dropped it, so an enable concurrent with a
 * disable wins. Disabling a flag that is off does nothing.
 *
 * Invariants: dots strictly sorted, each within the context. The wire form is `[dots, context]`.
 */

import {
  checkContext,
  checkDots,
  isPlainObject,
  isTuple,
  mergeContexts,
  mergeDots,
  refuse,
  refuseOp,
  seenIn,
  unknownKey,
  withDot,
  type Checked,
  type Dot,
  type Kind,
  type NextDot,
  type OpChecked,
  type VersionVector,
} from './causal.js';

export interface FlagOp {
  readonly enable: boolean;
}

export interface FlagBody {
  /** Strictly sorted; the flag is on while any is left. */
  readonly dots: readonly Dot[];
  readonly context: VersionVector;
}

const EMPTY: FlagBody = Object.freeze({ dots: Object.freeze([]), context: Object.freeze([]) });

function checkFlagOp(op: unknown, path: string): OpChecked<FlagOp> {
  if (!isPlainObject(op) || !('enable' in op)) return refuseOp('a flag operation is { enable: boolean }', path);
  const extra = unknownKey(op, ['enable']);
  if (extra !== undefined) return refuseOp(`a flag operation has no property ${JSON.stringify(extra)}`, `${path}.${extra}`);
  if (typeof op['enable'] !== 'boolean') return refuseOp(`enable must be a boolean, got ${typeof op['enable']}`, `${path}.enable`);
  return { ok: true, op: { enable: op['enable'] } };
}

function applyFlag(body: FlagBody, op: FlagOp, next: NextDot): FlagBody {
  if (!op.enable) return body.dots.length === 0 ? body : { dots: [], context: body.context };
  const dot = next();
  return { dots: [dot], context: withDot(body.context, dot) };
}

function mergeFlags(a: FlagBody, b: FlagBody): FlagBody {
  if (a === b) return a;
  return { dots: mergeDots(a.dots, b.dots, seenIn(a.context), seenIn(b.context)), context: mergeContexts(a.context, b.context) };
}

function fromWire(raw: unknown, path: string): Checked<FlagBody> {
  if (!isTuple(raw, 2)) return refuse(`${path} is not a [dots, context] pair`);
  const context = checkContext(raw[1], `${path}.context`);
  if (!context.ok) return context;
  const dots = checkDots(raw[0], `${path}.dots`, seenIn(context.value));
  if (!dots.ok) return dots;
  return { ok: true, value: { dots: dots.value, context: context.value } };
}

export const flagKind: Kind<FlagBody, FlagOp> = {
  empty: EMPTY,
  check: (op, path) => checkFlagOp(op, path),
  apply: (body, op, next) => ({ ok: true, body: applyFlag(body, op, next) }),
  merge: mergeFlags,
  value: (body) => body.dots.length > 0,
  reset: (body) => (body.dots.length === 0 ? body : { dots: [], context: body.context }),
  isEmpty: (body) => body.dots.length === 0 && body.context.length === 0,
  toWire: (body) => [body.dots, body.context],
  fromWire: (raw, path) => fromWire(raw, path),
};
