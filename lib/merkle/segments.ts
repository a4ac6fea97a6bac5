/**
 * Segment hashes: an incrementally maintained summary of everything a replica stores, by
 * token segment.
 *
 * Design. The 2^32 tokens are cut into 2^depth equal segments (the top `depth` bits of a token
 * name its segment). A segment's hash is the XOR of the key hashes (digest.ts) of every
 * (bucket, key, version) stored in it, so a write updates it in O(1): XOR out the old
 * version's contribution, XOR in the new one. XOR is commutative, associative and its own
 * inverse, so the hash depends only on the set of (key, version) pairs stored, never on the
 * order writes arrived in: replicas holding the same data have the same hashes, however they
 * got there. As in riak_kv's active anti-entropy (`riak_kv_index_hashtree`), the hashes
 * follow every write, here at the cost of an incremental hash (Bellare and Micciancio, 1997)
 * instead of a leaf re-hash. A count of keys per segment rides along to size transfers.
 *
 * Depth. The default, 16, gives 65,536 segments of 65,536 tokens: 1 MiB of hashes and 256 KiB
 * of counts per node. Finer segments mean fewer keys per differing leaf, and the key list of
 * a differing leaf is most of what an exchange ships for a lone difference: at 1,000,000 keys
 * a segment holds about 15, so its (key, digest) list is well under a kilobyte. A vnode's
 * range (5 nodes × 256 vnodes: about 3.4 million tokens) spans some 51 segments, so the two
 * segments a range only partly covers at its ends are a small share of it. Coarser depths are
 * for tests and tiny nodes; 20 (16 M tokens, 20 MiB) is the most a node should carry.
 *
 * Ranges. `rangeSegments(from, to)` takes the Store's scan bounds: tokens [from, to), wrapping
 * past 2^32 − 1 to 0 when from >= to, the whole ring when from == to (starting at `from`).
 * `boundsOfRange` converts a ring `TokenRange` (start, end] to those bounds.
 *
 * Persistence. `encode` writes a versioned, checksummed snapshot; `decode` checks everything
 * and returns a result, never throws. A snapshot is only valid for the data it was taken with:
 * the shell must store it in the same transaction as the writes it reflects, or rebuild.
 *
 * Invariants:
 * - hash(s) = XOR of keyHash(bucket, key, digest) over the entries stored in segment s, and
 *   count(s) = how many there are; both are what `fromEntries` computes from scratch.
 * - Counts never go below zero (an `apply` removing a key the hashes never saw is a bug).
 */

import { hash } from 'node:crypto';

import { assert } from '../base/assert.js';
import type { Checked } from '../clock/validate.js';
import { RING_TOKENS, type TokenRange } from '../ring/token-range.js';
import { DIGEST_BYTES, KEY_HASH_BYTES, KeyHasher, bytesToWords, equalDigests, wordsToBytes } from './digest.js';

/** 2^16 segments of 2^16 tokens each; see the header for why. */
export const SEGMENT_DEPTH_DEFAULT = 16;

/** One split of the ring in two: the smallest depth that still means anything. */
export const SEGMENT_DEPTH_MIN = 1;

/** 2^20 segments take 20 MiB of hashes and counts; past that, memory outgrows the benefit. */
export const SEGMENT_DEPTH_MAX = 20;

/** Scan bounds of a token range: [fromToken, toToken), wrapping; equal bounds mean the whole ring. */
export interface TokenBounds {
  readonly fromToken: number;
  readonly toToken: number;
}

/**
 * The segments a token range meets, in ring order from the range's start: `count` segments
 * from `first`, wrapping past the last segment to 0. A whole-ring range that starts inside a
 * segment meets that segment twice (its end first, its start last), so `count` can be one more
 * than the number of segments.
 */
export interface SegmentRun extends TokenBounds {
  readonly depth: number;
  readonly first: number;
  readonly count: number;
}

/** One position of a run: a segment and the part of it the range covers, as scan bounds. */
export interface LeafSpan extends TokenBounds {
  readonly segment: number;
  /** Whether the range covers the whole segment, so its stored hash is the leaf's hash. */
  readonly whole: boolean;
}

