/**
 * The storage key layouts the benchmark servers use.
 *
 * `tokenKey` is Chorus's layout, `murmur3(bucket ‖ 0 ‖ key) ‖ bucket ‖ 0 ‖ key`: keys sorted by
 * ring token, so a token range is one LMDB scan. `plainKey` is `bucket ‖ 0 ‖ key`. The layout
 * matters to LMDB: token order scatters a batch of new keys over many pages, each rewritten at
 * commit, where sequential keys append to a few.
 */

import murmur from 'murmurhash3js-revisited';

export function plainKey(bucket: string, key: string): Buffer {
  return Buffer.from(`${bucket}\0${key}`);
}

export function tokenKey(bucket: string, key: string): Buffer {
  const name = plainKey(bucket, key);
  const out = Buffer.allocUnsafe(4 + name.length);
  out.writeUInt32BE(murmur.x86.hash32(name) as number, 0);
  name.copy(out, 4);
  return out;
}
