/**
 * The connection handshake, shared by the node's server side, its peer dialer and the SDK.
 *
 * The connector sends `hello` (role, protocol range, cluster name, its node id when it is a
 * peer, a fresh nonce). The acceptor checks the cluster name and version range, answers
 * `welcome` (chosen version, its own id, its nonce, and, when a secret is configured, an
 * HMAC over the connector's nonce proving it knows the secret). When the acceptor requires
 * it, the connector answers `auth` with an HMAC over the acceptor's nonce; the acceptor
 * replies `ready`. Each proof is bound to its direction and to both nonces, so a proof
 * cannot be replayed on another connection or reflected back.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from './messages.js';

export type ProofDirection = 'acceptor' | 'connector';

export function makeProof(secret: string, direction: ProofDirection, ownNonce: Uint8Array, otherNonce: Uint8Array): Uint8Array {
  const mac = createHmac('sha256', secret);
  mac.update(`chorus-handshake/${direction}/`);
  mac.update(ownNonce);
  mac.update(otherNonce);
  return new Uint8Array(mac.digest());
}

export function verifyProof(
  secret: string,
  direction: ProofDirection,
  proof: Uint8Array,
  proverNonce: Uint8Array,
  verifierNonce: Uint8Array,
): boolean {
  const expected = makeProof(secret, direction, proverNonce, verifierNonce);
  return proof.byteLength === expected.byteLength && timingSafeEqual(proof, expected);
}

/**
 * The highest version both ranges contain, or undefined when they do not overlap; `ownMax`
 * caps this side's range (an acceptor offering an older protocol).
 */
export function negotiateVersion(vmin: number, vmax: number, ownMax = PROTOCOL_VERSION_MAX): number | undefined {
  const low = Math.max(vmin, PROTOCOL_VERSION_MIN);
  const high = Math.min(vmax, ownMax);
  return low <= high ? high : undefined;
}
