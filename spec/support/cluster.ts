/**
 * Helpers for integration specs that run several `chorus start` processes as one cluster.
 *
 * A node's view of the cluster is read from its `GET /status` JSON, so a spec asserts what an
 * operator would see. Waiting is always polling with a deadline (`waitFor`), and a condition
 * that never holds fails naming what was awaited and what each node last reported.
 */

import { createServer } from 'node:net';
import { waitFor, type NodeProcess } from './processes.js';

/** One row of a node's member table, as `GET /status` reports it. */
export interface MemberRow {
  readonly id: string;
  readonly addr: string;
  readonly zone: string;
  readonly status: 'joining' | 'up' | 'leaving' | 'left';
  readonly live: 'alive' | 'suspect' | 'dead';
  readonly incarnation: number;
  readonly heardMsAgo: number | null;
}

/** The parts of `GET /status` these specs read. */
export interface NodeStatus {
  readonly node: string;
  readonly address: string;
  readonly ready: boolean;
  readonly incarnation: number;
  readonly status: string;
  readonly joined: boolean;
  readonly members: readonly MemberRow[];
  readonly buckets: Record<string, Record<string, unknown>>;
}

/** Polls stop waiting for a node that does not answer within this, so one stuck node cannot stall a poll. */
const STATUS_TIMEOUT_MS = 2000;

export async function fetchStatus(address: string): Promise<NodeStatus> {
  const response = await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
  if (response.status !== 200) throw new Error(`GET /status on ${address} answered ${response.status}`);
  return (await response.json()) as NodeStatus;
}

export async function fetchReady(address: string): Promise<number> {
  const response = await fetch(`http://${address}/readyz`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
  await response.arrayBuffer();
  return response.status;
}

export async function fetchMetrics(address: string): Promise<string> {
  const response = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
  return response.text();
}

/** The value of one counter sample, matched by name and a label that must be present; 0 when absent. */
export function counterValue(metrics: string, name: string, label: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(label)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export function memberOf(status: NodeStatus, id: string): MemberRow | undefined {
  return status.members.find((m) => m.id === id);
}

/** A compact rendering of member tables for failure messages. */
export function describeTables(statuses: readonly NodeStatus[]): string {
  return statuses
    .map((s) => `${s.node}: ${s.members.map((m) => `${m.id}=${m.status}/${m.live}@${m.incarnation}`).join(' ')}`)
    .join('; ');
}

/**
 * Polls `GET /status` of every node until `holds` is true for each of them, and returns the
 * last statuses. On a timeout the error names what was awaited and shows every table.
 */
export async function waitForTables(
  nodes: readonly NodeProcess[],
  what: string,
  holds: (status: NodeStatus, node: NodeProcess) => boolean,
  timeoutMs: number,
  intervalMs = 25,
): Promise<NodeStatus[]> {
  let last: NodeStatus[] = [];
  try {
    return await waitFor(
      what,
      async () => {
        last = await Promise.all(nodes.map((n) => fetchStatus(n.address)));
        return last.every((s, i) => holds(s, nodes[i] as NodeProcess)) ? last : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last tables: ${describeTables(last)}`);
  }
}

/** A TCP port nothing listens on at the moment of the call, found by binding port 0 on `host`. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The port of a `host:port` address. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}
