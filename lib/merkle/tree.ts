/**
 * Hash trees over segment hashes, their diff, and the level-by-level exchange two replicas run
 * to find where they differ.
 *
 * Design (Merkle, 1987; Dynamo §4.7; riak_core `hashtree`). The leaves of a tree are the
 * segments a list of token ranges meets, in ring order (`TreeLeaves`); a node above them holds
 * the XOR of its `fanout` children, so every node's hash is the XOR of the key hashes beneath
 * it and the root of a range is the XOR over all its keys, whatever the tree's shape. Building
 * a tree copies the leaves' hashes out of `SegmentHashes` and XORs them upwards: no key is
 * read. A leaf the ranges cover only in part (at most the two ends of each range) takes the
 * hash the caller computed for its covered tokens (`partialHash`, from a scan and
 * `keySetHash`); without one it takes its whole segment's hash, which can report a difference
 * outside the ranges but never hides one inside them.
 *
 * `diff` walks both trees from the root and descends only into nodes whose hashes differ, so
 * it compares at most 1 + fanout × (height − 1) × d nodes for d differing leaves: the cost of a
 * comparison follows the divergence, not the data. Two replicas do the same over messages:
 * each `LevelHashes` says "here are my hashes for these nodes at level L" and `exchangeStep`
 * answers with the hashes of the children of those that differ, until the leaf level names
 * the differing leaves. Nodes are numbered per level, root first (level 0, node 0); the
 * children of node i at level L are nodes i·fanout … i·fanout + fanout − 1 at level L + 1.
 *
 * Fan-out 16. Over the default 65,536 segments a whole-ring tree is 5 levels deep, so an
 * exchange settles in 5 comparisons; a lone difference costs 16 hashes of 16 bytes per level,
 * about 1 KiB in all. A wider fan-out saves levels (round trips) and spends bytes per level;
 * a narrower one the reverse.
 *
 * XOR nodes. A parent differs only if some child differs, so the descent never loses a
 * difference it can see; two differing children cancel at their parent only if their
 * differences are the same 128-bit value, which random key hashes make negligible.
 *
 * Invariants:
 * - Both sides of a diff or exchange built their trees from the same ranges, depth and fan-out
 *   (same `leafCount` and `fanout`, which every `LevelHashes` carries and every step checks).
 * - Functions here are pure: trees are never mutated after they are built.
 */

import { assert } from '../base/assert.js';
import type { Checked } from '../clock/validate.js';
import { KEY_HASH_BYTES, bytesToWords, wordsToBytes } from './digest.js';
import { runLeaf, segmentRun, type LeafSpan, type SegmentHashes, type SegmentRun, type TokenBounds } from './segments.js';

/** Children per node; see the header. */
export const TREE_FANOUT_DEFAULT = 16;

/** Widest fan-out accepted: one level of 256 children is already 4 KiB of hashes. */
export const TREE_FANOUT_MAX = 256;

/**
 * Node hashes in one exchange message: 4096 × 16 bytes = 64 KiB, a frame that does not hold up
 * foreground traffic on the same connection. A level with more differing nodes goes out in
 * several messages, each answered on its own.
 */
export const EXCHANGE_NODES_MAX = 4096;

/** The leaves of a tree: every segment some range of a list meets, range after range. */
export class TreeLeaves {
  readonly depth: number;
  readonly runs: readonly SegmentRun[];
  readonly count: number;
  /** Index of the first leaf of each run. */
  private readonly starts: readonly number[];

  private constructor(depth: number, runs: readonly SegmentRun[]) {
    this.depth = depth;
    this.runs = runs;
    const starts: number[] = [];
    let count = 0;
    for (const run of runs) {
      starts.push(count);
      count += run.count;
    }
    this.starts = starts;
    this.count = count;
  }

  /** The leaves for scan bounds `ranges`, at segment depth `depth`. Ranges are taken in the order given. */
  static of(depth: number, ranges: readonly TokenBounds[]): TreeLeaves {
    assert(ranges.length > 0, 'a tree needs at least one range');
    return new TreeLeaves(
      depth,
      ranges.map((r) => segmentRun(depth, r.fromToken, r.toToken)),
    );
  }

