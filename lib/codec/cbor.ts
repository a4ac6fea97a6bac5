/**
 * CBOR for wire frames and for user values: cbor-x behind a validating front door.
 *
 * cbor-x is fast but trusts its input: it recurses once per nesting level (a few kilobytes
 * of nested arrays overflow the stack, and the RangeError can leave its shared decoder state
 * behind), and it turns tags into Dates, Sets, RegExps, Errors, typed arrays and records.
 * So nothing reaches cbor-x's decoder before `scanCbor` has walked the bytes iteratively and
 * accepted them, and every decode is wrapped so that the caller gets a result, never a throw
 * (the TigerStyle split: bad input from the world is a value, not an exception).
 *
 * Two profiles. Wire frames (`decodeSafe`) are plain data only: no tags, text map keys,
 * integers within the safe range, depth at most WIRE_DEPTH_MAX. Given those rules cbor-x can
 * only build objects from `{}`, arrays from `new Array`, byte strings as Uint8Arrays, and
 * primitives (its other constructors sit behind tags, records and packed values, which
 * the scan refuses), so no walk over the decoded value is needed to prove it plain; the spec
 * checks that claim on random values. User values (`decodeValue`) may carry tags (a Date is
 * tag 1, a Map tag 259, a large bigint tag 2) but stay bounded in depth by VALUE_DEPTH_MAX.
 *
 * Ownership. A fresh ArrayBuffer costs more than the whole encode or decode of a small
 * message, so copies are made only where a view would pin too much. cbor-x encodes into a
 * shared slab and, in the mode used here, only ever appends to it, so an earlier frame is
 * never overwritten (the spec checks it): frames come back as views of the slab, and a slab
 * that grew past ENCODER_SLAB_BYTES_MAX for one large frame is left to that frame while the
 * encoder starts a fresh one. Decoded byte strings are views of the input when the buffer
 * behind it is small (a retained value pins at most DECODE_VIEW_BUFFER_BYTES_MAX, like a
 * Node pool slab) and copies when it is large, so a 100-byte hint never pins a peer batch of
 * up to PEER_FRAME_BYTES_MAX. Either way the input must not change while its values live;
 * transports hand over a fresh buffer per frame. User values are always copied: they go to
 * application code, which may keep them for as long as it likes.
 */

import { Decoder, Encoder, type Options } from 'cbor-x';
import { VALUE_DEPTH_MAX, WIRE_DEPTH_MAX, WIRE_ITEMS_MAX } from '../base/limits.js';
import { scanCbor, type ScanLimits } from './cbor-scan.js';
import { encodePlain } from './plain-encode.js';

export type DecodeResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

export interface DecodeOptions {
  /** Nesting depth allowed; WIRE_DEPTH_MAX unless given. */
  readonly depthMax?: number;
  /** Array elements plus map entries allowed; WIRE_ITEMS_MAX unless given. */
  readonly itemsMax?: number;
  /** Copy byte strings out of the input; by default only when the buffer behind it is large. */
  readonly copyBytes?: boolean;
}

/**
 * Bytes of encoder slab that small frames may share and pin. cbor-x starts with 8 KiB and
 * grows the slab to about four times a frame that does not fit; past this size the slab is
 * retired after the frame that grew it.
 */
const ENCODER_SLAB_BYTES_MAX = 64 * 1024;

/**
 * Bytes of input buffer that decoded byte strings may pin as views. A socket read is at most
 * 64 KiB, so ordinary client frames decode without copies; peer batches are copied out.
 */
const DECODE_VIEW_BUFFER_BYTES_MAX = 64 * 1024;

/** Bytes of the fresh slab that replaces a retired one: cbor-x's own starting size. */
const ENCODER_SLAB_BYTES_INITIAL = 8 * 1024;

/** `useBuffer` is part of cbor-x's documented API but missing from its typings. */
type SlabEncoder = Encoder & { useBuffer(slab: Uint8Array): void };

/** The runtime's Buffer, where there is one; see `freshSlab`. */
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array; from(bytes: Uint8Array): Uint8Array } }).Buffer;

/** cbor-x reads `int64AsNumber` but its typings do not list it. */
type DecoderOptions = Options & { readonly int64AsNumber?: boolean };

/**
 * Plain interop: objects as CBOR maps (no record tags), Uint8Array and Buffer as plain byte
 * strings (no tag 64), no structured clone, no string bundles, no packing, and the smallest
 * map header that fits. A JS Map still gets tag 259 and a Date tag 1: fine in user values,
 * refused on the wire, where messages are built from plain objects only.
 */
const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  structuredClone: false,
  bundleStrings: false,
  pack: false,
}) as SlabEncoder;

/** The 8-byte integers a wire frame may hold are all safe, so they decode as numbers, not bigints. */
const wireDecoderOptions: DecoderOptions = {
  useRecords: false,
  mapsAsObjects: true,
  int64AsNumber: true,
};
const wireViewDecoder = new Decoder({ ...wireDecoderOptions, copyBuffers: false });
const wireCopyDecoder = new Decoder({ ...wireDecoderOptions, copyBuffers: true });

/** User values keep bigints: cbor-x writes one as an 8-byte integer and reads it back as a bigint. */
const valueDecoderOptions: DecoderOptions = {
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: true,
};
const valueDecoder = new Decoder({ ...valueDecoderOptions, copyBuffers: false });

/**
 * Encodes a wire message (plain objects, arrays, strings, safe integers, floats, booleans,
 * null, byte strings). The bytes are never overwritten by later encodes; they are a view of
 * the encoder's slab, so send the view, not its `.buffer`. A Date, Map, Set or Error would
 * be written as a tag, which `decodeSafe` refuses. Throws if the value holds a function or
 * symbol: messages are built by our own code, so that is a bug.
 */
