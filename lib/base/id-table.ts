/**
 * Tables for the entries that requests add and remove all the time (requests in flight, writes
 * on their way to disk): open addressing with linear probing over two parallel arrays, and
 * removal by shifting the rest of the run back, so no slot is ever a tombstone and the arrays
 * are replaced only when the table grows. `IdTable` is keyed by request ids (non-negative safe
 * integers), `KeyTable` by strings.
 *
 * Why not a `Map`: a `Map` that lives long moves to V8's old generation, and from then on each
 * of its rehashes (one every few hundred additions when entries come and go, as requests do)
 * allocates the new hash table in the old generation too. The table it replaces is garbage
 * that keeps pointing at the values it held, and until the next full collection the young
 * collector treats those pointers as live: the requests in flight at each rehash, and what
 * they hold, are promoted instead of dying young. Under load that promoted a few megabytes a
 * second and brought a full collection every few seconds. Here a removed value's slot is
 * cleared at once, and the arrays are replaced only when the table doubles.
 *
 * Iteration order is not insertion order; `entries()` returns a copy, so callers may add and
 * remove while they walk it.
 *
 * Salt. Keys often come from clients (request ids a client picks, bucket and key names), and
 * linear probing degrades to a scan when many keys share a home slot: a client that knew the
 * hash could make every insert walk thousands of slots. So the hash is keyed: each table takes
 * a salt, and which keys collide depends on it. A table in the deterministic core gets its
 * salt from the node's seeded PRNG (so a simulation replays the same order), the runtime's
 * from real randomness.
 */

import { AssertionError } from './assert.js';

/** Slots of a new table; it doubles whenever it is over half full. */
const CAPACITY_MIN = 16;

abstract class ProbedTable<K extends number | string, V> {
  private keys: (K | undefined)[];
  private values: (V | undefined)[];
  private mask: number;
  private count = 0;

  /** Mixed into every hash; see the salt paragraph above. */
  protected readonly salt: number;

  /** `salt`: any 32-bit integer; 0 (the default) is fine where no client picks the keys. */
  constructor(salt = 0) {
    this.salt = salt | 0;
    this.keys = new Array<K | undefined>(CAPACITY_MIN).fill(undefined);
    this.values = new Array<V | undefined>(CAPACITY_MIN).fill(undefined);
    this.mask = CAPACITY_MIN - 1;
  }

  /** A 32-bit hash of the key; the table takes its low bits. */
  protected abstract hash(key: K): number;

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    const i = this.find(key);
    return i === -1 ? undefined : this.values[i];
  }

  has(key: K): boolean {
    return this.find(key) !== -1;
  }

  /** Adds or replaces the value of `key`. */
  set(key: K, value: V): void {
    const keys = this.keys;
    let i = this.hash(key) & this.mask;
    for (; ; i = (i + 1) & this.mask) {
      const k = keys[i];
      if (k === key) {
        this.values[i] = value;
        return;
      }
      if (k === undefined) break;
    }
    keys[i] = key;
    this.values[i] = value;
    this.count++;
    if (this.count * 2 > keys.length) this.grow();
  }

  /** Removes `key`; true when it was there. */
  delete(key: K): boolean {
    let hole = this.find(key);
    if (hole === -1) return false;
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    // Shift back every entry of the run after the hole that may move into it: one whose home
    // slot is not cyclically within (hole, i].
    for (let i = (hole + 1) & mask; keys[i] !== undefined; i = (i + 1) & mask) {
      const home = this.hash(keys[i] as K) & mask;
      const stays = hole <= i ? hole < home && home <= i : hole < home || home <= i;
      if (stays) continue;
      keys[hole] = keys[i];
      values[hole] = values[i];
      hole = i;
    }
    keys[hole] = undefined;
    values[hole] = undefined;
    this.count--;
    return true;
  }

  /** The longest run of occupied slots: how far a lookup may have to probe (for specs and diagnostics). */
  longestRun(): number {
    const keys = this.keys;
    let longest = 0;
    let run = 0;
    // Twice round, so a run that wraps past the end is counted whole (the table is never full).
    for (let i = 0; i < 2 * keys.length; i++) {
      run = keys[i & this.mask] === undefined ? 0 : run + 1;
      if (run > longest) longest = run;
    }
    return longest;
  }

  /** A copy of the entries, in no particular order. */
  entries(): [K, V][] {
    const out: [K, V][] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== undefined) out.push([keys[i] as K, this.values[i] as V]);
    return out;
  }

  private find(key: K): number {
    const keys = this.keys;
    for (let i = this.hash(key) & this.mask; ; i = (i + 1) & this.mask) {
      const k = keys[i];
      if (k === key) return i;
      if (k === undefined) return -1;
    }
  }

  private grow(): void {
    const keys = this.keys;
    const values = this.values;
    const size = keys.length * 2;
    this.keys = new Array<K | undefined>(size).fill(undefined);
    this.values = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (key === undefined) continue;
      let j = this.hash(key) & this.mask;
      while (this.keys[j] !== undefined) j = (j + 1) & this.mask;
      this.keys[j] = key;
      this.values[j] = values[i];
    }
    // The old arrays are garbage now; clear the values so they hold nothing up meanwhile.
    values.fill(undefined);
  }
}

/** Keyed by request ids: non-negative safe integers, in any pattern. */
export class IdTable<V> extends ProbedTable<number, V> {
  /** The odd factors the salt chooses for the id's low and high 32 bits. */
  private readonly lowFactor = this.salt | 1;
  private readonly highFactor = Math.imul(this.salt, 0x9e3779b1) | 1;

  override set(id: number, value: V): void {
    if (!(Number.isSafeInteger(id) && id >= 0)) throw new AssertionError(`IdTable: id ${id} is not a non-negative safe integer`);
    super.set(id, value);
  }

  /**
   * The id's low and high 32 bits, each multiplied by an odd factor the salt chooses, summed,
   * then mixed (murmur3's finalizer), so sequential ids and ids with a stride both spread, and
   * ids that share a slot under one salt are scattered under another.
   */
  protected hash(id: number): number {
    const h = Math.imul(id >>> 0, this.lowFactor) + Math.imul((id / 0x1_0000_0000) >>> 0, this.highFactor);
    return fmix32(h);
  }
}

/** Keyed by strings. */
export class KeyTable<V> extends ProbedTable<string, V> {
  /** FNV-1a over the UTF-16 code units from a salted offset basis, then murmur3's finalizer. */
  protected hash(key: string): number {
    let h = 0x811c9dc5 ^ this.salt;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return fmix32(h);
  }
}

/** murmur3's 32-bit finalizer: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
