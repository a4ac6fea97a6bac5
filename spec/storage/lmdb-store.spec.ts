/**
 * Proves the LMDB store keeps the Store contract in both durability modes, including after
 * close and reopen, and checks what only a real engine can show:
 * - a storage key at LMDB's 1978-byte limit is stored, one byte over is refused with
 *   StorageError (lmdb-js would throw, or commit half a batch) and the store keeps working;
 * - a corrupt record on disk makes `get` and `scan` throw StorageError naming the key while
 *   the other keys stay readable;
 * - many applies issued in one event-loop turn share one transaction (group commit);
 * - a write whose `apply` resolved survives the process being SIGKILLed right after;
 * - a data directory LMDB cannot open is reported as StorageError.
 *
 * Every store lives in a fresh directory under one `mkdtemp` directory, removed in `after`.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { expect } from 'chai';
import { open as openLmdb } from 'lmdb';

import { StorageError } from '../../lib/base/errors.js';
import { STORAGE_KEY_BYTES_MAX } from '../../lib/base/limits.js';
import type { KvObject } from '../../lib/clock/object.js';
import { encodeStorageKey, openStore, type Store, type StoreDurability } from '../../lib/storage/index.js';
import { encodeObject } from '../../lib/storage/object-codec.js';
import { rejection, runStoreContract, thrown } from '../contract/store.contract.js';

const STORAGE_INDEX = pathToFileURL(fileURLToPath(new URL('../../lib/storage/index.ts', import.meta.url))).href;

function value(s: string): KvObject {
  return { entries: [{ actor: 'n1/e1', counter: 1, values: [new TextEncoder().encode(s)] }] };
}

function storageKey(bucket: string, key: string): Uint8Array {
  const encoded = encodeStorageKey(bucket, key);
  if (!encoded.ok) throw new Error(encoded.reason);
  return encoded.bytes;
}

async function withRawLmdb<T>(path: string, fn: (objects: ReturnType<typeof rawObjects>, root: ReturnType<typeof openLmdb>) => Promise<T> | T): Promise<T> {
  const root = openLmdb({ path });
  try {
    return await fn(rawObjects(root), root);
  } finally {
    await root.close();
  }
}

function rawObjects(root: ReturnType<typeof openLmdb>) {
  return root.openDB<Uint8Array, Uint8Array>({ name: 'objects', keyEncoding: 'binary', encoding: 'binary' });
}

describe('storage/lmdb-store', () => {
  let root: string;
  let made = 0;
  const paths = new Map<Store, string>();

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'chorus-lmdb-'));
  });

  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  async function openAt(path: string, durability: StoreDurability): Promise<Store> {
    const store = await openStore({ engine: 'lmdb', path, durability });
    paths.set(store, path);
    return store;
  }

  function freshPath(): string {
    return join(root, `store-${made++}`);
  }

  async function reopenStore(store: Store, durability: StoreDurability): Promise<Store> {
    const path = paths.get(store);
    if (path === undefined) throw new Error('reopen of a store this spec did not open');
    await store.close();
    paths.delete(store);
    return openAt(path, durability);
  }

  for (const durability of ['fsync', 'commit'] as const) {
    runStoreContract(
      `lmdb, durability ${durability}`,
      () => openAt(freshPath(), durability),
      (store) => reopenStore(store, durability),
    );
  }

  describe('LMDB specifics', () => {
    let path: string;
    let store: Store;

    beforeEach(async () => {
      path = freshPath();
      store = await openAt(path, 'fsync');
    });

    afterEach(async () => {
      await store.close();
    });

    it('opens a data directory whose name has a dot, as `mktemp -d` makes them', async () => {
      const dotted = join(freshPath(), 'chorus.data');
      mkdirSync(dotted, { recursive: true });
      const other = await openAt(dotted, 'fsync');
      await other.apply([{ op: 'put', bucket: 'b', key: 'k', object: { entries: [{ actor: 'a/1', counter: 1, values: [new Uint8Array([1])] }] } }]);
      expect(other.count()).to.equal(1);
      await other.close();
    });

    it('stores a storage key of exactly 1978 bytes and refuses one byte more with StorageError, then keeps working', async () => {
      expect(STORAGE_KEY_BYTES_MAX).to.equal(1978);
      // token (4) + bucket "b" (1) + zero (1) + key
      const atLimit = 'k'.repeat(STORAGE_KEY_BYTES_MAX - 6);
      await store.apply([{ op: 'put', bucket: 'b', key: atLimit, object: value('fits') }]);
      expect(store.get('b', atLimit)).to.deep.equal(value('fits'));
      expect([...store.scan(0, 0)].map((e) => e.key)).to.deep.equal([atLimit]);

      const overLimit = `${atLimit}k`;
      const error = await rejection(
        store.apply([
          { op: 'put', bucket: 'b', key: 'same-batch', object: value('x') },
          { op: 'put', bucket: 'b', key: overLimit, object: value('too long') },
        ]),
      );
      expect(error).to.be.instanceOf(StorageError);
      expect((error as StorageError).details).to.include({ bucket: 'b', index: 1 });
      expect(store.get('b', 'same-batch')).to.equal(undefined);
      expect(store.get('b', overLimit)).to.equal(undefined);

      await store.apply([{ op: 'put', bucket: 'b', key: 'after', object: value('still works') }]);
      expect(store.get('b', 'after')).to.deep.equal(value('still works'));
      expect(store.count()).to.equal(2);
    });

    it('throws StorageError naming the key for a corrupt record, and still reads the others', async () => {
      await store.apply([
        { op: 'put', bucket: 'b', key: 'good', object: value('fine') },
        { op: 'put', bucket: 'b', key: 'bad', object: value('soon corrupt') },
      ]);
      await store.close();
      await withRawLmdb(path, async (objects) => {
        await objects.put(storageKey('b', 'bad'), Uint8Array.of(0x9f, 0xff, 0x00));
      });
      store = await openAt(path, 'fsync');

      expect(store.get('b', 'good')).to.deep.equal(value('fine'));
      const getError = thrown(() => store.get('b', 'bad'));
      expect(getError).to.be.instanceOf(StorageError);
      expect((getError as StorageError).details).to.include({ bucket: 'b', key: 'bad' });
      const scanError = thrown(() => [...store.scan(0, 0)]);
      expect(scanError).to.be.instanceOf(StorageError);
      expect((scanError as StorageError).details).to.include({ bucket: 'b', key: 'bad' });
    });

    it('throws StorageError for a stored key that is not a storage key', async () => {
      await store.close();
      await withRawLmdb(path, async (objects) => {
        // Four token bytes and no zero separator.
        await objects.put(Uint8Array.of(0, 0, 0, 1, 0x61, 0x62), encodeObject(value('v')));
      });
      store = await openAt(path, 'fsync');
      const error = thrown(() => [...store.scan(0, 0)]);
      expect(error).to.be.instanceOf(StorageError);
      expect((error as StorageError).details).to.include({ storageKey: '000000016162' });
    });

    it('commits many applies issued in one event-loop turn in one transaction', async () => {
      const lastTxnId = async (): Promise<number> => {
        await store.close();
        const id = await withRawLmdb(path, (_objects, raw) => (raw.getStats() as { lastTxnId: number }).lastTxnId);
        store = await openAt(path, 'fsync');
        return id;
      };
      const before = await lastTxnId();
      const applies = Array.from({ length: 2000 }, (_, i) => store.apply([{ op: 'put', bucket: 'turn', key: `k${i}`, object: value(`${i}`) }]));
      await Promise.all(applies);
      const after = await lastTxnId();
      expect(store.count()).to.equal(2000);
      // Reopening an existing store commits nothing, so the difference is the turn's writes.
      expect(after - before, 'transactions committed for 2000 applies issued in one turn').to.equal(1);
    });

    it('keeps a write whose apply resolved when the process is SIGKILLed right after', async () => {
      await store.close();
      // .mts: an ES module wherever it sits, so top-level await works under tsx.
      const script = join(root, `kill-${made++}.mts`);
      writeFileSync(
        script,
        [
          `import { openStore } from ${JSON.stringify(STORAGE_INDEX)};`,
          `const store = await openStore({ engine: 'lmdb', path: ${JSON.stringify(path)}, durability: 'fsync' });`,
          `const values = [new TextEncoder().encode('survives')];`,
          `await store.apply([{ op: 'put', bucket: 'b', key: 'acked', object: { entries: [{ actor: 'n1/e1', counter: 1, values }] } }]);`,
          `process.kill(process.pid, 'SIGKILL');`,
        ].join('\n'),
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      expect(signal, `the child should kill itself after the apply resolved; stderr: ${stderr}`).to.equal('SIGKILL');
      store = await openAt(path, 'fsync');
      expect(store.get('b', 'acked')).to.deep.equal(value('survives'));
    });

    it('rejects with StorageError when the data directory cannot be opened', async () => {
      const file = join(root, `not-a-directory-${made++}`);
      writeFileSync(file, 'x');
      const error = await rejection(openStore({ engine: 'lmdb', path: join(file, 'data'), durability: 'fsync' }));
      expect(error).to.be.instanceOf(StorageError);
    });

    it('opens in an existing, empty data directory', async () => {
      const dir = freshPath();
      mkdirSync(dir);
      const other = await openAt(dir, 'commit');
      await other.apply([{ op: 'put', bucket: 'b', key: 'k', object: value('v') }]);
      expect(other.get('b', 'k')).to.deep.equal(value('v'));
      await other.close();
    });
  });
});
