/**
 * Proves that `doc` bucket states behave as a CRDT made of bytes: merges of concurrent Yjs
 * updates agree whatever their order, a diff against a reader's state vector holds exactly
 * what that reader lacks, a client's bad state vector is refused without a throw, compaction
 * is deterministic and keeps content, and a state built by fifty thousand edits stays
 * proportional to the live document.
 *
 * How: two or three Y.Docs with fixed clientIDs edit one Y.Text concurrently from a seeded
 * Prng, each keeping the updates it emits; those updates are folded through `mergeDocStates`
 * and `applyDocUpdate` in shuffled orders and loaded back into fresh Y.Docs to compare texts
 * and state vectors (the merge is a join in content, not in bytes, so bytes are compared only
 * where the module promises them). Diffs are checked struct by struct against the reader's
 * state vector. The long run applies every edit's update on its own and compares the stored
 * size with a fresh garbage-collected Y.Doc loaded from the editor's state and encoded again
 * (the live-content measure), printing the worst ratio it saw.
 */

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as Y from 'yjs';
import { Prng } from '../../lib/base/prng.js';
import {
  applyDocUpdate,
  compactDoc,
  diffDoc,
  DOC_COMPACT_BYTES_MIN,
  DOC_STATE_VECTOR_BYTES_MAX,
  docStateOf,
  docStateVector,
  emptyDocState,
  mergeDocStates,
} from '../../lib/crdt/doc.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/crdt/doc.spec.ts)`);

/** A Y.Doc with a fixed clientID that records the updates of its own edits. */
interface Editor {
  readonly doc: Y.Doc;
  readonly text: Y.Text;
  readonly updates: Uint8Array[];
}

/** The origin of updates one editor receives from another; they are not recorded. */
const SYNC = 'sync';

function editor(clientID: number): Editor {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  const updates: Uint8Array[] = [];
  doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== SYNC) updates.push(update);
  });
  return { doc, text: doc.getText('t'), updates };
}

/** One small random edit: an insert of 1–4 characters or a delete of 1–3, anywhere. */
function randomEdit(prng: Prng, text: Y.Text): void {
  const length = text.length;
  if (length > 0 && prng.chance(0.4)) {
    const at = prng.int(length);
    text.delete(at, Math.min(length - at, 1 + prng.int(3)));
  } else {
    text.insert(prng.int(length + 1), 'abcdefgh'.slice(0, 1 + prng.int(4)));
  }
}

/** The text a state (v2) holds, read through a fresh Y.Doc. */
function textOf(state: Uint8Array): string {
  const doc = new Y.Doc();
  Y.applyUpdateV2(doc, state);
  return doc.getText('t').toString();
}

/** The text a client update (v1) holds. */
function textOfUpdate(update: Uint8Array): string {
  return textOf(docStateOf(update));
}

/** Client updates as states, for folding them through `mergeDocStates` as replicas merge states. */
function states(updates: readonly Uint8Array[]): Uint8Array[] {
  return updates.map((u) => docStateOf(u));
}

/** A state vector as a sorted list, for comparing states by content. */
function clocksOf(state: Uint8Array): [number, number][] {
  return [...Y.decodeStateVector(docStateVector(state)).entries()].sort((a, b) => a[0] - b[0]);
}

/** Two editors' concurrent sessions: each edits alone, with an exchange every few rounds. */
function concurrentSession(prng: Prng, rounds: number): { a: Editor; b: Editor } {
  const a = editor(101);
  const b = editor(202);
  for (let round = 0; round < rounds; round++) {
    randomEdit(prng, a.text);
    randomEdit(prng, b.text);
    if (prng.chance(0.1)) {
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc)), SYNC);
      Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)), SYNC);
    }
  }
  return { a, b };
}

function fold(updates: readonly Uint8Array[], step: (state: Uint8Array, update: Uint8Array) => Uint8Array): Uint8Array {
  return updates.reduce(step, emptyDocState());
}

