/**
 * Local storage: the Store port and its two adapters. Public surface of `lib/storage`.
 *
 * `openStore` is the one way the runtime gets a store; specs and the simulator may also
 * construct a `MemoryStore` directly.
 */

import { unreachable } from '../base/assert.js';
import { openLmdbStore } from './lmdb-store.js';
import { openMemoryStore } from './memory-store.js';
import type { Store, StoreOptions } from './store.js';

export type { Store, StoreDurability, StoreEngine, StoreEntry, StoreOptions } from './store.js';
export { MemoryStore } from './memory-store.js';
export { decodeStorageKey, encodeStorageKey, tokenPrefix } from './keys.js';
export { segmentsOf } from './segments.js';
export type { StorageKeyParts } from './keys.js';

/** Opens the configured store. Rejects with StorageError when the engine cannot open. */
export async function openStore(options: StoreOptions): Promise<Store> {
  switch (options.engine) {
    case 'memory':
      return openMemoryStore();
    case 'lmdb':
      return openLmdbStore(options);
    default:
      return unreachable(options, 'unknown storage engine');
  }
}
