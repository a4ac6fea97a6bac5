/**
 * The chaos run's clients and the history of everything they did.
 *
 * Each client is its own SDK connection, seeded with a different node (client i with node
 * i mod N), and runs one operation at a time over a small shared key space, so writers
 * collide and siblings form:
 * - puts of values nobody else ever writes (`c3.17`: client 3's 17th value), most carrying
 *   the context of the client's last read of the key (or of its last put, when the reply had
 *   one), some without any;
 * - gets at `r` = quorum, one or all;
 * - deletes, most with a context;
 * - on typed buckets (a quarter of the operations): counter increments by 1 to 5, each with its
 *   own operation id, adds of set members nobody else adds, removes of members the client saw
 *   in its last read of the set, and reads of both at `r` = quorum or one. These go to a
 *   history of their own, in the shape of the simulator's typed checker (lib/sim/typed.ts).
 *
 * Every operation is recorded before it is sent and when its answer comes, in the `Operation`
 * shape of the simulator's workload (lib/sim/workload.ts), with milliseconds since the start
 * of the run in place of ticks, so the register checker of lib/sim/checkers.ts reads it as it
 * is. Outcomes follow TESTING.md: `ok`; `fail`, definitely not applied (`mayHaveLanded:
 * false`, or a request the client refused before sending); `unknown`, which may have landed
 * (a timeout, a lost connection, a quorum missed after sending).
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../../lib/base/prng.js';
import { decodeContext } from '../../lib/clock/context.js';
import { connect, type Client, type Context } from '../../lib/client/index.js';
import { contextFromString } from '../../lib/client/context.js';
import type { Level } from '../../lib/codec/messages.js';
import type { TypedRecord } from '../../lib/sim/typed.js';
import type { Operation } from '../../lib/sim/workload.js';
import { sleep } from './cluster.js';

export const BUCKET = 'chaos';

/** The typed buckets, their types, and the keys of each. */
export const TYPED_BUCKETS = [
  { bucket: 'chaos-counters', type: 'counter' },
  { bucket: 'chaos-sets', type: 'set' },
] as const;
export const TYPED_KEYS: readonly string[] = ['t0', 't1', 't2', 't3'];
/** Share of operations on typed buckets, and of those, the share that are reads. */
const TYPED_SHARE = 0.25;
const TYPED_READ_SHARE = 0.25;
const SET_REMOVE_CHANCE = 0.2;

/** One typed operation, as the typed checker reads it, plus what the report shows. */
export interface ChaosTypedOperation extends TypedRecord {
  readonly client: number;
  readonly node: string;
  readonly bucket: string;
  readonly level: Level;
  outcome: TypedRecord['outcome'];
  completeTick: number | undefined;
  latencyMs: number | undefined;
  code: string | undefined;
  message: string | undefined;
  /** What a read returned. */
  value: unknown;
}

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** Deadline of each request; the node answers TIMEOUT at it, and the SDK gives up shortly after. */
  readonly requestTimeoutMs: number;
  /** Pause between a client's operations, drawn in [0, max]: keeps two cores for the nodes. */
  readonly thinkMsMax: number;
}

export const WORKLOAD_DEFAULTS = { requestTimeoutMs: 2000, thinkMsMax: 10 } as const;

/** Shares of puts, gets and deletes; levels and how often a write carries its context. */
const MIX = { put: 0.5, get: 0.35, del: 0.15 } as const;
const PUT_CONTEXT_CHANCE = 0.75;
const DELETE_CONTEXT_CHANCE = 0.8;
const READ_LEVELS: readonly { level: Level; weight: number }[] = [
  { level: 'quorum', weight: 0.6 },
  { level: 'one', weight: 0.25 },
  { level: 'all', weight: 0.15 },
];
const WRITE_LEVELS: readonly { level: Level; weight: number }[] = [
  { level: 'quorum', weight: 0.85 },
  { level: 'all', weight: 0.15 },
];

/** Where a write's context came from, for the history file. */
export type ContextSource = 'none' | 'get' | 'put';

/** One operation as the checker sees it, plus what the report shows. */
export interface ChaosOperation extends Operation {
  contextSource: ContextSource;
  latencyMs: number | undefined;
  message: string | undefined;
  /** How many siblings a put left, or a get returned. */
  siblings: number | undefined;
}

interface ClientState {
  readonly id: number;
  readonly node: string;
  readonly db: Client;
  readonly prng: Prng;
  written: number;
  /** Per key, the operation whose reply context the client writes with next, and that context. */
  readonly contexts: Map<string, { readonly from: number; readonly context: Context }>;
  /** Per set key, the members of the client's last read of it. */
  readonly seen: Map<string, readonly string[]>;
}

