/**
 * Checks a client request where it enters the cluster: its bucket, key and value against the
 * data limits (codec/request-limits.ts, shared with the SDK), and its causal context.
 */

import { ChorusError, InvalidRequestError, TooLargeError } from '../base/errors.js';
import { CONTEXT_BYTES_MAX } from '../base/limits.js';
import { decodeContext, EMPTY_CONTEXT } from '../clock/context.js';
import type { VersionVector } from '../clock/dvv.js';

export { checkBucketKey, checkValue } from '../codec/request-limits.js';

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
