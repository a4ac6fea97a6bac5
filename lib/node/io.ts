/**
 * The core's inputs and outputs. The shell (runtime, or the simulator) turns the world into
 * `NodeInput`s and carries out `NodeOutput`s; the core in between is a synchronous function.
 */

import type { ClientReply, ClientRequest } from '../codec/messages.js';
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
  | { readonly kind: 'store-failed'; readonly writeId: number; readonly reason: string };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type NodeOutput =
  | { readonly kind: 'client-reply'; readonly conn: ConnId; readonly reply: ClientReply }
  | { readonly kind: 'store-write'; readonly writeId: number; readonly writes: readonly StoreWrite[] }
  | { readonly kind: 'log'; readonly level: LogLevel; readonly msg: string; readonly fields: Readonly<Record<string, string | number | boolean>> };
