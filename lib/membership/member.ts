/**
 * A member's state and the rule for which of two reports about it is newer.
 *
 * Only a member itself raises its incarnation (to refute a suspicion, or when its status
 * changes), so a higher incarnation is always newer news. At the same incarnation, worse
 * liveness wins (alive < suspect < dead: SWIM's precedence, so a suspicion is not undone by a
 * stale alive), then a later status (joining < up < leaving < left).
 */

import { LIVENESSES, MEMBER_STATUSES, type Liveness, type MemberState, type MemberStatus } from '../codec/messages.js';

export type { Liveness, MemberState, MemberStatus };

const LIVENESS_RANK: Readonly<Record<Liveness, number>> = { alive: 0, suspect: 1, dead: 2 };
const STATUS_RANK: Readonly<Record<MemberStatus, number>> = { joining: 0, up: 1, leaving: 2, left: 3 };

/** Whether `next` should replace `current` in a member table. */
export function supersedes(next: MemberState, current: MemberState): boolean {
  if (next.inc !== current.inc) return next.inc > current.inc;
  const liveness = LIVENESS_RANK[next.live] - LIVENESS_RANK[current.live];
  if (liveness !== 0) return liveness > 0;
  return STATUS_RANK[next.status] > STATUS_RANK[current.status];
}

export function isLive(state: MemberState): boolean {
  return state.live !== 'dead' && state.status !== 'left';
}

export { LIVENESSES, MEMBER_STATUSES };
