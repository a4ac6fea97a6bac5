/**
 * The observed-remove map of typed fields, as Riak's maps are (riak_dt_map; ORMap in Almeida,
 * Shoker, Baquero, "Delta State Replicated Data Types", JPDC 2018), and the table of every
 * data type, since a map holds any of them.
 *
 * Design. A field is keyed by its name and its type: `likes` the counter and `likes` the set
 * are two fields. Each field has a presence dot set, under the map's own causal context, and a
 * nested state of its type, which carries its own context (so the state is a product of
 * lattices, and merging is pointwise). Updating a field replaces its observed presence dots
 * with a fresh one and applies the nested operation (whose dots come from the same source).
 * Removing a field drops its presence and resets its state: an observed-remove of everything in
 * it (a set forgets its members' dots, a register its values, a flag its dots, a counter
 * tombstones its totals, a map removes each of its fields). An update concurrent with a
 * remove wins, since the remover saw neither its presence dot nor its nested dots, and the
 * field then shows only what the remover had not seen. A field is in the value while its
 * presence is not empty.
 *
 * A removed field keeps its reset state (its contexts and tombstones are what make the reset
 * hold against replicas that have not heard of it); only a field with no presence and an empty
 * state is forgotten. In one operation the removes apply first, then the updates in order, so
 * `remove x` with `update x` starts `x` afresh.
 *
 * Invariants: fields strictly sorted by (name, type), presence dots within the map's context,
 * never both an empty presence and an empty state, maps nested at most MAP_DEPTH_MAX deep. The
 * wire form is `[[[name, type, presence, state]...], context]`.
 */

import {
  checkContext,
  checkDots,
  compareStrings,
  CRDT_TYPES,
  isPlainObject,
  isTuple,
  joinSorted,
  mergeContexts,
  mergeDots,
  refuse,
  refuseOp,
  seenIn,
  stringProblem,
  unknownKey,
  unseenDots,
  withDot,
  type Applied,
  type Checked,
  type CrdtType,
  type Dot,
  type Kind,
  type MapValue,
  type NextDot,
  type OpChecked,
  type Seen,
  type VersionVector,
} from './causal.js';
import { counterKind, type CounterBody, type CounterOp } from './counter.js';
import { flagKind, type FlagBody, type FlagOp } from './flag.js';
import { registerKind, type RegisterBody, type RegisterOp } from './register.js';
import { setKind, type SetBody, type SetOp } from './set.js';

export interface MapOp {
  readonly update?: readonly { readonly field: string; readonly type: CrdtType; readonly op: CrdtOp }[];
  readonly remove?: readonly { readonly field: string; readonly type: CrdtType }[];
}

export type CrdtOp = CounterOp | SetOp | RegisterOp | FlagOp | MapOp;

/** The state of any type, without the deduplication envelope (lib/crdt/index.ts). */
export type Body = CounterBody | SetBody | RegisterBody | FlagBody | MapBody;

/**
 * Field updates one map operation may hold at each level, and separately field removes. Each
 * update takes a dot and the map is rebuilt once per operation; larger edits are split.
 */
export const MAP_OP_FIELDS_MAX = 1000;

/**
 * Levels of maps, the outermost counting as 1. Riak-style documents nest a few levels; the
 * bound keeps the decoder's depth (three CBOR levels per map) and our recursion small.
 */
export const MAP_DEPTH_MAX = 8;

export type MapField = readonly [name: string, type: CrdtType, presence: readonly Dot[], state: Body];

export interface MapBody {
  /** Strictly sorted by (name, type). */
  readonly fields: readonly MapField[];
  readonly context: VersionVector;
}

type FieldUpdate = NonNullable<MapOp['update']>[number];
type FieldRemove = NonNullable<MapOp['remove']>[number];

const EMPTY: MapBody = Object.freeze({ fields: Object.freeze([]), context: Object.freeze([]) });

/** A field name CBOR maps and JS objects cannot carry as a key: the value could not be sent. */
const FORBIDDEN_FIELD = '__proto__';

// ---- operations ----

function checkMapOp(op: unknown, path: string, depth: number): OpChecked<MapOp> {
  if (depth > MAP_DEPTH_MAX) return refuseOp(`maps nest at most ${MAP_DEPTH_MAX} deep`, path);
  if (!isPlainObject(op)) return refuseOp('a map operation is { update?: [{ field, type, op }], remove?: [{ field, type }] }', path);
  const extra = unknownKey(op, ['update', 'remove']);
  if (extra !== undefined) return refuseOp(`a map operation has no property ${JSON.stringify(extra)}`, `${path}.${extra}`);
  const update = checkList(op['update'], `${path}.update`, (item, at) => checkUpdate(item, at, depth));
  if (!update.ok) return update;
  const remove = checkList(op['remove'], `${path}.remove`, checkRemove);
  if (!remove.ok) return remove;
  if (update.op.length + remove.op.length === 0) return refuseOp('a map operation updates or removes at least one field', path);
  return {
    ok: true,
    op: { ...(op['update'] !== undefined ? { update: update.op } : {}), ...(op['remove'] !== undefined ? { remove: remove.op } : {}) },
  };
}

