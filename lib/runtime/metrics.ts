/**
 * The node's Prometheus metrics, in a registry of its own (several nodes can share a process
 * in tests). Request latency is measured here in the shell, from the request's arrival to
 * its reply, since the core counts ticks and never reads a clock.
 */

import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { AntiEntropyStats } from '../antientropy/exchange.js';
import type { PeerExchangeAge, ReplicationStats } from '../node/core.js';

export type Operation = 'put' | 'get' | 'dget' | 'del' | 'upd' | 'fetch' | 'admin';

export interface MetricsSources {
  inflight(): number;
  replication(): ReplicationStats | undefined;
  /** Anti-entropy counters, per peer ticks since the last exchange, and per range its age in ms (null: never). */
  antiEntropy(): { stats: AntiEntropyStats; peers: readonly PeerExchangeAge[]; ranges: readonly { ageMs: number | null }[] } | undefined;
  members(): readonly { readonly live: string; readonly status: string }[];
  localHealth(): number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'op' | 'outcome'>;
  readonly latency: LatencyHistogram;
  readonly inflight: Gauge;
  readonly clientConnections: Gauge;
  readonly refused: Counter<'role'>;
  readonly protocolErrors: Counter<'role'>;
  readonly storeBatches: Counter;
  readonly storeWrites: Counter;
  /** Requests finished, by operation and outcome. */
  private readonly outcomes = new Map<Operation, Map<string, number>>();

  readonly peerDropped: Counter;

