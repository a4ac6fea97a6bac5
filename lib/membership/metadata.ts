/**
 * Cluster metadata: bucket properties, and the members an operator removed, in a Yjs
 * document that every node holds.
 *
 * A removed member (`chorus remove`) is out of the ring for good, whatever its own gossip says:
 * the entry is a fact an operator stated, kept with the metadata rather than in the member
 * table, where a dead node's last word could otherwise outlive it.
 *
 * Administrative changes can be made at any node at the same time; Yjs merges them without
 * coordination. Each property of each bucket is its own entry of one flat Y.Map, keyed
 * `bucket ‖ 0 ‖ property`: two nodes changing different properties of one bucket both win,
 * and one property set twice settles on the same value everywhere. (Nesting a Y.Map per
 * bucket would not do: two nodes creating the same bucket at once would each create a map,
 * and one map, with its properties, would lose.) The
 * document spreads by state-vector exchange during push-pull: a node sends its state vector,
 * the other answers with exactly the update it lacks.
 *
 * The document's client id comes from the node's seeded PRNG, so a simulation replays
 * byte for byte. Updates from peers are applied inside a try: a malformed one is refused and
 * counted, never thrown into the core.
 */

import * as Y from 'yjs';
import type { Prng } from '../base/prng.js';

export const BUCKET_TYPES = ['kv', 'counter', 'set', 'map', 'register', 'flag', 'doc'] as const;
export type BucketType = (typeof BUCKET_TYPES)[number];

export interface BucketProps {
  readonly n?: number;
  readonly r?: string | number;
  readonly w?: string | number;
  readonly type?: BucketType;
}

export class ClusterMetadata {
  private readonly doc = new Y.Doc({ gc: true });
  private readonly props: Y.Map<unknown>;
  /** The bucket table as `listBuckets` builds it, until the next change: every request reads it. */
  private buckets: Readonly<Record<string, BucketProps>> | undefined;
  /** Removed member id → the tick-free marker `true`. */
  private readonly removedMap: Y.Map<unknown>;
  private removedSet: ReadonlySet<string> | undefined;
  /** Bumped on every change of the removed set (the ring depends on it). */
  private removedChanges = 0;

  constructor(prng: Prng, persisted?: Uint8Array) {
    // Yjs picks a random client id; the core's randomness must come from its seeded PRNG.
    this.doc.clientID = prng.nextUint32();
    this.props = this.doc.getMap('bucket-props');
    this.props.observe(() => {
      this.buckets = undefined;
    });
    this.removedMap = this.doc.getMap('removed-members');
    this.removedMap.observe(() => {
      this.removedSet = undefined;
      this.removedChanges++;
    });
    if (persisted !== undefined && persisted.byteLength > 0) this.apply(persisted);
  }

  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** The update a holder of `stateVector` lacks, or undefined when the vector is malformed. */
  diff(stateVector: Uint8Array): Uint8Array | undefined {
    try {
      return Y.encodeStateAsUpdate(this.doc, stateVector);
    } catch {
      return undefined;
    }
  }

  /** The whole document, for persisting. */
  snapshot(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }

  /** Applies a peer's update; returns whether the document changed, or 'invalid'. */
  apply(update: Uint8Array): boolean | 'invalid' {
    const before = Y.encodeStateVector(this.doc);
    try {
      Y.applyUpdate(this.doc, update, 'peer');
    } catch {
      return 'invalid';
    }
    return !equalBytes(before, Y.encodeStateVector(this.doc));
  }

  setBucket(name: string, props: BucketProps): void {
    this.doc.transact(() => {
      for (const [key, value] of Object.entries(props)) if (value !== undefined) this.props.set(`${name}\u0000${key}`, value);
    });
  }

  /** Takes a member out of the ring for good (an operator's `remove`). */
  removeMember(id: string): void {
    this.removedMap.set(id, true);
  }

  /** Members taken out of the ring by an operator. */
  removedMembers(): ReadonlySet<string> {
    this.removedSet ??= new Set([...this.removedMap.keys()].sort());
    return this.removedSet;
  }

  /** Changes whenever the removed set does. */
  get removedVersion(): number {
    return this.removedChanges;
  }

  bucket(name: string): BucketProps | undefined {
    const buckets = this.listBuckets();
    // Own properties only: a bucket named `constructor` is not Object's.
    return Object.hasOwn(buckets, name) ? buckets[name] : undefined;
  }

  listBuckets(): Readonly<Record<string, BucketProps>> {
    if (this.buckets !== undefined) return this.buckets;
    const byBucket = new Map<string, [string, unknown][]>();
    for (const key of [...this.props.keys()].sort()) {
      const split = key.indexOf('\u0000');
      const bucket = key.slice(0, split);
      let props = byBucket.get(bucket);
      if (props === undefined) byBucket.set(bucket, (props = []));
      props.push([key.slice(split + 1), this.props.get(key)]);
    }
    // Built with Object.fromEntries, which defines own properties: assigning to an object
    // would, for a bucket named `__proto__`, set the properties on Object.prototype itself.
    this.buckets = Object.fromEntries([...byBucket].map(([bucket, props]) => [bucket, Object.fromEntries(props) as BucketProps]));
    return this.buckets;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
