/**
 * A log-linear latency histogram in the manner of HdrHistogram, small enough to read.
 *
 * Values are whole microseconds. Below `LINEAR_US` (256 µs) every microsecond has its own
 * bucket. Above it each power of two is split into `SUB_BUCKETS` (128) equal buckets, so a
 * bucket is at most 1/128 of its lower bound wide: every recorded value is known to within
 * 0.8%, whatever its magnitude, in a fixed array of a few thousand counters. Percentiles
 * report the highest value of the bucket that holds the wanted rank (HdrHistogram's
 * "highest equivalent value"), so they never understate a latency.
 *
 * Percentiles are nearest-rank: p99 of n samples is the ⌈0.99 · n⌉-th smallest.
 */

/** Values below this are counted exactly, one bucket per microsecond. */
const LINEAR_US = 256;
/** Buckets per power of two above LINEAR_US: 128 gives a bucket width of at most 0.8% of its value. */
const SUB_BUCKETS = 128;
const SUB_BITS = 7;
/** Largest value kept apart: 2^32 - 1 µs is about 71 minutes; anything above is clamped to it. */
const VALUE_US_MAX = 2 ** 32 - 1;
/** Powers of two between LINEAR_US (2^8) and 2^32. */
const OCTAVES = 32 - 8;
const BUCKETS = LINEAR_US + OCTAVES * SUB_BUCKETS;

function bucketOf(valueUs: number): number {
  if (valueUs < LINEAR_US) return valueUs;
  const v = Math.min(valueUs, VALUE_US_MAX) >>> 0;
  // v lies in [2^k, 2^(k+1)) with k ≥ 8; shifting right by k - 7 leaves a mantissa in [128, 256).
  const k = 31 - Math.clz32(v);
  const mantissa = v >>> (k - SUB_BITS);
  return LINEAR_US + (k - 8) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
}

/** The highest value, in microseconds, that falls into `bucket`. */
function highestOf(bucket: number): number {
  if (bucket < LINEAR_US) return bucket;
  const octave = Math.floor((bucket - LINEAR_US) / SUB_BUCKETS);
  const sub = (bucket - LINEAR_US) % SUB_BUCKETS;
  const width = 2 ** (octave + 8 - SUB_BITS);
  return (SUB_BUCKETS + sub) * width + width - 1;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sumUs = 0;
  private minUs = Infinity;
  private maxUs = 0;

  /** A histogram that came from another process as a plain object (structured clone keeps the fields, not the class). */
  static revive(data: Histogram): Histogram {
    return Object.assign(new Histogram(), data);
  }

  /** Records one latency given in milliseconds (fractions allowed). */
  recordMs(ms: number): void {
    const us = Math.min(VALUE_US_MAX, Math.max(0, Math.round(ms * 1000)));
    this.counts[bucketOf(us)]! += 1;
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** Adds every sample of `other` to this histogram. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  /** The p-th percentile in milliseconds (nearest rank), or NaN when nothing was recorded. */
  percentileMs(p: number): number {
    if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestOf(i), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  get meanMs(): number {
    return this.count === 0 ? NaN : this.sumUs / this.count / 1000;
  }

  get maxMs(): number {
    return this.count === 0 ? NaN : this.maxUs / 1000;
  }

  get minMs(): number {
    return this.count === 0 ? NaN : this.minUs / 1000;
  }
}
