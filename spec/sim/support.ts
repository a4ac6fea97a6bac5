/**
 * Shared pieces of the simulation specs: which seeds to run, running a scenario over them,
 * and printing what was measured with the command that replays any one run.
 *
 * Seeds are a fixed list, so a run of the suite is reproducible; `SEED=n` adds one more (a
 * seed found elsewhere becomes a regression case by adding it to the list).
 */

import { replayCommand } from '../../lib/sim/checkers.js';
import { runScenario, type Measurements } from '../../lib/sim/scenarios.js';
import { SCENARIOS } from '../../lib/sim/scenarios.js';
import { mean, percentile, round } from '../../lib/sim/stats.js';

/** Seeds 1…count, plus $SEED when it is set. */
export function seeds(count: number): number[] {
  const list = Array.from({ length: count }, (_, i) => i + 1);
  const extra = process.env.SEED;
  if (extra !== undefined && extra !== '') {
    const seed = Number(extra);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`SEED must be a non-negative integer, got "${extra}"`);
    if (!list.includes(seed)) list.push(seed);
  }
  return list;
}

export interface Sample {
  readonly seed: number;
  readonly measurements: Measurements;
}

/** Runs `scenario` at `nodes` nodes once per seed; a failing run throws with its replay command. */
export function sample(scenario: string, nodes: number, seedList: readonly number[]): Sample[] {
  return seedList.map((seed) => ({ seed, measurements: runScenario(scenario, { seed, nodes }).measurements }));
}

/** The replay command of one run. */
export function replay(scenario: string, seed: number, nodes: number): string {
  const defaultNodes = SCENARIOS.get(scenario)?.nodes ?? nodes;
  return replayCommand({ scenario, seed, nodes, defaultNodes });
}

/** One measurement over the samples, with the seed of its largest value. */
export interface Figure {
  readonly values: readonly number[];
  readonly mean: number;
  readonly median: number;
  readonly p99: number;
  readonly max: number;
  readonly worstSeed: number;
}

export function figure(samples: readonly Sample[], name: string): Figure {
  const values = samples.map((s) => {
    const value = s.measurements[name];
    if (typeof value !== 'number') throw new Error(`seed ${s.seed} did not measure ${name}`);
    return value;
  });
  const max = Math.max(...values);
  const worst = samples[values.indexOf(max)] as Sample;
  return { values, mean: round(mean(values)), median: percentile(values, 50), p99: percentile(values, 99), max, worstSeed: worst.seed };
}

/** Prints a line for the spec output: what was measured, over which seeds, and how to replay the worst. */
export function report(label: string, scenario: string, nodes: number, samples: readonly Sample[], text: string, worstSeed?: number): void {
  const list = samples.map((s) => s.seed);
  const range = list.length > 3 && list.every((s, i) => i === 0 || s === (list[i - 1] as number) + 1) ? `${list[0]}..${list.at(-1)}` : list.join(',');
  const worst = worstSeed === undefined ? '' : `; worst: ${replay(scenario, worstSeed, nodes)}`;
  console.log(`      ${label}, n=${nodes}, seeds ${range}: ${text}${worst}`);
}