export function encode(value: unknown): Uint8Array {
  // Plain messages take the short path, which writes the same bytes (plain-encode.ts).
  return encodePlain(value) ?? encodeOnSlab(value);
}

/** Encodes with cbor-x alone, the path `encode` takes for what is not plain; for specs that compare the two. */
export function encodeGeneral(value: unknown): Uint8Array {
  return encodeOnSlab(value);
}

/**
 * Validates, then decodes, one wire frame. Never throws. Byte strings come back as plain
 * Uint8Arrays, views or copies according to `copyBytes`.
 */
export function decodeSafe(bytes: Uint8Array, opts: DecodeOptions = {}): DecodeResult {
  const reason = scanCbor(bytes, {
    depthMax: opts.depthMax ?? WIRE_DEPTH_MAX,
    itemsMax: opts.itemsMax ?? WIRE_ITEMS_MAX,
  });
  if (reason !== undefined) return { ok: false, reason };
  const copyBytes = opts.copyBytes ?? bytes.buffer.byteLength > DECODE_VIEW_BUFFER_BYTES_MAX;
  return decodeScanned(copyBytes ? wireCopyDecoder : wireViewDecoder, plainBytes(bytes));
}

/**
 * Encodes a user value: anything cbor-x can write, tags included (Date, Set, Map, typed
 * arrays, bigint). Throws a TypeError naming the problem for what is not data (functions,
 * symbols) and for cyclic or absurdly deep values. The SDK runs `checkValueBytes` on the
 * result before sending it, which refuses values nested deeper than VALUE_DEPTH_MAX and
 * shapes (iterables, lone surrogates) that would not decode again.
 */
export function encodeValue(value: unknown): Uint8Array {
  try {
    return encodeOnSlab(value);
  } catch (error) {
    throw new TypeError(`cannot encode value as CBOR: ${describeEncodeError(error)}`, { cause: error });
  }
}

/** Why encoded user-value bytes must not be sent or decoded, or undefined when they are fine. */
export function checkValueBytes(bytes: Uint8Array, depthMax: number = VALUE_DEPTH_MAX): string | undefined {
  return scanCbor(bytes, valueLimits(bytes, depthMax));
}

/**
 * Validates, then decodes, one user value (tags allowed, depth bounded). Never throws. The
 * value's bytes are copied once, and its byte strings are views of that private copy: a
 * fresh ArrayBuffer per byte string costs more than the whole decode, while one pooled copy
 * of the value is cheap and still leaves the application sole owner of what it gets.
 */
export function decodeValue(bytes: Uint8Array, depthMax: number = VALUE_DEPTH_MAX): DecodeResult {
  const reason = scanCbor(bytes, valueLimits(bytes, depthMax));
  if (reason !== undefined) return { ok: false, reason };
  return decodeScanned(valueDecoder, plainBytes(privateCopy(bytes)));
}

/** A copy nobody else holds: a pooled Buffer where there is one, as Buffer.from makes for small sizes. */
function privateCopy(bytes: Uint8Array): Uint8Array {
  return NodeBuffer ? NodeBuffer.from(bytes) : bytes.slice();
}

/**
 * cbor-x makes byte strings with the input's own constructor. From a Buffer they would be
 * Buffers, whose `slice` is a view rather than a copy, and application code does not expect
 * that; a plain view over the same memory makes them plain.
 */
function plainBytes(bytes: Uint8Array): Uint8Array {
  if (Object.getPrototypeOf(bytes) === Uint8Array.prototype) return bytes;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encodes onto cbor-x's slab, leaving a large slab to the frame that grew it so that later
 * frames do not pin it too. An encode that throws (a function in the value, or a cycle that
 * overflowed the stack) may have grown the slab and left its write position anywhere in it,
 * so the encoder starts afresh.
 */
function encodeOnSlab(value: unknown): Uint8Array {
  let encoded: Uint8Array;
  try {
    encoded = encoder.encode(value);
  } catch (error) {
    encoder.useBuffer(freshSlab());
    throw error;
  }
  if (encoded.buffer.byteLength > ENCODER_SLAB_BYTES_MAX) encoder.useBuffer(freshSlab());
  return encoded;
}

/**
 * cbor-x writes long strings with Buffer#utf8Write wherever Buffer exists, so a replacement
 * slab must be a Buffer there and may be a plain Uint8Array elsewhere.
 */
function freshSlab(): Uint8Array {
  return NodeBuffer ? NodeBuffer.allocUnsafeSlow(ENCODER_SLAB_BYTES_INITIAL) : new Uint8Array(ENCODER_SLAB_BYTES_INITIAL);
}

/**
 * A user value's items are bounded by its bytes (each takes at least one), and its bytes by
 * the configured value limit, so the item count adds no bound of its own here.
 */
function valueLimits(bytes: Uint8Array, depthMax: number): ScanLimits {
  return { depthMax, itemsMax: bytes.length, allowTags: true, allowBigInts: true, allowNonTextKeys: true };
}

/**
 * The scan already accepted these bytes, so a throw here means cbor-x disagrees with it;
 * that is still the peer's malformed input as far as the caller is concerned.
 */
function decodeScanned(decoder: Decoder, bytes: Uint8Array): DecodeResult {
  try {
    return { ok: true, value: decoder.decode(bytes) as unknown };
  } catch (error) {
    return { ok: false, reason: `decode failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function describeEncodeError(error: unknown): string {
  if (error instanceof RangeError) return 'it is cyclic or nested too deeply';
  const message = error instanceof Error ? error.message : String(error);
  const unknownType = /^Unknown type: (\w+)$/.exec(message);
  if (unknownType) return `a ${unknownType[1]} is not data`;
  return message;
}
