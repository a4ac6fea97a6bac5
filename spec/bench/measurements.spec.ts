/**
 * The cluster benchmark's CPU figures: what it reads from /proc about a server process, and
 * the table that turns phases into CPU per operation.
 */

import { deserialize, serialize } from 'node:v8';
import { expect } from 'chai';
import { procSample, spawnNode, stop, waitFor, type Child } from '../../scripts/bench/children.js';
import type { PhaseResult } from '../../scripts/bench/drivers.js';
import { Histogram } from '../../scripts/bench/hdr.js';
import { cpuTable, goalLines, type SystemResults } from '../../scripts/bench/report.js';

/** CPU the child burns on its main thread and on a worker thread, and the sleeps its main thread wakes from, between "ready" and "done". */
const BUSY_MS = 300;
const SLEEPS = 50;

/**
 * Waits, then spins a worker thread for BUSY_MS; once the worker is done, spins its main
 * thread for BUSY_MS, sleeps SLEEPS times, and idles.
 */
const CHILD = `
const { Worker } = require('node:worker_threads');
console.log('ready');
setTimeout(() => {
  const worker = new Worker('const end = performance.now() + ${BUSY_MS}; while (performance.now() < end);', { eval: true });
  worker.on('exit', () => {
    const end = performance.now() + ${BUSY_MS};
    while (performance.now() < end);
    let left = ${SLEEPS};
    const sleep = () => (--left > 0 ? setTimeout(sleep, 2) : console.log('done'));
    setTimeout(sleep, 2);
  });
}, 200);
setInterval(() => {}, 1000);
`;

function phase(fields: Partial<PhaseResult>): PhaseResult {
  return {
    label: 'B saturation',
    offeredOps: undefined,
    throughput: 10_000,
    ops: 80_000,
    read: new Histogram(),
    update: new Histogram(),
    lag: undefined,
    errors: new Map(),
    notFound: 0,
    unfinished: 0,
    clientCores: 0.5,
    clientUserCores: 0.4,
    ...fields,
  };
}

describe('cluster bench CPU figures', function () {
  this.timeout(30_000);

  it('reads a child process’s CPU, its main thread’s share and its wake-ups from /proc', async function () {
    if (process.platform !== 'linux') this.skip();
    const child: Child = spawnNode('busy', ['-e', CHILD]);
    try {
      await waitFor('the child to start', () => (child.tail.includes('ready') ? true : undefined), 10_000);
      const before = procSample([child]);
      await waitFor('the child to finish its work', () => (child.tail.includes('done') ? true : undefined), 10_000);
      const after = procSample([child]);
      expect(before, 'a sample before').to.not.equal(undefined);
      expect(after, 'a sample after').to.not.equal(undefined);
      const cpu = after!.cpuSeconds - before!.cpuSeconds;
      const main = after!.mainCpuSeconds - before!.mainCpuSeconds;
      const switches = after!.mainSwitches - before!.mainSwitches;
      // /proc counts in 10 ms ticks: allow two of them either way.
      expect(main).to.be.at.least(BUSY_MS / 1000 - 0.02);
      expect(cpu - main, 'the worker thread counts in the total only').to.be.at.least(BUSY_MS / 1000 - 0.02);
      expect(switches).to.be.at.least(SLEEPS);
    } finally {
      await stop(child);
    }
  });

  it('gives up (undefined) once a process is gone', async function () {
    if (process.platform !== 'linux') this.skip();
    const child = spawnNode('short', ['-e', "console.log('ready')"]);
    await child.exited;
    expect(procSample([child])).to.equal(undefined);
  });

  it('turns cores into microseconds per operation, and says – where the servers could not be read', () => {
    const systems: SystemResults[] = [
      {
        name: 'chorus',
        load: undefined,
        notes: [],
        error: undefined,
        workloads: new Map([
          [
            'B',
            {
              saturation: phase({ serverCores: 1.2, serverMainCores: 0.9, serverSwitches: 3000 }),
              fixed: [phase({ label: 'B 50%', throughput: 5000, clientCores: 0.25, clientUserCores: 0.25 })],
            },
          ],
        ]),
      },
    ];
    const lines = cpuTable('B', systems).split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/bench user µs\/op\s+bench sys µs\/op\s+servers main µs\/op\s+servers other µs\/op\s+server wakeups\/op$/);
    // 0.4 and 0.1 cores of the bench, 0.9 and 0.3 of the servers, 3,000 switches a second, at 10,000 ops/s.
    expect(lines[1]!.trim().split(/\s{2,}/)).to.deep.equal(['chorus', 'B saturation', '10,000', '40', '10', '90', '30', '0.30']);
    expect(lines[2]!.trim().split(/\s{2,}/)).to.deep.equal(['chorus', 'B 50%', '5,000', '50', '0', '–', '–', '–']);
  });
});

