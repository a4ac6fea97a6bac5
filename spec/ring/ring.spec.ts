/**
 * Proves the ring's contract on hand-built member tables: the ring and its checksum are a
 * function of the set of members only (shuffled input gives the same ring, any change of a
 * member gives another checksum); the successor of a token is the first vnode at or after it,
 * wrapping; preference lists hold n distinct nodes (or all of them), prefer distinct zones,
 * wrap around the top of the ring, and list fallbacks that are neither primaries nor dead;
 * ownership sums exactly to 1 (primary) and n (replica); an ownership diff lists exactly the
 * ranges a joining or leaving node takes or gives; and a golden 3-node ring pins the
 * preference lists of ASCII and non-ASCII keys and the checksum, which every node of a
 * cluster must compute alike across versions. Randomized laws are in ring.property.spec.ts.
 */

import { expect } from 'chai';

import { AssertionError } from '../../lib/base/assert.js';
import { Prng } from '../../lib/base/prng.js';
import {
  buildRing,
  keyToken,
  ownership,
  ownershipDiff,
  preferenceList,
  RING_TOKENS,
  rangeContains,
  rangeSize,
  stratifiedVnodeToken,
  vnodeToken,
  type Ring,
  type RingMember,
} from '../../lib/ring/index.js';
import { modelPrimaries, modelRing, modelWalk } from './ring-model.js';

const THREE: readonly RingMember[] = [
  { id: 'node-a', zone: 'zone-1', vnodes: 16 },
  { id: 'node-b', zone: 'zone-1', vnodes: 16 },
  { id: 'node-c', zone: 'zone-2', vnodes: 16 },
];

function members(count: number, zones: number, vnodes = 32): RingMember[] {
  return Array.from({ length: count }, (_, i) => ({ id: `node-${i}`, zone: `zone-${i % zones}`, vnodes }));
}

/** The (token, owner) list of a ring, for comparing two rings position by position. */
function positions(ring: Ring): string[] {
  return Array.from(ring.tokens, (token, k) => `${token}:${ring.idOf(ring.ownerIndexAt(k))}`);
}

