/**
 * Proves the ring's laws on random member tables (fast-check, seeded; the seed prints and
 * RING_SEED=<seed> repeats a run):
 * - preference lists, fallbacks included, equal those of a naive model (ring-model.ts) at
 *   random tokens, at every vnode token and just past it, for any n, zones and dead nodes;
 * - the ring and its checksum do not depend on the order of the member table;
 * - lookups are stable under unrelated membership changes: adding or removing one node
 *   changes a key's primaries only by inserting or removing that node (dropping at most one
 *   other when it is inserted), and keys the node does not replicate keep their primaries;
 * - ownership sums exactly to 1 and min(n, nodes), and equals the model's per-range count;
 * - an ownership diff covers a token exactly when the model's replica sets differ there.
 * Every property runs under both vnode placements.
 */

import { expect } from 'chai';
import fc from 'fast-check';

import {
  buildRing,
  ownership,
  ownershipDiff,
  preferenceList,
  RING_TOKENS,
  rangeContains,
  stratifiedVnodeToken,
  vnodeToken,
  type RingMember,
  type VnodePlacement,
} from '../../lib/ring/index.js';
import { modelFallbacks, modelPrimaries, modelRing, type ModelRing } from './ring-model.js';

const SEED = Number(process.env.RING_SEED ?? 0x21e6_5eed);
const RUNS = 200;

const ids = fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }));

/** At least two members, so that one of them can be the node that joins or leaves. */
const memberTable = fc
  .uniqueArray(ids, { minLength: 2, maxLength: 8 })
  .chain((names) =>
    fc.tuple(...names.map((id) => fc.record({ id: fc.constant(id), zone: fc.constantFrom('z1', 'z2', 'z3', 'z4'), vnodes: fc.integer({ min: 1, max: 12 }) }))),
  )
  .map((members): RingMember[] => members);

const placement = fc.constantFrom<VnodePlacement>('hashed', 'stratified');
const token = fc.integer({ min: 0, max: RING_TOKENS - 1 });

function model(members: readonly RingMember[], how: VnodePlacement): ModelRing {
  return modelRing(members, how === 'hashed' ? (m, i) => vnodeToken(m.id, i) : (m, i) => stratifiedVnodeToken(m.id, i, m.vnodes));
}

/** Random tokens, every vnode token of the rings and the token just past each. */
function probes(random: readonly number[], ...rings: ModelRing[]): number[] {
  const at = rings.flatMap((r) => r.vnodes.flatMap((v) => [v.token, (v.token + 1) % RING_TOKENS]));
  return [...random, ...at, 0, RING_TOKENS - 1];
}

function isSubsequence(short: readonly string[], long: readonly string[]): boolean {
  let i = 0;
  for (const id of long) if (id === short[i]) i++;
  return i === short.length;
}

