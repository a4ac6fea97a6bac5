/**
 * Handles for typed buckets: `db.counter(bucket, key)`, `db.set`, `db.map`, `db.register`,
 * `db.flag` and `db.doc`. Each builds the operation the node applies (lib/crdt) and reads the
 * merged value; none ever sees siblings, since replicas merge typed values themselves.
 *
 * ```ts
 * await db.counter('likes', 'post:1').increment(3, { w: 2 });
 * const n = await db.counter('likes', 'post:1').value({ r: 2 });
 * await db.set('tags', 'post:1').add('db', 'crdt');
 * await db.map('profiles', 'ada').update((m) => { m.register('name').set('Ada'); m.counter('visits').increment(); });
 * const doc = db.doc('notes', 'n1');
 * await doc.applyUpdate(Y.encodeStateAsUpdate(local));
 * Y.applyUpdate(local, await doc.sync(Y.encodeStateVector(local)));
 * ```
 *
 * Operations are checked here for their shape, so a mistake fails before it is sent; the
 * node checks them again (a client may be anything).
 */

import { InvalidRequestError } from '../base/errors.js';
import type { Level } from '../codec/messages.js';
import type { CrdtOp, CrdtType, MapOp, MapValue } from '../crdt/index.js';
import type { RequestOptions } from './client.js';

export type TypedType = CrdtType | 'doc';

export interface UpdateOptions extends RequestOptions {
  /** Replicas that must acknowledge the update. Default: the bucket's `w`. */
  readonly w?: Level;
  readonly pw?: Level;
  readonly sloppy?: boolean;
  /**
   * The operation's id (1–64 characters). Give the id of an update whose outcome was unknown
   * (a timeout, a lost connection: the error's `details.opId`) to retry it: the replica that
   * applied it once does not apply it again. Default: a fresh id.
   */
  readonly opId?: string;
  /** Return the value after the update. Default false. */
  readonly returnValue?: boolean;
}

export interface FetchOptions extends RequestOptions {
  /** Replicas that must answer. Default: the bucket's `r`. */
  readonly r?: Level;
  readonly pr?: Level;
  readonly sloppy?: boolean;
  /** For a `doc`: the reader's Yjs state vector; the answer is only the update it lacks. */
  readonly stateVector?: Uint8Array;
}

export interface UpdateResult {
  readonly opId: string;
  /** The replica had applied this operation id before, and did not apply it again. */
  readonly duplicate: boolean;
  /** With `returnValue`: the value after the update. */
  readonly value?: unknown;
}

export interface FetchResult {
  /** False when the key was never written or was deleted. */
  readonly found: boolean;
  readonly value: unknown;
}

/** What the handles need from the client. */
export interface TypedTransport {
  update(bucket: string, key: string, type: TypedType, op: unknown, options?: UpdateOptions): Promise<UpdateResult>;
  fetch(bucket: string, key: string, type: TypedType, options?: FetchOptions): Promise<FetchResult>;
  delete(bucket: string, key: string, options?: RequestOptions & { readonly w?: Level }): Promise<void>;
}

abstract class Handle {
  protected readonly client: TypedTransport;
  readonly bucket: string;
  readonly key: string;
  protected abstract readonly type: TypedType;

  constructor(client: TypedTransport, bucket: string, key: string) {
    this.client = client;
    this.bucket = bucket;
    this.key = key;
  }

  protected apply(op: unknown, options: UpdateOptions): Promise<UpdateResult> {
    return this.client.update(this.bucket, this.key, this.type, op, options);
  }

  protected read(options: FetchOptions): Promise<FetchResult> {
    return this.client.fetch(this.bucket, this.key, this.type, options);
  }

  /** Deletes the key; a later update starts from the empty value. */
  delete(options: RequestOptions & { readonly w?: Level } = {}): Promise<void> {
    return this.client.delete(this.bucket, this.key, options);
  }
}

/** A PN-counter: increments and decrements by whole numbers, each applied once. */
export class CounterHandle extends Handle {
  protected readonly type = 'counter';

  async increment(by = 1, options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ inc: checkAmount(by) }, options);
  }

  async decrement(by = 1, options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ inc: -checkAmount(by) }, options);
  }

  async value(options: FetchOptions = {}): Promise<number> {
    return (await this.read(options)).value as number;
  }
}

/** An add-wins set of strings: an add concurrent with a remove of the same member wins. */
export class SetHandle extends Handle {
  protected readonly type = 'set';

  add(...members: string[]): Promise<UpdateResult> {
    return this.addAll(members);
  }

  addAll(members: readonly string[], options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ add: checkStrings(members, 'members') }, options);
  }

  remove(...members: string[]): Promise<UpdateResult> {
    return this.removeAll(members);
  }

  /** Removes the members this replica has seen added; removing an absent member does nothing. */
  removeAll(members: readonly string[], options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ remove: checkStrings(members, 'members') }, options);
  }

  async members(options: FetchOptions = {}): Promise<string[]> {
    return (await this.read(options)).value as string[];
  }

  async contains(member: string, options: FetchOptions = {}): Promise<boolean> {
    return (await this.members(options)).includes(member);
  }
}

/** A multi-value register: concurrent assignments are all kept until the next one. */
export class RegisterHandle extends Handle {
  protected readonly type = 'register';

