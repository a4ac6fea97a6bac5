/**
 * Proves the coordinator over three replicas, answering for the peers by hand: a put is
 * applied here first and sent to the others, and acknowledged after `w` durable answers
 * (`pw` of them primaries); a replica that answers with an error or a malformed object
 * counts as failed, never as a success; a get merges what the replicas hold, answers after
 * `r`, and then repairs a primary that answered with less; a node that is no replica of a
 * key forwards the write and relays the answer; a peer's refusal of a forwarded write is
 * retriable; fallbacks stand in for a primary that is down, and a down primary without a
 * stand-in gets a hint kept by the coordinator.
 */

import { expect } from 'chai';
import { DATA_LIMITS_DEFAULT } from '../../lib/base/limits.js';
import { join, sync as syncDvv, update } from '../../lib/clock/dvv.js';
import type { KvObject } from '../../lib/clock/object.js';
import type { ClientReply, ClientRequest, PeerMessage } from '../../lib/codec/messages.js';
import { HintBook } from '../../lib/handoff/hints.js';
import { Coordinator, type DataRequest } from '../../lib/node/coordinator.js';
import type { NodeOutput } from '../../lib/node/io.js';
import { SegmentHashes } from '../../lib/merkle/index.js';
import { LocalReplica } from '../../lib/node/local-replica.js';
import { objectDigestOf } from '../../lib/replication/replica.js';
import type { Placement } from '../../lib/node/placement.js';
import type { StoreWrite } from '../../lib/node/ports.js';

type Unsent = DataRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Node n1 coordinates; the key's primaries are `primaries`, the fallbacks `fallbacks`; `down` are not alive. */
class ThreeReplicas {
  readonly disk = new Map<string, KvObject>();
  readonly hintDisk = new Map<string, KvObject>();
  readonly undurable: { writeId: number; writes: readonly StoreWrite[] }[] = [];
  readonly replies: ClientReply[] = [];
  readonly sent: { to: string; message: PeerMessage }[] = [];
  readonly local: LocalReplica;
  readonly core: Coordinator;
  readonly hints = new HintBook({ countMax: 100, bytesMax: 1 << 20 }, { intervalTicks: 10, batchMax: 10, timeoutTicks: 100 }, []);
  down = new Set<string>();
  private id = 1;
  private rid = 1;

  constructor(primaries: string[] = ['n1', 'n2', 'n3'], fallbacks: string[] = ['n4']) {
    this.local = new LocalReplica({
      get: (b, k) => {
        if (k === 'unreadable') throw new Error('corrupt record');
        return this.disk.get(`${b}\0${k}`);
      },
      getHint: (t, b, k) => this.hintDisk.get(`${t}\0${b}\0${k}`),
      hintsFor: () => [],
      hintTargets: () => [],
      scan: () => [],
    }, new SegmentHashes(4));
    const placement: Placement = {
      ready: true,
      bucketProps: () => ({}),
      preferenceList: () => ({ primaries, fallbacks: fallbacks.filter((f) => !this.down.has(f)) }),
      alive: (id) => !this.down.has(id),
      addressOf: (id) => ({ node: id, addr: `${id}:7070` }),
      unhealthyAt: 0,
    };
    this.core = new Coordinator(
      { local: this.local, hints: this.hints, placement, rid: () => this.rid++, toSelf: () => undefined, confirms: () => true },
      {
        nodeId: 'n1',
        actor: 'n1/e1',
        limits: DATA_LIMITS_DEFAULT,
        replication: { n: 3, r: 'quorum', w: 'quorum', pr: 0, pw: 0, sloppy: true, tombstoneGraceMs: 1000 },
        requestTimeoutMs: 100,
        tickMs: 10,
        counterFloor: 0,
      },
    );
  }

  send(request: Unsent): number {
    const id = this.id++;
    this.collect((out) => this.core.onClientRequest(1, { ...request, id } as ClientRequest as DataRequest, out));
    return id;
  }

