/**
 * The shape of a node's configuration, and the relations between its settings.
 *
 * The zod schema checks each setting on its own: its type, its range, its form. Every object
 * is strict, so a misspelt key fails instead of being ignored (ringpop and many others drop
 * unknown keys silently, and an operator then wonders why `replication.W: 1` did nothing).
 * `checkRelations` then checks what no single setting can: quorums within `n` (`1 ≤ w ≤ n`),
 * the warning threshold under its maximum, a storage key within LMDB's limit, every timeout
 * at least one tick. Both report problems as data (`{ key, message }`); `load.ts` adds where
 * each value came from and throws.
 *
 * Invariants: the schema has no defaults (those live in `defaults.ts`, which `default.yaml`
 * mirrors), and every setting is exactly two levels deep (`section.setting`), so that a
 * dotted path and an environment variable name each setting.
 */

import { z } from 'zod';
import type { Level as WireLevel } from '../codec/messages.js';
import { FRAME_OVERHEAD_BYTES, REQUEST_TIMEOUT_MS_MAX, STORAGE_KEY_BYTES_MAX } from '../base/limits.js';
import { isSeed } from './seed.js';
import { PROFILE_NAMES } from '../membership/profile.js';

/** Levels resolve exactly as the coordinator resolves them. */
export { resolveLevel } from '../replication/levels.js';

/** Node ids, cluster names and zones: they appear in handshakes, storage, log lines and metric labels. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Shortest accepted secret. A short secret can be guessed offline from one recorded handshake. */
export const SECRET_CHARS_MIN = 16;

export const LEVEL_NAMES = ['one', 'quorum', 'all'] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];

/** A replica count: a name resolved against a bucket's `n`, or a number of replicas. */
/** A consistency level as a setting: the same values the wire carries. */
export type Level = WireLevel;

