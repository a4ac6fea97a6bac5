/**
 * Digests: what one stored version of one key contributes to anti-entropy's hash trees.
 *
 * Two replicas agree on a key when they hold the same object: the same dotted version vector
 * with the same sibling values (or tombstones) in the same places. `objectDigest` condenses
 * that into 16 bytes, and `keyHash` binds a digest to the (bucket, key) it belongs to, giving
 * the key's contribution to its segment's hash (segments.ts), which is the XOR of every key's
 * contribution (XHASH, the XOR instance of Bellare and Micciancio's incremental hashing, 1997);
 * Merkle's tree sits on top (tree.ts).
 *
 * Object digest, format version 1. SHA-256 over the canonical bytes below, truncated to the
 * first 16 bytes. Integers are unsigned big-endian; strings are UTF-8, as on disk and on the
 * wire. Every variable-length part carries its length, so the encoding is injective: two
 * objects that differ in any actor, counter, entry, sibling count, sibling position, value
 * byte, or value versus tombstone encode differently.
 *
 *     0x01                                  format tag (object digest, version 1)
 *     u32 entry count
 *     per entry, in entry order (sorted by actor):
 *       u32 actor byte length ‖ actor
 *       u32 counter / 2^32 ‖ u32 counter mod 2^32
 *       u32 value count
 *       per value, newest first:  0x00 (tombstone)  |  0x01 ‖ u32 byte length ‖ bytes
 *
 * Sibling order is part of the object (values[i] carries the dot (actor, counter − i)), so it
 * is part of the digest. SHA-256 makes a digest collision infeasible even for a client who
 * chooses values, which matters because anti-entropy ships a record only when the digests of
 * the two replicas differ. 128 bits keep a (key, digest) list entry small on the wire.
 *
 * Key hash. MurmurHash3 x86_128 (seed 0) over utf8(bucket) ‖ 0x00 ‖ utf8(key) ‖ digest, the
 * token's input bytes with the digest appended: unambiguous, since a bucket holds no zero byte
 * and the digest has a fixed length. It runs twice on every local write (out with the old
 * version, in with the new), so it must be cheap: a call into node:crypto costs about a
 * microsecond of fixed overhead, this costs a fraction of that. What it needs is good mixing,
 * not collision resistance: the XOR of hashes over a set is not collision resistant against
 * someone choosing many elements anyway (Wagner's generalized birthday attack), and
 * divergence between replicas comes from faults, not from an adversary. A keyed hash with a
 * cluster secret would close that gap if it ever matters.
 *
 * Invariants:
 * - A digest is a pure function of the object's entries in order; equal objects (`equalDvv`
 *   with byte equality) have equal digests. Changing this encoding changes every persisted
 *   segment hash: bump the format tag and rebuild, never edit version 1. Golden specs pin it.
 * - A key hash is a pure function of (bucket, key, digest); it is 16 bytes, the
 *   little-endian words h1 ‖ h2 ‖ h3 ‖ h4 of MurmurHash3 x86_128, as the reference C writes them.
 */

import { hash, type Hash, createHash } from 'node:crypto';

import { assert } from '../base/assert.js';
import type { KvObject } from '../clock/object.js';

/** Bytes of an object digest: a truncated SHA-256. */
export const DIGEST_BYTES = 16;

/** Bytes of a key's contribution to a segment hash, and of every hash in the trees. */
export const KEY_HASH_BYTES = 16;

/** The object digest's format tag; part of the hashed bytes. */
const OBJECT_DIGEST_V1 = 0x01;

/** The key hash seed is part of the persisted segment hashes: every node must use the same. */
const KEY_HASH_SEED = 0;

/**
 * Bytes hashed in one call from the scratch buffer. An ordinary object fits whole and costs one
 * call into node:crypto; a larger one streams, and a value too big for the buffer is handed to
 * the hash as it is, so no copy of a big value is ever made. 64 KiB covers most objects.
 */
const DIGEST_SCRATCH_BYTES = 64 * 1024;

/** UTF-8 needs at most 3 bytes per UTF-16 code unit (a surrogate pair is 4 bytes for 2 units). */
const UTF8_BYTES_PER_UNIT_MAX = 3;

const utf8 = new TextEncoder();

/**
 * Writes the canonical bytes into a reused scratch buffer and hashes them. The core is
 * synchronous and a digest never yields, so one module-level buffer is safe to share.
 */
class DigestWriter {
  private readonly scratch = new Uint8Array(DIGEST_SCRATCH_BYTES);
  private position = 0;
  private stream: Hash | undefined;

