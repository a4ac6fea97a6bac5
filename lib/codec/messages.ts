/**
 * The wire: every message a client or peer may send, as one discriminated union on `t`.
 *
 * A frame is a CBOR array of messages (everything queued for one connection in one turn
 * of the event loop). Each decoded message is checked against a strict schema before it
 * reaches the core: unknown types, unknown fields, wrong types and out-of-range numbers are
 * refused, so the core only ever sees well-formed, plain data. User values and causal
 * contexts travel as opaque byte strings: the node never decodes a user value. Operations on
 * typed buckets (`upd`, `fetch`) are the exception: the node merges those values itself, so
 * it checks their operations (lib/crdt) and answers with their merged value.
 *
 * Protocol versions are negotiated at the handshake: each side sends the range it speaks
 * and the highest common version wins (memberlist's protocol range).
 */

import { z } from 'zod';
import { ERROR_CODES } from '../base/errors.js';
import { FRAME_MESSAGES_MAX, REQUEST_TIMEOUT_MS_MAX } from '../base/limits.js';
import { CLIENT_REPLY_CHECKS, CLIENT_REQUEST_CHECKS, PEER_MESSAGE_CHECKS, passesCheck, type MessageCheck } from './hot-checks.js';

/**
 * The protocol versions this build speaks. 1: the first wire. 2: paired gets (`get` with
 * `pair`, `dget`, `get-ok` with `dg`); an SDK pairs a read only over links that agreed on 2
 * or later, so a client of this build keeps working with nodes of the previous one.
 */
export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 2;

/** The first protocol version with paired gets. */
export const PAIRED_READS_VERSION = 2;

/** Bytes of a handshake nonce; 16 random bytes make a replayed proof useless. */
export const NONCE_BYTES = 16;

/** A byte string; cbor-x hands them over as Buffers, which are Uint8Arrays. */
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected a byte string' });
const requestId = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const version = z.number().int().min(0).max(0xffff);
/** Names are bounded here only so a hostile frame cannot make us hold huge strings; data limits apply in the core. */
const name = z.string().max(256);
/** Bucket and key lengths are checked in the core against the configured limits; the wire bound only caps memory. */
const bucketField = z.string().max(64 * 1024);
const keyField = z.string().max(64 * 1024);

/** A consistency level: a named level or a number of replicas. */
export const levelSchema = z.union([z.literal('one'), z.literal('quorum'), z.literal('all'), z.number().int().min(0).max(255)]);
export type Level = z.infer<typeof levelSchema>;

/**
 * A level as a request carries it. The wire takes any short string or number, so that a
 * level out of range (0, negative, above n, an unknown name) reaches the core and is refused
 * there with an INVALID_REQUEST naming the option, instead of closing the connection.
 */
const levelField = z.union([z.string().max(32), z.number()]);
export type LevelInput = z.infer<typeof levelField>;

const timeoutMs = z.number().int().min(1).max(REQUEST_TIMEOUT_MS_MAX);

/** What a copy holds, without its values: per actor, the counter and the number of live siblings. */
const objectDigestField = z.array(z.tuple([z.string().max(256), z.number().int().min(0), z.number().int().min(0)])).max(4096);

// ---- handshake (both roles) ----

export const helloSchema = z.strictObject({
  t: z.literal('hello'),
  role: z.union([z.literal('client'), z.literal('peer')]),
  vmin: version,
  vmax: version,
  cluster: name,
  /** The connecting peer's node id; absent for clients. */
  node: name.optional(),
  nonce: bytes,
});

export const welcomeSchema = z.strictObject({
  t: z.literal('welcome'),
  v: version,
  cluster: name,
  node: name,
  nonce: bytes,
  /** HMAC proving the server knows the secret, over the connector's nonce; absent when none is configured. */
  proof: bytes.optional(),
  /** Whether the connector must answer with `auth` before anything else. */
  auth: z.boolean(),
  /** The largest frame the acceptor takes from this connector; bigger ones close the connection. */
  frameBytesMax: z.number().int().min(1024),
  /** The data limits clients must respect, so an SDK can refuse an oversized value before sending it. */
  limits: z
    .strictObject({ bucketBytesMax: z.number().int().min(1), keyBytesMax: z.number().int().min(1), valueBytesMax: z.number().int().min(1) })
    .optional(),
});

