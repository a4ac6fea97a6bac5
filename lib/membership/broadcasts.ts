/**
 * The queue of membership updates to piggyback on outgoing messages.
 *
 * One update per member: newer news about a member replaces older news (memberlist's
 * TransmitLimitedQueue). Each update is sent about λ·log(n+1) times, least-sent first, so
 * fresh news spreads before old news is repeated. The queue holds at most one entry per
 * member, so it is bounded by the member table.
 */

import type { MemberState } from './member.js';

interface Queued {
  update: MemberState;
  transmits: number;
  /** Insertion order, so that among equally-sent updates the newest goes first. */
  order: number;
}

export class Broadcasts {
  private readonly queue = new Map<string, Queued>();
  private order = 0;

  get size(): number {
    return this.queue.size;
  }

  /** Queues news about a member, replacing what was queued about it. */
  push(update: MemberState): void {
    this.queue.set(update.id, { update, transmits: 0, order: this.order++ });
  }

  /**
   * Up to `max` updates for one message, least-transmitted first; updates sent `limit`
   * times leave the queue.
   */
  take(max: number, limit: number): MemberState[] {
    if (this.queue.size === 0 || max <= 0) return [];
    const chosen = [...this.queue.values()].sort((a, b) => a.transmits - b.transmits || b.order - a.order).slice(0, max);
    for (const entry of chosen) {
      entry.transmits++;
      if (entry.transmits >= limit) this.queue.delete(entry.update.id);
    }
    return chosen.map((entry) => entry.update);
  }
}