  begin(): void {
    this.position = 0;
    this.stream = undefined;
  }

  byte(value: number): void {
    this.room(1);
    this.scratch[this.position++] = value;
  }

  uint32(value: number): void {
    this.room(4);
    const s = this.scratch;
    const p = this.position;
    s[p] = value >>> 24;
    s[p + 1] = value >>> 16;
    s[p + 2] = value >>> 8;
    s[p + 3] = value;
    this.position = p + 4;
  }

  /** u32 byte length ‖ UTF-8 bytes. */
  text(value: string): void {
    const bound = value.length * UTF8_BYTES_PER_UNIT_MAX;
    if (bound + 4 > DIGEST_SCRATCH_BYTES) {
      const encoded = utf8.encode(value);
      this.uint32(encoded.length);
      this.bytes(encoded);
      return;
    }
    this.room(bound + 4);
    const start = this.position + 4;
    const { written } = utf8.encodeInto(value, this.scratch.subarray(start, start + bound));
    this.uint32(written);
    this.position += written;
  }

  bytes(value: Uint8Array): void {
    if (value.length <= DIGEST_SCRATCH_BYTES - this.position) {
      this.scratch.set(value, this.position);
      this.position += value.length;
      return;
    }
    this.flush();
    if (value.length <= DIGEST_SCRATCH_BYTES) {
      this.scratch.set(value, 0);
      this.position = value.length;
    } else {
      (this.stream as Hash).update(value);
    }
  }

  /** The first DIGEST_BYTES of SHA-256 over everything written since `begin`. */
  finish(): Uint8Array {
    const out = new Uint8Array(DIGEST_BYTES);
    if (this.stream === undefined) {
      out.set(hash('sha256', this.scratch.subarray(0, this.position), 'buffer').subarray(0, DIGEST_BYTES));
    } else {
      this.flush();
      out.set(this.stream.digest().subarray(0, DIGEST_BYTES));
      this.stream = undefined;
    }
    return out;
  }

  private room(bytes: number): void {
    if (this.position + bytes > DIGEST_SCRATCH_BYTES) this.flush();
  }

  /** Moves the buffered bytes into a streaming hash, started on the first flush. */
  private flush(): void {
    this.stream ??= createHash('sha256');
    if (this.position > 0) this.stream.update(this.scratch.subarray(0, this.position));
    this.position = 0;
  }
}

const writer = new DigestWriter();

/** The 16-byte canonical digest of a stored object (format version 1, see the header). */
export function objectDigest(object: KvObject): Uint8Array {
  const w = writer;
  w.begin();
  w.byte(OBJECT_DIGEST_V1);
  w.uint32(object.entries.length);
  for (const entry of object.entries) {
    assert(Number.isSafeInteger(entry.counter) && entry.counter >= 0, `digest: counter must be a safe integer, got ${entry.counter}`);
    w.text(entry.actor);
    w.uint32(Math.floor(entry.counter / 2 ** 32));
    w.uint32(entry.counter >>> 0);
    w.uint32(entry.values.length);
    for (const value of entry.values) {
      if (value === null) {
        w.byte(0x00);
      } else {
        w.byte(0x01);
        w.uint32(value.length);
        w.bytes(value);
      }
    }
  }
  return w.finish();
}

