/** Limits of the SDK's own. */

/**
 * The largest reply frame the SDK accepts: a get returns every sibling of a key, each up to
 * the node's value limit, so this is generous; frames are split between messages.
 */
export const CLIENT_FRAME_BYTES_IN_MAX = 256 * 1024 * 1024;

/** Extra time the SDK waits past a request's own timeout for the node's TIMEOUT reply. */
export const CLIENT_TIMEOUT_GRACE_MS = 1000;

/** Requests one client has in flight; more wait for OVERLOADED-free room rather than growing memory. */
export const CLIENT_INFLIGHT_MAX = 10_000;
