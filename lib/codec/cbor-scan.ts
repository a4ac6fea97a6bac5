/**
 * A structural validator for one CBOR data item (RFC 8949), run before anything is decoded.
 *
 * cbor-x decodes by recursing once per nesting level, so a few kilobytes of nested arrays
 * overflow the stack; it also turns tags into Dates, Sets, RegExps, Errors, typed arrays and
 * record structures. `scanCbor` walks the bytes first and says whether they are safe to hand
 * to cbor-x: exactly one well-formed item covering the whole buffer, nested no deeper than
 * `depthMax`, with at most `itemsMax` array elements plus map entries, and only plain data.
 *
 * Design. The walk is iterative: open arrays, maps and tags live on an explicit stack of
 * typed arrays (never deeper than `depthMax`), so hostile nesting costs a reason string, not
 * a stack overflow. Every declared length is compared with the bytes that remain before it is
 * trusted (an element takes at least one byte, a map entry two), so a tiny frame claiming a
 * 2^60-element array fails at its header. The hot loop reads bytes by hand and allocates
 * nothing per item: text strings are checked byte by byte and only non-ASCII ones go through
 * a fatal `TextDecoder`; duplicate map keys are found by comparing key bytes (valid UTF-8
 * has exactly one encoding per string) until a map grows past `SMALL_MAP_KEYS`, when its
 * keys move to a `Set`.
 *
 * Rules for wire frames (the defaults): no tags, no indefinite lengths (cbor-x never emits
 * them with our options), integers within the safe range, map keys that are text strings,
 * unique and never `__proto__`, simple values false/true/null/undefined only, floats of any
 * width. User values relax three of these, each by its own flag: tags (a Date is tag 1),
 * 64-bit integers beyond the safe range (cbor-x writes a bigint that way and decodes it back
 * to a bigint) and keys that are not text (a `Map` is written as tag 259 over a map with
 * keys of any type). Even then the tags that make cbor-x keep state between items (records,
 * packed tables, bundled strings, shared values) are refused: our encoder never writes them.
 *
 * Invariants: never throws on any input, never recurses, work linear in the input bytes.
 */

import { assert } from '../base/assert.js';

export interface ScanLimits {
  /** Arrays, maps and tags open at once; a top-level array is at depth 1. */
  readonly depthMax: number;
  /** Array elements plus map entries in the whole item. */
  readonly itemsMax: number;
  /** Accept tags other than cbor-x's stateful ones. Wire frames carry none. */
  readonly allowTags?: boolean;
  /** Accept 64-bit integers beyond the safe range, which cbor-x decodes to bigints. */
  readonly allowBigInts?: boolean;
  /** Accept map keys of any type; duplicate and `__proto__` checks still apply to text keys. */
  readonly allowNonTextKeys?: boolean;
}

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;

const KIND_ARRAY = 0;
const KIND_MAP = 1;
const KIND_TAG = 2;

/** Keys per map compared pairwise; beyond it a Set keeps duplicate detection linear. */
const SMALL_MAP_KEYS = 16;

/** UTF-8 bytes of "__proto__": a key that would set an object's prototype if ever assigned. */
const PROTO_KEY = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f];

const UINT32_LIMIT = 0x1_0000_0000;

/**
 * Validates UTF-8 and turns keys of large maps into strings. `ignoreBOM` keeps a leading
 * U+FEFF, which would otherwise be stripped and make "\uFEFFa" and "a" look like duplicates.
 */
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// The scan is synchronous and never re-entered, so one set of scratch buffers serves every
// call. They grow to the deepest nesting and the most open keys any scan has met (16 frames
// for a wire frame, 256 for a user value) and are the only memory kept between calls.
let frameKinds = new Uint8Array(32);
/**
 * Items still to read in each open frame: elements, twice the entries of a map, 1 for a tag.
 * A count never exceeds the bytes left after its header, so it fits 32 bits.
 */
let frameLeft = new Uint32Array(32);
/** Index into the key stack where each open map's keys begin. */
let frameKeyBase = new Int32Array(32);
/** 1 where an open map's keys moved to a Set; checked first so the Set array is rarely read. */
let frameHasKeySet = new Uint8Array(32);
/** Keys of open maps that outgrew pairwise comparison; cleared when a scan ends. */
const frameKeySets: (Set<string> | undefined)[] = [];
let keySetsOpen = 0;
/** Byte offset and length of every text key of every open small map, innermost last. */
let keyOffsets = new Uint32Array(64);
let keyLengths = new Uint32Array(64);
let keyTop = 0;

/**
 * Returns undefined when `bytes` hold exactly one acceptable CBOR item, otherwise a short
 * reason. Never throws on any bytes; negative limits are a caller's bug and assert.
 */
