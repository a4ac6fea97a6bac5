/**
 * The deterministic simulator: whole clusters of the real node core in one process, on a
 * simulated network and crashable disks, driven by virtual ticks from one seed, with the
 * invariant checkers and named scenarios that `npm run sim` replays. Public surface of
 * `lib/sim`.
 */

export { assertHealthy, check, checkCluster, checkRegisters, describeOperation, failure, replayCommand, SimCheckError, SimFailure, type RegisterReport, type RunContext } from './checkers.js';
export {
  HELD_INPUTS_MAX,
  nodeAddress,
  REPLICATION_COUNTERS,
  SimCluster,
  SimNode,
  type ClusterOptions,
  type KeyWatch,
  type LogListener,
  type LogOutput,
  type MemberTable,
  type NodeState,
  type ReplicationCounters,
} from './cluster.js';
export { DISK_DEFAULTS, formatVector, SimDisk, type Completion, type DiskDeps, type DiskOptions } from './disk.js';
export { FAULT_DEFAULTS, FAULT_KINDS, FaultSchedule, type FaultKind, type FaultOptions } from './faults.js';
export { NETWORK_DEFAULTS, SimNetwork, type DropReason, type NetworkEvent, type NetworkOptions, type Traffic } from './network.js';
export { call, inspect, primariesOf, runReplication, waitUntil, type ReplicationStory, type StoryMeasurements } from './replication.js';
export {
  bootstrap,
  LogCounter,
  measureTraffic,
  otherSeeds,
  pickNode,
  quiet,
  runScenario,
  scaleOptions,
  SCENARIOS,
  settleTicks,
  waitFor,
  type Measurements,
  type RunOptions,
  type Scenario,
  type ScenarioResult,
} from './scenarios.js';
export { mean, median, percentile, round } from './stats.js';
export { formatEvent, formatMember, formatMessage, formatObject, Trace, TRACE_EVENTS_DEFAULT, type TraceEvent, type TraceKind } from './trace.js';
export { summarize, Workload, WORKLOAD_DEFAULTS, type HistorySummary, type Operation, type OperationKind, type Outcome, type WorkloadOptions } from './workload.js';
