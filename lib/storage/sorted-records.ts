/**
 * An ordered map from byte-string keys to byte-string records, for the memory store.
 *
 * It is a one-level B-tree: a list of sorted chunks, each holding at most
 * `CHUNK_RECORDS_MAX` records, with every key in a chunk below every key in the next. A write
 * binary-searches the chunk list, then the chunk, and splices at most one chunk's worth of
 * references, so it costs O(log n) comparisons plus a bounded copy, where one flat sorted
 * array would copy O(n) references per insert. A chunk that grows past the bound splits in
 * two; a chunk that empties is dropped. Keys compare like LMDB's default comparator
 * (`compareBytes`), so both stores scan in the same order.
 *
 * Invariants: chunks are non-empty, each sorted strictly ascending, ordered across the list;
 * `size` is the total number of records.
 */

import { compareBytes } from './keys.js';

interface SortedRecord {
  readonly key: Uint8Array;
  readonly record: Uint8Array;
}

/**
 * Records per chunk before it splits. Big enough that the chunk list stays short (a million
 * records is about 4,000 chunks), small enough that a splice copies only a few kilobytes.
 */
const CHUNK_RECORDS_MAX = 512;

export class SortedRecords {
  private chunks: SortedRecord[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const chunk = this.chunks[this.chunkFor(key)];
    if (chunk === undefined) return undefined;
    const at = lowerBound(chunk, key);
    const found = chunk[at];
    return found !== undefined && compareBytes(found.key, key) === 0 ? found.record : undefined;
  }

  set(key: Uint8Array, record: Uint8Array): void {
    const index = this.chunkFor(key);
    const chunk = this.chunks[index];
    if (chunk === undefined) {
      this.chunks.push([{ key, record }]);
      this.count++;
      return;
    }
    const at = lowerBound(chunk, key);
    const found = chunk[at];
    if (found !== undefined && compareBytes(found.key, key) === 0) {
      chunk[at] = { key, record };
      return;
    }
    chunk.splice(at, 0, { key, record });
    this.count++;
    if (chunk.length > CHUNK_RECORDS_MAX) {
      this.chunks.splice(index + 1, 0, chunk.splice(chunk.length >> 1));
    }
  }

  delete(key: Uint8Array): void {
    const index = this.chunkFor(key);
    const chunk = this.chunks[index];
    if (chunk === undefined) return;
    const at = lowerBound(chunk, key);
    const found = chunk[at];
    if (found === undefined || compareBytes(found.key, key) !== 0) return;
    chunk.splice(at, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(index, 1);
  }

  /** The records with start <= key < end (an undefined bound is open), in key order, as a list. */
  range(start: Uint8Array | undefined, end: Uint8Array | undefined): SortedRecord[] {
    const out: SortedRecord[] = [];
    let index = start === undefined ? 0 : this.chunkFor(start);
    let at = start === undefined ? 0 : lowerBound(this.chunks[index] ?? [], start);
    for (; index < this.chunks.length; index++, at = 0) {
      const chunk = this.chunks[index] ?? [];
      for (; at < chunk.length; at++) {
        const record = chunk[at] as SortedRecord;
        if (end !== undefined && compareBytes(record.key, end) >= 0) return out;
        out.push(record);
      }
    }
    return out;
  }

  /**
   * The chunk a key belongs in: the first whose last key is >= key, or the last chunk when the
   * key is above them all. Returns 0 (an absent chunk) when the map is empty.
   */
  private chunkFor(key: Uint8Array): number {
    let low = 0;
    let high = this.chunks.length - 1;
    if (high < 0) return 0;
    while (low < high) {
      const mid = (low + high) >> 1;
      const chunk = this.chunks[mid] as SortedRecord[];
      const last = chunk[chunk.length - 1] as SortedRecord;
      if (compareBytes(last.key, key) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** Index of the first record whose key is >= key (chunk.length when none is). */
function lowerBound(chunk: readonly SortedRecord[], key: Uint8Array): number {
  let low = 0;
  let high = chunk.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (compareBytes((chunk[mid] as SortedRecord).key, key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}
