/**
 * The causal context as the SDK hands it to applications: an opaque base64url string.
 * It can be stored, logged or passed through JSON and HTTP untouched, and handed back on
 * the next put or delete of the same key.
 */

import { InvalidRequestError } from '../base/errors.js';

export type Context = string;

export function contextToString(bytes: Uint8Array): Context {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function contextFromString(context: Context | undefined): Uint8Array | undefined {
  if (context === undefined || context === '') return undefined;
  if (typeof context !== 'string' || !/^[A-Za-z0-9_-]*$/.test(context)) {
    throw new InvalidRequestError('context must be the string returned by a get or put', { field: 'context' });
  }
  return new Uint8Array(Buffer.from(context, 'base64url'));
}
