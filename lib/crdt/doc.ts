/**
 * Yjs documents as the values of `doc` buckets: a stored state is one Yjs update holding
 * the whole document, and every function here is a pure function of bytes.
 *
 * Formats. States are kept in Yjs's v2 encoding, which stores structs column by column and
 * takes about two thirds of v1's bytes for edited text; clients speak v1. `applyDocUpdate`
 * converts a client's update, `diffDoc` and `docUpdateOf` answer in v1, and `docStateOf`
 * turns a client update into a state. The `mergeUpdates`, `diffUpdate` and friends named
 * below are their V2 variants.
 *
 * Design. A replica never keeps a live Y.Doc: it keeps bytes, merges them with
 * `Y.mergeUpdates` (a merge of two encoded updates, no document needed) and answers readers
 * with `Y.diffUpdate` against their state vector. Yjs is a CRDT (YATA, Nicolaescu et al.
 * 2016), so merging is a join: commutative, associative and idempotent in content. It is not
 * byte-exact: where one input holds a run of characters as one struct and the other as
 * several, the output keeps the split of whichever input comes first, so `mergeUpdates([a,
 * b])` and `mergeUpdates([b, a])` can differ in bytes while holding the same document.
 * `mergeDocStates` therefore returns an input unchanged when the other adds nothing it can
 * see cheaply (equal bytes, or the empty state), so replicas that already agree keep agreeing
 * byte for byte; the spec checks the laws on content (text and state vector).
 *
 * Compaction. `mergeUpdates` never drops anything: a deleted character stays in the state as
 * an item plus a delete-set entry, and each edit stays its own struct. A state that is only
 * ever merged grows with every edit, live or not. `compactDoc` loads a state into a
 * garbage-collecting Y.Doc and encodes it again, which replaces deleted content by
 * tombstones without content and merges adjacent structs, so its size follows the live
 * document and its tombstones. (Not always downwards: where short edits landed inside earlier
 * ones, the Y.Doc splits items that the merge kept whole, and the result can be a little
 * larger; the rule below then keeps the merge.) Loading a Y.Doc costs several times a merge,
 * so `applyDocUpdate` does it rarely, by a rule that needs nothing but the bytes it is given:
 *
 * - Sizes are cut into levels at DOC_COMPACT_BYTES_MIN · 2^(k/4) bytes (4 KiB, 4.8 KiB,
 *   5.7 KiB, 6.7 KiB, 8 KiB, …; ratio r = 2^(1/4) between levels), computed with integer
 *   arithmetic so every node agrees.
 * - When a merge carries the state into a higher level, the merged state is compacted, and
 *   the compacted bytes are kept only if they are at most 1/r of the merged size, that is a
 *   level smaller; otherwise the merged bytes are kept. Below 4 KiB nothing is compacted:
 *   small documents cost little to keep whole.
 *
 * Why it is amortized: a check costs O(size). A refused compaction leaves the state in its
 * new level, so it is not checked again before it has grown by a further level, (r − 1) of
 * its size, which only edits can add. A kept compaction takes the state down a level or more;
 * at most one check follows before edits have again added (r − 1) of the size, and that one
 * is paid for by the compaction, whose garbage edits had added. So compaction costs O(1) per
 * byte of updates, however the edits fall. (Keeping every compaction would be wrong: a
 * document whose live size sits just below a boundary would be compacted back below it by
 * every edit, O(size) each time.) Why it is bounded: at a check the state is either compacted
 * or within r of its compacted size, and it grows at most one more level before the next
 * check, so while live content does not shrink the state stays within r² = √2 of its
 * compacted size, or under 4 KiB. (This is a tighter form of "compact once the state has
 * doubled since its last compaction and grown by 4 KiB", needing no record of that size.)
 * Deleting most of a document in one edit is the exception: the state keeps its size until it
 * grows into the next level. The spec measures the ratio over fifty thousand random edits.
 *
 * Determinism. These functions run in the deterministic core. Yjs encodes a Y.Doc's store in
 * a fixed order, and the Y.Doc used for compaction gets a fixed guid and clientID before any
 * use, so the same input gives the same bytes on every node. (The Y.Doc constructor still
 * draws a random clientID, which is overwritten at once and never reaches the output; the
 * document itself never makes an edit of its own.)
 *
 * Input. Client updates reach `applyDocUpdate` only after lib/runtime/doc-validator.ts has
 * decoded them in a worker with a time and memory limit (some updates make Yjs decoding spin
 * or take quadratic time), so the functions that take updates trust them; a throw there is a
 * bug. That check applies an update to an empty document, not to the stored one, so it does
 * not bound what integrating a whole adversarial history costs when a state is compacted;
 * Yjs itself gives no such bound. A client's state vector is small and cheap to check, so
 * `diffDoc` checks it itself and returns a result, never a throw.
 */

import * as Y from 'yjs';

/**
 * Bytes of one client update. A keystroke is tens of bytes and a pasted document rarely
 * more than a few hundred KiB; 1 MiB matches the value limit and bounds validation work.
 */
export const DOC_UPDATE_BYTES_MAX = 1024 * 1024;

/**
 * Bytes of a reader's state vector: two varints per client that ever edited the document, so
 * 64 KiB covers several thousand writers while keeping the decode trivially cheap.
 */
export const DOC_STATE_VECTOR_BYTES_MAX = 64 * 1024;

/**
 * Size below which a state is never compacted: small documents cost little to keep whole,
 * and checking them on every level would be most of the work for tiny edits.
 */
export const DOC_COMPACT_BYTES_MIN = 4 * 1024;

