/**
 * Transfer plans: what a joining node pulls and a leaving node pushes, and a change's summary.
 *
 * A join pulls every range it gains from every replica the range had; a leave pushes every
 * range it loses to the node that gains it; nodes that were members before a join gain
 * nothing; a new plan keeps the state of the tasks it still has.
 */

import { expect } from 'chai';
import { carryOver, planTransfers, summarizeChange } from '../../lib/handoff/transfers.js';
import { buildRing } from '../../lib/ring/ring.js';
import { ownershipDiff } from '../../lib/ring/ownership-diff.js';
import { RING_TOKENS } from '../../lib/ring/token-range.js';

const member = (id: string) => ({ id, zone: id, vnodes: 32 });
const three = buildRing(['a', 'b', 'c'].map(member));
const four = buildRing(['a', 'b', 'c', 'd'].map(member));

describe('transfer plans', () => {
  it('a joining node pulls what it gains from every replica the range had', () => {
    const tasks = planTransfers(three, four, 'd', 3);
    expect(tasks.map((t) => [t.peer, t.direction])).to.deep.equal([
      ['a', 'in'],
      ['b', 'in'],
      ['c', 'in'],
    ]);
    // With three nodes and n = 3 every old node held everything d gains, so each is asked for all of it.
    const gained = ownershipDiff(three, four, 3).reduce((sum, c) => sum + (c.gained.includes('d') ? ((c.range.end - c.range.start + RING_TOKENS) % RING_TOKENS || RING_TOKENS) : 0), 0) / RING_TOKENS;
    for (const task of tasks) expect(task.share).to.be.closeTo(gained, 1e-9);
    expect(gained).to.be.within(0.6, 0.9);
    expect(tasks.every((t) => t.state === 'pending' && t.spans.length > 0)).to.equal(true);
  });

  it('the old nodes have nothing to do for a join: nothing moves between them', () => {
    for (const id of ['a', 'b', 'c']) expect(planTransfers(three, four, id, 3).filter((t) => t.direction === 'in')).to.deep.equal([]);
  });

  it('a leaving node pushes what it loses to the nodes that gain it', () => {
    const tasks = planTransfers(four, three, 'd', 3);
    expect(tasks.every((t) => t.direction === 'out')).to.equal(true);
    expect(tasks.map((t) => t.peer).sort()).to.deep.equal(['a', 'b', 'c']);
    const summary = summarizeChange(four, three, 3);
    const total = tasks.reduce((sum, t) => sum + t.share, 0);
    expect(total).to.be.closeTo(summary.moved, 1e-9);
  });

  it('summarizes a join: the new node gains n/(nodes) of the ring, nothing between existing nodes', () => {
    const summary = summarizeChange(three, four, 3);
    expect(summary.betweenExisting).to.equal(0);
    const d = summary.nodes.find((n) => n.node === 'd');
    expect(d?.gains).to.be.closeTo(summary.moved, 1e-9);
    expect(d?.gains).to.be.within(0.6, 0.9);
    for (const old of summary.nodes.filter((n) => n.node !== 'd')) expect(old.gains).to.equal(0);
  });

  it('a new plan keeps the state of the tasks it still has, and starts the others fresh', () => {
    const first = planTransfers(three, four, 'd', 3);
    first[0]!.state = 'done';
    first[1]!.state = 'failed';
    first[1]!.attempts = 3;
    const again = carryOver(first, planTransfers(three, four, 'd', 3));
    expect(again.map((t) => t.state)).to.deep.equal(['done', 'failed', 'pending']);
    expect(again[1]!.attempts).to.equal(3);
    const five = buildRing(['a', 'b', 'c', 'e'].map(member));
    const other = carryOver(first, planTransfers(five, buildRing(['a', 'b', 'c', 'e', 'd'].map(member)), 'd', 3));
    expect(other.every((t) => t.state === 'pending')).to.equal(true);
  });
});
