/**
 * Typed buckets: the pure, deterministic data types a replica merges itself (counter, set,
 * map, register, flag), behind one API keyed by the bucket's type.
 *
 * Paper: Almeida, Shoker, Baquero, "Delta State Replicated Data Types" (JPDC 2018): every type
 * is a causal CRDT, a dot store with a causal context (lib/crdt/causal.ts), so any two states
 * merge into their least upper bound, whatever was lost, duplicated or reordered between the
 * replicas. The coordinator applies an operation to the merge of the siblings it holds and
 * supplies the dots (`ApplyContext`): its replica actor and a counter that only grows. States
 * are plain immutable data; nothing here reads a clock, draws randomness or does I/O.
 *
 * Deduplication. A state sits in an envelope that remembers, per actor, the ids of the last
 * OP_IDS_KEPT operations that actor applied, as `[actor, c, ids]` where `c` is a fresh dot
 * counter drawn when the list last changed. An actor extends its list on a state holding its
 * previous list, so one actor's lists form a chain and a merge keeps the one with the larger
 * `c`. An operation whose id is anywhere in the table is not applied again: a client that
 * retries an increment after a timeout counts once, provided the retry reaches a replica that
 * has the first attempt (the one that applied it, or one that merged its state since).
 *
 * Encoding. `encodeState` writes `[STATE_FORMAT, type, table, body]` with CBOR, all arrays
 * sorted by a fixed key, so equal states (as lattice elements) encode to identical bytes: two
 * replicas that converged store the same sibling, and anti-entropy digests agree.
 * `decodeState` checks every invariant of what it reads (bytes come from disk and from peers)
 * and returns a result, never a throw; whatever it accepts, merges of it are accepted too.
 */

import { assert } from '../base/assert.js';
import { decodeSafe, encode } from '../codec/cbor.js';
import { actorProblem, counterProblem } from '../clock/validate.js';
import {
  CRDT_TYPES,
  compareStrings,
  equalPlain,
  isTuple,
  joinSorted,
  refuse,
  refuseOp,
  type Checked,
  type CrdtType,
  type CrdtValue,
  type Dot,
  type NextDot,
} from './causal.js';
import { isCrdtType, kindOf, MAP_DEPTH_MAX, type Body, type CrdtOp } from './map.js';

export { CRDT_TYPES, STRING_BYTES_MAX, type CrdtType, type CrdtValue, type Dot, type MapValue } from './causal.js';
export { COUNTER_INC_MAX, type CounterOp } from './counter.js';
export { type FlagOp } from './flag.js';
export { MAP_DEPTH_MAX, MAP_OP_FIELDS_MAX, type CrdtOp, type MapOp } from './map.js';
export { type RegisterOp } from './register.js';
export { SET_OP_MEMBERS_MAX, type SetOp } from './set.js';

/**
 * Operation ids remembered per actor. The table travels with every write of the key, so it is
 * kept small: with the SDK's 16-character ids, about 1 KiB per actor. A retry within the next
 * 64 updates of the key at that replica is recognised; one later than that may count twice,
 * which the client sees as what it is, an update whose first outcome it did not know.
 */
export const OP_IDS_KEPT = 64;

/** Characters of an operation id, as the wire protocol allows (`oid`). */
export const OP_ID_CHARS_MAX = 64;

/** What the coordinator supplies when it applies an operation. */
export interface ApplyContext {
  /** The coordinating replica's actor (non-empty string). */
  readonly actor: string;
  /** A fresh counter for a new dot of `actor`: strictly increasing across calls, may skip numbers. */
  readonly nextCounter: () => number;
  /** The client's operation id, for deduplication (1..64 characters). */
  readonly opId?: string;
}

declare const opaque: unique symbol;

/** The state of one typed value. Opaque: use the functions here. */
export type CrdtState = { readonly [opaque]: 'CrdtState' };

/** One actor's recent operation ids, oldest first, and the dot counter of their last change. */
type OpIds = readonly [actor: string, c: number, ids: readonly string[]];

interface Envelope {
  readonly type: CrdtType;
  /** Strictly sorted by actor. */
  readonly opIds: readonly OpIds[];
  readonly body: Body;
}