export function scanCbor(bytes: Uint8Array, limits: ScanLimits): string | undefined {
  assert(limits.depthMax >= 0 && limits.itemsMax >= 0, 'scan limits must not be negative');
  keyTop = 0;
  try {
    return scanItems(bytes, limits);
  } finally {
    if (keySetsOpen > 0) releaseKeySets();
  }
}

/** The walk itself: one header per turn, then close every frame the item completed. */
function scanItems(bytes: Uint8Array, limits: ScanLimits): string | undefined {
  const end = bytes.length;
  const { depthMax, itemsMax } = limits;
  const allowTags = limits.allowTags === true;
  const allowBigInts = limits.allowBigInts === true;
  const allowNonTextKeys = limits.allowNonTextKeys === true;
  let pos = 0;
  let depth = 0;
  let items = 0;
  for (;;) {
    if (pos >= end) return 'truncated';
    const initial = bytes[pos++]!;
    const major = initial >>> 5;
    const info = initial & 0x1f;
    if (info >= 28) return badInfo(major, info);
    const size = info < 24 ? 0 : 1 << (info - 24);
    if (end - pos < size) return 'truncated';
    const top = depth - 1;
    const isKey = depth > 0 && frameKinds[top] === KIND_MAP && (frameLeft[top]! & 1) === 0;
    if (isKey && major !== MAJOR_TEXT && !allowNonTextKeys) return 'map key is not a text string';
    if (major === 7) {
      if (info < 20 || info === 24) return 'invalid simple value';
      pos += size;
    } else {
      const arg = readArgument(bytes, pos, info);
      pos += size;
      const left = end - pos;
      if (major === MAJOR_UNSIGNED || major === MAJOR_NEGATIVE) {
        if (!allowBigInts && arg > Number.MAX_SAFE_INTEGER - major) return 'integer outside the safe range';
      } else if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
        if (arg > left) return 'length exceeds buffer';
        if (major === MAJOR_TEXT) {
          if (!isUtf8(bytes, pos, arg)) return 'text string is not valid UTF-8';
          if (isKey) {
            const reason = checkTextKey(bytes, pos, arg, top);
            if (reason !== undefined) return reason;
          }
        }
        pos += arg;
      } else {
        if (major === MAJOR_ARRAY ? arg > left : major === MAJOR_MAP ? arg > left / 2 : false) {
          return 'length exceeds buffer';
        }
        if (depth >= depthMax) return `nesting deeper than ${depthMax}`;
        if (major === MAJOR_TAG) {
          if (!allowTags || isStatefulTag(arg)) return `tag ${arg} not allowed`;
          pushFrame(depth++, KIND_TAG, 1);
          continue;
        }
        if (arg > itemsMax - items) return 'too many items';
        items += arg;
        if (arg > 0) {
          if (major === MAJOR_MAP) pushFrame(depth++, KIND_MAP, arg * 2);
          else pushFrame(depth++, KIND_ARRAY, arg);
          continue;
        }
      }
    }
    depth = closeCompleted(depth);
    if (depth === 0) return pos === end ? undefined : 'trailing bytes';
  }
}

/** Counts one finished item against each open frame, closing those it completes. */
function closeCompleted(depth: number): number {
  while (depth > 0) {
    const top = depth - 1;
    const left = frameLeft[top]! - 1;
    frameLeft[top] = left;
    if (left > 0) return depth;
    if (frameKinds[top] === KIND_MAP) closeMap(top);
    depth = top;
  }
  return 0;
}

/** The value of a header's argument; lengths past 2^53 lose precision but stay past any buffer. */
function readArgument(bytes: Uint8Array, pos: number, info: number): number {
  if (info < 24) return info;
  if (info === 24) return bytes[pos]!;
  if (info === 25) return (bytes[pos]! << 8) | bytes[pos + 1]!;
  if (info === 26) return readUint32(bytes, pos);
  return readUint32(bytes, pos) * UINT32_LIMIT + readUint32(bytes, pos + 4);
}

function readUint32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!) >>> 0;
}

/** The reason for additional info 28 to 31, none of which we accept. */
function badInfo(major: number, info: number): string {
  if (info < 31) return `reserved additional info ${info}`;
  switch (major) {
    case MAJOR_BYTES:
      return 'indefinite-length byte string not allowed';
    case MAJOR_TEXT:
      return 'indefinite-length text string not allowed';
    case MAJOR_ARRAY:
      return 'indefinite-length array not allowed';
    case MAJOR_MAP:
      return 'indefinite-length map not allowed';
    case 7:
      return 'unexpected break';
    default:
      return `additional info 31 is not valid for major type ${major}`;
  }
}

/**
 * Tags that make cbor-x read or keep state beyond the tagged item: value sharing (28, 29),
 * packed CBOR (6, 51 and the prefix/suffix ranges), bundled strings (14, 15), records (105
 * and 0xdff9 up to 0xffff) and its shared-data tag. Tag numbers past 32 bits cbor-x cannot
 * read at all.
 */
