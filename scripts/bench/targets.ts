/**
 * The two systems the cluster benchmark drives, behind one small interface: a set of client
 * connections that each read and update keys.
 *
 * - Chorus: one SDK client (the built one, from dist/) per connection, each given every node
 *   but with a different one first (the SDK sends to the first ready node), so coordination
 *   is spread over the nodes.
 *   Updates pass the causal context of the last read or write of the key this process saw,
 *   as an application that reads before it writes would; a blind put without a context would
 *   keep every update as a sibling until the key hit the sibling limit.
 * - Bare: one client-side quorum coordinator per connection (bare-coordinator.ts), each with
 *   its own socket to every replica.
 */

import type { Client, Context, Level } from '../../lib/index.js';
import { BareCoordinator } from './bare-coordinator.js';

/**
 * The SDK as an application gets it (`import { connect } from 'chorus'`): the build in dist/,
 * the same JavaScript the nodes run, rather than lib/ compiled on the fly by the bench's loader.
 */
async function builtSdk(): Promise<typeof import('../../lib/index.js')> {
  return (await import(new URL('../../dist/index.js', import.meta.url).href)) as typeof import('../../lib/index.js');
}

export const BUCKET = 'ycsb';

export interface TargetClient {
  /** Resolves true when the key was found. */
  read(key: string): Promise<boolean>;
  update(key: string, value: Uint8Array): Promise<void>;
}

export interface Target {
  readonly name: string;
  readonly clients: readonly TargetClient[];
  /** A line of facts worth printing under the results (siblings seen, …), or ''. */
  notes(): string;
  close(): Promise<void>;
}

export interface ChorusTargetOptions {
  readonly addresses: readonly string[];
  readonly clients: number;
  readonly r: Level;
  readonly w: Level;
  readonly timeoutMs: number;
}

export async function chorusTarget(options: ChorusTargetOptions): Promise<Target> {
  const { connect } = await builtSdk();
  const contexts = new Map<string, Context>();
  let siblingWrites = 0;
  let siblingsMax = 1;
  let reads = 0;
  const sdkClients: Client[] = [];
  const clients: TargetClient[] = [];
  try {
    for (let i = 0; i < options.clients; i++) {
      const n = options.addresses.length;
      const nodes = Array.from({ length: n }, (_, j) => options.addresses[(i + j) % n] as string);
      const db = await connect({ nodes, timeoutMs: options.timeoutMs });
      sdkClients.push(db);
      clients.push({
        async read(key) {
          reads++;
          const result = await db.get(BUCKET, key, { r: options.r });
          contexts.set(key, result.context);
          return result.found;
        },
        async update(key, value) {
          const context = contexts.get(key);
          const result = await db.put(BUCKET, key, value, context === undefined ? { w: options.w } : { w: options.w, context });
          if (result.context !== undefined) contexts.set(key, result.context);
          if (result.siblings > 1) siblingWrites++;
          siblingsMax = Math.max(siblingsMax, result.siblings);
        },
      });
    }
  } catch (error) {
    await Promise.all(sdkClients.map((db) => db.close()));
    throw error;
  }
  return {
    name: 'chorus',
    clients,
    notes: () => {
      const notes: string[] = [];
      if (siblingWrites > 0) notes.push(`chorus: ${siblingWrites} updates left siblings (concurrent updates of one key), at most ${siblingsMax}`);
      const unsettled = sdkClients.reduce((sum, db) => sum + db.stats.pairsUnsettled, 0);
      notes.push(`chorus: ${unsettled} of ${reads} paired gets read again unpaired (replicas differed, or the pair was slow)`);
      return notes.join('\n  note: ');
    },
    async close() {
      await Promise.all(sdkClients.map((db) => db.close()));
    },
  };
}

export interface BareTargetOptions {
  readonly ports: readonly number[];
  readonly clients: number;
  readonly r: number;
  readonly w: number;
  readonly readFanout: number;
}

export async function bareTarget(options: BareTargetOptions): Promise<Target> {
  const coordinators: BareCoordinator[] = [];
  try {
    for (let i = 0; i < options.clients; i++) {
      coordinators.push(await BareCoordinator.open(options.ports, { r: options.r, w: options.w, readFanout: options.readFanout }));
    }
  } catch (error) {
    for (const c of coordinators) c.close();
    throw error;
  }
  return {
    name: 'bare',
    clients: coordinators.map((c) => ({
      read: (key) => c.get(BUCKET, key),
      update: async (key, value) => void (await c.put(BUCKET, key, value)),
    })),
    notes: () => '',
    async close() {
      for (const c of coordinators) c.close();
    },
  };
}
