/**
 * A compact trace of the last events of a simulation, for failure reports.
 *
 * A ring buffer of fixed capacity: recording is cheap (one small object, no string built),
 * and a line is formatted only when a failure report asks for the tail. It holds sends,
 * deliveries, drops, unreachable reports, the nodes' log events (member state changes) and
 * the harness's own actions (crash, restart, pause, partition), each stamped with its tick.
 */

import type { KvObject } from '../clock/object.js';
import type { ClientReply, MemberState, PeerMessage } from '../codec/messages.js';

export type TraceKind =
  | 'send'
  | 'deliver'
  | 'drop'
  | 'unreachable'
  | 'log'
  | 'fault'
  | 'node'
  | 'note';

export interface TraceEvent {
  readonly tick: number;
  readonly kind: TraceKind;
  /** The node the event happened at (the sender for a send, the receiver for a delivery). */
  readonly node: string;
  /** The other end of a message, when there is one. */
  readonly peer?: string;
  readonly message?: PeerMessage;
  /** A short free-form detail: why a message was dropped, a log message and its fields. */
  readonly detail?: string;
}

/** Events of each kind kept when the caller does not say: enough for the lead-up to most failures. */
export const TRACE_EVENTS_DEFAULT = 300;

interface Stamped {
  readonly seq: number;
  readonly event: TraceEvent;
}

/** A fixed-size ring of the newest events. */
class Ring {
  private readonly slots: (Stamped | undefined)[];
  private next = 0;
  private size = 0;

  constructor(capacity: number) {
    this.slots = new Array<Stamped | undefined>(Math.max(1, capacity)).fill(undefined);
  }

  push(entry: Stamped): void {
    this.slots[this.next] = entry;
    this.next = (this.next + 1) % this.slots.length;
    this.size = Math.min(this.size + 1, this.slots.length);
  }

  /** The newest `count` entries, oldest first. */
  tail(count: number): Stamped[] {
    const out: Stamped[] = [];
    const n = Math.min(this.size, count);
    for (let i = n; i > 0; i--) {
      const entry = this.slots[(this.next - i + this.slots.length) % this.slots.length];
      if (entry) out.push(entry);
    }
    return out;
  }
}

/**
 * Two rings: one for messages (sends, deliveries, drops, unreachable reports), which are
 * many, and one for everything else (member state changes, faults, starts), which are few
 * and which a flood of messages must not push out.
 */
export class Trace {
  private readonly messages: Ring;
  private readonly others: Ring;
  private seq = 0;

  constructor(capacity: number = TRACE_EVENTS_DEFAULT) {
    this.messages = new Ring(capacity);
    this.others = new Ring(capacity);
  }

  /** Events recorded since the start, including those the rings have since dropped. */
  get recorded(): number {
    return this.seq;
  }

  record(event: TraceEvent): void {
    const entry = { seq: this.seq++, event };
    if (MESSAGE_KINDS.has(event.kind)) this.messages.push(entry);
    else this.others.push(entry);
  }

  /** The newest `events` state events and `messages` message events, merged oldest first. */
  tail(events: number, messages: number = events): TraceEvent[] {
    return [...this.others.tail(events), ...this.messages.tail(messages)].sort((a, b) => a.seq - b.seq).map((entry) => entry.event);
  }

  /** The same as text lines. */
  lines(events: number, messages: number = events): string[] {
    return this.tail(events, messages).map(formatEvent);
  }
}

const MESSAGE_KINDS: ReadonlySet<TraceKind> = new Set(['send', 'deliver', 'drop', 'unreachable']);

export function formatEvent(event: TraceEvent): string {
  const at = `t=${event.tick}`.padEnd(8);
  const message = event.message ? ` ${formatMessage(event.message)}` : '';
  const detail = event.detail ? ` ${event.detail}` : '';
  switch (event.kind) {
    case 'send':
      return `${at} ${event.node} -> ${event.peer ?? '?'}${message}${detail}`;
    case 'deliver':
      return `${at} ${event.node} <- ${event.peer ?? '?'}${message}${detail}`;
    case 'drop':
      return `${at} ${event.node} -x ${event.peer ?? '?'}${message}${detail}`;
    case 'unreachable':
      return `${at} ${event.node} !! ${event.peer ?? '?'} unreachable${detail}`;
    default:
      return `${at} ${event.node} [${event.kind}]${message}${detail}`;
  }
}

