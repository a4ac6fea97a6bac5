/**
 * A crashable in-memory disk for one simulated node.
 *
 * The node reads through it as its `StoreReader`; its `store-write` batches and `meta-write`s
 * go in as they are emitted and become durable after a seeded delay, in the order they were
 * written (a later batch is never durable before an earlier one, as with LMDB's commits).
 * Only then does the simulator tell the node `store-durable`, and only then can the node read
 * the data back, so a read never returns what a crash could still take away. A crash drops
 * everything not yet durable; what was durable survives and is what a restart is rebuilt
 * from. Records are kept encoded in a `MemoryStore`, so the node gets fresh objects on every
 * read, as from LMDB.
 *
 * The disk also watches the one promise replication makes about a replica's copy of a key:
 * it never goes back. When a batch becomes durable, each object it writes must descend (DVV
 * `dvvDescends`) the durable object it replaces under the same key, and each hint the hint it
 * replaces; a regression is reported through `deps.report`. Deleting a record (a reaped
 * tombstone, a delivered hint) starts that key afresh, as does a wiped disk, which is a new
 * `SimDisk`.
 */

import type { Prng } from '../base/prng.js';
import { dvvDescends, join, type VersionVector } from '../clock/dvv.js';
import type { KvObject } from '../clock/object.js';
import type { HintEntry, HintTargetSummary, StoreReader, StoreWrite } from '../node/ports.js';
import { MemoryStore } from '../storage/memory-store.js';
import type { StoreEntry } from '../storage/store.js';
import { encodeWrites } from '../storage/records.js';

export interface DiskOptions {
  /** Ticks from a write to its being durable (an fsync), drawn per write. At least 1. */
  readonly durableTicksMin: number;
  readonly durableTicksMax: number;
}

export const DISK_DEFAULTS: DiskOptions = { durableTicksMin: 1, durableTicksMax: 3 };

type Pending =
  | { readonly kind: 'store'; readonly dueTick: number; readonly writeId: number; readonly writes: readonly StoreWrite[]; readonly error: string | undefined }
  | { readonly kind: 'meta'; readonly dueTick: number; readonly name: string; readonly value: Uint8Array };

/** A store batch that finished: durable, or refused with a reason. */
export interface Completion {
  readonly writeId: number;
  readonly error: string | undefined;
}

export interface DiskDeps {
  readonly prng: Prng;
  /** Told of every durable write whose object does not descend the one it replaced. */
  readonly report?: (problem: string) => void;
}

export class SimDisk implements StoreReader {
  private readonly prng: Prng;
  private readonly report: ((problem: string) => void) | undefined;
  private readonly options: DiskOptions;
  private readonly records = new MemoryStore();
  private readonly meta = new Map<string, Uint8Array>();
  private pending: Pending[] = [];
  private lastDueTick = 0;

  constructor(deps: DiskDeps, options: Partial<DiskOptions> = {}) {
    this.prng = deps.prng;
    this.report = deps.report;
    this.options = { ...DISK_DEFAULTS, ...options };
    if (!(Number.isInteger(this.options.durableTicksMin) && this.options.durableTicksMin >= 1 && this.options.durableTicksMax >= this.options.durableTicksMin)) {
      throw new RangeError(`disk delay must be whole ticks with 1 ≤ min ≤ max, got ${this.options.durableTicksMin}..${this.options.durableTicksMax}`);
    }
  }

  get(bucket: string, key: string): KvObject | undefined {
    return this.records.get(bucket, key);
  }

  /** Durable hints only, like `get`. */
  getHint(target: string, bucket: string, key: string): KvObject | undefined {
    return this.records.getHint(target, bucket, key);
  }

  hintsFor(target: string, limit: number): HintEntry[] {
    return this.records.hintsFor(target, limit);
  }

  hintTargets(): HintTargetSummary[] {
    return this.records.hintTargets();
  }

  /** Makes writes durable at once, outside any node's life: how a benchmark or spec builds a large data set fast. */
  preload(writes: readonly StoreWrite[]): void {
    encodeWrites(writes);
    void this.records.apply(writes);
  }