/** The version of the encoded layout, first in every encoded state. */
const STATE_FORMAT = 1;

/**
 * CBOR nesting of an encoded state. The envelope array is at depth 1 and the body at 2; each
 * map adds three levels (fields, field, the field's state), and below the innermost state a set
 * needs four more (members, member, dots, dot), more than any other type or the op id table.
 */
const STATE_CBOR_DEPTH_MAX = 2 + 3 * MAP_DEPTH_MAX + 4;

const EMPTY_STATES: Readonly<Record<CrdtType, CrdtState>> = Object.freeze(
  Object.fromEntries(CRDT_TYPES.map((type) => [type, seal({ type, opIds: Object.freeze([]), body: kindOf(type).empty })])) as Record<CrdtType, CrdtState>,
);

export function emptyState(type: CrdtType): CrdtState {
  return EMPTY_STATES[type];
}

/** Validates a client-supplied op (unknown input, e.g. decoded CBOR) for `type`; never throws. `field` names the offending part, e.g. 'op.add[3]'. */
export function checkOp(type: CrdtType, op: unknown): { ok: true; op: CrdtOp } | { ok: false; reason: string; field: string } {
  if (!isCrdtType(type)) return refuseOp(`a type is one of ${CRDT_TYPES.join(', ')}`, 'type');
  return kindOf(type).check(op, 'op', 1);
}

/** Applies a checked op. `duplicate: true` (state unchanged) when ctx.opId was already applied. */
export function applyOp(
  type: CrdtType,
  state: CrdtState,
  op: CrdtOp,
  ctx: ApplyContext,
): { ok: true; state: CrdtState; duplicate: boolean } | { ok: false; reason: string; field: string } {
  const envelope = open(type, state);
  const checked = checkOp(type, op);
  if (!checked.ok) return checked;
  const { opId } = ctx;
  if (opId !== undefined) {
    if (typeof opId !== 'string' || opId.length === 0 || opId.length > OP_ID_CHARS_MAX) {
      return refuseOp(`an operation id is 1 to ${OP_ID_CHARS_MAX} characters`, 'opId');
    }
    if (envelope.opIds.some(([, , ids]) => ids.includes(opId))) return { ok: true, state, duplicate: true };
  }
  const next = dotSource(ctx);
  const applied = kindOf(type).apply(envelope.body, checked.op, next, 'op');
  if (!applied.ok) return applied;
  const opIds = opId === undefined ? envelope.opIds : remember(envelope.opIds, next(), opId);
  return { ok: true, state: seal({ type, opIds, body: applied.body }), duplicate: false };
}

export function mergeStates(type: CrdtType, a: CrdtState, b: CrdtState): CrdtState {
  if (a === b) return a;
  const x = open(type, a);
  const y = open(type, b);
  const opIds = joinSorted(x.opIds, y.opIds, byActor, later, (e) => e, (e) => e);
  return seal({ type, opIds, body: kindOf(type).merge(x.body, y.body) });
}

export function valueOf(type: CrdtType, state: CrdtState): CrdtValue {
  return kindOf(type).value(open(type, state).body);
}

/** Whether two states are the same lattice element (every state built here is in canonical form). */
export function equalStates(type: CrdtType, a: CrdtState, b: CrdtState): boolean {
  const x = open(type, a);
  const y = open(type, b);
  return equalPlain(x.opIds, y.opIds) && equalPlain(kindOf(type).toWire(x.body), kindOf(type).toWire(y.body));
}

/** Canonical encoding: equal states (as lattice elements) encode to identical bytes. */
export function encodeState(type: CrdtType, state: CrdtState): Uint8Array {
  const envelope = open(type, state);
  return encode([STATE_FORMAT, type, envelope.opIds, kindOf(type).toWire(envelope.body)]);
}

