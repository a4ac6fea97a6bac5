/**
 * Typed values as replicas store them: one CRDT state (or Yjs document) per sibling.
 *
 * A typed bucket keeps the same stored object as a `kv` bucket, a dotted version vector set
 * (lib/clock/dvv.ts), so replication, hinted handoff, read repair and anti-entropy carry typed
 * values without knowing about them. What differs is the sibling: it is the encoded state of
 * the bucket's type (lib/crdt/index.ts) or, for `doc`, a Yjs update (v2, the more compact
 * encoding) holding the whole document (lib/crdt/doc.ts), and no client ever sees siblings:
 *
 * - An update is applied by a primary to the merge of every sibling it holds (a tombstone
 *   counts as the empty state), and written with the join of its clock as context. The new
 *   state is a lattice upper bound of everything that context discards, so no update is lost
 *   when the siblings collapse into one.
 * - Concurrent updates at different primaries leave siblings after a replica merge; a read
 *   merges them, and so does the next update.
 * - Two replicas that synced the same versions hold the same clock and the same sibling
 *   bytes, so anti-entropy's digests agree without re-encoding anything.
 *
 * Every function here returns a result for bad bytes; it never throws on what it is given.
 */

import { applyDocUpdate, diffDoc, DOC_UPDATE_BYTES_MAX, docUpdateOf, emptyDocState, mergeDocStates } from './doc.js';
import { applyOp, checkOp, CRDT_TYPES, decodeState, emptyState, encodeState, mergeStates, valueOf, type CrdtOp, type CrdtState, type CrdtType } from './index.js';

/** The bucket types whose values the node merges itself. */
export type TypedBucketType = CrdtType | 'doc';

export function isTypedType(type: string | undefined): type is TypedBucketType {
  return type === 'doc' || (CRDT_TYPES as readonly string[]).includes(type ?? '');
}

/** An operation checked for its type. */
export type TypedOp = { readonly type: CrdtType; readonly op: CrdtOp } | { readonly type: 'doc'; readonly update: Uint8Array };

export type Refusal = { readonly ok: false; readonly reason: string; readonly field: string };

/** Checks a client's operation for `type`; for a `doc`, only its shape (the shell decoded it already). */
export function checkTypedOp(type: TypedBucketType, op: unknown): { readonly ok: true; readonly op: TypedOp } | Refusal {
  if (type !== 'doc') {
    const checked = checkOp(type, op);
    return checked.ok ? { ok: true, op: { type, op: checked.op } } : { ok: false, reason: checked.reason, field: checked.field };
  }
  const update = isPlainRecord(op) && Object.keys(op).length === 1 ? op['update'] : undefined;
  if (!(update instanceof Uint8Array)) return { ok: false, reason: 'a doc operation is { update: <Yjs update bytes> }', field: 'op' };
  if (update.byteLength === 0 || update.byteLength > DOC_UPDATE_BYTES_MAX) {
    return { ok: false, reason: `a doc update must be 1 to ${DOC_UPDATE_BYTES_MAX} bytes, got ${update.byteLength}`, field: 'op.update' };
  }
  return { ok: true, op: { type: 'doc', update } };
}

type Merged = { readonly ok: true; readonly state: CrdtState | Uint8Array | undefined } | { readonly ok: false; readonly reason: string };

/** The merge of every live sibling's state; undefined when there is none (never written, or deleted). */
export function mergeSiblings(type: TypedBucketType, siblings: readonly (Uint8Array | null)[]): Merged {
  let merged: CrdtState | Uint8Array | undefined;
  for (const sibling of siblings) {
    if (sibling === null) continue;
    if (type === 'doc') {
      merged = merged === undefined ? sibling : mergeDocStates(merged as Uint8Array, sibling);
      continue;
    }
    const decoded = decodeState(type, sibling);
    if (!decoded.ok) return { ok: false, reason: `stored ${type} state is unreadable: ${decoded.reason}` };
    merged = merged === undefined ? decoded.state : mergeStates(type, merged as CrdtState, decoded.state);
  }
  return { ok: true, state: merged };
}

export interface ApplyTypedContext {
  readonly actor: string;
  readonly nextCounter: () => number;
  readonly opId?: string | undefined;
}

export type Applied = { readonly ok: true; readonly bytes: Uint8Array; readonly duplicate: boolean; readonly value: unknown } | Refusal;

/** Applies a checked operation to the merge of the stored siblings; the new sibling's bytes and the value after it. */
export function applyTyped(type: TypedBucketType, siblings: readonly (Uint8Array | null)[], op: TypedOp, ctx: ApplyTypedContext): Applied {
  const merged = mergeSiblings(type, siblings);
  if (!merged.ok) return { ok: false, reason: merged.reason, field: 'stored' };
  if (op.type === 'doc') {
    const state = (merged.state as Uint8Array | undefined) ?? emptyDocState();
    return { ok: true, bytes: applyDocUpdate(state, op.update), duplicate: false, value: undefined };
  }
  if (type === 'doc' || op.type !== type) return { ok: false, reason: `a ${op.type} operation on a ${type} bucket`, field: 'type' };
  const state = (merged.state as CrdtState | undefined) ?? emptyState(type);
  const applied = applyOp(type, state, op.op, ctx.opId === undefined ? { actor: ctx.actor, nextCounter: ctx.nextCounter } : ctx);
  if (!applied.ok) return applied;
  return { ok: true, bytes: encodeState(type, applied.state), duplicate: applied.duplicate, value: valueOf(type, applied.state) };
}

/**
 * What a read answers: the type's value of the merged siblings, or for a `doc` the whole
 * document as one Yjs update (with `sv`, only what that state vector lacks).
 */
export function typedValue(
  type: TypedBucketType,
  siblings: readonly (Uint8Array | null)[],
  sv: Uint8Array | undefined,
): { readonly ok: true; readonly found: boolean; readonly value: unknown } | Refusal {
  const merged = mergeSiblings(type, siblings);
  if (!merged.ok) return { ok: false, reason: merged.reason, field: 'stored' };
  const found = merged.state !== undefined;
  if (type === 'doc') {
    const state = (merged.state as Uint8Array | undefined) ?? emptyDocState();
    if (sv === undefined) return { ok: true, found, value: docUpdateOf(state) };
    const diff = diffDoc(state, sv);
    return diff.ok ? { ok: true, found, value: diff.update } : { ok: false, reason: diff.reason, field: 'sv' };
  }
  return { ok: true, found, value: valueOf(type, (merged.state as CrdtState | undefined) ?? emptyState(type)) };
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
