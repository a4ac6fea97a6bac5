/**
 * One replica of the bare prototype the cluster benchmark measures Chorus against: a `ws`
 * server that decodes each frame with cbor-x, puts into LMDB or gets from it, and answers
 * each request with its own frame. No versions, no validation, no handshake, no membership:
 * what three processes with the same libraries do for a quorum store and nothing else. The
 * quorum logic lives in the client-side coordinator (bare-coordinator.ts).
 *
 * A frame is one request, `{ t: 'put' | 'get', id, b, k, v? }`; the reply is `{ id }` for a
 * put and `{ id, v }` for a get (`v` null when absent). Writes are durable as Chorus's are by
 * default: a put is acknowledged only after LMDB's flush to disk (`separateFlushed`, then
 * `flushed`). lmdb-js commits every put issued during one event-loop turn in one
 * transaction with one fsync, so writes are batched per turn here as in the raw single-node
 * ceiling (raw-server.ts), though each arrives in a frame of its own. Keys use Chorus's
 * token-ordered layout (layout.ts).
 *
 * Usage: node --import tsx scripts/bench/bare-replica.ts DATA_DIR  (prints "listening PORT")
 */

import { Encoder } from 'cbor-x';
import { open } from 'lmdb';
import { WebSocketServer } from 'ws';
import { tuneHeap } from '../../lib/runtime/heap-tuning.js';
import { tokenKey } from './layout.js';

/** Largest frame accepted: a request is a key and a small value; 1 MiB leaves room for any test value. */
const FRAME_BYTES_MAX = 1024 * 1024;

interface Request {
  readonly t: 'put' | 'get';
  readonly id: number;
  readonly b: string;
  readonly k: string;
  readonly v?: Uint8Array;
}

type FlushedPromise = Promise<boolean> & { readonly flushed?: Promise<void> };

// The same V8 settings as a Chorus node, so the two differ only in what they do.
tuneHeap();

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: bare-replica.ts DATA_DIR');
const db = open<Uint8Array, Buffer>({ path: dir, keyEncoding: 'binary', encoding: 'binary', separateFlushed: true });
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, maxPayload: FRAME_BYTES_MAX });

wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => {
    const request = cbor.decode(data) as Request;
    if (request.t === 'get') {
      ws.send(cbor.encode({ id: request.id, v: db.get(tokenKey(request.b, request.k)) ?? null }));
      return;
    }
    const committed = db.put(tokenKey(request.b, request.k), request.v as Uint8Array) as FlushedPromise;
    void (committed.flushed ?? committed).then(
      () => ws.send(cbor.encode({ id: request.id })),
      (error: unknown) => {
        process.stderr.write(`bare replica: write failed: ${String(error)}\n`);
        ws.close(1011, 'write failed');
      },
    );
  });
});

wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`listening ${typeof address === 'string' || address === null ? address : address.port}\n`);
});

process.on('SIGTERM', () => {
  wss.close();
  for (const client of wss.clients) client.terminate();
  void db.close().then(() => process.exit(0));
});
