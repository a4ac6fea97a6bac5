/**
 * A deliberately naive model of the ring, written independently of lib/ring/ring.ts, for
 * specs to compare against: every vnode in a plain array, the successor by linear scan, and
 * the zone rule as Cassandra's rack-aware strategy states it (take a node whose zone is new;
 * hold back the others; once every zone has a node, add the held-back nodes, then any node).
 */

import { vnodeToken, type RingMember } from '../../lib/ring/index.js';

export interface ModelVnode {
  readonly token: number;
  readonly id: string;
}

export interface ModelRing {
  readonly vnodes: readonly ModelVnode[];
  readonly zoneOf: ReadonlyMap<string, string>;
}

export function modelRing(members: readonly RingMember[], tokenOf = (m: RingMember, i: number) => vnodeToken(m.id, i)): ModelRing {
  const vnodes: ModelVnode[] = [];
  for (const m of members) for (let i = 0; i < m.vnodes; i++) vnodes.push({ token: tokenOf(m, i), id: m.id });
  vnodes.sort((a, b) => a.token - b.token || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { vnodes, zoneOf: new Map(members.map((m) => [m.id, m.zone])) };
}

/** Distinct node ids clockwise from the first vnode at or after `token`. */
export function modelWalk(ring: ModelRing, token: number): string[] {
  let start = ring.vnodes.findIndex((v) => v.token >= token);
  if (start === -1) start = 0;
  const order: string[] = [];
  for (let step = 0; step < ring.vnodes.length; step++) {
    const id = (ring.vnodes[(start + step) % ring.vnodes.length] as ModelVnode).id;
    if (!order.includes(id)) order.push(id);
  }
  return order;
}

export function modelPrimaries(ring: ModelRing, token: number, n: number): string[] {
  const walk = modelWalk(ring, token);
  const allZones = new Set(ring.zoneOf.values());
  const seenZones = new Set<string>();
  const picked = new Set<string>();
  let heldBack: string[] = [];
  for (const id of walk) {
    if (picked.size === n) break;
    const zone = ring.zoneOf.get(id) as string;
    if (seenZones.size === allZones.size) {
      picked.add(id);
    } else if (!seenZones.has(zone)) {
      picked.add(id);
      seenZones.add(zone);
      if (seenZones.size === allZones.size) {
        for (const held of heldBack) if (picked.size < n) picked.add(held);
        heldBack = [];
      }
    } else {
      heldBack.push(id);
    }
  }
  return walk.filter((id) => picked.has(id));
}

export function modelFallbacks(ring: ModelRing, token: number, n: number, count: number, alive: (id: string) => boolean): string[] {
  const primaries = modelPrimaries(ring, token, n);
  return modelWalk(ring, token)
    .filter((id) => !primaries.includes(id) && alive(id))
    .slice(0, count);
}
