/**
 * Proves that an acknowledged write survives `kill -9`: several pipelined writers stream
 * puts of unique keys into a real node on LMDB, the node's process group is SIGKILLed in the
 * middle of the stream, the node restarts on the same data directory, and every put that
 * was acknowledged before the kill must read back with its exact value. Writes whose
 * outcome was unknown (in flight at the kill) may or may not be there; none may be
 * corrupted. The restarted node keeps its id and its storage epoch.
 */

import { expect } from 'chai';
import { connect } from '../../lib/client/index.js';
import { killAll, removeTempDirs, startNodeProcess, tempDir, waitFor } from '../support/processes.js';

describe('integration: kill -9 in the middle of acknowledged puts', function () {
  this.timeout(60000);
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  it('loses no acknowledged write', async () => {
    const dataDir = tempDir();
    const node = await startNodeProcess({ dataDir });
    const db = await connect({ nodes: [node.address], timeoutMs: 2000 });
    const acked = new Map<string, string>();
    const unknown = new Set<string>();
    let stop = false;

    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        const value = `${key}:${'x'.repeat(i % 50)}`;
        try {
          await db.put('kill9', key, value);
          acked.set(key, value);
        } catch {
          unknown.add(key);
          return;
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await waitFor('2000 acknowledged puts', () => (acked.size >= 2000 ? true : undefined), 20000);
    const exit = await node.kill('SIGKILL');
    expect(exit.signal).to.equal('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await db.close();
    const ackedAtKill = acked.size;

    const restarted = await startNodeProcess({ dataDir });
    expect(restarted.nodeId).to.equal(node.nodeId);
    expect(restarted.logs.some((l) => l.msg === 'new storage epoch')).to.equal(false);
    const reader = await connect({ nodes: [restarted.address] });
    const missing: string[] = [];
    const entries = [...acked.entries()];
    for (let i = 0; i < entries.length; i += 500) {
      const batch = entries.slice(i, i + 500);
      const reads = await Promise.all(batch.map(([key]) => reader.get<string>('kill9', key)));
      reads.forEach((read, j) => {
        const [key, value] = batch[j] as [string, string];
        if (!read.found || read.values.length !== 1 || read.values[0] !== value) missing.push(key);
      });
    }
    for (const key of unknown) {
      const read = await reader.get<string>('kill9', key);
      if (read.found) expect(read.values[0]).to.match(new RegExp(`^${key}:x*$`));
    }
    await reader.close();
    console.log(`      acknowledged ${ackedAtKill} puts before the kill, ${unknown.size} in flight; ${missing.length} lost`);
    expect(missing, `lost acknowledged writes: ${missing.slice(0, 10).join(', ')}`).to.deep.equal([]);
  });
});
