/**
 * A simulated network between the nodes of a simulated cluster, in virtual ticks.
 *
 * Each message gets a delay drawn from [delayTicksMin, delayTicksMax] by the network's seeded
 * PRNG, so messages overtake each other as they would on real links; it may be lost or
 * duplicated with the configured probabilities. Partitions are symmetric (groups that cannot
 * hear each other) or one-way (a→b dropped while b→a is delivered); they are checked when a
 * message arrives, so what was in flight when a link was cut is lost, as with a firewall DROP
 * rule, and healing restores every link at once.
 *
 * Addresses: the core sends to `{ node?, addr }`. The network maps addresses (and aliases, such
 * as a second name for the same node) to node ids; a message with no address goes to the node
 * id, as over a connection the peer opened. Like a real dial, a message to an address nobody
 * holds, or to a node that turns out to be someone else, is dropped and reported back to the
 * sender as `peer-unreachable` after a delay; one to the sender's own address is reported with
 * reason `self`. A delivered message carries `from` = the sender's node id, which is what the
 * transport's handshake authenticates in production.
 *
 * Every message is encoded with the wire codec to count its bytes per node; in `wire` mode the
 * receiver gets what decoding those bytes and validating them against the peer message schema
 * gives, exactly as the transport would hand it over, and a message that would not pass is
 * recorded as a violation (the core emitted something its peers refuse).
 */

import type { Prng } from '../base/prng.js';
import { decodeSafe, encode } from '../codec/cbor.js';
import { parseMessage, peerMessageSchema, type PeerMessage } from '../codec/messages.js';
import type { PeerTarget } from '../membership/membership.js';
import type { Trace } from './trace.js';

export interface NetworkOptions {
  /** Ticks a message takes, at least; at least 1, so nothing arrives in the tick it was sent. */
  readonly delayTicksMin: number;
  readonly delayTicksMax: number;
  /** Probability that a message is lost. */
  readonly loss: number;
  /** Probability that a message is delivered twice (the copy with its own delay). */
  readonly duplication: number;
  /** Ticks until a failed dial is reported back to the sender: a refused connection is fast, a silent host slow. */
  readonly unreachableTicksMin: number;
  readonly unreachableTicksMax: number;
  /** Deliver the decoded and validated bytes rather than the sender's objects. */
  readonly wire: boolean;
  /** Report messages to a down node back to the sender as unreachable (a failed dial). */
  readonly reportDown: boolean;
}

export const NETWORK_DEFAULTS: NetworkOptions = {
  delayTicksMin: 1,
  delayTicksMax: 3,
  loss: 0,
  duplication: 0,
  unreachableTicksMin: 1,
  unreachableTicksMax: 5,
  wire: true,
  reportDown: true,
};

export type NetworkEvent =
  | { readonly kind: 'message'; readonly from: string; readonly to: string; readonly target: PeerTarget; readonly message: PeerMessage; readonly bytes: number }
  /** Tell `to` that its message to `target` could not be delivered. */
  | { readonly kind: 'unreachable'; readonly to: string; readonly target: PeerTarget; readonly reason: 'unreachable' | 'self' };

/** Traffic of one node, in encoded bytes and messages. */
export interface Traffic {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Encoded bytes sent, by message type (`t`). */
  readonly bytesSentByType: Map<string, number>;
}

export type DropReason = 'loss' | 'partition' | 'unknown-address' | 'wrong-node' | 'down' | 'invalid';

export class SimNetwork {
  private readonly prng: Prng;
  private readonly trace: Trace;
  private options: NetworkOptions;
  private readonly addresses = new Map<string, string>();
  private readonly queue = new Map<number, NetworkEvent[]>();
  private readonly groupOf = new Map<string, number>();
  private readonly oneWay = new Set<string>();
  private readonly traffic = new Map<string, Traffic>();
  /** Pairs with an open connection: they have exchanged a message since either last (re)started. */
  private readonly links = new Map<string, Set<string>>();
  private readonly dropCounts = new Map<DropReason, number>();
  /** Messages the core emitted that its peers would refuse; each one is a bug. */
  readonly violations: string[] = [];

