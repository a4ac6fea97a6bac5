/**
 * V8 settings for a process that runs a node (`chorus start`), applied before the node starts,
 * and for the cluster benchmark's own process, which runs the clients of both systems.
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
 * Set at run time through `v8.setFlagsFromString`: V8 reads this flag at every collection and
 * whenever it creates an allocation site, so it takes effect from here on, and `chorus start`
 * needs no wrapper to pass options to Node.js.
 */

import { setFlagsFromString } from 'node:v8';

const HEAP_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

export function tuneHeap(): void {
  for (const flag of HEAP_V8_FLAGS) setFlagsFromString(flag);
}
