/**
 * The chaos run's nodes: real `chorus start` processes, one per loopback address, that the
 * nemesis kills, pauses, wipes, restarts and runs with a skewed wall clock.
 *
 * Node i is `n<i>` on 127.0.0.i with a data directory of its own under the run's temporary
 * directory, seeded with every other node, and with the `local` membership profile (failure
 * detection within a second or two on one machine). Each runs in its own process group
 * (`children.ts`), so a signal reaches the node itself and never a wrapper, and nothing but
 * this module decides how it stops. Every line a node writes, across restarts, is appended to
 * `logs/<id>.log` in the report directory.
 */

import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { CLI, cleanEnv, freePort, signalGroup, spawnNode, stop, waitReady, type Child, type Exit } from '../bench/children.js';
import { skewEnv } from './skew.js';

/** How long a (re)started node has to answer /readyz. */
export const READY_TIMEOUT_MS = 30_000;
/** One status request to one node; a paused node must not stall a poll for longer. */
const STATUS_TIMEOUT_MS = 1500;

export type NodeState = 'running' | 'killed' | 'paused';

export interface MemberRow {
  readonly id: string;
  readonly status: string;
  readonly live: string;
  readonly incarnation: number;
}

/** The parts of `GET /status` the run reads. */
export interface NodeStatus {
  readonly node: string;
  /** The version-vector actor, `id/epoch`: a new epoch after a start that did not follow a clean stop. */
  readonly actor?: string;
  readonly ready: boolean;
  readonly members: readonly MemberRow[];
  readonly replication: { readonly hintsPending: number; readonly readRepairs?: number; readonly hints?: readonly unknown[] };
}

export interface ChaosNode {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly dataDir: string;
  state: NodeState;
  child: Child | undefined;
  /** Processes started for this node, restarts included. */
  starts: number;
  /** Exits nobody asked for (a crash, not a kill). */
  readonly unexpectedExits: string[];
  /** The wall-clock offset (s) the running process was started with; undefined when it runs on the true clock. */
  skewS: number | undefined;
}

/** A process started with its wall clock `offsetS` seconds off, through libfaketime at `library`. */
export interface Skew {
  readonly library: string;
  readonly offsetS: number;
}

/** A node's wall clock against this process's, read from the `Date` header of its `/status`. */
export interface ClockReading {
  /** The node's clock minus ours, at the middle of the request. */
  readonly skewMs: number;
  /** How far `skewMs` may be off: half the request's time, plus the header's whole-second rounding. */
  readonly uncertaintyMs: number;
  readonly actor: string | undefined;
}

export interface ClusterOptions {
  readonly nodes: number;
  /** Temporary directory for the data directories; removed by the caller. */
  readonly dataRoot: string;
  readonly logDir: string;
  readonly testFault: string | undefined;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  private readonly options: ClusterOptions;
  private readonly logs = new Map<string, WriteStream>();
  private closing = false;

  constructor(options: ClusterOptions) {
    this.options = options;
    mkdirSync(options.logDir, { recursive: true });
  }

  /** Picks the addresses and ports; nothing runs yet. */
  async plan(): Promise<void> {
    for (let i = 1; i <= this.options.nodes; i++) {
      const host = `127.0.0.${i}`;
      const port = await freePort(host);
      this.nodes.push({ id: `n${i}`, host, port, address: `${host}:${port}`, dataDir: join(this.options.dataRoot, `n${i}`), state: 'killed', child: undefined, starts: 0, unexpectedExits: [], skewS: undefined });
    }
  }

  node(id: string): ChaosNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Starts every node and waits until each answers /readyz. */
  async startAll(): Promise<void> {
    for (const node of this.nodes) this.spawn(node);
    await Promise.all(this.nodes.map((node) => this.waitReady(node)));
  }

  /**
   * Starts the node's process on its data directory (empty or not), with its wall clock off by
   * `skew` when given; nothing once `stopAll` began.
   */
  spawn(node: ChaosNode, skew?: Skew): void {
    if (this.closing) return;
    if (node.state !== 'killed') throw new Error(`${node.id} is already running`);
    const seeds = this.nodes.filter((other) => other !== node).map((other) => other.address);
    const args = [CLI, 'start', '--host', node.host, '--port', String(node.port), '--data', node.dataDir, '--id', node.id, '--seeds', seeds.join(',')];
    const env = cleanEnv({
      CHORUS_MEMBERSHIP_PROFILE: 'local',
      ...(this.options.testFault === undefined ? {} : { CHORUS_TEST_FAULT: this.options.testFault }),
      ...(skew === undefined ? {} : skewEnv(skew.library, skew.offsetS)),
    });
    const log = this.log(node.id);
    node.starts++;
    node.skewS = skew?.offsetS;
    log.write(`${JSON.stringify({ chaos: 'start', node: node.id, start: node.starts, time: new Date().toISOString(), ...(skew === undefined ? {} : { faketime: env.FAKETIME }) })}\n`);
    const child = spawnNode(node.id, args, { env, onLine: (line) => log.write(`${line}\n`) });
    node.child = child;
    node.state = 'running';
    void child.exited.then((exit) => {
      if (node.child !== child) return;
      log.write(`${JSON.stringify({ chaos: 'exit', node: node.id, code: exit.code, signal: exit.signal, time: new Date().toISOString() })}\n`);
      if (!child.stopping && !this.closing) node.unexpectedExits.push(`${node.id} exited on its own (code ${exit.code}, signal ${exit.signal}); last output: ${child.tail.slice(-3).join(' | ')}`);
      node.state = 'killed';
      node.child = undefined;
    });
  }

