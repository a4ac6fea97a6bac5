/**
 * The replica's side of replication: what a node does when a coordinator or a fallback
 * sends it data, and the delivery of the hints it keeps as a fallback.
 *
 * - `rput` merges the object into the local copy (DVV `sync`, so a replica's version of a
 *   key never goes back) and answers once that is durable. With `hint`, the node is a
 *   fallback for that primary: it merges into the hint it keeps for it instead, within the
 *   hint budget, and counts it.
 * - `rget` answers with the durable copy (or the hint kept for `hint`), or with `dg` only its
 *   digest.
 * - `handoff` merges a batch of hints meant for this node into its own data and answers
 *   once all of it is durable; the sender then deletes those hints.
 * - `reap` drops a tombstone every primary held through its grace period, if the local copy
 *   is still exactly that tombstone (anything newer, a write or another delete, keeps it).
 *
 * A replica never refuses merged data for its size: limits apply where clients enter.
 * Whatever it cannot do (storage failed, a malformed object, a spent hint budget) it answers
 * with `rerr`, which the coordinator counts as a failed replica.
 */

import type { ErrorCode } from '../base/errors.js';
import { dvvDescends, equalDvv, sync } from '../clock/dvv.js';
import type { KvObject, Sibling } from '../clock/object.js';
import type { Handoff, HandoffOk, PeerMessage, Reap, Rget, Rput } from '../codec/messages.js';
import { HintBook, objectBytes } from '../handoff/hints.js';
import { checkObject, objectDigestOf } from '../replication/replica.js';
import type { NodeOutput } from './io.js';
import type { LocalReplica, Slot } from './local-replica.js';
import type { Placement } from './placement.js';

export interface ReplicaServerDeps {
  readonly local: LocalReplica;
  readonly hints: HintBook;
  readonly placement: Placement;
  readonly rid: () => number;
  /** Up to `limit` hints kept for `target` (the store's hint keyspace). */
  readonly hintsFor: (target: string, limit: number) => { bucket: string; key: string; object: KvObject }[];
}

export interface ReplicaServerStats {
  readonly handoffBatchesReceived: number;
  /** Tombstones dropped here after every primary held them through the grace period. */
  readonly tombstonesReaped: number;
}

export class ReplicaServer {
  private readonly deps: ReplicaServerDeps;
  private readonly nodeId: string;
  private readonly batchMax: number;
  private handoffBatchesReceived = 0;
  private tombstonesReaped = 0;

  constructor(deps: ReplicaServerDeps, init: { readonly nodeId: string; readonly batchMax: number }) {
    this.deps = deps;
    this.nodeId = init.nodeId;
    this.batchMax = init.batchMax;
  }

  get stats(): ReplicaServerStats {
    return { handoffBatchesReceived: this.handoffBatchesReceived, tombstonesReaped: this.tombstonesReaped };
  }

  /** A replication message for this node as a replica; false when it is not one. */
  onMessage(from: string, message: PeerMessage, out: NodeOutput[]): boolean {
    switch (message.t) {
      case 'rput':
        this.onRput(from, message, out);
        return true;
      case 'rget':
        this.onRget(from, message, out);
        return true;
      case 'handoff':
        this.onHandoff(from, message, out);
        return true;
      case 'handoff-ok':
        this.onHandoffOk(from, message, out);
        return true;
      case 'reap':
        this.onReap(message, out);
        return true;
      default:
        return false;
    }
  }

  /** A peer could not be reached: a handoff batch to it is lost. */
  onPeerUnreachable(node: string, now: number): void {
    this.deps.hints.unreachable(node, now);
  }

  /** An error answer no coordinator request claimed: perhaps a refused handoff batch. */
  onError(from: string, rid: number, now: number): void {
    this.deps.hints.refused(from, rid, now);
  }

