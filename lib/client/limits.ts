/** Limits of the SDK's own. */

/**
 * The largest reply frame the SDK accepts: a get returns every sibling of a key, each up to
 * the node's value limit, so this is generous; frames are split between messages.
 */
export const CLIENT_FRAME_BYTES_IN_MAX = 256 * 1024 * 1024;

/** Extra time the SDK waits past a request's own timeout for the node's TIMEOUT reply. */
export const CLIENT_TIMEOUT_GRACE_MS = 1000;

/**
 * How long a paired get waits for the pair's digest after the other replica answered before
 * it is sent again unpaired: as long as a node waits before asking one more replica.
 */
export const PAIR_DIGEST_WAIT_MS = 50;

/** Requests one client has in flight; more wait for OVERLOADED-free room rather than growing memory. */
export const CLIENT_INFLIGHT_MAX = 10_000;

/**
 * Links one client keeps: one per member it learned of, plus the nodes it was given. Each is a
 * socket and a ping timer; a topology listing more members is used only up to this many.
 */
export const CLIENT_LINKS_MAX = 512;

/** How often the SDK asks for the topology while all is well: membership changes are rare. */
export const TOPOLOGY_REFRESH_MS = 5000;

/** The longest wait between topology requests after failures (a node that does not answer it). */
export const TOPOLOGY_REFRESH_MS_MAX = 60_000;

/**
 * How long after a link went down the SDK asks for the topology again: long enough that a
 * burst of links failing together (a node dying) costs one request.
 */
export const TOPOLOGY_LINK_DOWN_DELAY_MS = 200;

/** The timeout of a topology request: it is cheap for the node, and a slow answer is stale anyway. */
export const TOPOLOGY_TIMEOUT_MS = 2000;