  /** Leaf `i`: its segment and the tokens of it the ranges cover. */
  leaf(i: number): LeafSpan {
    assert(Number.isInteger(i) && i >= 0 && i < this.count, `leaf ${i} out of [0, ${this.count})`);
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return runLeaf(this.runs[lo]!, i - this.starts[lo]!);
  }

  /** The leaves a range covers only in part: at most the first and last of each run. */
  partialLeaves(): number[] {
    const out: number[] = [];
    this.runs.forEach((run, r) => {
      const start = this.starts[r]!;
      if (!runLeaf(run, 0).whole) out.push(start);
      if (run.count > 1 && !runLeaf(run, run.count - 1).whole) out.push(start + run.count - 1);
    });
    return out;
  }
}

export interface HashTree {
  readonly fanout: number;
  readonly leafCount: number;
  /** Node hashes per level, root first, four 32-bit words per node; the last level is the leaves. */
  readonly levels: readonly Uint32Array[];
}

export interface BuildOptions {
  readonly fanout?: number;
  /**
   * The hash of a leaf the ranges cover only in part, for its covered tokens (`span`), or
   * undefined to use the whole segment's hash. Called for at most two leaves per range.
   */
  readonly partialHash?: (leaf: number, span: LeafSpan) => Uint8Array | undefined;
}

/** The tree of `leaves` over `segments`: no per-key work but the caller's partial leaves. */
export function buildTree(segments: SegmentHashes, leaves: TreeLeaves, options: BuildOptions = {}): HashTree {
  assert(leaves.depth === segments.depth, `leaves at depth ${leaves.depth} do not fit segments at depth ${segments.depth}`);
  const words = new Uint32Array(leaves.count * 4);
  let leaf = 0;
  for (const run of leaves.runs) {
    segments.copyHashWords(run.first, run.count, words, leaf * 4);
    leaf += run.count;
  }
  const partialHash = options.partialHash;
  if (partialHash !== undefined) {
    for (const i of leaves.partialLeaves()) {
      const hash = partialHash(i, leaves.leaf(i));
      if (hash === undefined) continue;
      assert(hash.length === KEY_HASH_BYTES, `a leaf hash has ${KEY_HASH_BYTES} bytes, got ${hash.length}`);
      bytesToWords(hash, 0, words, i * 4);
    }
  }
  return treeFromLeafWords(words, options.fanout ?? TREE_FANOUT_DEFAULT);
}

/** A tree over arbitrary 16-byte leaf hashes, in order. */
export function treeFromLeafHashes(hashes: readonly Uint8Array[], fanout = TREE_FANOUT_DEFAULT): HashTree {
  const words = new Uint32Array(hashes.length * 4);
  hashes.forEach((hash, i) => {
    assert(hash.length === KEY_HASH_BYTES, `a leaf hash has ${KEY_HASH_BYTES} bytes, got ${hash.length}`);
    bytesToWords(hash, 0, words, i * 4);
  });
  return treeFromLeafWords(words, fanout);
}

function treeFromLeafWords(leafWords: Uint32Array, fanout: number): HashTree {
  assert(Number.isInteger(fanout) && fanout >= 2 && fanout <= TREE_FANOUT_MAX, `fan-out must be an integer in [2, ${TREE_FANOUT_MAX}], got ${fanout}`);
  const leafCount = leafWords.length / 4;
  assert(leafCount >= 1, 'a tree needs at least one leaf');
  const levels: Uint32Array[] = [leafWords];
  let below = leafWords;
  while (below.length > 4) {
    const size = Math.ceil(below.length / 4 / fanout);
    const level = new Uint32Array(size * 4);
    const stride = fanout * 4;
    for (let parent = 0; parent < size; parent++) {
      let w0 = 0;
      let w1 = 0;
      let w2 = 0;
      let w3 = 0;
      const end = Math.min(below.length, (parent + 1) * stride);
      for (let at = parent * stride; at < end; at += 4) {
        w0 ^= below[at]!;
        w1 ^= below[at + 1]!;
        w2 ^= below[at + 2]!;
        w3 ^= below[at + 3]!;
      }
      level[parent * 4] = w0;
      level[parent * 4 + 1] = w1;
      level[parent * 4 + 2] = w2;
      level[parent * 4 + 3] = w3;
    }
    levels.push(level);
    below = level;
  }
  levels.reverse();
  return { fanout, leafCount, levels };
}