export const authSchema = z.strictObject({ t: z.literal('auth'), proof: bytes });
export const readySchema = z.strictObject({ t: z.literal('ready') });

// ---- client requests ----

export const putRequestSchema = z.strictObject({
  t: z.literal('put'),
  id: requestId,
  b: bucketField,
  k: keyField,
  v: bytes,
  ctx: bytes.optional(),
  w: levelField.optional(),
  pw: levelField.optional(),
  /** Whether fallbacks may stand in for primaries that are down (sloppy quorum); default true. */
  sloppy: z.boolean().optional(),
  timeout: timeoutMs.optional(),
});

/**
 * With `pair`, the client is asking that replica for its digest itself (`dget`, sent at the
 * same time): when this node's copy and the pair's together meet the read's quorum, this
 * node answers with its copy alone and its digest (`get-ok` `dg`), and the client completes
 * the read by comparing digests. Otherwise the node coordinates the read as without `pair`.
 */
export const getRequestSchema = z.strictObject({
  t: z.literal('get'),
  id: requestId,
  b: bucketField,
  k: keyField,
  r: levelField.optional(),
  pr: levelField.optional(),
  sloppy: z.boolean().optional(),
  timeout: timeoutMs.optional(),
  pair: z.string().min(1).max(64).optional(),
});

/** The digest of this node's durable copy of (b, k): the other half of a paired get. */
export const digestRequestSchema = z.strictObject({
  t: z.literal('dget'),
  id: requestId,
  b: bucketField,
  k: keyField,
  timeout: timeoutMs.optional(),
});

export const deleteRequestSchema = z.strictObject({
  t: z.literal('del'),
  id: requestId,
  b: bucketField,
  k: keyField,
  ctx: bytes.optional(),
  w: levelField.optional(),
  pw: levelField.optional(),
  /** Whether fallbacks may stand in for primaries that are down (sloppy quorum); default true. */
  sloppy: z.boolean().optional(),
  timeout: timeoutMs.optional(),
});

/**
 * An operation on a typed (CRDT or `doc`) bucket. `type` names the type the caller means; a
 * bucket of another type refuses it. `op` is checked by the core against that type
 * (lib/crdt), a `doc` update (`{ update: bytes }`) is decoded beforehand, with bounded work,
 * by the node's shell. `oid` identifies the operation so that a retry of it reaching the
 * same replica is applied once. With `ret`, the reply carries the value after the update.
 */
export const updateRequestSchema = z.strictObject({
  t: z.literal('upd'),
  id: requestId,
  b: bucketField,
  k: keyField,
  type: z.string().max(32),
  op: z.unknown(),
  oid: z.string().min(1).max(64).optional(),
  ret: z.boolean().optional(),
  w: levelField.optional(),
  pw: levelField.optional(),
  sloppy: z.boolean().optional(),
  timeout: timeoutMs.optional(),
});

/** Reads a typed bucket's value, merged; for a `doc`, with `sv` only what that state vector lacks. */
export const fetchRequestSchema = z.strictObject({
  t: z.literal('fetch'),
  id: requestId,
  b: bucketField,
  k: keyField,
  type: z.string().max(32),
  sv: bytes.optional(),
  r: levelField.optional(),
  pr: levelField.optional(),
  sloppy: z.boolean().optional(),
  timeout: timeoutMs.optional(),
});