export class Workload {
  readonly history: ChaosOperation[] = [];
  readonly typedHistory: ChaosTypedOperation[] = [];
  readonly keys: readonly string[];
  private readonly options: WorkloadOptions;
  private readonly clients: ClientState[] = [];
  private readonly now: () => number;
  private running: Promise<void>[] = [];
  private stopped = false;

  constructor(options: WorkloadOptions, now: () => number) {
    this.options = options;
    this.now = now;
    this.keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  }

  /** Connects every client, each seeded with one node (id and address). */
  async connect(nodes: readonly { id: string; address: string }[], prng: Prng): Promise<void> {
    for (let id = 0; id < this.options.clients; id++) {
      const node = nodes[id % nodes.length] as { id: string; address: string };
      const db = await connect({ nodes: [node.address], timeoutMs: this.options.requestTimeoutMs, pingIntervalMs: 1000, topologyRefreshMs: 1000 });
      this.clients.push({ id, node: node.id, db, prng: prng.fork(`client-${id}`), written: 0, contexts: new Map(), seen: new Map() });
    }
    // The typed buckets' types, set once through the first client; every node learns them by gossip.
    const first = this.clients[0];
    if (first !== undefined) for (const { bucket, type } of TYPED_BUCKETS) await first.db.admin('bucket-set', { bucket, props: { type } });
  }

  start(): void {
    this.running = this.clients.map((client) => this.loop(client));
  }

  /** No new operations; resolves once every client has its last answer (each is bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.clients.map((client) => client.db.close().catch(() => undefined)));
  }

  private async loop(client: ClientState): Promise<void> {
    while (!this.stopped) {
      await this.operate(client);
      await sleep(client.prng.int(this.options.thinkMsMax + 1));
    }
  }

  private async operate(client: ClientState): Promise<void> {
    if (client.prng.chance(TYPED_SHARE)) return this.operateTyped(client);
    const { prng } = client;
    const key = prng.pick(this.keys);
    const roll = prng.next();
    const kind = roll < MIX.put ? 'put' : roll < MIX.put + MIX.get ? 'get' : 'del';
    const known = client.contexts.get(key);
    const timeoutMs = this.options.requestTimeoutMs;
    let level: Level;
    let value: string | undefined;
    let carried: { readonly from: number; readonly context: Context } | undefined;
    if (kind === 'get') {
      level = weighted(prng, READ_LEVELS);
    } else {
      level = weighted(prng, WRITE_LEVELS);
      carried = known !== undefined && prng.chance(kind === 'put' ? PUT_CONTEXT_CHANCE : DELETE_CONTEXT_CHANCE) ? known : undefined;
      if (kind === 'put') value = `c${client.id}.${++client.written}`;
    }
    // A context that names no version (from a read that found nothing) is no context at all.
    const contextFrom = carried === undefined || isEmptyContext(carried.context) ? undefined : carried.from;
    const op: ChaosOperation = {
      index: this.history.length,
      client: client.id,
      kind,
      key,
      node: client.node,
      requestId: this.history.length,
      invokeTick: this.now(),
      level,
      value,
      contextFrom,
      completeTick: undefined,
      outcome: 'pending',
      code: undefined,
      values: undefined,
      replyContext: undefined,
      contextSource: contextFrom === undefined ? 'none' : (this.history[contextFrom]?.kind === 'put' ? 'put' : 'get'),
      latencyMs: undefined,
      message: undefined,
      siblings: undefined,
    };
    this.history.push(op);
    const context = carried?.context;
    try {
      if (kind === 'get') {
        const result = await client.db.get<string>(BUCKET, key, { r: level, timeoutMs });
        op.values = result.values.map(String);
        op.siblings = result.values.length;
        client.contexts.set(key, { from: op.index, context: result.context });
      } else if (kind === 'put') {
        const result = await client.db.put(BUCKET, key, value, { w: level, timeoutMs, ...(context === undefined ? {} : { context }) });
        op.siblings = result.siblings;
        // Without a context (siblings remain) the client must read before it writes with one.
        if (result.context === undefined) client.contexts.delete(key);
        else client.contexts.set(key, { from: op.index, context: result.context });
      } else {
        await client.db.delete(BUCKET, key, { w: level, timeoutMs, ...(context === undefined ? {} : { context }) });
        client.contexts.delete(key);
      }
      op.outcome = 'ok';
    } catch (error) {
      Object.assign(op, classify(error));
    }
    this.complete(op);
  }

  /** Records when an operation's answer came. */
  private complete(op: { readonly invokeTick: number; completeTick: number | undefined; latencyMs: number | undefined }): void {
    op.completeTick = this.now();
    op.latencyMs = op.completeTick - op.invokeTick;
  }