  /** A peer's answer to the message of type `t` last sent to `to`. */
  answer(to: string, t: string, make: (rid: number) => PeerMessage): void {
    const sent = [...this.sent].reverse().find((s) => s.to === to && s.message.t === t);
    if (sent === undefined || !('rid' in sent.message)) throw new Error(`nothing of type ${t} was sent to ${to}`);
    const rid = sent.message.rid;
    this.collect((out) => this.core.onPeerAnswer(to, make(rid), out));
  }

  durable(): void {
    for (const batch of this.undurable.splice(0)) {
      for (const w of batch.writes) {
        if (w.op === 'put') this.disk.set(`${w.bucket}\0${w.key}`, w.object);
        else if (w.op === 'hint-put') this.hintDisk.set(`${w.target}\0${w.bucket}\0${w.key}`, w.object);
      }
      this.collect((out) => this.local.onStoreDone(batch.writeId, undefined, out));
    }
  }

  tick(count = 1): void {
    for (let i = 0; i < count; i++) this.collect((out) => this.core.onTick(out));
  }

  reply(id: number): ClientReply | undefined {
    return this.replies.find((r) => r.id === id);
  }

  sentTo(to: string, t: string): PeerMessage[] {
    return this.sent.filter((s) => s.to === to && s.message.t === t).map((s) => s.message);
  }

  private collect(step: (out: NodeOutput[]) => void): void {
    const out: NodeOutput[] = [];
    step(out);
    for (const o of out) {
      if (o.kind === 'client-reply') this.replies.push(o.reply);
      else if (o.kind === 'store-write') this.undurable.push({ writeId: o.writeId, writes: o.writes });
      else if (o.kind === 'send') this.sent.push({ to: o.to.node as string, message: o.message });
    }
  }
}

const ok = (from: string) => (rid: number): PeerMessage => ({ t: 'rput-ok', from, rid });
const refused = (from: string) => (rid: number): PeerMessage => ({ t: 'rerr', from, rid, code: 'STORAGE', msg: 'disk full' });

