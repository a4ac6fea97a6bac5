/**
 * This node's copy of the data, as the core sees it: synchronous reads through the store,
 * writes that leave as `store-write` outputs, and the writes still on their way to disk.
 *
 * Whatever merges into a key (a coordinated put, a replicated one, a handoff, a repair)
 * builds on the newest version, including writes not yet durable (the pending overlay), so
 * two writes in one tick never lose each other's dots. Reads that answer a client or a
 * coordinator see only what is durable, so they never return a value a crash could still
 * take back. A caller learns that its write is durable through a callback, called from
 * `onStoreDone` with the outputs of that step.
 *
 * Every write of the node's own data also updates the segment hashes anti-entropy compares
 * (lib/merkle), in O(1): the digest of the version it replaces out, the new one in. They
 * follow the newest versions, pending ones included, as the overlay does.
 */

import { IdTable, KeyTable } from '../base/id-table.js';
import type { KvObject } from '../clock/object.js';
import { objectBytes } from '../handoff/hints.js';
import { objectDigest, type SegmentHashes } from '../merkle/index.js';
import { keyToken } from '../ring/token.js';
import type { NodeOutput } from './io.js';
import type { StoreReader, StoreWrite } from './ports.js';

/** Where an object lives: the node's own data, or the hint it keeps for `hintFor`. */
export interface Slot {
  readonly bucket: string;
  readonly key: string;
  readonly hintFor?: string | undefined;
}

export interface SlotWrite extends Slot {
  /** The new version; undefined deletes it. */
  readonly object: KvObject | undefined;
  /**
   * The version it replaces, when the caller read it with `latest` earlier in the same step
   * (nothing can change it in between). The segment hashes need it; without it `write` reads
   * it again, which for a key on disk is a store read and a decode.
   */
  readonly replaces?: { readonly object: KvObject | undefined };
}

/** Called once the write is durable (`failure` undefined) or has failed. */
export type WriteDone = (failure: string | undefined, out: NodeOutput[]) => void;

interface PendingWrite {
  readonly writeId: number;
  readonly object: KvObject | undefined;
}

export class LocalReplica {
  private readonly store: StoreReader;
  /** Hashes of the node's own data per token segment. */
  readonly segments: SegmentHashes;
  private writeIdNext = 1;
  /** The newest not-yet-durable version per slot (a KeyTable rather than a Map: see `lib/base/id-table.ts`); salted, since clients name the slots. */
  private readonly pending: KeyTable<PendingWrite>;
  /** Per storage batch: the slots it wrote (keys, and the writes of the node's own data) and who waits for it. */
  private readonly batches = new IdTable<{ readonly slots: readonly string[]; readonly own: readonly SlotWrite[]; readonly waiting: WriteDone[] }>();
  /** A moving average of the estimated bytes of the records written (for transfer estimates). */
  private recordBytes = 0;

  /** `slotSalt`: the salt of the table of pending writes (from the node's PRNG). */
  constructor(store: StoreReader, segments: SegmentHashes, slotSalt = 0) {
    this.store = store;
    this.segments = segments;
    this.pending = new KeyTable<PendingWrite>(slotSalt);
  }

  /** About how many bytes a record written here takes (a moving average; 0 before any write). */
  get averageRecordBytes(): number {
    return Math.round(this.recordBytes);
  }

  /** The newest version, durable or not. Throws StorageError when the stored record is unreadable. */
  latest(slot: Slot): KvObject | undefined {
    const pending = this.pending.get(slotKey(slot));
    if (pending !== undefined) return pending.object;
    return this.durable(slot);
  }

  /** The newest version of a slot whose durable version is `durable` (as a scan returned it): the pending one if a write is on its way. */
  newest(slot: Slot, durable: KvObject): KvObject | undefined {
    const pending = this.pending.get(slotKey(slot));
    return pending === undefined ? durable : pending.object;
  }

  /** The durable version. Throws StorageError when the stored record is unreadable. */
  durable(slot: Slot): KvObject | undefined {
    return slot.hintFor === undefined ? this.store.get(slot.bucket, slot.key) : this.store.getHint(slot.hintFor, slot.bucket, slot.key);
  }

  /** Whether a write to the slot is on its way to disk. */
  isPending(slot: Slot): boolean {
    return this.pending.has(slotKey(slot));
  }

