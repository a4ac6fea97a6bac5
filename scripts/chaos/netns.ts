/**
 * Network partitions without touching the host: a private network namespace and a firewall
 * chain of our own inside it.
 *
 * When partitions are asked for and the process runs as root, the chaos process re-executes
 * itself under `unshare --net --pid --fork --kill-child`: a network namespace of its own
 * (with only a loopback interface, brought up here, on which every 127.0.0.x address works)
 * and a PID namespace in which it is process 1. Every node and every client then lives in
 * that namespace, so the firewall rules cut only their traffic and vanish with it; and when
 * process 1 ends, however it ends (even SIGKILL of `unshare`, which sends the child SIGTERM),
 * the kernel kills every process left in the namespace. No node can outlive a run.
 *
 * Each node binds its outgoing connections to its own address, so a rule on a pair of
 * addresses cuts exactly that link. The clients' connections would otherwise leave from
 * 127.0.0.1, node 1's address, and be cut along with it; inside the namespace the loopback
 * route's preferred source is set to 127.0.0.254, which no node uses, so the clients stay
 * connected to every side, as Jepsen's control node does.
 *
 * The rules live in one chain (`CHORUS-CHAOS`), jumped to from INPUT, and are replaced as a
 * whole with `iptables-restore --noflush` (declaring the chain flushes it): a partition starts
 * and heals atomically, and nothing outside the chain is ever changed.
 */

import { spawn, spawnSync } from 'node:child_process';

/** Set in the re-executed process: it runs inside the private namespaces. */
export const NETNS_VARIABLE = 'CHORUS_TEST_CHAOS_NETNS';
export const CHAIN = 'CHORUS-CHAOS';
/** The clients' source address inside the namespace; no node has it. */
export const CLIENT_ADDRESS = '127.0.0.254';

const COMMANDS = ['unshare', 'ip', 'iptables', 'iptables-restore'] as const;

export function insideNamespace(): boolean {
  return process.env[NETNS_VARIABLE] === '1';
}

function commandWorks(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.error === undefined && result.status === 0;
}

/** Why partitions cannot run here, or undefined when they can. */
export function partitionUnsupported(): string | undefined {
  if (process.platform !== 'linux') return `partitions need Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'partitions need root (iptables and a private network namespace)';
  const missing = COMMANDS.filter((command) => !commandWorks('sh', ['-c', `command -v ${command}`]));
  if (missing.length > 0) return `partitions need ${missing.join(', ')} (install iptables, iproute2 and util-linux)`;
  if (insideNamespace()) return undefined;
  if (!commandWorks('unshare', ['--net', '--pid', '--fork', '--kill-child=SIGKILL', 'true'])) {
    return '`unshare --net --pid --fork` does not work here (the container may lack CAP_SYS_ADMIN); rules on the host loopback are never used';
  }
  return undefined;
}

/**
 * Runs this same command again inside fresh network and PID namespaces and resolves with its
 * exit code. Ctrl-C reaches the child directly (same process group), so the parent only waits;
 * a SIGTERM sent to the parent alone is passed on.
 */
export function reexecInNamespace(): Promise<number> {
  const args = ['--net', '--pid', '--fork', '--kill-child=SIGTERM', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn('unshare', args, { stdio: 'inherit', env: { ...process.env, [NETNS_VARIABLE]: '1' } });
  const ignore = (): void => undefined;
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      process.stderr.write(`chaos: cannot run unshare: ${error.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

function run(command: string, args: readonly string[], input?: string): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { input, encoding: 'utf8', timeout: 10_000 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? result.error.message : ''}`.trim();
  return { ok: result.error === undefined && result.status === 0, output };
}

function must(command: string, args: readonly string[], input?: string): string {
  const result = run(command, args, input);
  if (!result.ok) throw new Error(`${command} ${args.join(' ')} failed: ${result.output}`);
  return result.output;
}

/** Inside the namespace: loopback up, and the clients' own source address. */
export function prepareNamespace(): void {
  if (!insideNamespace()) throw new Error('prepareNamespace runs only inside the private namespace');
  must('ip', ['link', 'set', 'lo', 'up']);
  must('ip', ['addr', 'add', `${CLIENT_ADDRESS}/32`, 'dev', 'lo']);
  must('ip', ['route', 'replace', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local', 'proto', 'kernel', 'scope', 'host', 'src', CLIENT_ADDRESS]);
}

/** The firewall chain that cuts links between node addresses. */
export class Firewall {
  private installed = false;

  /** Creates the empty chain and the jump to it, in one transaction. */
  install(): void {
    if (!insideNamespace()) throw new Error('the firewall is only ever changed inside the private namespace');
    must('iptables-restore', ['--noflush'], `*filter\n:${CHAIN} - [0:0]\n-I INPUT 1 -j ${CHAIN}\nCOMMIT\n`);
    this.installed = true;
  }

  /** Replaces the chain's rules with DROP rules for every pair of addresses on different sides. */
  cut(sides: readonly (readonly string[])[]): number {
    const rules: string[] = [];
    for (const [i, side] of sides.entries()) {
      for (const other of sides.slice(i + 1)) {
        for (const a of side) for (const b of other) rules.push(`-A ${CHAIN} -s ${a}/32 -d ${b}/32 -j DROP`, `-A ${CHAIN} -s ${b}/32 -d ${a}/32 -j DROP`);
      }
    }
    must('iptables-restore', ['--noflush'], `*filter\n:${CHAIN} - [0:0]\n${rules.join('\n')}\nCOMMIT\n`);
    return rules.length;
  }

  /** Packets the chain's rules dropped so far, and how many rules it holds. */
  counters(): { rules: number; packets: number } {
    const listing = run('iptables', ['-L', CHAIN, '-n', '-v', '-x']);
    if (!listing.ok) return { rules: 0, packets: 0 };
    let rules = 0;
    let packets = 0;
    for (const line of listing.output.split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields[2] !== 'DROP') continue;
      rules++;
      packets += Number(fields[0]);
    }
    return { rules, packets };
  }

  /** Empties the chain: every link works again. */
  heal(): void {
    if (this.installed) must('iptables-restore', ['--noflush'], `*filter\n:${CHAIN} - [0:0]\nCOMMIT\n`);
  }

  /** Removes the jump and the chain; never throws (it runs on the way out). */
  remove(): void {
    if (!this.installed) return;
    this.installed = false;
    run('iptables', ['-D', 'INPUT', '-j', CHAIN]);
    run('iptables', ['-F', CHAIN]);
    run('iptables', ['-X', CHAIN]);
  }
}