  async waitReady(node: ChaosNode, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    if (node.child === undefined) throw new Error(`${node.id} is not running`);
    await waitReady(node.child, node.address, timeoutMs);
  }

  /** SIGKILL to the node's process group; resolves once it is gone. */
  async kill(node: ChaosNode): Promise<Exit | undefined> {
    const child = node.child;
    if (child === undefined) return undefined;
    child.stopping = true;
    signalGroup(child, 'SIGKILL');
    const exit = await child.exited;
    node.state = 'killed';
    node.child = undefined;
    return exit;
  }

  /**
   * SIGTERM to the node's process group, SIGKILL if it has not stopped by the deadline;
   * resolves once it is gone, with whether it stopped on its own (cleanly: it keeps its epoch).
   */
  async stop(node: ChaosNode): Promise<{ readonly clean: boolean; readonly exit: Exit } | undefined> {
    const child = node.child;
    if (child === undefined) return undefined;
    if (node.state === 'paused') signalGroup(child, 'SIGCONT');
    const exit = await stop(child);
    node.state = 'killed';
    node.child = undefined;
    return { clean: !exit.killed, exit };
  }

  pause(node: ChaosNode): void {
    if (node.child === undefined || node.state !== 'running') throw new Error(`${node.id} is not running`);
    signalGroup(node.child, 'SIGSTOP');
    node.state = 'paused';
  }

  resume(node: ChaosNode): void {
    if (node.child === undefined || node.state !== 'paused') return;
    signalGroup(node.child, 'SIGCONT');
    node.state = 'running';
  }

  /** Deletes a stopped node's data directory: it restarts empty, under the same id. */
  wipe(node: ChaosNode): void {
    if (node.state !== 'killed') throw new Error(`${node.id} must be stopped before its data is deleted`);
    rmSync(node.dataDir, { recursive: true, force: true });
  }

  /** One node's `/status`, or undefined when it does not answer in time. */
  async status(node: ChaosNode): Promise<NodeStatus | undefined> {
    if (node.state !== 'running') return undefined;
    try {
      const { status, body } = await httpGet(node.address, '/status', STATUS_TIMEOUT_MS);
      return status === 200 ? (JSON.parse(body) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The node's wall clock against ours, or undefined when it does not answer in time (or sends no `Date`). */
  async clock(node: ChaosNode): Promise<ClockReading | undefined> {
    if (node.state !== 'running') return undefined;
    try {
      const beforeMs = Date.now();
      const { status, body, date } = await httpGet(node.address, '/status', STATUS_TIMEOUT_MS);
      const afterMs = Date.now();
      const nodeMs = date === undefined ? NaN : Date.parse(date);
      if (status !== 200 || Number.isNaN(nodeMs)) return undefined;
      // The header has whole seconds, truncated: the node's clock read up to a second later than it says.
      const skewMs = nodeMs + 500 - (beforeMs + afterMs) / 2;
      return { skewMs, uncertaintyMs: 500 + (afterMs - beforeMs) / 2, actor: (JSON.parse(body) as NodeStatus).actor };
    } catch {
      return undefined;
    }
  }

  /** Why the node is not ready (its 503 reason, or why it did not answer); undefined when it is. */
  async notReady(node: ChaosNode): Promise<string | undefined> {
    if (node.state !== 'running') return `it is ${node.state}`;
    try {
      const { status, body } = await httpGet(node.address, '/readyz', STATUS_TIMEOUT_MS);
      return status === 200 ? undefined : `it answered ${status} ${body.slice(0, 200)}`;
    } catch (error) {
      return `no answer: ${String(error)}`;
    }
  }

  /**
   * Kills every node (resuming paused ones first, so none is left stopped) and closes the
   * logs. Used on the way out, also after an error or a signal.
   */
  async stopAll(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.child;
        if (child === undefined) return;
        child.stopping = true;
        signalGroup(child, 'SIGCONT');
        signalGroup(child, 'SIGKILL');
        await child.exited;
        node.state = 'killed';
        node.child = undefined;
      }),
    );
    await Promise.all([...this.logs.values()].map((log) => new Promise((resolve) => log.end(resolve))));
    this.logs.clear();
  }

  private log(id: string): WriteStream {
    let log = this.logs.get(id);
    if (log === undefined) {
      log = createWriteStream(join(this.options.logDir, `${id}.log`), { flags: 'a' });
      this.logs.set(id, log);
    }
    return log;
  }
}

/**
 * GET over a connection of its own (no keep-alive pool). A pooled connection the node closed
 * while this process was busy (a long synchronous check) would fail the next request with a
 * socket error that says nothing about the node.
 */
function httpGet(address: string, path: string, timeoutMs: number): Promise<{ status: number; body: string; date: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = get(`http://${address}${path}`, { agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, date: response.headers.date }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** Polls until `check` returns a value; undefined once `timeoutMs` passed (or `stopped()` says so). */
export async function poll<T>(check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100, stopped: () => boolean = () => false): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline || stopped()) return undefined;
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