/** Levels from the root (1) to the leaves. */
export function treeHeight(tree: HashTree): number {
  return tree.levels.length;
}

/** Nodes at `level` (0 is the root). */
export function levelSize(tree: HashTree, level: number): number {
  assert(Number.isInteger(level) && level >= 0 && level < tree.levels.length, `level ${level} out of [0, ${tree.levels.length})`);
  return tree.levels[level]!.length / 4;
}

/** The hash of node `index` at `level`. */
export function nodeHash(tree: HashTree, level: number, index: number): Uint8Array {
  assert(Number.isInteger(index) && index >= 0 && index < levelSize(tree, level), `node ${index} out of level ${level}`);
  const out = new Uint8Array(KEY_HASH_BYTES);
  wordsToBytes(tree.levels[level]!, index * 4, out, 0);
  return out;
}

/** The root's hash: the XOR of every key hash under the tree's ranges. */
export function rootHash(tree: HashTree): Uint8Array {
  return nodeHash(tree, 0, 0);
}

function sameNode(a: Uint32Array, ai: number, b: Uint32Array, bi: number): boolean {
  return a[ai] === b[bi] && a[ai + 1] === b[bi + 1] && a[ai + 2] === b[bi + 2] && a[ai + 3] === b[bi + 3];
}

/** Children of `nodes` (sorted) at the next level, sorted. */
function childrenOf(tree: HashTree, level: number, nodes: readonly number[]): number[] {
  const size = levelSize(tree, level + 1);
  const out: number[] = [];
  for (const node of nodes) {
    const end = Math.min(size, (node + 1) * tree.fanout);
    for (let child = node * tree.fanout; child < end; child++) out.push(child);
  }
  return out;
}

export interface DiffResult {
  /** Leaves whose hashes differ, ascending. */
  readonly leaves: readonly number[];
  /** Node pairs compared on the way down: the cost of the diff. */
  readonly nodesCompared: number;
}

/** The leaves where two trees of the same shape differ, found by descending differing branches only. */
export function diff(a: HashTree, b: HashTree): DiffResult {
  assert(a.fanout === b.fanout && a.leafCount === b.leafCount, 'diff: the trees have different shapes');
  let frontier = [0];
  let nodesCompared = 0;
  const height = a.levels.length;
  for (let level = 0; ; level++) {
    const x = a.levels[level]!;
    const y = b.levels[level]!;
    const differing = frontier.filter((node) => !sameNode(x, node * 4, y, node * 4));
    nodesCompared += frontier.length;
    if (level === height - 1 || differing.length === 0) return { leaves: level === height - 1 ? differing : [], nodesCompared };
    frontier = childrenOf(a, level, differing);
  }
}

// ---- the exchange, one level per message ----

/** "Here are my hashes for these nodes at this level": one step of an exchange, wire-friendly. */
export interface LevelHashes {
  /** The sender's tree shape; a receiver with another shape refuses the step. */
  readonly fanout: number;
  readonly leafCount: number;
  readonly level: number;
  /** Node numbers at `level`, ascending, at most EXCHANGE_NODES_MAX. */
  readonly nodes: readonly number[];
  /** 16 bytes per node, in the order of `nodes`. */
  readonly hashes: Uint8Array;
}

export type ExchangeStep =
  /** Some nodes differ above the leaves: send these (my hashes of their children) to the peer. */
  | { readonly kind: 'descend'; readonly send: readonly LevelHashes[]; readonly nodesCompared: number }
  /** The comparison is over for these nodes: `leaves` differ (empty when nothing did). */
  | { readonly kind: 'done'; readonly leaves: readonly number[]; readonly nodesCompared: number }
  /** The peer's step does not fit my tree; nothing to send. */
  | { readonly kind: 'refused'; readonly reason: string };

