/**
 * The nemesis: a seeded schedule of faults played against the real nodes (Jepsen's nemesis).
 *
 * The schedule is drawn entirely from the seed before the run starts: a list of episodes,
 * each a quiet gap, then one fault that holds for a drawn time and is undone. Kinds come in
 * shuffled rounds of the enabled kinds, so a run long enough for one round meets every kind:
 *
 * - `kill`: SIGKILL a minority of the nodes; restart them on the same data directories when
 *   the episode ends.
 * - `pause`: SIGSTOP one node; SIGCONT when the episode ends. Some pauses outlast the clients'
 *   request timeout and the failure detectors' suspicion timeout, some do not.
 * - `partition`: cut the nodes into a minority and a majority side with DROP rules between
 *   their addresses (netns.ts). After the cut, the nodes' `/status` must show that every node
 *   sees every node across the cut as suspect or dead; a partition nobody noticed is recorded
 *   as unverified, and the run's nemesis check fails, since a rule that matched nothing tests
 *   nothing.
 * - `wipe`: SIGKILL one node, delete its data directory, restart it empty under the same id
 *   when the episode ends. At most once per run: writes are acknowledged at w = quorum, two
 *   copies, and until anti-entropy exists a second wipe can legitimately destroy both copies of
 *   a write before anything copied it further, which says nothing about the code.
 * - `skew`: stop one node with SIGTERM and restart it on the same data directory under
 *   libfaketime, its wall clock off by a drawn offset (from −3 d to +7 d, skew.ts) while its
 *   monotonic clocks stay true; when the episode ends, stop it again and restart it on the
 *   true clock. SIGTERM rather than SIGKILL: a clean stop keeps the node's storage epoch, so
 *   the only thing that differs from before is the clock (`kill` already covers crashes and
 *   the new epoch that follows them). The skew must show in the `Date` header of the node's
 *   `/status` against this process's clock, and be gone after the episode; a skew that was not
 *   seen, or not undone, fails the nemesis check like an unnoticed partition.
 *
 * Before each episode the nemesis waits (a bounded time) for every node to see every other
 * alive, so each fault starts from a healthy cluster and a partition's verification cannot be
 * satisfied by a node still marked dead from the last episode. Times are milliseconds since
 * the start of the run; the schedule, not the wall-clock timing, is what `--seed` repeats.
 */

import { Prng } from '../../lib/base/prng.js';
import { poll, sleep, type ChaosCluster, type ChaosNode, type ClockReading, type Skew } from './cluster.js';
import type { Firewall } from './netns.js';
import type { FaultKind } from './options.js';
import { offsetText, SKEW_OFFSETS_S, SKEW_SLACK_MS, skewText } from './skew.js';

/** Drawn durations (ms) of each kind of episode, and of the quiet gaps between them. */
const EPISODE_MS: Readonly<Record<FaultKind, readonly [number, number]>> = {
  kill: [3000, 8000],
  pause: [1500, 9000],
  partition: [5000, 12000],
  wipe: [3000, 6000],
  skew: [6000, 14000],
};
const GAP_MS: readonly [number, number] = [2000, 5000];
/** The first episode waits a little longer, so the load runs against a healthy cluster first. */
const FIRST_GAP_MS: readonly [number, number] = [3000, 5000];
/** How long to wait for a healthy cluster before an episode, and for a cut to be seen. */
const HEALTHY_WAIT_MS = 15_000;
const CUT_SEEN_WAIT_MS = 15_000;
/** How long a restarted node's `/status` may take to answer with a `Date` to compare. */
const CLOCK_READ_WAIT_MS = 5000;
/** A note that fails the nemesis check: a skew episode left its node's clock wrong. */
export const SKEW_NOT_UNDONE = 'clock not restored';
/** An episode that could not last this long before the load ends is not started. */
const EPISODE_MS_MIN = 1000;
/**
 * The share of the load time the first round of episodes (one of each enabled kind) may take,
 * drawn gaps and durations included; the rest leaves room for the waits for a healthy cluster
 * before each episode, which the schedule cannot know in advance.
 */
const FIRST_ROUND_SHARE = 0.6;

export interface PlannedEpisode {
  readonly index: number;
  readonly kind: FaultKind;
  /** Node ids the fault acts on: killed, paused, wiped, skewed, or the minority side of a partition. */
  readonly targets: readonly string[];
  readonly gapMs: number;
  readonly durationMs: number;
  /** For a skew: how many seconds the target's wall clock runs ahead (or, negative, behind). */
  readonly skewS?: number;
}

