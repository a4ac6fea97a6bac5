/**
 * The deterministic simulator: whole clusters of the real node core in one process, on a
 * simulated network and crashable disks, driven by virtual ticks from one seed, with the
 * invariant checkers and named scenarios that `npm run sim` replays. Public surface of
 * `lib/sim`.
 */

export { assertHealthy, check, checkCluster, failure, replayCommand, SimCheckError, SimFailure, type RunContext } from './checkers.js';
export { HELD_INPUTS_MAX, nodeAddress, SimCluster, SimNode, type ClusterOptions, type LogListener, type LogOutput, type MemberTable, type NodeState } from './cluster.js';
export { DISK_DEFAULTS, SimDisk, type Completion, type DiskOptions } from './disk.js';
export { NETWORK_DEFAULTS, SimNetwork, type DropReason, type NetworkEvent, type NetworkOptions, type Traffic } from './network.js';
export { bootstrap, LogCounter, measureTraffic, pickNode, quiet, runScenario, scaleOptions, SCENARIOS, settleTicks, waitFor, type Measurements, type RunOptions, type Scenario, type ScenarioResult } from './scenarios.js';
export { mean, median, percentile, round } from './stats.js';
export { formatEvent, formatMember, formatMessage, Trace, TRACE_EVENTS_DEFAULT, type TraceEvent, type TraceKind } from './trace.js';