/** My hashes of `nodes` at `level`, split into messages of at most EXCHANGE_NODES_MAX nodes. */
export function levelHashes(tree: HashTree, level: number, nodes: readonly number[]): LevelHashes[] {
  const size = levelSize(tree, level);
  const out: LevelHashes[] = [];
  let from = 0;
  do {
    const part = nodes.slice(from, from + EXCHANGE_NODES_MAX);
    const hashes = new Uint8Array(part.length * KEY_HASH_BYTES);
    part.forEach((node, i) => {
      assert(Number.isInteger(node) && node >= 0 && node < size, `node ${node} out of level ${level}`);
      wordsToBytes(tree.levels[level]!, node * 4, hashes, i * KEY_HASH_BYTES);
    });
    out.push({ fanout: tree.fanout, leafCount: tree.leafCount, level, nodes: part, hashes });
    from += EXCHANGE_NODES_MAX;
  } while (from < nodes.length);
  return out;
}

/** The first message of an exchange: my root. */
export function openExchange(tree: HashTree): LevelHashes {
  return levelHashes(tree, 0, [0])[0]!;
}

/** Checks a peer's step against my tree; never throws on bad input. */
function checkLevelHashes(mine: HashTree, theirs: LevelHashes): Checked<LevelHashes> {
  const refuse = (reason: string): Checked<LevelHashes> => ({ ok: false, reason });
  if (typeof theirs !== 'object' || theirs === null) return refuse('a step is not an object');
  if (theirs.fanout !== mine.fanout || theirs.leafCount !== mine.leafCount) {
    return refuse(`tree shapes differ: fan-out ${String(theirs.fanout)} over ${String(theirs.leafCount)} leaves, mine ${mine.fanout} over ${mine.leafCount}`);
  }
  const level = theirs.level;
  if (!Number.isInteger(level) || level < 0 || level >= mine.levels.length) return refuse(`level ${String(level)} out of range`);
  if (!Array.isArray(theirs.nodes)) return refuse('nodes is not an array');
  if (theirs.nodes.length > EXCHANGE_NODES_MAX) return refuse(`over ${EXCHANGE_NODES_MAX} nodes in one step`);
  if (!(theirs.hashes instanceof Uint8Array) || theirs.hashes.length !== theirs.nodes.length * KEY_HASH_BYTES) {
    return refuse('hashes do not hold 16 bytes per node');
  }
  const size = levelSize(mine, level);
  let previous = -1;
  for (const node of theirs.nodes) {
    if (!Number.isInteger(node) || node <= previous || node >= size) return refuse(`node ${String(node)} is not ascending within level ${level}`);
    previous = node;
  }
  return { ok: true, value: theirs };
}

/**
 * One step of an exchange: compare the peer's hashes for some nodes with mine, and either
 * descend (answer with my hashes of the children of every node that differs) or finish (at the
 * leaf level, or when nothing differs). Running it alternately on both sides from
 * `openExchange` finds exactly the leaves `diff` finds.
 */
export function exchangeStep(mine: HashTree, theirs: LevelHashes): ExchangeStep {
  const checked = checkLevelHashes(mine, theirs);
  if (!checked.ok) return { kind: 'refused', reason: checked.reason };
  const { level, nodes, hashes } = theirs;
  const their = new Uint32Array(4);
  const my = mine.levels[level]!;
  const differing = nodes.filter((node, i) => {
    bytesToWords(hashes, i * KEY_HASH_BYTES, their, 0);
    return !sameNode(my, node * 4, their, 0);
  });
  const nodesCompared = nodes.length;
  if (level === mine.levels.length - 1) return { kind: 'done', leaves: differing, nodesCompared };
  if (differing.length === 0) return { kind: 'done', leaves: [], nodesCompared };
  return { kind: 'descend', send: levelHashes(mine, level + 1, childrenOf(mine, level, differing)), nodesCompared };
}