  private async operateTyped(client: ClientState): Promise<void> {
    const { prng } = client;
    const { bucket, type } = prng.pick(TYPED_BUCKETS);
    const key = prng.pick(TYPED_KEYS);
    const timeoutMs = this.options.requestTimeoutMs;
    const read = prng.chance(TYPED_READ_SHARE);
    const level = read ? (prng.chance(0.7) ? 'quorum' : 'one') : weighted(prng, WRITE_LEVELS);
    const seen = client.seen.get(key) ?? [];
    const name = (): string => `c${client.id}.${++client.written}`;
    let kind: ChaosTypedOperation['kind'] = 'fetch';
    let amount = 0;
    let items: string[] = [];
    if (!read && type === 'counter') {
      kind = 'inc';
      amount = 1 + prng.int(5);
    } else if (!read && seen.length > 0 && prng.chance(SET_REMOVE_CHANCE)) {
      kind = 'remove';
      items = [prng.pick(seen)];
    } else if (!read) {
      kind = 'add';
      items = [name()];
    }
    const op: ChaosTypedOperation = {
      index: this.typedHistory.length,
      client: client.id,
      node: client.node,
      kind,
      type,
      bucket,
      key,
      level,
      invokeTick: this.now(),
      amount,
      items,
      outcome: 'pending',
      completeTick: undefined,
      latencyMs: undefined,
      code: undefined,
      message: undefined,
      value: undefined,
    };
    this.typedHistory.push(op);
    try {
      if (kind === 'fetch') {
        const result = await client.db.fetch(bucket, key, type, { r: level, timeoutMs });
        op.value = result.value;
        if (type === 'set') client.seen.set(key, result.value as string[]);
      } else if (kind === 'inc') {
        await client.db.counter(bucket, key).increment(amount, { w: level, timeoutMs });
      } else if (kind === 'add') {
        await client.db.set(bucket, key).addAll(items, { w: level, timeoutMs });
      } else {
        await client.db.set(bucket, key).removeAll(items, { w: level, timeoutMs });
      }
      op.outcome = 'ok';
    } catch (error) {
      Object.assign(op, classify(error));
    }
    this.complete(op);
  }
}

function weighted(prng: Prng, choices: readonly { level: Level; weight: number }[]): Level {
  let roll = prng.next() * choices.reduce((sum, c) => sum + c.weight, 0);
  for (const choice of choices) {
    roll -= choice.weight;
    if (roll < 0) return choice.level;
  }
  return (choices[choices.length - 1] as { level: Level }).level;
}

function isEmptyContext(context: Context): boolean {
  const bytes = contextFromString(context);
  if (bytes === undefined) return true;
  const decoded = decodeContext(bytes);
  return decoded.ok && decoded.value.length === 0;
}

/** Codes that mean the request was refused before anything was sent, when the error does not say. */
const REFUSED_CODES = new Set(['INVALID_REQUEST', 'TOO_LARGE', 'OVERLOADED', 'UNAUTHORIZED']);

/** `fail` only when the request surely had no effect; everything else may have landed. */
export function classify(error: unknown): { outcome: 'fail' | 'unknown'; code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown; details?: { mayHaveLanded?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : 'ERROR';
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const landed = e?.details?.mayHaveLanded;
  if (landed === false) return { outcome: 'fail', code, message };
  if (landed === undefined && REFUSED_CODES.has(code)) return { outcome: 'fail', code, message };
  return { outcome: 'unknown', code, message };
}

/** The typed operations as JSON lines (`typed-history.jsonl` in the report): times in ms since the start of the load. */
export function writeTypedHistory(dir: string, history: readonly ChaosTypedOperation[]): void {
  const round = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms * 10) / 10);
  const lines = history.map((op) =>
    JSON.stringify({
      index: op.index,
      client: op.client,
      node: op.node,
      kind: op.kind,
      bucket: op.bucket,
      key: op.key,
      level: op.level,
      amount: op.kind === 'inc' ? op.amount : undefined,
      items: op.items.length > 0 ? op.items : undefined,
      value: op.value,
      invokeMs: round(op.invokeTick),
      completeMs: round(op.completeTick),
      latencyMs: round(op.latencyMs),
      outcome: op.outcome,
      code: op.code,
      message: op.message,
    }),
  );
  writeFileSync(join(dir, 'typed-history.jsonl'), lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}
