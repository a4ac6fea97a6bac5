/**
 * What this proves: a node's configuration loads as documented.
 *
 * - The built-in defaults pass the schema and the relation checks, and `config/default.yaml`
 *   parses to exactly `DEFAULTS` with a comment above every setting, so file and code cannot drift.
 * - Layers override in the order defaults < file < flags < `CHORUS_*` environment.
 * - Every kind of mistake (unknown key at the top or inside a section, unknown flag or
 *   variable, wrong type, broken relation, malformed seed or node id, bad or missing file)
 *   throws a `ConfigError` whose message names the dotted key, what was expected and the
 *   layer the value came from, with `details.key` set; secrets are never echoed.
 * - Environment text becomes values of each setting's type; `resolveLevel` maps named levels.
 *
 * How: `loadConfig` is called with YAML files written to a fresh temporary directory, flag
 * records and explicit environment records (never the runner's own environment).
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { z } from 'zod';
import { AssertionError } from '../../lib/base/assert.js';
import { ConfigError } from '../../lib/base/errors.js';
import { DATA_LIMITS_DEFAULT, PEER_FRAME_BYTES_MAX } from '../../lib/base/limits.js';
import {
  ChorusConfigSchema,
  DEFAULTS,
  ENV_IGNORED,
  SETTING_PATHS,
  checkRelations,
  describeSettings,
  envNameFor,
  loadConfig,
  parseSeed,
  resolveLevel,
  type ChorusConfig,
  type LoadConfigOptions,
} from '../../lib/config/index.js';
import { valueFromTextFor } from '../../lib/config/settings.js';

const DEFAULT_YAML = new URL('../../config/default.yaml', import.meta.url);

let dir: string;
let fileCount = 0;

/** Writes a YAML file into the spec's temporary directory and returns its path. */
function yamlFile(text: string): string {
  fileCount += 1;
  const path = join(dir, `chorus-${fileCount}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** Loads with an empty environment unless the case gives one. */
function load(options: LoadConfigOptions = {}): ChorusConfig {
  return loadConfig({ env: {}, ...options });
}

/** Runs `fn`, expects a ConfigError, checks its key and that the message holds every fragment. */
function expectConfigError(fn: () => unknown, key: string, fragments: readonly string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a ConfigError to be thrown').to.be.instanceOf(ConfigError);
  const error = caught as ConfigError;
  expect(error.code).to.equal('CONFIG');
  expect(error.details['key'], error.message).to.equal(key);
  expect(error.message).to.include(key);
  for (const fragment of fragments) expect(error.message).to.include(fragment);
  return error;
}

describe('config', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-config-spec-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('defaults', () => {
    it('pass the schema and every relation check', () => {
      expect(ChorusConfigSchema.safeParse(DEFAULTS).success).to.equal(true);
      expect(checkRelations(DEFAULTS as ChorusConfig)).to.deep.equal([]);
    });

    it('are what loadConfig returns with no file, flags or environment', () => {
      expect(load()).to.deep.equal(DEFAULTS);
    });

    it('take the data limits and peer frame size from base/limits', () => {
      expect(DEFAULTS.limits).to.deep.equal(DATA_LIMITS_DEFAULT);
      expect(DEFAULTS.transport.peerFrameBytesMax).to.equal(PEER_FRAME_BYTES_MAX);
    });

    it('are frozen, so no caller can change them for everyone', () => {
      expect(Object.isFrozen(DEFAULTS)).to.equal(true);
      expect(Object.isFrozen(DEFAULTS.node)).to.equal(true);
      expect(Object.isFrozen(DEFAULTS.node.seeds)).to.equal(true);
    });

    it('are returned as a copy that callers may change', () => {
      const config = load();
      config.node.seeds.push('a:1');
      expect(DEFAULTS.node.seeds).to.deep.equal([]);
    });
  });

  describe('config/default.yaml', () => {
    const text = readFileSync(DEFAULT_YAML, 'utf8');

    it('parses to exactly DEFAULTS', () => {
      expect(parse(text)).to.deep.equal(DEFAULTS);
    });

    it('loads through loadConfig to exactly DEFAULTS', () => {
      expect(load({ file: DEFAULT_YAML.pathname })).to.deep.equal(DEFAULTS);
    });

    it('has a comment line directly above every setting', () => {
      const lines = text.split('\n');
      const settingLines = lines
        .map((line, index) => ({ line, index }))
        .filter(({ line }) => /^ {2}[A-Za-z]+:/.test(line));
      expect(settingLines.map(({ line }) => line.trim().split(':')[0])).to.have.length(SETTING_PATHS.length);
      for (const { line, index } of settingLines) {
        expect(lines[index - 1] ?? '', `no comment above "${line.trim()}"`).to.match(/^ {2}# \S/);
      }
    });
  });

  describe('precedence', () => {
    it('is defaults < file < flags < environment', () => {
      const file = yamlFile(
        ['node:', '  port: 7001', '  zone: file-zone', '  vnodes: 128', '  seeds: ["a:1", "b:2"]'].join('\n'),
      );
      const config = load({
        file,
        flags: { 'node.port': 7002, 'node.zone': 'flag-zone', 'node.seeds': ['c:3'] },
        env: { CHORUS_NODE_PORT: '7003' },
      });
      expect(config.node.port).to.equal(7003);
      expect(config.node.zone).to.equal('flag-zone');
      expect(config.node.vnodes).to.equal(128);
      expect(config.node.seeds, 'a layer replaces a list, never appends to it').to.deep.equal(['c:3']);
      expect(config.node.host).to.equal(DEFAULTS.node.host);
      expect(config.replication).to.deep.equal(DEFAULTS.replication);
    });

    it('skips flags whose value is undefined, as a CLI parser leaves absent options', () => {
      const file = yamlFile('node:\n  port: 7001\n');
      expect(load({ file, flags: { 'node.port': undefined } }).node.port).to.equal(7001);
    });

    it('reads string flags like environment text', () => {
      const config = load({ flags: { 'node.port': '7071', 'node.seeds': 'a:1,b:2', 'replication.w': '2' } });
      expect(config.node.port).to.equal(7071);
      expect(config.node.seeds).to.deep.equal(['a:1', 'b:2']);
      expect(config.replication.w).to.equal(2);
    });

    it('accepts an empty file and sections whose settings are all commented out', () => {
      expect(load({ file: yamlFile('') })).to.deep.equal(DEFAULTS);
      expect(load({ file: yamlFile('node:\n  # port: 1\nlog:\n') })).to.deep.equal(DEFAULTS);
    });

    it('reads process.env when no environment is given', () => {
      const name = 'CHORUS_LOG_LEVEL';
      const before = process.env[name];
      process.env[name] = 'debug';
      try {
        expect(loadConfig().log.level).to.equal('debug');
      } finally {
        if (before === undefined) delete process.env[name];
        else process.env[name] = before;
      }
    });
  });

  describe('errors name the key, the expectation and the source', () => {
    it('an unknown top-level key in the file', () => {
      const file = yamlFile('clustr:\n  name: x\n');
      expectConfigError(() => load({ file }), 'clustr', ['unknown section', 'did you mean cluster?', `(from ${file})`]);
    });

    it('an unknown key inside a section of the file', () => {
      const file = yamlFile('node:\n  prot: 7071\n');
      const error = expectConfigError(() => load({ file }), 'node.prot', [
        'unknown setting',
        'did you mean node.port?',
        `(from ${file})`,
      ]);
      expect(error.details['source']).to.equal(file);
    });

    it('an unknown flag', () => {
      expectConfigError(() => load({ flags: { 'replication.W': 1 } }), 'replication.W', [
        'did you mean replication.w?',
        '(from flag replication.W)',
      ]);
    });

    it('a section that is not a mapping, and a file that is not one', () => {
      const file = yamlFile('node: 5\n');
      expectConfigError(() => load({ file }), 'node', ['expected a mapping of settings, got 5', `(from ${file})`]);
      const list = yamlFile('- a\n- b\n');
      expectConfigError(() => load({ file: list }), '(top level)', ['expected a mapping of sections', `(from ${list})`]);
    });

    it('a wrong type, from the file and from the environment', () => {
      const file = yamlFile('node:\n  port: "7071"\n');
      expectConfigError(() => load({ file }), 'node.port', ['expected integer 0..65535', 'got "7071"', `(from ${file})`]);
      expectConfigError(() => load({ env: { CHORUS_NODE_PORT: 'abc' } }), 'node.port', [
        'expected integer 0..65535',
        'got "abc"',
        '(from env CHORUS_NODE_PORT)',
      ]);
      expectConfigError(() => load({ flags: { 'storage.engine': 'rocksdb' } }), 'storage.engine', [
        'expected "lmdb" | "memory"',
        'got "rocksdb"',
        '(from flag storage.engine)',
      ]);
      expectConfigError(() => load({ flags: { 'storage.mapSizeBytes': 1.5 } }), 'storage.mapSizeBytes', [
        'got 1.5',
      ]);
    });

    it('a value out of range', () => {
      expectConfigError(() => load({ flags: { 'node.port': 65_536 } }), 'node.port', ['must be ≤ 65535', 'got 65536']);
      expectConfigError(() => load({ flags: { 'replication.w': 0 } }), 'replication.w', [
        'must be ≥ 1',
        'got 0',
      ]);
      expectConfigError(() => load({ flags: { 'replication.r': 'most' } }), 'replication.r', [
        'expected "one", "quorum", "all" or an integer ≥ 1',
        'got "most"',
      ]);
    });

    it('w > n, with the exact wording', () => {
      const file = yamlFile('replication:\n  w: 5\n');
      const error = expectConfigError(() => load({ file }), 'replication.w', []);
      expect(error.message).to.equal(`replication.w: must be ≤ replication.n (3), got 5 (from ${file})`);
    });

    it('a relation names the source of the other setting when it differs', () => {
      const file = yamlFile('replication:\n  w: 2\n');
      expectConfigError(() => load({ file, env: { CHORUS_REPLICATION_N: '1' } }), 'replication.w', [
        'must be ≤ replication.n (1), got 2',
        `(from ${file}; replication.n from env CHORUS_REPLICATION_N)`,
      ]);
    });

    it('pr > r and pw > w', () => {
      expectConfigError(() => load({ flags: { 'replication.r': 2, 'replication.pr': 3 } }), 'replication.pr', [
        'must be ≤ replication.r (2), got 3',
        '(from flag replication.pr; replication.r from flag replication.r)',
      ]);
      expectConfigError(() => load({ flags: { 'replication.w': 1, 'replication.pw': 2 } }), 'replication.pw', [
        'must be ≤ replication.w (1), got 2',
      ]);
      // Named levels are resolved per bucket, so they are not compared with numbers here.
      expect(load({ flags: { 'replication.r': 'one', 'replication.pr': 2 } }).replication.pr).to.equal(2);
    });

    it('bucket and key limits too long for an LMDB key', () => {
      expectConfigError(() => load({ env: { CHORUS_LIMITS_KEY_BYTES_MAX: '2000' } }), 'limits.keyBytesMax', [
        '≤ 1978',
        'got 65 + 4 + 64 + 1 + 2000 = 2134',
        '(from env CHORUS_LIMITS_KEY_BYTES_MAX)',
      ]);
      // 65 + 4 + 64 + 1 + 1844 = 1978 is exactly the limit.
      expect(load({ flags: { 'limits.keyBytesMax': 1844 } }).limits.keyBytesMax).to.equal(1844);
      expectConfigError(() => load({ flags: { 'limits.keyBytesMax': 1845 } }), 'limits.keyBytesMax', ['got 65 + 4 + 64 + 1 + 1845 = 1979']);
    });

    it('the other relations: siblings, reconnect delays, ticks, frame size', () => {
      expectConfigError(() => load({ flags: { 'limits.siblingsWarn': 101 } }), 'limits.siblingsWarn', [
        'must be ≤ limits.siblingsMax (100), got 101',
      ]);
      expectConfigError(() => load({ flags: { 'transport.reconnectDelayMs': 6000 } }), 'transport.reconnectDelayMs', [
        'must be ≤ transport.reconnectDelayMsMax (5000), got 6000',
      ]);
      expectConfigError(() => load({ flags: { 'replication.requestTimeoutMs': 5, 'transport.reconnectDelayMs': 50 } }), 'runtime.tickMs', [
        'must be ≤ replication.requestTimeoutMs (5), got 10',
        '(from built-in default; replication.requestTimeoutMs from flag replication.requestTimeoutMs)',
      ]);
      expectConfigError(() => load({ flags: { 'transport.peerFrameBytesMax': 1024 * 1024 } }), 'limits.valueBytesMax', [
        'must be ≤ transport.peerFrameBytesMax (1048576)',
      ]);
    });

    it('a seed that is not host:port', () => {
      expectConfigError(() => load({ flags: { 'node.seeds': ['a:1', 'nope'] } }), 'node.seeds', [
        'item 1',
        'must be "host:port"',
        'got "nope"',
        '(from flag node.seeds)',
      ]);
      for (const bad of ['host:0', 'host:65536', 'host:', ':7070', 'ho st:1', '[zz]:1', 'a:b']) {
        expectConfigError(() => load({ flags: { 'node.seeds': [bad] } }), 'node.seeds', ['host:port']);
      }
      const good = ['localhost:7070', '127.0.0.2:1', '[::1]:7070', 'db-1.example.com:65535'];
      expect(load({ flags: { 'node.seeds': good } }).node.seeds).to.deep.equal(good);
      expect(parseSeed('[::1]:7070')).to.deep.equal({ host: '::1', port: 7070 });
    });

    it('a malformed node id', () => {
      const file = yamlFile('node:\n  id: "has space"\n');
      expectConfigError(() => load({ file }), 'node.id', ['must match ^[A-Za-z0-9._-]{1,64}$', 'got "has space"', file]);
      expectConfigError(() => load({ flags: { 'node.id': 'x'.repeat(65) } }), 'node.id', ['must match']);
      expect(load({ flags: { 'node.id': 'node-1.a_b' } }).node.id).to.equal('node-1.a_b');
    });

    it('a short secret, without echoing it', () => {
      const error = expectConfigError(() => load({ env: { CHORUS_CLUSTER_SECRET: 'hunter2' } }), 'cluster.secret', [
        'must be at least 16 characters',
        'a string of 7 characters (value hidden)',
        '(from env CHORUS_CLUSTER_SECRET)',
      ]);
      expect(error.message).not.to.include('hunter2');
    });

    it('an unknown CHORUS_ variable, but not an ignored one or another program’s', () => {
      const error = expectConfigError(() => load({ env: { CHORUS_NODE_PROT: '7071' } }), 'CHORUS_NODE_PROT', [
        'unknown setting',
        'did you mean CHORUS_NODE_PORT?',
        'ENV_IGNORED',
      ]);
      expect(error.details['source']).to.equal('env CHORUS_NODE_PROT');
      expect(ENV_IGNORED).to.include('CHORUS_TEST_*');
      const env = { CHORUS_TEST_SEED: '42', CHORUS_TEST_: '', PATH: '/bin', chorus_node_port: 'x', CHORUS_NODE_HOST: undefined };
      expect(load({ env })).to.deep.equal(DEFAULTS);
    });

    it('invalid YAML names the file', () => {
      const file = yamlFile('node:\n  port: [7070\n');
      expect(() => load({ file })).to.throw(ConfigError, `${file}: invalid YAML`);
      const duplicate = yamlFile('node:\n  port: 1\n  port: 2\n');
      expect(() => load({ file: duplicate })).to.throw(ConfigError, duplicate);
    });

    it('a missing file names the file', () => {
      const file = join(dir, 'missing.yaml');
      expect(() => load({ file })).to.throw(ConfigError, `${file}: cannot read the configuration file`);
    });

    it('lists every problem, the first one in details', () => {
      const file = yamlFile('node:\n  port: -1\n  vnodes: 0\n');
      const error = expectConfigError(() => load({ file }), 'node.port', ['node.vnodes: must be ≥ 1, got 0']);
      expect(error.details['problems']).to.equal(2);
    });
  });

  describe('environment text', () => {
    it('becomes numbers, nulls, strings, lists and levels by the setting type', () => {
      const config = load({
        env: {
          CHORUS_NODE_PORT: '7071',
          CHORUS_STORAGE_MAP_SIZE_BYTES: '1048576',
          CHORUS_NODE_ID: 'null',
          CHORUS_CLUSTER_SECRET: 'null',
          CHORUS_CLUSTER_NAME: '123',
          CHORUS_NODE_SEEDS: 'a:1, b:2',
          CHORUS_REPLICATION_R: 'all',
          CHORUS_REPLICATION_W: '2',
          CHORUS_STORAGE_ENGINE: 'memory',
        },
      });
      expect(config.node.port).to.equal(7071);
      expect(config.storage.mapSizeBytes).to.equal(1_048_576);
      expect(config.node.id).to.equal(null);
      expect(config.cluster.secret).to.equal(null);
      expect(config.cluster.name, 'a numeral stays a string where a string is expected').to.equal('123');
      expect(config.node.seeds).to.deep.equal(['a:1', 'b:2']);
      expect(config.replication.r).to.equal('all');
      expect(config.replication.w).to.equal(2);
      expect(config.storage.engine).to.equal('memory');
    });

    it('sets strings and secrets verbatim, and an empty list from an empty variable', () => {
      const secret = 's3cret-with-16+chars';
      const config = load({
        flags: { 'node.seeds': ['a:1'] },
        env: { CHORUS_CLUSTER_CLIENT_SECRET: secret, CHORUS_NODE_SEEDS: '', CHORUS_NODE_ID: 'n1' },
      });
      expect(config.cluster.clientSecret).to.equal(secret);
      expect(config.node.seeds).to.deep.equal([]);
      expect(config.node.id).to.equal('n1');
    });

    it('becomes booleans where a boolean is allowed, and only there', () => {
      expect(valueFromTextFor(z.boolean(), 'true')).to.equal(true);
      expect(valueFromTextFor(z.boolean(), 'false')).to.equal(false);
      expect(valueFromTextFor(z.boolean().nullable(), 'null')).to.equal(null);
      expect(valueFromTextFor(z.boolean(), 'yes'), 'left as text for the schema to refuse').to.equal('yes');
      expect(valueFromTextFor(z.string(), 'true')).to.equal('true');
      expect(valueFromTextFor(z.array(z.boolean()), 'true,false')).to.deep.equal([true, false]);
      expect(valueFromTextFor(z.array(z.int()).nullable(), '1, 2')).to.deep.equal([1, 2]);
      expect(valueFromTextFor(z.int().nullable(), 'null')).to.equal(null);
    });

    it('is named CHORUS_ + the path in SNAKE_CASE', () => {
      expect(envNameFor('node.port')).to.equal('CHORUS_NODE_PORT');
      expect(envNameFor('limits.keyBytesMax')).to.equal('CHORUS_LIMITS_KEY_BYTES_MAX');
      expect(envNameFor('cluster.secret')).to.equal('CHORUS_CLUSTER_SECRET');
      expect(envNameFor('transport.reconnectDelayMsMax')).to.equal('CHORUS_TRANSPORT_RECONNECT_DELAY_MS_MAX');
    });
  });

  describe('describeSettings', () => {
    it('lists every setting with its env name, type and default', () => {
      const settings = describeSettings();
      expect(settings.map((setting) => setting.path)).to.deep.equal(SETTING_PATHS);
      expect(settings).to.have.length(44);
      expect(settings.find((setting) => setting.path === 'membership.profile')).to.deep.include({ env: 'CHORUS_MEMBERSHIP_PROFILE', default: 'lan' });
      const port = settings.find((setting) => setting.path === 'node.port');
      expect(port).to.deep.include({ env: 'CHORUS_NODE_PORT', type: 'integer 0..65535', default: 7070 });
      const w = settings.find((setting) => setting.path === 'replication.w');
      expect(w).to.deep.include({ type: '"one" | "quorum" | "all" | integer ≥ 1', default: 'quorum' });
      const seeds = settings.find((setting) => setting.path === 'node.seeds');
      expect(seeds).to.deep.include({ type: 'list of host:port', default: [] });
      const secret = settings.find((setting) => setting.path === 'cluster.secret');
      expect(secret).to.deep.include({ type: 'string of ≥ 16 characters | null', default: null });
      for (const setting of settings) expect(setting.description, setting.path).to.not.equal('');
    });
  });

  describe('resolveLevel', () => {
    it('maps one, quorum and all against n, and passes numbers through', () => {
      const quorums = [1, 2, 3, 4, 5].map((n) => resolveLevel('quorum', n));
      expect(quorums).to.deep.equal([1, 2, 2, 3, 3]);
      expect(resolveLevel('one', 5)).to.equal(1);
      expect(resolveLevel('all', 5)).to.equal(5);
      expect(resolveLevel(2, 5)).to.equal(2);
      expect(resolveLevel(0, 3)).to.equal(0);
    });

    it('treats n < 1 as a bug', () => {
      expect(() => resolveLevel('quorum', 0)).to.throw(AssertionError);
    });
  });
});