/** Operator requests over the authenticated client connection. */
export const adminRequestSchema = z.strictObject({
  t: z.literal('admin'),
  id: requestId,
  op: z.enum(['status', 'leave', 'bucket-set', 'bucket-list', 'ring', 'whereis', 'topology', 'inspect', 'repair', 'repair-status', 'remove', 'transfers', 'plan', 'cleanup', 'cleanup-status']),
  bucket: bucketField.optional(),
  /** The member a `remove` or `plan` is about. */
  node: z.string().min(1).max(64).optional(),
  /** What a `plan` is for: a member joining (with `vnodes` and `zone`), leaving, or removed. */
  change: z.enum(['join', 'leave', 'remove']).optional(),
  vnodes: z.number().int().min(1).max(4096).optional(),
  zone: z.string().min(1).max(64).optional(),
  /** Do it even though it is unsafe (a `remove` of a member that looks alive, or that leaves fewer than n). */
  force: z.boolean().optional(),
  key: keyField.optional(),
  props: z
    .strictObject({
      n: z.number().int().min(1).max(16).optional(),
      r: levelSchema.optional(),
      w: levelSchema.optional(),
      type: z.enum(['kv', 'counter', 'set', 'map', 'register', 'flag', 'doc']).optional(),
    })
    .optional(),
  timeout: timeoutMs.optional(),
});

// ---- replies ----

/**
 * `ctx` is present only when the write left a single sibling: then it covers exactly what
 * the writer knows. With concurrent siblings a context would also cover values the writer
 * never saw, and a put with it would silently discard them; the writer must read first.
 */
export const putReplySchema = z.strictObject({
  t: z.literal('put-ok'),
  id: requestId,
  ctx: bytes.optional(),
  siblings: z.number().int().min(0),
});
/**
 * `dg` is present only in answer to a paired get that this node answered from its own copy:
 * the read is complete only if the pair's digest (`dget-ok`) is the same; if not, the client
 * reads again without `pair`, and the node coordinating that read merges and repairs.
 */
export const getReplySchema = z.strictObject({
  t: z.literal('get-ok'),
  id: requestId,
  found: z.boolean(),
  values: z.array(bytes),
  ctx: bytes,
  dg: objectDigestField.optional(),
});
export const digestReplySchema = z.strictObject({ t: z.literal('dget-ok'), id: requestId, dg: objectDigestField });
export const deleteReplySchema = z.strictObject({ t: z.literal('del-ok'), id: requestId });
/** `dup`: the operation id was applied before at this replica, so it was not applied again. */
export const updateReplySchema = z.strictObject({ t: z.literal('upd-ok'), id: requestId, value: z.unknown().optional(), dup: z.boolean().optional() });
/** `value`: the type's value (a number, sorted strings, a boolean, a map); for a `doc`, Yjs update bytes. */
export const fetchReplySchema = z.strictObject({ t: z.literal('fetch-ok'), id: requestId, found: z.boolean(), value: z.unknown() });
/** The result of an admin request: plain data (a status table, a bucket list). */
export const adminReplySchema = z.strictObject({ t: z.literal('admin-ok'), id: requestId, result: z.unknown() });
export const errorReplySchema = z.strictObject({
  t: z.literal('err'),
  id: requestId,
  code: z.enum(ERROR_CODES),
  msg: z.string().max(4096),
  details: z.record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()])),
});

export type Hello = z.infer<typeof helloSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type Auth = z.infer<typeof authSchema>;
export type Ready = z.infer<typeof readySchema>;
export type PutRequest = z.infer<typeof putRequestSchema>;
export type GetRequest = z.infer<typeof getRequestSchema>;
export type DigestRequest = z.infer<typeof digestRequestSchema>;
export type DigestReply = z.infer<typeof digestReplySchema>;
export type DeleteRequest = z.infer<typeof deleteRequestSchema>;
export type PutReply = z.infer<typeof putReplySchema>;
export type GetReply = z.infer<typeof getReplySchema>;
export type DeleteReply = z.infer<typeof deleteReplySchema>;
export type UpdateRequest = z.infer<typeof updateRequestSchema>;
export type FetchRequest = z.infer<typeof fetchRequestSchema>;
export type UpdateReply = z.infer<typeof updateReplySchema>;
export type FetchReply = z.infer<typeof fetchReplySchema>;
export type ErrorReply = z.infer<typeof errorReplySchema>;
export type AdminRequest = z.infer<typeof adminRequestSchema>;
export type AdminReply = z.infer<typeof adminReplySchema>;

