/** Hash trees over token segments, and their diff: the pure half of anti-entropy. Public surface of `lib/merkle`. */

export { DIGEST_BYTES, KEY_HASH_BYTES, equalDigests, KeyHasher, keyHash, objectDigest, saltedWord } from './digest.js';
export {
  boundsOfRange,
  keySetHash,
  runLeaf,
  SEGMENT_DEPTH_DEFAULT,
  SEGMENT_DEPTH_MAX,
  SEGMENT_DEPTH_MIN,
  SegmentHashes,
  segmentRun,
} from './segments.js';
export type { LeafSpan, SegmentEntry, SegmentRun, TokenBounds } from './segments.js';
export {
  buildTree,
  diff,
  EXCHANGE_NODES_MAX,
  exchangeStep,
  levelHashes,
  levelSize,
  nodeHash,
  openExchange,
  rootHash,
  TREE_FANOUT_DEFAULT,
  TREE_FANOUT_MAX,
  TreeLeaves,
  treeFromLeafHashes,
  treeHeight,
} from './tree.js';
export type { BuildOptions, DiffResult, ExchangeStep, HashTree, LevelHashes } from './tree.js';
