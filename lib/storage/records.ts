/**
 * What both store adapters do to cross from the port's types to stored bytes and back: encode
 * a batch of writes up front, and decode a stored record into an object or a `StorageError`.
 *
 * A batch is encoded completely before an adapter touches its engine. That is what makes a
 * refused write (a bucket with a zero character, a storage key over the limit) refuse the
 * whole batch with nothing written, and it copies everything the caller handed over, so a
 * caller that reuses its objects after `apply` returns cannot change what gets written.
 */

import { StorageError } from '../base/errors.js';
import type { KvObject } from '../clock/object.js';
import type { StoreWrite } from '../node/ports.js';
import { decodeStorageKey, encodeStorageKey } from './keys.js';
import { decodeObject, encodeObject } from './object-codec.js';
import type { StoreEntry } from './store.js';

/** A write ready for the engine: the storage key, and the record bytes or undefined for a delete. */
export interface EncodedWrite {
  readonly key: Uint8Array;
  readonly record: Uint8Array | undefined;
}

/** Encodes every write of a batch, or throws StorageError naming the first that cannot be stored. */
export function encodeWrites(writes: readonly StoreWrite[]): EncodedWrite[] {
  return writes.map((write, index) => {
    const key = encodeStorageKey(write.bucket, write.key);
    if (!key.ok) {
      throw new StorageError(`write ${index} cannot be stored: ${key.reason}`, {
        bucket: write.bucket,
        key: truncated(write.key),
        index,
      });
    }
    return { key: key.bytes, record: write.op === 'put' ? encodeObject(write.object) : undefined };
  });
}

/** The storage key to look (bucket, key) up under, or undefined when no record can exist for it. */
export function lookupKey(bucket: string, key: string): Uint8Array | undefined {
  const encoded = encodeStorageKey(bucket, key);
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

/** Decodes one stored (key, record) pair met in a scan, or throws StorageError naming it. */
export function readEntry(storageKey: Uint8Array, record: Uint8Array): StoreEntry {
  const parts = decodeStorageKey(storageKey);
  if (parts === undefined) {
    throw new StorageError(`stored key ${hex(storageKey)} is corrupt`, { storageKey: hex(storageKey) });
  }
  return { ...parts, object: readObject(record, parts.bucket, parts.key) };
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

function hex(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, STORAGE_KEY_DETAIL_BYTES_MAX), (b) => b.toString(16).padStart(2, '0')).join('');
}
