/**
 * Bounds on clocks that arrive from outside: a client's context, a peer's object, a record on disk.
 *
 * Clocks we build ourselves stay far inside these bounds, because an actor is a replica's
 * storage epoch and a key only ever meets a handful of them. The bounds exist so that a hostile
 * or corrupt clock costs bounded work to reject, and so that counters keep room to grow.
 */

/**
 * UTF-8 bytes of one actor name. An actor is a node id plus a storage epoch, a few dozen bytes;
 * 256 matches the wire bound on node names in `codec/messages.ts`.
 */
export const ACTOR_BYTES_MAX = 256;

/**
 * Actors in one clock. A key has n replicas (typically 3) and gains a new actor only when one of
 * them loses its data or is replaced, so 1024 is centuries of churn; it bounds decode work.
 */
export const ACTORS_MAX = 1024;

/**
 * Largest counter we accept from outside: 2^52. Each write adds one to the coordinator's
 * counter, so a counter this high cannot come from real writes (at a million writes a second it
 * takes over a century), while the 2^52 steps left below `Number.MAX_SAFE_INTEGER` mean a
 * forged context can never push a counter past the integers a double represents exactly.
 */
export const COUNTER_MAX = 2 ** 52;
