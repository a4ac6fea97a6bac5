/**
 * Drives a real `chorus start` process (LMDB, WebSockets, the built CLI) through the SDK, the
 * CLI and HTTP: put/get/delete, siblings without context, supersede with context, typed
 * errors for bad requests, health and metrics endpoints, start-up refusal of bad
 * configuration with exit code 2, and a clean stop on SIGTERM.
 */

import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type Client } from '../../lib/client/index.js';
import { ChorusError } from '../../lib/base/errors.js';
import { killAll, removeTempDirs, runCli, startNodeProcess, tempDir, type NodeProcess } from '../support/processes.js';

async function expectCode(promise: Promise<unknown>, code: string): Promise<ChorusError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ChorusError);
    expect((error as ChorusError).code).to.equal(code, (error as Error).message);
    return error as ChorusError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

describe('integration: one node', function () {
  this.timeout(30000);
  let node: NodeProcess;
  let db: Client;

  before(async () => {
    node = await startNodeProcess();
    db = await connect({ nodes: [node.address] });
  });

  after(async () => {
    await db?.close();
    await killAll();
    removeTempDirs();
  });

  it('puts, gets and deletes through the SDK', async () => {
    await db.put('users', 'ada', { name: 'Ada' });
    const read = await db.get('users', 'ada');
    expect(read.found).to.equal(true);
    expect(read.values).to.deep.equal([{ name: 'Ada' }]);
    await db.put('users', 'ada', { name: 'Ada L.' }, { context: read.context });
    const updated = await db.get('users', 'ada');
    expect(updated.values).to.deep.equal([{ name: 'Ada L.' }]);
    await db.delete('users', 'ada', { context: updated.context });
    const gone = await db.get('users', 'ada');
    expect(gone.found).to.equal(false);
    expect(gone.values).to.deep.equal([]);
  });

  it('keeps siblings for writes without context, and one write with the merged context resolves them', async () => {
    await db.put('s', 'k', 'left');
    await db.put('s', 'k', 'right');
    const both = await db.get<string>('s', 'k');
    expect(both.values.slice().sort()).to.deep.equal(['left', 'right']);
    const result = await db.put('s', 'k', 'merged', { context: both.context });
    expect(result.siblings).to.equal(1);
    expect((await db.get('s', 'k')).values).to.deep.equal(['merged']);
  });

  it('round-trips CBOR values of every kind', async () => {
    const values: unknown[] = [0, -1, 2 ** 40, 1.5, 'é日本語🎉', true, null, [1, [2, [3]]], { a: { b: new Uint8Array([1, 2, 3]) } }, new Date(1700000000000)];
    for (const [i, value] of values.entries()) {
      await db.put('kinds', `k${i}`, value);
      expect((await db.get('kinds', `k${i}`)).values[0]).to.deep.equal(value);
    }
  });

  it('pipelines many requests on one connection', async () => {
    const keys = Array.from({ length: 500 }, (_, i) => `p${i}`);
    await Promise.all(keys.map((k) => db.put('pipe', k, k)));
    const reads = await Promise.all(keys.map((k) => db.get('pipe', k)));
    expect(reads.map((r) => r.values[0])).to.deep.equal(keys);
  });

  it('refuses bad requests with typed errors and keeps serving', async () => {
    await expectCode(db.put('', 'k', 1), 'INVALID_REQUEST');
    await expectCode(db.get('b', ''), 'INVALID_REQUEST');
    await expectCode(db.put('b'.repeat(65), 'k', 1), 'TOO_LARGE');
    await expectCode(db.put('b', 'k'.repeat(1025), 1), 'TOO_LARGE');
    const big = await expectCode(db.put('b', 'k', new Uint8Array(1024 * 1024 + 10)), 'TOO_LARGE');
    expect(big.details).to.include({ field: 'value', limit: 1024 * 1024 });
    await expectCode(db.put('b', 'k', 1, { w: 9 }), 'INVALID_REQUEST');
    await expectCode(db.put('b', 'k', 1, { context: 'not a context!' }), 'INVALID_REQUEST');
    await expectCode(db.put('b', 'k', 1, { context: 'AAAA' }), 'INVALID_REQUEST');
    await expectCode(db.put('b', 'k', () => 1), 'INVALID_REQUEST');
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) deep = [deep];
    await expectCode(db.put('b', 'k', deep), 'INVALID_REQUEST');
    const controller = new AbortController();
    controller.abort();
    await expectCode(db.get('b', 'k', { signal: controller.signal }), 'ABORTED');
    await db.put('b', 'still', 'serving');
    expect((await db.get('b', 'still')).values).to.deep.equal(['serving']);
  });

  it('answers /livez, /readyz, /status and /metrics', async () => {
    const base = `http://${node.address}`;
    expect((await fetch(`${base}/livez`)).status).to.equal(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.equal({ ready: true });
    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    expect(status).to.include({ node: node.nodeId, address: node.address, ready: true });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).to.match(/chorus_requests_total\{[^}]*op="put"[^}]*outcome="ok"[^}]*\} [1-9]/);
    expect(metrics).to.match(/chorus_request_duration_seconds_bucket\{[^}]*op="get"/);
    expect(metrics).to.match(/chorus_requests_total\{[^}]*outcome="INVALID_REQUEST"/);
    expect((await fetch(`${base}/nope`)).status).to.equal(404);
    expect((await fetch(`${base}/livez`, { method: 'POST' })).status).to.equal(405);
  });

  it('serves the CLI: put, get and del with exit codes', async () => {
    const put = await runCli(['put', 'cli', 'k', '{"n":1}', '--json', '--node', node.address]);
    expect(put.code, put.stderr).to.equal(0);
    expect(JSON.parse(put.stdout)).to.include({ siblings: 1 });
    const get = await runCli(['get', 'cli', 'k', '--json', '--node', node.address]);
    expect(get.code, get.stderr).to.equal(0);
    expect(JSON.parse(get.stdout)).to.deep.include({ found: true, values: [{ n: 1 }] });
    const plain = await runCli(['get', 'cli', 'k', '--node', node.address]);
    expect(plain.stdout.split('\n')[0]).to.equal('{"n":1}');
    const del = await runCli(['del', 'cli', 'k', '--node', node.address]);
    expect(del.code, del.stderr).to.equal(0);
    const missing = await runCli(['get', 'cli', 'k', '--node', node.address]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/not found/);
    const usage = await runCli(['put', 'cli', 'k']);
    expect(usage.code).to.equal(2);
    const badLevel = await runCli(['get', 'cli', 'k', '--r', 'most', '--node', node.address]);
    expect(badLevel.code).to.equal(2);
    const tooBig = await runCli(['put', 'cli', 'k'.repeat(2000), 'v', '--node', node.address]);
    expect(tooBig.code).to.equal(1);
    expect(tooBig.stderr).to.match(/TOO_LARGE/);
  });
});

