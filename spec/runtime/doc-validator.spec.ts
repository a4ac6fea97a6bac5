/**
 * Proves that the doc validator accepts Yjs updates and refuses malformed or hostile ones
 * with bounded time, and that it survives them: after a refusal by its watchdog the next
 * update is checked by a fresh worker.
 *
 * How: real updates from Y.Docs (whole documents, single edits, one whose dependencies are
 * missing); garbage, empty and oversized bytes; the struct-count bombs of yjs issue 687 in
 * the v1 format, a varuint count of 2^32 − 1 or 2^32 structs in eight bytes; clocks past
 * 2^53; and a CPU bomb, a valid update whose delete set repeats one range over every struct
 * (quadratic to apply: seconds of Yjs work in 300 KB), timed against the watchdog. Queue
 * overflow and close() are driven with many validations in flight. A child process that never
 * calls close() shows that the worker does not keep a process alive.
 */

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as Y from 'yjs';
import { DOC_UPDATE_BYTES_MAX } from '../../lib/crdt/doc.js';
import { DocValidator, type DocValidation } from '../../lib/runtime/doc-validator.js';

function varuint(out: number[], value: number): void {
  let n = value;
  while (n > 0x7f) {
    out.push(0x80 | (n % 0x80));
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/**
 * A v1 update with one client, `structs` GC structs of length 1 from clock 0, then a delete
 * set of `ranges` copies of the range [0, structs). Applying it visits every struct once per
 * range: structs × ranges steps.
 */
function deleteSetBomb(structs: number, ranges: number): Uint8Array {
  const out: number[] = [];
  varuint(out, 1); // clients with structs
  varuint(out, structs);
  varuint(out, 1); // client
  varuint(out, 0); // first clock
  for (let i = 0; i < structs; i++) out.push(0, 1); // GC struct, length 1
  varuint(out, 1); // clients with deletions
  varuint(out, 1); // client
  varuint(out, ranges);
  for (let i = 0; i < ranges; i++) {
    varuint(out, 0);
    varuint(out, structs);
  }
  return Uint8Array.from(out);
}

/** The v1 struct-count bombs: one client, a count of `count` structs, client 0, clock 0, and nothing more. */
function structCountBomb(count: number): Uint8Array {
  const out: number[] = [];
  varuint(out, 1);
  varuint(out, count);
  out.push(0, 0);
  return Uint8Array.from(out);
}

function textUpdate(content: string): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = 42;
  doc.getText('t').insert(0, content);
  return Y.encodeStateAsUpdate(doc);
}

async function timed(promise: Promise<DocValidation>): Promise<{ result: DocValidation; ms: number }> {
  const started = performance.now();
  const result = await promise;
  return { result, ms: performance.now() - started };
}

describe('runtime/doc-validator', () => {
  const validators: DocValidator[] = [];
  const validator = (options?: ConstructorParameters<typeof DocValidator>[0]): DocValidator => {
    const created = new DocValidator(options);
    validators.push(created);
    return created;
  };
  after(async () => {
    await Promise.all(validators.map((v) => v.close()));
  });

  it('accepts real updates, including one that waits for missing history', async () => {
    const v = validator();
    expect(await v.validate(textUpdate('hello'))).to.deep.equal({ ok: true });
    expect(await v.validate(Y.encodeStateAsUpdate(new Y.Doc()))).to.deep.equal({ ok: true });
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (update: Uint8Array) => updates.push(update));
    doc.getText('t').insert(0, 'abc');
    doc.getText('t').insert(3, 'def');
    doc.getText('t').delete(1, 2);
    for (const update of updates) expect(await v.validate(update)).to.deep.equal({ ok: true });
    // The second edit alone depends on the first; Yjs holds it as pending, which is fine.
    expect(await v.validate(updates[1] as Uint8Array)).to.deep.equal({ ok: true });
  });

  it('refuses garbage, empty and oversized bytes with a reason', async () => {
    const v = validator();
    const good = textUpdate('some text to cut short');
    const cases: [string, Uint8Array][] = [
      ['garbage', Uint8Array.from([0x07, 0xff, 0x13, 0x00, 0x42, 0x99])],
      ['truncated', good.subarray(0, good.length - 6)],
      ['empty', new Uint8Array(0)],
      ['oversized', new Uint8Array(DOC_UPDATE_BYTES_MAX + 1)],
      ['a clock past 2^53', Uint8Array.from([1, 2, 1, 0, 0, ...[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08], 0, ...[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08], 0])],
    ];
    for (const [what, bytes] of cases) {
      const result = await v.validate(bytes);
      expect(result.ok, what).to.equal(false);
      expect(!result.ok && result.reason, what).to.be.a('string').and.not.equal('');
      expect(!result.ok && result.busy, what).to.equal(undefined);
    }
    expect(await v.validate(good)).to.deep.equal({ ok: true });
  });

  it('refuses the struct-count bombs of yjs issue 687 quickly and keeps working', async () => {
    const v = validator();
    for (const count of [2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const bomb = structCountBomb(count);
      const { result, ms } = await timed(v.validate(bomb));
      console.log(`      ${Buffer.from(bomb).toString('hex')} (${count} structs): ${JSON.stringify(result)} in ${ms.toFixed(1)} ms`);
      expect(result.ok).to.equal(false);
      expect(ms).to.be.below(2000);
      expect(await v.validate(textUpdate('still working'))).to.deep.equal({ ok: true });
    }
  });

  it('stops a check that overruns its watchdog, then checks the next update with a fresh worker', async () => {
    const v = validator({ timeoutMs: 250 });
    expect(await v.validate(textUpdate('warm'))).to.deep.equal({ ok: true });
    const bomb = deleteSetBomb(50_000, 50_000);
    const { result, ms } = await timed(v.validate(bomb));
    console.log(`      ${bomb.length}-byte delete-set bomb: ${JSON.stringify(result)} in ${ms.toFixed(0)} ms`);
    expect(result.ok).to.equal(false);
    expect(!result.ok && result.reason).to.match(/too long/);
    expect(ms).to.be.below(2000);
    const after = await timed(v.validate(textUpdate('after the bomb')));
    expect(after.result).to.deep.equal({ ok: true });
    // A bomb queued behind a good update does not hold up the one queued behind it for longer than its watchdog.
    const [first, second, third] = await Promise.all([v.validate(textUpdate('a')), v.validate(bomb), v.validate(textUpdate('b'))]);
    expect(first).to.deep.equal({ ok: true });
    expect(second.ok).to.equal(false);
    expect(third).to.deep.equal({ ok: true });
  });

  it('answers busy past queueMax, and checks the rest', async () => {
    const v = validator({ queueMax: 2 });
    const update = textUpdate('queued');
    const results = await Promise.all([v.validate(update), v.validate(update), v.validate(update), v.validate(update)]);
    expect(results.slice(0, 2)).to.deep.equal([{ ok: true }, { ok: true }]);
    expect(results.slice(2)).to.deep.equal([
      { ok: false, reason: 'validator busy', busy: true },
      { ok: false, reason: 'validator busy', busy: true },
    ]);
    expect(await v.validate(update)).to.deep.equal({ ok: true });
  });

  it('resolves every pending validation when closed, the running one too', async () => {
    const v = validator();
    expect(await v.validate(textUpdate('ready'))).to.deep.equal({ ok: true });
    const pending = [v.validate(deleteSetBomb(50_000, 50_000)), v.validate(textUpdate('x')), v.validate(textUpdate('y'))];
    const started = performance.now();
    await v.close();
    const results = await Promise.all(pending);
    expect(performance.now() - started).to.be.below(1000);
    for (const result of results) expect(result).to.deep.equal({ ok: false, reason: 'validator closed' });
    expect(await v.validate(textUpdate('z'))).to.deep.equal({ ok: false, reason: 'validator closed' });
  });

  it('does not keep a process alive', function () {
    this.timeout(30_000);
    const moduleUrl = new URL('../../lib/runtime/doc-validator.ts', import.meta.url).href;
    const script = [
      `import { DocValidator } from ${JSON.stringify(moduleUrl)};`,
      'const v = new DocValidator();',
      'console.log(JSON.stringify(await v.validate(new Uint8Array([0, 0]))));',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(child.error, 'the child did not exit by itself within 20 s').to.equal(undefined);
    expect(child.status, child.stderr).to.equal(0);
    expect(child.stdout.trim()).to.equal('{"ok":true}');
  });
});
