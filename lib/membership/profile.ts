/**
 * Membership timing profiles, after memberlist's DefaultLAN/WAN/LocalConfig, counted in ticks.
 *
 * Each knob is given in milliseconds with the reasoning behind it and turned into ticks with
 * the node's tick length, so the core only ever counts ticks. The derived timeouts that grow
 * with the cluster are computed where they are used:
 *
 *   suspicionMinTicks  = suspicionMult × max(1, log10(n)) × probeIntervalTicks      (SWIM, memberlist)
 *   suspicionMaxTicks  = suspicionMaxTimeoutMult × suspicionMinTicks                (Lifeguard)
 *   suspicion timeout  = max(min, max − (max − min) × log(C + 1) / log(K + 1))      (Lifeguard: C confirmations of K expected)
 *   retransmits        = retransmitMult × ceil(log2(n + 1))                         (SWIM's λ·log n)
 *   pushPullIntervalTicks scales by ceil(log2(n / 32)) past 32 members              (memberlist pushPullScale)
 *   probe timeout and interval × (localHealth + 1)                                  (Lifeguard local health)
 */

import { assert } from '../base/assert.js';

export const PROFILE_NAMES = ['local', 'lan', 'wan'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface ProfileMs {
  /** One probe per interval: how fast a failure is noticed, against the probe traffic it costs. */
  readonly probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe indirectly; above a round trip under load. */
  readonly probeTimeoutMs: number;
  /** Members asked to probe indirectly (SWIM's k): routes around one bad link. */
  readonly indirectChecks: number;
  /** Scales the suspicion timeout; higher waits longer for a refutation. */
  readonly suspicionMult: number;
  /** Lifeguard: the suspicion timeout starts this many times its minimum and shrinks with confirmations. */
  readonly suspicionMaxTimeoutMult: number;
  /** Scales how often each update is retransmitted (λ). */
  readonly retransmitMult: number;
  /** Gossip rounds: updates also go to `gossipFanout` random members each interval (memberlist). */
  readonly gossipIntervalMs: number;
  readonly gossipFanout: number;
  /** Dead members keep receiving gossip this long, so a falsely declared one learns it and refutes. */
  readonly gossipToTheDeadMs: number;
  /** Full-table exchange with one random member: repairs whatever dissemination missed. */
  readonly pushPullIntervalMs: number;
  /** Joining: first and longest delay between attempts to reach a seed. */
  readonly joinRetryMs: number;
  readonly joinRetryMsMax: number;
  /** Lifeguard's local health: its ceiling (timeouts stretch up to awareness + 1 times). */
  readonly awarenessMax: number;
}

export const PROFILES: Readonly<Record<ProfileName, ProfileMs>> = {
  // One machine: round trips are microseconds, so failures can be found within a second.
  local: {
    probeIntervalMs: 200,
    probeTimeoutMs: 100,
    indirectChecks: 3,
    suspicionMult: 3,
    suspicionMaxTimeoutMult: 4,
    retransmitMult: 2,
    gossipIntervalMs: 100,
    gossipFanout: 3,
    gossipToTheDeadMs: 15_000,
    pushPullIntervalMs: 5_000,
    joinRetryMs: 100,
    joinRetryMsMax: 2_000,
    awarenessMax: 8,
  },
  // A data centre: sub-millisecond round trips, rare loss. Detects a crash in about 3 s at n = 5.
  lan: {
    probeIntervalMs: 500,
    probeTimeoutMs: 250,
    indirectChecks: 3,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 3,
    retransmitMult: 3,
    gossipIntervalMs: 200,
    gossipFanout: 3,
    gossipToTheDeadMs: 30_000,
    pushPullIntervalMs: 15_000,
    joinRetryMs: 200,
    joinRetryMsMax: 5_000,
    awarenessMax: 8,
  },
  // Across regions: round trips of 100–300 ms and more loss; slower, more patient.
  wan: {
    probeIntervalMs: 3_000,
    probeTimeoutMs: 1_500,
    indirectChecks: 3,
    suspicionMult: 6,
    suspicionMaxTimeoutMult: 6,
    retransmitMult: 3,
    gossipIntervalMs: 500,
    gossipFanout: 4,
    gossipToTheDeadMs: 60_000,
    pushPullIntervalMs: 60_000,
    joinRetryMs: 1_000,
    joinRetryMsMax: 30_000,
    awarenessMax: 8,
  },
};

/** A profile in ticks, as the core uses it. */
export interface Profile {
  readonly probeIntervalTicks: number;
  readonly probeTimeoutTicks: number;
  readonly indirectChecks: number;
  readonly suspicionMult: number;
  readonly suspicionMaxTimeoutMult: number;
  readonly retransmitMult: number;
  readonly gossipIntervalTicks: number;
  readonly gossipFanout: number;
  readonly gossipToTheDeadTicks: number;
  readonly pushPullIntervalTicks: number;
  readonly joinRetryTicks: number;
  readonly joinRetryTicksMax: number;
  readonly awarenessMax: number;
}

export function profileTicks(profile: ProfileMs, tickMs: number): Profile {
  assert(tickMs > 0, 'tickMs must be positive');
  const ticks = (ms: number): number => Math.max(1, Math.ceil(ms / tickMs));
  assert(profile.probeTimeoutMs < profile.probeIntervalMs, 'probe timeout must be shorter than the probe interval');
  return {
    probeIntervalTicks: ticks(profile.probeIntervalMs),
    probeTimeoutTicks: ticks(profile.probeTimeoutMs),
    indirectChecks: profile.indirectChecks,
    suspicionMult: profile.suspicionMult,
    suspicionMaxTimeoutMult: profile.suspicionMaxTimeoutMult,
    retransmitMult: profile.retransmitMult,
    gossipIntervalTicks: ticks(profile.gossipIntervalMs),
    gossipFanout: profile.gossipFanout,
    gossipToTheDeadTicks: ticks(profile.gossipToTheDeadMs),
    pushPullIntervalTicks: ticks(profile.pushPullIntervalMs),
    joinRetryTicks: ticks(profile.joinRetryMs),
    joinRetryTicksMax: ticks(profile.joinRetryMsMax),
    awarenessMax: profile.awarenessMax,
  };
}

/** SWIM's suspicion minimum: suspicionMult × max(1, log10(n)) × probe interval. */
export function suspicionMinTicks(profile: Profile, members: number): number {
  return Math.ceil(profile.suspicionMult * Math.max(1, Math.log10(Math.max(1, members))) * profile.probeIntervalTicks);
}

/**
 * How many times each update is retransmitted: λ × ceil(log2(n + 1)). memberlist uses log10,
 * which at n = 5 sends an update only 4 times; with 3 senders a survivor then misses a death
 * about 3% of the time (each send picks one of 4 members) and waits out its own, longest,
 * suspicion timeout. log2 gives 9 sends at n = 5 with λ = 3, and still grows only with log n.
 */
export function retransmitLimit(profile: Profile, members: number): number {
  return profile.retransmitMult * Math.ceil(Math.log2(members + 1));
}

/** memberlist's pushPullScale: past 32 members the exchange interval grows with log2(n / 32). */
export function pushPullTicks(profile: Profile, members: number): number {
  if (members <= 32) return profile.pushPullIntervalTicks;
  return profile.pushPullIntervalTicks * (Math.ceil(Math.log2(members) - Math.log2(32)) + 1);
}
