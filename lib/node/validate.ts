/**
 * Checks a client request against the data limits where it enters the cluster.
 *
 * These checks run only on the client path: replica-to-replica paths (repair, handoff)
 * never refuse data, since refusing merged data there would lose acknowledged writes.
 * Every refusal is a typed error that says which limit was hit and by how much.
 */

import { ChorusError, InvalidRequestError, TooLargeError } from '../base/errors.js';
import { CONTEXT_BYTES_MAX, type DataLimits } from '../base/limits.js';
import { isWellFormed, utf8Length } from '../base/utf8.js';
import { decodeContext, EMPTY_CONTEXT } from '../clock/context.js';
import type { VersionVector } from '../clock/dvv.js';

export function checkBucketKey(bucket: string, key: string, limits: DataLimits): ChorusError | undefined {
  if (bucket.length === 0) return new InvalidRequestError('bucket must be a non-empty string', { field: 'bucket' });
  if (key.length === 0) return new InvalidRequestError('key must be a non-empty string', { field: 'key' });
  if (bucket.includes('\0')) return new InvalidRequestError('bucket must not contain a zero character', { field: 'bucket' });
  // UTF-8 cannot represent a lone surrogate: it would become U+FFFD and collide with other keys.
  if (!isWellFormed(bucket)) return new InvalidRequestError('bucket contains a lone surrogate', { field: 'bucket' });
  if (!isWellFormed(key)) return new InvalidRequestError('key contains a lone surrogate', { field: 'key' });
  const bucketBytes = utf8Length(bucket);
  if (bucketBytes > limits.bucketBytesMax) {
    return new TooLargeError(`bucket is ${bucketBytes} bytes, over the limit of ${limits.bucketBytesMax}`, {
      field: 'bucket',
      bytes: bucketBytes,
      limit: limits.bucketBytesMax,
    });
  }
  const keyBytes = utf8Length(key);
  if (keyBytes > limits.keyBytesMax) {
    return new TooLargeError(`key is ${keyBytes} bytes, over the limit of ${limits.keyBytesMax}`, {
      field: 'key',
      bytes: keyBytes,
      limit: limits.keyBytesMax,
    });
  }
  return undefined;
}

export function checkValue(value: Uint8Array, limits: DataLimits): ChorusError | undefined {
  if (value.byteLength > limits.valueBytesMax) {
    return new TooLargeError(`value is ${value.byteLength} bytes, over the limit of ${limits.valueBytesMax}`, {
      field: 'value',
      bytes: value.byteLength,
      limit: limits.valueBytesMax,
    });
  }
  return undefined;
}

/** Decodes the opaque context a client passed back; absent means "saw nothing". */
export function parseContext(ctx: Uint8Array | undefined): { ok: true; value: VersionVector } | { ok: false; error: ChorusError } {
  if (ctx === undefined || ctx.byteLength === 0) return { ok: true, value: EMPTY_CONTEXT };
  if (ctx.byteLength > CONTEXT_BYTES_MAX) {
    return { ok: false, error: new TooLargeError(`context is ${ctx.byteLength} bytes, over ${CONTEXT_BYTES_MAX}`, { field: 'context' }) };
  }
  const decoded = decodeContext(ctx);
  if (!decoded.ok) return { ok: false, error: new InvalidRequestError(`malformed context: ${decoded.reason}`, { field: 'context' }) };
  return { ok: true, value: decoded.value };
}