export interface Episode extends PlannedEpisode {
  startMs: number;
  /** When the fault was undone (a restart begins, SIGCONT, the rules are removed). */
  endMs: number | undefined;
  /** When the nodes it touched serve again (a restarted node is ready). */
  recoveredMs: number | undefined;
  /**
   * For a partition: whether, and how soon, the failure detectors saw the cut. For a skew:
   * whether, and how soon, the restarted node's clock was seen off by the drawn offset.
   */
  seenAfterMs: number | undefined;
  verified: boolean | undefined;
  /** For a skew: the target's clock minus ours, measured while skewed and after the restart on the true clock. */
  clockSkewMs: number | undefined;
  clockRestoredMs: number | undefined;
  /** For a partition: rules installed and packets they dropped. */
  rules: number | undefined;
  droppedPackets: number | undefined;
  readonly notes: string[];
}

/** The whole schedule for a run of `durationMs`, from the seed alone. */
export function planSchedule(prng: Prng, kinds: readonly FaultKind[], nodeIds: readonly string[], durationMs: number): PlannedEpisode[] {
  const plan: PlannedEpisode[] = [];
  if (kinds.length === 0) return plan;
  let round: FaultKind[] = [];
  let wiped = false;
  let elapsed = 0;
  for (let index = 0; elapsed < durationMs; index++) {
    if (round.length === 0) round = prng.shuffle(kinds.filter((kind) => kind !== 'wipe' || !wiped));
    if (round.length === 0) break;
    const kind = round.shift() as FaultKind;
    if (kind === 'wipe') wiped = true;
    const gapMs = between(prng, index === 0 ? FIRST_GAP_MS : GAP_MS);
    const durationMsDrawn = between(prng, EPISODE_MS[kind]);
    const targets = targetsFor(prng, kind, nodeIds);
    // Drawn only for a skew, so that schedules without one stay what their seeds made them before.
    const skew = kind === 'skew' ? { skewS: prng.pick(SKEW_OFFSETS_S) } : {};
    plan.push({ index, kind, targets, gapMs, durationMs: durationMsDrawn, ...skew });
    elapsed += gapMs + durationMsDrawn;
  }
  return fitFirstRound(plan, kinds.length, durationMs);
}

/**
 * Shrinks the first round (one episode of each kind) proportionally when it would not fit in
 * FIRST_ROUND_SHARE of the run, so that a short run still meets every enabled kind, each for
 * at least EPISODE_MS_MIN. Later episodes keep their drawn times.
 */
function fitFirstRound(plan: readonly PlannedEpisode[], kinds: number, durationMs: number): PlannedEpisode[] {
  const first = plan.slice(0, kinds);
  const total = first.reduce((sum, e) => sum + e.gapMs + e.durationMs, 0);
  const budget = durationMs * FIRST_ROUND_SHARE;
  if (total <= budget) return [...plan];
  const scale = budget / total;
  const fitted = first.map((e) => ({ ...e, gapMs: Math.round(e.gapMs * scale), durationMs: Math.max(EPISODE_MS_MIN, Math.round(e.durationMs * scale)) }));
  return [...fitted, ...plan.slice(kinds)];
}

function between(prng: Prng, [min, max]: readonly [number, number]): number {
  return min + prng.int(max - min + 1);
}

function targetsFor(prng: Prng, kind: FaultKind, nodeIds: readonly string[]): string[] {
  const shuffled = prng.shuffle(nodeIds);
  const minority = Math.max(1, Math.floor((nodeIds.length - 1) / 2));
  switch (kind) {
    case 'kill':
      return shuffled.slice(0, 1 + prng.int(minority)).sort();
    case 'partition':
      return shuffled.slice(0, 1 + prng.int(Math.max(1, Math.floor(nodeIds.length / 2)))).sort();
    case 'pause':
    case 'wipe':
    case 'skew':
      return shuffled.slice(0, 1);
  }
}

export interface NemesisDeps {
  readonly cluster: ChaosCluster;
  readonly firewall: Firewall | undefined;
  /** libfaketime, for skew episodes. */
  readonly faketime: string | undefined;
  readonly now: () => number;
  readonly say: (line: string) => void;
}

export class Nemesis {
  readonly episodes: Episode[] = [];
  private readonly deps: NemesisDeps;
  private readonly plan: readonly PlannedEpisode[];
  private active: Episode | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(deps: NemesisDeps, plan: readonly PlannedEpisode[]) {
    this.deps = deps;
    this.plan = plan;
  }