  set(value: string, options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ set: checkString(value, 'value') }, options);
  }

  /** Every concurrently assigned value, sorted; one value when there was no conflict. */
  async values(options: FetchOptions = {}): Promise<string[]> {
    return (await this.read(options)).value as string[];
  }
}

/** An enable-wins flag. */
export class FlagHandle extends Handle {
  protected readonly type = 'flag';

  enable(options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ enable: true }, options);
  }

  disable(options: UpdateOptions = {}): Promise<UpdateResult> {
    return this.apply({ enable: false }, options);
  }

  async value(options: FetchOptions = {}): Promise<boolean> {
    return (await this.read(options)).value as boolean;
  }
}

/** A map of named fields, each itself a counter, set, register, flag or map (as Riak maps are). */
export class MapHandle extends Handle {
  protected readonly type = 'map';

  /** Applies every change `edit` makes as one operation. */
  async update(edit: (map: MapUpdate) => void, options: UpdateOptions = {}): Promise<UpdateResult> {
    const builder = new MapUpdate();
    edit(builder);
    const op = builder.build();
    if (op.update === undefined && op.remove === undefined) throw new InvalidRequestError('the map update changes nothing', { field: 'op' });
    return this.apply(op, options);
  }

  async value(options: FetchOptions = {}): Promise<MapValue> {
    return (await this.read(options)).value as MapValue;
  }
}

/** Collects a map's field changes; `map(name)` nests. */
export class MapUpdate {
  private readonly updates: { field: string; type: CrdtType; op: CrdtOp }[] = [];
  private readonly removes: { field: string; type: CrdtType }[] = [];
  private readonly nested = new Map<string, MapUpdate>();

  counter(field: string): { increment(by?: number): void; decrement(by?: number): void } {
    return {
      increment: (by = 1) => this.push(field, 'counter', { inc: checkAmount(by) }),
      decrement: (by = 1) => this.push(field, 'counter', { inc: -checkAmount(by) }),
    };
  }

  set(field: string): { add(...members: string[]): void; remove(...members: string[]): void } {
    return {
      add: (...members) => this.push(field, 'set', { add: checkStrings(members, 'members') }),
      remove: (...members) => this.push(field, 'set', { remove: checkStrings(members, 'members') }),
    };
  }

  register(field: string): { set(value: string): void } {
    return { set: (value) => this.push(field, 'register', { set: checkString(value, 'value') }) };
  }

  flag(field: string): { enable(): void; disable(): void } {
    return { enable: () => this.push(field, 'flag', { enable: true }), disable: () => this.push(field, 'flag', { enable: false }) };
  }

  map(field: string): MapUpdate {
    let nested = this.nested.get(checkString(field, 'field'));
    if (nested === undefined) this.nested.set(field, (nested = new MapUpdate()));
    return nested;
  }

  /** Removes the field (of that type); an update of it made concurrently elsewhere wins. */
  remove(field: string, type: CrdtType): void {
    this.removes.push({ field: checkString(field, 'field'), type });
  }

  build(): MapOp {
    const updates = [...this.updates];
    for (const [field, nested] of this.nested) {
      const op = nested.build();
      if (op.update !== undefined || op.remove !== undefined) updates.push({ field, type: 'map', op });
    }
    return { ...(updates.length > 0 ? { update: updates } : {}), ...(this.removes.length > 0 ? { remove: [...this.removes] } : {}) };
  }

  private push(field: string, type: CrdtType, op: CrdtOp): void {
    this.updates.push({ field: checkString(field, 'field'), type, op });
  }
}

/**
 * A Yjs document. Updates are Yjs update bytes (`Y.encodeStateAsUpdate`, or the `update`
 * event's); the node merges them without siblings. `sync(stateVector)` returns what a local
 * document with that state vector lacks, `state()` the whole document.
 */
export class DocHandle extends Handle {
  protected readonly type = 'doc';

  applyUpdate(update: Uint8Array, options: UpdateOptions = {}): Promise<UpdateResult> {
    if (!(update instanceof Uint8Array) || update.byteLength === 0) throw new InvalidRequestError('a doc update is a non-empty Uint8Array', { field: 'update' });
    return this.apply({ update }, options);
  }

  async sync(stateVector: Uint8Array, options: FetchOptions = {}): Promise<Uint8Array> {
    if (!(stateVector instanceof Uint8Array)) throw new InvalidRequestError('a state vector is a Uint8Array', { field: 'stateVector' });
    return (await this.read({ ...options, stateVector })).value as Uint8Array;
  }

  async state(options: FetchOptions = {}): Promise<Uint8Array> {
    return (await this.read(options)).value as Uint8Array;
  }
}

function checkAmount(by: number): number {
  if (!Number.isSafeInteger(by) || by < 0 || by > 2 ** 48) throw new InvalidRequestError(`a counter changes by a whole number from 0 to 2^48, got ${by}`, { field: 'by' });
  return by;
}

function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidRequestError(`${field} must be a string, got ${typeof value}`, { field });
  return value;
}

function checkStrings(values: readonly unknown[], field: string): string[] {
  if (values.length === 0) throw new InvalidRequestError(`give at least one of ${field}`, { field });
  return values.map((v) => checkString(v, field));
}
