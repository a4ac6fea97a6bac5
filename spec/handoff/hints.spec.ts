/**
 * Proves the hint book: counts and budget per target, delivery rounds only to alive targets
 * with hints and nothing in flight, acknowledgement of exactly the batch sent, and backoff
 * after a refused or timed-out batch.
 */

import { expect } from 'chai';
import { HintBook, objectBytes } from '../../lib/handoff/hints.js';

const item = (key: string) => ({ bucket: 'b', key, object: { entries: [{ actor: 'n1/e1', counter: 1, values: [new Uint8Array(10)] }] } });
const timing = { intervalTicks: 10, batchMax: 2, timeoutTicks: 50 };

describe('handoff: hint book', () => {
  it('starts from what the store holds and counts hints stored, replaced and removed', () => {
    const book = new HintBook({ countMax: 10, bytesMax: 1000 }, timing, [{ target: 'n2', count: 3, bytes: 90 }]);
    book.stored('n2', 30, undefined);
    book.stored('n2', 40, 30);
    book.stored('n3', 20, undefined);
    expect(book.stats()).to.deep.equal([
      { target: 'n2', pending: 4, bytes: 130, delivered: 0, dropped: 0 },
      { target: 'n3', pending: 1, bytes: 20, delivered: 0, dropped: 0 },
    ]);
    book.removed('n3', 20);
    expect(book.pendingTotal).to.equal(4);
    expect(book.pendingTargets).to.deep.equal(['n2']);
    expect(book.stats()[1]).to.deep.equal({ target: 'n3', pending: 0, bytes: 0, delivered: 1, dropped: 0 });
  });

  it('admits hints within the budget, and always one that replaces a hint already kept', () => {
    const book = new HintBook({ countMax: 2, bytesMax: 100 }, timing, []);
    expect(book.admits('n2', false, 60)).to.equal(true);
    book.stored('n2', 60, undefined);
    expect(book.admits('n2', false, 50)).to.equal(false);
    expect(book.admits('n2', false, 40)).to.equal(true);
    book.stored('n2', 40, undefined);
    expect(book.admits('n2', false, 1)).to.equal(false);
    expect(book.admits('n2', true, 500)).to.equal(true);
    book.dropped('n2');
    expect(book.stats()[0]?.dropped).to.equal(1);
  });

  it('delivers at each round to alive targets with hints and no batch in flight', () => {
    const book = new HintBook({ countMax: 10, bytesMax: 1000 }, timing, [
      { target: 'n2', count: 1, bytes: 10 },
      { target: 'n3', count: 1, bytes: 10 },
    ]);
    expect(book.due(1, (t) => t !== 'n3')).to.deep.equal(['n2']);
    expect(book.due(2, () => true)).to.deep.equal([]);
    book.sent('n2', 7, [item('k')], 2);
    expect(book.due(11, () => true)).to.deep.equal(['n3']);
    expect(book.acknowledged('n2', 8)).to.equal(undefined);
    expect(book.acknowledged('n3', 7)).to.equal(undefined);
    expect(book.acknowledged('n2', 7)).to.deep.equal([item('k')]);
    expect(book.acknowledged('n2', 7)).to.equal(undefined);
  });

  it('backs off after a refused or timed-out batch, doubling each time', () => {
    const book = new HintBook({ countMax: 10, bytesMax: 1000 }, timing, [{ target: 'n2', count: 1, bytes: 10 }]);
    const rounds: number[] = [];
    let rid = 1;
    for (let now = 1; now < 400; now++) {
      if (book.due(now, () => true).includes('n2')) {
        rounds.push(now);
        book.sent('n2', rid, [item('k')], now);
        expect(book.refused('n2', rid, now)).to.equal(true);
        rid++;
      }
    }
    const gaps = rounds.slice(1).map((t, i) => t - (rounds[i] as number));
    expect(gaps.slice(0, 4)).to.deep.equal([10, 20, 40, 80]);
    const timedOut = new HintBook({ countMax: 10, bytesMax: 1000 }, timing, [{ target: 'n2', count: 1, bytes: 10 }]);
    expect(timedOut.due(1, () => true)).to.deep.equal(['n2']);
    timedOut.sent('n2', 1, [item('k')], 1);
    expect(timedOut.due(51, () => true)).to.deep.equal([]);
    expect(timedOut.acknowledged('n2', 1)).to.equal(undefined);
  });

  it('estimates an object by its values and actors', () => {
    expect(objectBytes({ entries: [] })).to.equal(8);
    expect(objectBytes(item('k').object)).to.equal(8 + 5 + 12 + 13);
    expect(objectBytes({ entries: [{ actor: 'a', counter: 2, values: [null, null] }] })).to.equal(8 + 13 + 2);
  });
});
