/**
 * SWIM membership with Lifeguard's refinements, as a deterministic state machine.
 *
 * Das, Gupta, Motivala: "SWIM: Scalable Weakly-consistent Infection-style Process Group
 * Membership Protocol" (2002); Dadgar, Phillips, Currey: "Lifeguard" (2018); HashiCorp's
 * memberlist for the engineering (gossip rounds, push-pull, gossip to the dead).
 *
 * - Probing: each protocol period the node pings one member, walking a shuffled list round
 *   robin. No ack within the probe timeout → `ping-req` through k other members. No ack by
 *   the end of the period → the target is suspected.
 * - Suspicion: a suspect is declared dead when its suspicion times out; the timeout starts
 *   long and shrinks as other members confirm (suspicion.ts). A suspected member that hears
 *   of it refutes by raising its incarnation; newer news about a member always replaces
 *   older (member.ts), so the refutation wins everywhere.
 * - Dissemination: updates ride on pings and acks and go to a few random members each gossip
 *   interval (broadcasts.ts), each about λ·log(n+1) times. Dead members still get gossip for
 *   a while, so one declared dead wrongly (a partition, a pause) learns it and refutes.
 * - Push-pull: periodically the whole member table and the metadata state vector are
 *   exchanged with one random member, repairing whatever dissemination missed. Joining is a
 *   push-pull with a seed, retried with backoff until one answers.
 * - Local health (Lifeguard): failed probes without the nacks that would prove our own link
 *   fine, refutations, and a slow event loop raise an awareness score that stretches our
 *   probe timeouts, so a node that is itself slow does not accuse healthy ones.
 *
 * Everything is counted in ticks; randomness comes from the node's PRNG; messages are
 * outputs. The node's id is what the transport authenticated: a message whose `from` is
 * not the connection's node id is dropped by the caller before it gets here.
 */

import type { Prng } from '../base/prng.js';
import type { MemberState, MemberStatus, PeerMessage, Sync } from '../codec/messages.js';
import { Broadcasts } from './broadcasts.js';
import { isLive, supersedes } from './member.js';
import type { ClusterMetadata } from './metadata.js';
import { pushPullTicks, retransmitLimit, suspicionMinTicks, type Profile } from './profile.js';
import { Suspicion } from './suspicion.js';

/** Updates piggybacked on one message: enough to spread a burst of joins, small enough for a frame. */
export const UPDATES_PER_MESSAGE_MAX = 32;

/** Indirect probes this node relays at once for others; past it ping-reqs are dropped (the asker has k others). */
export const RELAYS_MAX = 1024;

/** Protocol periods between push-pulls with a member held dead (one message; 5 s with lan). */
export const RECONNECT_PROBE_PERIODS = 10;

/** Members an administrative metadata change is pushed to at once; changes are rare and small. */
export const METADATA_PUSH_FANOUT = 16;

/** Yjs's encoding of an update with nothing in it. */
const EMPTY_UPDATE_BYTES = 2;

export type PeerTarget = { readonly node?: string; readonly addr: string };

export type MembershipOutput =
  | { readonly kind: 'send'; readonly to: PeerTarget; readonly message: PeerMessage }
  /** The node's incarnation changed; it must be durable before the node restarts. */
  | { readonly kind: 'incarnation'; readonly value: number }
  /** The metadata document changed; persist its snapshot. */
  | { readonly kind: 'metadata-changed' }
  | { readonly kind: 'event'; readonly level: 'debug' | 'info' | 'warn'; readonly msg: string; readonly fields: Readonly<Record<string, string | number | boolean>> };

export interface MembershipSelf {
  readonly id: string;
  readonly addr: string;
  readonly zone: string;
  readonly vnodes: number;
}

export interface MembershipInit {
  readonly self: MembershipSelf;
  /** The incarnation to start with: one above the last one persisted, so a restarted node is newer news. */
  readonly incarnation: number;
  /** Seed addresses (host:port); this node's own address is skipped. */
  readonly seeds: readonly string[];
  readonly profile: Profile;
  /**
   * The status this node had when it stopped, if it had become a member of the ring (`up`)
   * or was leaving it; a new node starts `joining` and becomes `up` once its data has been
   * streamed to it (`markUp`). A node that left stays out.
   */
  readonly status?: 'up' | 'leaving' | 'left';
}

