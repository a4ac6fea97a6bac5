/**
 * Cluster metadata: bucket properties in a Yjs document that every node holds.
 *
 * Administrative changes can be made at any node at the same time; Yjs merges them without
 * coordination (each bucket is a Y.Map, so two nodes changing different properties of one
 * bucket both win, and one property set twice settles on the same value everywhere). The
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
  private readonly buckets: Y.Map<Y.Map<unknown>>;

  constructor(prng: Prng, persisted?: Uint8Array) {
    // Yjs picks a random client id; the core's randomness must come from its seeded PRNG.
    this.doc.clientID = prng.nextUint32();
    this.buckets = this.doc.getMap('buckets');
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
      let bucket = this.buckets.get(name);
      if (bucket === undefined) {
        bucket = new Y.Map<unknown>();
        this.buckets.set(name, bucket);
      }
      for (const [key, value] of Object.entries(props)) if (value !== undefined) bucket.set(key, value);
    });
  }

  bucket(name: string): BucketProps | undefined {
    const bucket = this.buckets.get(name);
    return bucket === undefined ? undefined : (bucket.toJSON() as BucketProps);
  }

  listBuckets(): Record<string, BucketProps> {
    const out: Record<string, BucketProps> = {};
    for (const name of [...this.buckets.keys()].sort()) out[name] = this.buckets.get(name)?.toJSON() as BucketProps;
    return out;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