  /** Plays the schedule until `untilMs`, then undoes whatever is in force. */
  async run(untilMs: number): Promise<void> {
    const { now } = this.deps;
    for (const planned of this.plan) {
      await this.wait(planned.gapMs, untilMs);
      if (this.stopping || now() + EPISODE_MS_MIN > untilMs) break;
      const healthy = await this.waitHealthy(Math.min(HEALTHY_WAIT_MS, untilMs - now()));
      if (this.stopping || now() + EPISODE_MS_MIN > untilMs) break;
      const episode: Episode = { ...planned, startMs: now(), endMs: undefined, recoveredMs: undefined, seenAfterMs: undefined, verified: undefined, clockSkewMs: undefined, clockRestoredMs: undefined, rules: undefined, droppedPackets: undefined, notes: [] };
      if (!healthy) episode.notes.push('started before every node saw every other alive');
      this.episodes.push(episode);
      this.active = episode;
      try {
        await this.begin(episode);
        await this.wait(episode.startMs + episode.durationMs - now(), untilMs);
      } finally {
        await this.end(episode);
        this.active = undefined;
      }
    }
  }

  /** Ends the current gap or episode early; `run` then undoes what is in force and returns. */
  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  /** Undoes every fault, whatever the schedule did: for the end of a run and for errors. */
  async healAll(): Promise<void> {
    if (this.active !== undefined) await this.end(this.active);
    this.deps.firewall?.heal();
    const { cluster } = this.deps;
    for (const node of cluster.nodes) cluster.resume(node);
    const down = cluster.nodes.filter((node) => node.state === 'killed');
    for (const node of down) cluster.spawn(node);
    await Promise.all(down.map((node) => cluster.waitReady(node).catch(() => undefined)));
  }

