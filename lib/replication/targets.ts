/**
 * Which nodes a request goes to: the key's primaries that are alive and, in a sloppy
 * quorum, a fallback in place of each primary that is not (Dynamo's sloppy quorum). A
 * fallback keeps what it receives as a hint for the primary it stands in for, and hands it
 * over once that primary is back.
 */

import type { ReplicaTarget } from './tally.js';

export interface TargetChoice {
  /** The key's primaries, in preference-list order. */
  readonly primaries: readonly string[];
  /** Healthy nodes past the primaries, in ring order. */
  readonly fallbacks: readonly string[];
  readonly alive: (id: string) => boolean;
  /** Whether fallbacks may stand in for primaries that are down. */
  readonly sloppy: boolean;
}

/** Alive primaries in order; with `sloppy`, each primary that is down is replaced by the next unused alive fallback. */
export function chooseTargets(choice: TargetChoice): ReplicaTarget[] {
  const targets: ReplicaTarget[] = [];
  let next = 0;
  for (const primary of choice.primaries) {
    if (choice.alive(primary)) {
      targets.push({ node: primary, primary: true });
      continue;
    }
    if (!choice.sloppy) continue;
    while (next < choice.fallbacks.length && !choice.alive(choice.fallbacks[next] as string)) next++;
    const fallback = choice.fallbacks[next++];
    if (fallback !== undefined) targets.push({ node: fallback, primary: false, hintFor: primary });
  }
  return targets;
}
