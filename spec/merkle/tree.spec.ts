/**
 * Proves that hash trees built from segment hashes find exactly the segments where two
 * replicas differ, at a cost that follows the divergence rather than the data, and that the
 * level-by-level exchange over messages finds the same leaves as a local diff.
 *
 * How:
 * - fast-check picks a key set and k random changes (new versions, deletes, new keys) on one
 *   replica; the diff of the two whole-ring trees must name exactly the segments of the
 *   changed keys (the Merkle diff equals the set difference), and compare at most
 *   1 + fanout × (height − 1) × d nodes for d differing leaves;
 * - the same three changes among 100 and among 100,000 keys cost the same bounded number of
 *   comparisons, against 69,905 nodes in each tree;
 * - the exchange is run between two simulated peers whose messages are delivered in a random
 *   order, some twice, and must agree with `diff`; a level with more differing nodes than
 *   one message may carry is split, and malformed or mismatched steps are refused;
 * - ranges that end inside segments report the keys outside them as differences when given no
 *   partial hashes, and only the keys inside them when given partial hashes from the keys.
 *
 * Random properties print their seed; `SEED=<n>` repeats a run.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { Prng } from '../../lib/base/prng.js';
import {
  buildTree,
  diff,
  EXCHANGE_NODES_MAX,
  exchangeStep,
  keySetHash,
  levelHashes,
  levelSize,
  objectDigest,
  openExchange,
  rootHash,
  SEGMENT_DEPTH_DEFAULT,
  SegmentHashes,
  TREE_FANOUT_DEFAULT,
  TreeLeaves,
  treeFromLeafHashes,
  treeHeight,
  type HashTree,
  type LevelHashes,
  type SegmentEntry,
  type TokenBounds,
} from '../../lib/merkle/index.js';
import { keyToken } from '../../lib/ring/index.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/merkle/tree.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

const utf8 = new TextEncoder();
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const WHOLE_RING: TokenBounds = { fromToken: 0, toToken: 0 };

/** A handful of versions; which one a key holds is all the hashes see. */
const VERSIONS = Array.from({ length: 8 }, (_, v) => objectDigest({ entries: [{ actor: 'n1', counter: v + 1, values: [utf8.encode(`v${v}`)] }] }));

function entry(i: number, version: number): SegmentEntry {
  const key = `key-${i}`;
  return { token: keyToken('b', key), bucket: 'b', key, digest: VERSIONS[version % VERSIONS.length]! };
}

/** `n` keys, and a copy with `k` changes to distinct keys; returns both sets and the changed keys' tokens. */
function diverge(n: number, k: number, prng: Prng): { a: SegmentEntry[]; b: SegmentEntry[]; changed: number[] } {
  const a = Array.from({ length: n }, (_, i) => entry(i, prng.int(VERSIONS.length)));
  const b: (SegmentEntry | undefined)[] = [...a];
  const untouched = prng.shuffle(a.map((_, i) => i));
  const changed: number[] = [];
  for (let c = 0; c < k; c++) {
    const at = untouched.pop();
    const kind = prng.int(3);
    if (at === undefined || kind === 2) {
      const added = entry(n + c, prng.int(VERSIONS.length));
      b.push(added);
      changed.push(added.token);
      continue;
    }
    const old = a[at]!;
    changed.push(old.token);
    b[at] = kind === 0 ? { ...old, digest: VERSIONS[(VERSIONS.indexOf(old.digest) + 1) % VERSIONS.length]! } : undefined;
  }
  return { a, b: b.filter((e): e is SegmentEntry => e !== undefined), changed };
}

function wholeRingTree(entries: readonly SegmentEntry[], depth = SEGMENT_DEPTH_DEFAULT, fanout = TREE_FANOUT_DEFAULT): HashTree {
  return buildTree(SegmentHashes.fromEntries(entries, depth), TreeLeaves.of(depth, [WHOLE_RING]), { fanout });
}