/** One stored version, as the hashes see it. */
export interface SegmentEntry {
  readonly token: number;
  readonly bucket: string;
  readonly key: string;
  readonly digest: Uint8Array;
}

function assertDepth(depth: number): void {
  assert(Number.isInteger(depth) && depth >= SEGMENT_DEPTH_MIN && depth <= SEGMENT_DEPTH_MAX, `segment depth must be an integer in [${SEGMENT_DEPTH_MIN}, ${SEGMENT_DEPTH_MAX}], got ${depth}`);
}

function assertToken(token: number, what: string): void {
  assert(Number.isInteger(token) && token >= 0 && token < RING_TOKENS, `${what} must be a token in [0, 2^32), got ${token}`);
}

/** The scan bounds of a ring range (start, end]: [start + 1, end + 1), modulo 2^32. */
export function boundsOfRange(range: TokenRange): TokenBounds {
  assertToken(range.start, 'range start');
  assertToken(range.end, 'range end');
  return { fromToken: (range.start + 1) % RING_TOKENS, toToken: (range.end + 1) % RING_TOKENS };
}

/** The segments tokens [fromToken, toToken) meet at `depth` (wrapping; equal bounds: the whole ring). */
export function segmentRun(depth: number, fromToken: number, toToken: number): SegmentRun {
  assertDepth(depth);
  assertToken(fromToken, 'fromToken');
  assertToken(toToken, 'toToken');
  const shift = 32 - depth;
  const segments = 2 ** depth;
  const first = fromToken >>> shift;
  let count: number;
  if (fromToken < toToken) count = ((toToken - 1) >>> shift) - first + 1;
  else if (toToken === 0) count = segments - first;
  else count = segments - first + ((toToken - 1) >>> shift) + 1;
  return { depth, fromToken, toToken, first, count };
}

/** Position `i` of a run: which segment, and which of its tokens the range covers. */
export function runLeaf(run: SegmentRun, i: number): LeafSpan {
  assert(Number.isInteger(i) && i >= 0 && i < run.count, `leaf ${i} is outside a run of ${run.count}`);
  const segments = 2 ** run.depth;
  const width = 2 ** (32 - run.depth);
  const segment = (run.first + i) % segments;
  const segmentStart = segment * width;
  const segmentEnd = segmentStart + width;
  const from = i === 0 ? run.fromToken : segmentStart;
  const end = i === run.count - 1 ? (run.toToken === 0 ? RING_TOKENS : run.toToken) : segmentEnd;
  // The last leaf of a whole-ring run that started mid-segment ends at the range start, inside
  // the first segment; every other end lies in (from, segmentEnd].
  const whole = from === segmentStart && end === segmentEnd;
  return { segment, fromToken: from, toToken: end % RING_TOKENS, whole };
}

/** XORs the four words of `from` into `into` at word `at`. */
function xorWords(into: Uint32Array, at: number, from: Uint32Array): void {
  into[at] = into[at]! ^ from[0]!;
  into[at + 1] = into[at + 1]! ^ from[1]!;
  into[at + 2] = into[at + 2]! ^ from[2]!;
  into[at + 3] = into[at + 3]! ^ from[3]!;
}

const hasher = new KeyHasher();
const scratchWords = new Uint32Array(4);

// ---- persistence format ----

/** "CMKS": Chorus merkle segments. */
const MAGIC = [0x43, 0x4d, 0x4b, 0x53] as const;
const FORMAT_VERSION = 1;
/** Magic (4), version (1), depth (1), reserved (2). */
const HEADER_BYTES = 8;
/** The first 16 bytes of SHA-256 over everything before it: catches torn or damaged snapshots. */
const CHECKSUM_BYTES = 16;
const COUNT_BYTES = 4;

function encodedBytes(depth: number): number {
  return HEADER_BYTES + 2 ** depth * (KEY_HASH_BYTES + COUNT_BYTES) + CHECKSUM_BYTES;
}

export class SegmentHashes {
  readonly depth: number;
  readonly segmentCount: number;
  /** Four 32-bit words per segment: the little-endian words of its 16-byte hash. */
  private readonly words: Uint32Array;
  private readonly counts: Uint32Array;
  private total = 0;
  private readonly shift: number;

