/**
 * A stored key-value object: its siblings under a dotted version vector set.
 *
 * A sibling is the value's encoded bytes, exactly as the client sent them (the node never
 * decodes user values), or `null` for a tombstone written by a delete.
 */

import type { Dvv } from './dvv.js';

export type Sibling = Uint8Array | null;

export type KvObject = Dvv<Sibling>;