describe('integration: start-up and shutdown', function () {
  this.timeout(30000);
  after(async () => {
    await killAll();
    removeTempDirs();
  });

  it('refuses a bad configuration with exit code 2 and a message naming the key', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'replication:\n  n: 3\n  w: 5\n');
    const relation = await runCli(['start', '--config', file, '--data', dir]);
    expect(relation.code).to.equal(2);
    expect(relation.stderr).to.match(/replication\.w/);
    writeFileSync(file, 'node:\n  portt: 7070\n');
    const unknown = await runCli(['start', '--config', file, '--data', dir]);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/node\.portt/);
    const env = await runCli(['start', '--data', dir, '--port', '0'], { env: { CHORUS_NODE_PORTT: '1' } });
    expect(env.code).to.equal(2);
    expect(env.stderr).to.match(/CHORUS_NODE_PORTT/);
    const flag = await runCli(['start', '--data', dir, '--port', 'seventy']);
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.match(/node\.port/);
  });

  it('refuses to start a data directory under another node id', async () => {
    const dir = tempDir();
    const first = await startNodeProcess({ dataDir: dir, args: ['--id', 'alpha'] });
    expect(first.nodeId).to.equal('alpha');
    await first.kill('SIGTERM');
    const other = await runCli(['start', '--data', dir, '--port', '0', '--id', 'beta']);
    expect(other.code).to.equal(2);
    expect(other.stderr).to.match(/belongs to node "alpha"/);
  });

  it('stops cleanly on SIGTERM and SIGINT with exit code 0', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const node = await startNodeProcess();
      const db = await connect({ nodes: [node.address] });
      await db.put('b', 'k', 'v');
      await db.close();
      const exit = await node.kill(signal);
      expect(exit.code, node.stderr.join('')).to.equal(0);
      expect(node.logs.some((l) => l.msg === 'stopped')).to.equal(true);
    }
  });
});