describe('crdt/doc', () => {
  describe('emptyDocState', () => {
    it('is an update that adds nothing, a fresh array each time', () => {
      const empty = emptyDocState();
      expect(textOf(empty)).to.equal('');
      expect(clocksOf(empty)).to.deep.equal([]);
      expect(emptyDocState()).to.not.equal(empty);
      expect(emptyDocState()).to.deep.equal(empty);
    });
  });

  describe('merging', () => {
    it(`gives the same text whatever order concurrent updates merge in (seed ${seed})`, () => {
      const prng = new Prng(seed).fork('orders');
      const { a, b } = concurrentSession(prng, 200);
      // Some updates twice: a replica may see one again.
      const updates = [...a.updates, ...b.updates, ...a.updates.slice(0, 20)];
      // The two editors, fully synced, are the reference.
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc), SYNC);
      Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc), SYNC);
      const expected = a.text.toString();
      expect(b.text.toString()).to.equal(expected);
      const expectedClocks = clocksOf(docStateOf(Y.encodeStateAsUpdate(a.doc)));
      for (let trial = 0; trial < 5; trial++) {
        const shuffled = prng.shuffle(updates);
        const merged = fold(states(shuffled), mergeDocStates);
        const applied = fold(prng.shuffle(updates), applyDocUpdate);
        expect(textOf(merged), `merge order ${trial}`).to.equal(expected);
        expect(textOf(applied), `apply order ${trial}`).to.equal(expected);
        expect(clocksOf(merged)).to.deep.equal(expectedClocks);
        expect(clocksOf(applied)).to.deep.equal(expectedClocks);
      }
    });

    it(`is commutative, associative and idempotent in content (seed ${seed})`, () => {
      const prng = new Prng(seed).fork('laws');
      const { a, b } = concurrentSession(prng, 100);
      const c = editor(303);
      for (let i = 0; i < 50; i++) randomEdit(prng, c.text);
      const [x, y, z] = [fold(states(a.updates), mergeDocStates), fold(states(b.updates), mergeDocStates), fold(states(c.updates), mergeDocStates)] as const;
      const same = (p: Uint8Array, q: Uint8Array, what: string): void => {
        expect(textOf(p), what).to.equal(textOf(q));
        expect(clocksOf(p), what).to.deep.equal(clocksOf(q));
      };
      same(mergeDocStates(x, y), mergeDocStates(y, x), 'x ∨ y = y ∨ x');
      same(mergeDocStates(mergeDocStates(x, y), z), mergeDocStates(x, mergeDocStates(y, z)), '(x ∨ y) ∨ z = x ∨ (y ∨ z)');
      same(mergeDocStates(mergeDocStates(x, y), y), mergeDocStates(x, y), '(x ∨ y) ∨ y = x ∨ y');
    });

    it('returns a state itself when merged with itself or with the empty state', () => {
      const e = editor(7);
      e.text.insert(0, 'hello');
      const state = docStateOf(Y.encodeStateAsUpdate(e.doc));
      expect(mergeDocStates(state, state)).to.equal(state);
      expect(mergeDocStates(state, emptyDocState())).to.equal(state);
      expect(mergeDocStates(emptyDocState(), state)).to.equal(state);
    });
  });

  describe('diffDoc', () => {
    it(`gives exactly what a reader with a state vector lacks (seed ${seed})`, () => {
      const prng = new Prng(seed).fork('diff');
      const { a, b } = concurrentSession(prng, 200);
      const full = fold(states([...a.updates, ...b.updates]), mergeDocStates);
      // The reader has a's own history and the first half of b's.
      const bOwn = b.updates;
      const reader = new Y.Doc();
      for (const update of [...a.updates, ...bOwn.slice(0, bOwn.length >> 1)]) Y.applyUpdate(reader, update);
      const sv = Y.encodeStateVector(reader);
      const have = Y.decodeStateVector(sv);

      const diff = diffDoc(full, sv);
      if (!diff.ok) expect.fail(diff.reason);
      for (const struct of Y.decodeUpdate(diff.update).structs) {
        // Nothing the reader has already: every struct starts at or after the reader's clock.
        expect(struct.id.clock, `client ${struct.id.client}`).to.be.at.least(have.get(struct.id.client) ?? 0);
      }
      Y.applyUpdate(reader, diff.update);
      expect(reader.getText('t').toString()).to.equal(textOf(full));
      expect(clocksOf(docStateOf(Y.encodeStateAsUpdate(reader)))).to.deep.equal(clocksOf(full));
      expect(reader.store.pendingStructs).to.equal(null);

      // A reader that has everything gets no structs; one that has nothing gets everything.
      const none = diffDoc(full, docStateVector(full));
      expect(none.ok && Y.decodeUpdate(none.update).structs.length).to.equal(0);
      const all = diffDoc(full, Y.encodeStateVector(new Y.Doc()));
      expect(all.ok && textOfUpdate(all.update)).to.equal(textOf(full));
    });

    it(`refuses bad state vectors with a reason, never a throw (seed ${seed})`, () => {
      const e = editor(9);
      e.text.insert(0, 'some text');
      const state = docStateOf(Y.encodeStateAsUpdate(e.doc));
      const bad: [string, Uint8Array][] = [
        ['empty', new Uint8Array(0)],
        ['truncated varint', Uint8Array.from([0xff, 0xff])],
        ['more entries than bytes', Uint8Array.from([0x05, 0x01])],
        ['one byte too many', new Uint8Array(DOC_STATE_VECTOR_BYTES_MAX + 1)],
      ];
      for (const [what, sv] of bad) {
        const result = diffDoc(state, sv);
        expect(result.ok, what).to.equal(false);
        expect(!result.ok && result.reason, what).to.be.a('string').and.not.equal('');
      }
      const prng = new Prng(seed).fork('bad-sv');
      for (let i = 0; i < 2000; i++) {
        const sv = new Uint8Array(prng.int(16));
        for (let j = 0; j < sv.length; j++) sv[j] = prng.int(256);
        const result = diffDoc(state, sv);
        expect(result.ok === true || typeof result.reason === 'string').to.equal(true);
      }
    });
  });

  describe('compactDoc', () => {
    it('is deterministic and keeps the text and the state vector', () => {
      const prng = new Prng(seed).fork('compact');
      const e = editor(11);
      for (let i = 0; i < 1000; i++) randomEdit(prng, e.text);
      const merged = fold(states(e.updates), mergeDocStates);
      const compacted = compactDoc(merged);
      expect(compactDoc(merged)).to.deep.equal(compacted);
      expect(compactDoc(Uint8Array.from(merged))).to.deep.equal(compacted);
      expect(textOf(compacted)).to.equal(e.text.toString());
      expect(clocksOf(compacted)).to.deep.equal(clocksOf(merged));
    });

    it('drops the content of deleted text, which merging keeps', () => {
      const prng = new Prng(seed).fork('paragraphs');
      const e = editor(15);
      // Paragraphs written and later deleted whole: merges keep every character ever typed.
      for (let i = 0; i < 200; i++) {
        e.text.insert(prng.int(e.text.length + 1), `${'lorem ipsum '.repeat(16)}\n`);
        if (e.text.length > 2000) {
          const at = prng.int(e.text.length - 200);
          e.text.delete(at, 200);
        }
      }
      const merged = fold(states(e.updates), mergeDocStates);
      const compacted = compactDoc(merged);
      expect(textOf(compacted)).to.equal(e.text.toString());
      expect(compacted.byteLength).to.be.below(merged.byteLength / 4);
    });

    it('keeps updates whose dependencies are missing, so they apply once those arrive', () => {
      const e = editor(12);
      e.text.insert(0, 'abc');
      e.text.insert(3, 'def');
      const [first, second] = e.updates as [Uint8Array, Uint8Array];
      const pending = compactDoc(docStateOf(second));
      expect(textOf(pending)).to.equal('');
      expect(textOf(mergeDocStates(pending, docStateOf(first)))).to.equal('abcdef');
      expect(textOf(compactDoc(mergeDocStates(docStateOf(first), pending)))).to.equal('abcdef');
    });

    it('makes applyDocUpdate give the same bytes on every node for the same updates', () => {
      const prng = new Prng(seed).fork('same-bytes');
      const e = editor(13);
      for (let i = 0; i < 1500; i++) randomEdit(prng, e.text);
      expect(fold(e.updates, applyDocUpdate)).to.deep.equal(fold(e.updates, applyDocUpdate));
    });
  });

  describe('applyDocUpdate over a long session', () => {
    it(`keeps the state within 2× of the live document over 50,000 random edits (seed ${seed})`, function () {
      this.timeout(120_000);
      const prng = new Prng(seed).fork('long');
      const e = editor(14);
      // The edits of one writer: typing and backspacing at a cursor that now and then jumps
      // elsewhere, the text kept near 1,000 characters. The live size is measured as it goes.
      const every = 500;
      const live: number[] = [];
      let cursor = 0;
      for (let i = 1; i <= 50_000; i++) {
        const length = e.text.length;
        if (prng.chance(0.004)) cursor = prng.int(length + 1);
        cursor = Math.min(cursor, length);
        if (cursor > 0 && prng.chance(length > 1000 ? 0.6 : 0.35)) {
          const n = Math.min(cursor, 1 + prng.int(8));
          e.text.delete(cursor - n, n);
          cursor -= n;
        } else {
          const n = 1 + prng.int(4);
          e.text.insert(cursor, 'abcdefgh'.slice(0, n));
          cursor += n;
        }
        if (i % every === 0) live.push(liveBytes(e.doc));
      }
      expect(e.updates.length).to.equal(50_000);

      const fold = foldInChild(e.updates, every);
      let ratioMax = 0;
      fold.sizes.forEach((size, k) => {
        const liveSize = live[k] as number;
        // Below DOC_COMPACT_BYTES_MIN a state is never compacted, by design.
        if (size >= DOC_COMPACT_BYTES_MIN) ratioMax = Math.max(ratioMax, size / liveSize);
        expect(size, `after ${(k + 1) * every} edits`).to.be.at.most(Math.max(2 * liveSize, DOC_COMPACT_BYTES_MIN));
      });
      const liveFinal = live[live.length - 1] as number;
      console.log(
        `      50,000 edits applied in ${(fold.ms / 1000).toFixed(1)} s: state ${fold.state.byteLength} B, live ${liveFinal} B, ` +
          `ratio ${(fold.state.byteLength / liveFinal).toFixed(2)} at the end, ${ratioMax.toFixed(2)} at worst ` +
          `(${fold.sizes.length} checks; the updates themselves total ${e.updates.reduce((n, u) => n + u.byteLength, 0)} B)`,
      );
      expect(textOf(fold.state)).to.equal(e.text.toString());
    });
  });
});