/** Decodes and fully validates bytes from disk or peers; never throws. */
export function decodeState(type: CrdtType, bytes: Uint8Array): { ok: true; state: CrdtState } | { ok: false; reason: string } {
  if (!isCrdtType(type)) return refuse(`unknown type ${String(type)}`);
  if (!(bytes instanceof Uint8Array)) return refuse('a state is a byte string');
  const decoded = decodeSafe(bytes, { depthMax: STATE_CBOR_DEPTH_MAX });
  if (!decoded.ok) return refuse(`not a ${type} state: ${decoded.reason}`);
  const raw = decoded.value;
  if (!isTuple(raw, 4) || raw[0] !== STATE_FORMAT) return refuse(`not a ${type} state: expected [${STATE_FORMAT}, type, op ids, body]`);
  if (raw[1] !== type) return refuse(`a ${String(raw[1])} state where a ${type} state was expected`);
  const opIds = checkOpIds(raw[2]);
  if (!opIds.ok) return opIds;
  const body = kindOf(type).fromWire(raw[3], 'body', 1);
  if (!body.ok) return body;
  return { ok: true, state: seal({ type, opIds: opIds.value, body: body.value }) };
}

// ---- internals ----

function seal(envelope: Envelope): CrdtState {
  return envelope as unknown as CrdtState;
}

/** The envelope of a state built here; a state of another type is our bug. */
function open(type: CrdtType, state: CrdtState): Envelope {
  const envelope = state as unknown as Envelope;
  assert(envelope.type === type, `crdt: a ${envelope.type} state used as a ${type}`);
  return envelope;
}

/** Dots of `ctx.actor`, asserting the coordinator's counter keeps its promise. */
function dotSource(ctx: ApplyContext): NextDot {
  assert(actorProblem(ctx.actor) === undefined, `crdt: bad actor ${JSON.stringify(ctx.actor)}`);
  let last = 0;
  return (): Dot => {
    const counter = ctx.nextCounter();
    assert(counterProblem(counter) === undefined && counter > last, `crdt: counter ${counter} after ${last} is not fresh`);
    last = counter;
    return [ctx.actor, counter];
  };
}

/** Appends an id to the actor's list under a fresh counter, dropping the oldest past OP_IDS_KEPT. */
function remember(table: readonly OpIds[], [actor, c]: Dot, opId: string): readonly OpIds[] {
  const previous = table.find((entry) => entry[0] === actor)?.[2] ?? [];
  const entry: OpIds = [actor, c, [...previous, opId].slice(-OP_IDS_KEPT)];
  return joinSorted(table, [entry], byActor, (_, y) => y, (x) => x, (y) => y);
}

function byActor(x: OpIds, y: OpIds): number {
  return compareStrings(x[0], y[0]);
}

/** The later list of one actor; equal counters (only in forged states) pick by content, so the choice commutes. */
function later(x: OpIds, y: OpIds): OpIds {
  if (x[1] !== y[1]) return x[1] > y[1] ? x : y;
  const order = x[2].length - y[2].length || x[2].reduce((acc, id, i) => acc || compareStrings(id, y[2][i] as string), 0);
  return order >= 0 ? x : y;
}

function checkOpIds(raw: unknown): Checked<OpIds[]> {
  if (!Array.isArray(raw)) return refuse('op ids: not an array');
  const out: OpIds[] = [];
  for (const [i, item] of (raw as unknown[]).entries()) {
    const at = `op ids[${i}]`;
    if (!isTuple(item, 3)) return refuse(`${at} is not an [actor, c, ids] entry`);
    const [actor, c, ids] = item;
    const problem = actorProblem(actor) ?? counterProblem(c);
    if (problem !== undefined) return refuse(`${at}: ${problem}`);
    const previous = out[i - 1];
    if (previous !== undefined && !(previous[0] < (actor as string))) return refuse(`${at}: actors not strictly sorted`);
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > OP_IDS_KEPT) return refuse(`${at}: 1 to ${OP_IDS_KEPT} ids expected`);
    const list = ids as unknown[];
    if (!list.every((id) => typeof id === 'string' && id.length > 0 && id.length <= OP_ID_CHARS_MAX)) return refuse(`${at}: an id is not 1 to ${OP_ID_CHARS_MAX} characters`);
    if (new Set(list).size !== list.length) return refuse(`${at}: an id appears twice`);
    out.push([actor as string, c as number, list.slice() as string[]]);
  }
  return { ok: true, value: out };
}
