/**
 * Hand-written checks for the messages a node handles thousands of times a second: client
 * gets and puts and their replies, and the replica messages they cause. Each check accepts
 * only what its schema in messages.ts accepts (a subset: it may refuse more), so a message
 * it passes is returned as is, and anything else, bad input included, takes the schema's
 * path, which says what is wrong. The schemas stay the definition of the wire; these only
 * spare a node the generic validator's cost on its hot path (spec/codec/hot-checks.spec.ts
 * holds each check to its schema).
 */

import { REQUEST_TIMEOUT_MS_MAX } from '../base/limits.js';

type Fields = Record<string, unknown>;
/** Whether one field's value is acceptable; `undefined` is handled by the caller. */
type FieldCheck = (value: unknown) => boolean;

/** A strict object check: every key known, required ones present, each value acceptable. */
export type MessageCheck = (message: Fields) => boolean;

const requestId: FieldCheck = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const sequence = requestId;
const bytes: FieldCheck = (v) => v instanceof Uint8Array;
const boolean: FieldCheck = (v) => typeof v === 'boolean';
const stringMax =
  (max: number, min = 0): FieldCheck =>
  (v) =>
    typeof v === 'string' && v.length <= max && v.length >= min;
const bucketField = stringMax(64 * 1024);
const keyField = stringMax(64 * 1024);
const nodeId = stringMax(64, 1);
const level: FieldCheck = (v) => (typeof v === 'string' && v.length <= 32) || (typeof v === 'number' && Number.isFinite(v));
const timeoutMs: FieldCheck = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= REQUEST_TIMEOUT_MS_MAX;
const literal =
  (expected: unknown): FieldCheck =>
  (v) =>
    v === expected;
const nonNegativeInt: FieldCheck = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** A stored object on the wire: any map (the core checks its shape before merging). */
const storedObject: FieldCheck = (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const byteStrings: FieldCheck = (v) => Array.isArray(v) && v.every((item) => item instanceof Uint8Array);
const digestActor = stringMax(256);
/** An object digest: [actor, counter, live siblings] triples, at most 4096. */
const objectDigest: FieldCheck = (v) =>
  Array.isArray(v) &&
  v.length <= 4096 &&
  v.every((entry) => Array.isArray(entry) && entry.length === 3 && digestActor(entry[0]) && nonNegativeInt(entry[1]) && nonNegativeInt(entry[2]));

/**
 * A strict object of `required` and `optional` fields. An optional field may also be
 * present as `undefined`, as the schemas allow.
 */
function strict(required: Readonly<Record<string, FieldCheck>>, optional: Readonly<Record<string, FieldCheck>> = {}): MessageCheck {
  const requiredEntries = Object.entries(required);
  const requiredCount = requiredEntries.length;
  return (message) => {
    if (Object.getPrototypeOf(message) !== Object.prototype) return false;
    let seen = 0;
    for (const key in message) {
      if (!Object.hasOwn(message, key)) return false;
      const value = message[key];
      const check = Object.hasOwn(required, key) ? required[key] : undefined;
      if (check !== undefined) {
        if (!check(value)) return false;
        seen++;
        continue;
      }
      const optionalCheck = Object.hasOwn(optional, key) ? optional[key] : undefined;
      if (optionalCheck === undefined) return false;
      if (value !== undefined && !optionalCheck(value)) return false;
    }
    return seen === requiredCount;
  };
}

/** Checks of client requests by `t`, for clientRequestSchema. */
export const CLIENT_REQUEST_CHECKS: ReadonlyMap<string, MessageCheck> = new Map([
  ['get', strict({ t: literal('get'), id: requestId, b: bucketField, k: keyField }, { r: level, pr: level, sloppy: boolean, timeout: timeoutMs, pair: stringMax(64, 1) })],
  ['dget', strict({ t: literal('dget'), id: requestId, b: bucketField, k: keyField }, { timeout: timeoutMs })],
  ['put', strict({ t: literal('put'), id: requestId, b: bucketField, k: keyField, v: bytes }, { ctx: bytes, w: level, pw: level, sloppy: boolean, timeout: timeoutMs })],
]);

/** Checks of client replies by `t`, for clientReplySchema. */
export const CLIENT_REPLY_CHECKS: ReadonlyMap<string, MessageCheck> = new Map([
  ['get-ok', strict({ t: literal('get-ok'), id: requestId, found: boolean, values: byteStrings, ctx: bytes }, { dg: objectDigest })],
  ['dget-ok', strict({ t: literal('dget-ok'), id: requestId, dg: objectDigest })],
  ['put-ok', strict({ t: literal('put-ok'), id: requestId, siblings: nonNegativeInt }, { ctx: bytes })],
]);

/** Checks of peer messages by `t`, for peerMessageSchema. */
export const PEER_MESSAGE_CHECKS: ReadonlyMap<string, MessageCheck> = new Map([
  ['rput', strict({ t: literal('rput'), from: nodeId, rid: sequence, b: bucketField, k: keyField, obj: storedObject }, { hint: nodeId })],
  ['rput-ok', strict({ t: literal('rput-ok'), from: nodeId, rid: sequence })],
  ['rget', strict({ t: literal('rget'), from: nodeId, rid: sequence, b: bucketField, k: keyField }, { hint: nodeId, dg: literal(true) })],
  ['rget-ok', strict({ t: literal('rget-ok'), from: nodeId, rid: sequence }, { obj: storedObject, dg: objectDigest })],
]);

/** Whether `value` passes the check registered for its `t` in `checks`. */
export function passesCheck(checks: ReadonlyMap<string, MessageCheck> | undefined, value: unknown): boolean {
  if (checks === undefined || typeof value !== 'object' || value === null) return false;
  const type = (value as { t?: unknown }).t;
  if (typeof type !== 'string') return false;
  const check = checks.get(type);
  return check !== undefined && check(value as Fields);
}
