/** UTF-8 helpers shared by the core and the SDK. */

/** The UTF-8 byte length of a string, without allocating its encoding. */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3; // BMP character, or a lone surrogate, which TextEncoder writes as U+FFFD (3 bytes).
  }
  return bytes;
}

/** Whether a string is well-formed UTF-16 (no lone surrogates), so UTF-8 can represent it exactly. */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
