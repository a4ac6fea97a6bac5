/**
 * A timeout counted in ticks (after TigerBeetle's `vsr.Timeout`).
 *
 * The core never reads a clock: the shell feeds it ticks, and every timeout is a value that
 * counts them. `tick()` advances it, `fired()` says whether it is due, `reset()` starts it
 * over, `backoff()` doubles the interval up to a ceiling with seeded jitter.
 */

import { assert } from './assert.js';
import type { Prng } from './prng.js';

export class Timeout {
  readonly name: string;
  readonly afterTicks: number;
  private intervalTicks: number;
  private readonly intervalTicksMax: number;
  private elapsedTicks = 0;
  private running = false;

  constructor(name: string, afterTicks: number, intervalTicksMax = afterTicks) {
    assert(Number.isInteger(afterTicks) && afterTicks > 0, `timeout ${name}: afterTicks must be a positive integer`);
    assert(intervalTicksMax >= afterTicks, `timeout ${name}: ceiling below the interval`);
    this.name = name;
    this.afterTicks = afterTicks;
    this.intervalTicks = afterTicks;
    this.intervalTicksMax = intervalTicksMax;
  }

  get ticking(): boolean {
    return this.running;
  }

  get ticksLeft(): number {
    return Math.max(0, this.intervalTicks - this.elapsedTicks);
  }

  start(): void {
    this.running = true;
    this.elapsedTicks = 0;
  }

  stop(): void {
    this.running = false;
    this.elapsedTicks = 0;
  }

  /** Restart with the base interval (clears any backoff). */
  reset(): void {
    this.intervalTicks = this.afterTicks;
    this.start();
  }

  tick(): void {
    if (this.running) this.elapsedTicks++;
  }

  fired(): boolean {
    return this.running && this.elapsedTicks >= this.intervalTicks;
  }

  /** Double the interval (up to the ceiling), add up to 50% jitter, and restart. */
  backoff(prng: Prng): void {
    const doubled = Math.min(this.intervalTicksMax, this.intervalTicks * 2);
    const jitter = prng.int(Math.max(1, Math.floor(doubled / 2)));
    this.intervalTicks = Math.min(this.intervalTicksMax, doubled + jitter);
    this.start();
  }
}
