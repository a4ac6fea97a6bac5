/**
 * The node's request-latency histogram counts in plain arrays and renders through
 * prom-client's registry; a scrape must read exactly as a prom-client histogram fed the same
 * observations would (the same series, labels and values), bucket edges included.
 */

import { expect } from 'chai';
import { Histogram, Registry, type Metric } from 'prom-client';
import { Prng } from '../../lib/base/prng.js';
import { LatencyHistogram, type Operation } from '../../lib/runtime/metrics.js';

const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Sample lines as `name{sorted labels} value`, sorted; comments dropped. */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([^{ ]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
      if (match === null) throw new Error(`unexpected line ${line}`);
      const labels = (match[2] ?? '').split(',').filter((l) => l !== '').sort().join(',');
      return `${match[1]}{${labels}} ${match[3]}`;
    })
    .sort();
}

describe('runtime/latency histogram', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
  console.log(`  seed ${seed} (repeat with SEED=${seed} npx mocha spec/runtime/latency-histogram.spec.ts)`);

  it('scrapes as a prom-client histogram fed the same observations, bucket edges included', async () => {
    const prng = new Prng(seed);
    const reference = new Registry();
    reference.setDefaultLabels({ node: 'n1' });
    const theirs = new Histogram({ name: 'chorus_request_duration_seconds', help: 'h', labelNames: ['op'], buckets: BOUNDS, registers: [reference] });
    const ours = new Registry();
    ours.setDefaultLabels({ node: 'n1' });
    const histogram = new LatencyHistogram('chorus_request_duration_seconds', 'h', BOUNDS);
    ours.registerMetric(histogram as unknown as Metric);

    const ops: Operation[] = ['get', 'dget', 'put', 'admin'];
    const observe = (op: Operation, seconds: number): void => {
      theirs.labels(op).observe(seconds);
      histogram.observe(op, seconds);
    };
    // Every bound exactly (an observation equal to a bound counts in that bucket), just
    // above it, zero, and past the last bound.
    for (const bound of BOUNDS) {
      observe('get', bound);
      observe('put', bound * 1.0001);
    }
    observe('dget', 0);
    observe('dget', 60);
    for (let i = 0; i < 2000; i++) observe(ops[prng.int(ops.length)] as Operation, prng.next() ** 4 * 12);

    expect(samples(await ours.metrics())).to.deep.equal(samples(await reference.metrics()));
    const text = await ours.metrics();
    expect(text).to.include('# TYPE chorus_request_duration_seconds histogram');
    expect(text).to.match(/chorus_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*op="get"[^}]*\} \d+/);

    histogram.reset();
    expect(samples(await ours.metrics())).to.deep.equal([]);
  });
});