/** A list of at most MAP_OP_FIELDS_MAX items; `undefined` stands for none. */
function checkList<T>(raw: unknown, path: string, checkItem: (item: unknown, at: string) => OpChecked<T>): OpChecked<T[]> {
  if (raw === undefined) return { ok: true, op: [] };
  if (!Array.isArray(raw)) return refuseOp('must be an array', path);
  const list = raw as unknown[];
  if (list.length > MAP_OP_FIELDS_MAX) return refuseOp(`at most ${MAP_OP_FIELDS_MAX} fields per operation, got ${list.length}`, path);
  const out: T[] = [];
  for (const [i, item] of list.entries()) {
    const checked = checkItem(item, `${path}[${i}]`);
    if (!checked.ok) return checked;
    out.push(checked.op);
  }
  return { ok: true, op: out };
}

function checkUpdate(item: unknown, at: string, depth: number): OpChecked<FieldUpdate> {
  if (!isPlainObject(item)) return refuseOp('a field update is { field, type, op }', at);
  const key = checkFieldKey(item, at, ['field', 'type', 'op']);
  if (!key.ok) return key;
  const op = kindOf(key.op.type).check(item['op'], `${at}.op`, depth + 1);
  if (!op.ok) return op;
  return { ok: true, op: { field: key.op.field, type: key.op.type, op: op.op } };
}

function checkRemove(item: unknown, at: string): OpChecked<FieldRemove> {
  if (!isPlainObject(item)) return refuseOp('a field remove is { field, type }', at);
  return checkFieldKey(item, at, ['field', 'type']);
}

function checkFieldKey(item: Record<string, unknown>, at: string, allowed: readonly string[]): OpChecked<FieldRemove> {
  const extra = unknownKey(item, allowed);
  if (extra !== undefined) return refuseOp(`a field ${allowed.includes('op') ? 'update' : 'remove'} has no property ${JSON.stringify(extra)}`, `${at}.${extra}`);
  const problem = fieldProblem(item['field']);
  if (problem !== undefined) return refuseOp(`a field name ${problem}`, `${at}.field`);
  const type = item['type'];
  if (!isCrdtType(type)) return refuseOp(`a field type is one of ${CRDT_TYPES.join(', ')}`, `${at}.type`);
  return { ok: true, op: { field: item['field'] as string, type } };
}

function fieldProblem(name: unknown): string | undefined {
  return name === FORBIDDEN_FIELD ? `cannot be ${FORBIDDEN_FIELD}` : stringProblem(name);
}

export function isCrdtType(type: unknown): type is CrdtType {
  return typeof type === 'string' && (CRDT_TYPES as readonly string[]).includes(type);
}

/** Removes first (presence dropped, state reset), then each update under a fresh presence dot. */
function applyMap(body: MapBody, op: MapOp, next: NextDot, path: string): Applied<MapBody> {
  const fields = new Map(body.fields.map((field) => [keyOf(field[0], field[1]), field]));
  for (const { field, type } of op.remove ?? []) {
    const found = fields.get(keyOf(field, type));
    if (found === undefined) continue;
    const removed = removedField(found);
    if (removed === undefined) fields.delete(keyOf(field, type));
    else fields.set(keyOf(field, type), removed);
  }
  let context = body.context;
  for (const [i, { field, type, op: nested }] of (op.update ?? []).entries()) {
    const kind = kindOf(type);
    const dot = next();
    context = withDot(context, dot);
    const applied = kind.apply(fields.get(keyOf(field, type))?.[3] ?? kind.empty, nested, next, `${path}.update[${i}].op`);
    if (!applied.ok) return applied;
    fields.set(keyOf(field, type), [field, type, [dot], applied.body]);
  }
  return { ok: true, body: { fields: [...fields.values()].sort(byField), context } };
}

/** A field after its removal, or `undefined` when nothing of it needs remembering. */
function removedField([name, type, , state]: MapField): MapField | undefined {
  return field(name, type, [], kindOf(type).reset(state));
}

function resetMap(body: MapBody): MapBody {
  if (body.fields.length === 0) return body;
  const fields: MapField[] = [];
  for (const entry of body.fields) {
    const removed = removedField(entry);
    if (removed !== undefined) fields.push(removed);
  }
  return { fields, context: body.context };
}

