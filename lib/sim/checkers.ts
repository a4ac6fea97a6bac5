/**
 * Invariants of a simulated cluster, checked once the faults have healed and the cluster has
 * had time to converge, and the failure report that names the seed and the replay command.
 *
 * After healing and convergence:
 * - agreement: every active node (running, not paused, not left) holds the same member table;
 * - no false deaths: every active node is seen alive by every active node, so a node that
 *   never crashed (or was only paused, or cut off) is not left dead or suspect anywhere;
 * - crashed nodes: a node that is down is seen dead (or left) by everyone who knows of it;
 * - departures: a node that left is `left` everywhere;
 * - incarnations: no node's incarnation ever went backwards, across restarts too, and nobody
 *   holds an incarnation for a member that the member never had;
 * - the wire: every message a node sent would have passed its peers' schema.
 *
 * A failing check throws `SimFailure`, whose message holds the seed, the scenario, the exact
 * command that replays the run, the problems and the last lines of the trace.
 */

import type { MemberView } from '../membership/membership.js';
import type { SimCluster, SimNode } from './cluster.js';
import { formatMember } from './trace.js';

/** Problems listed in a report before the rest are counted. */
const PROBLEMS_SHOWN_MAX = 20;

/** Trace lines in a failure report: state events, and messages. */
export const REPORT_EVENTS = 30;
export const REPORT_MESSAGES = 10;

/** A check that did not hold, before the run's context is attached. */
export class SimCheckError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'SimCheckError';
    this.problems = problems;
  }
}

/** Throws a SimCheckError with `problem` unless `condition` holds. */
export function check(condition: boolean, problem: string | (() => string)): asserts condition {
  if (!condition) throw new SimCheckError([typeof problem === 'string' ? problem : problem()]);
}

export interface RunContext {
  readonly scenario: string;
  readonly seed: number;
  readonly nodes: number;
  /** The scenario's own size: `--nodes` is left out of the replay command when it is this. */
  readonly defaultNodes: number;
}

export function replayCommand(context: RunContext): string {
  const nodes = context.nodes === context.defaultNodes ? '' : ` --nodes ${context.nodes}`;
  return `npm run sim -- --seed ${context.seed} --scenario ${context.scenario}${nodes}`;
}

/** A failed simulation run: everything needed to understand it and to replay it. */
export class SimFailure extends Error {
  readonly context: RunContext;
  readonly problems: readonly string[];
  readonly command: string;
  readonly traceLines: readonly string[];

  constructor(context: RunContext, problems: readonly string[], traceLines: readonly string[]) {
    const command = replayCommand(context);
    super(formatFailure(context, command, problems, traceLines));
    this.name = 'SimFailure';
    this.context = context;
    this.problems = problems;
    this.command = command;
    this.traceLines = traceLines;
  }
}

export function failure(cluster: SimCluster, context: RunContext, problems: readonly string[]): SimFailure {
  return new SimFailure(context, problems, cluster.trace.lines(REPORT_EVENTS, REPORT_MESSAGES));
}

function formatFailure(context: RunContext, command: string, problems: readonly string[], traceLines: readonly string[]): string {
  const shown = problems.slice(0, PROBLEMS_SHOWN_MAX).map((p) => `  - ${p}`);
  if (problems.length > PROBLEMS_SHOWN_MAX) shown.push(`  … and ${problems.length - PROBLEMS_SHOWN_MAX} more`);
  return [
    `simulation failed: scenario ${context.scenario}, seed ${context.seed}, ${context.nodes} nodes`,
    `replay: ${command}`,
    'problems:',
    ...shown,
    `last trace lines (${traceLines.length}):`,
    ...traceLines.map((line) => `  ${line}`),
  ].join('\n');
}

/** Every invariant of a healed, converged cluster; the problems found (none when it is healthy). */
export function checkCluster(cluster: SimCluster): string[] {
  const problems: string[] = [...cluster.violations, ...cluster.network.violations];
  const active = cluster.activeNodes();
  const views = new Map(active.map((node) => [node.id, cluster.viewOf(node.id)]));
  problems.push(...checkAgreement(active, views));
  for (const [viewer, view] of views) {
    for (const row of view) {
      const member = cluster.nodes.find((node) => node.id === row.id);
      if (member === undefined) {
        problems.push(`${viewer} holds ${row.id}, which the simulation never started`);
        continue;
      }
      problems.push(...checkRow(viewer, row, member));
    }
  }
  return problems;
}

/** Throws SimCheckError unless every invariant holds. */
export function assertHealthy(cluster: SimCluster): void {
  const problems = checkCluster(cluster);
  if (problems.length > 0) throw new SimCheckError(problems);
}

function checkAgreement(active: readonly SimNode[], views: ReadonlyMap<string, MemberView[]>): string[] {
  const [reference, ...others] = active;
  if (reference === undefined) return [];
  const expected = rowsOf(views.get(reference.id) ?? []);
  const problems: string[] = [];
  for (const node of others) {
    const rows = rowsOf(views.get(node.id) ?? []);
    const differences: string[] = [];
    for (const id of new Set([...expected.keys(), ...rows.keys()])) {
      const a = expected.get(id);
      const b = rows.get(id);
      if (a !== b) differences.push(`${id}: ${a ?? 'absent'} at ${reference.id}, ${b ?? 'absent'} at ${node.id}`);
    }
    if (differences.length > 0) problems.push(`views disagree between ${reference.id} and ${node.id}: ${differences.slice(0, 5).join('; ')}${differences.length > 5 ? ` (+${differences.length - 5})` : ''}`);
  }
  return problems;
}

function rowsOf(view: readonly MemberView[]): Map<string, string> {
  return new Map(view.map((row) => [row.id, `${formatMember(row)} ${row.addr} ${row.zone} v${row.vnodes}`]));
}

/** What `viewer` holds about `member` must fit what the member is. */
function checkRow(viewer: string, row: MemberView, member: SimNode): string[] {
  const problems: string[] = [];
  const said = `${viewer} holds ${formatMember(row)}`;
  if (row.inc > member.incarnationMax) problems.push(`${said}, an incarnation ${member.id} never had (its highest is ${member.incarnationMax})`);
  const left = member.core?.membership.status === 'left' || (member.state === 'down' && member.leftAtIncarnation !== undefined);
  if (left) {
    if (row.status !== 'left') problems.push(`${said}, but ${member.id} has left the cluster`);
    return problems;
  }
  if (member.active && row.live !== 'alive') problems.push(`${said}, but ${member.id} is running and reachable`);
  if (member.state === 'down' && row.live !== 'dead') problems.push(`${said}, but ${member.id} is down`);
  return problems;
}