  /** Writes the objects as one batch; `done` runs when it is durable or failed. */
  write(writes: readonly SlotWrite[], out: NodeOutput[], done: WriteDone): void {
    const writeId = this.writeIdNext++;
    const slots: string[] = [];
    const own: SlotWrite[] = [];
    const batch: StoreWrite[] = [];
    for (const w of writes) {
      const key = slotKey(w);
      if (w.hintFor === undefined) {
        this.hash(w);
        own.push(w);
      }
      if (w.object !== undefined) this.recordBytes += (objectBytes(w.object) + w.bucket.length + w.key.length - this.recordBytes) / 64;
      slots.push(key);
      this.pending.set(key, { writeId, object: w.object });
      batch.push(storeWrite(w));
    }
    this.batches.set(writeId, { slots, own, waiting: [done] });
    out.push({ kind: 'store-write', writeId, writes: batch });
  }

  /** Moves the key's contribution to its segment hash from the version it replaces to the new one. */
  private hash(w: SlotWrite): void {
    this.moveHash(w, w.replaces === undefined ? this.readOrNone(() => this.latest(w)) : w.replaces.object, w.object);
  }

  /** Moves the key's contribution to its segment hash from a failed write's version back to the stored one. */
  private unhash(w: SlotWrite): void {
    this.moveHash(w, w.object, this.readOrNone(() => this.durable(w)));
  }

  private moveHash(slot: Slot, from: KvObject | undefined, to: KvObject | undefined): void {
    if (from === undefined && to === undefined) return;
    this.segments.apply(keyToken(slot.bucket, slot.key), slot.bucket, slot.key, from === undefined ? undefined : objectDigest(from), to === undefined ? undefined : objectDigest(to));
  }

  /**
   * A version for the segment hashes, undefined when the stored record is unreadable: the
   * hashes cannot say what it was, and anti-entropy will find the segment differing, which is
   * what an unreadable replica is.
   */
  private readOrNone(read: () => KvObject | undefined): KvObject | undefined {
    try {
      return read();
    } catch {
      return undefined;
    }
  }

  /** Runs `done` once every write pending for the slot is durable: at once if none is. */
  afterPending(slot: Slot, out: NodeOutput[], done: WriteDone): void {
    const pending = this.pending.get(slotKey(slot));
    const batch = pending === undefined ? undefined : this.batches.get(pending.writeId);
    if (batch === undefined) return done(undefined, out);
    batch.waiting.push(done);
  }

  onStoreDone(writeId: number, failure: string | undefined, out: NodeOutput[]): void {
    const batch = this.batches.get(writeId);
    if (batch === undefined) return;
    this.batches.delete(writeId);
    // The segment hashes took the batch's versions when it was issued. A failed batch left the
    // store as it was, so each key it was the last write of goes back to what the store holds
    // (from the batch's last version of the key); a key written again since already moved on
    // from the failed version to the newer one.
    if (failure !== undefined) {
      const last = new Map<string, SlotWrite>();
      for (const w of batch.own) last.set(slotKey(w), w);
      for (const [key, w] of last) if (this.pending.get(key)?.writeId === writeId) this.unhash(w);
    }
    for (const key of batch.slots) if (this.pending.get(key)?.writeId === writeId) this.pending.delete(key);
    for (const done of batch.waiting) done(failure, out);
  }
}

function slotKey(slot: Slot): string {
  // The bucket's length keeps (a\0b, c) and (a, b\0c) apart.
  const data = `${slot.bucket.length}:${slot.bucket}\0${slot.key}`;
  return slot.hintFor === undefined ? `d ${data}` : `h ${slot.hintFor} ${data}`;
}

function storeWrite(w: SlotWrite): StoreWrite {
  if (w.hintFor === undefined) {
    return w.object === undefined ? { op: 'delete', bucket: w.bucket, key: w.key } : { op: 'put', bucket: w.bucket, key: w.key, object: w.object };
  }
  return w.object === undefined
    ? { op: 'hint-delete', target: w.hintFor, bucket: w.bucket, key: w.key }
    : { op: 'hint-put', target: w.hintFor, bucket: w.bucket, key: w.key, object: w.object };
}