function isStatefulTag(tag: number): boolean {
  return (
    tag === 6 ||
    tag === 14 ||
    tag === 15 ||
    tag === 28 ||
    tag === 29 ||
    tag === 51 ||
    tag === 105 ||
    (tag >= 216 && tag <= 255) ||
    (tag >= 27647 && tag <= 32767) ||
    (tag >= 0xdff9 && tag <= 0xffff) ||
    tag === 0x53687264 ||
    (tag >= 1811940352 && tag <= 2147483647) ||
    tag >= UINT32_LIMIT
  );
}

/** ASCII is checked inline; the first byte above 0x7f hands the rest to the fatal decoder. */
function isUtf8(bytes: Uint8Array, start: number, length: number): boolean {
  const stop = start + length;
  for (let i = start; i < stop; i++) {
    if (bytes[i]! >= 0x80) return isUtf8Strict(bytes.subarray(i, stop));
  }
  return true;
}

function isUtf8Strict(bytes: Uint8Array): boolean {
  try {
    utf8Fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Refuses `__proto__` and a key the map already holds; otherwise records the key. */
function checkTextKey(bytes: Uint8Array, start: number, length: number, top: number): string | undefined {
  if (length === PROTO_KEY.length && isProtoKey(bytes, start)) return 'map key __proto__ not allowed';
  if (frameHasKeySet[top] === 1) return addToSet(frameKeySets[top]!, bytes, start, length);
  const base = frameKeyBase[top]!;
  for (let k = base; k < keyTop; k++) {
    if (keyLengths[k] === length && bytesEqual(bytes, keyOffsets[k]!, start, length)) return 'duplicate map key';
  }
  if (keyTop - base >= SMALL_MAP_KEYS) return moveKeysToSet(bytes, start, length, top);
  pushKey(start, length);
  return undefined;
}

function isProtoKey(bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < PROTO_KEY.length; i++) {
    if (bytes[start + i] !== PROTO_KEY[i]) return false;
  }
  return true;
}

function bytesEqual(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) {
    if (bytes[a + i] !== bytes[b + i]) return false;
  }
  return true;
}

function addToSet(set: Set<string>, bytes: Uint8Array, start: number, length: number): string | undefined {
  const key = utf8Fatal.decode(bytes.subarray(start, start + length));
  if (set.has(key)) return 'duplicate map key';
  set.add(key);
  return undefined;
}

/** A map outgrew pairwise comparison: its keys so far, and this one, move into a Set. */
function moveKeysToSet(bytes: Uint8Array, start: number, length: number, top: number): undefined {
  const base = frameKeyBase[top]!;
  const set = new Set<string>();
  for (let k = base; k < keyTop; k++) {
    const offset = keyOffsets[k]!;
    set.add(utf8Fatal.decode(bytes.subarray(offset, offset + keyLengths[k]!)));
  }
  set.add(utf8Fatal.decode(bytes.subarray(start, start + length)));
  keyTop = base;
  frameKeySets[top] = set;
  frameHasKeySet[top] = 1;
  keySetsOpen++;
  return undefined;
}

function closeMap(top: number): void {
  keyTop = frameKeyBase[top]!;
  if (frameHasKeySet[top] === 1) {
    frameKeySets[top] = undefined;
    frameHasKeySet[top] = 0;
    keySetsOpen--;
  }
}

function releaseKeySets(): void {
  frameKeySets.fill(undefined);
  frameHasKeySet.fill(0);
  keySetsOpen = 0;
}

function pushFrame(index: number, kind: number, left: number): void {
  if (index >= frameKinds.length) growFrames(index + 1);
  frameKinds[index] = kind;
  frameLeft[index] = left;
  frameKeyBase[index] = keyTop;
  frameHasKeySet[index] = 0;
}

function growFrames(needed: number): void {
  const capacity = Math.max(needed, frameKinds.length * 2);
  const kinds = new Uint8Array(capacity);
  const left = new Uint32Array(capacity);
  const keyBase = new Int32Array(capacity);
  const hasKeySet = new Uint8Array(capacity);
  kinds.set(frameKinds);
  left.set(frameLeft);
  keyBase.set(frameKeyBase);
  hasKeySet.set(frameHasKeySet);
  frameKinds = kinds;
  frameLeft = left;
  frameKeyBase = keyBase;
  frameHasKeySet = hasKeySet;
}

function pushKey(start: number, length: number): void {
  if (keyTop >= keyOffsets.length) {
    const offsets = new Uint32Array(keyOffsets.length * 2);
    const lengths = new Uint32Array(keyLengths.length * 2);
    offsets.set(keyOffsets);
    lengths.set(keyLengths);
    keyOffsets = offsets;
    keyLengths = lengths;
  }
  keyOffsets[keyTop] = start;
  keyLengths[keyTop] = length;
  keyTop++;
}