  constructor(deps: { readonly prng: Prng; readonly trace: Trace }, options: Partial<NetworkOptions> = {}) {
    this.prng = deps.prng;
    this.trace = deps.trace;
    this.options = checkOptions({ ...NETWORK_DEFAULTS, ...options });
  }

  get settings(): NetworkOptions {
    return this.options;
  }

  /** Changes delay, loss or duplication from now on. */
  configure(options: Partial<NetworkOptions>): void {
    this.options = checkOptions({ ...this.options, ...options });
  }

  /** Makes `addr` reach node `id` (its address, or another name for it). */
  bind(addr: string, id: string): void {
    this.addresses.set(addr, id);
  }

  /** The node an address belongs to. */
  resolve(addr: string): string | undefined {
    return this.addresses.get(addr);
  }

  // ---- partitions ----

  /** Splits the nodes into groups that cannot hear each other; nodes in no group form one more group. */
  partition(groups: readonly (readonly string[])[]): void {
    this.groupOf.clear();
    groups.forEach((group, index) => {
      for (const id of group) this.groupOf.set(id, index);
    });
  }

  /** Drops everything `from` sends to `to`, while `to` → `from` still flows. */
  block(from: string, to: string): void {
    this.oneWay.add(`${from}>${to}`);
  }

  /** Restores every link. */
  heal(): void {
    this.groupOf.clear();
    this.oneWay.clear();
  }

  get partitioned(): boolean {
    return this.groupOf.size > 0 || this.oneWay.size > 0;
  }

  /** Whether a message from `from` to `to` is dropped by a partition now. */
  blocked(from: string, to: string): boolean {
    if (this.groupOf.size > 0 && (this.groupOf.get(from) ?? -1) !== (this.groupOf.get(to) ?? -1)) return true;
    return this.oneWay.size > 0 && this.oneWay.has(`${from}>${to}`);
  }

  // ---- traffic ----

  /** Accepts a message from node `from` at tick `now`. */
  send(from: string, target: PeerTarget, message: PeerMessage, now: number): void {
    const bytes = encode(message);
    const sender = this.trafficOf(from);
    sender.bytesSent += bytes.byteLength;
    sender.messagesSent++;
    sender.bytesSentByType.set(message.t, (sender.bytesSentByType.get(message.t) ?? 0) + bytes.byteLength);
    const to = target.addr === '' ? target.node : this.addresses.get(target.addr);
    if (to === from) return this.unreachable(from, target, 'self', now);
    if (to === undefined) {
      this.drop(now, from, target.node ?? target.addr, message, 'unknown-address');
      return this.unreachable(from, target, 'unreachable', now);
    }
    if (target.node !== undefined && target.node !== to) {
      // The handshake would name another node than the one meant: the dial fails.
      this.drop(now, from, to, message, 'wrong-node');
      return this.unreachable(from, target, 'unreachable', now);
    }
    const delivered = this.options.wire ? this.decode(bytes, from, to, now) : message;
    if (delivered === undefined) return;
    this.trace.record({ tick: now, kind: 'send', node: from, peer: to, message });
    if (this.prng.chance(this.options.loss)) return this.drop(now, from, to, message, 'loss');
    const event: NetworkEvent = { kind: 'message', from, to, target, message: delivered, bytes: bytes.byteLength };
    this.schedule(now + this.delay(), event);
    if (this.prng.chance(this.options.duplication)) this.schedule(now + this.delay(), event);
  }

  /** Reports to `to`, later, that its message to `target` found nobody (a down node). */
  unreachable(to: string, target: PeerTarget, reason: 'unreachable' | 'self', now: number): void {
    const { unreachableTicksMin: min, unreachableTicksMax: max } = this.options;
    this.schedule(now + min + this.prng.int(max - min + 1), { kind: 'unreachable', to, target, reason });
  }

  /** Everything due at tick `now`, in a seeded order; messages a partition cuts are dropped here. */
  due(now: number): NetworkEvent[] {
    const events = this.queue.get(now);
    if (events === undefined) return [];
    this.queue.delete(now);
    const out: NetworkEvent[] = [];
    for (const event of this.prng.shuffle(events)) {
      if (event.kind === 'message') {
        if (this.blocked(event.from, event.to)) {
          this.drop(now, event.from, event.to, event.message, 'partition');
          continue;
        }
        this.link(event.from, event.to);
        const receiver = this.trafficOf(event.to);
        receiver.messagesReceived++;
        receiver.bytesReceived += event.bytes;
      }
      out.push(event);
    }
    return out;
  }