export interface MembershipDeps {
  readonly prng: Prng;
  readonly metadata: ClusterMetadata;
}

export interface MemberView extends MemberState {
  /** Ticks since this node last heard from the member directly (undefined: never, or self). */
  readonly heardTicksAgo: number | undefined;
}

interface Member {
  state: MemberState;
  lastHeardTick: number | undefined;
  /** When it was declared dead (for gossip to the dead). */
  deadSinceTick: number | undefined;
}

interface Probe {
  readonly target: string;
  /** The target's incarnation when the probe started: a verdict about an older incarnation is void. */
  readonly inc: number;
  readonly seq: number;
  readonly startTick: number;
  readonly timeoutTick: number;
  readonly endTick: number;
  indirectSent: boolean;
  acked: boolean;
  nacksExpected: number;
  nacks: number;
}

interface Relay {
  readonly origin: PeerTarget;
  readonly originSeq: number;
  readonly deadlineTick: number;
}

function isUnhealthy(state: MemberState): boolean {
  return state.status !== 'left' && state.live !== 'alive';
}

export class Membership {
  private readonly prng: Prng;
  private readonly metadata: ClusterMetadata;
  private readonly profile: Profile;
  private self: MemberState;
  private readonly members = new Map<string, Member>();
  private readonly broadcasts = new Broadcasts();
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly relays = new Map<number, Relay>();
  private seeds: string[];
  private probe: Probe | undefined;
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private seq = 0;
  private now = 0;
  private awareness = 0;
  private nextProbeTick = 0;
  private nextGossipTick = 0;
  private nextPushPullTick = 0;
  private nextReconnectTick = 0;
  private joined: boolean;
  /** Whether any seed (or any member, through a push-pull reply) has answered. */
  private seedsAnswered: boolean;
  private nextJoinTick = 0;
  private joinDelayTicks: number;
  private leaveAtTick: number | undefined;
  private changes = 0;
  /** Counts members discovered and changes of a member's status or address (not of its liveness). */
  private rosterChanges = 0;
  /** Members (not left) that are suspect or dead. */
  private unhealthy = 0;

  constructor(deps: MembershipDeps, init: MembershipInit) {
    this.prng = deps.prng;
    this.metadata = deps.metadata;
    this.profile = init.profile;
    this.seeds = init.seeds.filter((s) => s !== init.self.addr);
    // A node that is its own seed (or has none) may form a cluster alone; it still reaches
    // for the other seeds, so that nodes given the same seed list end up in one cluster.
    this.joined = this.seeds.length < init.seeds.length || this.seeds.length === 0;
    this.seedsAnswered = this.seeds.length === 0;
    this.self = { ...init.self, status: init.status ?? 'joining', live: 'alive', inc: init.incarnation };
    this.joinDelayTicks = init.profile.joinRetryTicks;
    this.nextPushPullTick = this.prng.int(init.profile.pushPullIntervalTicks) + 1;
  }

  get id(): string {
    return this.self.id;
  }

  get incarnation(): number {
    return this.self.inc;
  }

  get status(): MemberStatus {
    return this.self.status;
  }

  /** Whether the node has pulled a member table from a seed (or needs none). */
  get hasJoined(): boolean {
    return this.joined;
  }

  /**
   * Whether a member of the cluster has answered (or there is no other seed to ask). A node
   * that is its own seed joins at once, so that nodes given the same seed list form one
   * cluster; but one that restarts that way must not serve data alone on a ring of itself
   * before it has heard from the others.
   */
  get hasHeardFromCluster(): boolean {
    return this.seedsAnswered;
  }

  get localHealth(): number {
    return this.awareness;
  }