/** Whether two digests (or key hashes) are the same bytes. */
export function equalDigests(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- key hashes: MurmurHash3 x86_128 ----

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A 32-bit hash of a 16-byte hash (four words) under `salt`. Each step is a bijection of the
 * running value, so two hashes that differ in one word never collide, and any other collision
 * is re-drawn by a new salt. Anti-entropy sends node and key hashes cut to a few bytes this
 * way, with a salt of its own per exchange: a difference two cut hashes hide in one exchange
 * shows in the next.
 */
export function saltedWord(w0: number, w1: number, w2: number, w3: number, salt: number): number {
  let h = fmix(salt ^ w0);
  h = fmix(h ^ w1);
  h = fmix(h ^ w2);
  return fmix(h ^ w3) >>> 0;
}

/** Reads `n` (1..4) bytes at `at` as a little-endian integer. */
function lane(b: Uint8Array, at: number, n: number): number {
  let k = 0;
  for (let i = n - 1; i >= 0; i--) k = (k << 8) | b[at + i]!;
  return k;
}

/**
 * MurmurHash3 x86_128 of `bytes[0, length)` with `seed`, transcribed from Austin Appleby's
 * MurmurHash3.cpp (SMHasher); writes h1..h4 to `out[0..3]`.
 */
export function murmur3x86x128(bytes: Uint8Array, length: number, seed: number, out: Uint32Array): void {
  let h1 = seed | 0;
  let h2 = h1;
  let h3 = h1;
  let h4 = h1;
  const blocksEnd = length & ~15;
  for (let i = 0; i < blocksEnd; i += 16) {
    let k1 = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    let k2 = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    let k3 = bytes[i + 8]! | (bytes[i + 9]! << 8) | (bytes[i + 10]! << 16) | (bytes[i + 11]! << 24);
    let k4 = bytes[i + 12]! | (bytes[i + 13]! << 8) | (bytes[i + 14]! << 16) | (bytes[i + 15]! << 24);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // The tail: up to 15 bytes, read as four little-endian lanes, each mixed if it has a byte.
  const rest = length & 15;
  if (rest > 12) h4 ^= Math.imul(rotl(Math.imul(lane(bytes, blocksEnd + 12, rest - 12), C4), 18), C1);
  if (rest > 8) h3 ^= Math.imul(rotl(Math.imul(lane(bytes, blocksEnd + 8, Math.min(rest - 8, 4)), C3), 17), C4);
  if (rest > 4) h2 ^= Math.imul(rotl(Math.imul(lane(bytes, blocksEnd + 4, Math.min(rest - 4, 4)), C2), 16), C3);
  if (rest > 0) h1 ^= Math.imul(rotl(Math.imul(lane(bytes, blocksEnd, Math.min(rest, 4)), C1), 15), C2);
  h1 ^= length;
  h2 ^= length;
  h3 ^= length;
  h4 ^= length;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}

/**
 * Computes key hashes as four 32-bit words without allocating: the key's bytes are encoded
 * once (`setKey`), then hashed with as many digests as needed (a write hashes the old and the
 * new version). Used by `SegmentHashes.apply`, which runs on every local write.
 */
export class KeyHasher {
  private buffer = new Uint8Array(1024);
  private prefixBytes = 0;

  /** Encodes utf8(bucket) ‖ 0x00 ‖ utf8(key), leaving room for a digest after it. */
  setKey(bucket: string, key: string): void {
    const bound = (bucket.length + key.length) * UTF8_BYTES_PER_UNIT_MAX + 1 + DIGEST_BYTES;
    if (bound > this.buffer.length) this.buffer = new Uint8Array(bound);
    const b = this.buffer;
    const bucketBytes = bucket.length === 0 ? 0 : utf8.encodeInto(bucket, b).written;
    b[bucketBytes] = 0;
    const keyBytes = key.length === 0 ? 0 : utf8.encodeInto(key, b.subarray(bucketBytes + 1)).written;
    this.prefixBytes = bucketBytes + 1 + keyBytes;
  }

  /** Writes the key hash of the current key with `digest` to `out[0..3]` (h1..h4). */
  hashInto(digest: Uint8Array, out: Uint32Array): void {
    assert(digest.length === DIGEST_BYTES, `a digest has ${DIGEST_BYTES} bytes, got ${digest.length}`);
    this.buffer.set(digest, this.prefixBytes);
    murmur3x86x128(this.buffer, this.prefixBytes + DIGEST_BYTES, KEY_HASH_SEED, out);
  }
}

/** Writes four 32-bit words as 16 bytes, each little-endian, at `offset` of `out`. */
export function wordsToBytes(words: Uint32Array, wordOffset: number, out: Uint8Array, offset: number): void {
  for (let w = 0; w < 4; w++) {
    const v = words[wordOffset + w]!;
    const at = offset + w * 4;
    out[at] = v;
    out[at + 1] = v >>> 8;
    out[at + 2] = v >>> 16;
    out[at + 3] = v >>> 24;
  }
}

/** Reads 16 bytes at `offset` as four little-endian 32-bit words into `out` at `wordOffset`. */
export function bytesToWords(bytes: Uint8Array, offset: number, out: Uint32Array, wordOffset: number): void {
  for (let w = 0; w < 4; w++) {
    const at = offset + w * 4;
    out[wordOffset + w] = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
  }
}

const hasher = new KeyHasher();
const words = new Uint32Array(4);

/** A key's 16-byte contribution to its segment's hash, for the version with `digest`. */
export function keyHash(bucket: string, key: string, digest: Uint8Array): Uint8Array {
  hasher.setKey(bucket, key);
  hasher.hashInto(digest, words);
  const out = new Uint8Array(KEY_HASH_BYTES);
  wordsToBytes(words, 0, out, 0);
  return out;
}
