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
  /**
   * The hint kept for `target` under (bucket, key): a write this node took as a fallback
   * while `target`, a primary of the key, was down. Hints live apart from the node's own
   * data (they are not in `get`, `scan` or `count`).
   */
  getHint(target: string, bucket: string, key: string): KvObject | undefined;
  /** Up to `limit` hints kept for `target`, in storage-key order (token, bucket, key). */
  hintsFor(target: string, limit: number): HintEntry[];
  /** Every target with hints: how many, and their encoded size. Read once when a node starts. */
  hintTargets(): HintTargetSummary[];
  /**
   * The node's own entries with token in [fromToken, toToken) in storage-key order, wrapping
   * past 2^32 − 1 when fromToken >= toToken (equal bounds: the whole ring). Anti-entropy reads
   * the keys under a differing leaf through it. Throws StorageError like `get`.
   */
  scan(fromToken: number, toToken: number): Iterable<ScanEntry>;
}

export interface ScanEntry {
  readonly token: number;
  readonly bucket: string;
  readonly key: string;
  readonly object: KvObject;
}

export interface HintEntry {
  readonly bucket: string;
  readonly key: string;
  readonly object: KvObject;
}

export interface HintTargetSummary {
  readonly target: string;
  readonly count: number;
  /** Bytes of the hints' encoded objects. */
  readonly bytes: number;
}

/** One storage mutation; a batch of them is applied atomically. */
export type StoreWrite =
  | { readonly op: 'put'; readonly bucket: string; readonly key: string; readonly object: KvObject }
  | { readonly op: 'delete'; readonly bucket: string; readonly key: string }
  | { readonly op: 'hint-put'; readonly target: string; readonly bucket: string; readonly key: string; readonly object: KvObject }
  | { readonly op: 'hint-delete'; readonly target: string; readonly bucket: string; readonly key: string };