// ---- peer messages: membership (SWIM with Lifeguard) and cluster metadata ----

const nodeId = z.string().min(1).max(64);
/** host:port, as a node announces itself; checked loosely here, dialed only by the shell. */
const address = z.string().min(3).max(300);
const incarnation = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const sequence = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const MEMBER_STATUSES = ['joining', 'up', 'leaving', 'left'] as const;
export const LIVENESSES = ['alive', 'suspect', 'dead'] as const;

/**
 * What one node says about a member: a gossip update, and a row of a pushed member table.
 * Newer news wins: a higher incarnation, or at the same incarnation a worse liveness
 * (alive < suspect < dead), or a later status (joining < up < leaving < left).
 */
export const memberStateSchema = z.strictObject({
  id: nodeId,
  addr: address,
  zone: z.string().min(1).max(64),
  vnodes: z.number().int().min(1).max(4096),
  status: z.enum(MEMBER_STATUSES),
  live: z.enum(LIVENESSES),
  inc: incarnation,
  /** For a suspicion: the member whose probe raised or confirmed it (Lifeguard counts independent suspectors). */
  by: nodeId.optional(),
});

/** Gossip updates piggybacked on a message; bounded so one frame stays small. */
const updates = z.array(memberStateSchema).max(256);

/** A direct probe. `target` is the id the sender means, so a restarted node under a new id cannot answer for the old one. */
export const pingSchema = z.strictObject({ t: z.literal('ping'), seq: sequence, from: nodeId, target: nodeId, upd: updates });
/** Answers a ping (to the prober, or to the member that relayed an indirect probe). */
export const ackSchema = z.strictObject({ t: z.literal('ack'), seq: sequence, from: nodeId, upd: updates });
/** Asks the receiver to probe `target` on the sender's behalf (SWIM's indirect probe). */
export const pingReqSchema = z.strictObject({
  t: z.literal('ping-req'),
  seq: sequence,
  from: nodeId,
  target: nodeId,
  addr: address,
  upd: updates,
});
/** Lifeguard's negative ack: the relay could not reach the target in time (so the prober's own link is fine). */
export const nackSchema = z.strictObject({ t: z.literal('nack'), seq: sequence, from: nodeId });
/** Updates pushed to a few random members each gossip interval. */
export const gossipSchema = z.strictObject({ t: z.literal('gossip'), from: nodeId, upd: updates });
/**
 * Push-pull: the sender's whole member table and the state vector of its metadata document;
 * the receiver merges the table, answers with its own (`reply: true`) and sends the metadata
 * update the sender lacks. Also how a new node joins through a seed.
 */
export const syncSchema = z.strictObject({
  t: z.literal('sync'),
  from: nodeId,
  reply: z.boolean(),
  members: z.array(memberStateSchema).max(10_000),
  /** Yjs state vector of the sender's metadata document. */
  sv: bytes,
  /** Yjs update with what the receiver's state vector said it lacks (present in replies and answers). */
  meta: bytes.optional(),
});

// ---- peer messages: replication ----

/**
 * A stored object (a dotted version vector of sibling values, `null` for a tombstone) as it
 * travels between replicas. The wire only checks that it is a map; the core checks its
 * shape in full (clock/dvv.ts validateDvv) before it merges anything, and answers a
 * malformed one as a failed replica. No size limit applies: refusing merged data on a
 * replica-to-replica path would lose it.
 */
const storedObject = z.custom<{ readonly entries: unknown }>((v) => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array), {
  message: 'expected a stored object',
});

const rid = sequence;

