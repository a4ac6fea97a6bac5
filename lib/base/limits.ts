/**
 * Named limits. Every queue, batch and size in Chorus has one; each says why it is what it is.
 *
 * The data limits (bucket, key, value, siblings) are configurable and apply only where a
 * client enters: a replica never refuses merged data on repair or handoff paths, because
 * refusing it there would lose acknowledged writes (Riak's "cannot be read repaired").
 */

export interface DataLimits {
  /** UTF-8 bytes of a bucket name. Buckets are few and appear in every storage key. */
  readonly bucketBytesMax: number;
  /** UTF-8 bytes of a key. Keys are stored inline in the LMDB key (LMDB allows 1978 bytes by default). */
  readonly keyBytesMax: number;
  /** Encoded bytes of one value. Large values belong in blob storage; 1 MiB keeps frames small. */
  readonly valueBytesMax: number;
  /** Siblings one object may carry; a put that would exceed this is refused (Riak's sibling explosion). */
  readonly siblingsMax: number;
  /** Siblings at which the node logs a warning: a writer is probably not passing contexts. */
  readonly siblingsWarn: number;
}

export const DATA_LIMITS_DEFAULT: DataLimits = {
  bucketBytesMax: 64,
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  siblingsMax: 100,
  siblingsWarn: 25,
};

/**
 * LMDB's default maximum key size is 1978 bytes; a storage key is 4 token bytes, the bucket,
 * a zero byte and the key, so bucket and key limits together must stay below it.
 */
export const STORAGE_KEY_BYTES_MAX = 1978;

/** Nesting depth of a decoded wire message. Our messages nest at most a few levels; cbor-x recurses per level. */
export const WIRE_DEPTH_MAX = 16;

/**
 * Nesting depth allowed inside a user value, checked by the SDK before it sends one. cbor-x
 * decodes recursively and overflows the stack after a few thousand levels; 256 leaves a wide margin.
 */
export const VALUE_DEPTH_MAX = 256;

/** Items (array elements plus map entries) in one decoded wire frame; bounds decode work and memory. */
export const WIRE_ITEMS_MAX = 1_000_000;

/** Messages in one frame. A batch is what one event-loop turn produced for one connection. */
export const FRAME_MESSAGES_MAX = 4096;

/** Bytes of frame overhead beyond one maximum value: request fields, context, framing. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024;

/** Requests one client connection may have in flight at a node; past it the node answers OVERLOADED. */
export const CONNECTION_REQUESTS_INFLIGHT_MAX = 10_000;

/** Requests a node coordinates at once across all connections; past it, OVERLOADED. */
export const NODE_REQUESTS_INFLIGHT_MAX = 100_000;

/** Bytes a socket may have buffered before the sender stops adding to it (backpressure). */
export const SOCKET_BUFFERED_BYTES_MAX = 16 * 1024 * 1024;

/** Bytes of a peer-to-peer frame. Internal paths have no data limits, so large batches are split below this. */
export const PEER_FRAME_BYTES_MAX = 64 * 1024 * 1024;

/** Bytes of an encoded causal context a client may send back. A context has one entry per replica actor. */
export const CONTEXT_BYTES_MAX = 64 * 1024;

/** Longest request timeout a client may ask for: 5 minutes. */
export const REQUEST_TIMEOUT_MS_MAX = 5 * 60 * 1000;
