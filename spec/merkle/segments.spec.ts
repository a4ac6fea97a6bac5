/**
 * Proves that segment hashes summarize exactly the set of stored (key, version) pairs, however
 * it was reached, survive persistence, refuse damaged snapshots, and map token ranges to
 * segments the way the Store's `scan` reads them.
 *
 * How:
 * - fast-check generates sequences of puts, overwrites and deletes over a small key space;
 *   applying them one by one must give the same hashes and counts as `fromEntries` over the
 *   final state, fed in a random order, and each segment's hash must be `keySetHash` of its
 *   keys;
 * - histories of dotted-version-vector writes and syncs at three replica actors produce object
 *   versions; two replicas that receive all of them in different orders and merge with `sync`
 *   end with equal objects and equal hashes;
 * - snapshots round-trip; every truncation, every single-byte change, random garbage and
 *   non-byte input decode to a refusal, never an exception;
 * - hand-picked ranges (plain, wrapping, ending at 0, the whole ring from a segment edge and
 *   from inside a segment, inside one segment) give the expected runs and leaves, and on
 *   random ranges the leaves tile the range exactly, in ring order.
 *
 * Random properties print their seed; `SEED=<n>` repeats a run.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import { AssertionError } from '../../lib/base/assert.js';
import { Prng } from '../../lib/base/prng.js';
import { emptyDvv, equalDvv, join, sync, update, type KvObject, type Sibling } from '../../lib/clock/index.js';
import {
  boundsOfRange,
  keySetHash,
  objectDigest,
  runLeaf,
  SEGMENT_DEPTH_DEFAULT,
  SegmentHashes,
  segmentRun,
  type SegmentEntry,
} from '../../lib/merkle/index.js';
import { keyToken, RING_TOKENS } from '../../lib/ring/index.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

function check<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  console.log(`      seed ${seed} (repeat: SEED=${seed} npx mocha spec/merkle/segments.spec.ts)`);
  fc.assert(property, { seed, numRuns });
}

const utf8 = new TextEncoder();
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A small key space, so that overwrites, deletes and shared segments are frequent. */
const KEYS = Array.from({ length: 24 }, (_, i) => ({ bucket: i % 3 === 0 ? 'carts' : 'users', key: `k${i}` }));
const VERSIONS = Array.from({ length: 5 }, (_, v) => objectDigest({ entries: [{ actor: 'a', counter: v + 1, values: [utf8.encode(`value ${v}`)] }] }));

interface Op {
  readonly key: number;
  /** A version index, or null for a delete. */
  readonly version: number | null;
}

const opArb: fc.Arbitrary<Op> = fc.record({ key: fc.nat(KEYS.length - 1), version: fc.option(fc.nat(VERSIONS.length - 1), { freq: 4 }) });

function entryOf(key: number, digest: Uint8Array): SegmentEntry {
  const k = KEYS[key]!;
  return { token: keyToken(k.bucket, k.key), bucket: k.bucket, key: k.key, digest };
}

/** Applies ops one by one; returns the hashes and the final state. */
function applyAll(depth: number, ops: readonly Op[]): { hashes: SegmentHashes; state: Map<number, Uint8Array> } {
  const hashes = new SegmentHashes(depth);
  const state = new Map<number, Uint8Array>();
  for (const op of ops) {
    const k = KEYS[op.key]!;
    const next = op.version === null ? undefined : VERSIONS[op.version]!;
    hashes.apply(keyToken(k.bucket, k.key), k.bucket, k.key, state.get(op.key), next);
    if (next === undefined) state.delete(op.key);
    else state.set(op.key, next);
  }
  return { hashes, state };
}

function expectSameHashes(a: SegmentHashes, b: SegmentHashes): void {
  expect(a.depth).to.equal(b.depth);
  expect(a.keyCount).to.equal(b.keyCount);
  if (!Buffer.from(a.encode()).equals(Buffer.from(b.encode()))) {
    // Name the first segment that differs, so a failure says where.
    for (let s = 0; s < a.segmentCount; s++) {
      expect(hex(a.hashOf(s)), `segment ${s}`).to.equal(hex(b.hashOf(s)));
      expect(a.countOf(s), `count of segment ${s}`).to.equal(b.countOf(s));
    }
  }
  expect(a.equals(b)).to.equal(true);
}

