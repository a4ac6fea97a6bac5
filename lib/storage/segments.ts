/**
 * The segment hashes of a store's data (lib/merkle), as a node starts: from the snapshot a
 * clean stop left, or rebuilt by one scan of every stored object when there is none (a first
 * start, a crash). The node keeps them up to date on every write from then on.
 */

import { objectDigest, SegmentHashes, type SegmentEntry } from '../merkle/index.js';
import type { StoreEntry } from './store.js';

/** Hashes of every entry, built from scratch. */
export function segmentsOf(entries: Iterable<StoreEntry>, depth?: number): SegmentHashes {
  return SegmentHashes.fromEntries(digests(entries), depth);
}

function* digests(entries: Iterable<StoreEntry>): Iterable<SegmentEntry> {
  for (const entry of entries) yield { token: entry.token, bucket: entry.bucket, key: entry.key, digest: objectDigest(entry.object) };
}
