/**
 * One chaos run from start to verdict: start the cluster, load it while the nemesis plays its
 * schedule, heal, wait for convergence, read everything back and check it, write the report.
 *
 * Everything the run creates is owned by a `ChaosRun` and released by `cleanup()`, which is
 * idempotent and never throws: the node processes (killed by process group, paused ones
 * resumed first), the firewall chain, the clients and the temporary data directories. The
 * entry point calls it on success, on error and on SIGINT/SIGTERM; only the report
 * directory stays.
 */

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../../lib/base/prng.js';
import type { Client } from '../../lib/client/index.js';
import {
  checkHistory,
  compareReplicas,
  checkTyped,
  finalReads,
  healthResult,
  nemesisResult,
  openChecker,
  replicaResult,
  waitConverged,
  type CheckResult,
} from './checks.js';
import { tempDir } from '../bench/children.js';
import { ChaosCluster, sleep } from './cluster.js';
import { Firewall, partitionUnsupported, prepareNamespace } from './netns.js';
import { Nemesis, planSchedule, SKEW_NOT_UNDONE, type Episode } from './nemesis.js';
import { replayCommand, type ChaosOptions, type FaultKind } from './options.js';
import { availability, countOperations, latency, summaryText, writeReport, type Verdict } from './report.js';
import { faketime, offsetText } from './skew.js';
import { timelineSvg } from './timeline.js';
import { Workload, WORKLOAD_DEFAULTS, writeTypedHistory } from './workload.js';

/** How long the freshly started cluster has to agree that every node is alive. */
const FORM_TIMEOUT_MS = 30_000;

export class ChaosRun {
  readonly options: ChaosOptions;
  private readonly say: (line: string) => void;
  private readonly startedAt = new Date();
  private readonly startedMs = performance.now();
  private loadStartMs: number | undefined;
  private loadMs = 0;
  private dataRoot: string | undefined;
  private cluster: ChaosCluster | undefined;
  private firewall: Firewall | undefined;
  /** libfaketime, when skew is enabled and works here. */
  private faketime: string | undefined;
  private workload: Workload | undefined;
  private nemesis: Nemesis | undefined;
  private checker: Client | undefined;
  private readonly skipped: string[] = [];
  private cleaned: Promise<void> | undefined;
  private reported = false;

  constructor(options: ChaosOptions, say: (line: string) => void) {
    this.options = options;
    this.say = say;
  }

  /** Runs everything and returns the verdict (the report is written by then). */
  async run(): Promise<Verdict> {
    const { options, say } = this;
    mkdirSync(options.reportDir, { recursive: true });
    const faults = this.usableFaults();
    // Registered for removal at exit too, should the run die before its clean-up.
    this.dataRoot = tempDir('chorus-chaos-');
    const cluster = new ChaosCluster({ nodes: options.nodes, dataRoot: this.dataRoot, logDir: join(options.reportDir, 'logs'), testFault: options.testFault });
    this.cluster = cluster;
    await cluster.plan();
    say(`starting ${options.nodes} nodes: ${cluster.nodes.map((n) => `${n.id} ${n.address}`).join(', ')}`);
    await cluster.startAll();
    const formed = await waitConverged(cluster, FORM_TIMEOUT_MS);
    if (!formed.converged) throw new Error(`the cluster did not form within ${FORM_TIMEOUT_MS / 1000} s: ${formed.waiting.join('; ')}`);
    say(`cluster formed in ${(formed.afterMs / 1000).toFixed(1)} s`);

    const prng = new Prng(options.seed);
    const loadMs = options.durationS * 1000;
    const plan = planSchedule(prng.fork('nemesis'), faults, cluster.nodes.map((n) => n.id), loadMs);
    const workload = new Workload({ clients: options.clients, keys: options.keys, ...WORKLOAD_DEFAULTS }, () => this.now());
    this.workload = workload;
    await workload.connect(cluster.nodes, prng.fork('workload'));
    const nemesis = new Nemesis({ cluster, firewall: this.firewall, faketime: this.faketime, now: () => this.now(), say }, plan);
    this.nemesis = nemesis;

    say(`load: ${options.clients} clients over ${options.keys} keys for ${options.durationS} s; ${plan.length} faults planned (${faults.join(', ') || 'none'})`);
    this.loadStartMs = performance.now();
    workload.start();
    await nemesis.run(loadMs);
    await sleep(loadMs - this.now());
    this.loadMs = this.now();
    await workload.stop();
    say(`load stopped at t=${(this.now() / 1000).toFixed(1)}s after ${workload.history.length} operations; healing every fault`);
    await nemesis.healAll();

    const convergence = await waitConverged(cluster, options.convergeTimeoutS * 1000);
    say(convergence.converged ? `converged ${(convergence.afterMs / 1000).toFixed(1)} s after healing` : `NOT converged after ${(convergence.afterMs / 1000).toFixed(1)} s: ${convergence.waiting.slice(0, 3).join('; ')}`);
    this.checker = await openChecker(cluster);
    const before = await compareReplicas(this.checker, cluster, workload.keys, undefined);
    say(`final reads of ${workload.keys.length} keys at r=all, twice`);
    const reads = await finalReads(this.checker, workload.keys);
    const after = await compareReplicas(this.checker, cluster, workload.keys, reads.finals);
    const checks: CheckResult[] = [
      checkHistory(workload.history, reads).result,
      replicaResult(reads, after, before),
      await healthResult(cluster, convergence),
      withSkews(nemesisResult(nemesis.episodes, this.skipped), nemesis.episodes),
      await checkTyped(this.checker, workload.typedHistory),
    ];
    return this.report(checks, undefined);
  }

