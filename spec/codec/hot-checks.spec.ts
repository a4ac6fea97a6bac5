/**
 * Holds each hand-written check of a hot message (lib/codec/hot-checks.ts) to its schema:
 * whatever a check accepts, the schema accepts too, unchanged; well-formed messages pass the
 * check (so the fast path is the one taken); and bad input still gets the schema's reason.
 *
 * How: seeded property runs per message type, over messages built from a mix of good and bad
 * values for every field (wrong types, NaN, ±Infinity, fractions, negatives, unsafe integers,
 * strings one past their limit, byte strings where text belongs), with fields dropped, unknown
 * fields added and `undefined` in optional ones.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import type { z } from 'zod';

import { REQUEST_TIMEOUT_MS_MAX } from '../../lib/base/limits.js';
import { decodeSafe } from '../../lib/codec/cbor.js';
import { encodeFrame } from '../../lib/codec/frame.js';
import { CLIENT_REPLY_CHECKS, CLIENT_REQUEST_CHECKS, PEER_MESSAGE_CHECKS, passesCheck, type MessageCheck } from '../../lib/codec/hot-checks.js';
import { clientReplySchema, clientRequestSchema, parseMessage, peerMessageSchema } from '../../lib/codec/messages.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
console.log('  seed', seed, `(repeat with SEED=${seed} npx mocha spec/codec/hot-checks.spec.ts)`);

/** Values no field of these messages accepts, or accepts only in some places. */
const junk = fc.oneof(
  fc.constantFrom(null, undefined, NaN, Infinity, -Infinity, -1, 0.5, 2 ** 53, -0, '', true, false, 'x'.repeat(65), 'one'),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 80 }),
  fc.uint8Array({ maxLength: 4 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);

const good = {
  id: fc.oneof(fc.constantFrom(0, Number.MAX_SAFE_INTEGER), fc.nat()),
  bucket: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('b'.repeat(64 * 1024))),
  key: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('k'.repeat(64 * 1024))),
  bytes: fc.uint8Array({ maxLength: 16 }),
  level: fc.oneof(fc.constantFrom('one', 'quorum', 'all', 'x'.repeat(32)), fc.integer({ min: -5, max: 300 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
  bool: fc.boolean(),
  timeout: fc.oneof(fc.constantFrom(1, REQUEST_TIMEOUT_MS_MAX), fc.integer({ min: 1, max: REQUEST_TIMEOUT_MS_MAX })),
  node: fc.oneof(fc.string({ minLength: 1, maxLength: 64 }).filter((s) => s.length >= 1), fc.constant('n'.repeat(64))),
  object: fc.oneof(fc.constant({ entries: [] }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 3, noNullPrototype: true })),
  digest: fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.nat(), fc.nat()), { maxLength: 4 }),
  values: fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 3 }),
};

type Shape = { readonly required: Record<string, fc.Arbitrary<unknown>>; readonly optional: Record<string, fc.Arbitrary<unknown>> };

const SHAPES: Record<string, { schema: z.ZodType; checks: ReadonlyMap<string, MessageCheck>; shape: Shape }> = {
  get: {
    schema: clientRequestSchema,
    checks: CLIENT_REQUEST_CHECKS,
    shape: { required: { t: fc.constant('get'), id: good.id, b: good.bucket, k: good.key }, optional: { r: good.level, pr: good.level, sloppy: good.bool, timeout: good.timeout, pair: good.node } },
  },
  dget: {
    schema: clientRequestSchema,
    checks: CLIENT_REQUEST_CHECKS,
    shape: { required: { t: fc.constant('dget'), id: good.id, b: good.bucket, k: good.key }, optional: { timeout: good.timeout } },
  },
  put: {
    schema: clientRequestSchema,
    checks: CLIENT_REQUEST_CHECKS,
    shape: {
      required: { t: fc.constant('put'), id: good.id, b: good.bucket, k: good.key, v: good.bytes },
      optional: { ctx: good.bytes, w: good.level, pw: good.level, sloppy: good.bool, timeout: good.timeout },
    },
  },
  'get-ok': {
    schema: clientReplySchema,
    checks: CLIENT_REPLY_CHECKS,
    shape: { required: { t: fc.constant('get-ok'), id: good.id, found: good.bool, values: good.values, ctx: good.bytes }, optional: { dg: good.digest } },
  },
  'dget-ok': {
    schema: clientReplySchema,
    checks: CLIENT_REPLY_CHECKS,
    shape: { required: { t: fc.constant('dget-ok'), id: good.id, dg: good.digest }, optional: {} },
  },
  'put-ok': {
    schema: clientReplySchema,
    checks: CLIENT_REPLY_CHECKS,
    shape: { required: { t: fc.constant('put-ok'), id: good.id, siblings: fc.nat() }, optional: { ctx: good.bytes } },
  },
  rput: {
    schema: peerMessageSchema,
    checks: PEER_MESSAGE_CHECKS,
    shape: { required: { t: fc.constant('rput'), from: good.node, rid: good.id, b: good.bucket, k: good.key, obj: good.object }, optional: { hint: good.node } },
  },
  'rput-ok': {
    schema: peerMessageSchema,
    checks: PEER_MESSAGE_CHECKS,
    shape: { required: { t: fc.constant('rput-ok'), from: good.node, rid: good.id }, optional: {} },
  },
  rget: {
    schema: peerMessageSchema,
    checks: PEER_MESSAGE_CHECKS,
    shape: { required: { t: fc.constant('rget'), from: good.node, rid: good.id, b: good.bucket, k: good.key }, optional: { hint: good.node, dg: fc.constant(true) } },
  },
  'rget-ok': {
    schema: peerMessageSchema,
    checks: PEER_MESSAGE_CHECKS,
    shape: { required: { t: fc.constant('rget-ok'), from: good.node, rid: good.id }, optional: { obj: good.object, dg: good.digest } },
  },
};

