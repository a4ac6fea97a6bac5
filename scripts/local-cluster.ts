/**
 * `npm start`: a local cluster of three Chorus nodes in the foreground.
 *
 * Builds dist/ when it is missing or older than lib/ (skip with --no-build), then starts three
 * `chorus start` processes on 127.0.0.1:7071, 7072 and 7073, with node ids n1..n3, data in
 * ./data/n1..n3, each seeded with the other two. Each node's JSON log lines are shown
 * prefixed with its name (compacted, or as they are with --raw-logs) and appended unchanged
 * to ./data/nX.log. Once every node answers `GET /readyz` with 200, prints how to connect
 * with the SDK and the CLI.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops every node: SIGTERM first (each finishes the writes under
 * way and closes LMDB), SIGKILL for any still running after 10 s, or at once on a second
 * Ctrl-C. A node that exits on its own is reported, and the others keep running; when none
 * is left the script exits 1. Nodes run in their own process groups, so only this script
 * decides how they stop.
 *
 * `npm run start:node` runs a single node on 127.0.0.1:7070 with data in ./data instead.
 *
 * Usage: npm start -- [--no-build] [--fresh] [--raw-logs]
 *   --no-build  start the JavaScript already in dist/, even when lib/ is newer
 *   --fresh     delete ./data/n1..n3 (and their logs) first: an empty cluster
 *   --raw-logs  print log lines exactly as the nodes write them
 */

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildState, CLI, cleanEnv, portTaken, ROOT, signalGroup, spawnNode, stop, waitReady, type Child, type Exit } from './bench/children.js';

const { values: flags } = parseArgs({
  options: {
    'no-build': { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
    'raw-logs': { type: 'boolean', default: false },
  },
});

const HOST = '127.0.0.1';
const NODES = [
  { name: 'n1', port: 7071 },
  { name: 'n2', port: 7072 },
  { name: 'n3', port: 7073 },
].map((n) => ({ ...n, address: `${HOST}:${n.port}`, dataDir: `./data/${n.name}`, logFile: `./data/${n.name}.log` }));
/** How long the nodes have to answer /readyz: start-up takes about a second; 30 s allows a slow disk. */
const READY_TIMEOUT_MS = 30_000;
/** A second signal this soon after the first is the same Ctrl-C relayed by npm or tsx, not a new one. */
const SIGNAL_ECHO_MS = 1000;

const tty = process.stdout.isTTY === true;
const paint = (code: number, text: string): string => (tty ? `\u001b[${code}m${text}\u001b[0m` : text);
const NODE_COLOURS = [36, 35, 33];
const LEVEL_COLOURS: Record<string, number> = { warn: 33, error: 31, fatal: 31 };

function say(line: string): void {
  process.stdout.write(`${paint(1, '[cluster]')} ${line}\n`);
}

/** One JSON log line as `HH:MM:SS.mmm level msg key=value …`; anything else as it is. */
function compact(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, node: _node, ...rest } = entry;
  const levelName = String(level ?? '');
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const head = `${typeof time === 'string' ? time.slice(11, 23) : ''} ${paint(LEVEL_COLOURS[levelName] ?? 2, levelName.padEnd(5))} ${String(msg ?? '')}`;
  return fields.length === 0 ? head : `${head} ${paint(2, fields.join(' '))}`;
}

async function build(): Promise<void> {
  const state = buildState();
  if (state === 'fresh') return;
  if (flags['no-build']) {
    if (state === 'missing') throw new Error(`${CLI} is missing; run without --no-build (or npm run build)`);
    say('lib/ is newer than dist/; starting the JavaScript dist/ already holds (--no-build)');
    return;
  }
  say(state === 'missing' ? 'dist/ is missing: building (npm run build)' : 'lib/ changed since the last build: building (npm run build)');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (c) => resolve(c));
    child.on('error', () => resolve(null));
  });
  if (code !== 0) throw new Error('the build failed (see above); fix it, or run npm start -- --no-build to start what dist/ holds');
}

function startNodes(logs: WriteStream[]): Child[] {
  return NODES.map((node, i) => {
    const seeds = NODES.filter((other) => other !== node).map((other) => other.address);
    const args = [CLI, 'start', '--host', HOST, '--port', String(node.port), '--data', node.dataDir, '--id', node.name, '--seeds', seeds.join(',')];
    const log = createWriteStream(join(ROOT, node.logFile), { flags: 'a' });
    logs.push(log);
    const prefix = paint(NODE_COLOURS[i % NODE_COLOURS.length] ?? 0, `[${node.name}]`);
    return spawnNode(node.name, args, {
      env: cleanEnv(),
      onLine(line) {
        log.write(`${line}\n`);
        process.stdout.write(`${prefix} ${flags['raw-logs'] ? line : compact(line)}\n`);
      },
    });
  });
}

