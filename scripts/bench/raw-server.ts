/**
 * The raw ceiling for the single-node benchmark: a bare `ws` server that decodes each frame
 * with cbor-x, puts into LMDB (acknowledging after the fsync, as Chorus does by default) or
 * gets from it, and answers with one cbor-x frame per incoming frame. No validation, no
 * versions, no handshake: what the same machine does with the same libraries and nothing else.
 *
 * Keys are laid out as Chorus lays them out, `murmur3(bucket ‖ 0 ‖ key) ‖ bucket ‖ 0 ‖ key`,
 * unless `plain` is given: then `bucket ‖ 0 ‖ key`. The layout matters to LMDB: token order
 * scatters a batch of new keys over many pages, each rewritten at commit, where sequential
 * keys append to a few.
 *
 * Usage: node --import tsx scripts/bench/raw-server.ts DATA_DIR [token|plain]  (prints "listening PORT")
 */

import { Encoder } from 'cbor-x';
import { open } from 'lmdb';
import { WebSocketServer } from 'ws';
import { plainKey, tokenKey } from './layout.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: raw-server.ts DATA_DIR');
const db = open({ path: dir, keyEncoding: 'binary', encoding: 'binary', separateFlushed: true });
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });

type Request = { t: 'put' | 'get'; id: number; b: string; k: string; v?: Uint8Array };

const plain = process.argv[3] === 'plain';

function storageKey(bucket: string, key: string): Buffer {
  return plain ? plainKey(bucket, key) : tokenKey(bucket, key);
}

wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => {
    const requests = cbor.decode(data) as Request[];
    const replies: unknown[] = [];
    const writes: Promise<unknown>[] = [];
    for (const r of requests) {
      if (r.t === 'get') replies.push({ id: r.id, v: db.get(storageKey(r.b, r.k)) ?? null });
      else {
        const committed = db.put(storageKey(r.b, r.k), r.v as Uint8Array) as Promise<boolean> & { flushed?: Promise<void> };
        writes.push(committed.flushed ?? committed);
        replies.push({ id: r.id });
      }
    }
    if (writes.length === 0) ws.send(cbor.encode(replies));
    else void Promise.all(writes).then(() => ws.send(cbor.encode(replies)));
  });
});

wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`listening ${typeof address === 'string' || address === null ? address : address.port}\n`);
});

process.on('SIGTERM', () => {
  wss.close();
  void db.close().then(() => process.exit(0));
});
