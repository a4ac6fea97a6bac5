/**
 * The on-disk form of a stored object (a `KvObject`: siblings under a dotted version vector).
 *
 *     CBOR [[actor, counter, [value | null, ...]], ...]
 *
 * One array per DVV entry, in the entry order of the object; a value is a CBOR byte string
 * (the client's bytes, never decoded) and a tombstone is CBOR null. Positional arrays rather
 * than maps keep records small: a replica stores one per key.
 *
 * Decoding never trusts the bytes. A record can be damaged on disk or written by a different
 * version, so the decoder bounds the CBOR work (depth and item count), and
 * `validateDvvTuples` checks the shape and the clock's own invariants. Failure is a result,
 * not an exception: the store turns it into a `StorageError` naming the key (see store.ts).
 *
 * Decoded byte strings are always copied out of the record (`copyBytes`), so a caller can
 * keep or change what it read without touching the stored record (the memory store keeps
 * its records as byte arrays), and a record read from memory that LMDB reuses on the next
 * read cannot change under it. They come back as plain Uint8Arrays, never Buffers, whatever
 * the engine handed over.
 */

import { validateDvvTuples } from '../clock/dvv.js';
import type { KvObject, Sibling } from '../clock/object.js';
import { decodeSafe, encode } from '../codec/cbor.js';

/**
 * Nesting of a record: the outer array, an entry, its value list, and a byte string.
 * A little headroom is allowed; anything deeper is not a record.
 */
const OBJECT_DEPTH_MAX = 8;

/**
 * CBOR items in one record. Entries are bounded by the replica count and siblings by
 * `DataLimits.siblingsMax` at the client entry, but replicas never refuse merged data, so the
 * bound here is generous: it only stops a corrupt length field from making the decoder
 * allocate without limit.
 */
const OBJECT_ITEMS_MAX = 1_000_000;

export type ObjectDecodeResult = { readonly ok: true; readonly object: KvObject } | { readonly ok: false; readonly reason: string };

/**
 * Encodes an object to its record bytes. They may be a view of the CBOR encoder's shared
 * slab, which is never overwritten; a store that keeps them in memory copies them out.
 */
export function encodeObject(object: KvObject): Uint8Array {
  return encode(object.entries.map((entry) => [entry.actor, entry.counter, entry.values]));
}

/** Decodes record bytes, or says why they are not a valid object. Never throws on bad input. */
export function decodeObject(bytes: Uint8Array): ObjectDecodeResult {
  // One pooled copy of the record (the input may be LMDB's shared read buffer), as a plain
  // Uint8Array view so the values decode as plain views of it: copying each value into an
  // ArrayBuffer of its own costs more than the whole decode.
  const owned = Buffer.from(bytes);
  const plain = new Uint8Array(owned.buffer, owned.byteOffset, owned.length);
  const decoded = decodeSafe(plain, { depthMax: OBJECT_DEPTH_MAX, itemsMax: OBJECT_ITEMS_MAX, copyBytes: false });
  if (!decoded.ok) return { ok: false, reason: `not CBOR: ${decoded.reason}` };
  // Checks actors, counters, ordering and every value, building each entry once.
  const validated = validateDvvTuples<Sibling>(decoded.value, isSibling);
  if (!validated.ok) return { ok: false, reason: `invalid version vector: ${validated.reason}` };
  return { ok: true, object: validated.value };
}

function isSibling(value: unknown): boolean {
  return value === null || value instanceof Uint8Array;
}
