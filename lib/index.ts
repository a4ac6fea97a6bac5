/**
 * Chorus's public entry point for applications: the SDK (`connect`) and the typed errors
 * every call may raise. It loads no storage engine; running a node inside a process is
 * `chorus/server`.
 */

export { connect, Client, CounterHandle, DocHandle, FlagHandle, MapHandle, MapUpdate, RegisterHandle, SetHandle } from './client/index.js';
export type {
  AdminOptions,
  BucketTopology,
  ConnectOptions,
  Context,
  DeleteOptions,
  FetchOptions,
  FetchResult,
  GetOptions,
  GetResult,
  PutOptions,
  PutResult,
  RequestOptions,
  Topology,
  TopologyMember,
  TypedType,
  UpdateOptions,
  UpdateResult,
} from './client/index.js';
export type { MapValue } from './crdt/index.js';
export {
  AbortedError,
  ChorusError,
  ClosedError,
  ConfigError,
  InvalidRequestError,
  OverloadedError,
  ProtocolError,
  StorageError,
  TimeoutError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
  ERROR_CODES,
  type ErrorCode,
  type ErrorDetails,
} from './base/errors.js';
export type { Level } from './codec/messages.js';