  /** Every member this node knows of, itself included, sorted by id. */
  view(): MemberView[] {
    const rows: MemberView[] = [{ ...this.self, heardTicksAgo: undefined }];
    for (const member of this.members.values()) {
      rows.push({ ...member.state, heardTicksAgo: member.lastHeardTick === undefined ? undefined : this.now - member.lastHeardTick });
    }
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Counts changes to the member table (a member discovered, or news that superseded what was
   * known, this node's own state included): equal counts, equal table. Placement rebuilds its
   * ring only when it moves.
   */
  get version(): number {
    return this.changes;
  }

  /** Moves when a member is discovered or changes status or address: who is in the cluster, not who is up. */
  get rosterVersion(): number {
    return this.rosterChanges;
  }

  /** Whether every member that has not left is alive, as far as this node knows. */
  get allAlive(): boolean {
    return this.unhealthy === 0;
  }

  /** What this node believes of member `id` (itself included), or undefined if unknown. */
  member(id: string): MemberState | undefined {
    return id === this.self.id ? this.self : this.members.get(id)?.state;
  }

  /** Members that are neither dead nor left, itself included. */
  liveMembers(): MemberState[] {
    return [this.self, ...[...this.members.values()].map((m) => m.state).filter(isLive)];
  }

  // ---- inputs ----

  tick(now: number, out: MembershipOutput[]): void {
    this.now = now;
    if (!this.seedsAnswered && now >= this.nextJoinTick) this.tryJoin(out);
    this.expireRelays(out);
    this.expireSuspicions(out);
    if (this.probe && !this.probe.acked && !this.probe.indirectSent && now >= this.probe.timeoutTick) this.probeIndirectly(out);
    if (now >= this.nextProbeTick) this.startProbe(out);
    if (now >= this.nextGossipTick) this.gossip(out);
    if (now >= this.nextPushPullTick) this.pushPull(out);
    if (now >= this.nextReconnectTick) this.reconnect(out);
    if (this.leaveAtTick !== undefined && now >= this.leaveAtTick) this.finishLeave(out);
  }

  onMessage(from: string, message: PeerMessage, now: number, out: MembershipOutput[]): void {
    this.now = now;
    const member = this.members.get(from);
    if (member) member.lastHeardTick = now;
    switch (message.t) {
      case 'ping':
        this.applyAll(message.upd, from, out);
        if (message.target !== this.self.id) return; // Meant for a node that had our address before.
        return this.send(this.targetOf(from), { t: 'ack', seq: message.seq, from: this.self.id, upd: this.piggyback() }, out);
      case 'ack':
        this.applyAll(message.upd, from, out);
        return this.onAck(from, message.seq, out);
      case 'ping-req':
        this.applyAll(message.upd, from, out);
        return this.relayProbe(from, message.seq, message.target, message.addr, out);
      case 'nack':
        if (this.probe && this.probe.seq === message.seq) this.probe.nacks++;
        return;
      case 'gossip':
        return this.applyAll(message.upd, from, out);
      case 'sync':
        return this.onSync(from, message, out);
    }
  }

  /**
   * The shell could not reach a peer (a dial failed, a connection dropped). That is a hint,
   * not a verdict: it only brings the next probe of that member forward.
   */
  onUnreachable(node: string | undefined, addr: string, reason: 'unreachable' | 'self', now: number, out: MembershipOutput[]): void {
    this.now = now;
    if (reason === 'self') {
      // A seed that turned out to be this node itself.
      this.seeds = this.seeds.filter((s) => s !== addr);
      if (this.seeds.length === 0) {
        this.seedsAnswered = true;
        if (!this.joined) this.becomeJoined('no other seed', out);
      }
      return;
    }
    if (node !== undefined && this.members.has(node) && this.probe?.target !== node) {
      this.probeOrder.splice(this.probeIndex, 0, node);
      // Probe it at once only when no probe is waiting for its ack: cutting one short would
      // turn a healthy member's slightly late ack into a suspicion.
      if (this.probe === undefined || this.probe.acked) this.nextProbeTick = Math.min(this.nextProbeTick, this.now + 1);
    }
  }

  /**
   * The event loop was stalled for `ticks` (a pause, a long GC): our view is stale, so the
   * probe in flight is dropped without verdict, suspicions restart their clocks, and local
   * health worsens by half its range, so timeouts stretch until probes succeed again
   * without slowing this node's probing ninefold after every long GC.
   */
  onStall(ticks: number, now: number, out: MembershipOutput[]): void {
    this.now = now;
    this.probe = undefined;
    this.relays.clear();
    for (const [id, suspicion] of this.suspicions) {
      const member = this.members.get(id);
      if (member) this.startSuspicion(id, suspicion.incarnation, this.self.id);
    }
    this.adjustAwareness(Math.ceil(this.profile.awarenessMax / 2));
    this.nextProbeTick = now + 1;
    out.push({ kind: 'event', level: 'warn', msg: 'event loop stalled; re-probing before any verdict', fields: { ticks } });
  }

  /** Local health from the shell: event-loop lag in ticks. */
  onLoopLag(lagTicks: number): void {
    if (lagTicks > this.profile.probeTimeoutTicks / 2) this.adjustAwareness(1);
  }

  /** Starts a graceful leave: `leaving` now; `depart` once the node's data has moved to the new owners. */
  leave(out: MembershipOutput[]): void {
    if (this.self.status === 'leaving' || this.self.status === 'left') return;
    this.setSelf({ status: 'leaving' }, out);
  }

  /** A leaving node's data has moved: `left` once the news that it is leaving has had time to spread. */
  depart(): void {
    if (this.self.status !== 'leaving' || this.leaveAtTick !== undefined) return;
    this.leaveAtTick = this.now + this.profile.gossipIntervalTicks * retransmitLimit(this.profile, this.members.size + 1);
  }

  /** A joining node holds the data of its ranges: it becomes a member of the ring. */
  markUp(out: MembershipOutput[]): void {
    if (this.self.status !== 'joining') return;
    this.setSelf({ status: 'up' }, out);
    out.push({ kind: 'event', level: 'info', msg: 'up: this node now owns its ranges', fields: { inc: this.self.inc } });
  }

  /** Leaves at once, without waiting (an operator removed this node). */
  leaveNow(out: MembershipOutput[]): void {
    if (this.self.status === 'left') return;
    this.finishLeave(out);
  }

  /** Announces a change of the metadata document made at this node. */
  metadataChanged(out: MembershipOutput[]): void {
    out.push({ kind: 'metadata-changed' });
    // Push it now rather than waiting for the next push-pull: to every member of a small
    // cluster, to METADATA_PUSH_FANOUT of a large one (they push-pull it onwards).
    for (const target of this.randomMembers(METADATA_PUSH_FANOUT, (m) => isLive(m.state))) this.sendSync(target, false, undefined, out);
  }

  // ---- probing ----

  private startProbe(out: MembershipOutput[]): void {
    if (this.probe && !this.probe.acked) this.probeFailed(this.probe, out);
    else if (this.probe?.acked) this.adjustAwareness(-1);
    this.probe = undefined;
    const scale = this.awareness + 1;
    this.nextProbeTick = this.now + this.profile.probeIntervalTicks * scale;
    if (this.self.status === 'left') return;
    const target = this.nextProbeTarget();
    if (target === undefined) return;
    const seq = this.seq++;
    this.probe = {
      target: target.state.id,
      inc: target.state.inc,
      seq,
      startTick: this.now,
      timeoutTick: this.now + this.profile.probeTimeoutTicks * scale,
      endTick: this.nextProbeTick,
      indirectSent: false,
      acked: false,
      nacksExpected: 0,
      nacks: 0,
    };
    this.send(this.targetOf(target.state.id), { t: 'ping', seq, from: this.self.id, target: target.state.id, upd: this.piggyback() }, out);
  }

  private nextProbeTarget(): Member | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.probeIndex < this.probeOrder.length) {
        const member = this.members.get(this.probeOrder[this.probeIndex++] as string);
        if (member && isLive(member.state)) return member;
      }
      // A new round: SWIM's shuffled round robin bounds the time until every member is probed.
      this.probeOrder = this.prng.shuffle([...this.members.keys()].sort());
      this.probeIndex = 0;
    }
    return undefined;
  }

  private probeIndirectly(out: MembershipOutput[]): void {
    const probe = this.probe;
    if (!probe) return;
    probe.indirectSent = true;
    const target = this.members.get(probe.target);
    if (!target) return;
    const relays = this.randomMembers(this.profile.indirectChecks, (m) => m.state.id !== probe.target && m.state.live === 'alive' && m.state.status !== 'left');
    probe.nacksExpected = relays.length;
    for (const relay of relays) {
      this.send(relay, { t: 'ping-req', seq: probe.seq, from: this.self.id, target: probe.target, addr: target.state.addr, upd: this.piggyback() }, out);
    }
  }

  private probeFailed(probe: Probe, out: MembershipOutput[]): void {
    // Lifeguard: relays that did not even nack suggest the fault is ours.
    if (probe.nacks < probe.nacksExpected) this.adjustAwareness(1);
    const member = this.members.get(probe.target);
    // A member that restarted (or refuted) while the probe was out is not judged by it.
    if (!member || !isLive(member.state) || member.state.inc !== probe.inc) return;
    if (member.state.live === 'suspect') {
      // Our own failed probe is an independent confirmation; re-gossip it, signed, so others count it too.
      if (this.suspicions.get(probe.target)?.confirm(this.self.id)) this.broadcasts.push({ ...member.state, by: this.self.id });
      return;
    }
    this.applyUpdate({ ...member.state, live: 'suspect', by: this.self.id }, this.self.id, out);
  }

  private onAck(from: string, seq: number, out: MembershipOutput[]): void {
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      return this.send(relay.origin, { t: 'ack', seq: relay.originSeq, from: this.self.id, upd: this.piggyback() }, out);
    }
    const probe = this.probe;
    if (!probe || probe.seq !== seq || probe.acked) return;
    // A direct ack comes from the target; an indirect one from a relay, on the target's behalf.
    if (from !== probe.target && !probe.indirectSent) return;
    probe.acked = true;
    const target = this.members.get(probe.target);
    if (target) target.lastHeardTick = this.now;
  }

  private relayProbe(origin: string, originSeq: number, target: string, addr: string, out: MembershipOutput[]): void {
    if (this.relays.size >= RELAYS_MAX || target === this.self.id) return;
    const seq = this.seq++;
    this.relays.set(seq, { origin: this.targetOf(origin), originSeq, deadlineTick: this.now + this.profile.probeTimeoutTicks });
    this.send({ node: target, addr }, { t: 'ping', seq, from: this.self.id, target, upd: this.piggyback() }, out);
  }

  private expireRelays(out: MembershipOutput[]): void {
    for (const [seq, relay] of this.relays) {
      if (this.now < relay.deadlineTick) continue;
      this.relays.delete(seq);
      this.send(relay.origin, { t: 'nack', seq: relay.originSeq, from: this.self.id }, out);
    }
  }

  // ---- suspicion ----

  private startSuspicion(id: string, incarnation: number, suspector: string): void {
    const n = this.members.size + 1;
    const min = suspicionMinTicks(this.profile, n);
    // Confirmations to expect: the members that could independently probe it, at most k.
    const expected = Math.min(this.profile.indirectChecks, Math.max(0, n - 2));
    this.suspicions.set(id, new Suspicion(this.now, incarnation, min, min * this.profile.suspicionMaxTimeoutMult, expected, suspector));
  }

  private expireSuspicions(out: MembershipOutput[]): void {
    for (const [id, suspicion] of this.suspicions) {
      if (!suspicion.expired(this.now)) continue;
      this.suspicions.delete(id);
      const member = this.members.get(id);
      if (member && member.state.live === 'suspect' && member.state.inc === suspicion.incarnation) {
        this.applyUpdate({ ...member.state, live: 'dead' }, this.self.id, out);
      }
    }
  }

  // ---- news ----

  private applyAll(updates: readonly MemberState[], from: string, out: MembershipOutput[]): void {
    for (const update of updates) this.applyUpdate(update, from, out);
  }

  /** Merges one report about a member; re-gossips it when it was news. */
  private applyUpdate(update: MemberState, from: string, out: MembershipOutput[]): void {
    if (update.id === this.self.id) return this.aboutSelf(update, from, out);
    const member = this.members.get(update.id);
    if (member === undefined) {
      this.members.set(update.id, { state: update, lastHeardTick: undefined, deadSinceTick: update.live === 'dead' ? this.now : undefined });
      this.changes++;
      this.rosterChanges++;
      if (isUnhealthy(update)) this.unhealthy++;
      if (update.live === 'suspect') this.startSuspicion(update.id, update.inc, update.by ?? from);
      this.broadcasts.push(update);
      out.push({ kind: 'event', level: 'info', msg: 'member discovered', fields: { member: update.id, addr: update.addr, live: update.live, status: update.status, inc: update.inc } });
      return;
    }
    const current = member.state;
    if (update.live === 'suspect' && current.live === 'suspect' && update.inc === current.inc) {
      // Lifeguard counts independent suspectors, not the members that relayed one suspicion.
      if (this.suspicions.get(update.id)?.confirm(update.by ?? from)) this.broadcasts.push(update);
      return;
    }
    if (!supersedes(update, current)) return;
    member.state = update;
    this.changes++;
    if (update.status !== current.status || update.addr !== current.addr) this.rosterChanges++;
    this.unhealthy += (isUnhealthy(update) ? 1 : 0) - (isUnhealthy(current) ? 1 : 0);
    if (update.live === 'suspect' && (current.live !== 'suspect' || current.inc !== update.inc)) this.startSuspicion(update.id, update.inc, update.by ?? from);
    if (update.live !== 'suspect') this.suspicions.delete(update.id);
    member.deadSinceTick = update.live === 'dead' ? (current.live === 'dead' ? member.deadSinceTick : this.now) : undefined;
    this.broadcasts.push(update);
    if (update.live !== current.live || update.status !== current.status) {
      out.push({
        kind: 'event',
        level: update.live === 'alive' ? 'info' : 'warn',
        msg: `member ${update.live === current.live ? update.status : update.live}`,
        fields: { member: update.id, live: update.live, status: update.status, inc: update.inc, from },
      });
    }
  }

  /** Others say something about us: refute a suspicion or death, or a departure we did not make. */
  private aboutSelf(update: MemberState, from: string, out: MembershipOutput[]): void {
    // The cluster knew this node as a member of the ring, but it starts as a new one (its data
    // directory was lost with the status it kept): it is that member still, and anti-entropy
    // refills it, as it would any replica that lost data.
    if (this.self.status === 'joining' && (update.status === 'up' || update.status === 'leaving') && update.inc >= this.self.inc) {
      out.push({ kind: 'event', level: 'warn', msg: 'the cluster knows this node as up: rejoining as up', fields: { inc: update.inc, from } });
      this.setSelf({ status: 'up', inc: update.inc + 1 }, out);
      return;
    }
    const accused = update.live !== 'alive' || (update.status === 'left' && this.self.status !== 'left');
    if (!accused || update.inc < this.self.inc) return;
    this.adjustAwareness(1);
    out.push({ kind: 'event', level: 'warn', msg: 'refuting', fields: { said: update.live, status: update.status, inc: update.inc, from } });
    this.setSelf({ inc: Math.max(update.inc, this.self.inc) + 1 }, out);
  }

  /** Changes this node's own state: always under a new incarnation, persisted and gossiped. */
  private setSelf(change: { status?: MemberStatus; inc?: number }, out: MembershipOutput[]): void {
    const inc = change.inc ?? this.self.inc + 1;
    this.self = { ...this.self, status: change.status ?? this.self.status, live: 'alive', inc };
    this.changes++;
    out.push({ kind: 'incarnation', value: inc });
    this.broadcasts.push(this.self);
  }

  private finishLeave(out: MembershipOutput[]): void {
    this.leaveAtTick = undefined;
    this.setSelf({ status: 'left' }, out);
    // Tell every live member directly: a left node no longer probes or gossips on its own.
    for (const member of this.members.values()) {
      if (isLive(member.state)) this.send(this.targetOf(member.state.id), { t: 'gossip', from: this.self.id, upd: [this.self] }, out);
    }
    out.push({ kind: 'event', level: 'info', msg: 'left the cluster', fields: { inc: this.self.inc } });
  }

  // ---- gossip and push-pull ----

  private gossip(out: MembershipOutput[]): void {
    this.nextGossipTick = this.now + this.profile.gossipIntervalTicks;
    if (this.broadcasts.size === 0) return;
    const deadline = this.now - this.profile.gossipToTheDeadTicks;
    // The fanout goes to live members; one recently dead member also hears the news, so a
    // member declared dead by mistake learns it and refutes, without taking a live one's turn.
    const targets = [
      ...this.randomMembers(this.profile.gossipFanout, (m) => isLive(m.state)),
      ...this.randomMembers(1, (m) => m.state.live === 'dead' && m.state.status !== 'left' && (m.deadSinceTick ?? 0) >= deadline),
    ];
    for (const target of targets) {
      const upd = this.piggyback();
      if (upd.length === 0) return;
      this.send(target, { t: 'gossip', from: this.self.id, upd }, out);
    }
  }

  private pushPull(out: MembershipOutput[]): void {
    this.nextPushPullTick = this.now + pushPullTicks(this.profile, this.members.size + 1);
    const [target] = this.randomMembers(1, (m) => isLive(m.state));
    if (target) this.sendSync(target, false, undefined, out);
  }

  /**
   * Now and then a push-pull with one member held dead (not left), as Serf's reconnect does:
   * after a partition heals, or when a seed restarted with an empty table, nobody would
   * otherwise contact it again; the exchange tells it it was declared dead, and it refutes.
   */
  private reconnect(out: MembershipOutput[]): void {
    this.nextReconnectTick = this.now + this.profile.probeIntervalTicks * RECONNECT_PROBE_PERIODS;
    const [target] = this.randomMembers(1, (m) => m.state.live === 'dead' && m.state.status !== 'left');
    if (target) this.sendSync(target, false, undefined, out);
  }

  private tryJoin(out: MembershipOutput[]): void {
    this.nextJoinTick = this.now + this.joinDelayTicks;
    this.joinDelayTicks = Math.min(this.profile.joinRetryTicksMax, this.joinDelayTicks * 2);
    for (const addr of this.seeds) this.sendSync({ addr }, false, undefined, out);
  }

  private becomeJoined(via: string, out: MembershipOutput[]): void {
    this.joined = true;
    out.push({ kind: 'event', level: 'info', msg: 'joined', fields: { via, members: this.members.size + 1 } });
  }

  private onSync(from: string, message: Sync, out: MembershipOutput[]): void {
    this.applyAll(message.members, from, out);
    if (message.meta !== undefined) {
      const applied = this.metadata.apply(message.meta);
      if (applied === 'invalid') out.push({ kind: 'event', level: 'warn', msg: 'malformed metadata update dropped', fields: { from } });
      else if (applied) out.push({ kind: 'metadata-changed' });
    }
    if (!message.reply) {
      this.sendSync(this.targetOf(from), true, message.sv, out);
      return;
    }
    this.seedsAnswered = true;
    if (!this.joined) this.becomeJoined(from, out);
    // The other side's vector says what it lacks from us; send that (the third leg of the exchange).
    const missing = this.metadata.diff(message.sv);
    if (message.members.length > 0 && missing !== undefined && missing.byteLength > EMPTY_UPDATE_BYTES) {
      this.send(this.targetOf(from), { t: 'sync', from: this.self.id, reply: true, members: [], sv: this.metadata.stateVector(), meta: missing }, out);
    }
  }

  private sendSync(to: PeerTarget, reply: boolean, theirVector: Uint8Array | undefined, out: MembershipOutput[]): void {
    const members = [this.self, ...[...this.members.values()].map((m) => m.state)];
    const meta = theirVector === undefined ? undefined : this.metadata.diff(theirVector);
    this.send(to, { t: 'sync', from: this.self.id, reply, members, sv: this.metadata.stateVector(), ...(meta !== undefined ? { meta } : {}) }, out);
  }

  // ---- helpers ----

  private piggyback(): MemberState[] {
    return this.broadcasts.take(UPDATES_PER_MESSAGE_MAX, retransmitLimit(this.profile, this.members.size + 1));
  }

  private targetOf(id: string): PeerTarget {
    const member = this.members.get(id);
    return member ? { node: id, addr: member.state.addr } : { node: id, addr: '' };
  }

  /** Up to `count` distinct members passing `filter`, chosen by the seeded PRNG from an id-sorted list. */
  private randomMembers(count: number, filter: (m: Member) => boolean): PeerTarget[] {
    const candidates = [...this.members.values()].filter(filter).sort((a, b) => (a.state.id < b.state.id ? -1 : 1));
    return this.prng
      .shuffle(candidates)
      .slice(0, count)
      .map((m) => ({ node: m.state.id, addr: m.state.addr }));
  }

  private adjustAwareness(delta: number): void {
    this.awareness = Math.max(0, Math.min(this.profile.awarenessMax, this.awareness + delta));
  }

  private send(to: PeerTarget, message: PeerMessage, out: MembershipOutput[]): void {
    if (to.node === this.self.id) return;
    out.push({ kind: 'send', to, message });
  }
}
