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
 *
 * Hint keys. Hints (writes kept for another node until it can take them) live in a keyspace of
 * their own, keyed by the target node first:
 *
 *     utf8(target) ‖ 0x00 ‖ storage key
 *
 * A target never contains a zero byte, so the first zero ends it, and all of one target's
 * hints are the one byte range [target ‖ 0x00, target ‖ 0x01), ordered by storage key within
 * it. A target that extends another ("n1" and "n1x") sorts outside the shorter one's range:
 * where the shorter target ends, its keys continue with a byte that is not zero (a target holds
 * none), and the range admits only 0x00 there.
 * The whole hint key is held to the same `STORAGE_KEY_BYTES_MAX` bound as a storage key.
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

export interface HintKeyParts extends StorageKeyParts {
  readonly target: string;
}

export type StorageKeyResult = { readonly ok: true; readonly bytes: Uint8Array } | { readonly ok: false; readonly reason: string };

/**
 * `fatal` so that corrupt bytes are reported instead of replaced; `ignoreBOM` because a
 * key may legitimately start with U+FEFF and must come back unchanged.
 */
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes a (bucket, key) pair, or says why it cannot be stored. */
export function encodeStorageKey(bucket: string, key: string): StorageKeyResult {
  const encoded = encodeWithPrefix(0, bucket, key, 'storage key');
  return encoded.ok ? { ok: true, bytes: new Uint8Array(encoded.bytes.buffer, encoded.bytes.byteOffset, encoded.bytes.length) } : encoded;
}

/** Encodes the key of a hint kept for `target` under (bucket, key), or says why it cannot be stored. */
export function encodeHintKey(target: string, bucket: string, key: string): StorageKeyResult {
  const refused = checkTarget(target);
  if (refused !== undefined) return { ok: false, reason: refused };
  const targetBytes = Buffer.byteLength(target, 'utf8');
  const encoded = encodeWithPrefix(targetBytes + 1, bucket, key, 'hint key');
  if (!encoded.ok) return encoded;
  encoded.bytes.write(target, 0, 'utf8');
  encoded.bytes[targetBytes] = 0;
  return { ok: true, bytes: new Uint8Array(encoded.bytes.buffer, encoded.bytes.byteOffset, encoded.bytes.length) };
}

/**
 * Allocates `prefixBytes` (left for the caller to fill) followed by the storage key of
 * (bucket, key), written in place: token ‖ utf8(bucket) ‖ 0 ‖ utf8(key), hashed where it lies.
 * This is on every read and write, so it allocates one buffer and encodes each string once.
 * `noun` names the whole key in the reason for a key over the limit.
 */
function encodeWithPrefix(
  prefixBytes: number,
  bucket: string,
  key: string,
  noun: string,
): { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly reason: string } {
  if (bucket.includes('\u0000')) return { ok: false, reason: 'bucket contains a zero character' };
  if (!isWellFormed(bucket) || !isWellFormed(key)) {
    return { ok: false, reason: 'bucket or key contains a lone surrogate' };
  }
  const bucketBytes = Buffer.byteLength(bucket, 'utf8');
  const length = prefixBytes + STORAGE_KEY_TOKEN_BYTES + bucketBytes + 1 + Buffer.byteLength(key, 'utf8');
  if (length > STORAGE_KEY_BYTES_MAX) {
    return { ok: false, reason: `${noun} is ${length} bytes, over the ${STORAGE_KEY_BYTES_MAX}-byte limit` };
  }
  const bytes = Buffer.allocUnsafe(length);
  const tail = prefixBytes + STORAGE_KEY_TOKEN_BYTES;
  bytes.write(bucket, tail, 'utf8');
  bytes[tail + bucketBytes] = 0;
  bytes.write(key, tail + bucketBytes + 1, 'utf8');
  bytes.writeUInt32BE(tokenOf(bytes.subarray(tail)), prefixBytes);
  return { ok: true, bytes };
}

/** Why `target` cannot name a hint keyspace, or undefined when it can. */
function checkTarget(target: string): string | undefined {
  if (target.length === 0) return 'hint target is empty';
  if (target.includes('\u0000')) return 'hint target contains a zero character';
  if (!isWellFormed(target)) return 'hint target contains a lone surrogate';
  return undefined;
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

/** Decodes a hint key, or returns undefined when the bytes are not one (a corrupt record). */
export function decodeHintKey(bytes: Uint8Array): HintKeyParts | undefined {
  const zero = bytes.indexOf(0);
  if (zero <= 0) return undefined;
  const parts = decodeStorageKey(bytes.subarray(zero + 1));
  if (parts === undefined) return undefined;
  try {
    return { target: utf8Decoder.decode(bytes.subarray(0, zero)), ...parts };
  } catch {
    return undefined;
  }
}

/** The target a hint key belongs to, or undefined when the bytes do not start with one. */
export function decodeHintTarget(bytes: Uint8Array): string | undefined {
  const zero = bytes.indexOf(0);
  if (zero <= 0) return undefined;
  try {
    return utf8Decoder.decode(bytes.subarray(0, zero));
  } catch {
    return undefined;
  }
}

/**
 * The byte range [start, end) holding every hint kept for `target`: target ‖ 0x00 up to
 * target ‖ 0x01. Undefined when `target` cannot name a hint keyspace, so nothing is kept for it.
 */
export function hintTargetRange(target: string): { readonly start: Uint8Array; readonly end: Uint8Array } | undefined {
  if (checkTarget(target) !== undefined) return undefined;
  const targetBytes = Buffer.byteLength(target, 'utf8');
  const start = new Uint8Array(targetBytes + 1);
  Buffer.from(start.buffer, start.byteOffset, start.length).write(target, 0, 'utf8');
  const end = start.slice();
  end[targetBytes] = 1;
  return { start, end };
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
