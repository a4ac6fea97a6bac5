/**
 * Cleanup (lib/handoff/cleanup.ts): the spans a node does not replicate are exactly the rest
 * of the ring, and a pass removes what lies in them, a batch at a time with one on its way to
 * disk, stopping at the first failed delete.
 */

import { expect } from 'chai';
import type { KvObject } from '../../lib/clock/object.js';
import { CLEANUP_BATCH_KEYS, CleanupPass, foreignSpans, spansShare } from '../../lib/handoff/cleanup.js';
import { buildRing } from '../../lib/ring/ring.js';
import { rangesWith, joinedBounds } from '../../lib/ring/shared-ranges.js';
import { RING_TOKENS } from '../../lib/ring/token-range.js';

const OBJECT = { entries: [] } as unknown as KvObject;

function ring(nodes: number) {
  return buildRing(Array.from({ length: nodes }, (_, i) => ({ id: `n${i + 1}`, zone: `z${i + 1}`, vnodes: 64 })));
}

/** Whether token t lies in one of the spans. */
function inSpans(spans: readonly { fromToken: number; toToken: number }[], t: number): boolean {
  return spans.some((s) => (s.fromToken === s.toToken ? true : s.fromToken < s.toToken ? t >= s.fromToken && t < s.toToken : t >= s.fromToken || t < s.toToken));
}

describe('cleanup', () => {
  describe('foreign spans', () => {
    it('are the rest of the ring: every token either held or foreign, never both', () => {
      const r = ring(5);
      for (const node of ['n1', 'n3', 'n5']) {
        const held = joinedBounds(rangesWith(r, [node], 3));
        const foreign = foreignSpans(r, node, 3);
        expect(spansShare(held) + spansShare(foreign)).to.be.closeTo(1, 1e-9);
        for (let i = 0; i < 2000; i++) {
          const t = Math.floor((i / 2000) * RING_TOKENS) + 7;
          expect(inSpans(held, t) !== inSpans(foreign, t), `token ${t} of ${node}`).to.equal(true);
        }
      }
    });

    it('are nothing when the node replicates everything, and everything when it is not in the ring', () => {
      expect(foreignSpans(ring(3), 'n2', 3)).to.deep.equal([]);
      expect(foreignSpans(ring(1), 'n1', 3)).to.deep.equal([]);
      expect(foreignSpans(ring(3), 'n9', 3)).to.deep.equal([{ fromToken: 0, toToken: 0 }]);
    });
  });

  describe('a pass', () => {
    class Store {
      readonly keys = new Map<string, number>(); // key -> token
      pending: { slots: { key: string }[]; done: (failure: string | undefined, out: never[]) => void } | undefined;
      batches = 0;
      scan = (from: number, to: number) =>
        [...this.keys]
          .filter(([, t]) => inSpans([{ fromToken: from, toToken: to }], t))
          .sort((a, b) => a[1] - b[1])
          .map(([key]) => ({ bucket: 'b', key, object: OBJECT }));
      remove = (slots: readonly { bucket: string; key: string }[], _out: never[], done: (failure: string | undefined, out: never[]) => void) => {
        expect(this.pending, 'one batch in flight at a time').to.equal(undefined);
        this.batches++;
        this.pending = { slots: [...slots], done };
      };
      /** Makes the batch in flight durable (or fails it). */
      complete(failure?: string): void {
        const p = this.pending!;
        this.pending = undefined;
        if (failure === undefined) for (const s of p.slots) this.keys.delete(s.key);
        p.done(failure, []);
      }
    }

    it('removes every key in its spans and none outside, in batches', () => {
      const store = new Store();
      for (let i = 0; i < 1000; i++) store.keys.set(`k${i}`, (i * 4_294_967) % RING_TOKENS);
      const spans = [{ fromToken: 0, toToken: 2 ** 31 }];
      const inside = [...store.keys.values()].filter((t) => t < 2 ** 31).length;
      const pass = new CleanupPass<never>(store, 'ring', spans);
      for (let tick = 0; tick < 100 && pass.running; tick++) {
        pass.onTick(CLEANUP_BATCH_KEYS, []);
        if (store.pending !== undefined) store.complete();
      }
      expect(pass.progress).to.deep.include({ done: true, aborted: null, keysRemoved: inside, spans: 1, spansDone: 1 });
      expect([...store.keys.values()].every((t) => t >= 2 ** 31)).to.equal(true);
      expect(store.batches).to.equal(Math.ceil(inside / CLEANUP_BATCH_KEYS));
    });

    it('sends nothing while a batch is on its way, and stops at a failed delete', () => {
      const store = new Store();
      for (let i = 0; i < 10; i++) store.keys.set(`k${i}`, i);
      const pass = new CleanupPass<never>(store, 'ring', [{ fromToken: 0, toToken: 0 }]);
      pass.onTick(4, []);
      pass.onTick(4, []);
      expect(store.batches).to.equal(1);
      store.complete('disk full');
      expect(pass.progress).to.deep.include({ done: true, aborted: 'a local delete failed: disk full', keysRemoved: 0 });
      pass.onTick(4, []);
      expect(store.batches).to.equal(1);
    });
  });
});
