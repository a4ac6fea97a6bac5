/**
 * The core's inputs and outputs. The shell (runtime, or the simulator) turns the world into
 * `NodeInput`s and carries out `NodeOutput`s; the core in between is a synchronous function.
 */

import type { ClientReply, ClientRequest, PeerMessage } from '../codec/messages.js';
import type { PeerTarget } from '../membership/membership.js';
import type { StoreWrite } from './ports.js';

/** Identifies one client connection, as numbered by the shell. */
export type ConnId = number;

export type NodeInput =
  /** One tick of logical time has passed. */
  | { readonly kind: 'tick' }
  | { readonly kind: 'client-request'; readonly conn: ConnId; readonly request: ClientRequest }
  | { readonly kind: 'client-closed'; readonly conn: ConnId }
  /** The storage write batch `writeId` is durable. */
  | { readonly kind: 'store-durable'; readonly writeId: number }
  /** The storage write batch `writeId` failed; nothing of it may be assumed on disk. */
  | { readonly kind: 'store-failed'; readonly writeId: number; readonly reason: string }
  /** A peer message; `from` is the node id the connection's handshake authenticated. */
  | { readonly kind: 'peer-message'; readonly from: string; readonly message: PeerMessage }
  /** The shell could not reach a peer, or found that an address is this node itself. */
  | { readonly kind: 'peer-unreachable'; readonly node: string | undefined; readonly addr: string; readonly reason: 'unreachable' | 'self' }
  /** A message to `node` was not sent (no connection, a full queue): whatever awaits its answer need not wait. */
  | { readonly kind: 'peer-undeliverable'; readonly node: string; readonly message: PeerMessage }
  /** The event loop did not run for `ticks` ticks (a pause, a long GC): the view is stale. */
  | { readonly kind: 'stalled'; readonly ticks: number }
  /** The event loop's measured lag, in ticks (Lifeguard's local health). */
  | { readonly kind: 'loop-lag'; readonly ticks: number }
  /** Foreground latency the shell measured over its last interval (a high percentile of client requests, plus the event loop's delay): anti-entropy backs off as it rises. */
  | { readonly kind: 'load'; readonly latencyMs: number };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type NodeOutput =
  | { readonly kind: 'client-reply'; readonly conn: ConnId; readonly reply: ClientReply }
  | { readonly kind: 'send'; readonly to: PeerTarget; readonly message: PeerMessage }
  /** Node metadata to keep across restarts (the incarnation, the metadata document). */
  | { readonly kind: 'meta-write'; readonly name: string; readonly value: Uint8Array }
  | { readonly kind: 'store-write'; readonly writeId: number; readonly writes: readonly StoreWrite[] }
  | { readonly kind: 'log'; readonly level: LogLevel; readonly msg: string; readonly fields: Readonly<Record<string, string | number | boolean>> };
