/**
 * Proves the small parts of membership on their own: which report about a member is newer
 * (a strict order: property-tested for irreflexivity, asymmetry and transitivity on random
 * states), the broadcast queue (newer news replaces older, least-sent first, dropped after
 * its retransmit limit), Lifeguard's suspicion timeout (from max down to min as independent
 * confirmations arrive, duplicates not counted), and the profile formulas.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import type { MemberState } from '../../lib/codec/messages.js';
import { Broadcasts } from '../../lib/membership/broadcasts.js';
import { supersedes } from '../../lib/membership/member.js';
import { PROFILES, profileTicks, pushPullTicks, retransmitLimit, suspicionMinTicks } from '../../lib/membership/profile.js';
import { Suspicion } from '../../lib/membership/suspicion.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

const state = (over: Partial<MemberState> = {}): MemberState => ({ id: 'n1', addr: 'a:1', zone: 'z', vnodes: 8, status: 'up', live: 'alive', inc: 1, ...over });

const arbitraryState = fc.record({
  inc: fc.integer({ min: 0, max: 4 }),
  live: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const),
  status: fc.constantFrom('joining' as const, 'up' as const, 'leaving' as const, 'left' as const),
}).map((s) => state(s));

describe('membership parts', () => {
  describe('supersedes', () => {
    it('orders by incarnation, then liveness (alive < suspect < dead), then status', () => {
      expect(supersedes(state({ inc: 2 }), state({ inc: 1, live: 'dead' }))).to.equal(true);
      expect(supersedes(state({ inc: 1, live: 'dead' }), state({ inc: 2 }))).to.equal(false);
      expect(supersedes(state({ live: 'suspect' }), state())).to.equal(true);
      expect(supersedes(state(), state({ live: 'suspect' }))).to.equal(false);
      expect(supersedes(state({ live: 'dead' }), state({ live: 'suspect' }))).to.equal(true);
      expect(supersedes(state({ status: 'left' }), state({ status: 'leaving' }))).to.equal(true);
      expect(supersedes(state(), state())).to.equal(false);
    });

    it(`is a strict order on random states (seed ${seed})`, () => {
      fc.assert(
        fc.property(arbitraryState, arbitraryState, arbitraryState, (a, b, c) => {
          expect(supersedes(a, a)).to.equal(false);
          if (supersedes(a, b)) expect(supersedes(b, a)).to.equal(false);
          if (supersedes(a, b) && supersedes(b, c)) expect(supersedes(a, c)).to.equal(true);
        }),
        { seed, numRuns: 2000 },
      );
    });
  });

  describe('broadcasts', () => {
    it('keeps one update per member, the newest', () => {
      const queue = new Broadcasts();
      queue.push(state({ inc: 1 }));
      queue.push(state({ inc: 2 }));
      expect(queue.size).to.equal(1);
      expect(queue.take(10, 5)).to.deep.equal([state({ inc: 2 })]);
    });

    it('sends least-sent news first and drops an update after its limit', () => {
      const queue = new Broadcasts();
      queue.push(state({ id: 'a' }));
      expect(queue.take(1, 3).map((s) => s.id)).to.deep.equal(['a']);
      queue.push(state({ id: 'b' }));
      expect(queue.take(1, 3).map((s) => s.id)).to.deep.equal(['b']);
      expect(queue.take(2, 3).map((s) => s.id).sort()).to.deep.equal(['a', 'b']);
      expect(queue.take(2, 3).map((s) => s.id).sort()).to.deep.equal(['a', 'b']);
      expect(queue.size).to.equal(0);
      expect(queue.take(2, 3)).to.deep.equal([]);
    });
  });

  describe('suspicion (Lifeguard)', () => {
    it('starts at its maximum and reaches the minimum with the expected confirmations', () => {
      const s = new Suspicion(100, 3, 40, 120, 3, 'a');
      expect(s.timeoutTicks).to.equal(120);
      expect(s.expired(219)).to.equal(false);
      expect(s.expired(220)).to.equal(true);
      expect(s.confirm('a')).to.equal(false);
      expect(s.confirm('b')).to.equal(true);
      const one = s.timeoutTicks;
      expect(one).to.be.below(120).and.above(40);
      s.confirm('c');
      s.confirm('d');
      expect(s.timeoutTicks).to.equal(40);
      s.confirm('e');
      expect(s.timeoutTicks).to.equal(40);
    });

    it('uses the minimum when no confirmation can be expected', () => {
      expect(new Suspicion(0, 1, 40, 120, 0, 'a').timeoutTicks).to.equal(40);
    });
  });

  describe('profiles', () => {
    const lan = profileTicks(PROFILES.lan, 10);

    it('turns milliseconds into ticks', () => {
      expect(lan.probeIntervalTicks).to.equal(50);
      expect(lan.probeTimeoutTicks).to.equal(25);
      expect(lan.gossipIntervalTicks).to.equal(20);
    });

    it('grows suspicion and retransmits with log(n) and push-pull past 32 members', () => {
      expect(suspicionMinTicks(lan, 1)).to.equal(4 * 50);
      expect(suspicionMinTicks(lan, 100)).to.equal(4 * 2 * 50);
      expect(retransmitLimit(lan, 5)).to.equal(9);
      expect(retransmitLimit(lan, 100)).to.equal(21);
      expect(pushPullTicks(lan, 32)).to.equal(lan.pushPullIntervalTicks);
      expect(pushPullTicks(lan, 128)).to.equal(3 * lan.pushPullIntervalTicks);
    });

    it('keeps every probe timeout inside its interval', () => {
      for (const profile of Object.values(PROFILES)) expect(profile.probeTimeoutMs).to.be.below(profile.probeIntervalMs);
    });
  });
});