  private async wait(ms: number, untilMs: number): Promise<void> {
    const waitMs = Math.min(ms, untilMs - this.deps.now());
    if (waitMs <= 0 || this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
    this.wake = undefined;
  }

  /** Whether every running node sees every node alive (within `timeoutMs`). */
  private async waitHealthy(timeoutMs: number): Promise<boolean> {
    const { cluster } = this.deps;
    const ids = cluster.nodes.map((node) => node.id);
    const healthy = await poll(
      async () => {
        const statuses = await Promise.all(cluster.nodes.map((node) => cluster.status(node)));
        const ok = statuses.every((status) => status !== undefined && ids.every((id) => status.members.some((m) => m.id === id && m.live === 'alive')));
        return ok ? true : undefined;
      },
      Math.max(0, timeoutMs),
      200,
      () => this.stopping,
    );
    return healthy === true;
  }

  private async begin(episode: Episode): Promise<void> {
    const { cluster, say } = this.deps;
    const targets = episode.targets.map((id) => cluster.node(id));
    switch (episode.kind) {
      case 'kill':
      case 'wipe':
        await Promise.all(targets.map((node) => cluster.kill(node)));
        if (episode.kind === 'wipe') for (const node of targets) cluster.wipe(node);
        say(`${at(episode.startMs)} ${episode.kind} ${episode.targets.join(',')} for ${seconds(episode.durationMs)}`);
        return;
      case 'pause':
        for (const node of targets) cluster.pause(node);
        say(`${at(episode.startMs)} pause ${episode.targets.join(',')} for ${seconds(episode.durationMs)}`);
        return;
      case 'partition':
        return this.cut(episode, targets);
      case 'skew':
        return this.skew(episode, targets);
    }
  }

  /** Restarts the target with its wall clock off by the drawn offset, and checks that it is. */
  private async skew(episode: Episode, targets: readonly ChaosNode[]): Promise<void> {
    const { faketime, now, say } = this.deps;
    if (faketime === undefined) throw new Error('a skew was scheduled without libfaketime');
    const offsetS = episode.skewS ?? 0;
    const wantMs = offsetS * 1000;
    for (const node of targets) {
      const reading = await this.restart(episode, node, { library: faketime, offsetS });
      episode.clockSkewMs = reading?.skewMs;
      episode.verified = reading !== undefined && Math.abs(reading.skewMs - wantMs) <= reading.uncertaintyMs + SKEW_SLACK_MS;
      if (episode.verified) episode.seenAfterMs = now() - episode.startMs;
      else episode.notes.push(reading === undefined ? `${node.id}'s clock could not be read after the skewed restart` : `${node.id}'s clock is ${skewText(reading.skewMs)} off ours, not ${offsetText(offsetS)}`);
    }
    const seen = episode.verified === true ? `clock seen ${skewText(episode.clockSkewMs ?? 0)} off after ${seconds(episode.seenAfterMs ?? 0)}` : 'skew NOT seen';
    say(`${at(episode.startMs)} skew ${episode.targets.join(',')} ${offsetText(offsetS)} for ${seconds(episode.durationMs)}: ${seen}`);
  }

  /**
   * Stops the node cleanly and starts it again on its data directory (skewed or not); resolves
   * with its clock once it serves, or undefined (with a note) when it does not.
   */
  private async restart(episode: Episode, node: ChaosNode, skew: Skew | undefined): Promise<ClockReading | undefined> {
    const { cluster } = this.deps;
    const before = await cluster.clock(node);
    const stopped = await cluster.stop(node);
    if (stopped !== undefined && !stopped.clean) episode.notes.push(`${node.id} did not stop on SIGTERM in time and was killed`);
    if (node.state === 'killed') cluster.spawn(node, skew);
    try {
      await cluster.waitReady(node);
    } catch (error) {
      episode.notes.push(`restart failed: ${String(error)}`);
      return undefined;
    }
    const reading = await poll(() => cluster.clock(node), CLOCK_READ_WAIT_MS, 200, () => this.stopping);
    if (before?.actor !== undefined && reading?.actor !== undefined && before.actor !== reading.actor) {
      episode.notes.push(`${node.id} came back under a new epoch (${before.actor} → ${reading.actor})`);
    }
    return reading;
  }

  private async cut(episode: Episode, minority: readonly ChaosNode[]): Promise<void> {
    const { cluster, firewall, now, say } = this.deps;
    if (firewall === undefined) throw new Error('a partition was scheduled without a firewall');
    const majority = cluster.nodes.filter((node) => !minority.includes(node));
    episode.rules = firewall.cut([minority.map((n) => n.host), majority.map((n) => n.host)]);
    const sides = `${minority.map((n) => n.id).join(',')} | ${majority.map((n) => n.id).join(',')}`;
    const seen = await poll(
      async () => {
        const statuses = await Promise.all(cluster.nodes.map(async (node) => ({ node, status: await cluster.status(node) })));
        const all = statuses.every(({ node, status }) => {
          if (status === undefined) return false;
          const across = minority.includes(node) ? majority : minority;
          return across.every((other) => status.members.some((m) => m.id === other.id && m.live !== 'alive'));
        });
        return all ? true : undefined;
      },
      CUT_SEEN_WAIT_MS,
      100,
      () => this.stopping,
    );
    episode.verified = seen === true;
    if (seen === true) episode.seenAfterMs = now() - episode.startMs;
    else episode.notes.push(`the failure detectors did not see the cut within ${seconds(CUT_SEEN_WAIT_MS)}`);
    say(`${at(episode.startMs)} partition ${sides} for ${seconds(episode.durationMs)}: ${seen === true ? `seen by every node after ${seconds(episode.seenAfterMs ?? 0)}` : 'NOT seen by the failure detectors'}`);
  }

  /** Undoes the episode's fault (once) and waits for the nodes it touched to serve again. */
  private async end(episode: Episode): Promise<void> {
    if (episode.endMs !== undefined) return;
    const { cluster, firewall, now, say } = this.deps;
    episode.endMs = now();
    const targets = episode.targets.map((id) => cluster.node(id));
    switch (episode.kind) {
      case 'kill':
      case 'wipe': {
        for (const node of targets) if (node.state === 'killed') cluster.spawn(node);
        const results = await Promise.allSettled(targets.map((node) => cluster.waitReady(node)));
        for (const result of results) if (result.status === 'rejected') episode.notes.push(`restart failed: ${String(result.reason)}`);
        break;
      }
      case 'pause':
        for (const node of targets) cluster.resume(node);
        break;
      case 'skew':
        for (const node of targets) {
          const reading = await this.restart(episode, node, undefined);
          episode.clockRestoredMs = reading?.skewMs;
          if (reading === undefined) episode.notes.push(`${SKEW_NOT_UNDONE}: ${node.id}'s clock could not be read after the restart on the true clock`);
          else if (Math.abs(reading.skewMs) > reading.uncertaintyMs + SKEW_SLACK_MS) episode.notes.push(`${SKEW_NOT_UNDONE}: ${node.id} is still ${skewText(reading.skewMs)} off`);
        }
        break;
      case 'partition': {
        const counters = firewall?.counters();
        firewall?.heal();
        episode.droppedPackets = counters?.packets;
        if (counters !== undefined && counters.packets === 0) episode.notes.push('the rules dropped no packet');
        break;
      }
    }
    episode.recoveredMs = now();
    const dropped = episode.droppedPackets === undefined ? '' : `, ${episode.droppedPackets} packets dropped`;
    const ready = episode.kind === 'kill' || episode.kind === 'wipe' || episode.kind === 'skew' ? ` (ready after ${seconds(episode.recoveredMs - episode.endMs)})` : '';
    const clock = episode.kind === 'skew' && episode.clockRestoredMs !== undefined ? `, clock ${skewText(episode.clockRestoredMs)} off ours` : '';
    say(`${at(episode.endMs)} healed ${episode.kind} ${episode.targets.join(',')}${ready}${clock}${dropped}`);
  }
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function at(ms: number): string {
  return `t=${(ms / 1000).toFixed(1)}s`;
}
