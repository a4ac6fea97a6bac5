/**
 * Proves the package is usable as users install it: in a fresh project that installs this
 * checkout with npm, `import { connect } from 'chorus'` reaches a running node, the SDK
 * entry loads no storage engine, and `npx chorus` runs the CLI (help, version, exit code 2
 * for an unknown command). Inside this repository the package name resolves to itself.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killAll, removeTempDirs, ROOT, startNodeProcess, tempDir } from '../support/processes.js';

const run = promisify(execFile);

async function exitCode(command: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd, timeout: 60000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('integration: the package as users install it', function () {
  this.timeout(120000);
  let project: string;

  before(async () => {
    project = tempDir('chorus-user-');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--offline', ROOT], { cwd: project, timeout: 90000 });
  });

  after(async () => {
    await killAll();
    removeTempDirs();
  });

  it("resolves import { connect } from 'chorus' and talks to a node", async () => {
    const node = await startNodeProcess();
    writeFileSync(
      join(project, 'app.mjs'),
      `import { connect } from 'chorus';
const db = await connect({ nodes: [process.argv[2]] });
await db.put('users', 'ada', { name: 'Ada' });
const r = await db.get('users', 'ada');
console.log(JSON.stringify(r.values));
console.log(Object.keys(await import('chorus')).includes('startNode') ? 'sdk loads server' : 'sdk only');
await db.close();
`,
    );
    const { code, stdout, stderr } = await exitCode(process.execPath, ['app.mjs', node.address], project);
    expect(code, stderr).to.equal(0);
    expect(stdout.trim().split('\n')).to.deep.equal(['[{"name":"Ada"}]', 'sdk only']);
  });

  it('runs the CLI through npx', async () => {
    const help = await exitCode('npx', ['chorus', '--help'], project);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/Usage: chorus/);
    const version = await exitCode('npx', ['chorus', '--version'], project);
    expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
    const unknown = await exitCode('npx', ['chorus', 'frobnicate'], project);
    expect(unknown.code).to.equal(2);
  });

  it('resolves the package name inside this repository too', async () => {
    const { code, stdout, stderr } = await exitCode(process.execPath, ['--input-type=module', '-e', "const m = await import('chorus'); const s = await import('chorus/server'); console.log(typeof m.connect, typeof s.startNode)"], ROOT);
    expect(code, stderr).to.equal(0);
    expect(stdout.trim()).to.equal('function function');
  });
});