/** One message in a few words: its type, sequence number and the updates it carries. */
export function formatMessage(message: PeerMessage): string {
  switch (message.t) {
    case 'ping':
      return `ping#${message.seq} target=${message.target}${formatUpdates(message.upd)}`;
    case 'ack':
      return `ack#${message.seq}${formatUpdates(message.upd)}`;
    case 'ping-req':
      return `ping-req#${message.seq} target=${message.target}${formatUpdates(message.upd)}`;
    case 'nack':
      return `nack#${message.seq}`;
    case 'gossip':
      return `gossip${formatUpdates(message.upd)}`;
    case 'sync':
      return `sync${message.reply ? '-reply' : ''} members=${message.members.length}${message.meta ? ` meta=${message.meta.byteLength}B` : ''}`;
    case 'rput':
      return `rput#${message.rid} ${message.b}/${message.k}${message.hint === undefined ? '' : ` hint=${message.hint}`}`;
    case 'rget':
      return `rget#${message.rid} ${message.b}/${message.k}${message.hint === undefined ? '' : ` hint=${message.hint}`}`;
    case 'rget-ok':
      return `rget-ok#${message.rid}${message.obj === undefined ? ' none' : ''}`;
    case 'rerr':
      return `rerr#${message.rid} ${message.code}`;
    case 'fwd':
      return `fwd#${message.rid} ${message.req.t} ${message.req.b}/${message.req.k}`;
    case 'fwd-reply':
      return `fwd-reply#${message.rid} ${message.reply.t}`;
    case 'handoff':
      return `handoff#${message.rid} items=${message.items.length}`;
    case 'reap':
      return `reap ${message.b}/${message.k}`;
    case 'rput-ok':
    case 'handoff-ok':
      return `${message.t}#${message.rid}`;
    case 'ae-tree':
      return `ae-tree#${message.rid} x${message.xid} L${message.level} of=${message.of.length}${message.ring === undefined ? '' : ' open'}`;
    case 'ae-tree-ok':
      return `ae-tree-ok#${message.rid} sent=${message.d.length * 8} hashes=${(message.h?.length ?? 0) / 4} items=${(message.items?.length ?? 0) / 6}`;
    case 'ae-keys':
      return `ae-keys#${message.rid} x${message.xid} leaves=${message.leaves.length}`;
    case 'ae-keys-ok':
      return `ae-keys-ok#${message.rid} items=${message.items.length / 6}`;
    case 'ae-sync':
      return `ae-sync#${message.rid} x${message.xid} push=${message.push.length} pull=${message.pull.length / 6}`;
    case 'ae-sync-ok':
      return `ae-sync-ok#${message.rid} objs=${message.objs.length}`;
    case 'ae-done':
      return `ae-done x${message.xid}`;
  }
}

/** Updates shown in full while few, else counted: a trace line stays one line. */
const UPDATES_SHOWN_MAX = 4;

function formatUpdates(updates: readonly MemberState[]): string {
  if (updates.length === 0) return '';
  const shown = updates.slice(0, UPDATES_SHOWN_MAX).map(formatMember).join(',');
  const more = updates.length > UPDATES_SHOWN_MAX ? `,+${updates.length - UPDATES_SHOWN_MAX}` : '';
  return ` [${shown}${more}]`;
}

export function formatMember(state: MemberState): string {
  return `${state.id}:${state.status}/${state.live}@${state.inc}`;
}

// ---- one key's story, for `npm run sim -- --key K` ----

const decoder = new TextDecoder();

/** An object's clock and siblings: `n1/e1:3[c2.4,X] n2/e1:1[]` (X a tombstone). */
export function formatObject(object: KvObject | undefined): string {
  if (object === undefined) return 'none';
  if (object.entries.length === 0) return '{}';
  return object.entries.map((e) => `${e.actor}:${e.counter}[${e.values.map((v) => (v === null ? 'X' : decoder.decode(v))).join(',')}]`).join(' ');
}

/** Whether a replication message concerns `key` (answers carry only the request's rid). */
export function mentionsKey(message: PeerMessage, key: string): boolean {
  switch (message.t) {
    case 'rput':
    case 'rget':
    case 'reap':
      return message.k === key;
    case 'fwd':
      return message.req.k === key;
    case 'handoff':
      return message.items.some((item) => item.k === key);
    default:
      return false;
  }
}

/** A replication message with the object it carries for `key`. */
export function formatReplicaMessage(message: PeerMessage, key: string): string {
  switch (message.t) {
    case 'rput':
    case 'reap':
      return `${formatMessage(message)} ${formatObject(message.obj as KvObject)}`;
    case 'handoff': {
      const item = message.items.find((i) => i.k === key);
      return `${formatMessage(message)} ${formatObject(item?.obj as KvObject | undefined)}`;
    }
    case 'rget-ok':
      return `${formatMessage(message)}${message.obj === undefined ? '' : ` ${formatObject(message.obj as KvObject)}`}`;
    default:
      return formatMessage(message);
  }
}

/** A client data request in a few words. */
export function formatRequest(request: { readonly t: string; readonly v?: Uint8Array; readonly ctx?: Uint8Array; readonly r?: unknown; readonly w?: unknown; readonly sloppy?: boolean }): string {
  const value = request.v === undefined ? '' : ` ${decoder.decode(request.v)}`;
  const level = request.r !== undefined ? ` r=${String(request.r)}` : request.w !== undefined ? ` w=${String(request.w)}` : '';
  return `${request.t}${value}${level}${request.ctx === undefined ? '' : ' ctx'}${request.sloppy === false ? ' strict' : ''}`;
}

export function formatReply(reply: ClientReply): string {
  switch (reply.t) {
    case 'get-ok':
      return `get-ok [${reply.values.map((v) => decoder.decode(v)).join(', ')}]`;
    case 'put-ok':
      return `put-ok siblings=${reply.siblings}${reply.ctx === undefined ? '' : ' ctx'}`;
    case 'err':
      return `err ${reply.code}: ${reply.msg}`;
    default:
      return reply.t;
  }
}