  /** Durable records with token in [fromToken, toToken), wrapping, like the Store's scan. */
  scan(fromToken: number, toToken: number): IterableIterator<StoreEntry> {
    return this.records.scan(fromToken, toToken);
  }

  /** Every durable record, in storage-key order. */
  entries(): IterableIterator<StoreEntry> {
    return this.records.scan(0, 0);
  }

  /** Node metadata as durable on the disk. */
  getMeta(name: string): Uint8Array | undefined {
    const value = this.meta.get(name);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  /** Writes metadata durably at once: what the runtime awaits before it starts the core. */
  setMetaNow(name: string, value: Uint8Array): void {
    this.meta.set(name, new Uint8Array(value));
  }

  /** Accepts a batch at tick `now`; it completes later, through `complete`. */
  write(writeId: number, writes: readonly StoreWrite[], now: number): void {
    let error: string | undefined;
    try {
      // The store refuses what LMDB refuses, and refuses the whole batch; find out up front.
      encodeWrites(writes);
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    this.pending.push({ kind: 'store', dueTick: this.dueTick(now), writeId, writes, error });
  }

  writeMeta(name: string, value: Uint8Array, now: number): void {
    this.pending.push({ kind: 'meta', dueTick: this.dueTick(now), name, value: new Uint8Array(value) });
  }

  /** Makes durable what is due by `now`, in order; returns the store batches that completed. */
  complete(now: number): Completion[] {
    if (this.pending.length === 0 || (this.pending[0] as Pending).dueTick > now) return [];
    const done: Completion[] = [];
    let index = 0;
    for (; index < this.pending.length; index++) {
      const write = this.pending[index] as Pending;
      if (write.dueTick > now) break;
      if (write.kind === 'meta') {
        this.meta.set(write.name, write.value);
        continue;
      }
      // Validated when written, so the memory store applies it in full before `apply` returns.
      if (write.error === undefined) {
        if (this.report !== undefined) this.checkMonotonic(write.writes, write.writeId);
        void this.records.apply(write.writes);
      }
      done.push({ writeId: write.writeId, error: write.error });
    }
    this.pending = this.pending.slice(index);
    return done;
  }

  /** Writes not yet durable. */
  get undurable(): number {
    return this.pending.length;
  }

  /** The process died: whatever was not yet durable is gone. */
  crash(): number {
    const lost = this.pending.length;
    this.pending = [];
    return lost;
  }

  /** Durable records. */
  get recordCount(): number {
    return this.records.count();
  }

  /** Reports each object in the batch that does not descend the durable one it replaces. */
  private checkMonotonic(writes: readonly StoreWrite[], writeId: number): void {
    for (const write of writes) {
      if (write.op === 'put') {
        const old = this.records.get(write.bucket, write.key);
        if (old !== undefined && !dvvDescends(write.object, old)) {
          this.report?.(`write #${writeId} took ${write.bucket}/${write.key} back from ${formatVector(join(old))} to ${formatVector(join(write.object))}`);
        }
      } else if (write.op === 'hint-put') {
        const old = this.records.getHint(write.target, write.bucket, write.key);
        if (old !== undefined && !dvvDescends(write.object, old)) {
          this.report?.(`write #${writeId} took the hint for ${write.target} of ${write.bucket}/${write.key} back from ${formatVector(join(old))} to ${formatVector(join(write.object))}`);
        }
      }
    }
  }

  private dueTick(now: number): number {
    const { durableTicksMin: min, durableTicksMax: max } = this.options;
    this.lastDueTick = Math.max(this.lastDueTick, now + min + this.prng.int(max - min + 1));
    return this.lastDueTick;
  }
}

/** A version vector in a few characters: `{n1/e1:3,n2/e1:1}`. */
export function formatVector(vector: VersionVector): string {
  return `{${vector.map(([actor, counter]) => `${actor}:${counter}`).join(',')}}`;
}