/**
 * Replicate: merge `obj` into the receiver's copy of (b, k). With `hint`, the receiver is a
 * fallback standing in for that node and keeps the object as a durable hint for it instead.
 * Answered with `rput-ok` once durable, or `rerr`.
 */
export const rputSchema = z.strictObject({ t: z.literal('rput'), from: nodeId, rid, b: bucketField, k: keyField, obj: storedObject, hint: nodeId.optional() });
export const rputOkSchema = z.strictObject({ t: z.literal('rput-ok'), from: nodeId, rid });
/** Read (b, k) as the receiver holds it durably; with `hint`, the hint it holds for that node. */
/** With `dg`, the answer is only the copy's digest (`rget-ok` `dg`): the asker holds a copy to compare. */
export const rgetSchema = z.strictObject({ t: z.literal('rget'), from: nodeId, rid, b: bucketField, k: keyField, hint: nodeId.optional(), dg: z.literal(true).optional() });

/** `obj` absent: the replica holds nothing for the key. */
export const rgetOkSchema = z.strictObject({ t: z.literal('rget-ok'), from: nodeId, rid, obj: storedObject.optional(), dg: objectDigestField.optional() });
/** A replica could not do what was asked (storage failed, a budget is spent): it counts as a failed replica. */
export const rerrSchema = z.strictObject({ t: z.literal('rerr'), from: nodeId, rid, code: z.enum(ERROR_CODES), msg: z.string().max(4096) });
/** A client request passed to a node that can coordinate it (a replica of the key); answered by `fwd-reply`. */
export const fwdSchema = z.strictObject({ t: z.literal('fwd'), from: nodeId, rid, req: z.discriminatedUnion('t', [putRequestSchema, getRequestSchema, deleteRequestSchema, updateRequestSchema]) });
export const fwdReplySchema = z.strictObject({
  t: z.literal('fwd-reply'),
  from: nodeId,
  rid,
  reply: z.discriminatedUnion('t', [putReplySchema, getReplySchema, deleteReplySchema, updateReplySchema, fetchReplySchema, errorReplySchema]),
});
/** Hinted handoff: a batch of objects a fallback kept for the receiver; answered by `handoff-ok` once all are durable. */
export const handoffSchema = z.strictObject({
  t: z.literal('handoff'),
  from: nodeId,
  rid,
  items: z.array(z.strictObject({ b: bucketField, k: keyField, obj: storedObject })).max(1024),
});
export const handoffOkSchema = z.strictObject({ t: z.literal('handoff-ok'), from: nodeId, rid });
/** Every primary holds this tombstone and its grace period is over: drop it if it is still exactly what is stored. */
export const reapSchema = z.strictObject({ t: z.literal('reap'), from: nodeId, b: bucketField, k: keyField, obj: storedObject });

// ---- peer messages: anti-entropy (lib/antientropy) ----

const treeNode = z.number().int().min(0).max(2 ** 31);
const token = z.number().int().min(0).max(2 ** 32 - 1);
const record = z.strictObject({ b: bucketField, k: keyField, obj: storedObject });

/**
 * One step of a descent, which the two sides take in turns: "here are my hashes of the nodes
 * at `level` (the children of `of`, nodes of level `level` − 1; the root when `of` is empty);
 * which differ, and what are your hashes of their children?" Hashes are salted and cut to 4
 * bytes each (`h`). The first of an exchange carries `ring` (the checksum of the sender's
 * ring) and `n`, or `spans`, with the segment `depth`, the tree's leaf count `lc` and the
 * exchange's salt `s`: the receiver builds the tree of the spans the two share and refuses if
 * its ring or tree differs. `b` limits the exchange to one bucket.
 */
