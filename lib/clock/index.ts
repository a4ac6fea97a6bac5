/** Causal clocks: dotted version vector sets, causal contexts and the stored object. */

export {
  concurrent,
  descends,
  dominates,
  dvvDescends,
  emptyDvv,
  equalDvv,
  equalVectors,
  join,
  mapValues,
  mergeVectors,
  siblingCount,
  sync,
  update,
  validateDvv,
  values,
  type Actor,
  type Dot,
  type Dvv,
  type DvvEntry,
  type VersionVector,
} from './dvv.js';
export { decodeContext, EMPTY_CONTEXT, encodeContext, validateVector } from './context.js';
export type { Checked } from './validate.js';
export { ACTOR_BYTES_MAX, ACTORS_MAX, COUNTER_MAX } from './limits.js';
export type { KvObject, Sibling } from './object.js';
