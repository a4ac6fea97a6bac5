/**
 * The causal context a reader receives and a writer hands back, as opaque bytes.
 *
 * A get returns the join of the object's clock (one counter per replica actor, see `dvv.ts`);
 * the client never looks inside and passes the bytes back with its next put, which then
 * supersedes exactly what that read saw (DVV, DAIS 2014; Riak's opaque `X-Riak-Vclock`). The
 * bytes are the CBOR of the vector, `[[actor, counter], ...]`.
 *
 * The bytes come back from a client, so decoding is strict and never throws: the CBOR decoder
 * runs with tight depth and item bounds (and refuses tags), then the shape is checked exactly
 * (`validateVector`). No bytes at all, or an empty byte string, means "no context": the writer saw
 * nothing, and its value becomes a sibling of whatever is stored.
 */

import { assert } from '../base/assert.js';
import { CONTEXT_BYTES_MAX } from '../base/limits.js';
import { decodeSafe, encode } from '../codec/cbor.js';
import type { Actor, VersionVector } from './dvv.js';
import { ACTORS_MAX } from './limits.js';
import { actorProblem, counterProblem, refuse, type Checked } from './validate.js';

/** The context of a writer that saw nothing. */
export const EMPTY_CONTEXT: VersionVector = Object.freeze([]);

/** Nesting of a context: the vector (depth 1 in the decoder's count), then its pairs. */
const CONTEXT_DEPTH_MAX = 2;

/** Array elements in a context: the pairs, plus two in each. */
const CONTEXT_ITEMS_MAX = 3 * ACTORS_MAX;

/** The bytes a reader receives for a vector (normally the join of the object it read). */
export function encodeContext(vv: VersionVector): Uint8Array {
  // Only the shape is asserted, not the limits: the actors of a stored clock are partly chosen
  // by clients (through contexts), so a clock past a limit is the world's doing, not our bug.
  vv.forEach(([actor, counter], i) => {
    assert(Number.isSafeInteger(counter) && counter > 0, `context: counter of ${actor} is ${counter}`);
    assert(i === 0 || (vv[i - 1] as readonly [string, number])[0] < actor, `context: not sorted at ${actor}`);
  });
  return encode(vv);
}

/** The vector a writer's bytes stand for, or why they are refused. Never throws. */
export function decodeContext(bytes: Uint8Array | null | undefined): Checked<VersionVector> {
  if (bytes === null || bytes === undefined || bytes.byteLength === 0) return { ok: true, value: EMPTY_CONTEXT };
  if (bytes.byteLength > CONTEXT_BYTES_MAX) return { ok: false, reason: `context is over ${CONTEXT_BYTES_MAX} bytes` };
  const decoded = decodeSafe(bytes, { depthMax: CONTEXT_DEPTH_MAX, itemsMax: CONTEXT_ITEMS_MAX });
  if (!decoded.ok) return { ok: false, reason: `context is not valid CBOR: ${decoded.reason}` };
  return validateVector(decoded.value);
}

/**
 * Checks a decoded vector exactly: an array of at most `ACTORS_MAX` `[actor, counter]` pairs,
 * actors strictly sorted by plain `<` (so no duplicates), each actor and counter acceptable.
 */
export function validateVector(v: unknown): Checked<VersionVector> {
  if (!Array.isArray(v)) return refuse('context is not an array');
  if (v.length > ACTORS_MAX) return refuse(`context has over ${ACTORS_MAX} actors`);
  const out: (readonly [Actor, number])[] = [];
  for (const [i, pair] of (v as unknown[]).entries()) {
    if (!Array.isArray(pair) || pair.length !== 2) return refuse(`entry ${i} is not an [actor, counter] pair`);
    const [actor, counter] = pair as unknown[];
    const problem = actorProblem(actor) ?? counterProblem(counter);
    if (problem !== undefined) return refuse(`entry ${i}: ${problem}`);
    const previous = out[i - 1];
    if (previous !== undefined && !(previous[0] < (actor as Actor))) return refuse(`entry ${i}: actors not strictly sorted`);
    out.push([actor as Actor, counter as number]);
  }
  return { ok: true, value: out };
}
