/**
 * Proves the coordinator's single-node data path by stepping it directly, with a map standing
 * in for the disk that the test makes durable when it chooses: puts are acknowledged only
 * after their write is durable; a put with a read's context supersedes what it saw, and
 * puts without one keep siblings (also when two arrive before either is durable); gets
 * never see writes that are not yet durable; deletes hide the key; deadlines reply TIMEOUT;
 * a failed write replies STORAGE; and every bad request is refused with its typed error
 * before anything is written.
 */

import { expect } from 'chai';
import { DATA_LIMITS_DEFAULT } from '../../lib/base/limits.js';
import { encodeContext } from '../../lib/clock/context.js';
import type { KvObject } from '../../lib/clock/object.js';
import type { ClientReply, ClientRequest } from '../../lib/codec/messages.js';
import type { DataRequest } from '../../lib/node/coordinator.js';

/** A data request without its id, kept as a union so each kind keeps its own fields. */
type Unsent = DataRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;
import { Coordinator, type CoordinatorInit } from '../../lib/node/coordinator.js';
import type { NodeInput, NodeOutput } from '../../lib/node/io.js';
import { HintBook } from '../../lib/handoff/hints.js';
import { SegmentHashes } from '../../lib/merkle/index.js';
import { LocalReplica } from '../../lib/node/local-replica.js';
import type { Placement } from '../../lib/node/placement.js';
import type { StoreWrite } from '../../lib/node/ports.js';

