/**
 * A copy's digest: what it holds, without its values. Per actor, its counter and how many
 * live siblings it keeps. A clock's counter says every event of that actor up to it was seen,
 * and its live siblings are the newest of those events, so two copies with equal digests hold
 * the same dots, and a dot names one write: they hold the same object. Nodes compare digests
 * in coordinated reads, and the SDK in paired ones.
 */

export type ObjectDigest = readonly (readonly [actor: string, counter: number, siblings: number])[];

export function sameDigest(a: ObjectDigest, b: ObjectDigest): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ObjectDigest[number];
    const y = b[i] as ObjectDigest[number];
    if (x[0] !== y[0] || x[1] !== y[1] || x[2] !== y[2]) return false;
  }
  return true;
}
