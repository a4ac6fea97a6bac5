/**
 * The client-side coordinator of the bare prototype: one WebSocket to each replica
 * (bare-replica.ts), and quorum counting in the client.
 *
 * Every operation is one frame per replica it involves; operations are never batched into a
 * frame together. A write goes to every replica and completes on the `w`-th acknowledgement.
 * A read goes to `readFanout` replicas (rotating which ones, so each replica serves its share)
 * and completes on the `r`-th answer. Late answers are counted and dropped. A connection that
 * closes fails every operation still waiting on it, since the benchmark has no use for a
 * coordinator that hides a dead replica.
 */

import { Encoder } from 'cbor-x';
import { WebSocket } from 'ws';

/** Largest frame accepted from a replica: a reply carries at most one small value. */
const FRAME_BYTES_MAX = 1024 * 1024;

interface Reply {
  readonly id: number;
  readonly v?: Uint8Array | null;
}

interface Pending {
  /** Answers still needed to complete. */
  needed: number;
  /** Answers still expected at all; the entry is dropped when this reaches 0. */
  outstanding: number;
  /** Whether an answer so far carried a value (for reads). */
  found: boolean;
  readonly resolve: (found: boolean) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

export interface QuorumOptions {
  /** Acknowledgements a write waits for. */
  readonly w: number;
  /** Answers a read waits for. */
  readonly r: number;
  /** Replicas each read is sent to (r ≤ readFanout ≤ replicas). */
  readonly readFanout: number;
}

export class BareCoordinator {
  private readonly pending = new Map<number, Pending>();
  private readonly cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
  private idNext = 1;
  private readRotation = 0;

  private constructor(
    private readonly sockets: readonly WebSocket[],
    private readonly quorum: QuorumOptions,
  ) {
    for (const ws of sockets) {
      ws.on('message', (data: Buffer) => this.onReply(this.cbor.decode(data) as Reply));
      ws.on('close', () => this.failAll(new Error(`replica connection ${ws.url} closed`)));
    }
  }

  static async open(ports: readonly number[], quorum: QuorumOptions): Promise<BareCoordinator> {
    if (!(quorum.w >= 1 && quorum.w <= ports.length)) throw new RangeError(`w must be in 1..${ports.length}, got ${quorum.w}`);
    if (!(quorum.r >= 1 && quorum.r <= quorum.readFanout && quorum.readFanout <= ports.length)) {
      throw new RangeError(`need 1 ≤ r ≤ readFanout ≤ ${ports.length}, got r ${quorum.r}, readFanout ${quorum.readFanout}`);
    }
    const sockets = await Promise.all(
      ports.map(
        (port) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: FRAME_BYTES_MAX });
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    return new BareCoordinator(sockets, quorum);
  }

  put(bucket: string, key: string, value: Uint8Array): Promise<boolean> {
    return this.send({ t: 'put', b: bucket, k: key, v: value }, this.sockets, this.quorum.w);
  }

  /** Resolves true when one of the answers it waited for carried a value. */
  get(bucket: string, key: string): Promise<boolean> {
    const first = this.readRotation++ % this.sockets.length;
    const targets: WebSocket[] = [];
    for (let i = 0; i < this.quorum.readFanout; i++) targets.push(this.sockets[(first + i) % this.sockets.length] as WebSocket);
    return this.send({ t: 'get', b: bucket, k: key }, targets, this.quorum.r);
  }

  close(): void {
    for (const ws of this.sockets) ws.close();
  }

  private send(request: Record<string, unknown>, targets: readonly WebSocket[], needed: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const id = this.idNext++;
      this.pending.set(id, { needed, outstanding: targets.length, found: false, resolve, reject, settled: false });
      // Encoded once; the same bytes go to every replica, one frame each.
      const frame = this.cbor.encode({ ...request, id });
      for (const ws of targets) ws.send(frame);
    });
  }

  private onReply(reply: Reply): void {
    const entry = this.pending.get(reply.id);
    if (entry === undefined) return;
    entry.outstanding--;
    entry.needed--;
    if (reply.v !== undefined && reply.v !== null) entry.found = true;
    if (entry.needed === 0 && !entry.settled) {
      entry.settled = true;
      entry.resolve(entry.found);
    }
    if (entry.outstanding === 0) this.pending.delete(reply.id);
  }

  private failAll(error: Error): void {
    for (const entry of this.pending.values()) {
      if (!entry.settled) {
        entry.settled = true;
        entry.reject(error);
      }
    }
    this.pending.clear();
  }
}