describe('ring/ring', () => {
  describe('buildRing', () => {
    it('builds the same ring and checksum from any order of the same members', () => {
      const input = members(7, 3, 64);
      const reference = buildRing(input);
      const prng = new Prng(0x1e57_0001);
      for (let round = 0; round < 20; round++) {
        const shuffled = buildRing(prng.shuffle(input));
        expect(shuffled.checksum).to.equal(reference.checksum);
        expect(positions(shuffled)).to.deep.equal(positions(reference));
        expect(shuffled.members.map((m) => m.id)).to.deep.equal(reference.members.map((m) => m.id));
        const token = prng.nextUint32();
        expect(preferenceList(shuffled, token, 3)).to.deep.equal(preferenceList(reference, token, 3));
      }
    });

    it('places every vnode at vnodeToken(id, i), sorted by token then node id', () => {
      const ring = buildRing(THREE);
      expect(ring.vnodeCount).to.equal(48);
      const expected = THREE.flatMap((m) => Array.from({ length: m.vnodes }, (_, i) => ({ token: vnodeToken(m.id, i), id: m.id })));
      expected.sort((a, b) => a.token - b.token || (a.id < b.id ? -1 : 1));
      expect(positions(ring)).to.deep.equal(expected.map((v) => `${v.token}:${v.id}`));
    });

    it('changes the checksum when a member joins, leaves, or changes its vnodes or zone, or the placement changes', () => {
      const base = buildRing(THREE).checksum;
      const variants: RingMember[][] = [
        [...THREE, { id: 'node-d', zone: 'zone-2', vnodes: 16 }],
        THREE.slice(0, 2),
        THREE.map((m) => (m.id === 'node-b' ? { ...m, vnodes: 17 } : m)),
        THREE.map((m) => (m.id === 'node-b' ? { ...m, zone: 'zone-3' } : m)),
        THREE.map((m) => (m.id === 'node-b' ? { ...m, id: 'node-B' } : m)),
      ];
      const checksums = new Set([base, ...variants.map((v) => buildRing(v).checksum), buildRing(THREE, { placement: 'stratified' }).checksum]);
      expect(checksums.size).to.equal(variants.length + 2);
      expect(buildRing([...THREE]).checksum).to.equal(base);
    });

    it('refuses duplicate ids and members without vnodes, which are bugs in the caller', () => {
      expect(() => buildRing([...THREE, THREE[0] as RingMember])).to.throw(AssertionError, /appears twice/);
      expect(() => buildRing([{ id: 'x', zone: 'z', vnodes: 0 }])).to.throw(AssertionError, /at least one vnode/);
      expect(() => buildRing([{ id: 'x', zone: 'z', vnodes: 1.5 }])).to.throw(AssertionError);
    });

    it('builds an empty ring with empty preference lists and no ownership', () => {
      const ring = buildRing([]);
      expect(ring.vnodeCount).to.equal(0);
      expect(preferenceList(ring, 12345, 3)).to.deep.equal({ primaries: [], fallbacks: [] });
      expect(ownership(ring, 3)).to.deep.equal([]);
    });
  });

  describe('successor', () => {
    const ring = buildRing(THREE);
    const first = ring.tokens[0] as number;
    const last = ring.tokens[ring.vnodeCount - 1] as number;

    it('finds the vnode at a token, the one after a token, and wraps past the last', () => {
      const k = 10;
      const at = ring.tokens[k] as number;
      expect(ring.successor(at)).to.equal(k);
      expect(ring.successor(at + 1)).to.equal(k + 1);
      expect(ring.successor(0)).to.equal(0);
      expect(ring.successor(first)).to.equal(0);
      expect(ring.successor(last)).to.equal(ring.vnodeCount - 1);
      expect(ring.successor(last + 1)).to.equal(0);
      expect(ring.successor(RING_TOKENS - 1)).to.equal(0);
    });

    it('agrees with a linear scan on seeded random tokens', () => {
      const prng = new Prng(0x1e57_0002);
      for (let i = 0; i < 2000; i++) {
        const token = prng.nextUint32();
        const scan = ring.tokens.findIndex((t) => t >= token);
        expect(ring.successor(token)).to.equal(scan === -1 ? 0 : scan);
      }
    });

    it('refuses tokens outside [0, 2^32)', () => {
      expect(() => ring.successor(-1)).to.throw(AssertionError);
      expect(() => ring.successor(RING_TOKENS)).to.throw(AssertionError);
      expect(() => ring.successor(1.5)).to.throw(AssertionError);
    });
  });

  describe('preferenceList', () => {
    it('holds n distinct nodes, or every node when there are fewer', () => {
      const prng = new Prng(0x1e57_0003);
      const ring = buildRing(members(6, 1));
      for (let i = 0; i < 500; i++) {
        const token = prng.nextUint32();
        for (const n of [1, 2, 3, 6, 8]) {
          const { primaries } = preferenceList(ring, token, n);
          expect(new Set(primaries).size).to.equal(primaries.length);
          expect(primaries.length).to.equal(Math.min(n, 6));
        }
      }
    });

    it('starts with the owner of the key’s vnode and lists primaries in ring order', () => {
      const ring = buildRing(members(5, 1));
      const model = modelRing(members(5, 1));
      const prng = new Prng(0x1e57_0004);
      for (let i = 0; i < 200; i++) {
        const token = prng.nextUint32();
        const { primaries } = preferenceList(ring, token, 3);
        expect(primaries[0]).to.equal(ring.idOf(ring.ownerIndexAt(ring.successor(token))));
        expect(primaries).to.deep.equal(modelWalk(model, token).slice(0, 3));
      }
    });

    it('takes one node per zone when there are at least n zones', () => {
      const input = members(9, 3);
      const ring = buildRing(input);
      const zoneOf = new Map(input.map((m) => [m.id, m.zone]));
      const model = modelRing(input);
      const prng = new Prng(0x1e57_0005);
      let skipped = 0;
      for (let i = 0; i < 500; i++) {
        const token = prng.nextUint32();
        const { primaries } = preferenceList(ring, token, 3);
        expect(new Set(primaries.map((id) => zoneOf.get(id))).size).to.equal(3);
        if (primaries.join() !== modelWalk(model, token).slice(0, 3).join()) skipped++;
      }
      // The rule must have mattered: some walks meet two nodes of a zone before a third zone.
      expect(skipped).to.be.greaterThan(0);
    });

    it('uses every zone and then the next nodes in ring order when there are fewer zones than n', () => {
      const input: RingMember[] = [
        { id: 'a1', zone: 'a', vnodes: 32 },
        { id: 'a2', zone: 'a', vnodes: 32 },
        { id: 'a3', zone: 'a', vnodes: 32 },
        { id: 'a4', zone: 'a', vnodes: 32 },
        { id: 'b1', zone: 'b', vnodes: 32 },
      ];
      const ring = buildRing(input);
      const model = modelRing(input);
      const prng = new Prng(0x1e57_0006);
      for (let i = 0; i < 500; i++) {
        const token = prng.nextUint32();
        const { primaries } = preferenceList(ring, token, 3);
        const walk = modelWalk(model, token);
        // b1 always, and the first two of zone a in ring order, listed in ring order.
        const expected = walk.filter((id) => id === 'b1' || walk.filter((x) => x !== 'b1').indexOf(id) < 2);
        expect(primaries).to.deep.equal(expected);
      }
    });

    it('wraps around the top of the ring', () => {
      const ring = buildRing(THREE);
      const last = ring.tokens[ring.vnodeCount - 1] as number;
      expect(last).to.be.lessThan(RING_TOKENS - 1);
      const wrapped = preferenceList(ring, RING_TOKENS - 1, 3);
      expect(wrapped).to.deep.equal(preferenceList(ring, 0, 3));
      expect(wrapped.primaries[0]).to.equal(ring.idOf(ring.ownerIndexAt(0)));
      expect(preferenceList(ring, last + 1, 3)).to.deep.equal(wrapped);
    });

    it('lists fallbacks after the primaries, never a primary or a dead node, n of them by default', () => {
      const ring = buildRing(members(8, 1));
      const model = modelRing(members(8, 1));
      const prng = new Prng(0x1e57_0007);
      for (let i = 0; i < 200; i++) {
        const token = prng.nextUint32();
        const dead = new Set(['node-1', 'node-4', 'node-6']);
        const { primaries, fallbacks } = preferenceList(ring, token, 3, { alive: (id) => !dead.has(id) });
        const aliveOthers = 8 - 3 - [...dead].filter((id) => !primaries.includes(id)).length;
        expect(fallbacks).to.have.length(Math.min(3, aliveOthers));
        expect(fallbacks.filter((id) => primaries.includes(id) || dead.has(id))).to.deep.equal([]);
        const walk = modelWalk(model, token);
        expect(fallbacks).to.deep.equal(walk.slice(3).filter((id) => !dead.has(id)).slice(0, 3));
        // Primaries are listed alive or not: the caller decides what a dead primary means.
        expect(primaries).to.deep.equal(walk.slice(0, 3));
      }
    });

    it('lists as many fallbacks as asked and as exist', () => {
      const ring = buildRing(members(5, 1));
      expect(preferenceList(ring, 7, 3, { fallbacks: 0 }).fallbacks).to.deep.equal([]);
      expect(preferenceList(ring, 7, 3, { fallbacks: 10 }).fallbacks).to.have.length(2);
      expect(preferenceList(ring, 7, 3, { alive: () => false }).fallbacks).to.deep.equal([]);
      expect(preferenceList(ring, 7, 5).fallbacks).to.deep.equal([]);
    });

    it('lists the nodes the zone rule skipped as the first fallbacks', () => {
      const ring = buildRing(THREE);
      // users/bob walks node-a, node-b, node-c: node-b is skipped for zone-2's node-c.
      const token = keyToken('users', 'bob');
      expect(modelWalk(modelRing(THREE), token)).to.deep.equal(['node-a', 'node-b', 'node-c']);
      expect(preferenceList(ring, token, 2)).to.deep.equal({ primaries: ['node-a', 'node-c'], fallbacks: ['node-b'] });
    });

    it('refuses n below 1 and negative fallbacks', () => {
      const ring = buildRing(THREE);
      expect(() => preferenceList(ring, 0, 0)).to.throw(AssertionError);
      expect(() => preferenceList(ring, 0, 2, { fallbacks: -1 })).to.throw(AssertionError);
    });

    it('ring.preferenceListFor is preferenceList at the key’s token', () => {
      const ring = buildRing(members(5, 2));
      const alive = (id: string): boolean => id !== 'node-2';
      for (const key of ['a', 'b', 'ключ', '🔑']) {
        expect(ring.preferenceListFor('bucket', key, 3, { alive })).to.deep.equal(preferenceList(ring, keyToken('bucket', key), 3, { alive }));
      }
    });
  });

  describe('golden 3-node ring', () => {
    // Computed once and hard-coded; also checked against the naive model in ring-model.ts.
    // (bucket, key, token, primaries n=2, fallbacks n=2, primaries n=3)
    const GOLDEN: readonly (readonly [string, string, number, string[], string[], string[]])[] = [
      ['users', 'alice', 3863318648, ['node-b', 'node-c'], ['node-a'], ['node-b', 'node-c', 'node-a']],
      ['users', 'bob', 127988662, ['node-a', 'node-c'], ['node-b'], ['node-a', 'node-b', 'node-c']],
      ['café', 'crème brûlée', 2732306231, ['node-a', 'node-c'], ['node-b'], ['node-a', 'node-b', 'node-c']],
      ['日本語', 'キー', 880385937, ['node-b', 'node-c'], ['node-a'], ['node-b', 'node-a', 'node-c']],
      ['emoji', '🦀🌈', 2163342807, ['node-a', 'node-c'], ['node-b'], ['node-a', 'node-b', 'node-c']],
      ['b', 'k\u0000z', 2830782707, ['node-b', 'node-c'], ['node-a'], ['node-b', 'node-a', 'node-c']],
    ];
    const ring = buildRing(THREE);
    const model = modelRing(THREE);

    it('pins the checksum of the ring and of its stratified variant', () => {
      expect(ring.checksum).to.equal('48e9b3c565ab5736666229c553c458b5f23cf904e4d3041206af4d08e4d4cf58');
      expect(buildRing(THREE, { placement: 'stratified' }).checksum).to.equal('d1993b112bacd29574a204f82807a0ba9743453d27e8350a1069aa6bbbab40ea');
    });

    it('pins the preference lists of ASCII, non-ASCII, emoji and zero-byte keys', () => {
      for (const [bucket, key, token, primaries2, fallbacks2, primaries3] of GOLDEN) {
        const name = JSON.stringify([bucket, key]);
        expect(keyToken(bucket, key), name).to.equal(token);
        expect(ring.preferenceListFor(bucket, key, 2), name).to.deep.equal({ primaries: primaries2, fallbacks: fallbacks2 });
        expect(ring.preferenceListFor(bucket, key, 3).primaries, name).to.deep.equal(primaries3);
        expect(modelPrimaries(model, token, 2), name).to.deep.equal(primaries2);
        expect(modelPrimaries(model, token, 3), name).to.deep.equal(primaries3);
      }
    });
  });

  describe('ownership', () => {
    it('sums exactly to the whole ring for primaries and n rings for replicas', () => {
      for (const [count, zones, n] of [
        [1, 1, 3],
        [2, 1, 3],
        [5, 1, 3],
        [7, 3, 3],
        [6, 2, 5],
      ] as const) {
        const owned = ownership(buildRing(members(count, zones)), n);
        expect(owned.reduce((sum, o) => sum + o.primaryTokens, 0)).to.equal(RING_TOKENS);
        expect(owned.reduce((sum, o) => sum + o.replicaTokens, 0)).to.equal(Math.min(n, count) * RING_TOKENS);
        expect(owned.reduce((sum, o) => sum + o.primary, 0)).to.equal(1);
        expect(owned.reduce((sum, o) => sum + o.replica, 0)).to.equal(Math.min(n, count));
      }
    });

    it('gives a lone node the whole ring, and every node every key when n covers them all', () => {
      expect(ownership(buildRing([{ id: 'solo', zone: 'z', vnodes: 1 }]), 3)).to.deep.equal([
        { id: 'solo', zone: 'z', vnodes: 1, primaryTokens: RING_TOKENS, replicaTokens: RING_TOKENS, primary: 1, replica: 1 },
      ]);
      for (const o of ownership(buildRing(members(3, 1)), 3)) expect(o.replica).to.equal(1);
    });

    it('counts a vnode’s range from just after the previous token to its own', () => {
      // Two nodes with one vnode each: each owns the arc ending at its token.
      const ring = buildRing([
        { id: 'x', zone: 'z', vnodes: 1 },
        { id: 'y', zone: 'z', vnodes: 1 },
      ]);
      const [tx, ty] = [vnodeToken('x', 0), vnodeToken('y', 0)];
      const x = rangeSize({ start: ty, end: tx });
      const owned = ownership(ring, 1);
      expect(owned.map((o) => o.primaryTokens)).to.deep.equal([x, RING_TOKENS - x]);
    });
  });

  describe('ownershipDiff', () => {
    const before = buildRing(members(5, 1));
    const joined = buildRing([...members(5, 1), { id: 'node-new', zone: 'zone-0', vnodes: 32 }]);

    it('finds no change between equal rings', () => {
      expect(ownershipDiff(before, buildRing([...members(5, 1)].reverse()), 3)).to.deep.equal([]);
    });

    it('gives a joining node exactly its replica ownership, each range taken from one old replica', () => {
      const changes = ownershipDiff(before, joined, 3);
      expect(changes.length).to.be.greaterThan(0);
      for (const change of changes) {
        expect(change.gained).to.deep.equal(['node-new']);
        expect(change.lost).to.have.length(1);
        expect(change.before).to.include(change.lost[0]);
      }
      const moved = changes.reduce((sum, c) => sum + rangeSize(c.range), 0);
      const owned = ownership(joined, 3).find((o) => o.id === 'node-new');
      expect(moved).to.equal(owned?.replicaTokens);
    });

    it('gives a leaving node’s replica ownership to the others', () => {
      const changes = ownershipDiff(joined, before, 3);
      for (const change of changes) expect(change.lost).to.deep.equal(['node-new']);
      const moved = changes.reduce((sum, c) => sum + rangeSize(c.range), 0);
      expect(moved).to.equal(ownership(joined, 3).find((o) => o.id === 'node-new')?.replicaTokens);
    });

    it('covers a token exactly when its replica set changes, with the replicas both rings give it', () => {
      const model = { before: modelRing(members(5, 1)), after: modelRing([...members(5, 1), { id: 'node-new', zone: 'zone-0', vnodes: 32 }]) };
      const changes = ownershipDiff(before, joined, 3);
      const prng = new Prng(0x1e57_0009);
      // Random tokens, and the ends of every range and the tokens just past them.
      const tokens = [...Array.from({ length: 1000 }, () => prng.nextUint32()), ...changes.flatMap((c) => [c.range.end, (c.range.end + 1) % RING_TOKENS])];
      for (const token of tokens) {
        const was = modelPrimaries(model.before, token, 3);
        const now = modelPrimaries(model.after, token, 3);
        const covering = changes.filter((c) => rangeContains(c.range, token));
        const moved = !(was.length === now.length && was.every((id) => now.includes(id)));
        expect(covering, `token ${token}`).to.have.length(moved ? 1 : 0);
        if (moved) expect([covering[0]?.before, covering[0]?.after], `token ${token}`).to.deep.equal([was, now]);
      }
    });

    it('moves the whole ring when the old ring is empty, in one range to a lone node', () => {
      const changes = ownershipDiff(buildRing([]), before, 3);
      expect(changes.reduce((sum, c) => sum + rangeSize(c.range), 0)).to.equal(RING_TOKENS);
      for (const change of changes) expect(change.before).to.deep.equal([]);
      const lone = ownershipDiff(buildRing([]), buildRing([{ id: 'solo', zone: 'z', vnodes: 8 }]), 3);
      expect(lone).to.have.length(1);
      expect(lone[0]?.range.start).to.equal(lone[0]?.range.end);
      expect(lone[0]?.gained).to.deep.equal(['solo']);
    });
  });

  describe('stratified placement', () => {
    it('pins stratifiedVnodeToken, since every node of a cluster must compute the same tokens', () => {
      expect(stratifiedVnodeToken('node-a', 0, 256)).to.equal(9038621);
      expect(stratifiedVnodeToken('node-a', 255, 256)).to.equal(4292127124);
      expect(stratifiedVnodeToken('nœud-é', 7, 64)).to.equal(470402665);
      expect(stratifiedVnodeToken('n-0011aabb', 3, 5)).to.equal(2891657628);
    });

    it('puts vnode i in stratum i, at the relative offset of its plain hash', () => {
      for (const vnodes of [1, 3, 5, 64, 256, 4096]) {
        for (const i of [0, 1, vnodes - 1]) {
          if (i >= vnodes) continue;
          const start = Math.floor((i * RING_TOKENS) / vnodes);
          const end = Math.floor(((i + 1) * RING_TOKENS) / vnodes);
          const token = stratifiedVnodeToken('node-x', i, vnodes);
          expect(token).to.be.at.least(start).and.lessThan(end);
          expect(Math.abs((token - start) / (end - start) - vnodeToken('node-x', i) / RING_TOKENS)).to.be.lessThan(1e-6);
        }
      }
    });

    it('builds rings from those tokens, with the same preference-list rules', () => {
      const input = members(5, 2, 64);
      const ring = buildRing(input, { placement: 'stratified' });
      const model = modelRing(input, (m, i) => stratifiedVnodeToken(m.id, i, m.vnodes));
      const prng = new Prng(0x1e57_0008);
      for (let i = 0; i < 200; i++) {
        const token = prng.nextUint32();
        expect(preferenceList(ring, token, 3).primaries).to.deep.equal(modelPrimaries(model, token, 3));
      }
    });
  });

  describe('token ranges', () => {
    it('measures and tests (start, end], wrapping, with start = end the whole ring', () => {
      expect(rangeSize({ start: 10, end: 20 })).to.equal(10);
      expect(rangeSize({ start: RING_TOKENS - 5, end: 4 })).to.equal(9);
      expect(rangeSize({ start: 7, end: 7 })).to.equal(RING_TOKENS);
      expect(rangeContains({ start: 10, end: 20 }, 10)).to.equal(false);
      expect(rangeContains({ start: 10, end: 20 }, 20)).to.equal(true);
      expect(rangeContains({ start: RING_TOKENS - 5, end: 4 }, 0)).to.equal(true);
      expect(rangeContains({ start: RING_TOKENS - 5, end: 4 }, RING_TOKENS - 5)).to.equal(false);
      expect(rangeContains({ start: 7, end: 7 }, 7)).to.equal(true);
    });
  });
});
