/**
 * Built-in defaults: the lowest layer of every configuration.
 *
 * `config/default.yaml` lists the same values with the reasons for each; a spec asserts that
 * the file parses to exactly this object, so the two cannot drift. The data limits and the
 * peer frame size come from `base/limits.ts`, where the core reads them too.
 */

import { DATA_LIMITS_DEFAULT, PEER_FRAME_BYTES_MAX } from '../base/limits.js';
import type { ChorusConfig } from './schema.js';

export type DeepReadonly<T> = T extends readonly (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

const GIB = 1024 * 1024 * 1024;

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}

const defaults: ChorusConfig = {
  cluster: {
    name: 'chorus',
    secret: null,
    clientSecret: null,
  },
  node: {
    id: null,
    host: '127.0.0.1',
    port: 7070,
    zone: 'default',
    dataDir: './data',
    seeds: [],
    vnodes: 256,
  },
  storage: {
    engine: 'lmdb',
    durability: 'fsync',
    mapSizeBytes: 8 * GIB,
  },
  replication: {
    n: 3,
    r: 'quorum',
    w: 'quorum',
    pr: 0,
    pw: 0,
    requestTimeoutMs: 5000,
    sloppy: true,
    tombstoneGraceMs: 60_000,
  },
  handoff: {
    intervalMs: 1000,
    batchKeys: 256,
    hintsPerTargetMax: 1_000_000,
    hintBytesPerTargetMax: GIB,
  },
  antiEntropy: {
    enabled: true,
    intervalMs: 5000,
    keysPerSecond: 500,
    bytesPerSecond: 16 * 1024 * 1024,
    batchKeys: 32,
    timeoutMs: 10_000,
  },
  limits: {
    bucketBytesMax: DATA_LIMITS_DEFAULT.bucketBytesMax,
    keyBytesMax: DATA_LIMITS_DEFAULT.keyBytesMax,
    valueBytesMax: DATA_LIMITS_DEFAULT.valueBytesMax,
    siblingsMax: DATA_LIMITS_DEFAULT.siblingsMax,
    siblingsWarn: DATA_LIMITS_DEFAULT.siblingsWarn,
  },
  transport: {
    handshakeTimeoutMs: 5000,
    pingIntervalMs: 2000,
    reconnectDelayMs: 100,
    reconnectDelayMsMax: 5000,
    peerFrameBytesMax: PEER_FRAME_BYTES_MAX,
  },
  membership: {
    profile: 'lan',
  },
  runtime: {
    tickMs: 10,
  },
  log: {
    level: 'info',
  },
};

export const DEFAULTS: DeepReadonly<ChorusConfig> = deepFreeze(defaults);
