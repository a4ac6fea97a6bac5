/**
 * The pure parts of `chorus repair`, `remove`, `transfers` and `plan`: flag checks (plan takes
 * exactly one of --join, --leave, --remove; --vnodes is a whole number from 1 to 4096 and goes
 * with --join only; node ids and zones follow the configuration's name rule; --max-time is a
 * positive number of seconds) and the text each command prints for a node's answer.
 */

import { expect } from 'chai';
import { UsageError } from '../../lib/cli/client-command.js';
import {
  formatBytes,
  parseName,
  percent,
  planRequest,
  renderCleanup,
  renderPlan,
  renderRemove,
  renderRepairProgress,
  renderRepairSummary,
  renderTransfers,
  repairRequest,
  type PlanFlags,
  type PlanResult,
  type RemoveResult,
  type RepairStatusResult,
  type TransfersResult,
} from '../../lib/cli/topology-commands.js';

const BASE = { node: '127.0.0.1:7000', cluster: 'chorus', timeout: '5000' };

function planFlags(extra: Partial<PlanFlags>): PlanFlags {
  return { ...BASE, ...extra };
}

function usageMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(UsageError);
    return (error as UsageError).message;
  }
  expect.fail('expected a UsageError');
}

describe('cli: topology commands', () => {
  describe('plan flags', () => {
    it('needs one of --join, --leave, --remove', () => {
      expect(usageMessage(() => planRequest(planFlags({})))).to.equal('plan needs one of --join NODE_ID, --leave NODE_ID or --remove NODE_ID');
    });

    it('refuses two changes at once, naming both', () => {
      expect(usageMessage(() => planRequest(planFlags({ join: 'n4', leave: 'n1' })))).to.equal('plan takes one change at a time, got --join and --leave');
      expect(usageMessage(() => planRequest(planFlags({ join: 'n4', leave: 'n1', remove: 'n2' })))).to.match(/--join and --leave and --remove$/);
    });

    it('turns each change into the fields of the request', () => {
      expect(planRequest(planFlags({ join: 'n4' }))).to.deep.equal({ change: 'join', member: 'n4' });
      expect(planRequest(planFlags({ join: 'n4', vnodes: '128', zone: 'eu-1b' }))).to.deep.equal({ change: 'join', member: 'n4', vnodes: 128, zone: 'eu-1b' });
      expect(planRequest(planFlags({ leave: 'n2' }))).to.deep.equal({ change: 'leave', member: 'n2' });
      expect(planRequest(planFlags({ remove: 'n3' }))).to.deep.equal({ change: 'remove', member: 'n3' });
    });

    it('takes --vnodes from 1 to 4096 only', () => {
      expect(planRequest(planFlags({ join: 'n4', vnodes: '1' })).vnodes).to.equal(1);
      expect(planRequest(planFlags({ join: 'n4', vnodes: '4096' })).vnodes).to.equal(4096);
      for (const bad of ['0', '4097', '10000', '-1', '1.5', 'abc', '', ' 12']) {
        expect(usageMessage(() => planRequest(planFlags({ join: 'n4', vnodes: bad })))).to.equal(`--vnodes must be a whole number from 1 to 4096, got ${bad}`);
      }
    });

    it('takes --vnodes and --zone with --join only', () => {
      expect(usageMessage(() => planRequest(planFlags({ leave: 'n1', vnodes: '16' })))).to.equal('--vnodes and --zone go with --join only');
      expect(usageMessage(() => planRequest(planFlags({ remove: 'n1', zone: 'z1' })))).to.equal('--vnodes and --zone go with --join only');
    });

    it('checks node ids and zones', () => {
      expect(usageMessage(() => planRequest(planFlags({ remove: '' })))).to.equal('--remove needs a node id');
      expect(usageMessage(() => planRequest(planFlags({ join: 'x'.repeat(65) })))).to.match(/^--join must be 1 to 64 letters/);
      expect(usageMessage(() => planRequest(planFlags({ leave: 'n 1' })))).to.match(/^--leave must be 1 to 64 letters, digits, '\.', '_' or '-', got "n 1"$/);
      expect(usageMessage(() => planRequest(planFlags({ join: 'n4', zone: 'eu/1' })))).to.match(/^--zone must be 1 to 64 letters/);
      expect(planRequest(planFlags({ join: 'x'.repeat(64) })).member).to.have.length(64);
    });
  });

  describe('remove and repair flags', () => {
    it('checks NODE_ID', () => {
      expect(parseName('node-3.eu_1', 'NODE_ID')).to.equal('node-3.eu_1');
      expect(usageMessage(() => parseName('', 'NODE_ID'))).to.equal('NODE_ID needs a node id');
      expect(usageMessage(() => parseName('a'.repeat(65), 'NODE_ID'))).to.match(/^NODE_ID must be 1 to 64/);
    });

    it('follows a repair for an hour by default, or --max-time seconds', () => {
      expect(repairRequest({ ...BASE })).to.deep.equal({ maxTimeMs: 3_600_000 });
      expect(repairRequest({ ...BASE, maxTime: '90', bucket: 'users' })).to.deep.equal({ bucket: 'users', maxTimeMs: 90_000 });
      for (const bad of ['0', '-5', '1.5', 'soon', '']) {
        expect(usageMessage(() => repairRequest({ ...BASE, maxTime: bad }))).to.equal(`--max-time must be a positive whole number of seconds, got ${bad}`);
      }
      expect(usageMessage(() => repairRequest({ ...BASE, bucket: '' }))).to.equal('--bucket must not be empty');
    });
  });

  describe('units', () => {
    it('prints bytes in binary units and shares as percentages', () => {
      expect(formatBytes(0)).to.equal('0 bytes');
      expect(formatBytes(1)).to.equal('1 byte');
      expect(formatBytes(1023)).to.equal('1023 bytes');
      expect(formatBytes(1536)).to.equal('1.5 KiB');
      expect(formatBytes(1024 * 1024 - 1)).to.equal('1.0 MiB');
      expect(formatBytes(3 * 1024 ** 3)).to.equal('3.0 GiB');
      expect(percent(0)).to.equal('0%');
      expect(percent(0.0004)).to.equal('<0.1%');
      expect(percent(0.25)).to.equal('25.0%');
      expect(percent(1.5)).to.equal('150.0%');
    });
  });

  describe('repair progress', () => {
    const running: RepairStatusResult = {
      node: 'n1',
      repair: { peersTotal: 4, peersDone: 1, peersFailed: 1, keysCompared: 12345, keysRepaired: 17, done: false },
      running: { peer: 'n3', kind: 'repair', phase: 'keys', leavesDiffering: 10, leavesDone: 3, keysCompared: 400, keysRepaired: 2 },
    };

    it('says peers finished of all, keys compared and repaired, and the peer under way', () => {
      expect(renderRepairProgress(running)).to.equal('repair: peers 2/4 (1 failed) · 12,345 keys compared · 17 repaired · with n3 (keys, 3/10 differing leaves)');
    });

    it('leads with a bar of peers finished when asked', () => {
      expect(renderRepairProgress(running, 10)).to.equal('repair: [#####.....] peers 2/4 (1 failed) · 12,345 keys compared · 17 repaired · with n3 (keys, 3/10 differing leaves)');
    });

    it('names the bucket, and an exchange of another kind the repair waits for', () => {
      const waiting: RepairStatusResult = {
        node: 'n1',
        repair: { bucket: 'users', peersTotal: 2, peersDone: 0, peersFailed: 0, keysCompared: 0, keysRepaired: 0, done: false },
        running: { peer: 'n2', kind: 'transfer', phase: 'tree', leavesDiffering: 0, leavesDone: 0, keysCompared: 0, keysRepaired: 0 },
      };
      expect(renderRepairProgress(waiting, 4)).to.equal('repair (bucket users): [....] peers 0/2 · 0 keys compared · 0 repaired · waiting for a transfer exchange with n2');
      expect(renderRepairProgress({ ...waiting, running: null })).to.match(/· between peers$/);
      expect(renderRepairProgress({ node: 'n1', repair: null, running: null })).to.equal('no repair has run at n1');
    });

    it('sums up a finished repair', () => {
      const summary = renderRepairSummary({ node: 'n1', peersTotal: 4, peersDone: 3, peersFailed: 1, keysCompared: 1_000_000, keysRepaired: 42, done: true });
      const lines = summary.split('\n');
      expect(lines[0]).to.equal('repair at n1 finished');
      expect(lines).to.include('peers:         3 done, 1 failed, of 4');
      expect(lines).to.include('keys compared: 1,000,000');
      expect(lines).to.include('keys repaired: 42');
      expect(summary).to.match(/1 exchange\(s\) ended early .*run chorus repair again/);
      const clean = renderRepairSummary({ node: 'n1', peersTotal: 2, peersDone: 2, peersFailed: 0, keysCompared: 10, keysRepaired: 0, done: true });
      expect(clean).not.to.match(/ended early/);
    });
  });

  describe('cleanup progress', () => {
    const base = { ring: 'abc', spans: 12, share: 0.25, spansDone: 5, keysRemoved: 12345, done: false, aborted: null };
    it('says keys removed and spans done while it runs', () => {
      expect(renderCleanup('n1', base)).to.equal('cleanup at n1: 12,345 keys removed, 5 of 12 spans done');
    });
    it('says done, or why it stopped', () => {
      expect(renderCleanup('n1', { ...base, spansDone: 12, done: true })).to.equal('cleanup at n1 done: 12,345 keys removed, 12 of 12 spans done');
      expect(renderCleanup('n1', { ...base, done: true, aborted: 'the ring changed' })).to.match(/^cleanup at n1 stopped: the ring changed \(12,345 keys removed/);
    });
  });

  describe('transfers', () => {
    const result: TransfersResult = {
      node: 'n1',
      status: 'leaving',
      transfers: [
        { peer: 'n2', direction: 'out', state: 'done', ranges: 12, share: 0.125, attempts: 1, keysCompared: 5000, keysMoved: 4800 },
        { peer: 'n3', direction: 'out', state: 'failed', ranges: 7, share: 0.0625, attempts: 3, keysCompared: 100, keysMoved: 0, lastError: 'timed out' },
      ],
      exchange: { peer: 'n3', kind: 'transfer', phase: 'tree', leavesDiffering: 4, leavesDone: 1, keysCompared: 100, keysRepaired: 0 },
      repair: null,
      rangesNeverExchanged: 5,
    };

    it('prints the status, a row per transfer, the exchange and the ranges never exchanged', () => {
      const lines = renderTransfers(result).split('\n');
      expect(lines[0]).to.equal('n1 is leaving: it is handing its ranges over');
      const header = lines.find((l) => l.startsWith('PEER'));
      expect(header).to.match(/^PEER\s+DIRECTION\s+STATE\s+RANGES\s+SHARE\s+KEYS MOVED\s+ATTEMPTS\s+ERROR$/);
      const n2 = lines.find((l) => l.startsWith('n2 '));
      const n3 = lines.find((l) => l.startsWith('n3 '));
      expect(n2?.split(/\s{2,}/)).to.deep.equal(['n2', 'out', 'done', '12', '12.5%', '4,800', '1']);
      expect(n3?.split(/\s{2,}/)).to.deep.equal(['n3', 'out', 'failed', '7', '6.3%', '0', '3', 'timed out']);
      expect(lines).to.include('2 transfer(s): 1 done, 0 running, 0 pending, 1 failed');
      expect(lines).to.include('exchange: transfer with n3, tree, 1/4 differing leaves, 100 keys compared, 0 repaired');
      expect(lines[lines.length - 1]).to.match(/^ranges never exchanged: 5 /);
    });

    it('says so when there is nothing to move', () => {
      const text = renderTransfers({ ...result, status: 'up', transfers: [], exchange: null, rangesNeverExchanged: 0 });
      expect(text.split('\n')).to.deep.equal(['n1 is up', 'no transfers: this node is neither joining nor leaving', 'exchange: none running', 'ranges never exchanged: 0']);
      expect(renderTransfers({ ...result, status: 'left', transfers: [] })).to.match(/^n1 has left the cluster\nno transfers: /);
    });

    it('shows a joining node and a repair under way', () => {
      const text = renderTransfers({
        ...result,
        status: 'joining',
        transfers: [{ peer: 'n2', direction: 'in', state: 'running', ranges: 3, share: 0.01, attempts: 1, keysCompared: 10, keysMoved: 9 }],
        repair: { peersTotal: 3, peersDone: 1, peersFailed: 0, keysCompared: 50, keysRepaired: 1, done: false },
      });
      expect(text).to.match(/^n1 is joining: its ranges are being streamed to it\n/);
      expect(text).to.match(/^n2\s+in\s+running\s+3\s+1\.0%\s+9\s+1$/m);
      expect(text).to.match(/^repair: peers 1\/3 · 50 keys compared · 1 repaired · waiting for a transfer exchange with n3$/m);
    });
  });

  describe('plan and remove', () => {
    const plan: PlanResult = {
      change: 'join',
      node: 'n4',
      n: 3,
      nodesBefore: 3,
      nodesAfter: 4,
      ranges: 412,
      moved: { share: 0.75, keys: 30000, bytes: 3 * 1024 * 1024 },
      betweenExistingNodes: { share: 0, keys: 0, bytes: 0 },
      nodes: [
        { node: 'n1', gains: { share: 0, keys: 0, bytes: 0 }, loses: { share: 0.25, keys: 10000, bytes: 1024 * 1024 } },
        { node: 'n4', gains: { share: 0.75, keys: 30000, bytes: 3 * 1024 * 1024 }, loses: { share: 0, keys: 0, bytes: 0 } },
      ],
    };

    it('prints the change, the ranges, a row per node, the total moved and what moves between existing nodes', () => {
      const lines = renderPlan(plan).split('\n');
      expect(lines[0]).to.equal('plan: join n4: 3 → 4 nodes, n=3');
      expect(lines[1]).to.equal('412 range(s) would change owners');
      expect(lines.find((l) => l.startsWith('NODE'))).to.match(/^NODE\s+GAINS\s+KEYS\s+BYTES\s+LOSES\s+KEYS\s+BYTES$/);
      expect(lines.find((l) => l.startsWith('n1 '))?.split(/\s{2,}/)).to.deep.equal(['n1', '0%', '0', '0 bytes', '25.0%', '10,000', '1.0 MiB']);
      expect(lines.find((l) => l.startsWith('n4 '))?.split(/\s{2,}/)).to.deep.equal(['n4 (joining)', '75.0%', '30,000', '3.0 MiB', '0%', '0', '0 bytes']);
      expect(lines).to.include('moved in all: 75.0% of the ring, about 30,000 keys, 3.0 MiB');
      expect(lines).to.include('between existing nodes: 0 bytes');
    });

    it('says what moves between existing nodes: expected for a leave, more than a join should move', () => {
      const text = renderPlan({ ...plan, change: 'leave', node: 'n1', nodesAfter: 2, betweenExistingNodes: { share: 0.05, keys: 2000, bytes: 204800 } });
      expect(text).to.match(/^plan: leave n1: 3 → 2 nodes, n=3$/m);
      expect(text).to.match(/^n1 \(leaving\)/m);
      expect(text).to.match(/^between existing nodes: 200\.0 KiB \(5\.0% of the ring, about 2,000 keys\): the nodes that stay take the ranges over$/m);
      const join = renderPlan({ ...plan, betweenExistingNodes: { share: 0.01, keys: 40, bytes: 4096 } });
      expect(join).to.match(/^between existing nodes: 4\.0 KiB \(1\.0% of the ring, about 40 keys\): more than a join should move$/m);
    });

    it('says what a removal re-creates and where to follow it', () => {
      const removed: RemoveResult = {
        removed: 'n3',
        ranges: 96,
        moved: { share: 0.3333, keys: 1500, bytes: 150 * 1024 },
        betweenExistingNodes: { share: 0.3333, keys: 1500, bytes: 150 * 1024 },
        nodes: [{ node: 'n1', gains: { share: 0.3333, keys: 1500, bytes: 150 * 1024 }, loses: { share: 0, keys: 0, bytes: 0 } }],
      };
      const lines = renderRemove(removed, '10.0.0.1:7000').split('\n');
      expect(lines[0]).to.equal('removed n3 from the ring for good: 96 range(s) change owners');
      expect(lines[1]).to.equal('to re-create: 33.3% of the ring, about 1,500 keys, 150.0 KiB');
      expect(lines.find((l) => l.startsWith('n1 '))?.split(/\s{2,}/)).to.deep.equal(['n1', '33.3%', '1,500', '150.0 KiB', '0%', '0', '0 bytes']);
      expect(lines).to.include('between existing nodes: 150.0 KiB (33.3% of the ring, about 1,500 keys): the nodes that stay take the ranges over');
      expect(lines).to.include('the survivors re-create the copies n3 held through anti-entropy; chorus transfers --node 10.0.0.1:7000 shows the progress');
    });
  });
});
