/**
 * What a replica does with a write: the new version of an object, as a pure function.
 *
 * The replica that receives a put first creates the new dot with its own actor (its
 * storage epoch), discarding what the writer's context says it saw (DVV `update`). A
 * delete is a put of a tombstone (`null`). Without a context a delete covers what this
 * replica holds, as a user who says "delete k" means; a put without context keeps
 * concurrent values as siblings.
 */

import { emptyDvv, join, siblingCount, update, validateDvv, type Actor, type VersionVector } from '../clock/dvv.js';
import { ACTORS_MAX } from '../clock/limits.js';
export { sameDigest, type ObjectDigest } from '../codec/digest.js';
import type { KvObject, Sibling } from '../clock/object.js';

export interface ReplicaWrite {
  readonly object: KvObject;
  readonly siblings: number;
  /** The counter of the new dot. */
  readonly counter: number;
}

/**
 * Actors a stored clock may reach through client contexts. A context names actors the
 * object may not know (a replica that lags, an epoch whose values were all superseded), and
 * DVV keeps them; a forged context could name a thousand junk actors per put. Past this
 * bound, context actors the object does not know are ignored: that can cost a spurious
 * sibling later, never a lost write, and it keeps every stored clock within `ACTORS_MAX`.
 */
export const CONTEXT_ACTORS_KEPT_MAX = ACTORS_MAX / 2;

export function applyPut(current: KvObject | undefined, context: VersionVector, value: Sibling, actor: Actor, floor = 0): ReplicaWrite {
  const server = current ?? emptyDvv<Sibling>();
  const object = update(server, boundedContext(server, context), value, actor, floor);
  return { object, siblings: siblingCount(object), counter: counterOf(object, actor) };
}

/** The counter of `actor` in a clock (0 when it has none). */
export function counterOf(object: KvObject, actor: Actor): number {
  return object.entries.find((e) => e.actor === actor)?.counter ?? 0;
}

function boundedContext(server: KvObject, context: VersionVector): VersionVector {
  if (server.entries.length + context.length <= CONTEXT_ACTORS_KEPT_MAX) return context;
  const known = new Set(server.entries.map((e) => e.actor));
  return context.filter(([actor]) => known.has(actor));
}

/** The context a delete without one acts on: everything the replica holds. */
export function deleteContext(current: KvObject | undefined, given: VersionVector): VersionVector {
  return given.length > 0 || current === undefined ? given : join(current);
}

/** The values a reader sees: every sibling that is not a tombstone. */
export function liveValues(object: KvObject | undefined): Uint8Array[] {
  if (object === undefined) return [];
  const out: Uint8Array[] = [];
  for (const entry of object.entries) for (const v of entry.values) if (v !== null) out.push(v);
  return out;
}

/**
 * What a copy holds, without its values (lib/codec/digest.ts). A read compares a peer's
 * digest with its own copy instead of shipping the values (Cassandra's digest reads).
 */
export function objectDigestOf(object: KvObject | undefined): [actor: string, counter: number, siblings: number][] {
  return object === undefined ? [] : object.entries.map((e): [string, number, number] => [e.actor, e.counter, e.values.length]);
}

/** An object a peer sent, checked in full before anything merges it; 'invalid' when malformed. */
export function checkObject(object: unknown): KvObject | 'invalid' {
  const checked = validateDvv<Sibling>(object, (v) => v === null || v instanceof Uint8Array);
  return checked.ok ? checked.value : 'invalid';
}
