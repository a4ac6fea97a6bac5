/**
 * The ports the core reads through. The core never performs I/O: it reads local data
 * synchronously through a `StoreReader` (LMDB reads are synchronous memory-mapped lookups)
 * and asks for writes by emitting `store-write` outputs, which count toward a quorum only
 * once the shell reports them durable.
 */

import type { KvObject } from '../clock/object.js';

export interface StoreReader {
  /** The object stored under (bucket, key), or undefined when there is none. */
  get(bucket: string, key: string): KvObject | undefined;
}

/** One storage mutation; a batch of them is applied atomically. */
export type StoreWrite =
  | { readonly op: 'put'; readonly bucket: string; readonly key: string; readonly object: KvObject }
  | { readonly op: 'delete'; readonly bucket: string; readonly key: string };
