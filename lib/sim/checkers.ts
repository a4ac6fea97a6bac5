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
import type { Operation } from './workload.js';

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

// ---- replicated data: a multi-value register per key ----

/** What the register checker found; each list holds one line per problem. */
export interface RegisterReport {
  /** Acknowledged puts whose value is neither in the final read nor superseded by a write that saw it. */
  readonly lost: readonly string[];
  /** Values in the final read that a write which surely landed had seen and superseded. */
  readonly zombies: readonly string[];
  /**
   * The zombies whose superseding write was a delete: an acknowledged delete resurrected. Each
   * is also in `zombies`; this list only names them apart.
   */
  readonly resurrected: readonly string[];
  /** Values read that nobody wrote (under that key), or read before anyone wrote them. */
  readonly phantoms: readonly string[];
  /** Acknowledged puts accounted for by a write that superseded them rather than by the final read. */
  readonly superseded: number;
}

/**
 * Checks a history of puts, gets and deletes against the final sibling set of every key
 * (TESTING.md's versioned-values checker).
 *
 * A write "observed" the values its context covers: those returned by the get whose context
 * it carried, or, for the context of a put's reply, that put's value and what the put itself
 * observed. A value is accounted for when it is in the final read of its key, or when a write
 * that observed it took effect: a put whose own value is accounted for, or a delete that may
 * have landed. A delete without a context covers whatever its coordinator held, which the
 * client never saw; it is taken to cover every value of the key written before its reply.
 * Writes that failed outright (refused before any replica was asked) take no effect.
 *
 * - lost: an acknowledged put that is not accounted for;
 * - zombie: a value in the final read that a write which surely landed (acknowledged, or
 *   itself in the final read) had observed;
 * - phantom: a value read (by a get, or finally) that no put of that key wrote, or that was
 *   returned before its put was sent.
 *
 * `finals` holds the final sibling set of every key the history touched.
 */
export function checkRegisters(history: readonly Operation[], finals: ReadonlyMap<string, readonly string[]>): RegisterReport {
  const puts = new Map<string, Operation>();
  for (const op of history) if (op.kind === 'put' && op.value !== undefined) puts.set(op.value, op);
  const observed = observations(history);
  const final = new Map([...finals].map(([key, values]) => [key, new Set(values)]));
  const inFinal = (op: Operation): boolean => op.value !== undefined && (final.get(op.key)?.has(op.value) ?? false);

  const phantoms: string[] = [];
  const phantom = (key: string, value: string, readAt: number | undefined, where: string): void => {
    const put = puts.get(value);
    if (put === undefined || put.key !== key) phantoms.push(`${key}: ${where} returned ${value}, which no put of ${key} wrote`);
    else if (readAt !== undefined && readAt < put.invokeTick) phantoms.push(`${key}: ${where} returned ${value} at t=${readAt}, before its put was sent at t=${put.invokeTick}`);
  };
  for (const op of history) {
    if (op.kind === 'get' && op.outcome === 'ok') for (const value of op.values ?? []) phantom(op.key, value, op.completeTick, `get #${op.index}`);
  }
  for (const [key, values] of finals) for (const value of values) phantom(key, value, undefined, 'the final read');

  const accounted = accountedValues(history, puts, observed, final);
  const lost: string[] = [];
  let superseded = 0;
  for (const op of history) {
    if (op.kind !== 'put' || op.outcome !== 'ok' || op.value === undefined) continue;
    if (inFinal(op)) continue;
    if (accounted.has(op.value)) superseded++;
    else lost.push(`${op.key}: acknowledged ${describeOperation(op)} is gone; final values [${[...(final.get(op.key) ?? [])].join(', ')}]`);
  }

  const zombies: string[] = [];
  const resurrected: string[] = [];
  for (const op of history) {
    if (op.kind === 'get' || op.outcome === 'fail') continue;
    const landed = op.outcome === 'ok' || inFinal(op);
    if (!landed) continue;
    for (const value of observed.get(op.index) ?? []) {
      if (!final.get(op.key)?.has(value)) continue;
      const line = `${op.key}: ${value} is back, though ${describeOperation(op)} had seen and superseded it`;
      zombies.push(line);
      if (op.kind === 'del') resurrected.push(line);
    }
  }
  return { lost, zombies, resurrected, phantoms, superseded };
}

/** For each write with a context, the values that context covers for sure. */
function observations(history: readonly Operation[]): Map<number, ReadonlySet<string>> {
  const memo = new Map<number, ReadonlySet<string>>();
  const of = (op: Operation): ReadonlySet<string> => {
    const known = memo.get(op.index);
    if (known !== undefined) return known;
    const source = op.contextFrom === undefined ? undefined : history[op.contextFrom];
    let seen: ReadonlySet<string> = new Set();
    if (source?.kind === 'get') seen = new Set(source.values ?? []);
    else if (source?.kind === 'put' && source.value !== undefined) seen = new Set([source.value, ...of(source)]);
    memo.set(op.index, seen);
    return seen;
  };
  for (const op of history) if (op.kind !== 'get') of(op);
  return memo;
}

/** The values accounted for: the final reads, then whatever an effective write covered, to a fixpoint. */
function accountedValues(
  history: readonly Operation[],
  puts: ReadonlyMap<string, Operation>,
  observed: ReadonlyMap<number, ReadonlySet<string>>,
  final: ReadonlyMap<string, ReadonlySet<string>>,
): Set<string> {
  const accounted = new Set<string>();
  for (const values of final.values()) for (const value of values) accounted.add(value);
  const writes = history.filter((op) => op.kind !== 'get' && op.outcome !== 'fail');
  const putsByKey = new Map<string, Operation[]>();
  for (const put of puts.values()) {
    const list = putsByKey.get(put.key);
    if (list === undefined) putsByKey.set(put.key, [put]);
    else list.push(put);
  }
  const covers = new Map<number, readonly string[]>();
  for (const write of writes) {
    const definite = [...(observed.get(write.index) ?? [])];
    if (write.kind === 'del' && write.contextFrom === undefined) {
      // What the coordinator held is unknown: anything written to the key before the reply.
      const until = write.completeTick ?? Number.POSITIVE_INFINITY;
      definite.push(...(putsByKey.get(write.key) ?? []).filter((put) => put.invokeTick <= until).flatMap((put) => (put.value === undefined ? [] : [put.value])));
    }
    covers.set(write.index, definite);
  }
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = writes.length - 1; i >= 0; i--) {
      const write = writes[i] as Operation;
      const effective = write.kind === 'del' || (write.value !== undefined && accounted.has(write.value));
      if (!effective) continue;
      for (const value of covers.get(write.index) ?? []) {
        if (accounted.has(value)) continue;
        accounted.add(value);
        changed = true;
      }
    }
  }
  return accounted;
}

/** One operation in a line: `put c3.17 #123 via n2 t=456..470 w=quorum ctx<-#98 ok`. */
export function describeOperation(op: Operation): string {
  const what = op.kind === 'put' ? `put ${op.value}` : op.kind;
  const level = op.kind === 'get' ? `r=${op.level}` : `w=${op.level}`;
  const context = op.contextFrom === undefined ? '' : ` ctx<-#${op.contextFrom}`;
  const outcome = op.outcome === 'ok' ? 'ok' : `${op.outcome}${op.code === undefined ? '' : ` ${op.code}`}`;
  return `${what} #${op.index} via ${op.node} t=${op.invokeTick}..${op.completeTick ?? '?'} ${level}${context} ${outcome}`;
}
