/**
 * A quorum tally: replica answers in, a decision out.
 *
 * As in riak_kv's split of `get_core` (a pure tally) from `get_fsm` (the I/O), the tally
 * knows nothing of sockets or timers. It counts acknowledgements from the replicas a
 * request was sent to, and decides as soon as the outcome is certain: `met` once `required`
 * replicas (of which `primariesRequired` primaries) acknowledged, `failed` once so many
 * replicas failed that the quorum can no longer be reached. Duplicate answers from the same
 * replica are ignored, so a retransmitted ack cannot count twice.
 */

import { assert } from '../base/assert.js';

export interface QuorumSpec {
  /** Acknowledgements needed (w or r). */
  readonly required: number;
  /** Of those, acknowledgements needed from primary replicas (pw or pr). */
  readonly primariesRequired: number;
}

export interface ReplicaTarget {
  readonly node: string;
  readonly primary: boolean;
  /** For a fallback: the primary it stands in for, whose hint it keeps. */
  readonly hintFor?: string;
}

export type TallyOutcome = 'pending' | 'met' | 'failed';

export class Tally {
  readonly spec: QuorumSpec;
  /** The targets, and whether each has answered: a handful, so scanned rather than hashed. */
  private readonly targets: readonly ReplicaTarget[];
  private readonly answered: boolean[];
  private answers = 0;
  private acks = 0;
  private primariesAcked = 0;
  /** Targets that have not answered yet, and how many of them are primaries. */
  private open: number;
  private primariesOpen = 0;

  constructor(spec: QuorumSpec, targets: readonly ReplicaTarget[]) {
    assert(spec.required >= 1, 'a quorum needs at least one acknowledgement');
    assert(spec.primariesRequired <= spec.required, 'primaries required exceed required');
    this.spec = spec;
    this.targets = targets;
    this.answered = new Array<boolean>(targets.length).fill(false);
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i] as ReplicaTarget;
      for (let j = 0; j < i; j++) assert((targets[j] as ReplicaTarget).node !== target.node, 'replica targets must be distinct nodes');
      if (target.primary) this.primariesOpen++;
    }
    this.open = targets.length;
  }

  get received(): number {
    return this.acks;
  }

  get failures(): number {
    return this.answers - this.acks;
  }

  /** Records a success from `node`; answers from nodes not targeted, or repeated, change nothing. */
  ack(node: string): TallyOutcome {
    const target = this.answer(node);
    if (target) {
      this.acks++;
      if (target.primary) this.primariesAcked++;
    }
    return this.outcome;
  }

  /** Records that `node` cannot answer (error, lost, refused). */
  fail(node: string): TallyOutcome {
    this.answer(node);
    return this.outcome;
  }

  get outcome(): TallyOutcome {
    if (this.acks >= this.spec.required && this.primariesAcked >= this.spec.primariesRequired) return 'met';
    if (this.acks + this.open < this.spec.required || this.primariesAcked + this.primariesOpen < this.spec.primariesRequired) return 'failed';
    return 'pending';
  }

  /** Marks `node` as answered; returns its target the first time, undefined otherwise. */
  private answer(node: string): ReplicaTarget | undefined {
    for (let i = 0; i < this.targets.length; i++) {
      const target = this.targets[i] as ReplicaTarget;
      if (target.node !== node) continue;
      if (this.answered[i] === true) return undefined;
      this.answered[i] = true;
      this.answers++;
      this.open--;
      if (target.primary) this.primariesOpen--;
      return target;
    }
    return undefined;
  }
}

/**
 * Checks, before anything is sent, that a quorum is possible at all with the replicas that
 * are alive; returns undefined when it is, or the shortfall the UNAVAILABLE error reports.
 */
export function quorumShortfall(
  spec: QuorumSpec,
  targets: readonly ReplicaTarget[],
): { readonly required: number; readonly alive: number; readonly primariesRequired: number; readonly primariesAlive: number } | undefined {
  const primariesAlive = targets.filter((t) => t.primary).length;
  if (targets.length >= spec.required && primariesAlive >= spec.primariesRequired) return undefined;
  return { required: spec.required, alive: targets.length, primariesRequired: spec.primariesRequired, primariesAlive };
}
