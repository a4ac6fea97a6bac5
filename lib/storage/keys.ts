/**
 * Storage keys: how a (bucket, key) pair is laid out as the key of a stored record.
 *
 *     token (4 bytes, big-endian) ‖ utf8(bucket) ‖ 0x00 ‖ utf8(key)
 *
 * The token comes first so that byte order is ring order: every key whose token lies in
 * [a, b) sorts between the 4-byte prefixes of a and b, and a token range (what a vnode owns,
 * what handoff moves, what a Merkle segment covers) is one ordered scan. This is the layout of
 * DESIGN.md's data model; riak_kv's `hashtree` segments keys the same way for the same reason.
 *
 * Bucket names never contain a zero byte, while keys may. Decoding therefore splits at the
 * FIRST zero after the token. Because the bucket has no zero byte, two different pairs never
 * encode to the same bytes, and the layout sorts by (token, bucket, key).
 *
 * Invariants:
 * - `decodeStorageKey(encodeStorageKey(b, k))` returns (keyToken(b, k), b, k) for every
 *   accepted pair.
 * - An accepted pair's storage key is at most `STORAGE_KEY_BYTES_MAX` bytes, so every engine
 *   (LMDB's default key limit is 1978 bytes) can store it.
 * - Strings with lone surrogates are refused: UTF-8 cannot represent them, so they would
 *   silently turn into U+FFFD and collide with other keys.
 */

import { STORAGE_KEY_BYTES_MAX } from '../base/limits.js';
import { assert } from '../base/assert.js';
import { isWellFormed } from '../base/utf8.js';
import { tokenOf } from '../ring/token.js';

/** Bytes of the big-endian token prefix. */
export const STORAGE_KEY_TOKEN_BYTES = 4;

/** One past the largest token: the ring is [0, 2^32). */
export const TOKEN_SPACE = 2 ** 32;

export interface StorageKeyParts {
  readonly token: number;
  readonly bucket: string;
  readonly key: string;
}

export type StorageKeyResult = { readonly ok: true; readonly bytes: Uint8Array } | { readonly ok: false; readonly reason: string };

/**
 * `fatal` so that corrupt bytes are reported instead of replaced; `ignoreBOM` because a
 * key may legitimately start with U+FEFF and must come back unchanged.
 */
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes a (bucket, key) pair, or says why it cannot be stored. */
export function encodeStorageKey(bucket: string, key: string): StorageKeyResult {
  if (bucket.includes('\u0000')) return { ok: false, reason: 'bucket contains a zero character' };
  if (!isWellFormed(bucket) || !isWellFormed(key)) {
    return { ok: false, reason: 'bucket or key contains a lone surrogate' };
  }
  // Written in place: the tail is utf8(bucket) ‖ 0 ‖ utf8(key), hashed where it lies. This
  // is on every read and write, so it allocates one buffer and encodes each string once.
  const bucketBytes = Buffer.byteLength(bucket, 'utf8');
  const length = STORAGE_KEY_TOKEN_BYTES + bucketBytes + 1 + Buffer.byteLength(key, 'utf8');
  if (length > STORAGE_KEY_BYTES_MAX) {
    return { ok: false, reason: `storage key is ${length} bytes, over the ${STORAGE_KEY_BYTES_MAX}-byte limit` };
  }
  const bytes = Buffer.allocUnsafe(length);
  bytes.write(bucket, STORAGE_KEY_TOKEN_BYTES, 'utf8');
  bytes[STORAGE_KEY_TOKEN_BYTES + bucketBytes] = 0;
  bytes.write(key, STORAGE_KEY_TOKEN_BYTES + bucketBytes + 1, 'utf8');
  bytes.writeUInt32BE(tokenOf(bytes.subarray(STORAGE_KEY_TOKEN_BYTES)), 0);
  return { ok: true, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, length) };
}

/** Decodes a storage key, or returns undefined when the bytes are not one (a corrupt record). */
export function decodeStorageKey(bytes: Uint8Array): StorageKeyParts | undefined {
  if (bytes.length < STORAGE_KEY_TOKEN_BYTES + 1) return undefined;
  const zero = bytes.indexOf(0, STORAGE_KEY_TOKEN_BYTES);
  if (zero < 0) return undefined;
  const token = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, false);
  try {
    const bucket = utf8Decoder.decode(bytes.subarray(STORAGE_KEY_TOKEN_BYTES, zero));
    const key = utf8Decoder.decode(bytes.subarray(zero + 1));
    return { token, bucket, key };
  } catch {
    return undefined;
  }
}

/** The 4-byte prefix every storage key with this token starts with; the bound of a range scan. */
export function tokenPrefix(token: number): Uint8Array {
  assertToken(token);
  const bytes = new Uint8Array(STORAGE_KEY_TOKEN_BYTES);
  new DataView(bytes.buffer).setUint32(0, token, false);
  return bytes;
}

/** Lexicographic byte order, the order LMDB keeps its keys in (memcmp, then length). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The byte ranges a token range [from, to) covers, each [start, end) with `undefined` for an
 * open end. A range with from >= to wraps past 2^32 - 1 to 0; from == to is the whole ring,
 * starting at `from`. Scanning the returned segments in order yields the ring order from `from`.
 */
export function tokenRangeSegments(
  fromToken: number,
  toToken: number,
): readonly { readonly start: Uint8Array | undefined; readonly end: Uint8Array | undefined }[] {
  assertToken(fromToken);
  assertToken(toToken);
  if (fromToken < toToken) return [{ start: tokenPrefix(fromToken), end: tokenPrefix(toToken) }];
  const wrapped = [{ start: tokenPrefix(fromToken), end: undefined }];
  // From 0 up to `to`; when `to` is 0 that part is empty and is left out.
  return toToken === 0 ? wrapped : [...wrapped, { start: undefined, end: tokenPrefix(toToken) }];
}

function assertToken(token: number): void {
  assert(Number.isInteger(token) && token >= 0 && token < TOKEN_SPACE, `token out of range: ${token}`);
}
