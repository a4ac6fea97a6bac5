/**
 * YCSB's core workloads A, B and C, and the key chooser they use.
 *
 * The key chooser is YCSB's `ScrambledZipfianGenerator` (Cooper et al., "Benchmarking Cloud
 * Serving Systems with YCSB", SoCC 2010; the generator is Gray et al., "Quickly Generating
 * Billion-Record Synthetic Databases", SIGMOD 1994): a zipfian draw with constant 0.99 over
 * 10^10 items, whose zeta is precomputed, hashed with 64-bit FNV-1a and taken modulo the record
 * count. Popular items are therefore scattered over the key space rather than clustered at
 * its start, and the popularity curve does not depend on the record count. Each key number
 * maps to the key `user<number>`.
 *
 * Randomness comes from the seeded `Prng`, with 53-bit uniform doubles as Java's
 * `nextDouble` gives, so a run repeats from its seed.
 */

import { Prng } from '../../lib/base/prng.js';

export interface Workload {
  readonly name: string;
  /** Fraction of operations that are reads; the rest are updates (blind writes of a whole value). */
  readonly readProportion: number;
  readonly description: string;
}

export const WORKLOADS: Readonly<Record<string, Workload>> = {
  A: { name: 'A', readProportion: 0.5, description: 'update heavy: 50% reads, 50% updates' },
  B: { name: 'B', readProportion: 0.95, description: 'read mostly: 95% reads, 5% updates' },
  C: { name: 'C', readProportion: 1, description: 'read only: 100% reads' },
};

/** YCSB's default zipfian constant. */
export const ZIPFIAN_CONSTANT = 0.99;
/** Items the scrambled generator draws from before hashing (YCSB `ScrambledZipfianGenerator.ITEM_COUNT`). */
const SCRAMBLED_ITEMS = 10_000_000_000;
/** zeta(SCRAMBLED_ITEMS, 0.99), as YCSB precomputes it: summing 10^10 terms at start-up would take minutes. */
const SCRAMBLED_ZETAN = 26.46902820178302;

const FNV_OFFSET_BASIS_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 1099511628211n;

/** YCSB's `Utils.fnvhash64`: FNV-1a over the 8 little-endian bytes, as a non-negative signed long. */
export function fnvhash64(value: number): bigint {
  let rest = BigInt(value);
  let hash = FNV_OFFSET_BASIS_64;
  for (let i = 0; i < 8; i++) {
    hash ^= rest & 0xffn;
    rest >>= 8n;
    hash = BigInt.asUintN(64, hash * FNV_PRIME_64);
  }
  const signed = BigInt.asIntN(64, hash);
  return signed < 0n ? -signed : signed;
}

function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / i ** theta;
  return sum;
}

/** A uniform double in [0, 1) with 53 random bits. */
function nextDouble(prng: Prng): number {
  return ((prng.nextUint32() >>> 5) * 67108864 + (prng.nextUint32() >>> 6)) / 9007199254740992;
}

/** YCSB's `ZipfianGenerator.nextLong` over [0, items), item 0 the most popular. */
class Zipfian {
  private readonly alpha: number;
  private readonly eta: number;
  private readonly halfPowTheta: number;

  constructor(
    private readonly items: number,
    private readonly theta: number,
    private readonly zetan: number,
  ) {
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - (2 / items) ** (1 - theta)) / (1 - zeta(2, theta) / zetan);
    this.halfPowTheta = 0.5 ** theta;
  }

  next(prng: Prng): number {
    const u = nextDouble(prng);
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < 1 + this.halfPowTheta) return 1;
    return Math.floor(this.items * (this.eta * u - this.eta + 1) ** this.alpha);
  }
}

/** YCSB's `ScrambledZipfianGenerator` over [0, records). */
export class ScrambledZipfian {
  private readonly zipfian = new Zipfian(SCRAMBLED_ITEMS + 1, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN);
  private readonly records: bigint;

  constructor(records: number) {
    this.records = BigInt(records);
  }

  next(prng: Prng): number {
    return Number(fnvhash64(this.zipfian.next(prng)) % this.records);
  }
}

export function keyName(keyNumber: number): string {
  return `user${keyNumber}`;
}

export type OpKind = 'read' | 'update';

/** One client's stream of operations: which kind, on which key. */
export class OpStream {
  private readonly chooser: ScrambledZipfian;

  constructor(
    private readonly workload: Workload,
    records: number,
    private readonly prng: Prng,
  ) {
    this.chooser = new ScrambledZipfian(records);
  }

  next(): { kind: OpKind; key: string } {
    const kind: OpKind = nextDouble(this.prng) < this.workload.readProportion ? 'read' : 'update';
    return { kind, key: keyName(this.chooser.next(this.prng)) };
  }
}