/**
 * The boundaries within one doubling of size, 2^(j/4) for j = 0..3, written as literals
 * (exactly rounded by the parser, unlike a power computed at run time). Their ratio,
 * LEVEL_RATIO, sets both how often a growing state is checked and how much a compaction
 * must save to be kept; the state stays within LEVEL_RATIO² = √2 of its compacted size.
 */
const LEVEL_STEPS: readonly number[] = [1, 1.189207115002721, 1.4142135623730951, 1.681792830507429];
const LEVEL_RATIO = 1.189207115002721;

/**
 * The first clientID the compaction document tries. It never writes, but Yjs warns and draws
 * a random new id when an update holds structs of the document's own id, so it takes the
 * first id from here that the state does not hold.
 */
const COMPACT_CLIENT_ID_FIRST = 1;

/** The guid of the compaction document, fixed so that Yjs draws no uuid for it. */
const COMPACT_GUID = 'chorus-doc-compaction';

/** Yjs's v2 encoding of a document with no structs and an empty delete set. */
const EMPTY_DOC_STATE: readonly number[] = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];

export type DocDiff = { readonly ok: true; readonly update: Uint8Array } | { readonly ok: false; readonly reason: string };

/** The state of an empty doc (a valid, empty Yjs update). A fresh array each call. */
export function emptyDocState(): Uint8Array {
  return Uint8Array.from(EMPTY_DOC_STATE);
}

/**
 * Merges two states (the lattice join; `Y.mergeUpdates`). Never compacts, so a replica merge
 * adds nothing of its own. Returns an input itself when the other is equal to it or empty.
 */
export function mergeDocStates(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (isEmptyDocState(b) || bytesEqual(a, b)) return a;
  if (isEmptyDocState(a)) return b;
  return Y.mergeUpdatesV2([a, b]);
}

/**
 * Applies an already-validated client update to a stored state and returns the new state,
 * compacted when the merge carried it into a higher size level (see the file comment).
 */
export function applyDocUpdate(state: Uint8Array, update: Uint8Array): Uint8Array {
  const merged = Y.mergeUpdatesV2([state, Y.convertUpdateFormatV1ToV2(update)]);
  if (compactionLevel(merged.byteLength) <= compactionLevel(state.byteLength)) return merged;
  const compacted = compactDoc(merged);
  // Keep the compaction only if it takes the state down by at least a level.
  return compacted.byteLength * LEVEL_RATIO <= merged.byteLength ? compacted : merged;
}

/**
 * What a reader with state vector `sv` is missing (`Y.diffUpdate`). The state vector comes
 * from a client: it is refused, never thrown on, when it is too large or does not decode.
 */
export function diffDoc(state: Uint8Array, sv: Uint8Array): DocDiff {
  if (sv.byteLength > DOC_STATE_VECTOR_BYTES_MAX) {
    return { ok: false, reason: `a state vector must be at most ${DOC_STATE_VECTOR_BYTES_MAX} bytes, got ${sv.byteLength}` };
  }
  try {
    // Decoding first proves the bytes are a state vector; it reads two varints per entry
    // and stops at the end of the input, so its work is bounded by the size checked above.
    Y.decodeStateVector(sv);
  } catch (error) {
    return { ok: false, reason: `malformed state vector: ${describe(error)}` };
  }
  try {
    return { ok: true, update: Y.convertUpdateFormatV2ToV1(Y.diffUpdateV2(state, sv)) };
  } catch (error) {
    return { ok: false, reason: `cannot diff against that state vector: ${describe(error)}` };
  }
}

/** The state vector of a state (`Y.encodeStateVectorFromUpdate`). */
export function docStateVector(state: Uint8Array): Uint8Array {
  return Y.encodeStateVectorFromUpdateV2(state);
}

/** A client's v1 update as a state (the stored format), e.g. to merge it as a replica would. */
export function docStateOf(update: Uint8Array): Uint8Array {
  return Y.convertUpdateFormatV1ToV2(update);
}

/** The whole document as a v1 update, the format clients speak. */
export function docUpdateOf(state: Uint8Array): Uint8Array {
  return Y.convertUpdateFormatV2ToV1(state);
}

/**
 * The garbage-collected re-encoding of a state: loaded into a Y.Doc that collects deleted
 * content, then encoded whole. Updates the state depends on but lacks stay in it (Yjs
 * encodes its pending structs and deletes too). The same input gives the same bytes.
 */
export function compactDoc(state: Uint8Array): Uint8Array {
  const doc = new Y.Doc({ gc: true, guid: COMPACT_GUID });
  const writers = Y.decodeStateVector(Y.encodeStateVectorFromUpdateV2(state));
  let clientID = COMPACT_CLIENT_ID_FIRST;
  while (writers.has(clientID)) clientID++;
  doc.clientID = clientID;
  try {
    Y.applyUpdateV2(doc, state);
    return Y.encodeStateAsUpdateV2(doc);
  } finally {
    doc.destroy();
  }
}

/**
 * The level of a size: 0 below DOC_COMPACT_BYTES_MIN, then one more at every boundary
 * DOC_COMPACT_BYTES_MIN · 2^(j/4) above it. The boundaries are integers (the floor of a
 * doubling base times a literal fourth root), so every node computes the same levels.
 */
function compactionLevel(bytes: number): number {
  let level = 0;
  for (let base = DOC_COMPACT_BYTES_MIN; base <= bytes; base *= 2) {
    for (const step of LEVEL_STEPS) if (bytes >= Math.floor(base * step)) level++;
  }
  return level;
}

function isEmptyDocState(bytes: Uint8Array): boolean {
  return bytes.byteLength === EMPTY_DOC_STATE.length && EMPTY_DOC_STATE.every((b, i) => bytes[i] === b);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
