/**
 * Gossip convergence benchmark, on the simulator (no processes): clusters of 5 to 500 real
 * node cores with the `lan` profile at tickMs 10, on a network with 1–3 ticks of delay.
 *
 * Per cluster size, over several seeds:
 * - bootstrap: every node starts at once with the first node as its seed; protocol periods
 *   until every node holds the same member table;
 * - join: a new node joins a converged cluster at rest; periods until every node holds the
 *   same table again (the new node in it, as it sees itself);
 * - change: a node is asked to leave (a status change under a new incarnation); periods
 *   until every node holds the same table again;
 * - gossip bytes: everything the membership protocol sends, encoded with the wire codec, per
 *   node per simulated second, over whole push-pull intervals of the converged cluster at rest.
 *
 * Each run is the `gossip` scenario, so any one replays alone with `npm run sim`. Times print
 * as median and p99 (nearest rank: the worst seed when there are fewer than 100). Past 100
 * nodes convergence is checked every n/50 ticks rather than every tick (the resolution is
 * printed) and messages are not decoded on delivery (bytes are still counted).
 *
 * Usage: npm run bench:gossip -- [--sizes 5,20,100,200,500] [--seeds N] [--seed FIRST]
 */

import { parseArgs } from 'node:util';
import { runScenario } from '../../lib/sim/scenarios.js';
import { median, percentile, round } from '../../lib/sim/stats.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,20,100,200,500' },
    seeds: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});

const SIZES = (values.sizes ?? '').split(',').map(Number);
const FIRST_SEED = Number(values.seed);

/** Seeds per size unless --seeds says: the large clusters cost tens of seconds each. */
function seedCount(nodes: number): number {
  if (values.seeds !== undefined) return Number(values.seeds);
  if (nodes <= 20) return 10;
  if (nodes <= 100) return 5;
  if (nodes <= 200) return 3;
  return 2;
}

function numbers(runs: readonly Record<string, unknown>[], name: string): number[] {
  return runs.map((run) => run[name] as number);
}

function summary(values: readonly number[]): string {
  return `${round(median(values)).toFixed(2).padStart(6)} ${round(percentile(values, 99)).toFixed(2).padStart(6)}`;
}

console.log('gossip convergence on the simulator: lan profile, tickMs 10, a period = one probe interval (500 ms)');
console.log('periods to converge as median p99; gossip B/s = membership bytes each node sends per simulated second, at rest\n');
console.log(
  `${'nodes'.padStart(5)}  ${'seeds'.padEnd(9)}  ${'bound'.padStart(5)}  ${'bootstrap'.padStart(13)}  ${'join'.padStart(13)}  ${'change'.padStart(13)}  ${'gossip B/s'.padStart(10)}  ${'msgs/s'.padStart(6)}  ${'res'.padStart(5)}  wall`,
);
const startedMs = performance.now();
for (const nodes of SIZES) {
  const seedList = Array.from({ length: seedCount(nodes) }, (_, i) => FIRST_SEED + i);
  const runStartedMs = performance.now();
  const runs = seedList.map((seed) => runScenario('gossip', { seed, nodes }).measurements);
  const resolution = Math.max(1, nodes <= 100 ? 1 : Math.floor(nodes / 50)) / 50;
  console.log(
    [
      String(nodes).padStart(5),
      `${seedList[0]}..${seedList.at(-1)}`.padEnd(9),
      String(Math.ceil(Math.log2(nodes)) + 2).padStart(5),
      summary(numbers(runs, 'bootstrapPeriods')).padStart(13),
      summary(numbers(runs, 'joinPeriods')).padStart(13),
      summary(numbers(runs, 'changePeriods')).padStart(13),
      round(median(numbers(runs, 'bytesPerNodePerSecond')), 0).toFixed(0).padStart(10),
      round(median(numbers(runs, 'messagesPerNodePerSecond')), 1).toFixed(1).padStart(6),
      resolution.toFixed(2).padStart(5),
      `${((performance.now() - runStartedMs) / 1000).toFixed(1)} s`,
    ].join('  '),
  );
}
console.log(`\nbound = ⌈log2 n⌉ + 2 periods; res = resolution of the convergence times, in periods; total ${((performance.now() - startedMs) / 1000).toFixed(0)} s`);
console.log('replay one run: npm run sim -- --seed N --scenario gossip --nodes N');
