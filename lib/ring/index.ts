/** The token ring: where keys and virtual nodes sit. Public surface of `lib/ring`. */

export { keyToken, keyTokenBytes, tokenOf, vnodeToken } from './token.js';
export { buildRing, preferenceList, Ring } from './ring.js';
export type { PreferenceList, PreferenceListOptions, RingMember, RingOptions, VnodePlacement } from './ring.js';
export { ownership } from './ownership.js';
export type { NodeOwnership } from './ownership.js';
export { ownershipDiff } from './ownership-diff.js';
export type { RangeChange } from './ownership-diff.js';
export { stratifiedVnodeToken } from './stratified-token.js';
export { RING_TOKENS, rangeContains, rangeSize } from './token-range.js';
export type { TokenRange } from './token-range.js';