  /**
   * Writes the report of whatever happened so far (once). With `aborted`, the run ended early
   * and the checks that did not run are absent.
   */
  report(checks: readonly CheckResult[], aborted: string | undefined): Verdict {
    const history = this.workload?.history ?? [];
    const episodes = this.nemesis?.episodes ?? [];
    const loadMs = this.loadMs > 0 ? this.loadMs : this.now();
    const verdict: Verdict = {
      passed: aborted === undefined && checks.length > 0 && checks.every((c) => c.passed),
      seed: this.options.seed,
      replay: replayCommand(this.options),
      options: this.options,
      startedAt: this.startedAt.toISOString(),
      loadMs: Math.round(loadMs),
      totalMs: Math.round(performance.now() - this.startedMs),
      operations: countOperations(history),
      latencyMs: latency(history),
      availability: availability(history, episodes, loadMs),
      faults: episodes,
      skipped: this.skipped,
      checks,
      ...(aborted === undefined ? {} : { aborted }),
      ...(this.dataRoot === undefined ? {} : { dataDir: this.dataRoot }),
    };
    if (!this.reported) {
      this.reported = true;
      const title = `chorus chaos: seed ${this.options.seed}, ${this.options.nodes} nodes, faults ${this.options.faults.join(',') || 'none'}: ${verdict.passed ? 'PASS' : 'FAIL'}`;
      try {
        writeReport(this.options.reportDir, verdict, history, () => timelineSvg(history, episodes, loadMs, title));
        writeTypedHistory(this.options.reportDir, this.workload?.typedHistory ?? []);
      } catch (error) {
        this.say(`writing the report to ${this.options.reportDir} failed: ${String(error)}`);
      }
    }
    return verdict;
  }

  summary(verdict: Verdict): string {
    return summaryText(verdict, this.options.reportDir);
  }

  /** Releases everything but the report directory; safe to call at any time, any number of times. */
  cleanup(): Promise<void> {
    this.cleaned ??= this.release();
    return this.cleaned;
  }

  private async release(): Promise<void> {
    this.nemesis?.stop();
    await this.checker?.close().catch(() => undefined);
    await this.workload?.close().catch(() => undefined);
    await this.cluster?.stopAll().catch(() => undefined);
    this.firewall?.remove();
    if (this.dataRoot !== undefined) rmSync(this.dataRoot, { recursive: true, force: true });
  }

  /** Milliseconds since the load started (before it: since the run started). */
  private now(): number {
    return performance.now() - (this.loadStartMs ?? this.startedMs);
  }

  /** The enabled faults this machine can inject; the others are reported as skipped. */
  private usableFaults(): FaultKind[] {
    let faults = [...this.options.faults];
    if (faults.includes('skew')) {
      const found = faketime();
      if ('reason' in found) {
        this.skipped.push(`skew: ${found.reason}`);
        this.say(`skipping clock skew: ${found.reason}`);
        faults = faults.filter((f) => f !== 'skew');
      } else {
        this.faketime = found.library;
      }
    }
    if (!faults.includes('partition')) return faults;
    const reason = partitionUnsupported();
    if (reason !== undefined) {
      this.skipped.push(`partition: ${reason}`);
      this.say(`skipping partitions: ${reason}`);
      return faults.filter((f) => f !== 'partition');
    }
    prepareNamespace();
    this.firewall = new Firewall();
    this.firewall.install();
    return faults;
  }
}

/**
 * The nemesis check, with the skew episodes held to the standard of partitions: a skew that
 * was never seen on the node's clock, or that outlived its episode, fails it.
 */
function withSkews(result: CheckResult, episodes: readonly Episode[]): CheckResult {
  const skews = episodes.filter((e) => e.kind === 'skew');
  const problems: string[] = [];
  for (const e of skews) {
    const what = `episode ${e.index} (skew ${e.targets.join(',')} ${offsetText(e.skewS ?? 0)})`;
    if (e.verified !== true) problems.push(`${what}: ${e.notes.filter((n) => !n.startsWith(SKEW_NOT_UNDONE)).join('; ') || 'the skew was not seen'}`);
    for (const note of e.notes) if (note.startsWith(SKEW_NOT_UNDONE)) problems.push(`${what}: ${note}`);
  }
  const verified = skews.filter((e) => e.verified === true).length;
  return {
    ...result,
    passed: result.passed && problems.length === 0,
    summary: skews.length === 0 ? result.summary : `${result.summary}; ${verified} of ${skews.length} clock skews seen on the node's clock`,
    examples: [...result.examples, ...problems],
    counts: { ...result.counts, skews: skews.length, skewsVerified: verified },
  };
}
