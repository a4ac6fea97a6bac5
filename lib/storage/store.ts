/**
 * The Store port: a replica's local, durable map from (bucket, key) to a stored object.
 *
 * The core reads through the synchronous `StoreReader` half (`get`) and asks for writes as
 * `StoreWrite` data; the shell hands those to `apply` and tells the core a write is done only
 * once `apply` resolves, so a write counts toward a quorum only when it is durable (Dynamo's
 * "durable write" at each of the W replicas). Two adapters implement it: `memory-store.ts`
 * for specs and the simulator, `lmdb-store.ts` for real nodes; `spec/contract/store.contract.ts`
 * holds both to the same behaviour.
 *
 * Records are keyed by the storage key of `keys.ts` (token ‖ bucket ‖ 0 ‖ key), so a token
 * range is one ordered scan, and stored as the bytes of `object-codec.ts`.
 *
 * Errors. Everything goes wrong as a `StorageError` (code STORAGE), never as an engine's own
 * exception:
 * - `apply` and `setMeta` reject with it when the engine fails or a write cannot be stored
 *   (a bucket with a zero character, a storage key over `STORAGE_KEY_BYTES_MAX`); the whole
 *   batch is then refused and none of it is visible.
 * - `get` and `scan` throw it when a stored record does not decode (disk corruption, or a
 *   record from an incompatible version), with the bucket and key in `details`. They throw
 *   rather than skip: an unreadable replica must not answer "not found", which a quorum read
 *   would count as a valid (empty) reply and which read repair would then "fix" by spreading
 *   the loss. The shell catches it, counts it and stops serving that key.
 * - Every method but `close` throws or rejects with it once the store is closed.
 *
 * Reads never alias storage: an object returned by `get` or `scan` is freshly decoded, so a
 * caller that changes it changes nothing stored, and a later write does not change it.
 */

import type { KvObject } from '../clock/object.js';
import type { StoreReader, StoreWrite } from '../node/ports.js';

export interface StoreEntry {
  readonly token: number;
  readonly bucket: string;
  readonly key: string;
  readonly object: KvObject;
}

export type StoreEngine = 'memory' | 'lmdb';

export interface Store extends StoreReader {
  readonly engine: StoreEngine;
  /**
   * Applies the writes as one atomic batch, in order (a later write to the same key wins);
   * resolves once durable per the store's durability mode, and the writes are visible to
   * `get` and `scan` by then. Rejects with StorageError, in which case nothing was written.
   */
  apply(writes: readonly StoreWrite[]): Promise<void>;
  /**
   * Entries with token in [fromToken, toToken) in (token, bucket, key) byte order; when
   * fromToken >= toToken the range wraps around the ring (from..2^32 then 0..to); from == to
   * means the whole ring. Iteration reads one consistent snapshot, taken when the first entry
   * is requested: writes that land while the caller iterates are not seen. Iterate to the end
   * or stop with `break`/`return()`, which releases the snapshot.
   */
  scan(fromToken: number, toToken: number): IterableIterator<StoreEntry>;
  /** Number of stored objects. */
  count(): number;
  getMeta(name: string): Uint8Array | undefined;
  /** Durable like `apply`. */
  setMeta(name: string, value: Uint8Array): Promise<void>;
  /** Waits for writes in flight, then releases the engine. Idempotent. */
  close(): Promise<void>;
}

export type StoreDurability = 'fsync' | 'commit';

export type StoreOptions =
  | { readonly engine: 'memory' }
  | {
      readonly engine: 'lmdb';
      /** The data directory; the LMDB environment's files live directly in it. */
      readonly path: string;
      /** fsync: resolve writes once flushed to disk; commit: once committed (visible to readers). */
      readonly durability: StoreDurability;
      /** Initial map size; lmdb-js grows the map when it fills. */
      readonly mapSizeBytes?: number;
    };