  private onRput(from: string, message: Rput, out: NodeOutput[]): void {
    const object = checkObject(message.obj);
    if (object === 'invalid') return this.refuse(from, message.rid, 'PROTOCOL', 'malformed object', out);
    const slot: Slot = { bucket: message.b, key: message.k, hintFor: message.hint };
    let current: KvObject | undefined;
    try {
      current = this.deps.local.latest(slot);
    } catch (error) {
      return this.refuse(from, message.rid, 'STORAGE', `local read failed: ${String(error)}`, out);
    }
    if (current !== undefined && dvvDescends(current, object)) {
      // Nothing new: acknowledge once what holds it is durable.
      return this.deps.local.afterPending(slot, out, (failure, done) => this.answer(from, message.rid, failure, done));
    }
    const merged = current === undefined ? object : sync(current, object);
    const hintFor = message.hint;
    const bytes = hintFor === undefined ? 0 : objectBytes(merged);
    if (hintFor !== undefined) {
      if (hintFor === this.nodeId) return this.refuse(from, message.rid, 'INVALID_REQUEST', 'a hint for this node itself', out);
      if (!this.deps.hints.admits(hintFor, current !== undefined, bytes)) {
        this.deps.hints.dropped(hintFor);
        return this.refuse(from, message.rid, 'OVERLOADED', `hint budget for ${hintFor} is spent`, out);
      }
    }
    const replaced = current === undefined ? undefined : objectBytes(current);
    this.deps.local.write([{ ...slot, object: merged, replaces: { object: current } }], out, (failure, done) => {
      if (failure === undefined && hintFor !== undefined) this.deps.hints.stored(hintFor, bytes, replaced);
      this.answer(from, message.rid, failure, done);
    });
  }

  private onRget(from: string, message: Rget, out: NodeOutput[]): void {
    let object: KvObject | undefined;
    try {
      object = this.deps.local.durable({ bucket: message.b, key: message.k, hintFor: message.hint });
    } catch (error) {
      return this.refuse(from, message.rid, 'STORAGE', `local read failed: ${String(error)}`, out);
    }
    if (message.dg === true) return this.send(from, { t: 'rget-ok', from: this.nodeId, rid: message.rid, dg: objectDigestOf(object) }, out);
    this.send(from, object === undefined ? { t: 'rget-ok', from: this.nodeId, rid: message.rid } : { t: 'rget-ok', from: this.nodeId, rid: message.rid, obj: object }, out);
  }

  private onHandoff(from: string, message: Handoff, out: NodeOutput[]): void {
    this.handoffBatchesReceived++;
    const writes: { bucket: string; key: string; object: KvObject }[] = [];
    const unchanged: Slot[] = [];
    for (const item of message.items) {
      const object = checkObject(item.obj);
      if (object === 'invalid') return this.refuse(from, message.rid, 'PROTOCOL', 'malformed object in handoff', out);
      const slot = { bucket: item.b, key: item.k };
      let current: KvObject | undefined;
      try {
        current = this.deps.local.latest(slot);
      } catch (error) {
        return this.refuse(from, message.rid, 'STORAGE', `local read failed: ${String(error)}`, out);
      }
      if (current !== undefined && dvvDescends(current, object)) unchanged.push(slot);
      else writes.push({ ...slot, object: current === undefined ? object : sync(current, object) });
    }
    // Acknowledge once the new writes and anything pending for the unchanged keys are durable.
    let waiting = unchanged.length + 1;
    let failed: string | undefined;
    const oneDone = (failure: string | undefined, done: NodeOutput[]): void => {
      failed ??= failure;
      if (--waiting === 0) this.answer(from, message.rid, failed, done, 'handoff');
    };
    for (const slot of unchanged) this.deps.local.afterPending(slot, out, oneDone);
    if (writes.length > 0) this.deps.local.write(writes, out, oneDone);
    else oneDone(undefined, out);
  }

