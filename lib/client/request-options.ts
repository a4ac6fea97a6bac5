/**
 * Checks of per-request options that the SDK can make without knowing the bucket, and the
 * sibling resolver.
 *
 * Consistency levels are checked for shape only: a named level (`one`, `quorum`, `all`) or a
 * whole number. Whether a number fits is the node's call, since only it knows the bucket's
 * `n`; it answers INVALID_REQUEST naming the option.
 *
 * A resolver turns concurrent siblings into one value. Resolving on read changes nothing
 * stored: the resolution lasts only once it is written back with the context of that read,
 * which covers every sibling the read saw, so the write supersedes all of them.
 */

import { InvalidRequestError } from '../base/errors.js';
import type { Level, LevelInput } from '../codec/messages.js';

export type LevelName = 'r' | 'w' | 'pr' | 'pw';

/** Whether `value` has the shape of a level; ranges are checked by the node. */
export function isLevel(value: unknown): value is Level {
  return value === 'one' || value === 'quorum' || value === 'all' || (typeof value === 'number' && Number.isSafeInteger(value));
}

/** Copies the levels `names` from options to the request, refusing a malformed one. */
export function setLevels<K extends LevelName>(request: Partial<Record<K, LevelInput>>, options: Partial<Record<K, Level>>, ...names: K[]): void {
  for (const name of names) {
    const level: unknown = options[name];
    if (level === undefined) continue;
    if (!isLevel(level)) throw new InvalidRequestError(`${name} must be one, quorum, all or a whole number, got ${JSON.stringify(level)}`, { field: name });
    request[name] = level;
  }
}

/** Copies `sloppy` to the request when given, refusing anything but a boolean. */
export function setSloppy(request: { sloppy?: boolean }, sloppy: unknown): void {
  if (sloppy === undefined) return;
  if (typeof sloppy !== 'boolean') throw new InvalidRequestError(`sloppy must be true or false, got ${JSON.stringify(sloppy)}`, { field: 'sloppy' });
  request.sloppy = sloppy;
}

export function checkResolver(resolver: unknown): void {
  if (resolver !== undefined && typeof resolver !== 'function') throw new InvalidRequestError('resolver must be a function (values) => value', { field: 'resolver' });
}

/**
 * The values a get returns: with a resolver and more than one sibling, the one value it
 * makes of them, and how many siblings there were; otherwise the values as they are.
 */
export function resolveSiblings<T>(values: T[], resolver: ((values: T[]) => T) | undefined): { values: T[]; siblings?: number } {
  if (resolver === undefined || values.length <= 1) return { values };
  return { values: [resolver(values.slice())], siblings: values.length };
}
