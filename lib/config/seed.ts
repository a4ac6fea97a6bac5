/**
 * Seed addresses: the `host:port` strings a node contacts when it starts.
 *
 * The host is a DNS name, an IPv4 address or a bracketed IPv6 address (`[::1]:7070`), the
 * port an integer 1..65535 (a seed must name a real port, so 0 is refused). One parser serves
 * the config check and the transport that dials the seeds, so both agree on what is valid.
 */

export interface SeedAddress {
  readonly host: string;
  readonly port: number;
}

/** A DNS name: dot-separated labels of letters, digits and inner hyphens; 253 characters at most (RFC 1035). */
const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6_PATTERN = /^[0-9A-Fa-f:.]{2,45}$/;
const PORT_PATTERN = /^[0-9]{1,5}$/;

/** Splits `host:port`; returns undefined when the string is not one. IPv6 hosts come back without brackets. */
export function parseSeed(seed: string): SeedAddress | undefined {
  const colon = seed.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const hostPart = seed.slice(0, colon);
  const portPart = seed.slice(colon + 1);
  if (!PORT_PATTERN.test(portPart)) return undefined;
  const port = Number(portPart);
  if (port < 1 || port > 65_535) return undefined;
  if (hostPart.startsWith('[') && hostPart.endsWith(']')) {
    const host = hostPart.slice(1, -1);
    return IPV6_PATTERN.test(host) && host.includes(':') ? { host, port } : undefined;
  }
  return HOSTNAME_PATTERN.test(hostPart) ? { host: hostPart, port } : undefined;
}

export function isSeed(seed: string): boolean {
  return parseSeed(seed) !== undefined;
}
