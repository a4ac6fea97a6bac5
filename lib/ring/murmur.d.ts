/**
 * Types for `murmurhash3js-revisited`, which ships none. Only the function Chorus uses is
 * declared: the x86 32-bit MurmurHash3 over a byte array, returning an unsigned 32-bit
 * integer (or undefined when the input is not an array of bytes).
 */
declare module 'murmurhash3js-revisited' {
  interface MurmurHash3 {
    readonly x86: {
      hash32(bytes: Uint8Array | readonly number[], seed?: number): number | undefined;
    };
  }
  const murmurHash3: MurmurHash3;
  export default murmurHash3;
}