/** A histogram holding these latencies, in ms. */
function latencies(...values: number[]): Histogram {
  const histogram = new Histogram();
  for (const ms of values) histogram.recordMs(ms);
  return histogram;
}

describe('cluster bench goals', function () {
  /** A system whose B saturates at `saturation` ops/s, with the latencies of its phase at half of that. */
  function system(name: string, saturation: number, read: Histogram, update: Histogram): SystemResults {
    const half = phase({ label: 'B 50%', offeredOps: saturation / 2, throughput: saturation / 2, read, update });
    return { name, load: undefined, notes: [], error: undefined, workloads: new Map([['B', { saturation: phase({ throughput: saturation }), fixed: [half] }]]) };
  }
  const half = (p: PhaseResult): boolean => p.label.endsWith(' 50%');

  it('judges chorus against the limits, and holds the bare prototype at half of its own saturation to the same limits', () => {
    // 100 samples each, so p99 is the 99th: 4 ms reads and 20 ms writes for chorus; 9 ms and 12 ms for bare.
    const chorus = system('chorus', 20_000, latencies(...Array<number>(99).fill(4), 30), latencies(...Array<number>(99).fill(20), 40));
    const bare = system('bare', 16_000, latencies(...Array<number>(99).fill(9), 30), latencies(...Array<number>(99).fill(12), 40));
    const lines = goalLines([bare, chorus], ['B'], half);
    expect(lines).to.have.length(3);
    expect(lines[0]).to.equal('workload B, chorus ≥ 1.0× bare at saturation: 1.25× — met');
    expect(lines[1]).to.match(/^workload B, at half of chorus saturation \(10,000\/s\): read p99 4\.\d+ ms ≤ 5 — met; write p99 2\d\.\d ms ≤ 15 — NOT MET$/);
    expect(lines[2]).to.match(/^ {2}reference, bare at half of its own saturation \(8,000\/s\): read p99 9\.\d+ ms — beyond the read limit, write p99 1[12]\.\d ms — within the write limit$/);
  });

  it('says a goal was not measured, and prints no reference without a bare phase', () => {
    const chorus: SystemResults = { name: 'chorus', load: undefined, notes: [], error: undefined, workloads: new Map([['B', { saturation: phase({}), fixed: [] }]]) };
    expect(goalLines([chorus], ['B'], half)).to.deep.equal([
      'workload B, chorus ≥ 1.0× bare at saturation: not measured',
      'workload B, at half of chorus saturation, read p99 ≤ 5 ms and write p99 ≤ 15 ms: not measured',
    ]);
  });
});

describe('cluster bench results across processes', function () {
  it('a histogram keeps its samples through the structured clone of the IPC channel', function () {
    const original = new Histogram();
    for (const ms of [0.2, 0.9, 1.5, 3, 7.5, 12, 40]) original.recordMs(ms);
    // What `serialization: 'advanced'` does to a message: the fields arrive, the class does not.
    const cloned = deserialize(serialize(original)) as Histogram;
    expect(cloned).to.not.be.instanceOf(Histogram);
    const revived = Histogram.revive(cloned);
    expect(revived).to.be.instanceOf(Histogram);
    expect(revived.count).to.equal(7);
    for (const p of [10, 50, 90, 99, 100]) expect(revived.percentileMs(p)).to.equal(original.percentileMs(p));
    expect([revived.minMs, revived.meanMs, revived.maxMs]).to.deep.equal([original.minMs, original.meanMs, original.maxMs]);
    revived.recordMs(100);
    expect(revived.maxMs).to.equal(100);
    expect(original.count).to.equal(7);
  });
});