/** One node that is every key's only replica: the coordinator's path without peers. */
function singleNodePlacement(nodeId: string): Placement {
  return {
    ready: true,
    bucketProps: () => ({}),
    preferenceList: () => ({ primaries: [nodeId], fallbacks: [] }),
    alive: (id) => id === nodeId,
    addressOf: () => undefined,
    unhealthyAt: 0,
  };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

class Harness {
  readonly disk = new Map<string, KvObject>();
  readonly undurable: { writeId: number; writes: readonly StoreWrite[] }[] = [];
  readonly replies: ClientReply[] = [];
  readonly logs: NodeOutput[] = [];
  readonly core: Coordinator;
  readonly local: LocalReplica;
  private id = 1;
  private rid = 1;

  constructor(init: Partial<CoordinatorInit> = {}) {
    // The single-node path keeps no hints, so the hint reads find none.
    this.local = new LocalReplica({ get: (b, k) => this.disk.get(`${b}\0${k}`), getHint: () => undefined, hintsFor: () => [], hintTargets: () => [], scan: () => [] }, new SegmentHashes(4));
    this.core = new Coordinator(
      {
        local: this.local,
        hints: new HintBook({ countMax: 10, bytesMax: 1000 }, { intervalTicks: 10, batchMax: 10, timeoutTicks: 100 }, []),
        placement: singleNodePlacement('n1'),
        rid: () => this.rid++,
        toSelf: () => undefined,
        confirms: () => true,
      },
      {
        nodeId: 'n1',
        actor: 'n1/e1',
        limits: DATA_LIMITS_DEFAULT,
        replication: { n: 3, r: 'quorum', w: 'quorum', pr: 0, pw: 0, sloppy: true, tombstoneGraceMs: 1000 },
        requestTimeoutMs: 100,
        tickMs: 10,
        counterFloor: 0,
        ...init,
      },
    );
  }

  send(request: Unsent, conn = 1): number {
    const id = this.id++;
    this.step({ kind: 'client-request', conn, request: { ...request, id } as ClientRequest });
    return id;
  }

  step(input: NodeInput): void {
    const out: NodeOutput[] = [];
    switch (input.kind) {
      case 'tick':
        this.core.onTick(out);
        break;
      case 'client-request':
        if (input.request.t !== 'admin') this.core.onClientRequest(input.conn, input.request, out);
        break;
      case 'client-closed':
        this.core.onClientClosed(input.conn);
        break;
      case 'store-durable':
        this.local.onStoreDone(input.writeId, undefined, out);
        break;
      case 'store-failed':
        this.local.onStoreDone(input.writeId, input.reason, out);
        break;
      default:
        throw new Error(`the coordinator takes no ${input.kind}`);
    }
    for (const o of out) {
      if (o.kind === 'client-reply') this.replies.push(o.reply);
      else if (o.kind === 'store-write') this.undurable.push({ writeId: o.writeId, writes: o.writes });
      else this.logs.push(o);
    }
  }

  /** Makes every outstanding write durable, in order. */
  sync(): void {
    for (const batch of this.undurable.splice(0)) {
      for (const w of batch.writes) {
        if (w.op === 'put') this.disk.set(`${w.bucket}\0${w.key}`, w.object);
        else this.disk.delete(`${w.bucket}\0${w.key}`);
      }
      this.step({ kind: 'store-durable', writeId: batch.writeId });
    }
  }

  reply(id: number): ClientReply {
    const found = this.replies.find((r) => r.id === id);
    if (!found) throw new Error(`no reply to request ${id}`);
    return found;
  }

  put(b: string, k: string, v: string, ctx?: Uint8Array): ClientReply {
    const id = this.send({ t: 'put', b, k, v: bytes(v), ...(ctx ? { ctx } : {}) });
    this.sync();
    return this.reply(id);
  }

  get(b: string, k: string): Extract<ClientReply, { t: 'get-ok' }> {
    const reply = this.reply(this.send({ t: 'get', b, k }));
    if (reply.t !== 'get-ok') throw new Error(`get failed: ${JSON.stringify(reply)}`);
    return reply;
  }
}

describe('coordinator: single-node data path', () => {
  it('acknowledges a put only once its write is durable, then a get returns it', () => {
    const h = new Harness();
    const id = h.send({ t: 'put', b: 'users', k: 'ada', v: bytes('Ada') });
    expect(h.replies).to.have.length(0);
    expect(h.undurable).to.have.length(1);
    h.sync();
    const reply = h.reply(id);
    expect(reply.t).to.equal('put-ok');
    const got = h.get('users', 'ada');
    expect(got.found).to.equal(true);
    expect(got.values.map(text)).to.deep.equal(['Ada']);
  });

  it('keeps concurrent puts without context as siblings, and a put with the read context supersedes them', () => {
    const h = new Harness();
    h.put('b', 'k', 'one');
    h.put('b', 'k', 'two');
    const read = h.get('b', 'k');
    expect(read.values.map(text).sort()).to.deep.equal(['one', 'two']);
    const put = h.put('b', 'k', 'merged', read.ctx);
    expect(put).to.include({ t: 'put-ok', siblings: 1 });
    expect(h.get('b', 'k').values.map(text)).to.deep.equal(['merged']);
  });

  it('a put with a stale context keeps the value it did not see', () => {
    const h = new Harness();
    h.put('b', 'k', 'v1');
    const stale = h.get('b', 'k').ctx;
    h.put('b', 'k', 'v2', stale);
    h.put('b', 'k', 'v3', stale);
    expect(h.get('b', 'k').values.map(text).sort()).to.deep.equal(['v2', 'v3']);
  });

  it('returns a context on put only when the write left a single value', () => {
    const h = new Harness();
    const first = h.put('b', 'k', 'a');
    expect(first.t === 'put-ok' && first.ctx).to.be.instanceOf(Uint8Array);
    const second = h.put('b', 'k', 'b');
    expect(second).to.include({ t: 'put-ok', siblings: 2 });
    expect(second.t === 'put-ok' && second.ctx).to.equal(undefined);
  });

  it('two puts before either is durable both survive, and a get does not see them early', () => {
    const h = new Harness();
    const a = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('a') });
    const b = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('b') });
    expect(h.get('b', 'k').found).to.equal(false);
    h.sync();
    expect(h.reply(a).t).to.equal('put-ok');
    expect(h.reply(b).t).to.equal('put-ok');
    expect(h.get('b', 'k').values.map(text).sort()).to.deep.equal(['a', 'b']);
  });

  it('a delete hides the key; a delete without context removes every value the replica holds', () => {
    const h = new Harness();
    h.put('b', 'k', 'x');
    h.put('b', 'k', 'y');
    const id = h.send({ t: 'del', b: 'b', k: 'k' });
    h.sync();
    expect(h.reply(id).t).to.equal('del-ok');
    const read = h.get('b', 'k');
    expect(read.found).to.equal(false);
    expect(read.values).to.deep.equal([]);
    // A put with the tombstone's context supersedes the tombstone.
    h.put('b', 'k', 'again', read.ctx);
    expect(h.get('b', 'k').values.map(text)).to.deep.equal(['again']);
  });

  it('replies TIMEOUT, saying the write may have landed, when the write is not durable by the deadline', () => {
    const h = new Harness();
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('x'), timeout: 50 });
    for (let i = 0; i < 4; i++) h.step({ kind: 'tick' });
    expect(h.replies).to.have.length(0);
    h.step({ kind: 'tick' });
    const reply = h.reply(id);
    expect(reply).to.include({ t: 'err', code: 'TIMEOUT' });
    expect(reply.t === 'err' && reply.details).to.deep.include({ mayHaveLanded: true, required: 1, received: 0 });
    // The late durability report changes nothing and sends nothing twice.
    h.sync();
    expect(h.replies.filter((r) => r.id === id)).to.have.length(1);
  });

  it('replies STORAGE when the write fails, and the failed version is not read by the next put', () => {
    const h = new Harness();
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('lost') });
    const batch = h.undurable.splice(0)[0];
    h.step({ kind: 'store-failed', writeId: batch?.writeId ?? -1, reason: 'disk full' });
    expect(h.reply(id)).to.include({ t: 'err', code: 'STORAGE' });
    h.put('b', 'k', 'next');
    expect(h.get('b', 'k').values.map(text)).to.deep.equal(['next']);
  });

  it('drops replies to a closed connection but still completes the write', () => {
    const h = new Harness();
    h.send({ t: 'put', b: 'b', k: 'k', v: bytes('x') }, 7);
    h.step({ kind: 'client-closed', conn: 7 });
    h.sync();
    expect(h.replies).to.have.length(0);
    expect(h.get('b', 'k').values.map(text)).to.deep.equal(['x']);
  });

  describe('refuses bad requests before writing anything', () => {
    const cases: [string, Unsent, string][] = [
      ['an empty bucket', { t: 'put', b: '', k: 'k', v: bytes('x') }, 'INVALID_REQUEST'],
      ['an empty key', { t: 'get', b: 'b', k: '' }, 'INVALID_REQUEST'],
      ['a bucket with a zero character', { t: 'put', b: 'a\0b', k: 'k', v: bytes('x') }, 'INVALID_REQUEST'],
      ['a key with a lone surrogate', { t: 'put', b: 'b', k: 'a\ud800b', v: bytes('x') }, 'INVALID_REQUEST'],
      ['a bucket over 64 bytes', { t: 'put', b: 'é'.repeat(33), k: 'k', v: bytes('x') }, 'TOO_LARGE'],
      ['a key over 1 KiB', { t: 'del', b: 'b', k: 'k'.repeat(1025) }, 'TOO_LARGE'],
      ['a value over 1 MiB', { t: 'put', b: 'b', k: 'k', v: new Uint8Array(1024 * 1024 + 1) }, 'TOO_LARGE'],
      ['a malformed context', { t: 'put', b: 'b', k: 'k', v: bytes('x'), ctx: bytes('garbage') }, 'INVALID_REQUEST'],
      ['w above n', { t: 'put', b: 'b', k: 'k', v: bytes('x'), w: 4 }, 'INVALID_REQUEST'],
      ['r above the replicas that exist', { t: 'get', b: 'b', k: 'k', r: 2 }, 'UNAVAILABLE'],
    ];
    for (const [name, request, code] of cases) {
      it(name, () => {
        const h = new Harness();
        const id = h.send(request);
        const reply = h.reply(id);
        expect(reply).to.include({ t: 'err', code });
        expect(h.undurable).to.have.length(0);
      });
    }

    it('a value of exactly the limit is accepted', () => {
      const h = new Harness();
      const id = h.send({ t: 'put', b: 'b', k: 'k', v: new Uint8Array(1024 * 1024) });
      h.sync();
      expect(h.reply(id).t).to.equal('put-ok');
    });

    it('a write that would exceed the sibling limit', () => {
      const h = new Harness({ limits: { ...DATA_LIMITS_DEFAULT, siblingsMax: 3, siblingsWarn: 2 } });
      for (let i = 0; i < 3; i++) expect(h.put('b', 'k', `v${i}`).t).to.equal('put-ok');
      expect(h.logs.some((o) => o.kind === 'log' && o.msg === 'many siblings')).to.equal(true);
      expect(h.put('b', 'k', 'v3')).to.include({ t: 'err', code: 'INVALID_REQUEST' });
      expect(h.get('b', 'k').values).to.have.length(3);
      // Resolving with the context is still allowed.
      expect(h.put('b', 'k', 'resolved', h.get('b', 'k').ctx)).to.include({ t: 'put-ok', siblings: 1 });
    });

    it('an empty context means none', () => {
      const h = new Harness();
      h.put('b', 'k', 'a');
      expect(h.put('b', 'k', 'b', encodeContext([]))).to.include({ siblings: 2 });
    });
  });
});

describe('coordinator: forged contexts cannot grow a clock without bound', () => {
  it('ignores unknown context actors past the bound, so the stored clock stays readable', () => {
    const h = new Harness();
    h.put('b', 'k', 'v0');
    for (let round = 0; round < 4; round++) {
      const forged = encodeContext(Array.from({ length: 500 }, (_, i) => [`junk-${round}-${String(i).padStart(4, '0')}`, 1] as const));
      expect(h.put('b', 'k', `v${round + 1}`, forged).t).to.equal('put-ok');
    }
    const stored = h.disk.get('b\0k');
    expect(stored?.entries.length).to.be.at.most(1024);
    const read = h.get('b', 'k');
    expect(h.put('b', 'k', 'resolved', read.ctx)).to.include({ t: 'put-ok', siblings: 1 });
  });
});