function banner(): void {
  const list = NODES.map((n) => `'${n.address}'`).join(', ');
  const [a, b, c] = NODES.map((n) => n.address);
  const lines = [
    '',
    `${paint(1, 'Chorus is running: 3 nodes on 127.0.0.1')}`,
    ...NODES.map((n) => `  ${n.name}  ${n.address}  data ${n.dataDir}  log ${n.logFile}`),
    '',
    'From code (SDK):',
    `  import { connect } from 'chorus';`,
    `  const db = await connect({ nodes: [${list}] });`,
    `  await db.put('users', 'ada', { name: 'Ada' });`,
    `  console.log(await db.get('users', 'ada'));`,
    '',
    'From the shell (CLI):',
    `  npx chorus put users ada '{"name":"Ada"}' --json --node ${a}`,
    `  npx chorus get users ada --node ${b}`,
    `  npx chorus status --node ${c}`,
    `  npx chorus whereis users ada --node ${a}`,
    `  curl http://${a}/status`,
    '',
    'Ctrl-C stops all three nodes.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describe(exit: Exit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** The running nodes and their log files; set once the nodes are spawned. */
const children: Child[] = [];
const logs: WriteStream[] = [];
let stopping: Promise<never> | undefined;
let firstSignalMs = 0;

/** Stops every node (once, however often it is asked), reports how each ended, and exits. */
function shutdown(reason: string, code: number): Promise<never> {
  stopping ??= stopEverything(reason, code);
  return stopping;
}

async function stopEverything(reason: string, code: number): Promise<never> {
  say(`${reason}: stopping ${children.map((c) => c.name).join(', ')} (SIGTERM, SIGKILL after 10 s; Ctrl-C again to kill at once)`);
  const gone = children.map((child) => child.process.exitCode !== null || child.process.signalCode !== null);
  const exits = await Promise.all(children.map((child) => stop(child)));
  let clean = code === 0;
  exits.forEach((exit, i) => {
    const name = children[i]?.name ?? '?';
    if (exit.killed) clean = false;
    if (gone[i] === true) say(`${name} had already exited (${describe(exit)})`);
    else say(`${name} ${exit.killed ? `killed after the deadline (${describe(exit)})` : `stopped (${describe(exit)})`}`);
  });
  await Promise.all(logs.map((log) => new Promise((resolve) => log.end(resolve))));
  process.exit(clean ? 0 : 1);
}

/** The first SIGINT or SIGTERM stops the nodes gracefully; a later one (not an echo of the first) kills them. */
function onSignal(signal: NodeJS.Signals): void {
  const now = Date.now();
  if (stopping === undefined) {
    firstSignalMs = now;
    void shutdown(signal, 0);
  } else if (now - firstSignalMs > SIGNAL_ECHO_MS) {
    say(`${signal} again: killing every node now`);
    for (const child of children) signalGroup(child, 'SIGKILL');
  }
}

/** Reports a node that exits without being asked to; when none is left, the script ends. */
function watchExits(): void {
  let running = children.length;
  for (const child of children) {
    void child.exited.then((exit) => {
      running--;
      if (stopping !== undefined || child.stopping) return;
      const node = NODES.find((n) => n.name === child.name);
      say(`${child.name} exited unexpectedly (${describe(exit)}); its log is ${node?.logFile}. ${running > 0 ? `${running} node(s) keep running.` : 'No node is left.'}`);
      if (running === 0) void shutdown('every node has exited', 1);
    });
  }
}

async function main(): Promise<void> {
  await build();
  for (const node of NODES) {
    if (await portTaken(HOST, node.port)) throw new Error(`${node.address} is in use (another npm start?); stop whatever listens there first`);
  }
  for (const node of NODES) {
    if (flags.fresh) {
      rmSync(join(ROOT, node.dataDir), { recursive: true, force: true });
      rmSync(join(ROOT, node.logFile), { force: true });
    }
    mkdirSync(join(ROOT, node.dataDir), { recursive: true });
  }

  children.push(...startNodes(logs));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  watchExits();
  try {
    await Promise.all(children.map((child, i) => waitReady(child, NODES[i]?.address as string, READY_TIMEOUT_MS)));
  } catch (error) {
    if (stopping === undefined) {
      say(`start-up failed: ${error instanceof Error ? error.message : String(error)}`);
      say('npm start -- --fresh starts the cluster with empty data directories');
      await shutdown('start-up failed', 1);
    }
    return;
  }
  if (stopping === undefined) banner();
}

main().catch((error: unknown) => {
  say(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
