/**
 * The LMDB Store adapter: one LMDB environment in the node's data directory, opened through
 * lmdb-js, with three named databases: `objects` (storage key → object record, both raw bytes),
 * `hints` (hint key → object record: writes kept for other nodes, see `keys.ts`) and `meta`
 * (name → bytes: node id, storage epoch, ring state). Hints have a database of their own so
 * that `count` stays LMDB's O(1) entry count of `objects` and no scan of the node's own data
 * has to step over them.
 *
 * Reads are synchronous lookups in the memory map, which is what lets the sans-I/O core read
 * through `StoreReader`. Writes are asynchronous: lmdb-js queues every write issued in one
 * event-loop turn into a single transaction that a worker thread commits (its
 * `eventTurnBatching`, on by default), so the many `apply` calls a busy node makes in one turn
 * share one commit and one fsync, the group commit that makes synced writes cheap.
 *
 * Durability. A write is acknowledged only when it is durable:
 * - 'fsync' waits for the `flushed` promise lmdb-js attaches to each write's promise when
 *   the environment is opened with `separateFlushed: true`. With `overlappingSync` (lmdb-js's
 *   default off Windows) the commit makes the data visible first, and the worker then
 *   fdatasyncs the data file and writes the meta page through an O_DSYNC descriptor; the
 *   flushed promise resolves only after that (lmdb `write.js`: `commitPromise.flushed =
 *   overlappingSync ? flushPromise : commitPromise`, with `flushPromise` resolved when the
 *   write worker finishes; `mdb.c` syncs in `mdb_txn_commit` after releasing the write lock).
 *   Without overlappingSync LMDB syncs inside the commit itself, so `flushed` is the commit.
 *   The environment is never opened with `noSync`.
 * - 'commit' resolves when the commit promise does (the transaction is visible to readers).
 *   In lmdb-js 3.5 the worker marks a transaction committed only when `mdb_txn_commit`
 *   returns, which with overlappingSync is after the sync too, so this mode saves only the
 *   wait for the worker's completion callback; it is kept for versions where the two differ.
 * If the commit fails, `apply` rejects with StorageError before any flush is awaited (lmdb-js
 * never settles `flushed` for a failed commit).
 *
 * Atomicity. A batch goes to lmdb-js as one `batch()` block, which lands in one transaction,
 * whichever databases its writes go to: every database of an environment shares lmdb-js's one
 * write queue, so object and hint writes of a batch commit, and are flushed, together.
 * lmdb-js does NOT roll a block back when a write inside it throws (a key over its size limit
 * throws there, and the writes before it still commit), so `encodeWrites` checks and encodes the
 * whole batch before the block starts, and nothing inside the block can fail on its input.
 *
 * Scans read one LMDB snapshot (a read transaction) for the whole iteration. An open scan
 * pins the pages of that snapshot, so long-running consumers (handoff, anti-entropy) should
 * read a bounded range per call rather than hold one iterator for minutes.
 */

import { open, type Database, type RootDatabase } from 'lmdb';

import { AssertionError, assert } from '../base/assert.js';
import { StorageError } from '../base/errors.js';
import type { KvObject } from '../clock/object.js';
import type { HintEntry, HintTargetSummary, StoreWrite } from '../node/ports.js';
import { hintTargetRange, tokenRangeSegments } from './keys.js';
import { closedError, encodeWrites, lookupHintKey, lookupKey, readEntry, readHintEntry, readHintObject, readObject, summarizeHints } from './records.js';
import type { Store, StoreDurability, StoreEntry } from './store.js';

export interface LmdbStoreOptions {
  /** The data directory; LMDB's `data.mdb` and `lock.mdb` live directly in it. */
  readonly path: string;
  readonly durability: StoreDurability;
  /** Initial map size; lmdb-js grows the map when it fills. */
  readonly mapSizeBytes?: number;
}

/** A write promise from an environment opened with `separateFlushed: true`. */
type CommitPromise = Promise<unknown> & { readonly flushed?: PromiseLike<unknown> };

type ObjectsDb = Database<Uint8Array, Uint8Array>;
type MetaDb = Database<Uint8Array, string>;

