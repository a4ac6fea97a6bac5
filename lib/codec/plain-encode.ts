/**
 * A short path for encoding the plain messages a node sends thousands of times a second:
 * objects of Object.prototype with ASCII keys, arrays, ASCII strings, numbers, booleans,
 * null and byte strings. For those it writes exactly the bytes the cbor-x encoder
 * of cbor.ts writes (the smallest headers, maps in key order, byte strings untagged, numbers
 * past 32 bits as float64; the spec holds it to that byte for byte), without cbor-x's general
 * dispatch. Anything else (a non-ASCII string, undefined, a bigint, a Map, a Date, a class
 * instance, deep nesting) returns undefined, and cbor-x encodes the value as before.
 *
 * Like cbor-x's, the output is a view of a slab that is only ever appended to, so earlier
 * results are never overwritten; a full slab, or one grown for a large value, is left to the
 * views that hold it.
 */

/** Bytes of a fresh slab; a value that needs more gets a slab of its own size. */
const SLAB_BYTES = 64 * 1024;
/** Nesting beyond this is left to cbor-x (the wire refuses depth past WIRE_DEPTH_MAX anyway). */
const DEPTH_MAX = 32;

let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let position = 0;
/** Where the value being written starts: moved when the value outgrows its slab mid-write. */
let start = 0;

/** Makes room for `bytes` more, moving what the current value wrote so far to a bigger slab if needed. */
function room(bytes: number): void {
  if (position + bytes <= slab.length) return;
  const written = position - start;
  const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (written + bytes)));
  slab.copy(next, 0, start, position);
  slab = next;
  start = 0;
  position = written;
}

/** A CBOR head: major type and argument in the fewest bytes (room for 5 must have been made). */
function head(major: number, argument: number): void {
  const type = major << 5;
  if (argument < 24) {
    slab[position++] = type | argument;
  } else if (argument < 0x100) {
    slab[position++] = type | 24;
    slab[position++] = argument;
  } else if (argument < 0x10000) {
    slab[position++] = type | 25;
    slab[position++] = argument >>> 8;
    slab[position++] = argument & 0xff;
  } else {
    slab[position++] = type | 26;
    slab[position++] = argument >>> 24;
    slab[position++] = (argument >>> 16) & 0xff;
    slab[position++] = (argument >>> 8) & 0xff;
    slab[position++] = argument & 0xff;
  }
}

/** Writes an ASCII string; false (nothing written) when it holds anything else. */
function ascii(text: string): boolean {
  const length = text.length;
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  room(length + 5);
  head(3, length);
  for (let i = 0; i < length; i++) slab[position++] = text.charCodeAt(i);
  return true;
}

/** Writes one value; false when it is not one this path takes (what was written is then dropped). */
function write(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      return ascii(value);
    case 'number':
      // As cbor-x chooses: integers that fit 32 bits (negative ones down to -2^32) in the
      // fewest bytes, and every other number, larger integers included (peer request ids are
      // incarnation · 2^32 + n), as a float64.
      room(9);
      if (value >>> 0 === value) head(0, value);
      else if (value >> 0 === value || (value < 0 && value >= -0x100000000 && Math.floor(value) === value)) head(1, -value - 1);
      else {
        slab[position++] = 0xfb;
        slab.writeDoubleBE(value, position);
        position += 8;
      }
      return true;
    case 'boolean':
      room(1);
      slab[position++] = value ? 0xf5 : 0xf4;
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) {
    room(1);
    slab[position++] = 0xf6;
    return true;
  }
  if (value instanceof Uint8Array) {
    room(value.length + 5);
    head(2, value.length);
    slab.set(value, position);
    position += value.length;
    return true;
  }
  if (depth >= DEPTH_MAX) return false;
  if (Array.isArray(value)) {
    room(5);
    head(4, value.length);
    for (let i = 0; i < value.length; i++) if (!write(value[i], depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  const record = value as Record<string, unknown>;
  let keys = 0;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) return false;
    keys++;
  }
  room(5);
  head(5, keys);
  for (const key in record) {
    const field = record[key];
    // cbor-x writes undefined as its own simple value; left to it.
    if (field === undefined || !ascii(key) || !write(field, depth + 1)) return false;
  }
  return true;
}

/** The CBOR bytes of a plain value, as cbor.ts's cbor-x encoder writes them; undefined when this path does not take it. */
export function encodePlain(value: unknown): Uint8Array | undefined {
  start = position;
  if (!write(value, 0)) {
    position = start;
    return undefined;
  }
  const bytes = new Uint8Array(slab.buffer, slab.byteOffset + start, position - start);
  // A slab grown for one large value is left to it, so later small ones do not pin it; a
  // nearly full one is left to the values it holds.
  if (slab.length > SLAB_BYTES || slab.length - position < 1024) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    position = 0;
  }
  return bytes;
}
