/**
 * A seeded schedule of faults for a simulated cluster under load (Jepsen's nemesis).
 *
 * Faults come as episodes, one after another with quiet gaps in between: a fault starts, lasts
 * a drawn number of ticks, and is undone (a crashed node restarts from its durable disk, a
 * paused one resumes, a partition heals). Episodes are drawn when they start, from the
 * schedule's own PRNG, among the kinds the scenario allows:
 *
 * - `crash`: kill -9 one node (its connections reset), restart it when the episode ends;
 * - `crash-two`: the same for two nodes at once (with n=3 some keys lose two replicas);
 * - `silent-crash`: one node vanishes without its connections closing (power, cable);
 * - `pause`: SIGSTOP one node, SIGCONT when the episode ends;
 * - `partition`: two random sides that cannot hear each other;
 * - `one-way`: one node's messages to another are dropped, the other way flows;
 * - `wipe`: kill one node, delete its data, restart it as a new storage epoch (at most once).
 *
 * Background faults hold for the whole run: message loss, duplication, and delays wide
 * enough to reorder messages. `finish` undoes whatever is in force, so that the checkers
 * look at a healed cluster with every node running.
 */

import type { Prng } from '../base/prng.js';
import type { SimCluster } from './cluster.js';

export const FAULT_KINDS = ['crash', 'crash-two', 'silent-crash', 'pause', 'partition', 'one-way', 'wipe'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultOptions {
  readonly kinds: readonly FaultKind[];
  /** Ticks an episode lasts; some shorter than the suspicion timeout, some far longer. */
  readonly episodeTicksMin: number;
  readonly episodeTicksMax: number;
  /** Quiet ticks between episodes. */
  readonly gapTicksMin: number;
  readonly gapTicksMax: number;
  /** Message loss for the whole run, drawn in [min, max]. */
  readonly lossMin: number;
  readonly lossMax: number;
  /** Probability that a message is delivered twice. */
  readonly duplication: number;
  /** Network delay while faults run: a wide range reorders messages. */
  readonly delayTicksMax: number;
  /** The kind of the first episode, when it must happen in every run; then drawn among `kinds`. */
  readonly opening: FaultKind | undefined;
}

export const FAULT_DEFAULTS: FaultOptions = {
  kinds: ['crash', 'crash-two', 'silent-crash', 'pause', 'partition', 'one-way'],
  episodeTicksMin: 50,
  episodeTicksMax: 900,
  gapTicksMin: 50,
  gapTicksMax: 400,
  lossMin: 0.01,
  lossMax: 0.05,
  duplication: 0.02,
  delayTicksMax: 6,
  opening: undefined,
};

interface Episode {
  readonly kind: FaultKind;
  readonly nodes: readonly string[];
  readonly endTick: number;
}

export class FaultSchedule {
  readonly options: FaultOptions;
  /** Episodes started, by kind. */
  readonly counts = new Map<FaultKind, number>();
  readonly loss: number;
  private readonly cluster: SimCluster;
  private readonly prng: Prng;
  /** The network's settings before the faults, restored by `finish`. */
  private readonly calm: { readonly duplication: number; readonly delayTicksMin: number; readonly delayTicksMax: number };
  private episode: Episode | undefined;
  private nextTick: number;
  private wiped = false;

  constructor(deps: { readonly cluster: SimCluster; readonly prng: Prng }, options: Partial<FaultOptions> = {}) {
    this.cluster = deps.cluster;
    this.prng = deps.prng;
    this.options = { ...FAULT_DEFAULTS, ...options };
    const { lossMin, lossMax } = this.options;
    this.loss = lossMin + this.prng.next() * (lossMax - lossMin);
    const { duplication, delayTicksMin, delayTicksMax } = this.cluster.network.settings;
    this.calm = { duplication, delayTicksMin, delayTicksMax };
    this.nextTick = this.cluster.now + this.gap();
  }

  /** Turns on the background faults. */
  begin(): void {
    const { duplication, delayTicksMax } = this.options;
    this.cluster.network.configure({ duplication, delayTicksMax: Math.max(delayTicksMax, this.calm.delayTicksMin) });
    this.cluster.setLoss(this.loss);
  }

  /** One tick: ends the episode that is due, or starts the next one. */
  step(): void {
    const now = this.cluster.now;
    if (this.episode !== undefined) {
      if (now >= this.episode.endTick) this.end(this.episode);
      return;
    }
    if (now >= this.nextTick) this.start(now);
  }

  /** Undoes everything: the current episode, loss, duplication, wide delays; restarts every node that is down. */
  finish(): void {
    if (this.episode !== undefined) this.end(this.episode);
    this.cluster.heal();
    this.cluster.network.configure({ duplication: this.calm.duplication, delayTicksMax: this.calm.delayTicksMax });
    this.cluster.setLoss(0);
    for (const node of this.cluster.nodes) {
      if (node.state === 'paused') this.cluster.resume(node.id);
      else if (node.state === 'down') this.cluster.start(node.id);
    }
  }

  /** Episodes started in all. */
  get total(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }

  private start(now: number): void {
    const kinds = this.options.kinds.filter((kind) => kind !== 'wipe' || !this.wiped);
    const opening = this.total === 0 ? this.options.opening : undefined;
    if (kinds.length === 0 && opening === undefined) return;
    const kind = opening ?? this.prng.pick(kinds);
    const length = this.options.episodeTicksMin + this.prng.int(this.options.episodeTicksMax - this.options.episodeTicksMin + 1);
    const nodes = this.victims(kind);
    if (nodes === undefined) {
      // Too few nodes running for this kind now; try again after a gap.
      this.nextTick = now + this.gap();
      return;
    }
    this.apply(kind, nodes);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    this.episode = { kind, nodes, endTick: now + length };
  }

  /** The nodes an episode of `kind` strikes, drawn among those running; undefined when too few run. */
  private victims(kind: FaultKind): string[] | undefined {
    if (kind === 'partition') return this.prng.shuffle(this.cluster.nodes.map((node) => node.id));
    const needed = kind === 'crash-two' || kind === 'one-way' ? 2 : 1;
    const up = this.cluster.nodes.filter((node) => node.state === 'up').map((node) => node.id);
    const victims = this.prng.shuffle(up).slice(0, needed);
    return victims.length === needed ? victims : undefined;
  }

  private apply(kind: FaultKind, nodes: readonly string[]): void {
    switch (kind) {
      case 'crash':
      case 'crash-two':
        for (const id of nodes) this.cluster.crash(id);
        return;
      case 'silent-crash':
        for (const id of nodes) this.cluster.crash(id, { silent: true });
        return;
      case 'wipe':
        for (const id of nodes) {
          this.cluster.crash(id);
          this.cluster.wipe(id);
        }
        this.wiped = true;
        return;
      case 'pause':
        for (const id of nodes) this.cluster.pause(id);
        return;
      case 'one-way':
        this.cluster.block(nodes[0] as string, nodes[1] as string);
        return;
      case 'partition': {
        // Two sides of at least one node each, from the shuffled list.
        const cut = 1 + this.prng.int(nodes.length - 1);
        this.cluster.partition([nodes.slice(0, cut).toSorted(), nodes.slice(cut).toSorted()]);
        return;
      }
    }
  }

  private end(episode: Episode): void {
    this.episode = undefined;
    this.nextTick = this.cluster.now + this.gap();
    switch (episode.kind) {
      case 'crash':
      case 'crash-two':
      case 'silent-crash':
      case 'wipe':
        for (const id of episode.nodes) if (this.cluster.node(id).state === 'down') this.cluster.start(id);
        return;
      case 'pause':
        for (const id of episode.nodes) if (this.cluster.node(id).state === 'paused') this.cluster.resume(id);
        return;
      case 'partition':
      case 'one-way':
        this.cluster.heal();
        return;
    }
  }

  private gap(): number {
    const { gapTicksMin: min, gapTicksMax: max } = this.options;
    return min + this.prng.int(max - min + 1);
  }
}
