/**
 * The queue of membership updates to piggyback on outgoing messages.
 *
 * One update per member: newer news about a member replaces older news (memberlist's
 * TransmitLimitedQueue). Each update is sent about λ·log(n+1) times, least-sent first, so
 * fresh news spreads before old news is repeated; among equally-sent updates the newest
 * goes first. Updates are kept in tiers by how often they were sent, so taking a few for a
 * message costs little even when the queue holds news about hundreds of members. The queue
 * holds at most one entry per member, so it is bounded by the member table.
 */

import type { MemberState } from './member.js';

interface Queued {
  readonly update: MemberState;
  transmits: number;
}

export class Broadcasts {
  /** The queued update of each member. */
  private readonly byMember = new Map<string, Queued>();
  /** Queued updates by times sent; within a tier, insertion order (oldest first). */
  private readonly tiers = new Map<number, Set<Queued>>();

  get size(): number {
    return this.byMember.size;
  }

  /** Queues news about a member, replacing what was queued about it. */
  push(update: MemberState): void {
    const previous = this.byMember.get(update.id);
    if (previous) this.leaveTier(previous);
    const entry: Queued = { update, transmits: 0 };
    this.byMember.set(update.id, entry);
    this.tierOf(0).add(entry);
  }

  /**
   * Up to `max` updates for one message, least-transmitted first (newest first within a
   * tier); updates sent `limit` times leave the queue.
   */
  take(max: number, limit: number): MemberState[] {
    if (this.byMember.size === 0 || max <= 0) return [];
    const chosen: Queued[] = [];
    for (const transmits of [...this.tiers.keys()].sort((a, b) => a - b)) {
      const tier = [...(this.tiers.get(transmits) ?? [])].reverse();
      for (const entry of tier) {
        chosen.push(entry);
        if (chosen.length === max) break;
      }
      if (chosen.length === max) break;
    }
    // Oldest first into the next tier, so that tier too is read newest first.
    for (const entry of [...chosen].reverse()) {
      this.leaveTier(entry);
      entry.transmits++;
      if (entry.transmits >= limit) this.byMember.delete(entry.update.id);
      else this.tierOf(entry.transmits).add(entry);
    }
    return chosen.map((entry) => entry.update);
  }

  private leaveTier(entry: Queued): void {
    const tier = this.tiers.get(entry.transmits);
    if (tier === undefined) return;
    tier.delete(entry);
    if (tier.size === 0) this.tiers.delete(entry.transmits);
  }

  private tierOf(transmits: number): Set<Queued> {
    let tier = this.tiers.get(transmits);
    if (tier === undefined) this.tiers.set(transmits, (tier = new Set()));
    return tier;
  }
}