describe('coordinator: a put over three replicas', () => {
  it('applies the write here first, sends the new version to the other replicas, and answers after w durable acknowledgements', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v') });
    const rputs = ['n2', 'n3'].map((n) => h.sentTo(n, 'rput')[0]);
    expect(rputs.every((m) => m?.t === 'rput' && m.obj !== undefined)).to.equal(true);
    h.answer('n2', 'rput', ok('n2'));
    expect(h.reply(id), 'one acknowledgement is not a quorum of two').to.equal(undefined);
    h.durable();
    expect(h.reply(id)).to.include({ t: 'put-ok', siblings: 1 });
  });

  it('counts a replica that refuses as failed: two refusals make w=2 impossible, and the error says the write may have landed', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v') });
    h.answer('n2', 'rput', refused('n2'));
    h.answer('n3', 'rput', refused('n3'));
    const reply = h.reply(id);
    expect(reply).to.include({ t: 'err', code: 'STORAGE' });
    expect(reply?.t === 'err' && reply.details).to.include({ required: 2, received: 0, failed: 2, mayHaveLanded: true });
  });

  it('waits for pw primaries: acknowledgements from a fallback alone do not satisfy pw=3', () => {
    const h = new ThreeReplicas();
    h.down.add('n3');
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v'), pw: 2 });
    expect(h.sentTo('n4', 'rput')[0]).to.include({ hint: 'n3' });
    h.answer('n4', 'rput', ok('n4'));
    h.durable();
    expect(h.reply(id)).to.equal(undefined);
    h.answer('n2', 'rput', ok('n2'));
    expect(h.reply(id)).to.include({ t: 'put-ok' });
    const strict = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v'), pw: 3 });
    const refusal = h.reply(strict);
    expect(refusal).to.include({ t: 'err', code: 'UNAVAILABLE' });
    // Nothing was sent: a node that sees more replicas may take it, so the SDK may retry there.
    expect(refusal?.t === 'err' && refusal.details).to.include({ mayHaveLanded: false, retry: true, primariesRequired: 3, primariesAlive: 2 });
  });

  it('keeps a hint here for a primary that is down with no fallback to stand in', () => {
    const h = new ThreeReplicas(['n1', 'n2', 'n3'], []);
    h.down.add('n3');
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v'), w: 2 });
    h.answer('n2', 'rput', ok('n2'));
    h.durable();
    expect(h.reply(id)).to.include({ t: 'put-ok' });
    expect(h.hintDisk.has('n3\0b\0k')).to.equal(true);
    expect(h.hints.stats()).to.deep.include({ target: 'n3', pending: 1, bytes: h.hints.stats()[0]?.bytes ?? 0, delivered: 0, dropped: 0 });
  });

  it('times out with TIMEOUT naming required and received when replicas stay silent', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v') });
    h.durable();
    h.tick(10);
    const reply = h.reply(id);
    expect(reply).to.include({ t: 'err', code: 'TIMEOUT' });
    expect(reply?.t === 'err' && reply.details).to.include({ required: 2, received: 1, mayHaveLanded: true });
  });

  it('forwards a write to a primary when this node is no replica of the key, and relays the answer', () => {
    const h = new ThreeReplicas(['n2', 'n3', 'n4'], []);
    const id = h.send({ t: 'put', b: 'b', k: 'k', v: bytes('v') });
    const fwd = h.sentTo('n2', 'fwd')[0];
    expect(fwd?.t === 'fwd' && fwd.req.t).to.equal('put');
    expect(h.undurable, 'nothing is written here').to.have.length(0);
    h.answer('n2', 'fwd', (rid) => ({ t: 'fwd-reply', from: 'n2', rid, reply: { t: 'put-ok', id: 999, siblings: 1 } }));
    expect(h.reply(id)).to.deep.equal({ t: 'put-ok', id, siblings: 1 });
  });

  it('refuses a forwarded write it holds no replica of, so the client may retry elsewhere', () => {
    const h = new ThreeReplicas(['n2', 'n3', 'n4'], []);
    const out: NodeOutput[] = [];
    h.core.onForwarded('n5', 77, { t: 'put', id: 5, b: 'b', k: 'k', v: bytes('v') }, out);
    const sent = out.find((o) => o.kind === 'send');
    expect(sent?.kind === 'send' && sent.message.t === 'fwd-reply' && sent.message.reply).to.deep.include({ t: 'err', code: 'UNAVAILABLE' });
    const reply = sent?.kind === 'send' && sent.message.t === 'fwd-reply' ? sent.message.reply : undefined;
    expect(reply?.t === 'err' && reply.details).to.include({ retry: true, mayHaveLanded: false });
  });
});

