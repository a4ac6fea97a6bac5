#!/usr/bin/env node
/**
 * The `chorus` command.
 *
 * `chorus start` runs one node in the foreground, logging JSON lines; `put`, `get` and `del`
 * (and `counter`, `set`, `doc` for typed buckets) talk to a node through the SDK for quick use. Exit codes: 0 ok, 1 error, 2 bad usage or
 * configuration (and, for `get`, 1 when the key is not found, as grep does).
 */

import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { bucketList, bucketProps, bucketSet, inspect, leave, ring, runAdmin, status, whereis } from './admin-commands.js';
import { withClient } from './client-command.js';
import { addDataOptions, runDataCommand } from './data-commands.js';
import { runChaos } from './chaos-command.js';
import { runStart } from './start.js';
import { cleanup, parseName, plan, planRequest, remove, repair, REPAIR_MAX_TIME_S, repairRequest, transfers } from './topology-commands.js';
import { runCounter, runDoc, runSet } from './typed-commands.js';

export const EXIT = { ok: 0, error: 1, usage: 2 } as const;

function clientOptions(command: Command): Command {
  return command
    .requiredOption('--node <host:port>', 'the node to talk to')
    .addOption(new Option('--cluster <name>', 'cluster name').env('CHORUS_CLUSTER_NAME').default('chorus'))
    .addOption(new Option('--secret <secret>', 'the cluster client secret, if it has one').env('CHORUS_CLUSTER_CLIENT_SECRET'))
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000')
    .option('--json', 'print results as JSON (and, for put, read VALUE as JSON)');
}