  constructor(depth = SEGMENT_DEPTH_DEFAULT) {
    assertDepth(depth);
    this.depth = depth;
    this.segmentCount = 2 ** depth;
    this.shift = 32 - depth;
    this.words = new Uint32Array(this.segmentCount * 4);
    this.counts = new Uint32Array(this.segmentCount);
  }

  /** Hashes built from scratch from every stored entry: what `apply` maintains incrementally. */
  static fromEntries(entries: Iterable<SegmentEntry>, depth = SEGMENT_DEPTH_DEFAULT): SegmentHashes {
    const hashes = new SegmentHashes(depth);
    for (const entry of entries) hashes.apply(entry.token, entry.bucket, entry.key, undefined, entry.digest);
    return hashes;
  }

  /** Stored keys, over all segments. */
  get keyCount(): number {
    return this.total;
  }

  segmentOf(token: number): number {
    assertToken(token, 'token');
    return token >>> this.shift;
  }

  /**
   * Records that the key at `token` went from version `oldDigest` to `newDigest` (undefined:
   * absent before, or deleted from the store after; a tombstone is a stored version). `token`
   * must be `keyToken(bucket, key)`.
   */
  apply(token: number, bucket: string, key: string, oldDigest: Uint8Array | undefined, newDigest: Uint8Array | undefined): void {
    assert(token >>> 0 === token, `token must be a token in [0, 2^32), got ${token}`);
    if (oldDigest === newDigest) return;
    if (oldDigest !== undefined && newDigest !== undefined && equalDigests(oldDigest, newDigest)) return;
    const segment = token >>> this.shift;
    hasher.setKey(bucket, key);
    if (oldDigest !== undefined) {
      hasher.hashInto(oldDigest, scratchWords);
      xorWords(this.words, segment * 4, scratchWords);
    }
    if (newDigest !== undefined) {
      hasher.hashInto(newDigest, scratchWords);
      xorWords(this.words, segment * 4, scratchWords);
    }
    if (oldDigest === undefined) {
      this.counts[segment] = this.counts[segment]! + 1;
      this.total += 1;
    } else if (newDigest === undefined) {
      assert(this.counts[segment]! > 0, `segment ${segment}: removing a key from an empty segment`);
      this.counts[segment] = this.counts[segment]! - 1;
      this.total -= 1;
    }
  }

  /** The 16-byte hash of a segment (all zeros when it is empty). */
  hashOf(segment: number): Uint8Array {
    this.assertSegment(segment);
    const out = new Uint8Array(KEY_HASH_BYTES);
    wordsToBytes(this.words, segment * 4, out, 0);
    return out;
  }

  /**
   * Copies the hash words of `count` segments from `first` (wrapping past the last segment to
   * 0) into `out` at word `offset`, four words per segment: the leaves of a tree, in bulk.
   */
  copyHashWords(first: number, count: number, out: Uint32Array, offset: number): void {
    this.assertSegment(first);
    assert(Number.isInteger(count) && count >= 0 && offset + count * 4 <= out.length, 'copyHashWords: out of bounds');
    let copied = 0;
    let segment = first;
    while (copied < count) {
      const take = Math.min(count - copied, this.segmentCount - segment);
      out.set(this.words.subarray(segment * 4, (segment + take) * 4), offset + copied * 4);
      copied += take;
      segment = 0;
    }
  }

  countOf(segment: number): number {
    this.assertSegment(segment);
    return this.counts[segment]!;
  }

  /** The segments tokens [fromToken, toToken) meet, wrapping like the Store's `scan`. */
  rangeSegments(fromToken: number, toToken: number): SegmentRun {
    return segmentRun(this.depth, fromToken, toToken);
  }

  /** Keys in the segments of a run: an upper bound on the keys in its range, exact when every leaf is whole. */
  countIn(run: SegmentRun): number {
    assert(run.depth === this.depth, `a run at depth ${run.depth} does not fit hashes at depth ${this.depth}`);
    let sum = 0;
    for (let i = 0; i < run.count; i++) sum += this.counts[(run.first + i) % this.segmentCount]!;
    return sum;
  }

