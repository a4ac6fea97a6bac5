/**
 * A map from request ids (non-negative safe integers) to values, for the tables of requests in
 * flight that every request adds to and removes from: open addressing with linear probing over
 * two parallel arrays, and removal by shifting the rest of the run back, so no slot is ever a
 * tombstone and the arrays are replaced only when the table grows.
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
 */

import { AssertionError } from './assert.js';

const EMPTY = -1;
const CAPACITY_MIN = 16;

export class IdTable<V> {
  private keys: number[];
  private values: (V | undefined)[];
  private mask: number;
  private count = 0;

  constructor(capacity = CAPACITY_MIN) {
    let size = CAPACITY_MIN;
    while (size < capacity * 2) size *= 2;
    this.keys = new Array<number>(size).fill(EMPTY);
    this.values = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  get(id: number): V | undefined {
    const keys = this.keys;
    for (let i = this.slot(id); ; i = (i + 1) & this.mask) {
      const key = keys[i] as number;
      if (key === id) return this.values[i];
      if (key === EMPTY) return undefined;
    }
  }

  has(id: number): boolean {
    return this.find(id) !== -1;
  }

  /** Adds or replaces the value of `id`. */
  set(id: number, value: V): void {
    if (!(Number.isSafeInteger(id) && id >= 0)) throw new AssertionError(`IdTable: id ${id} is not a non-negative safe integer`);
    const keys = this.keys;
    let i = this.slot(id);
    for (; ; i = (i + 1) & this.mask) {
      const key = keys[i] as number;
      if (key === id) {
        this.values[i] = value;
        return;
      }
      if (key === EMPTY) break;
    }
    keys[i] = id;
    this.values[i] = value;
    this.count++;
    if (this.count * 2 > keys.length) this.grow();
  }

  /** Removes `id`; true when it was there. */
  delete(id: number): boolean {
    let hole = this.find(id);
    if (hole === -1) return false;
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    // Shift back every entry of the run after the hole that may move into it: one whose home
    // slot is not cyclically within (hole, i].
    for (let i = (hole + 1) & mask; keys[i] !== EMPTY; i = (i + 1) & mask) {
      const home = this.slot(keys[i] as number);
      const stays = hole <= i ? hole < home && home <= i : hole < home || home <= i;
      if (stays) continue;
      keys[hole] = keys[i] as number;
      values[hole] = values[i];
      hole = i;
    }
    keys[hole] = EMPTY;
    values[hole] = undefined;
    this.count--;
    return true;
  }

  /** A copy of the entries, in no particular order. */
  entries(): [number, V][] {
    const out: [number, V][] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) out.push([keys[i] as number, this.values[i] as V]);
    return out;
  }

  clear(): void {
    this.keys.fill(EMPTY);
    this.values.fill(undefined);
    this.count = 0;
  }

  private find(id: number): number {
    const keys = this.keys;
    for (let i = this.slot(id); ; i = (i + 1) & this.mask) {
      const key = keys[i] as number;
      if (key === id) return i;
      if (key === EMPTY) return -1;
    }
  }

  /** The home slot: the id's low and high 32 bits mixed, so ids in any pattern spread. */
  private slot(id: number): number {
    let h = (id >>> 0) ^ Math.imul((id / 0x1_0000_0000) >>> 0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= h >>> 13;
    return h & this.mask;
  }

  private grow(): void {
    const keys = this.keys;
    const values = this.values;
    const size = keys.length * 2;
    this.keys = new Array<number>(size).fill(EMPTY);
    this.values = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as number;
      if (key === EMPTY) continue;
      let j = this.slot(key);
      while (this.keys[j] !== EMPTY) j = (j + 1) & this.mask;
      this.keys[j] = key;
      this.values[j] = values[i];
    }
    // The old arrays are garbage now; clear the values so they hold nothing up meanwhile.
    values.fill(undefined);
  }
}
