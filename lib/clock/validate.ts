/**
 * The checks shared by everything that accepts a clock from outside: a client's context
 * (`decodeContext`), a peer's object or a record on disk (`validateDvv`).
 *
 * Everything the world hands us is decoded into a result, never trusted and never thrown on
 * (TigerStyle's second kind of failure): a malformed clock is refused with a reason the caller
 * can count and log. An actor is a non-empty string of at most `ACTOR_BYTES_MAX` UTF-8 bytes; a
 * counter is a positive integer of at most `COUNTER_MAX`.
 */

import { utf8Length } from '../base/utf8.js';
import { ACTOR_BYTES_MAX, COUNTER_MAX } from './limits.js';

/** What a check of outside data returns: the data, rebuilt as fresh plain values, or why it was refused. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** A refusal, with the reason a caller logs and counts. */
export function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** Why `actor` is not an acceptable actor name, or `undefined` when it is. */
export function actorProblem(actor: unknown): string | undefined {
  if (typeof actor !== 'string') return 'actor is not a string';
  if (actor.length === 0) return 'actor is empty';
  if (utf8Length(actor) > ACTOR_BYTES_MAX) return `actor is over ${ACTOR_BYTES_MAX} bytes`;
  return undefined;
}

/** Why `counter` is not an acceptable counter, or `undefined` when it is. */
export function counterProblem(counter: unknown): string | undefined {
  if (typeof counter !== 'number' || !Number.isInteger(counter)) return 'counter is not an integer';
  if (counter <= 0) return 'counter is not positive';
  if (counter > COUNTER_MAX) return `counter is over ${COUNTER_MAX}`;
  return undefined;
}

/** A plain object such as a CBOR map decodes to (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