describe('ring laws (property)', () => {
  before(() => {
    console.log(`      fast-check seed ${SEED} (repeat: RING_SEED=${SEED} npx mocha spec/ring/ring.property.spec.ts)`);
  });

  it('preference lists equal the naive model’s, fallbacks and dead nodes included', () => {
    fc.assert(
      fc.property(memberTable, placement, fc.array(token, { maxLength: 20 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.func(fc.boolean()), (members, how, random, n, fallbacks, aliveBit) => {
        const ring = buildRing(members, { placement: how });
        const reference = model(members, how);
        const alive = (id: string): boolean => aliveBit(id);
        for (const t of probes(random, reference)) {
          const list = preferenceList(ring, t, n, { alive, fallbacks });
          expect(list.primaries, `token ${t}`).to.deep.equal(modelPrimaries(reference, t, n));
          expect(list.fallbacks, `token ${t}`).to.deep.equal(modelFallbacks(reference, t, n, fallbacks, alive));
          expect(list.primaries).to.have.length(Math.min(n, members.length));
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('builds the same ring and checksum whatever the order of the member table', () => {
    fc.assert(
      fc.property(
        memberTable.chain((members) => fc.tuple(fc.constant(members), fc.shuffledSubarray(members, { minLength: members.length, maxLength: members.length }))),
        placement,
        ([members, shuffled], how) => {
          const a = buildRing(members, { placement: how });
          const b = buildRing(shuffled, { placement: how });
          expect(b.checksum).to.equal(a.checksum);
          expect(Array.from(b.tokens)).to.deep.equal(Array.from(a.tokens));
          expect(Array.from(b.tokens, (_, k) => b.ownerIndexAt(k))).to.deep.equal(Array.from(a.tokens, (_, k) => a.ownerIndexAt(k)));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('is stable under unrelated membership changes: one node joining or leaving moves only that node', () => {
    fc.assert(
      fc.property(memberTable, placement, fc.nat(), fc.array(token, { maxLength: 20 }), fc.integer({ min: 1, max: 5 }), (members, how, pick, random, n) => {
        const changed = members[pick % members.length] as RingMember;
        const without = buildRing(
          members.filter((m) => m !== changed),
          { placement: how },
        );
        const withIt = buildRing(members, { placement: how });
        for (const t of probes(random, model(members, how))) {
          const small = preferenceList(without, t, n).primaries;
          const large = preferenceList(withIt, t, n).primaries;
          const context = `token ${t}, node ${JSON.stringify(changed.id)}: ${JSON.stringify(small)} → ${JSON.stringify(large)}`;
          if (!large.includes(changed.id)) {
            // Keys the node does not replicate keep their primaries, in order.
            expect(large, context).to.deep.equal(small);
            continue;
          }
          const rest = large.filter((id) => id !== changed.id);
          expect(isSubsequence(rest, small), context).to.equal(true);
          expect(small.length - rest.length, context).to.equal(small.length < n ? 0 : 1);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('ownership sums to 1 (primary) and min(n, nodes) (replica), and equals the model per range', () => {
    fc.assert(
      fc.property(memberTable, placement, fc.integer({ min: 1, max: 5 }), (members, how, n) => {
        const owned = ownership(buildRing(members, { placement: how }), n);
        expect(owned.reduce((sum, o) => sum + o.primary, 0)).to.equal(1);
        expect(owned.reduce((sum, o) => sum + o.replica, 0)).to.equal(Math.min(n, members.length));

        // The model: each distinct vnode token ends a range (previous, token] whose keys all
        // have the preference list at its end.
        const reference = model(members, how);
        const ends = [...new Set(reference.vnodes.map((v) => v.token))];
        const expected = new Map<string, { primary: number; replica: number }>(members.map((m) => [m.id, { primary: 0, replica: 0 }]));
        ends.forEach((end, j) => {
          const previous = ends[j === 0 ? ends.length - 1 : j - 1] as number;
          const size = ends.length === 1 ? RING_TOKENS : (end - previous + RING_TOKENS) % RING_TOKENS;
          const replicas = modelPrimaries(reference, end, n);
          const owner = expected.get(replicas[0] as string);
          if (owner !== undefined) owner.primary += size;
          for (const id of replicas) {
            const entry = expected.get(id);
            if (entry !== undefined) entry.replica += size;
          }
        });
        for (const o of owned) expect([o.primaryTokens, o.replicaTokens], o.id).to.deep.equal([expected.get(o.id)?.primary, expected.get(o.id)?.replica]);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('an ownership diff covers a token exactly when its replica set changes', () => {
    fc.assert(
      fc.property(memberTable, memberTable, placement, fc.array(token, { maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (a, b, how, random, n) => {
        // Two unrelated tables and one that differs from the first by one member.
        const pairs: [RingMember[], RingMember[]][] = [
          [a, b],
          [a, a.slice(1)],
          [a.slice(1), a],
        ];
        for (const [old, next] of pairs) {
          const changes = ownershipDiff(buildRing(old, { placement: how }), buildRing(next, { placement: how }), n);
          const [was, now] = [model(old, how), model(next, how)];
          for (const t of probes(random, was, now)) {
            const before = modelPrimaries(was, t, n);
            const after = modelPrimaries(now, t, n);
            const moved = !(before.length === after.length && before.every((id) => after.includes(id)));
            const covering = changes.filter((c) => rangeContains(c.range, t));
            expect(covering, `token ${t}`).to.have.length(moved ? 1 : 0);
            if (moved) {
              const change = covering[0];
              expect([change?.before, change?.after], `token ${t}`).to.deep.equal([before, after]);
              expect(change?.gained).to.deep.equal(after.filter((id) => !before.includes(id)));
              expect(change?.lost).to.deep.equal(before.filter((id) => !after.includes(id)));
            }
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
