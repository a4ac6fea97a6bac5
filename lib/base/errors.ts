/**
 * Typed operating errors.
 *
 * Chorus has two kinds of failure (TigerStyle): our own bugs, which `assert` turns into a
 * crash, and everything the world can do to us, which is one of the typed errors below.
 * Every error that crosses the wire carries a stable `code` and a plain `details` record
 * with what a caller needs to act (how many replicas answered, which limit was hit, ...),
 * so the SDK can rebuild the same class on the other side.
 */

export const ERROR_CODES = [
  'TIMEOUT',
  'UNAVAILABLE',
  'INVALID_REQUEST',
  'TOO_LARGE',
  'UNAUTHORIZED',
  'CLOSED',
  'ABORTED',
  'OVERLOADED',
  'PROTOCOL',
  'STORAGE',
  'CONFIG',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Plain, CBOR-encodable facts about an error: numbers, strings, booleans. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean>>;

export class ChorusError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'ChorusError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** The request did not complete in time; `details.mayHaveLanded` says whether a write may exist anyway. */
export class TimeoutError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('TIMEOUT', message, details);
    this.name = 'TimeoutError';
  }
}

/** Too few replicas (or nodes) were reachable to even try; nothing was written. */
export class UnavailableError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('UNAVAILABLE', message, details);
    this.name = 'UnavailableError';
  }
}

/** The request itself is wrong (bad key, bad option, malformed value); nothing was written. */
export class InvalidRequestError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('INVALID_REQUEST', message, details);
    this.name = 'InvalidRequestError';
  }
}

/** A key, bucket, value or frame is over its configured limit; nothing was written. */
export class TooLargeError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('TOO_LARGE', message, details);
    this.name = 'TooLargeError';
  }
}

/** Wrong cluster secret, cluster name or protocol version. */
export class UnauthorizedError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('UNAUTHORIZED', message, details);
    this.name = 'UnauthorizedError';
  }
}

/** The client or the connection was closed before the request completed. */
export class ClosedError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('CLOSED', message, details);
    this.name = 'ClosedError';
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('ABORTED', message, details);
    this.name = 'AbortedError';
  }
}

/** A bounded queue is full; retry later. */
export class OverloadedError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('OVERLOADED', message, details);
    this.name = 'OverloadedError';
  }
}

/** The peer broke the wire protocol (malformed frame, unknown message). */
export class ProtocolError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('PROTOCOL', message, details);
    this.name = 'ProtocolError';
  }
}

/** The storage engine failed a write; the node stops acknowledging rather than lie. */
export class StorageError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('STORAGE', message, details);
    this.name = 'StorageError';
  }
}

/** A setting is unknown, mistyped or contradicts another. `details.key` names it. */
export class ConfigError extends ChorusError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('CONFIG', message, details);
    this.name = 'ConfigError';
  }
}

const CLASSES: Record<ErrorCode, new (message: string, details?: ErrorDetails) => ChorusError> = {
  TIMEOUT: TimeoutError,
  UNAVAILABLE: UnavailableError,
  INVALID_REQUEST: InvalidRequestError,
  TOO_LARGE: TooLargeError,
  UNAUTHORIZED: UnauthorizedError,
  CLOSED: ClosedError,
  ABORTED: AbortedError,
  OVERLOADED: OverloadedError,
  PROTOCOL: ProtocolError,
  STORAGE: StorageError,
  CONFIG: ConfigError,
};

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code);
}

/** Rebuilds the typed error from its wire form (code, message, details). */
export function errorFromWire(code: ErrorCode, message: string, details: ErrorDetails = {}): ChorusError {
  return new CLASSES[code](message, details);
}
