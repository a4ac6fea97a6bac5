/**
 * The data limits a request must respect where it enters the cluster, checked the same way
 * by the node (authoritative) and by the SDK (to refuse an oversized request before sending
 * it, with the limits the node announced in its welcome).
 *
 * These checks belong to the client path only: replica-to-replica paths (repair, handoff)
 * never refuse data, since refusing merged data there would lose acknowledged writes.
 * Every refusal is a typed error that says which limit was hit and by how much.
 */

import { ChorusError, InvalidRequestError, TooLargeError } from '../base/errors.js';
import { isWellFormed, utf8Length } from '../base/utf8.js';

export interface EntryLimits {
  readonly bucketBytesMax: number;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
}

export function checkBucketKey(bucket: unknown, key: unknown, limits: EntryLimits): ChorusError | undefined {
  if (typeof bucket !== 'string' || bucket.length === 0) return new InvalidRequestError('bucket must be a non-empty string', { field: 'bucket' });
  if (typeof key !== 'string' || key.length === 0) return new InvalidRequestError('key must be a non-empty string', { field: 'key' });
  if (bucket.includes('\0')) return new InvalidRequestError('bucket must not contain a zero character', { field: 'bucket' });
  // UTF-8 cannot represent a lone surrogate: it would become U+FFFD and collide with other keys.
  if (!isWellFormed(bucket)) return new InvalidRequestError('bucket contains a lone surrogate', { field: 'bucket' });
  if (!isWellFormed(key)) return new InvalidRequestError('key contains a lone surrogate', { field: 'key' });
  return tooLarge('bucket', utf8Length(bucket), limits.bucketBytesMax) ?? tooLarge('key', utf8Length(key), limits.keyBytesMax);
}

export function checkValue(value: Uint8Array, limits: EntryLimits): ChorusError | undefined {
  return tooLarge('value', value.byteLength, limits.valueBytesMax);
}

function tooLarge(field: string, bytes: number, limit: number): ChorusError | undefined {
  if (bytes <= limit) return undefined;
  return new TooLargeError(`${field} is ${bytes} bytes, over the limit of ${limit}`, { field, bytes, limit });
}
