/**
 * What both store adapters do to cross from the port's types to stored bytes and back: encode
 * a batch of writes up front, and decode a stored record into an object or a `StorageError`.
 *
 * A batch is encoded completely before an adapter touches its engine. That is what makes a
 * refused write (a bucket or hint target with a zero character, a key over the limit) refuse
 * the whole batch with nothing written, and it copies everything the caller handed over, so a
 * caller that reuses its objects after `apply` returns cannot change what gets written.
 */

import { StorageError } from '../base/errors.js';
import type { KvObject } from '../clock/object.js';
import type { HintEntry, HintTargetSummary, StoreWrite } from '../node/ports.js';
import { decodeHintKey, decodeHintTarget, decodeStorageKey, encodeHintKey, encodeStorageKey, type StorageKeyResult } from './keys.js';
import { decodeObject, encodeObject } from './object-codec.js';
import type { StoreEntry } from './store.js';

/**
 * Where a write goes: the node's own objects (what `get`, `scan` and `count` read), or the
 * hints it keeps for other nodes (what `getHint`, `hintsFor` and `hintTargets` read).
 */
export type Keyspace = 'objects' | 'hints';

/** A write ready for the engine: its keyspace, the key, and the record bytes or undefined for a delete. */
export interface EncodedWrite {
  readonly keyspace: Keyspace;
  readonly key: Uint8Array;
  readonly record: Uint8Array | undefined;
}

/** Encodes every write of a batch, or throws StorageError naming the first that cannot be stored. */
export function encodeWrites(writes: readonly StoreWrite[]): EncodedWrite[] {
  return writes.map((write, index) => {
    const hint = write.op === 'hint-put' || write.op === 'hint-delete';
    const key: StorageKeyResult = hint ? encodeHintKey(write.target, write.bucket, write.key) : encodeStorageKey(write.bucket, write.key);
    if (!key.ok) {
      throw new StorageError(`write ${index} cannot be stored: ${key.reason}`, {
        ...(hint ? { target: truncated(write.target) } : {}),
        bucket: write.bucket,
        key: truncated(write.key),
        index,
      });
    }
    const record = write.op === 'put' || write.op === 'hint-put' ? encodeObject(write.object) : undefined;
    return { keyspace: hint ? 'hints' : 'objects', key: key.bytes, record };
  });
}

/** The storage key to look (bucket, key) up under, or undefined when no record can exist for it. */
export function lookupKey(bucket: string, key: string): Uint8Array | undefined {
  const encoded = encodeStorageKey(bucket, key);
  return encoded.ok ? encoded.bytes : undefined;
}

/** The hint key to look a hint up under, or undefined when no hint can exist for it. */
export function lookupHintKey(target: string, bucket: string, key: string): Uint8Array | undefined {
  const encoded = encodeHintKey(target, bucket, key);
  return encoded.ok ? encoded.bytes : undefined;
}

/** Decodes the record stored under (bucket, key), or throws StorageError naming the key. */
export function readObject(record: Uint8Array, bucket: string, key: string): KvObject {
  const decoded = decodeObject(record);
  if (!decoded.ok) {
    throw new StorageError(`stored object ${JSON.stringify(bucket)}/${JSON.stringify(truncated(key))} is corrupt: ${decoded.reason}`, {
      bucket,
      key: truncated(key),
      reason: decoded.reason,
    });
  }
  return decoded.object;
}

/** Decodes the hint stored for `target` under (bucket, key), or throws StorageError naming it. */
export function readHintObject(record: Uint8Array, target: string, bucket: string, key: string): KvObject {
  const decoded = decodeObject(record);
  if (!decoded.ok) {
    throw new StorageError(
      `stored hint for ${JSON.stringify(truncated(target))} at ${JSON.stringify(bucket)}/${JSON.stringify(truncated(key))} is corrupt: ${decoded.reason}`,
      { target: truncated(target), bucket, key: truncated(key), reason: decoded.reason },
    );
  }
  return decoded.object;
}

/** Decodes one stored (key, record) pair met in a scan, or throws StorageError naming it. */
export function readEntry(storageKey: Uint8Array, record: Uint8Array): StoreEntry {
  const parts = decodeStorageKey(storageKey);
  if (parts === undefined) throw corruptKey('stored key', storageKey);
  return { ...parts, object: readObject(record, parts.bucket, parts.key) };
}

/** Decodes one stored (hint key, record) pair met in a hint range, or throws StorageError naming it. */
export function readHintEntry(hintKey: Uint8Array, record: Uint8Array): HintEntry {
  const parts = decodeHintKey(hintKey);
  if (parts === undefined) throw corruptKey('stored hint key', hintKey);
  return { bucket: parts.bucket, key: parts.key, object: readHintObject(record, parts.target, parts.bucket, parts.key) };
}

/**
 * Sums hints per target from (hint key, record size) pairs, in the order targets are first
 * met (key order, when the pairs come in key order). Throws StorageError for a key that does
 * not start with a target.
 */
export function summarizeHints(hints: Iterable<{ readonly key: Uint8Array; readonly recordBytes: number }>): HintTargetSummary[] {
  const totals = new Map<string, { count: number; bytes: number }>();
  for (const { key, recordBytes } of hints) {
    const target = decodeHintTarget(key);
    if (target === undefined) throw corruptKey('stored hint key', key);
    const total = totals.get(target);
    if (total === undefined) totals.set(target, { count: 1, bytes: recordBytes });
    else {
      total.count++;
      total.bytes += recordBytes;
    }
  }
  return Array.from(totals, ([target, { count, bytes }]) => ({ target, count, bytes }));
}

export function closedError(engine: string): StorageError {
  return new StorageError(`the ${engine} store is closed`, { engine, closed: true });
}

/** Characters of a key kept in error details: keys may be a kilobyte, log lines should not. */
const KEY_DETAIL_CHARS_MAX = 128;

/** Bytes of a corrupt storage key shown (as hex) in error details; enough to find it on disk. */
const STORAGE_KEY_DETAIL_BYTES_MAX = 64;

function truncated(key: string): string {
  return key.length > KEY_DETAIL_CHARS_MAX ? `${key.slice(0, KEY_DETAIL_CHARS_MAX)}…` : key;
}

function corruptKey(what: string, bytes: Uint8Array): StorageError {
  return new StorageError(`${what} ${hex(bytes)} is corrupt`, { storageKey: hex(bytes) });
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, STORAGE_KEY_DETAIL_BYTES_MAX), (b) => b.toString(16).padStart(2, '0')).join('');
}
