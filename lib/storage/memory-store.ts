/**
 * The in-memory Store adapter, for specs and the deterministic simulator.
 *
 * It behaves like a disk as far as a caller can tell: it keeps the ENCODED record bytes under
 * encoded storage keys (the formats of `keys.ts` and `object-codec.ts`), so every `get` decodes
 * a fresh object and nothing the caller holds is shared with what is stored; it refuses the
 * same writes LMDB refuses; and it scans in the same byte order. Hints are a second ordered
 * map under the hint keys of `keys.ts`, as LMDB keeps them in a second database. It does no
 * I/O and reads no clock, so a simulation that drives it is reproducible.
 *
 * Timing: a batch is encoded and applied when `apply` is called (atomically, since nothing
 * else runs in between) and the promise resolves on a microtask. Everything is lost when the
 * process exits; "durable" here means "applied".
 */

import { assert } from '../base/assert.js';
import type { KvObject } from '../clock/object.js';
import type { HintEntry, HintTargetSummary, StoreWrite } from '../node/ports.js';
import { hintTargetRange, tokenRangeSegments } from './keys.js';
import { closedError, encodeWrites, lookupHintKey, lookupKey, readEntry, readHintEntry, readHintObject, readObject, summarizeHints } from './records.js';
import { SortedRecords } from './sorted-records.js';
import type { Store, StoreEntry } from './store.js';

export class MemoryStore implements Store {
  readonly engine = 'memory' as const;
  private readonly records = new SortedRecords();
  private readonly hints = new SortedRecords();
  private readonly meta = new Map<string, Uint8Array>();
  private closed = false;

  get(bucket: string, key: string): KvObject | undefined {
    this.assertOpen();
    const storageKey = lookupKey(bucket, key);
    if (storageKey === undefined) return undefined;
    const record = this.records.get(storageKey);
    return record === undefined ? undefined : readObject(record, bucket, key);
  }

  async apply(writes: readonly StoreWrite[]): Promise<void> {
    this.assertOpen();
    for (const write of encodeWrites(writes)) {
      const keyspace = write.keyspace === 'hints' ? this.hints : this.records;
      if (write.record === undefined) keyspace.delete(write.key);
      // A copy that owns exactly its bytes, rather than a view pinning the encoder's slab.
      else keyspace.set(write.key, new Uint8Array(write.record));
    }
  }

  getHint(target: string, bucket: string, key: string): KvObject | undefined {
    this.assertOpen();
    const hintKey = lookupHintKey(target, bucket, key);
    if (hintKey === undefined) return undefined;
    const record = this.hints.get(hintKey);
    return record === undefined ? undefined : readHintObject(record, target, bucket, key);
  }

  hintsFor(target: string, limit: number): HintEntry[] {
    this.assertOpen();
    assert(Number.isInteger(limit) && limit >= 0, `hint limit must be a whole number, got ${limit}`);
    const range = hintTargetRange(target);
    if (range === undefined || limit === 0) return [];
    // The range collects references to all of the target's records, but only `limit` are decoded.
    return this.hints
      .range(range.start, range.end)
      .slice(0, limit)
      .map(({ key, record }) => readHintEntry(key, record));
  }

  hintTargets(): HintTargetSummary[] {
    this.assertOpen();
    return summarizeHints(this.hints.range(undefined, undefined).map(({ key, record }) => ({ key, recordBytes: record.length })));
  }

  scan(fromToken: number, toToken: number): IterableIterator<StoreEntry> {
    this.assertOpen();
    const segments = tokenRangeSegments(fromToken, toToken);
    const records = this.records;
    return (function* () {
      // Collecting the (immutable) record references at the first step is the snapshot the
      // port promises, taken when LMDB takes its own; decoding stays lazy, so a caller that
      // stops early pays only for what it read.
      const snapshot = segments.flatMap(({ start, end }) => records.range(start, end));
      for (const { key, record } of snapshot) yield readEntry(key, record);
    })();
  }

  count(): number {
    this.assertOpen();
    return this.records.size;
  }

  getMeta(name: string): Uint8Array | undefined {
    this.assertOpen();
    const value = this.meta.get(name);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async setMeta(name: string, value: Uint8Array): Promise<void> {
    this.assertOpen();
    assert(name.length > 0, 'meta names are non-empty');
    // `new Uint8Array` copies even when given a Buffer, whose `slice` would share memory.
    this.meta.set(name, new Uint8Array(value));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw closedError(this.engine);
  }
}

/** Opens an empty memory store. */
export function openMemoryStore(): MemoryStore {
  return new MemoryStore();
}
