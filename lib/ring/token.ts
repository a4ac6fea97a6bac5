/**
 * Tokens: where a key, and each virtual node, sits on the ring.
 *
 * The ring is the unsigned 32-bit integer space. As in Dynamo (DeCandia et al., 2007, §4.2)
 * and riak_core's `chash`, a key's position is a hash of the key, and each physical node
 * owns several virtual nodes whose positions are hashes of the node id and an index, so load
 * spreads evenly and moves in small pieces when membership changes.
 *
 * The hash is MurmurHash3 x86_32 with seed 0 over UTF-8 bytes (see "Data model" in
 * DESIGN.md). It is fast, well distributed and has reference implementations in every
 * language, which matters because the token of a key is part of the on-disk format: it is
 * the first four bytes of every storage key. Changing this function, its seed or the byte
 * layout below means rewriting every replica's store, so the values are pinned by golden
 * specs.
 *
 * Invariants:
 * - Every token is an integer in [0, 2^32).
 * - `keyToken(bucket, key)` hashes utf8(bucket) ‖ 0x00 ‖ utf8(key); bucket names never contain
 *   a zero byte (the client entry refuses them), so distinct (bucket, key) pairs never hash
 *   the same bytes.
 */

import murmurHash3 from 'murmurhash3js-revisited';

import { assert } from '../base/assert.js';

/** The seed is part of the storage format: every node must hash with the same one. */
const TOKEN_SEED = 0;

const utf8 = new TextEncoder();

/** The token of raw bytes: MurmurHash3 x86_32, seed 0, as an unsigned 32-bit integer. */
export function tokenOf(bytes: Uint8Array): number {
  const token = murmurHash3.x86.hash32(bytes, TOKEN_SEED);
  assert(token !== undefined, 'murmur3 refused a Uint8Array');
  return token >>> 0;
}

/**
 * The bytes a key's token is computed from: utf8(bucket) ‖ 0x00 ‖ utf8(key).
 *
 * Encoding the joined string is byte-for-byte the same as joining the encodings: U+0000
 * encodes as the single byte 0x00, and it sits between the two parts, so no surrogate pair
 * can form across the join.
 */
export function keyTokenBytes(bucket: string, key: string): Uint8Array {
  return utf8.encode(`${bucket}\u0000${key}`);
}

/** Reused for the bytes of a key's token, which every request computes: grown when a key needs more. */
let scratch = new Uint8Array(1024);

/** The token of a (bucket, key) pair: where its replicas sit on the ring. */
export function keyToken(bucket: string, key: string): number {
  const text = `${bucket}\u0000${key}`;
  // A UTF-16 code unit never takes more than 3 bytes of UTF-8.
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const { written } = utf8.encodeInto(text, scratch);
  return tokenOf(scratch.subarray(0, written));
}

/** The token of virtual node `i` of node `nodeId`: hash of utf8(`${nodeId}#${i}`). */
export function vnodeToken(nodeId: string, i: number): number {
  assert(Number.isSafeInteger(i) && i >= 0, `vnode index must be a non-negative integer, got ${i}`);
  return tokenOf(utf8.encode(`${nodeId}#${i}`));
}