/** A well-formed message of the shape: every required field, some optional ones. */
function wellFormed(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({ ...shape.required, ...shape.optional }, { requiredKeys: Object.keys(shape.required), noNullPrototype: true });
}

/** A message of the shape with some fields bad, dropped, `undefined` or unknown. */
function mangled(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  const fields = { ...shape.required, ...shape.optional };
  const maybeBad = Object.fromEntries(Object.entries(fields).map(([name, arb]) => [name, fc.oneof({ weight: 3, arbitrary: arb }, { weight: 1, arbitrary: junk })]));
  return fc
    .tuple(
      fc.record(maybeBad, { requiredKeys: [] }),
      fc.dictionary(fc.constantFrom('extra', 'obj', 'v', 'dg', 'hint', 'r', 'pair', '__proto__', 'constructor'), junk, { maxKeys: 2 }),
      fc.boolean(),
    )
    .map(([message, extra, addExtra]) => (addExtra ? { ...message, ...extra } : message));
}

/** What the schema makes of a message, with optional fields holding `undefined` left out (the check accepts them as absent). */
function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

describe('hot message checks', () => {
  for (const [type, { schema, checks, shape }] of Object.entries(SHAPES)) {
    describe(type, () => {
      it('passes every well-formed message, which the schema accepts unchanged', () => {
        fc.assert(
          fc.property(wellFormed(shape), (message) => {
            expect(passesCheck(checks, message), JSON.stringify(message).slice(0, 200)).to.equal(true);
            const parsed = schema.safeParse(message);
            expect(parsed.success).to.equal(true);
            expect(withoutUndefined(parsed.data as Record<string, unknown>)).to.deep.equal(withoutUndefined(message));
          }),
          { seed, numRuns: 300 },
        );
      });

      it('passes nothing the schema refuses', () => {
        let passed = 0;
        let refused = 0;
        fc.assert(
          fc.property(mangled(shape), (message) => {
            const accepted = schema.safeParse(message).success;
            if (passesCheck(checks, message)) {
              passed++;
              expect(accepted, `check passed what the schema refuses: ${String(JSON.stringify(message)).slice(0, 300)}`).to.equal(true);
            } else if (!accepted) {
              refused++;
              // Bad input still gets the schema's reason, naming the message type.
              const result = parseMessage(schema, message);
              expect(result.ok).to.equal(false);
            }
          }),
          { seed, numRuns: 2000 },
        );
        // Both sides of the line were exercised.
        expect(passed, 'messages the check passed').to.be.greaterThan(0);
        expect(refused, 'messages both refused').to.be.greaterThan(0);
      });
    });
  }

  it('passes messages as the wire decoder hands them over', () => {
    const frame = encodeFrame([
      { t: 'get', id: 1, b: 'b', k: 'k', r: 'quorum' },
      { t: 'put', id: 2, b: 'b', k: 'k', v: new Uint8Array([1, 2]), ctx: new Uint8Array(0) },
    ]);
    const decoded = decodeSafe(frame);
    expect(decoded.ok).to.equal(true);
    for (const message of (decoded as { value: unknown[] }).value) expect(passesCheck(CLIENT_REQUEST_CHECKS, message)).to.equal(true);
  });

  it('are the path parseMessage takes: a hot message comes back as is, others as the schema rebuilt them', () => {
    const get = { t: 'get', id: 1, b: 'b', k: 'k' };
    const parsedGet = parseMessage(clientRequestSchema, get);
    expect(parsedGet.ok && parsedGet.value).to.equal(get);
    const admin = { t: 'admin', id: 2, op: 'status' };
    const parsedAdmin = parseMessage(clientRequestSchema, admin);
    expect(parsedAdmin.ok && parsedAdmin.value).to.deep.equal(admin);
    expect(parsedAdmin.ok && parsedAdmin.value).to.not.equal(admin);
  });

  it('names no type it cannot print', () => {
    const result = parseMessage(peerMessageSchema, { t: Object.create(null) as object });
    expect(result).to.deep.equal({ ok: false, reason: result.ok ? '' : result.reason });
    expect(result.ok === false && result.reason.startsWith('invalid ? message')).to.equal(true);
  });

  it('passes no message of another type, or none at all', () => {
    expect(passesCheck(PEER_MESSAGE_CHECKS, { t: 'ping', seq: 1, from: 'a', target: 'b', upd: [] })).to.equal(false);
    expect(passesCheck(PEER_MESSAGE_CHECKS, null)).to.equal(false);
    expect(passesCheck(PEER_MESSAGE_CHECKS, [])).to.equal(false);
    expect(passesCheck(PEER_MESSAGE_CHECKS, { t: 7 })).to.equal(false);
    expect(passesCheck(CLIENT_REQUEST_CHECKS, Object.assign(Object.create({ t: 'get' }) as object, { id: 1, b: 'b', k: 'k' }))).to.equal(false);
    expect(passesCheck(undefined, { t: 'get', id: 1, b: 'b', k: 'k' })).to.equal(false);
  });
});
