/**
 * A node's identity on disk: its stable id and its storage epoch.
 *
 * The id is chosen once (from the config, or generated) and kept in the store's metadata,
 * so a restart keeps it and a data directory cannot be started under another id by
 * mistake. The epoch is new whenever the data is new: the node's version-vector actor is
 * `id/epoch`, so a node whose data was wiped writes under a fresh actor and its new writes
 * can never be shadowed by what it wrote before (Riak's kv679).
 *
 * The epoch is also new after a start that did not follow a clean stop (kill -9, a crash, a
 * power cut). A coordinator sends a new version to the other replicas while its own copy is
 * still on its way to disk; after a crash its disk may lack a dot the others hold, and the
 * same actor would issue that dot again for a different value. A clean stop writes a marker
 * with the highest counter it issued, and only a start that finds it keeps the epoch.
 */

import { randomBytes } from 'node:crypto';
import { ConfigError } from '../base/errors.js';
import type { Store } from '../storage/index.js';

const ID_KEY = 'node-id';
const EPOCH_KEY = 'epoch';
/** Written by a clean stop: the highest dot counter issued (8 bytes); emptied at start. */
const CLEAN_STOP_KEY = 'clean-stop';

export interface Identity {
  readonly nodeId: string;
  readonly epoch: string;
  readonly actor: string;
  /** Whether this start created the data (first start, or after a wipe). */
  readonly fresh: boolean;
  /** Whether the epoch is new because the last run did not stop cleanly. */
  readonly afterCrash: boolean;
  /** The highest dot counter the actor issued before: 0 for a new epoch. */
  readonly counterFloor: number;
}

/** Records a clean stop, after every write is durable: the next start keeps the epoch. */
export async function recordCleanStop(store: Store, counterIssued: number): Promise<void> {
  await store.setMeta(CLEAN_STOP_KEY, encodeCounter(counterIssued));
}

function encodeCounter(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), false);
  return bytes;
}

function decodeCounter(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined || bytes.byteLength !== 8) return undefined;
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, false));
}

export async function loadIdentity(store: Store, configuredId: string | null, dataDir: string): Promise<Identity> {
  const decoder = new TextDecoder();
  const storedId = store.getMeta(ID_KEY);
  const storedEpoch = store.getMeta(EPOCH_KEY);
  if (storedId !== undefined && storedEpoch !== undefined) {
    const nodeId = decoder.decode(storedId);
    if (configuredId !== null && configuredId !== nodeId) {
      throw new ConfigError(`node.id: the data directory ${dataDir} belongs to node "${nodeId}", not "${configuredId}"`, { key: 'node.id' });
    }
    const counterFloor = decodeCounter(store.getMeta(CLEAN_STOP_KEY));
    // From here on a crash must not find the marker: empty it before anything is written.
    await store.setMeta(CLEAN_STOP_KEY, new Uint8Array(0));
    if (counterFloor !== undefined) {
      const epoch = decoder.decode(storedEpoch);
      return { nodeId, epoch, actor: `${nodeId}/${epoch}`, fresh: false, afterCrash: false, counterFloor };
    }
    const epoch = randomBytes(6).toString('base64url');
    await store.setMeta(EPOCH_KEY, new TextEncoder().encode(epoch));
    return { nodeId, epoch, actor: `${nodeId}/${epoch}`, fresh: false, afterCrash: true, counterFloor: 0 };
  }
  const nodeId = configuredId ?? `n-${randomBytes(4).toString('hex')}`;
  const epoch = randomBytes(6).toString('base64url');
  const encoder = new TextEncoder();
  await store.setMeta(EPOCH_KEY, encoder.encode(epoch));
  await store.setMeta(ID_KEY, encoder.encode(nodeId));
  await store.setMeta(CLEAN_STOP_KEY, new Uint8Array(0));
  return { nodeId, epoch, actor: `${nodeId}/${epoch}`, fresh: true, afterCrash: false, counterFloor: 0 };
}
