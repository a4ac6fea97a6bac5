/**
 * V8 settings for a process that runs a node (`chorus start`), applied before the node starts,
 * and for the cluster benchmark's processes that run the clients of both systems.
 *
 * Allocation-site pretenuring is off. V8 counts, per allocation site (an object or array
 * literal), how many of its objects survive a young collection; a site whose objects nearly
 * all survive is switched to allocating straight into the old generation, and it rarely
 * switches back. A node starting up under load meets exactly that: the first few hundred
 * requests run in cold code with deep queues, everything they allocate outlives a scavenge,
 * and the request path's sites (the entry arrays of a decoded version vector, the request
 * bookkeeping in the runtime, cbor-x's decoded arrays) can be tenured for good. In steady
 * state those objects still die within a millisecond, but now they die old, still pointing at
 * the young objects they held (byte-string views, strings), which the young collector must take
 * for live until the next full collection: about a megabyte promoted per scavenge and a full
 * collection every few seconds, where a node that escaped the decision promotes 13 KB. Which
 * node falls into it is chance (one of three in about half of the benchmark runs). Measured on
 * workload C against a 3-node cluster: 2 of 12 nodes in that state by default, none of 36 with
 * pretenuring off; see the README's cluster figures.
 *
 * A process that makes many requests through the SDK can fall into the same state: the
 * benchmark's own process did in 3 of 12 runs, and then spent about 30% more CPU per request
 * (in the one traced, 2 MB promoted per scavenge against 60 KB). So an application under heavy
 * load is best started with `node --no-allocation-site-pretenuring`; the SDK, a library,
 * leaves the process's V8 options alone.
 *
 * The young collector runs on the main thread alone (`--no-parallel-scavenge`). By default a
 * scavenge splits its work between the main thread and V8's helper threads and waits for all
 * of them; on a machine whose cores are all busy (the benchmark's three nodes and its client on
 * two cores, or any host running more busy processes than it has cores) a helper that is not
 * scheduled holds the whole pause up. Measured with `--trace-gc` on a 3-node cluster at 15,000
 * ops/s of workload B: scavenge pauses p50 2.2–2.9 ms (p90 3.6–4.8 ms) by default against
 * 0.9–1.5 ms (p90 2.1–3.2 ms) with this setting, for the same few hundred kilobytes surviving
 * each; over three fresh clusters each (the two runs after a first), read p99 8.5–27.5 ms
 * (median 15.8) by default against 7.5–9.4 ms (median 8.4), write p99 14.9–32.3 ms against
 * 13.1–16.4 ms. The rest of the collector stays concurrent: switching concurrent marking off
 * at run time is not safe (V8 aborts when a marking cycle that began with it ends without
 * it), and sweeping array buffers off the main thread keeps scavenges shorter still
 * (measured: `--single-threaded-gc` from the command line, 1.8–1.9 ms p50).
 *
 * Set at run time through `v8.setFlagsFromString`, so `chorus start` needs no wrapper to pass
 * options to Node.js: V8 reads the pretenuring flag at every collection and whenever it creates
 * an allocation site, and the scavenger's at the start of each scavenge, which runs whole
 * within one pause, so switching it between two of them is safe.
 */

import { setFlagsFromString } from 'node:v8';

const HEAP_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring', '--no-parallel-scavenge'];

export function tuneHeap(): void {
  for (const flag of HEAP_V8_FLAGS) setFlagsFromString(flag);
}