describe('coordinator: a get over three replicas', () => {
  /** A version written by `actor`, superseding `base` (the writer read it first). */
  const stored = (value: string, actor: string, base?: KvObject): KvObject => update(base ?? { entries: [] }, base === undefined ? [] : join(base), bytes(value), actor);

  it('asks only as many replicas as r needs, merges what they hold, then repairs a stale one', () => {
    const h = new ThreeReplicas();
    const older = stored('old', 'n2/e1');
    const newer = stored('new', 'n3/e1', older);
    h.disk.set('b\0k', older);
    const id = h.send({ t: 'get', b: 'b', k: 'k' });
    expect(h.sentTo('n2', 'rget')).to.have.length(1);
    expect(h.sentTo('n3', 'rget'), 'r=2 is met by this node and one other').to.have.length(0);
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid, obj: syncDvv(older, newer) }));
    const reply = h.reply(id);
    expect(reply?.t === 'get-ok' && reply.values.map(text)).to.deep.equal(['new']);
    expect(h.undurable, 'this node, stale, repairs its own copy').to.have.length(1);
    expect(h.sentTo('n2', 'rput'), 'n2 was up to date').to.have.length(0);
    expect(h.core.stats.readRepairs).to.equal(1);
  });

  it('asks the next replica when one fails, and one more when none answers in time', () => {
    const h = new ThreeReplicas();
    const failed = h.send({ t: 'get', b: 'b', k: 'k' });
    h.answer('n2', 'rget', (rid) => ({ t: 'rerr', from: 'n2', rid, code: 'STORAGE', msg: 'disk' }));
    expect(h.sentTo('n3', 'rget')).to.have.length(1);
    h.answer('n3', 'rget', (rid) => ({ t: 'rget-ok', from: 'n3', rid }));
    expect(h.reply(failed)).to.include({ t: 'get-ok', found: false });
    const slow = h.send({ t: 'get', b: 'b', k: 'k' });
    h.tick(4);
    expect(h.sentTo('n3', 'rget')).to.have.length(1);
    h.tick(1);
    expect(h.sentTo('n3', 'rget'), 'a speculative read after 5 ticks').to.have.length(2);
    h.answer('n3', 'rget', (rid) => ({ t: 'rget-ok', from: 'n3', rid }));
    expect(h.reply(slow)).to.include({ t: 'get-ok', found: false });
  });

  it('asks another replica in place of its own copy when that cannot be read', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'get', b: 'b', k: 'unreadable' });
    expect(h.sentTo('n2', 'rget')).to.have.length(1);
    expect(h.sentTo('n3', 'rget'), 'the failed local read is replaced at once').to.have.length(1);
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid }));
    h.answer('n3', 'rget', (rid) => ({ t: 'rget-ok', from: 'n3', rid }));
    expect(h.reply(id)).to.include({ t: 'get-ok', found: false });
  });

  it('counts a replica that answers with a malformed object as failed, never as a success', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'get', b: 'b', k: 'k', r: 'all' });
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid, obj: { entries: 'garbage' } }));
    const reply = h.reply(id);
    expect(reply).to.include({ t: 'err', code: 'UNAVAILABLE' });
    expect(reply?.t === 'err' && reply.details).to.include({ required: 3, failed: 1, mayHaveLanded: false });
    const quorum = h.send({ t: 'get', b: 'b', k: 'k' });
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid, obj: { entries: [{ actor: '', counter: -1, values: [] }] } }));
    expect(h.reply(quorum)).to.equal(undefined);
    h.answer('n3', 'rget', (rid) => ({ t: 'rget-ok', from: 'n3', rid }));
    expect(h.reply(quorum)).to.include({ t: 'get-ok', found: false });
  });

  it('ignores answers from nodes it did not ask, and a second answer from the same replica', () => {
    const h = new ThreeReplicas();
    const id = h.send({ t: 'get', b: 'b', k: 'k', r: 'all' });
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid }));
    h.answer('n2', 'rget', (rid) => ({ t: 'rget-ok', from: 'n2', rid }));
    const out: NodeOutput[] = [];
    h.core.onPeerAnswer('n9', { t: 'rget-ok', from: 'n9', rid: 2 }, out);
    expect(h.reply(id)).to.equal(undefined);
    h.answer('n3', 'rget', (rid) => ({ t: 'rget-ok', from: 'n3', rid }));
    expect(h.reply(id)).to.include({ t: 'get-ok', found: false });
  });

  it('refuses levels out of range with INVALID_REQUEST naming the option, before anything is sent', () => {
    const h = new ThreeReplicas();
    for (const [request, field] of [
      [{ t: 'get', b: 'b', k: 'k', r: 0 }, 'r'],
      [{ t: 'get', b: 'b', k: 'k', pr: -2 }, 'pr'],
      [{ t: 'get', b: 'b', k: 'k', r: 4 }, 'r'],
      [{ t: 'put', b: 'b', k: 'k', v: bytes('v'), w: 'most' }, 'w'],
      [{ t: 'del', b: 'b', k: 'k', pw: 9 }, 'pw'],
    ] as const) {
      const id = h.send(request as Unsent);
      const reply = h.reply(id);
      expect(reply, JSON.stringify(request)).to.include({ t: 'err', code: 'INVALID_REQUEST' });
      expect(reply?.t === 'err' && reply.details.field).to.equal(field);
    }
    expect(h.sent).to.have.length(0);
    expect(h.undurable).to.have.length(0);
  });
});

