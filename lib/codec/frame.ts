/**
 * Frames: a CBOR array of messages, everything queued for one connection in one turn.
 *
 * Messages are encoded one by one and concatenated under a CBOR array header, so a batch
 * can be split into several frames, each under the connection's size limit, without
 * encoding anything twice. Decoding goes through the safe decoder (bounded depth and
 * items, no tags) and then the strict message schema; it never throws.
 */

import type { z } from 'zod';
import { FRAME_MESSAGES_MAX } from '../base/limits.js';
import { decodeSafe, encode } from './cbor.js';
import { parseFrame, type ParseResult } from './messages.js';

/** Bytes of the largest CBOR array header (major type 4 with a 4-byte count). */
const ARRAY_HEADER_BYTES_MAX = 5;

function arrayHeader(count: number): Uint8Array {
  if (count < 24) return Uint8Array.of(0x80 | count);
  if (count < 0x100) return Uint8Array.of(0x98, count);
  if (count < 0x10000) return Uint8Array.of(0x99, count >> 8, count & 0xff);
  return Uint8Array.of(0x9a, (count >>> 24) & 0xff, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff);
}

function assemble(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  const header = arrayHeader(parts.length);
  const frame = new Uint8Array(header.byteLength + bytes);
  frame.set(header, 0);
  let at = header.byteLength;
  for (const part of parts) {
    frame.set(part, at);
    at += part.byteLength;
  }
  return frame;
}

/** Encodes one message on its own, for a caller that wants to size it before batching. */
export function encodeMessage(message: unknown): Uint8Array {
  return encode(message);
}

/**
 * Packs encoded messages into as few frames as fit under `frameBytesMax` (and
 * FRAME_MESSAGES_MAX messages each). A single message larger than the limit still gets a
 * frame of its own: the receiver refuses it, which is the right outcome for the sender.
 */
export function packFrames(encoded: readonly Uint8Array[], frameBytesMax: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let parts: Uint8Array[] = [];
  let bytes = 0;
  for (const message of encoded) {
    const full = parts.length >= FRAME_MESSAGES_MAX || bytes + message.byteLength + ARRAY_HEADER_BYTES_MAX > frameBytesMax;
    if (parts.length > 0 && full) {
      frames.push(assemble(parts, bytes));
      parts = [];
      bytes = 0;
    }
    parts.push(message);
    bytes += message.byteLength;
  }
  if (parts.length > 0) frames.push(assemble(parts, bytes));
  return frames;
}

export function encodeFrame(messages: readonly unknown[]): Uint8Array {
  const encoded = messages.map((m) => encode(m));
  return assemble(encoded, encoded.reduce((sum, m) => sum + m.byteLength, 0));
}

/** Decodes and validates a frame of messages of one schema; never throws. */
export function decodeFrame<T>(bytes: Uint8Array, schema: z.ZodType<T>): ParseResult<T[]> {
  const decoded = decodeSafe(bytes);
  if (!decoded.ok) return { ok: false, reason: `malformed frame: ${decoded.reason}` };
  return parseFrame(schema, decoded.value);
}