/**
 * Folds updates through `applyDocUpdate` in a child process, reporting the state size after
 * every `every` updates. Mocha loads specs, and so yjs, as CommonJS, and yjs's CommonJS build
 * reaches lib0 through namespace getters that make each merge about five times slower than
 * the ES build a node runs. The child (node with the tsx loader, an ES module script) imports
 * lib/crdt/doc.ts as an ES module, so its yjs is the ES build and the fold takes seconds, not
 * minutes. (A worker thread would not do: loader hooks do not reach workers in Node 20.) The
 * updates go in on stdin, each after its length as four bytes; the result comes back as JSON.
 */
function foldInChild(updates: readonly Uint8Array[], every: number): Fold {
  const docUrl = new URL('../../lib/crdt/doc.ts', import.meta.url).href;
  const source = `
    import { applyDocUpdate, emptyDocState } from ${JSON.stringify(docUrl)};
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    const input = Buffer.concat(chunks);
    const started = performance.now();
    const sizes = [];
    let state = emptyDocState();
    for (let at = 0, count = 0; at < input.length; count++) {
      const length = input.readUInt32BE(at);
      state = applyDocUpdate(state, input.subarray(at + 4, at + 4 + length));
      at += 4 + length;
      if ((count + 1) % ${every} === 0) sizes.push(state.byteLength);
    }
    const ms = performance.now() - started;
    process.stdout.write(JSON.stringify({ sizes, state: Buffer.from(state).toString('base64'), ms }));
  `;
  const framed = Buffer.concat(
    updates.flatMap((update) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(update.byteLength);
      return [length, update];
    }),
  );
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    input: framed,
    encoding: 'utf8',
    timeout: 100_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (child.error !== undefined || child.status !== 0) throw new Error(`the fold failed: ${child.error?.message ?? child.stderr}`);
  const result = JSON.parse(child.stdout) as { sizes: number[]; state: string; ms: number };
  return { sizes: result.sizes, state: new Uint8Array(Buffer.from(result.state, 'base64')), ms: result.ms };
}

interface Fold {
  readonly sizes: number[];
  readonly state: Uint8Array;
  readonly ms: number;
}

/** The live-content measure: a fresh garbage-collected Y.Doc loaded from the editor, encoded again. */
function liveBytes(doc: Y.Doc): number {
  const fresh = new Y.Doc({ gc: true });
  Y.applyUpdate(fresh, Y.encodeStateAsUpdate(doc));
  return Y.encodeStateAsUpdateV2(fresh).byteLength;
}