describe('coordinator: a paired get (the client asks the pair for its digest)', () => {
  const stored = (value: string, actor: string): KvObject => update({ entries: [] }, [], bytes(value), actor);

  it("answers from its own copy with that copy's digest, sending nothing, when it and the pair meet r; a dget answers the same digest", () => {
    const h = new ThreeReplicas();
    const object = stored('v', 'n2/e1');
    h.disk.set('b\0k', object);
    const id = h.send({ t: 'get', b: 'b', k: 'k', pair: 'n2' });
    const reply = h.reply(id);
    expect(reply?.t === 'get-ok' && reply.values.map(text)).to.deep.equal(['v']);
    expect(reply?.t === 'get-ok' && reply.dg).to.deep.equal(objectDigestOf(object));
    expect(reply?.t === 'get-ok' && reply.found).to.equal(true);
    expect(h.sent, 'no message to any replica').to.deep.equal([]);
    expect(h.core.stats.pairedReads).to.equal(1);
    const digest = h.send({ t: 'dget', b: 'b', k: 'k' });
    expect(h.reply(digest)).to.deep.equal({ t: 'dget-ok', id: digest, dg: objectDigestOf(object) });
    const absent = h.send({ t: 'get', b: 'b', k: 'never', pair: 'n3', r: 2, pr: 2 });
    expect(h.reply(absent)).to.deep.include({ t: 'get-ok', found: false, values: [], dg: [] });
  });

  it('coordinates as without pair when the two cannot make the read, or this node alone can', () => {
    for (const [request, why] of [
      [{ r: 'all' }, 'r=all needs the third replica'],
      [{ pr: 3 }, 'pr=3 needs every primary'],
      [{ pair: 'n1' }, 'the pair is this node'],
      [{ pair: 'n4' }, 'the pair is no primary of the key'],
      [{ k: 'unreadable' }, 'this copy cannot be read'],
    ] as const) {
      const h = new ThreeReplicas();
      const id = h.send({ t: 'get', b: 'b', k: 'k', pair: 'n2', ...request });
      expect(h.sentTo('n2', 'rget').length + h.sentTo('n3', 'rget').length, why).to.be.above(0);
      for (const to of ['n2', 'n3']) if (h.sentTo(to, 'rget').length > 0) h.answer(to, 'rget', (rid) => ({ t: 'rget-ok', from: to, rid }));
      const reply = h.reply(id);
      expect(reply, why).to.include({ t: 'get-ok', found: false });
      expect(reply, why).to.not.have.property('dg');
      expect(h.core.stats.pairedReads, why).to.equal(0);
    }
    const one = new ThreeReplicas();
    const id = one.send({ t: 'get', b: 'b', k: 'k', pair: 'n2', r: 'one' });
    expect(one.reply(id), 'r=one: this copy alone is the whole read').to.include({ t: 'get-ok', found: false });
    expect(one.reply(id)).to.not.have.property('dg');
    expect(one.sent).to.deep.equal([]);
    const down = new ThreeReplicas();
    down.down.add('n2');
    const other = down.send({ t: 'get', b: 'b', k: 'k', pair: 'n2' });
    const asked = down.sent.filter((s) => s.message.t === 'rget').map((s) => s.to);
    expect(asked, 'a pair that is down is no target: the read goes to another replica').to.have.length(1).and.not.include('n2');
    down.answer(asked[0] as string, 'rget', (rid) => ({ t: 'rget-ok', from: asked[0] as string, rid }));
    expect(down.reply(other)).to.include({ t: 'get-ok' }).and.not.have.property('dg');
    const elsewhere = new ThreeReplicas(['n2', 'n3', 'n4']);
    const notMine = elsewhere.send({ t: 'get', b: 'b', k: 'k', pair: 'n2' });
    expect(elsewhere.sentTo('n2', 'rget'), 'this node is no replica: it coordinates').to.have.length(1);
    expect(elsewhere.reply(notMine)).to.equal(undefined);
  });

  it('refuses a bad dget with a typed error, and one it cannot read with STORAGE', () => {
    const h = new ThreeReplicas();
    const long = h.send({ t: 'dget', b: 'b', k: 'k'.repeat(DATA_LIMITS_DEFAULT.keyBytesMax + 1) });
    expect(h.reply(long)).to.include({ t: 'err', code: 'TOO_LARGE' });
    const unreadable = h.send({ t: 'dget', b: 'b', k: 'unreadable' });
    expect(h.reply(unreadable)).to.include({ t: 'err', code: 'STORAGE' });
    expect(h.sent).to.deep.equal([]);
  });
});
