/**
 * Running a Chorus node inside a process: `startNode(loadConfig(...))`. Separate from the
 * SDK entry point so that applications that only talk to a cluster never load LMDB.
 */

export { loadConfig, describeSettings, type ChorusConfig } from './config/index.js';
export { startNode, type RunningNode, type StartOptions } from './runtime/node-runtime.js';
/** The V8 settings `chorus start` applies before its node starts; call it first in a process that embeds one. */
export { tuneHeap } from './runtime/heap-tuning.js';