  private onReap(message: Reap, out: NodeOutput[]): void {
    const tombstone = checkObject(message.obj);
    if (tombstone === 'invalid' || !isTombstone(tombstone)) return;
    const slot = { bucket: message.b, key: message.k };
    let current: KvObject | undefined;
    try {
      current = this.deps.local.latest(slot);
    } catch {
      return;
    }
    if (current === undefined || !equalDvv<Sibling>(current, tombstone, (a, b) => a === b)) return;
    this.tombstonesReaped++;
    this.deps.local.write([{ ...slot, object: undefined }], out, (failure, done) => {
      if (failure !== undefined) done.push({ kind: 'log', level: 'warn', msg: 'reaping a tombstone failed', fields: { bucket: message.b, key: message.k, reason: failure } });
    });
  }

  // ---- hint delivery ----

  /** Each tick: sends a batch of hints to every target due for one. */
  onTick(now: number, out: NodeOutput[]): void {
    const due = this.deps.hints.due(now, (target) => this.deps.placement.alive(target));
    for (const target of due) {
      let items: { bucket: string; key: string; object: KvObject }[];
      try {
        items = this.deps.hintsFor(target, this.batchMax);
      } catch (error) {
        out.push({ kind: 'log', level: 'error', msg: 'reading hints failed', fields: { target, reason: String(error) } });
        continue;
      }
      if (items.length === 0) {
        this.deps.hints.recount(target, 0);
        continue;
      }
      const rid = this.deps.rid();
      this.deps.hints.sent(target, rid, items, now);
      this.send(target, { t: 'handoff', from: this.nodeId, rid, items: items.map((i) => ({ b: i.bucket, k: i.key, obj: i.object })) }, out);
    }
  }

  /** The target holds the batch durably: delete each hint that did not change since it was sent. */
  private onHandoffOk(from: string, message: HandoffOk, out: NodeOutput[]): void {
    const items = this.deps.hints.acknowledged(from, message.rid);
    if (items === undefined) return;
    const deletes: { bucket: string; key: string; hintFor: string; object: undefined }[] = [];
    const sizes: number[] = [];
    for (const item of items) {
      const slot = { bucket: item.bucket, key: item.key, hintFor: from };
      let current: KvObject | undefined;
      try {
        current = this.deps.local.latest(slot);
      } catch {
        continue;
      }
      if (current === undefined || !equalDvv<Sibling>(current, item.object, sameSibling)) continue;
      deletes.push({ ...slot, object: undefined });
      sizes.push(objectBytes(item.object));
    }
    if (deletes.length === 0) return;
    this.deps.local.write(deletes, out, (failure, done) => {
      if (failure !== undefined) {
        done.push({ kind: 'log', level: 'warn', msg: 'deleting delivered hints failed; they will be sent again', fields: { target: from, reason: failure } });
        return;
      }
      for (const bytes of sizes) this.deps.hints.removed(from, bytes);
    });
  }

  private answer(to: string, rid: number, failure: string | undefined, out: NodeOutput[], kind: 'rput' | 'handoff' = 'rput'): void {
    if (failure !== undefined) return this.refuse(to, rid, 'STORAGE', `storage write failed: ${failure}`, out);
    this.send(to, kind === 'rput' ? { t: 'rput-ok', from: this.nodeId, rid } : { t: 'handoff-ok', from: this.nodeId, rid }, out);
  }

  private refuse(to: string, rid: number, code: ErrorCode, msg: string, out: NodeOutput[]): void {
    this.send(to, { t: 'rerr', from: this.nodeId, rid, code, msg }, out);
  }

  /** To a member, or over the connection its request came on when this node has not learnt its address yet. */
  private send(node: string, message: PeerMessage, out: NodeOutput[]): void {
    out.push({ kind: 'send', to: this.deps.placement.addressOf(node) ?? { node, addr: '' }, message });
  }
}

function isTombstone(object: KvObject): boolean {
  return object.entries.length > 0 && object.entries.every((e) => e.values.every((v) => v === null));
}

function sameSibling(a: Sibling, b: Sibling): boolean {
  if (a === null || b === null) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
