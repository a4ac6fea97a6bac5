/**
 * A suspicion timer with Lifeguard's confirmations (Dadgar et al., "Lifeguard: Local Health
 * Awareness for More Accurate Failure Detection", 2018).
 *
 * A suspicion starts at its maximum timeout and shrinks towards the minimum as independent
 * members confirm it: timeout = max(min, max − (max − min) × log(C + 1) / log(K + 1)), with C
 * confirmations of K expected. A member wrongly suspected by one slow node therefore has
 * long enough to refute, while a real failure seen by many is declared quickly.
 */

export class Suspicion {
  readonly startTick: number;
  readonly incarnation: number;
  private readonly minTicks: number;
  private readonly maxTicks: number;
  private readonly expected: number;
  private readonly confirmers = new Set<string>();

  constructor(startTick: number, incarnation: number, minTicks: number, maxTicks: number, expected: number, firstSuspector: string) {
    this.startTick = startTick;
    this.incarnation = incarnation;
    this.minTicks = minTicks;
    this.maxTicks = Math.max(minTicks, maxTicks);
    this.expected = Math.max(0, expected);
    this.confirmers.add(firstSuspector);
  }

  /** Records an independent confirmation; returns whether it was new. */
  confirm(from: string): boolean {
    if (this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    return true;
  }

  get timeoutTicks(): number {
    const confirmations = this.confirmers.size - 1;
    if (this.expected < 1) return this.minTicks;
    const fraction = Math.log(confirmations + 1) / Math.log(this.expected + 1);
    return Math.max(this.minTicks, Math.floor(this.maxTicks - (this.maxTicks - this.minTicks) * fraction));
  }

  expired(now: number): boolean {
    return now - this.startTick >= this.timeoutTicks;
  }
}
