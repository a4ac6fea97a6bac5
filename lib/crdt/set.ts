/**
 * The add-wins observed-remove set of strings (AWSet in Almeida, Shoker, Baquero, "Delta State
 * Replicated Data Types", JPDC 2018; the OR-set of Shapiro et al., INRIA RR-7506).
 *
 * Design. The state maps each member to the dots of its live adds, under one causal context.
 * Adding a member replaces its observed dots with one fresh dot; removing it drops its dots and
 * leaves the context, so the remove is remembered as "these adds were seen". On merge a dot
 * survives unless the other side saw it and dropped it, so an add concurrent with a remove (its
 * dot unseen by the remover) wins. Removing a member this replica does not hold does nothing.
 *
 * Invariants: entries strictly sorted by member, every entry with at least one dot, every dot
 * within the context. The wire form is `[[[member, [dot...]]...], context]`.
 */

import {
  checkContext,
  checkDots,
  compareStrings,
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
  type Checked,
  type Dot,
  type Kind,
  type NextDot,
  type OpChecked,
  type VersionVector,
} from './causal.js';

export interface SetOp {
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
}

/**
 * Members one operation may add, and separately remove. Each added member takes a dot and the
 * state is rebuilt once per operation; larger batches are split by the client.
 */
export const SET_OP_MEMBERS_MAX = 1000;

export type SetEntry = readonly [member: string, dots: readonly Dot[]];

export interface SetBody {
  /** Strictly sorted by member; each with at least one dot. */
  readonly entries: readonly SetEntry[];
  readonly context: VersionVector;
}

const EMPTY: SetBody = Object.freeze({ entries: Object.freeze([]), context: Object.freeze([]) });

function checkSetOp(op: unknown, path: string): OpChecked<SetOp> {
  if (!isPlainObject(op)) return refuseOp('a set operation is { add?: string[], remove?: string[] }', path);
  const extra = unknownKey(op, ['add', 'remove']);
  if (extra !== undefined) return refuseOp(`a set operation has no property ${JSON.stringify(extra)}`, `${path}.${extra}`);
  const add = checkMembers(op['add'], `${path}.add`);
  if (!add.ok) return add;
  const remove = checkMembers(op['remove'], `${path}.remove`);
  if (!remove.ok) return remove;
  if (add.op.length + remove.op.length === 0) return refuseOp('a set operation adds or removes at least one member', path);
  const added = new Set(add.op);
  const both = remove.op.findIndex((member) => added.has(member));
  if (both >= 0) return refuseOp('a member cannot be both added and removed by one operation', `${path}.remove[${both}]`);
  return {
    ok: true,
    op: { ...(op['add'] !== undefined ? { add: add.op } : {}), ...(op['remove'] !== undefined ? { remove: remove.op } : {}) },
  };
}

/** A list of members; `undefined` stands for none. */
function checkMembers(raw: unknown, path: string): OpChecked<string[]> {
  if (raw === undefined) return { ok: true, op: [] };
  if (!Array.isArray(raw)) return refuseOp('must be an array of strings', path);
  const list = raw as unknown[];
  if (list.length > SET_OP_MEMBERS_MAX) return refuseOp(`at most ${SET_OP_MEMBERS_MAX} members per operation, got ${list.length}`, path);
  for (const [i, member] of list.entries()) {
    const problem = stringProblem(member);
    if (problem !== undefined) return refuseOp(`a member ${problem}`, `${path}[${i}]`);
  }
  return { ok: true, op: list.slice() as string[] };
}

/** Removes drop the members' dots; adds give each member one fresh dot. */
function applySet(body: SetBody, op: SetOp, next: NextDot): SetBody {
  const changes = new Map<string, readonly Dot[]>();
  for (const member of op.remove ?? []) changes.set(member, []);
  let context = body.context;
  for (const member of new Set(op.add ?? [])) {
    const dot = next();
    changes.set(member, [dot]);
    context = withDot(context, dot);
  }
  const changed: SetEntry[] = [...changes].sort(byMember);
  const entries = joinSorted(body.entries, changed, byMember, (_, y) => live(y), (x) => x, live);
  return { entries, context };
}

function mergeSets(a: SetBody, b: SetBody): SetBody {
  if (a === b) return a;
  const seenByA = seenIn(a.context);
  const seenByB = seenIn(b.context);
  const entries = joinSorted(
    a.entries,
    b.entries,
    byMember,
    (x, y) => live([x[0], mergeDots(x[1], y[1], seenByA, seenByB)]),
    (x) => keepUnseen(x, seenByB),
    (y) => keepUnseen(y, seenByA),
  );
  return { entries, context: mergeContexts(a.context, b.context) };
}

function fromWire(raw: unknown, path: string): Checked<SetBody> {
  if (!isTuple(raw, 2)) return refuse(`${path} is not a [members, context] pair`);
  const context = checkContext(raw[1], `${path}.context`);
  if (!context.ok) return context;
  if (!Array.isArray(raw[0])) return refuse(`${path}.members is not an array`);
  const seen = seenIn(context.value);
  const entries: SetEntry[] = [];
  for (const [i, item] of (raw[0] as unknown[]).entries()) {
    const at = `${path}.members[${i}]`;
    if (!isTuple(item, 2)) return refuse(`${at} is not a [member, dots] pair`);
    const problem = stringProblem(item[0]);
    if (problem !== undefined) return refuse(`${at}: member ${problem}`);
    const member = item[0] as string;
    const previous = entries[i - 1];
    if (previous !== undefined && !(previous[0] < member)) return refuse(`${at}: members not strictly sorted`);
    const dots = checkDots(item[1], `${at}.dots`, seen);
    if (!dots.ok) return dots;
    if (dots.value.length === 0) return refuse(`${at}: a member without dots`);
    entries.push([member, dots.value]);
  }
  return { ok: true, value: { entries, context: context.value } };
}

function byMember(x: SetEntry, y: SetEntry): number {
  return compareStrings(x[0], y[0]);
}

function live(entry: SetEntry): SetEntry | undefined {
  return entry[1].length > 0 ? entry : undefined;
}

function keepUnseen(entry: SetEntry, seen: (dot: Dot) => boolean): SetEntry | undefined {
  const dots = unseenDots(entry[1], seen);
  return dots === entry[1] ? entry : live([entry[0], dots]);
}

export const setKind: Kind<SetBody, SetOp> = {
  empty: EMPTY,
  check: (op, path) => checkSetOp(op, path),
  apply: (body, op, next) => ({ ok: true, body: applySet(body, op, next) }),
  merge: mergeSets,
  value: (body) => body.entries.map(([member]) => member),
  reset: (body) => (body.entries.length === 0 ? body : { entries: [], context: body.context }),
  isEmpty: (body) => body.entries.length === 0 && body.context.length === 0,
  toWire: (body) => [body.entries, body.context],
  fromWire: (raw, path) => fromWire(raw, path),
};
