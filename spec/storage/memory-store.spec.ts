/**
 * Proves the in-memory store keeps the Store contract, so that specs and the simulator,
 * which run on it, exercise the same behaviour production gets from LMDB. It has no
 * `reopen`: a memory store loses everything when it is closed.
 */

import { openStore } from '../../lib/storage/index.js';
import { runStoreContract } from '../contract/store.contract.js';

describe('storage/memory-store', () => {
  runStoreContract('memory', () => openStore({ engine: 'memory' }));
});