  /** Gauges read the core at scrape time instead of on every step. */
  constructor(labels: { node: string }, read: MetricsSources, process = true) {
    this.registry.setDefaultLabels(labels);
    const outcomes = this.outcomes;
    this.requests = new Counter({
      name: 'chorus_requests_total',
      help: 'Client requests by operation and outcome (ok, or the error code).',
      labelNames: ['op', 'outcome'],
      registers: [this.registry],
      // Counted in plain numbers as requests finish (a labelled increment costs more than the
      // request's own bookkeeping); handed to the counter when scraped.
      collect() {
        this.reset();
        for (const [op, byOutcome] of outcomes) for (const [outcome, count] of byOutcome) this.inc({ op, outcome }, count);
      },
    });
    this.latency = new LatencyHistogram(
      'chorus_request_duration_seconds',
      'Time from a client request arriving to its reply leaving, by operation.',
      // From 100 microseconds (a cached read) to 10 seconds (a request near its timeout).
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.registry.registerMetric(this.latency as unknown as Metric);
    this.inflight = new Gauge({
      name: 'chorus_requests_inflight',
      help: 'Client writes being coordinated (waiting for durable acknowledgements).',
      registers: [this.registry],
      collect() {
        this.set(read.inflight());
      },
    });
    new Gauge({
      name: 'chorus_members',
      help: 'Members this node knows of, by liveness and status (itself included).',
      labelNames: ['live', 'status'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const member of read.members()) this.inc({ live: member.live, status: member.status });
      },
    });
    new Gauge({
      name: 'chorus_local_health',
      help: "Lifeguard's local health score: 0 is healthy; higher stretches this node's probe timeouts.",
      registers: [this.registry],
      collect() {
        this.set(read.localHealth());
      },
    });
    new Gauge({
      name: 'chorus_hints_pending',
      help: 'Hints this node keeps as a fallback, by the node they are for.',
      labelNames: ['target'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const hint of read.replication()?.hints ?? []) this.set({ target: hint.target }, hint.pending);
      },
    });
    // Totals the core counts; exposed as gauges of monotonic counts, read at scrape time.
    const totals: [string, string, (stats: ReplicationStats) => number][] = [
      ['chorus_hints_delivered_total', 'Hints handed over to their node and deleted here.', (s) => s.hints.reduce((sum, h) => sum + h.delivered, 0)],
      ['chorus_hints_dropped_total', 'Hinted writes refused because the budget for their node was spent.', (s) => s.hints.reduce((sum, h) => sum + h.dropped, 0)],
      ['chorus_read_repairs_total', 'Replicas sent a newer version after a read found them stale.', (s) => s.readRepairs],
      ['chorus_paired_reads_total', 'Paired gets answered from this node\'s copy alone, the client comparing the pair\'s digest.', (s) => s.pairedReads],
      ['chorus_requests_forwarded_total', 'Writes forwarded to a replica of their key to coordinate.', (s) => s.forwarded],
      ['chorus_tombstones_reaped_total', 'Tombstones dropped here after every primary held them through the grace period.', (s) => s.tombstonesReaped],
    ];
    for (const [name, help, value] of totals) this.total(name, help, () => read.replication(), value);
    const aeTotals: [string, string, (stats: AntiEntropyStats) => number][] = [
      ['chorus_ae_exchanges_completed_total', 'Anti-entropy exchanges this node ran to the end.', (s) => s.exchangesCompleted],
      ['chorus_ae_exchanges_failed_total', 'Anti-entropy exchanges dropped (peer gone, timeout, refusal); the next one resumes.', (s) => s.exchangesFailed],
      ['chorus_ae_keys_repaired_total', 'Keys whose local copy anti-entropy changed here (either side of an exchange).', (s) => s.keysRepaired],
      ['chorus_ae_records_sent_total', 'Records shipped to peers by anti-entropy.', (s) => s.recordsSent],
      ['chorus_ae_records_received_total', 'Records received from peers by anti-entropy.', (s) => s.recordsReceived],
      ['chorus_ae_bytes_sent_total', 'Estimated bytes of anti-entropy messages sent (hashes, key lists, records).', (s) => s.bytesSent],
      ['chorus_ae_bytes_received_total', 'Estimated bytes of anti-entropy messages received.', (s) => s.bytesReceived],
    ];
    for (const [name, help, value] of aeTotals) this.total(name, help, () => read.antiEntropy()?.stats, value);
    new Gauge({
      name: 'chorus_ae_rate',
      help: "Anti-entropy's budget as a share of the configured one (lower while foreground latency is up).",
      registers: [this.registry],
      collect() {
        const ae = read.antiEntropy();
        if (ae !== undefined) this.set(ae.stats.rate);
      },
    });
    new Gauge({
      name: 'chorus_ae_last_exchange_age_seconds',
      help: 'Time since the last completed anti-entropy exchange with each peer started.',
      labelNames: ['peer'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const peer of read.antiEntropy()?.peers ?? []) if (peer.lastExchangeMsAgo !== null) this.set({ peer: peer.peer }, peer.lastExchangeMsAgo / 1000);
      },
    });
    new Gauge({
      name: 'chorus_ae_range_age_seconds',
      help: 'Age of the last exchange covering a range this node holds with all its replicas: the oldest, and the median.',
      labelNames: ['quantile'],
      registers: [this.registry],
      collect() {
        this.reset();
        const ages = (read.antiEntropy()?.ranges ?? []).map((r) => r.ageMs);
        const known = ages.filter((a): a is number => a !== null).sort((a, b) => a - b);
        if (known.length === 0) return;
        this.set({ quantile: '0.5' }, known[Math.floor(known.length / 2)]! / 1000);
        this.set({ quantile: '1' }, known[known.length - 1]! / 1000);
      },
    });
    new Gauge({
      name: 'chorus_ae_ranges_never_exchanged',
      help: 'Ranges this node holds that some replica of has never completed an exchange with it since it started.',
      registers: [this.registry],
      collect() {
        this.set((read.antiEntropy()?.ranges ?? []).filter((r) => r.ageMs === null).length);
      },
    });
    this.peerDropped = new Counter({
      name: 'chorus_peer_messages_dropped_total',
      help: 'Peer messages dropped because the peer could not be reached (the protocol tolerates loss).',
      registers: [this.registry],
    });
    this.clientConnections = new Gauge({ name: 'chorus_client_connections', help: 'Open client connections.', registers: [this.registry] });
    this.refused = new Counter({
      name: 'chorus_handshakes_refused_total',
      help: 'Connections refused during the handshake (wrong cluster, version or secret; timeout).',
      labelNames: ['role'],
      registers: [this.registry],
    });
    this.protocolErrors = new Counter({
      name: 'chorus_protocol_errors_total',
      help: 'Connections closed for a malformed or oversized frame.',
      labelNames: ['role'],
      registers: [this.registry],
    });
    this.storeBatches = new Counter({ name: 'chorus_store_batches_total', help: 'Storage batches applied (each one commit).', registers: [this.registry] });
    this.storeWrites = new Counter({ name: 'chorus_store_writes_total', help: 'Objects written to storage.', registers: [this.registry] });
    if (process) collectDefaultMetrics({ register: this.registry, prefix: 'chorus_' });
  }

  /** A monotonic total the core counts, exposed as a counter read at scrape time. */
  private total<S>(name: string, help: string, source: () => S | undefined, value: (stats: S) => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const stats = source();
        if (stats === undefined) return;
        this.reset();
        this.inc(value(stats));
      },
    });
  }

  /** Records one finished request. */
  requestDone(op: Operation, outcome: string, seconds: number): void {
    this.latency.observe(op, seconds);
    let byOutcome = this.outcomes.get(op);
    if (byOutcome === undefined) this.outcomes.set(op, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
  }
}

/** One value of a metric as prom-client's registry renders it. */
interface MetricValue {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/**
 * A Prometheus histogram of request latency by operation. Requests are counted in plain
 * arrays as they finish (prom-client's `observe` hashes the labels on every call, which costs
 * more than a read's own bookkeeping), and rendered when the registry is scraped, through the
 * metric interface its registry calls: the same `_bucket` (cumulative, `le`), `_sum` and
 * `_count` series a prom-client histogram writes.
 */
export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byOp = new Map<Operation, { readonly counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  /** Counts one observation in the first bucket whose bound is at least `seconds` (`le`). */
  observe(op: Operation, seconds: number): void {
    let entry = this.byOp.get(op);
    if (entry === undefined) this.byOp.set(op, (entry = { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    entry.counts[i]!++;
    entry.sum += seconds;
    entry.count++;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const [op, entry] of this.byOp) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += entry.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: this.bounds[i] as number, op }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', op }, value: entry.count });
      values.push({ metricName: `${this.name}_sum`, labels: { op }, value: entry.sum });
      values.push({ metricName: `${this.name}_count`, labels: { op }, value: entry.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.byOp.clear();
  }
}