export const aeTreeSchema = z.strictObject({
  t: z.literal('ae-tree'),
  from: nodeId,
  rid,
  xid: sequence,
  level: z.number().int().min(0).max(64),
  of: z.array(treeNode).max(4096),
  h: bytes,
  depth: z.number().int().min(1).max(32).optional(),
  lc: z.number().int().min(1).max(2 ** 31).optional(),
  s: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  ring: z.string().max(128).optional(),
  n: z.number().int().min(1).max(16).optional(),
  /** Instead of `ring`: the spans [from, to) to compare, named outright (a transfer on a join or leave). */
  spans: z.array(z.tuple([token, token])).min(1).max(4096).optional(),
  b: bucketField.optional(),
  /** A forced exchange (a repair or a transfer): the receiver serves it at the repair budget, not its own. */
  f: z.literal(true).optional(),
});
/**
 * The answer to a step: `d`, a bitmap over the nodes sent (bit i of byte i/8: node i differs).
 * Above the leaves, `h` holds the receiver's hashes of the children of the differing nodes, in
 * order. At the leaves, `items` holds its salted 6-byte hashes of (key, version) under the
 * first `cov` differing leaves; the sender asks for the rest with `ae-keys`.
 */
export const aeTreeOkSchema = z.strictObject({
  t: z.literal('ae-tree-ok'),
  from: nodeId,
  rid,
  d: bytes,
  h: bytes.optional(),
  items: bytes.optional(),
  cov: z.number().int().min(0).max(4096).optional(),
});
/** "Your (key, version) hashes under these leaves, please." */
export const aeKeysSchema = z.strictObject({ t: z.literal('ae-keys'), from: nodeId, rid, xid: sequence, leaves: z.array(treeNode).max(4096) });
/** The salted 6-byte hash of every (key, version) under the first `cov` of the leaves asked for (whole leaves, at least one). */
export const aeKeysOkSchema = z.strictObject({ t: z.literal('ae-keys-ok'), from: nodeId, rid, items: bytes, cov: z.number().int().min(0).max(4096) });
/**
 * Merge `push`, then answer with your (merged) copies of the keys whose item hashes are in
 * `pull`: items of the last list you sent in this exchange.
 */
export const aeSyncSchema = z.strictObject({
  t: z.literal('ae-sync'),
  from: nodeId,
  rid,
  xid: sequence,
  push: z.array(record).max(65_536),
  pull: bytes,
});
export const aeSyncOkSchema = z.strictObject({ t: z.literal('ae-sync-ok'), from: nodeId, rid, objs: z.array(record) });
/** The exchange is over: the receiver drops its session and notes the exchange as complete. */
export const aeDoneSchema = z.strictObject({ t: z.literal('ae-done'), from: nodeId, xid: sequence });

export type MemberState = z.infer<typeof memberStateSchema>;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];
export type Liveness = (typeof LIVENESSES)[number];
export type Ping = z.infer<typeof pingSchema>;
export type Ack = z.infer<typeof ackSchema>;
export type PingReq = z.infer<typeof pingReqSchema>;
export type Nack = z.infer<typeof nackSchema>;
export type Gossip = z.infer<typeof gossipSchema>;
export type Sync = z.infer<typeof syncSchema>;
export type Rput = z.infer<typeof rputSchema>;
export type RputOk = z.infer<typeof rputOkSchema>;
export type Rget = z.infer<typeof rgetSchema>;
export type RgetOk = z.infer<typeof rgetOkSchema>;
export type Rerr = z.infer<typeof rerrSchema>;
export type Fwd = z.infer<typeof fwdSchema>;
export type FwdReply = z.infer<typeof fwdReplySchema>;
export type Handoff = z.infer<typeof handoffSchema>;
export type HandoffOk = z.infer<typeof handoffOkSchema>;
export type Reap = z.infer<typeof reapSchema>;
export type AeTree = z.infer<typeof aeTreeSchema>;
export type AeTreeOk = z.infer<typeof aeTreeOkSchema>;
export type AeKeys = z.infer<typeof aeKeysSchema>;
export type AeKeysOk = z.infer<typeof aeKeysOkSchema>;
export type AeSync = z.infer<typeof aeSyncSchema>;
export type AeSyncOk = z.infer<typeof aeSyncOkSchema>;
export type AeDone = z.infer<typeof aeDoneSchema>;
export type AntiEntropyMessage = AeTree | AeTreeOk | AeKeys | AeKeysOk | AeSync | AeSyncOk | AeDone;
export type MembershipMessage = Ping | Ack | PingReq | Nack | Gossip | Sync;
export type ReplicationMessage = Rput | RputOk | Rget | RgetOk | Rerr | Fwd | FwdReply | Handoff | HandoffOk | Reap;
export type PeerMessage = MembershipMessage | ReplicationMessage | AntiEntropyMessage;