export function buildProgram(): Command {
  const program = new Command();
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  program
    .name('chorus')
    .description('Chorus: a leaderless, Dynamo-style key-value store.')
    .version(version)
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description('run one node in the foreground (JSON logs on stdout; SIGTERM or SIGINT stops it cleanly)')
    .option('--config <file>', 'YAML configuration file (see config/default.yaml)')
    .option('--id <id>', 'node id (default: generated once and kept in the data directory)')
    .option('--host <host>', 'address to listen on and to bind outgoing peer connections to')
    .option('--port <port>', 'port for clients, peers and HTTP')
    .option('--data <dir>', 'data directory')
    .option('--seeds <list>', 'comma-separated host:port of seed nodes')
    .option('--zone <zone>', 'zone (failure domain) of this node')
    .option('--cluster <name>', 'cluster name')
    .action(async (options) => {
      process.exitCode = await runStart(options);
    });

  addDataOptions(clientOptions(program.command('put <bucket> <key> <value>').description('write a value (a string, or JSON with --json)')), 'put')
    .option('--context <context>', 'the context of the read this write is based on')
    .action(async (bucket: string, key: string, value: string, options) => {
      process.exitCode = await runDataCommand('put', { bucket, key, value }, options);
    });

  addDataOptions(clientOptions(program.command('get <bucket> <key>').description('read every value of a key and its context')), 'get')
    .action(async (bucket: string, key: string, options) => {
      process.exitCode = await runDataCommand('get', { bucket, key }, options);
    });

  addDataOptions(clientOptions(program.command('del <bucket> <key>').description('delete a key')), 'del')
    .option('--context <context>', 'the context of the read this delete is based on')
    .action(async (bucket: string, key: string, options) => {
      process.exitCode = await runDataCommand('del', { bucket, key }, options);
    });

  clientOptions(program.command('status').description('print the member table as a node sees it (exit 2 when any member is suspect or dead)')).action(async (options) => {
    process.exitCode = await runAdmin(options, (client) => status(client, options));
  });

  clientOptions(program.command('leave').description('make the node leave the cluster gracefully: it hands its ranges to their new owners, then is marked left'))
    .option('--force', 'leave even though fewer than n nodes would remain')
    .action(async (options) => {
      process.exitCode = await runAdmin(options, (client) => leave(client, options));
    });

  clientOptions(program.command('repair').description('run a full anti-entropy pass with every peer and follow it to the end (exit 2 when an exchange with some peer failed)'))
    .option('--bucket <bucket>', 'repair only the keys of this bucket')
    .option('--max-time <seconds>', 'give up following the repair after this long (exit 1; the repair goes on at the node)', String(REPAIR_MAX_TIME_S))
    .action(async (options) => {
      process.exitCode = await withClient(options, () => repairRequest(options), (client, request) => repair(client, options, request));
    });

  clientOptions(program.command('remove <node-id>').description('take a dead member out of the ring for good; the survivors re-create its copies through anti-entropy'))
    .option('--force', 'remove it even though it looks alive, or fewer than n nodes would remain')
    .action(async (nodeId: string, options) => {
      process.exitCode = await runAdmin(options, (client) => remove(client, nodeId, options), () => parseName(nodeId, 'NODE_ID'));
    });

  clientOptions(program.command('cleanup').description('remove from the node the keys of ranges it no longer replicates (after a join), and follow it to the end (exit 2 when it stopped early)')).action(
    async (options) => {
      process.exitCode = await runAdmin(options, (client) => cleanup(client, options));
    },
  );

  clientOptions(program.command('transfers').description('print the ranges a joining or leaving node is moving, and the exchange under way')).action(async (options) => {
    process.exitCode = await runAdmin(options, (client) => transfers(client, options));
  });

  clientOptions(program.command('plan').description('print what a join, leave or removal would move, before making it (one of --join, --leave, --remove)'))
    .option('--join <node-id>', 'plan a new member joining')
    .option('--vnodes <n>', "with --join: the new member's vnodes, 1 to 4096 (default: those of the node asked)")
    .option('--zone <zone>', "with --join: the new member's zone")
    .option('--leave <node-id>', 'plan a member leaving')
    .option('--remove <node-id>', 'plan a member being removed')
    .action(async (options) => {
      process.exitCode = await withClient(options, () => planRequest(options), (client, request) => plan(client, options, request));
    });

  clientOptions(program.command('ring').description("print each node's share of primary and replica ownership")).action(async (options) => {
    process.exitCode = await runAdmin(options, (client) => ring(client, options));
  });

  clientOptions(program.command('whereis <bucket> <key>').description("print a key's token and preference list")).action(async (bucket: string, key: string, options) => {
    process.exitCode = await runAdmin(options, (client) => whereis(client, bucket, key, options));
  });

  clientOptions(program.command('inspect <bucket> <key>').description("print the node's own copy of a key (values, clock) and the hints it keeps for it")).action(
    async (bucket: string, key: string, options) => {
      process.exitCode = await runAdmin(options, (client) => inspect(client, bucket, key, options));
    },
  );

  const counter = program.command('counter').description('counter buckets: read, increment, decrement');
  addDataOptions(clientOptions(counter.command('get <bucket> <key>').description("print a counter's value")), 'get').action(async (bucket: string, key: string, options) => {
    process.exitCode = await runCounter('get', { bucket, key }, options);
  });
  for (const action of ['inc', 'dec'] as const) {
    addDataOptions(clientOptions(counter.command(`${action} <bucket> <key> [n]`).description(`${action === 'inc' ? 'increment' : 'decrement'} a counter by N (default 1); prints the value after`)), 'put').action(
      async (bucket: string, key: string, n: string | undefined, options) => {
        process.exitCode = await runCounter(action, { bucket, key, ...(n !== undefined ? { n } : {}) }, options);
      },
    );
  }

  const set = program.command('set').description('set buckets (add-wins): members, add, remove');
  addDataOptions(clientOptions(set.command('members <bucket> <key>').description("print a set's members, one per line")), 'get').action(async (bucket: string, key: string, options) => {
    process.exitCode = await runSet('members', { bucket, key, members: [] }, options);
  });
  for (const action of ['add', 'remove'] as const) {
    addDataOptions(clientOptions(set.command(`${action} <bucket> <key> <members...>`).description(`${action} members; prints the members after`)), 'put').action(
      async (bucket: string, key: string, members: string[], options) => {
        process.exitCode = await runSet(action, { bucket, key, members }, options);
      },
    );
  }

  const doc = program.command('doc').description('doc buckets (Yjs documents): the text of one Y.Text');
  addDataOptions(clientOptions(doc.command('get <bucket> <key>').description("print the text of the document's Y.Text")), 'get')
    .option('--field <name>', 'the Y.Text to read', 'text')
    .action(async (bucket: string, key: string, options) => {
      process.exitCode = await runDoc('get', { bucket, key }, options);
    });
  addDataOptions(clientOptions(doc.command('append <bucket> <key> <text>').description("append TEXT to the document's Y.Text; prints the text after")), 'put')
    .option('--field <name>', 'the Y.Text to append to', 'text')
    .action(async (bucket: string, key: string, text: string, options) => {
      process.exitCode = await runDoc('append', { bucket, key, text }, options);
    });

  program
    .command('chaos')
    .description('run real nodes under faults and check nothing acknowledged was lost (from a source checkout; chorus chaos --help for options)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (args: string[]) => {
      process.exitCode = await runChaos(args);
    });

  const bucket = program.command('bucket').description('bucket properties in cluster metadata');
  clientOptions(bucket.command('set <name>').description('set bucket properties; concurrent changes at different nodes merge'))
    .option('--n <n>', 'replicas per key')
    .option('--r <level>', 'default read quorum: one, quorum, all or a number')
    .option('--w <level>', 'default write quorum: one, quorum, all or a number')
    .option('--type <type>', 'kv, counter, set, map, register, flag or doc')
    .action(async (name: string, options) => {
      process.exitCode = await runAdmin(options, (client) => bucketSet(client, name, options), () => bucketProps(options));
    });
  clientOptions(bucket.command('list').description('list buckets with properties')).action(async (options) => {
    process.exitCode = await runAdmin(options, (client) => bucketList(client, options));
  });

  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const helpShown = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      process.exitCode = helpShown ? EXIT.ok : EXIT.usage;
      return;
    }
    process.stderr.write(`chorus: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT.error;
  }
}

await main(process.argv);
