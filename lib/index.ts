/**
 * Chorus's public entry point for applications: the SDK (`connect`) and the typed errors
 * every call may raise. It loads no storage engine; running a node inside a process is
 * `chorus/server`.
 */

export { connect, Client } from './client/index.js';
export type {
  AdminOptions,
  BucketTopology,
  ConnectOptions,
  Context,
  DeleteOptions,
  GetOptions,
  GetResult,
  PutOptions,
  PutResult,
  RequestOptions,
  Topology,
  TopologyMember,
} from './client/index.js';
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
