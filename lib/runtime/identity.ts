/**
 * A node's identity on disk: its stable id and its storage epoch.
 *
 * The id is chosen once (from the config, or generated) and kept in the store's metadata,
 * so a restart keeps it and a data directory cannot be started under another id by
 * mistake. The epoch is new whenever the data is new: the node's version-vector actor is
 * `id/epoch`, so a node whose data was wiped writes under a fresh actor and its new writes
 * can never be shadowed by what it wrote before (Riak's kv679).
 */

import { randomBytes } from 'node:crypto';
import { ConfigError } from '../base/errors.js';
import type { Store } from '../storage/index.js';

const ID_KEY = 'node-id';
const EPOCH_KEY = 'epoch';

export interface Identity {
  readonly nodeId: string;
  readonly epoch: string;
  readonly actor: string;
  /** Whether this start created the data (first start, or after a wipe). */
  readonly fresh: boolean;
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
    const epoch = decoder.decode(storedEpoch);
    return { nodeId, epoch, actor: `${nodeId}/${epoch}`, fresh: false };
  }
  const nodeId = configuredId ?? `n-${randomBytes(4).toString('hex')}`;
  const epoch = randomBytes(6).toString('base64url');
  const encoder = new TextEncoder();
  await store.setMeta(EPOCH_KEY, encoder.encode(epoch));
  await store.setMeta(ID_KEY, encoder.encode(nodeId));
  return { nodeId, epoch, actor: `${nodeId}/${epoch}`, fresh: true };
}