/** The most node pairs a diff may compare for d differing leaves. */
function costBound(tree: HashTree, d: number): number {
  return 1 + tree.fanout * (treeHeight(tree) - 1) * d;
}

/**
 * Runs an exchange between two peers over a simulated network that delivers messages in a
 * random order and delivers some twice; returns the differing leaves either side learned.
 */
function exchange(a: HashTree, b: HashTree, prng: Prng): { leaves: number[]; messages: number } {
  const inFlight: { to: HashTree; from: HashTree; message: LevelHashes }[] = [{ to: b, from: a, message: openExchange(a) }];
  const leaves = new Set<number>();
  let messages = 0;
  while (inFlight.length > 0) {
    const [next] = inFlight.splice(prng.int(inFlight.length), 1);
    const { to, from, message } = next!;
    messages++;
    if (prng.chance(0.1)) inFlight.push({ to, from, message });
    const step = exchangeStep(to, message);
    if (step.kind === 'refused') throw new Error(step.reason);
    if (step.kind === 'done') step.leaves.forEach((leaf) => leaves.add(leaf));
    else for (const reply of step.send) inFlight.push({ to: from, from: to, message: reply });
  }
  return { leaves: [...leaves].sort((x, y) => x - y), messages };
}

describe('merkle: hash trees and their diff', () => {
  it('identical data has no differing leaves, at the cost of one comparison', () => {
    const { a } = diverge(500, 0, new Prng(1));
    const result = diff(wholeRingTree(a), wholeRingTree([...a].reverse()));
    expect(result).to.deep.equal({ leaves: [], nodesCompared: 1 });
  });

  it('k random changes make exactly the segments that hold them differ, at a cost bounded by the divergence', () => {
    check(
      fc.property(fc.integer({ min: 4, max: SEGMENT_DEPTH_DEFAULT }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 60 }), fc.constantFrom(2, 4, 16, 32), fc.integer(), (depth, n, k, fanout, s) => {
        const { a, b, changed } = diverge(n, k, new Prng(s));
        const ta = wholeRingTree(a, depth, fanout);
        const tb = wholeRingTree(b, depth, fanout);
        const result = diff(ta, tb);
        const expected = [...new Set(changed.map((token) => token >>> (32 - depth)))].sort((x, y) => x - y);
        // On the whole ring from token 0, leaf i is segment i.
        expect(result.leaves).to.deep.equal(expected);
        expect(result.nodesCompared).to.be.at.most(costBound(ta, expected.length));
        expect(diff(tb, ta).leaves).to.deep.equal(expected);
      }),
      60,
    );
  });

  it('costs the same few comparisons whether there are 100 or 100,000 keys', () => {
    const costs: number[] = [];
    for (const n of [100, 100_000]) {
      const a = Array.from({ length: n }, (_, i) => entry(i, 0));
      const b = a.map((e, i) => (i % Math.floor(n / 3) === 7 ? { ...e, digest: VERSIONS[1]! } : e));
      const ta = wholeRingTree(a);
      const tb = wholeRingTree(b);
      const result = diff(ta, tb);
      expect(result.leaves).to.have.length(3);
      expect(treeHeight(ta)).to.equal(5);
      expect(result.nodesCompared).to.be.at.most(costBound(ta, 3));
      costs.push(result.nodesCompared);
    }
    // At most 1 + 16 × 4 × 3 = 193 of the 69,905 nodes of each tree, however many keys there are.
    console.log(`      nodes compared for 3 differences: ${costs[0]} (100 keys), ${costs[1]} (100,000 keys)`);
  });

  it('the root of a range is the XOR of all its key hashes, whatever the fan-out', () => {
    const { a } = diverge(400, 0, new Prng(7));
    const expected = hex(keySetHash(a));
    for (const fanout of [2, 16, 256]) expect(hex(rootHash(wholeRingTree(a, 10, fanout)))).to.equal(expected);
    expect(hex(rootHash(wholeRingTree([], 10)))).to.equal('0'.repeat(32));
  });

  describe('the level-by-level exchange', () => {
    it('finds the same leaves as diff, with messages reordered and duplicated', () => {
      check(
        fc.property(fc.integer({ min: 4, max: 12 }), fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom(2, 16), fc.integer(), (depth, n, k, fanout, s) => {
          const prng = new Prng(s);
          const { a, b } = diverge(n, k, prng);
          const ta = wholeRingTree(a, depth, fanout);
          const tb = wholeRingTree(b, depth, fanout);
          expect(exchange(ta, tb, prng).leaves).to.deep.equal([...diff(ta, tb).leaves]);
        }),
        100,
      );
    });

    it('splits a level with more differing nodes than one message carries', () => {
      const prng = new Prng(3);
      const random = (): Uint8Array => Uint8Array.from({ length: 16 }, () => prng.int(256));
      const count = 10_000;
      const ta = treeFromLeafHashes(Array.from({ length: count }, random));
      const tb = treeFromLeafHashes(Array.from({ length: count }, random));
      const parts = levelHashes(ta, treeHeight(ta) - 1, Array.from({ length: count }, (_, i) => i));
      expect(parts.map((p) => p.nodes.length)).to.deep.equal([EXCHANGE_NODES_MAX, EXCHANGE_NODES_MAX, count - 2 * EXCHANGE_NODES_MAX]);
      const { leaves } = exchange(ta, tb, prng);
      expect(leaves).to.have.length(count);
      expect(diff(ta, tb).leaves).to.have.length(count);
    });

    it('ends at once when the roots agree', () => {
      const { a } = diverge(50, 0, new Prng(5));
      const step = exchangeStep(wholeRingTree(a, 8), openExchange(wholeRingTree(a, 8)));
      expect(step).to.deep.equal({ kind: 'done', leaves: [], nodesCompared: 1 });
    });

    it('refuses steps that do not fit the tree, without throwing', () => {
      const tree = wholeRingTree(diverge(50, 0, new Prng(6)).a, 8);
      const good = levelHashes(tree, 1, [0, 1, 2])[0]!;
      const bad: [string, unknown][] = [
        ['another leaf count', { ...good, leafCount: good.leafCount + 1 }],
        ['another fan-out', { ...good, fanout: 4 }],
        ['a level past the leaves', { ...good, level: treeHeight(tree) }],
        ['a negative level', { ...good, level: -1 }],
        ['a fractional level', { ...good, level: 0.5 }],
        ['nodes out of order', { ...good, nodes: [0, 2, 1] }],
        ['a repeated node', { ...good, nodes: [0, 1, 1] }],
        ['a node past the level', { ...good, nodes: [0, 1, levelSize(tree, 1)] }],
        ['nodes that are not an array', { ...good, nodes: 'abc' }],
        ['too few hash bytes', { ...good, hashes: good.hashes.subarray(1) }],
        ['hashes that are not bytes', { ...good, hashes: [...good.hashes] }],
        ['too many nodes', { ...good, nodes: Array.from({ length: EXCHANGE_NODES_MAX + 1 }, (_, i) => i), hashes: new Uint8Array(16 * (EXCHANGE_NODES_MAX + 1)) }],
      ];
      bad.push(['no step at all', null]);
      for (const [what, step] of bad) {
        const result = exchangeStep(tree, step as LevelHashes);
        expect(result.kind, what).to.equal('refused');
      }
      expect(exchangeStep(tree, good).kind).to.equal('done');
    });
  });

  describe('ranges that end inside segments', () => {
    const depth = 8;
    const width = 2 ** (32 - depth);
    // Range [10.5 segments, 20.25 segments): partial at both ends.
    const range: TokenBounds = { fromToken: 10 * width + width / 2, toToken: 20 * width + width / 4 };
    const inRange = (token: number): boolean => token >= range.fromToken && token < range.toToken;

    function setup(): { entries: SegmentEntry[]; leaves: TreeLeaves } {
      const entries = Array.from({ length: 20_000 }, (_, i) => entry(i, 0));
      return { entries, leaves: TreeLeaves.of(depth, [range]) };
    }

    /** Partial leaves hashed from the keys the leaf's bounds hold, as a scan would return them. */
    const exactPartials =
      (entries: readonly SegmentEntry[]) =>
      (_leaf: number, span: TokenBounds): Uint8Array =>
        keySetHash(entries.filter((e) => e.token >= span.fromToken && e.token < (span.toToken === 0 ? 2 ** 32 : span.toToken)));

    it('report outside differences in partial leaves only without partial hashes', () => {
      const { entries, leaves } = setup();
      expect(leaves.count).to.equal(11);
      expect(leaves.partialLeaves()).to.deep.equal([0, 10]);
      // Change one key just outside each end of the range, inside the boundary segments.
      const outside = [
        entries.findIndex((e) => e.token >>> (32 - depth) === 10 && !inRange(e.token)),
        entries.findIndex((e) => e.token >>> (32 - depth) === 20 && !inRange(e.token)),
      ];
      expect(outside.every((i) => i >= 0)).to.equal(true);
      const changed = entries.map((e, i) => (outside.includes(i) ? { ...e, digest: VERSIONS[2]! } : e));
      const sa = SegmentHashes.fromEntries(entries, depth);
      const sb = SegmentHashes.fromEntries(changed, depth);
      expect(diff(buildTree(sa, leaves), buildTree(sb, leaves)).leaves).to.deep.equal([0, 10]);
      let calls = 0;
      const counting = (hashOf: (leaf: number, span: TokenBounds) => Uint8Array) => (leaf: number, span: TokenBounds) => {
        calls++;
        return hashOf(leaf, span);
      };
      const ta = buildTree(sa, leaves, { partialHash: counting(exactPartials(entries)) });
      const tb = buildTree(sb, leaves, { partialHash: counting(exactPartials(changed)) });
      expect(calls).to.equal(4);
      expect(diff(ta, tb).leaves).to.deep.equal([]);
    });

    it('find differences inside partial and whole leaves with partial hashes', () => {
      const { entries, leaves } = setup();
      const inside = [
        entries.findIndex((e) => e.token >>> (32 - depth) === 10 && inRange(e.token)),
        entries.findIndex((e) => e.token >>> (32 - depth) === 15),
        entries.findIndex((e) => e.token >>> (32 - depth) === 20 && inRange(e.token)),
      ];
      const changed = entries.map((e, i) => (inside.includes(i) ? { ...e, digest: VERSIONS[3]! } : e));
      const ta = buildTree(SegmentHashes.fromEntries(entries, depth), leaves, { partialHash: exactPartials(entries) });
      const tb = buildTree(SegmentHashes.fromEntries(changed, depth), leaves, { partialHash: exactPartials(changed) });
      const found = diff(ta, tb).leaves;
      expect(found).to.deep.equal([0, 5, 10]);
      expect(found.map((leaf) => leaves.leaf(leaf).segment)).to.deep.equal([10, 15, 20]);
    });

    it('cover several ranges in one tree, ignoring segments outside them', () => {
      const { entries } = setup();
      const ranges: TokenBounds[] = [
        { fromToken: 250 * width, toToken: 2 * width },
        { fromToken: 100 * width, toToken: 103 * width },
      ];
      const leaves = TreeLeaves.of(depth, ranges);
      expect(leaves.count).to.equal(8 + 3);
      const bySegment = (segment: number): number => entries.findIndex((e) => e.token >>> (32 - depth) === segment);
      const touched = [bySegment(1), bySegment(101), bySegment(50), bySegment(200)];
      const changed = entries.map((e, i) => (touched.includes(i) ? { ...e, digest: VERSIONS[4]! } : e));
      const found = diff(buildTree(SegmentHashes.fromEntries(entries, depth), leaves), buildTree(SegmentHashes.fromEntries(changed, depth), leaves)).leaves;
      expect(found.map((leaf) => leaves.leaf(leaf).segment)).to.deep.equal([1, 101]);
    });
  });
});
