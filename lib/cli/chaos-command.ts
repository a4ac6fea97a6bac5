/**
 * `chorus chaos [options]`: the chaos run (scripts/chaos.ts) from the CLI. The run drives
 * real nodes, a workload and a nemesis from TypeScript sources that live beside the package,
 * not in it, so this command runs them from a source checkout (`npm ci` there installs tsx)
 * and says so plainly elsewhere. Every argument goes to the run as it is; signals reach it
 * too, so Ctrl-C cleans up exactly as `npm run chaos` does.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

export async function runChaos(args: readonly string[]): Promise<number> {
  const script = join(ROOT, 'scripts/chaos.ts');
  if (!existsSync(script)) {
    process.stderr.write('chorus: chaos runs from a source checkout of Chorus (scripts/chaos.ts is not in this installation); clone it, npm ci, then chorus chaos or npm run chaos\n');
    return 2;
  }
  try {
    createRequire(join(ROOT, 'package.json')).resolve('tsx');
  } catch {
    process.stderr.write('chorus: chaos needs the development dependencies (tsx); run npm ci in the checkout first\n');
    return 2;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (exit, signal) => resolve(exit ?? (signal === 'SIGINT' ? 130 : 1))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  return code;
}