export const STORAGE_ENGINES = ['lmdb', 'memory'] as const;
export const DURABILITIES = ['fsync', 'commit'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Ring positions per node. Ring size is nodes × vnodes and the ring is gossiped, so it stays bounded. */
export const VNODES_MAX = 4096;

/** The largest peer frame one may configure: a frame is held whole in memory on both ends. */
export const PEER_FRAME_BYTES_CEILING = 1024 * 1024 * 1024;

/** Longest tick: a coarser tick would make the shortest timeouts meaningless. */
export const TICK_MS_MAX = 1000;

/** Settings whose values never appear in error messages or logs. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set(['cluster.secret', 'cluster.clientSecret']);

function level(min: 0 | 1) {
  return z.union([z.enum(LEVEL_NAMES), z.int().min(min)], {
    error: `expected "one", "quorum", "all" or an integer ≥ ${min}`,
  });
}

const name = () => z.string().regex(NAME_PATTERN, { error: `must match ${NAME_PATTERN.source}` });
const secret = () =>
  z
    .string()
    .min(SECRET_CHARS_MIN, { error: `must be at least ${SECRET_CHARS_MIN} characters` })
    .nullable();
const positiveInt = () => z.int().min(1);

const ClusterSchema = z.strictObject({
  name: name().describe('cluster name; peers with another name are refused'),
  secret: secret().describe('shared secret peers prove with an HMAC challenge; null = none'),
  clientSecret: secret().describe('secret SDK clients must prove; null = none'),
});

const NodeSchema = z.strictObject({
  id: name().nullable().describe('node id; null = generated at first start and kept in dataDir'),
  host: z.string().min(1).max(253).describe('address to listen on and bind outgoing peer connections to'),
  port: z.int().min(0).max(65_535).describe('HTTP port for peers, clients and status; 0 = any free port'),
  zone: name().describe('failure domain; replicas prefer distinct zones'),
  dataDir: z.string().min(1).describe('directory for the database and the node id'),
  seeds: z
    .array(
      z
        .string()
        .refine(isSeed, { error: 'must be "host:port" (IPv6 as "[addr]:port", port 1..65535)' })
        .meta({ expected: 'host:port' }),
    )
    .describe('nodes to contact at start; empty = start a new cluster'),
  vnodes: z.int().min(1).max(VNODES_MAX).describe('ring positions this node claims'),
});

const StorageSchema = z.strictObject({
  engine: z.enum(STORAGE_ENGINES).describe('storage engine; memory loses everything at exit'),
  durability: z.enum(DURABILITIES).describe('fsync = acknowledge after the disk flush; commit = after the commit'),
  mapSizeBytes: z.int().min(1024 * 1024).describe('initial LMDB map size; lmdb-js grows it when full'),
});

const ReplicationSchema = z.strictObject({
  n: positiveInt().describe('replicas per key'),
  r: level(1).describe('replies a read waits for'),
  w: level(1).describe('acknowledgements a write waits for'),
  pr: level(0).describe('replies from primary replicas a read requires'),
  pw: level(0).describe('acknowledgements from primary replicas a write requires'),
  requestTimeoutMs: positiveInt().max(REQUEST_TIMEOUT_MS_MAX).describe('default request deadline'),
  sloppy: z.boolean().describe('whether fallbacks stand in for primaries that are down (sloppy quorum)'),
  tombstoneGraceMs: positiveInt().describe('time a tombstone every primary holds is kept before it is reaped'),
});

const HandoffSchema = z.strictObject({
  intervalMs: positiveInt().describe('time between hint delivery rounds'),
  batchKeys: positiveInt().max(1024).describe('hints sent per batch'),
  hintsPerTargetMax: positiveInt().describe('hints kept for one node at most; past it, its writes are not hinted'),
  hintBytesPerTargetMax: positiveInt().describe('estimated bytes of hints kept for one node at most'),
});

const AntiEntropySchema = z.strictObject({
  enabled: z.boolean().describe('whether replicas compare hash trees on their own (chorus repair works either way)'),
  intervalMs: positiveInt().describe('time from the end of one exchange to the start of the next'),
  keysPerSecond: positiveInt().describe('records shipped per second by anti-entropy at full rate'),
  bytesPerSecond: positiveInt().describe('bytes of records shipped per second by anti-entropy at full rate'),
  batchKeys: positiveInt().max(65_536).describe('records per anti-entropy sync message'),
  timeoutMs: positiveInt().describe('time an exchange waits for an answer before it is dropped'),
});

const LimitsSchema = z.strictObject({
  bucketBytesMax: positiveInt().describe('UTF-8 bytes of a bucket name'),
  keyBytesMax: positiveInt().describe('UTF-8 bytes of a key'),
  valueBytesMax: positiveInt().describe('encoded bytes of one value'),
  siblingsMax: positiveInt().describe('siblings one object may carry; more is refused'),
  siblingsWarn: positiveInt().describe('siblings at which the node logs a warning'),
});

const TransportSchema = z.strictObject({
  handshakeTimeoutMs: positiveInt().describe('time a new connection has to complete its handshake'),
  pingIntervalMs: positiveInt().describe('WebSocket ping interval; two missed pongs close the link'),
  reconnectDelayMs: positiveInt().describe('first delay before reconnecting to a peer'),
  reconnectDelayMsMax: positiveInt().describe('ceiling of the growing reconnect delay'),
  peerFrameBytesMax: positiveInt().max(PEER_FRAME_BYTES_CEILING).describe('largest peer-to-peer frame'),
});

const MembershipSchema = z.strictObject({
  profile: z.enum(PROFILE_NAMES).describe('failure-detection timing: local (one machine), lan, wan'),
});

const RuntimeSchema = z.strictObject({
  tickMs: positiveInt().max(TICK_MS_MAX).describe('length of one core tick'),
});

const LogSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).describe('least severe level that is logged'),
});

export const ChorusConfigSchema = z.strictObject({
  cluster: ClusterSchema,
  node: NodeSchema,
  storage: StorageSchema,
  replication: ReplicationSchema,
  handoff: HandoffSchema,
  antiEntropy: AntiEntropySchema,
  limits: LimitsSchema,
  transport: TransportSchema,
  membership: MembershipSchema,
  runtime: RuntimeSchema,
  log: LogSchema,
});

export type ChorusConfig = z.infer<typeof ChorusConfigSchema>;
export type SectionName = keyof ChorusConfig;

/** A dotted path naming one setting, e.g. `node.port`. */
export type SettingPath = { [S in SectionName]: `${S}.${keyof ChorusConfig[S] & string}` }[SectionName];

/** One thing wrong with a configuration; `key` is the dotted setting, `related` the others involved. */
export interface ConfigProblem {
  readonly key: string;
  readonly message: string;
  readonly related?: readonly string[];
}

/** Checks the relations between settings of a configuration that passed the schema. */
export function checkRelations(config: ChorusConfig): ConfigProblem[] {
  return [...checkQuorums(config), ...checkLimits(config), ...checkTimes(config)];
}

function atMost(key: string, value: number, boundKey: string, bound: number): ConfigProblem[] {
  if (value <= bound) return [];
  return [{ key, message: `must be ≤ ${boundKey} (${bound}), got ${value}`, related: [boundKey] }];
}

function checkQuorums({ replication }: ChorusConfig): ConfigProblem[] {
  const { n, r, w, pr, pw } = replication;
  const problems: ConfigProblem[] = [];
  // Named levels resolve within n by construction; numbers are checked against the default n.
  for (const [setting, value] of [['r', r], ['w', w], ['pr', pr], ['pw', pw]] as const) {
    if (typeof value === 'number') problems.push(...atMost(`replication.${setting}`, value, 'replication.n', n));
  }
  // Primary replies are a subset of all replies, so asking for more primaries than replies is a contradiction.
  if (typeof pr === 'number' && typeof r === 'number') problems.push(...atMost('replication.pr', pr, 'replication.r', r));
  if (typeof pw === 'number' && typeof w === 'number') problems.push(...atMost('replication.pw', pw, 'replication.w', w));
  return problems;
}

/** A hint's key starts with its target's node id (at most 64 bytes) and a 0 byte. */
const HINT_PREFIX_BYTES_MAX = 65;

function checkLimits({ limits, transport }: ChorusConfig): ConfigProblem[] {
  const { bucketBytesMax, keyBytesMax, valueBytesMax, siblingsMax, siblingsWarn } = limits;
  const problems = atMost('limits.siblingsWarn', siblingsWarn, 'limits.siblingsMax', siblingsMax);
  // A storage key is token (4 bytes) ‖ bucket ‖ 0 ‖ key, and a hint's key puts the target node's
  // id (up to 64 bytes) and a 0 in front of it; LMDB refuses keys longer than its maximum.
  const storageKeyBytes = HINT_PREFIX_BYTES_MAX + 4 + bucketBytesMax + 1 + keyBytesMax;
  if (storageKeyBytes > STORAGE_KEY_BYTES_MAX) {
    problems.push({
      key: 'limits.keyBytesMax',
      message:
        `${HINT_PREFIX_BYTES_MAX} + 4 + limits.bucketBytesMax + 1 + limits.keyBytesMax must be ≤ ${STORAGE_KEY_BYTES_MAX} (LMDB's key size limit, ` +
        `with room for a hint's node id), got ${HINT_PREFIX_BYTES_MAX} + 4 + ${bucketBytesMax} + 1 + ${keyBytesMax} = ${storageKeyBytes}`,
      related: ['limits.bucketBytesMax'],
    });
  }
  // One value of the largest size, with its request fields, must fit in one peer frame.
  const frameBytesNeeded = valueBytesMax + FRAME_OVERHEAD_BYTES;
  if (frameBytesNeeded > transport.peerFrameBytesMax) {
    problems.push({
      key: 'limits.valueBytesMax',
      message:
        `limits.valueBytesMax + ${FRAME_OVERHEAD_BYTES} (frame overhead) must be ≤ transport.peerFrameBytesMax ` +
        `(${transport.peerFrameBytesMax}), got ${valueBytesMax} + ${FRAME_OVERHEAD_BYTES} = ${frameBytesNeeded}`,
      related: ['transport.peerFrameBytesMax'],
    });
  }
  return problems;
}

function checkTimes({ replication, handoff, antiEntropy, transport, runtime }: ChorusConfig): ConfigProblem[] {
  const problems = atMost(
    'transport.reconnectDelayMs',
    transport.reconnectDelayMs,
    'transport.reconnectDelayMsMax',
    transport.reconnectDelayMsMax,
  );
  // Every timeout is counted in whole ticks, so each must last at least one tick.
  const timeouts = [
    ['replication.requestTimeoutMs', replication.requestTimeoutMs],
    ['replication.tombstoneGraceMs', replication.tombstoneGraceMs],
    ['handoff.intervalMs', handoff.intervalMs],
    ['antiEntropy.intervalMs', antiEntropy.intervalMs],
    ['antiEntropy.timeoutMs', antiEntropy.timeoutMs],
    ['transport.handshakeTimeoutMs', transport.handshakeTimeoutMs],
    ['transport.pingIntervalMs', transport.pingIntervalMs],
    ['transport.reconnectDelayMs', transport.reconnectDelayMs],
  ] as const;
  for (const [key, ms] of timeouts) problems.push(...atMost('runtime.tickMs', runtime.tickMs, key, ms));
  return problems;
}

