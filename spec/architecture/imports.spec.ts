/**
 * Proves the layering DESIGN.md asks for, by reading every source file under lib/:
 * the deterministic core (base … node) imports no I/O (no node:* module but node:crypto's
 * hashes, no ws, lmdb, pino, prom-client) and reads no clock, timer or global randomness;
 * the core never imports the shell; the SDK imports only base, codec, ring (pure, so it can
 * compute a key's replicas itself) and the transport's socket pieces; the runtime never imports the simulator; and folders import each other
 * without cycles. The checker is first run on planted violations, so a checker that
 * matches nothing cannot pass.
 */

import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '../../lib');

const CORE = new Set(['base', 'codec', 'clock', 'crdt', 'ring', 'merkle', 'membership', 'replication', 'handoff', 'antientropy', 'node']);
const IO_PACKAGES = new Set(['ws', 'lmdb', 'pino', 'prom-client', 'commander', 'yaml']);
/** Folders the SDK may import: pure code that touches neither storage nor the node. */
const CLIENT_FOLDERS = new Set(['client', 'base', 'codec', 'ring', 'crdt']);
/** Transport files the SDK may use: they touch only a socket, never storage. */
const CLIENT_TRANSPORT = new Set(['transport/connection.ts', 'transport/dial.ts', 'transport/handshake-schemas.ts']);
const FORBIDDEN_CALLS: readonly [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew Date\s*\(/, 'new Date()'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bsetTimeout\s*\(/, 'setTimeout'],
  [/\bsetInterval\s*\(/, 'setInterval'],
  [/\bsetImmediate\s*\(/, 'setImmediate'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bprocess\.(hrtime|env|nextTick)\b/, 'process'],
];

interface Source {
  readonly path: string; // relative to lib/, e.g. "node/core.ts"
  readonly text: string;
}

function listSources(dir: string): Source[] {
  const out: Source[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listSources(full));
    else if (name.endsWith('.ts')) out.push({ path: relative(LIB, full), text: readFileSync(full, 'utf8') });
  }
  return out;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

function importsOf(text: string): string[] {
  const code = stripComments(text);
  const found: string[] = [];
  for (const m of code.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)) {
    found.push((m[1] ?? m[2] ?? m[3]) as string);
  }
  return found;
}

function folderOf(path: string): string {
  return path.includes('/') ? (path.split('/')[0] as string) : '.';
}

/** Resolves a relative import to a lib-relative .ts path, or undefined for packages. */
function target(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return join(dirname(from), specifier).replace(/\.js$/, '.ts');
}

export function violations(sources: readonly Source[]): string[] {
  const problems: string[] = [];
  const edges = new Map<string, Set<string>>();
  for (const source of sources) {
    const folder = folderOf(source.path);
    const core = CORE.has(folder);
    for (const specifier of importsOf(source.text)) {
      const to = target(source.path, specifier);
      if (to === undefined) {
        const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
        if (core && specifier.startsWith('node:') && specifier !== 'node:crypto') problems.push(`${source.path}: core imports ${specifier}`);
        if (core && IO_PACKAGES.has(pkg)) problems.push(`${source.path}: core imports ${pkg}`);
        if (folder === 'sim' && (pkg === 'ws' || pkg === 'lmdb')) problems.push(`${source.path}: the simulator imports ${pkg}`);
        if (folder === 'client' && ['lmdb', 'pino', 'prom-client'].includes(pkg)) problems.push(`${source.path}: the SDK imports ${pkg}`);
        continue;
      }
      const toFolder = folderOf(to);
      if (toFolder !== folder) {
        if (!edges.has(folder)) edges.set(folder, new Set());
        edges.get(folder)?.add(toFolder);
      }
      if (core && !CORE.has(toFolder)) problems.push(`${source.path}: core imports the shell (${to})`);
      if (folder === 'runtime' && toFolder === 'sim') problems.push(`${source.path}: the runtime imports the simulator`);
      if (folder === 'client' && !CLIENT_FOLDERS.has(toFolder) && !CLIENT_TRANSPORT.has(to)) {
        problems.push(`${source.path}: the SDK imports ${to}`);
      }
    }
    if (core) {
      const code = stripComments(source.text);
      for (const [pattern, name] of FORBIDDEN_CALLS) if (pattern.test(code)) problems.push(`${source.path}: core uses ${name}`);
    }
  }
  problems.push(...cycles(edges));
  return problems;
}

function cycles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'visiting') {
      found.push(`import cycle between folders: ${[...path.slice(path.indexOf(node)), node].join(' -> ')}`);
      return;
    }
    state.set(node, 'visiting');
    for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) visit(node, []);
  return found;
}

describe('architecture: imports point down and the core stays free of I/O', () => {
  it('the checker catches planted violations', () => {
    const planted: Source[] = [
      { path: 'node/bad-io.ts', text: "import { readFileSync } from 'node:fs';\nimport { WebSocket } from 'ws';" },
      { path: 'ring/bad-clock.ts', text: 'export const t = Date.now() + Math.random();\nsetTimeout(() => {}, 1);' },
      { path: 'clock/bad-shell.ts', text: "import { openStore } from '../storage/index.js';" },
      { path: 'client/bad.ts', text: "import { startNode } from '../runtime/node-runtime.js';" },
      { path: 'client/bad-core.ts', text: "import { Coordinator } from '../node/coordinator.js';" },
      { path: 'runtime/bad.ts', text: "import { Sim } from '../sim/cluster.js';" },
      { path: 'a/x.ts', text: "import { y } from '../b/y.js';" },
      { path: 'b/y.ts', text: "import { x } from '../a/x.js';" },
    ];
    const found = violations(planted);
    expect(found.join('\n')).to.match(/core imports node:fs/);
    expect(found.join('\n')).to.match(/core imports ws/);
    expect(found.join('\n')).to.match(/core uses Date\.now\(\)/);
    expect(found.join('\n')).to.match(/core uses Math\.random\(\)/);
    expect(found.join('\n')).to.match(/core uses setTimeout/);
    expect(found.join('\n')).to.match(/core imports the shell/);
    expect(found.join('\n')).to.match(/the SDK imports runtime/);
    expect(found.join('\n')).to.match(/the SDK imports node\/coordinator/);
    expect(found.join('\n')).to.match(/the runtime imports the simulator/);
    expect(found.join('\n')).to.match(/import cycle between folders: a -> b -> a/);
    // Comments do not count, and node:crypto's hashes are allowed in the core.
    // The SDK may compute placement with the pure ring.
    expect(violations([{ path: 'client/ok.ts', text: "import { buildRing } from '../ring/ring.js';" }])).to.deep.equal([]);
    expect(violations([{ path: 'base/ok.ts', text: "import { createHash } from 'node:crypto';\n// Date.now() is not used here\n/* setTimeout( */" }])).to.deep.equal([]);
  });

  it('lib/ has no violations', () => {
    const sources = listSources(LIB);
    expect(sources.length).to.be.greaterThan(20);
    expect(violations(sources)).to.deep.equal([]);
  });
});