describe('merkle: segment hashes', () => {
  it('applying writes one by one equals building from the final state, in any order', () => {
    check(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(opArb, { maxLength: 80 }), fc.integer(), (depth, ops, shuffleSeed) => {
        const { hashes, state } = applyAll(depth, ops);
        const entries = new Prng(shuffleSeed).shuffle([...state].map(([key, digest]) => entryOf(key, digest)));
        const rebuilt = SegmentHashes.fromEntries(entries, depth);
        expectSameHashes(hashes, rebuilt);
        expect(hashes.keyCount).to.equal(state.size);
        for (let s = 0; s < hashes.segmentCount; s++) {
          const inSegment = entries.filter((e) => hashes.segmentOf(e.token) === s);
          expect(hex(hashes.hashOf(s))).to.equal(hex(keySetHash(inSegment)));
        }
      }),
      300,
    );
  });

  it('the same at the default depth, and deleting everything leaves all-zero hashes', () => {
    check(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const { hashes, state } = applyAll(SEGMENT_DEPTH_DEFAULT, ops);
        expectSameHashes(hashes, SegmentHashes.fromEntries([...state].map(([key, digest]) => entryOf(key, digest))));
        for (const [key, digest] of state) {
          const k = KEYS[key]!;
          hashes.apply(keyToken(k.bucket, k.key), k.bucket, k.key, digest, undefined);
        }
        expect(hashes.equals(new SegmentHashes())).to.equal(true);
      }),
      20,
    );
  });

  it('replicas that merge the same versions in different orders end with equal hashes', () => {
    const actors = ['n1', 'n2', 'n3'];
    type Step = { readonly t: 'put'; readonly key: number; readonly at: number; readonly ctxFrom: number | null } | { readonly t: 'sync'; readonly key: number; readonly from: number; readonly to: number };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ t: fc.constant('put' as const), key: fc.nat(5), at: fc.nat(2), ctxFrom: fc.option(fc.nat(2)) }),
      fc.record({ t: fc.constant('sync' as const), key: fc.nat(5), from: fc.nat(2), to: fc.nat(2) }),
    );
    check(
      fc.property(fc.array(stepArb, { maxLength: 60 }), fc.integer(), fc.integer(), (steps, orderA, orderB) => {
        // Every actor's own view of each key; every state that occurs is a version some replica may receive.
        const views = KEYS.slice(0, 6).map(() => actors.map(() => emptyDvv<Sibling>()));
        const versions: { key: number; object: KvObject }[] = [];
        steps.forEach((step, value) => {
          const view = views[step.key]!;
          if (step.t === 'put') {
            const ctx = step.ctxFrom === null ? [] : join(view[step.ctxFrom]!);
            view[step.at] = update(view[step.at]!, ctx, utf8.encode(`v${value}`), actors[step.at]!);
            versions.push({ key: step.key, object: view[step.at]! });
          } else {
            view[step.to] = sync(view[step.to]!, view[step.from]!);
            versions.push({ key: step.key, object: view[step.to]! });
          }
        });
        const receive = (order: number): { hashes: SegmentHashes; objects: Map<number, KvObject> } => {
          const hashes = new SegmentHashes(6);
          const objects = new Map<number, KvObject>();
          for (const { key, object } of new Prng(order).shuffle(versions)) {
            const k = KEYS[key]!;
            const before = objects.get(key);
            const after = before === undefined ? object : sync(before, object);
            hashes.apply(keyToken(k.bucket, k.key), k.bucket, k.key, before === undefined ? undefined : objectDigest(before), objectDigest(after));
            objects.set(key, after);
          }
          return { hashes, objects };
        };
        const a = receive(orderA);
        const b = receive(orderB);
        const sameBytes = (x: Sibling, y: Sibling): boolean => (x === null || y === null ? x === y : hex(x) === hex(y));
        for (const [key, object] of a.objects) expect(equalDvv(object, b.objects.get(key) ?? emptyDvv(), sameBytes)).to.equal(true);
        expectSameHashes(a.hashes, b.hashes);
        const fromScratch = SegmentHashes.fromEntries(
          [...a.objects].map(([key, object]) => entryOf(key, objectDigest(object))),
          6,
        );
        expectSameHashes(a.hashes, fromScratch);
      }),
      150,
    );
  });

  it('rewriting a key with the same version changes nothing; removing an unknown key is a bug', () => {
    const hashes = new SegmentHashes(4);
    const { bucket, key } = KEYS[0]!;
    const token = keyToken(bucket, key);
    hashes.apply(token, bucket, key, undefined, undefined);
    expect(hashes.equals(new SegmentHashes(4))).to.equal(true);
    hashes.apply(token, bucket, key, undefined, VERSIONS[0]);
    const before = hashes.encode();
    hashes.apply(token, bucket, key, VERSIONS[0], new Uint8Array(VERSIONS[0]!));
    expect(hex(hashes.encode())).to.equal(hex(before));
    expect(hashes.countOf(hashes.segmentOf(token))).to.equal(1);
    const other = KEYS.find((k) => keyToken(k.bucket, k.key) >>> 28 !== token >>> 28)!;
    expect(() => hashes.apply(keyToken(other.bucket, other.key), other.bucket, other.key, VERSIONS[1], undefined)).to.throw(AssertionError);
  });

  describe('snapshots', () => {
    it('round-trip, and a decoded snapshot keeps working like the original', () => {
      check(
        fc.property(fc.integer({ min: 1, max: 10 }), fc.array(opArb, { maxLength: 40 }), fc.array(opArb, { maxLength: 20 }), (depth, ops, more) => {
          const { hashes } = applyAll(depth, ops);
          const decoded = SegmentHashes.decode(hashes.encode());
          if (!decoded.ok) throw new Error(decoded.reason);
          expectSameHashes(decoded.value, hashes);
          expect(hex(decoded.value.encode())).to.equal(hex(hashes.encode()));
          // The rest of the history, applied to both, keeps them equal.
          const whole = applyAll(depth, [...ops, ...more]).hashes;
          const { state } = applyAll(depth, ops);
          for (const op of more) {
            const k = KEYS[op.key]!;
            const next = op.version === null ? undefined : VERSIONS[op.version]!;
            decoded.value.apply(keyToken(k.bucket, k.key), k.bucket, k.key, state.get(op.key), next);
            if (next === undefined) state.delete(op.key);
            else state.set(op.key, next);
          }
          expectSameHashes(decoded.value, whole);
        }),
        100,
      );
    });

    it('have the documented size at the default depth', () => {
      expect(new SegmentHashes().encode()).to.have.length(8 + 65_536 * 20 + 16);
    });

    it('refuse every truncation and every single-byte change', () => {
      const { hashes } = applyAll(3, KEYS.map((_, key) => ({ key, version: key % VERSIONS.length })));
      const bytes = hashes.encode();
      for (let cut = 0; cut < bytes.length; cut++) {
        expect(SegmentHashes.decode(bytes.subarray(0, cut)).ok, `cut at ${cut}`).to.equal(false);
      }
      expect(SegmentHashes.decode(new Uint8Array([...bytes, 0])).ok, 'a trailing byte').to.equal(false);
      for (let at = 0; at < bytes.length; at++) {
        for (const flip of [0x01, 0x80]) {
          const damaged = new Uint8Array(bytes);
          damaged[at] = damaged[at]! ^ flip;
          const result = SegmentHashes.decode(damaged);
          expect(result.ok, `byte ${at} ^ ${flip}`).to.equal(false);
        }
      }
    });

    it('refuse garbage and input that is not bytes, with a reason', () => {
      check(
        fc.property(fc.uint8Array({ maxLength: 400 }), (garbage) => {
          const result = SegmentHashes.decode(garbage);
          expect(result.ok).to.equal(false);
          if (!result.ok) expect(result.reason).to.match(/^segment hashes: /);
        }),
        300,
      );
      // A header that claims a valid depth, with the right length, but no valid checksum.
      const forged = new Uint8Array(8 + 2 * 20 + 16);
      forged.set([0x43, 0x4d, 0x4b, 0x53, 1, 1, 0, 0]);
      expect(SegmentHashes.decode(forged)).to.deep.equal({ ok: false, reason: 'segment hashes: checksum mismatch' });
      forged[4] = 2;
      expect(SegmentHashes.decode(forged)).to.deep.equal({ ok: false, reason: 'segment hashes: unsupported format version 2' });
      for (const input of [null, undefined, 'CMKS', [0x43, 0x4d, 0x4b, 0x53], new ArrayBuffer(64), { length: 10 }]) {
        expect(SegmentHashes.decode(input).ok).to.equal(false);
      }
    });
  });

  describe('token ranges', () => {
    const W = 2 ** 28; // a segment at depth 4
    const leaves = (from: number, to: number): [number, number, number, boolean][] => {
      const run = segmentRun(4, from, to);
      return Array.from({ length: run.count }, (_, i) => {
        const leaf = runLeaf(run, i);
        return [leaf.segment, leaf.fromToken, leaf.toToken, leaf.whole];
      });
    };

    it('map plain, wrapping and whole-ring ranges to segments like scan bounds', () => {
      expect(leaves(0, 0)).to.have.length(16);
      expect(leaves(0, 0).every(([, , , whole]) => whole)).to.equal(true);
      expect(leaves(0, 0)[15]).to.deep.equal([15, 15 * W, 0, true]);
      expect(leaves(W, 3 * W)).to.deep.equal([
        [1, W, 2 * W, true],
        [2, 2 * W, 3 * W, true],
      ]);
      expect(leaves(W + 5, 3 * W)).to.deep.equal([
        [1, W + 5, 2 * W, false],
        [2, 2 * W, 3 * W, true],
      ]);
      // Wrapping past the top of the ring.
      expect(leaves(15 * W + 1, W + 7)).to.deep.equal([
        [15, 15 * W + 1, 0, false],
        [0, 0, W, true],
        [1, W, W + 7, false],
      ]);
      expect(leaves(15 * W, 0)).to.deep.equal([[15, 15 * W, 0, true]]);
      // Inside one segment.
      expect(leaves(W + 5, W + 9)).to.deep.equal([[1, W + 5, W + 9, false]]);
      // Almost the whole ring, wrapping.
      const most = leaves(2 * W + 1, 2 * W);
      expect(most).to.have.length(16);
      expect(most[0]).to.deep.equal([2, 2 * W + 1, 3 * W, false]);
      expect(most[15]).to.deep.equal([1, W, 2 * W, true]);
      // The whole ring from inside a segment meets that segment twice.
      const whole = leaves(5, 5);
      expect(whole).to.have.length(17);
      expect(whole[0]).to.deep.equal([0, 5, W, false]);
      expect(whole[16]).to.deep.equal([0, 0, 5, false]);
      expect(whole.slice(1, 16).every(([, , , w]) => w)).to.equal(true);
    });

    it('convert ring ranges (start, end] to scan bounds [start + 1, end + 1)', () => {
      expect(boundsOfRange({ start: RING_TOKENS - 1, end: 5 })).to.deep.equal({ fromToken: 0, toToken: 6 });
      expect(boundsOfRange({ start: 10, end: RING_TOKENS - 1 })).to.deep.equal({ fromToken: 11, toToken: 0 });
      expect(boundsOfRange({ start: 7, end: 7 })).to.deep.equal({ fromToken: 8, toToken: 8 });
    });

    it('tile any range exactly with their leaves, in ring order', () => {
      const token = fc.oneof(fc.nat({ max: RING_TOKENS - 1 }), fc.constantFrom(0, 1, W - 1, W, RING_TOKENS - 1));
      check(
        fc.property(fc.integer({ min: 1, max: 10 }), token, token, fc.array(fc.nat({ max: RING_TOKENS - 1 }), { maxLength: 20 }), (depth, from, to, probes) => {
          const run = segmentRun(depth, from, to);
          const width = 2 ** (32 - depth);
          const size = from < to ? to - from : RING_TOKENS - from + to;
          let covered = 0;
          let expectedFrom = from;
          const spans = Array.from({ length: run.count }, (_, i) => runLeaf(run, i));
          for (const leaf of spans) {
            expect(leaf.fromToken).to.equal(expectedFrom);
            const end = leaf.toToken === 0 ? RING_TOKENS : leaf.toToken;
            expect(end).to.be.greaterThan(leaf.fromToken);
            expect(Math.floor(leaf.fromToken / width)).to.equal(leaf.segment);
            expect(Math.floor((end - 1) / width)).to.equal(leaf.segment);
            expect(leaf.whole).to.equal(end - leaf.fromToken === width);
            covered += end - leaf.fromToken;
            expectedFrom = leaf.toToken;
          }
          expect(covered).to.equal(size);
          expect(expectedFrom).to.equal(to);
          // A token in the range lies in a leaf of its own segment.
          for (const t of probes) {
            const inRange = from === to || (from < to ? t >= from && t < to : t >= from || t < to);
            const holder = spans.find((s) => t >= s.fromToken && t < (s.toToken === 0 ? RING_TOKENS : s.toToken));
            expect(holder !== undefined).to.equal(inRange);
            if (holder !== undefined) expect(holder.segment).to.equal(t >>> (32 - depth));
          }
        }),
        500,
      );
    });

    it('count the keys of the segments a range meets', () => {
      const { hashes, state } = applyAll(4, KEYS.map((_, key) => ({ key, version: 0 })));
      expect(hashes.countIn(hashes.rangeSegments(0, 0))).to.equal(state.size);
      const run = hashes.rangeSegments(3 * W, 9 * W);
      const expected = KEYS.filter((k) => {
        const segment = keyToken(k.bucket, k.key) >>> 28;
        return segment >= 3 && segment < 9;
      }).length;
      expect(hashes.countIn(run)).to.equal(expected);
    });
  });
});