  /** Whether both hold the same hashes and counts. */
  equals(other: SegmentHashes): boolean {
    if (other.depth !== this.depth || other.total !== this.total) return false;
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== other.words[i]) return false;
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] !== other.counts[i]) return false;
    return true;
  }

  /** A snapshot: "CMKS", version, depth, reserved, hashes, little-endian counts, checksum. */
  encode(): Uint8Array {
    const out = new Uint8Array(encodedBytes(this.depth));
    out.set(MAGIC, 0);
    out[4] = FORMAT_VERSION;
    out[5] = this.depth;
    let at = HEADER_BYTES;
    for (let s = 0; s < this.segmentCount; s++, at += KEY_HASH_BYTES) wordsToBytes(this.words, s * 4, out, at);
    for (let s = 0; s < this.segmentCount; s++, at += COUNT_BYTES) {
      const v = this.counts[s]!;
      out[at] = v;
      out[at + 1] = v >>> 8;
      out[at + 2] = v >>> 16;
      out[at + 3] = v >>> 24;
    }
    out.set(checksum(out.subarray(0, at)), at);
    return out;
  }

  /** Reads a snapshot from `encode`, or says why the bytes are not one. Never throws on bad input. */
  static decode(bytes: unknown): Checked<SegmentHashes> {
    if (!(bytes instanceof Uint8Array)) return { ok: false, reason: 'segment hashes: not a byte array' };
    if (bytes.length < HEADER_BYTES) return { ok: false, reason: `segment hashes: ${bytes.length} bytes is shorter than the header` };
    if (MAGIC.some((b, i) => bytes[i] !== b)) return { ok: false, reason: 'segment hashes: bad magic' };
    if (bytes[4] !== FORMAT_VERSION) return { ok: false, reason: `segment hashes: unsupported format version ${bytes[4]}` };
    const depth = bytes[5]!;
    if (depth < SEGMENT_DEPTH_MIN || depth > SEGMENT_DEPTH_MAX) return { ok: false, reason: `segment hashes: depth ${depth} out of range` };
    if (bytes[6] !== 0 || bytes[7] !== 0) return { ok: false, reason: 'segment hashes: reserved header bytes are not zero' };
    const expected = encodedBytes(depth);
    if (bytes.length !== expected) return { ok: false, reason: `segment hashes: ${bytes.length} bytes, expected ${expected} for depth ${depth}` };
    const body = expected - CHECKSUM_BYTES;
    if (!equalDigests(checksum(bytes.subarray(0, body)), bytes.subarray(body))) return { ok: false, reason: 'segment hashes: checksum mismatch' };
    const hashes = new SegmentHashes(depth);
    let at = HEADER_BYTES;
    for (let s = 0; s < hashes.segmentCount; s++, at += KEY_HASH_BYTES) bytesToWords(bytes, at, hashes.words, s * 4);
    let total = 0;
    for (let s = 0; s < hashes.segmentCount; s++, at += COUNT_BYTES) {
      const v = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
      hashes.counts[s] = v;
      total += v;
    }
    hashes.total = total;
    return { ok: true, value: hashes };
  }

  private assertSegment(segment: number): void {
    assert(Number.isInteger(segment) && segment >= 0 && segment < this.segmentCount, `segment ${segment} out of [0, ${this.segmentCount})`);
  }
}

function checksum(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', bytes, 'buffer').subarray(0, CHECKSUM_BYTES));
}

/**
 * The XOR of the key hashes of some entries: the hash of a leaf that a range covers only in
 * part, computed from the entries the Store's `scan` returns for the leaf's bounds.
 */
export function keySetHash(entries: Iterable<{ readonly bucket: string; readonly key: string; readonly digest: Uint8Array }>): Uint8Array {
  const acc = new Uint32Array(4);
  for (const entry of entries) {
    assert(entry.digest.length === DIGEST_BYTES, `a digest has ${DIGEST_BYTES} bytes, got ${entry.digest.length}`);
    hasher.setKey(entry.bucket, entry.key);
    hasher.hashInto(entry.digest, scratchWords);
    xorWords(acc, 0, scratchWords);
  }
  const out = new Uint8Array(KEY_HASH_BYTES);
  wordsToBytes(acc, 0, out, 0);
  return out;
}