/** Opens (creating if needed) the LMDB store in `options.path`. Rejects with StorageError. */
export async function openLmdbStore(options: LmdbStoreOptions): Promise<LmdbStore> {
  let root: RootDatabase;
  try {
    root = open({
      path: options.path,
      // The path is always a directory: lmdb-js would otherwise take one whose name has a dot
      // (`/var/lib/chorus.d`, `mktemp -d`'s `tmp.XXXX`) for a database file and fail to open it.
      noSubdir: false,
      // Three named databases; a little headroom for later formats.
      maxDbs: 4,
      separateFlushed: true,
      ...(options.mapSizeBytes === undefined ? {} : { mapSize: options.mapSizeBytes }),
    });
  } catch (error) {
    throw new StorageError(`cannot open LMDB in ${options.path}: ${messageOf(error)}`, { path: options.path });
  }
  try {
    const objects: ObjectsDb = root.openDB({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
    const hints: ObjectsDb = root.openDB({ name: 'hints', keyEncoding: 'binary', encoding: 'binary' });
    const meta: MetaDb = root.openDB({ name: 'meta', encoding: 'binary' });
    return new LmdbStore(root, objects, hints, meta, options.durability);
  } catch (error) {
    await root.close();
    throw new StorageError(`cannot open LMDB databases in ${options.path}: ${messageOf(error)}`, { path: options.path });
  }
}

export class LmdbStore implements Store {
  readonly engine = 'lmdb' as const;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly root: RootDatabase,
    private readonly objects: ObjectsDb,
    private readonly hints: ObjectsDb,
    private readonly meta: MetaDb,
    private readonly durability: StoreDurability,
  ) {}

  get(bucket: string, key: string): KvObject | undefined {
    this.assertOpen();
    const storageKey = lookupKey(bucket, key);
    if (storageKey === undefined) return undefined;
    // The fast read returns lmdb-js's shared read buffer, overwritten by the next read, with
    // its `length` (not its `byteLength`) set to the record's size. Decoding copies out of a
    // view of exactly those bytes before anything else can read.
    const shared = this.read(() => this.objects.getBinaryFast(storageKey));
    if (shared === undefined) return undefined;
    return readObject(new Uint8Array(shared.buffer, shared.byteOffset, shared.length), bucket, key);
  }

  async apply(writes: readonly StoreWrite[]): Promise<void> {
    this.assertOpen();
    const encoded = encodeWrites(writes);
    if (encoded.length === 0) return;
    const committing = this.write(() =>
      this.objects.batch(() => {
        for (const write of encoded) {
          const db = write.keyspace === 'hints' ? this.hints : this.objects;
          if (write.record === undefined) void db.remove(write.key);
          else void db.put(write.key, write.record);
        }
      }),
    );
    await this.durable(committing, encoded.length);
  }

  getHint(target: string, bucket: string, key: string): KvObject | undefined {
    this.assertOpen();
    const hintKey = lookupHintKey(target, bucket, key);
    if (hintKey === undefined) return undefined;
    // The shared read buffer again, as in `get`: decoded before anything else reads.
    const shared = this.read(() => this.hints.getBinaryFast(hintKey));
    if (shared === undefined) return undefined;
    return readHintObject(new Uint8Array(shared.buffer, shared.byteOffset, shared.length), target, bucket, key);
  }

  hintsFor(target: string, limit: number): HintEntry[] {
    this.assertOpen();
    assert(Number.isInteger(limit) && limit >= 0, `hint limit must be a whole number, got ${limit}`);
    const range = hintTargetRange(target);
    if (range === undefined || limit === 0) return [];
    // The range read copies each value out of the map (lmdb-js does for binary values), so
    // the records stay valid while they are decoded after the read transaction moves on.
    const records = this.read(() => Array.from(this.hints.getRange({ start: range.start, end: range.end, limit })));
    return records.map(({ key, value }) => readHintEntry(key, value));
  }

  hintTargets(): HintTargetSummary[] {
    this.assertOpen();
    const hints = this.hints;
    // Keys only: the cursor copies no values, and a record's size is read from the shared
    // buffer of a lookup in the same read transaction (nothing can commit in between, since
    // this runs synchronously), which copies nothing either.
    const sized = function* (): Generator<{ key: Uint8Array; recordBytes: number }> {
      for (const key of hints.getKeys()) {
        const shared = hints.getBinaryFast(key);
        assert(shared !== undefined, 'a key met by a cursor is found in the same read transaction');
        yield { key, recordBytes: shared.length };
      }
    };
    return this.read(() => summarizeHints(sized()));
  }

  scan(fromToken: number, toToken: number): IterableIterator<StoreEntry> {
    this.assertOpen();
    const segments = tokenRangeSegments(fromToken, toToken);
    const objects = this.objects;
    return (function* () {
      // Every segment's cursor is opened and positioned before the first entry is handed out:
      // lmdb-js binds a read transaction to the snapshot lazily, at the first native read, so
      // positioning them all now puts the whole scan on one snapshot.
      const iterators = segments.map(({ start, end }) =>
        objects.getRange({ ...(start === undefined ? {} : { start }), ...(end === undefined ? {} : { end }) })[Symbol.iterator](),
      );
      const firsts = iterators.map((iterator) => iterator.next());
      try {
        for (const [i, iterator] of iterators.entries()) {
          for (let step = firsts[i]; step !== undefined && step.done !== true; step = iterator.next()) {
            yield readEntry(step.value.key, step.value.value);
          }
        }
      } finally {
        // Ends the read transactions of cursors a caller stopped early; a no-op for exhausted ones.
        for (const iterator of iterators) iterator.return?.();
      }
    })();
  }

  count(): number {
    this.assertOpen();
    // LMDB keeps the entry count in the tree's header (mdb_stat), so this is O(1) where
    // getCount() would walk every key.
    const stats = this.read(() => this.objects.getStats()) as { readonly entryCount?: unknown };
    assert(typeof stats.entryCount === 'number', 'lmdb-js getStats() reports entryCount');
    return stats.entryCount;
  }

  getMeta(name: string): Uint8Array | undefined {
    this.assertOpen();
    const value = this.read(() => this.meta.get(name));
    // A fresh copy: the caller owns it.
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async setMeta(name: string, value: Uint8Array): Promise<void> {
    this.assertOpen();
    assert(name.length > 0, 'meta names are non-empty');
    // lmdb-js reads the value buffer on its write thread later; a copy cannot change meanwhile.
    const copy = new Uint8Array(value);
    await this.durable(
      this.write(() => this.meta.put(name, copy)),
      1,
    );
  }

  close(): Promise<void> {
    // Writes already queued still commit and flush: lmdb-js's close waits for them.
    this.closing ??= this.root.close().catch((error: unknown) => {
      throw new StorageError(`closing LMDB failed: ${messageOf(error)}`);
    });
    return this.closing;
  }

  /** Waits for a queued write per the durability mode; rejects with StorageError if it fails. */
  private async durable(committing: CommitPromise, writes: number): Promise<void> {
    try {
      await committing;
    } catch (error) {
      throw new StorageError(`LMDB commit failed: ${messageOf(error)}`, { writes });
    }
    if (this.durability === 'commit') return;
    // Opened with separateFlushed, so every write promise carries `flushed`; the database-wide
    // `flushed` (all writes so far) is a correct, later fallback.
    await (committing.flushed ?? this.objects.flushed);
  }

  /** Queues a write, turning a synchronous throw from lmdb-js into StorageError. */
  private write(queue: () => CommitPromise): CommitPromise {
    try {
      return queue();
    } catch (error) {
      throw new StorageError(`LMDB refused the write: ${messageOf(error)}`);
    }
  }

  /** Runs a read, turning lmdb-js's exceptions into StorageError and letting our own through. */
  private read<T>(lookup: () => T): T {
    try {
      return lookup();
    } catch (error) {
      if (error instanceof StorageError || error instanceof AssertionError) throw error;
      throw new StorageError(`LMDB read failed: ${messageOf(error)}`);
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw closedError(this.engine);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