// ---- merge and value ----

/** Presence by the dot rule under the maps' contexts; states pointwise (a missing one is empty). */
function mergeMaps(a: MapBody, b: MapBody): MapBody {
  if (a === b) return a;
  const seenByA = seenIn(a.context);
  const seenByB = seenIn(b.context);
  const fields = joinSorted(
    a.fields,
    b.fields,
    byField,
    (x, y) => field(x[0], x[1], mergeDots(x[2], y[2], seenByA, seenByB), kindOf(x[1]).merge(x[3], y[3])),
    (x) => keepUnseen(x, seenByB),
    (y) => keepUnseen(y, seenByA),
  );
  return { fields, context: mergeContexts(a.context, b.context) };
}

/** A field only one side holds: its state merges with empty (itself); its presence loses what the other side saw. */
function keepUnseen(entry: MapField, seen: Seen): MapField | undefined {
  const presence = unseenDots(entry[2], seen);
  return presence === entry[2] ? entry : field(entry[0], entry[1], presence, entry[3]);
}

function field(name: string, type: CrdtType, presence: readonly Dot[], state: Body): MapField | undefined {
  return presence.length === 0 && kindOf(type).isEmpty(state) ? undefined : [name, type, presence, state];
}

function valueOfMap(body: MapBody): MapValue {
  const value: MapValue = { counters: {}, sets: {}, registers: {}, flags: {}, maps: {} };
  for (const [name, type, presence, state] of body.fields) {
    if (presence.length === 0) continue;
    const nested = kindOf(type).value(state);
    if (type === 'counter') value.counters[name] = nested as number;
    else if (type === 'set') value.sets[name] = nested as string[];
    else if (type === 'register') value.registers[name] = nested as string[];
    else if (type === 'flag') value.flags[name] = nested as boolean;
    else value.maps[name] = nested as MapValue;
  }
  return value;
}

// ---- wire ----

function toWire(body: MapBody): unknown {
  return [body.fields.map(([name, type, presence, state]) => [name, type, presence, kindOf(type).toWire(state)]), body.context];
}

function fromWire(raw: unknown, path: string, depth: number): Checked<MapBody> {
  if (depth > MAP_DEPTH_MAX) return refuse(`${path}: maps nest at most ${MAP_DEPTH_MAX} deep`);
  if (!isTuple(raw, 2)) return refuse(`${path} is not a [fields, context] pair`);
  const context = checkContext(raw[1], `${path}.context`);
  if (!context.ok) return context;
  if (!Array.isArray(raw[0])) return refuse(`${path}.fields is not an array`);
  const seen = seenIn(context.value);
  const fields: MapField[] = [];
  for (const [i, item] of (raw[0] as unknown[]).entries()) {
    const at = `${path}.fields[${i}]`;
    if (!isTuple(item, 4)) return refuse(`${at} is not a [name, type, presence, state] field`);
    const [name, type] = item;
    const problem = fieldProblem(name);
    if (problem !== undefined) return refuse(`${at}: name ${problem}`);
    if (!isCrdtType(type)) return refuse(`${at}: unknown type`);
    const previous = fields[i - 1];
    if (previous !== undefined && !(byField(previous, [name as string, type, [], EMPTY]) < 0)) return refuse(`${at}: fields not strictly sorted`);
    const presence = checkDots(item[2], `${at}.presence`, seen);
    if (!presence.ok) return presence;
    const state = kindOf(type).fromWire(item[3], `${at}.state`, depth + 1);
    if (!state.ok) return state;
    const entry = field(name as string, type, presence.value, state.value);
    if (entry === undefined) return refuse(`${at}: a field with neither presence nor state`);
    fields.push(entry);
  }
  return { ok: true, value: { fields, context: context.value } };
}

function keyOf(name: string, type: CrdtType): string {
  return `${type}:${name}`;
}

function byField(x: MapField, y: MapField): number {
  return compareStrings(x[0], y[0]) || compareStrings(x[1], y[1]);
}

export const mapKind: Kind<MapBody, MapOp> = {
  empty: EMPTY,
  check: checkMapOp,
  apply: applyMap,
  merge: mergeMaps,
  value: valueOfMap,
  reset: resetMap,
  isEmpty: (body) => body.fields.length === 0 && body.context.length === 0,
  toWire,
  fromWire,
};

// ---- every type ----

const KINDS: Readonly<Record<CrdtType, Kind<Body, CrdtOp>>> = {
  counter: counterKind,
  set: setKind,
  map: mapKind,
  register: registerKind,
  flag: flagKind,
};

/** The functions of a type; states and operations must be of that type. */
export function kindOf(type: CrdtType): Kind<Body, CrdtOp> {
  return KINDS[type];
}