export const peerMessageSchema = z.discriminatedUnion('t', [
  pingSchema,
  ackSchema,
  pingReqSchema,
  nackSchema,
  gossipSchema,
  syncSchema,
  rputSchema,
  rputOkSchema,
  rgetSchema,
  rgetOkSchema,
  rerrSchema,
  fwdSchema,
  fwdReplySchema,
  handoffSchema,
  handoffOkSchema,
  reapSchema,
  aeTreeSchema,
  aeTreeOkSchema,
  aeKeysSchema,
  aeKeysOkSchema,
  aeSyncSchema,
  aeSyncOkSchema,
  aeDoneSchema,
]);

export type HandshakeMessage = Hello | Welcome | Auth | Ready;
export type ClientRequest = PutRequest | GetRequest | DigestRequest | DeleteRequest | UpdateRequest | FetchRequest | AdminRequest;
export type ClientReply = PutReply | GetReply | DigestReply | DeleteReply | UpdateReply | FetchReply | AdminReply | ErrorReply;

export const handshakeMessageSchema = z.discriminatedUnion('t', [helloSchema, welcomeSchema, authSchema, readySchema]);
export const clientRequestSchema = z.discriminatedUnion('t', [putRequestSchema, getRequestSchema, digestRequestSchema, deleteRequestSchema, updateRequestSchema, fetchRequestSchema, adminRequestSchema]);
export const clientReplySchema = z.discriminatedUnion('t', [putReplySchema, getReplySchema, digestReplySchema, deleteReplySchema, updateReplySchema, fetchReplySchema, adminReplySchema, errorReplySchema]);

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** The hot messages of each union, with hand-written checks that accept a subset of what the schema does (hot-checks.ts). */
const FAST_CHECKS = new Map<z.ZodType, ReadonlyMap<string, MessageCheck>>([
  [clientRequestSchema, CLIENT_REQUEST_CHECKS],
  [clientReplySchema, CLIENT_REPLY_CHECKS],
  [peerMessageSchema, PEER_MESSAGE_CHECKS],
]);

/** Validates one decoded message; never throws. */
export function parseMessage<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T> {
  // A message its fast check passes is one the schema accepts unchanged (no defaults, no transforms).
  if (passesCheck(FAST_CHECKS.get(schema), value)) return { ok: true, value: value as T };
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  const t = typeof value === 'object' && value !== null ? (value as { t?: unknown }).t : undefined;
  const type = typeof t === 'string' ? t.slice(0, 32) : '?';
  return { ok: false, reason: `invalid ${type} message${where}: ${issue?.message ?? 'rejected'}` };
}

/** Validates a decoded frame: an array of 1..FRAME_MESSAGES_MAX messages of one schema. */
export function parseFrame<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T[]> {
  if (!Array.isArray(value)) return { ok: false, reason: 'a frame must be an array of messages' };
  if (value.length === 0) return { ok: false, reason: 'empty frame' };
  if (value.length > FRAME_MESSAGES_MAX) return { ok: false, reason: `frame holds ${value.length} messages, over ${FRAME_MESSAGES_MAX}` };
  const out: T[] = [];
  for (const item of value) {
    const parsed = parseMessage(schema, item);
    if (!parsed.ok) return parsed;
    out.push(parsed.value);
  }
  return { ok: true, value: out };
}