  /**
   * The process of node `id` died: its connections close at once (the kernel resets them),
   * so every peer connected to it learns, after a delay, that it is unreachable. Returns
   * those peers. A host that vanishes silently is a crash without this.
   */
  closeConnections(id: string, addr: string, now: number): string[] {
    const peers = [...(this.links.get(id) ?? [])].sort();
    for (const peer of peers) {
      this.links.get(peer)?.delete(id);
      this.unreachable(peer, { node: id, addr }, 'unreachable', now);
    }
    this.links.delete(id);
    return peers;
  }

  /** Forgets the connections of a node that vanished without closing them. */
  dropConnections(id: string): void {
    for (const peer of this.links.get(id) ?? []) this.links.get(peer)?.delete(id);
    this.links.delete(id);
  }

  /** Records a message that was not delivered. */
  drop(now: number, from: string, to: string, message: PeerMessage, reason: DropReason): void {
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + 1);
    this.trace.record({ tick: now, kind: 'drop', node: from, peer: to, message, detail: reason });
  }

  /** Messages in flight (and reports pending). */
  get inFlight(): number {
    let count = 0;
    for (const events of this.queue.values()) count += events.length;
    return count;
  }

  trafficOf(id: string): Traffic {
    let traffic = this.traffic.get(id);
    if (traffic === undefined) {
      traffic = { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, bytesSentByType: new Map() };
      this.traffic.set(id, traffic);
    }
    return traffic;
  }

  drops(reason: DropReason): number {
    return this.dropCounts.get(reason) ?? 0;
  }

  /** Starts a new measurement window for traffic and drop counts. */
  resetCounters(): void {
    this.traffic.clear();
    this.dropCounts.clear();
  }

  private decode(bytes: Uint8Array, from: string, to: string, now: number): PeerMessage | undefined {
    const decoded = decodeSafe(bytes);
    const parsed = decoded.ok ? parseMessage(peerMessageSchema, decoded.value) : decoded;
    if (parsed.ok) return parsed.value;
    this.violations.push(`t=${now} ${from} -> ${to}: the receiver would refuse the message: ${parsed.reason}`);
    this.trace.record({ tick: now, kind: 'drop', node: from, peer: to, detail: `invalid: ${parsed.reason}` });
    this.dropCounts.set('invalid', (this.dropCounts.get('invalid') ?? 0) + 1);
    return undefined;
  }

  private link(a: string, b: string): void {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      let peers = this.links.get(x);
      if (peers === undefined) {
        peers = new Set();
        this.links.set(x, peers);
      }
      peers.add(y);
    }
  }

  private delay(): number {
    const { delayTicksMin: min, delayTicksMax: max } = this.options;
    return min + this.prng.int(max - min + 1);
  }

  private schedule(tick: number, event: NetworkEvent): void {
    const bucket = this.queue.get(tick);
    if (bucket === undefined) this.queue.set(tick, [event]);
    else bucket.push(event);
  }
}

function checkOptions(options: NetworkOptions): NetworkOptions {
  const integer = (n: number): boolean => Number.isInteger(n) && n >= 1;
  if (!integer(options.delayTicksMin) || !integer(options.delayTicksMax) || options.delayTicksMax < options.delayTicksMin) {
    throw new RangeError(`network delay must be whole ticks with 1 ≤ min ≤ max, got ${options.delayTicksMin}..${options.delayTicksMax}`);
  }
  if (!integer(options.unreachableTicksMin) || !integer(options.unreachableTicksMax) || options.unreachableTicksMax < options.unreachableTicksMin) {
    throw new RangeError(`unreachable delay must be whole ticks with 1 ≤ min ≤ max, got ${options.unreachableTicksMin}..${options.unreachableTicksMax}`);
  }
  for (const [name, p] of [['loss', options.loss], ['duplication', options.duplication]] as const) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${name} must be a probability, got ${p}`);
  }
  return options;
}
