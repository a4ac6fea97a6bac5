/**
 * Summaries of measurements taken over several seeded runs.
 *
 * Percentiles are nearest-rank: the p-th percentile of n samples is the ⌈p/100 · n⌉-th
 * smallest, so p99 of fewer than 100 samples is the largest one, never an interpolation
 * below what was measured.
 */

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('mean of no samples');
  return samples.reduce((sum, x) => sum + x, 0) / samples.length;
}

/** A number rounded to `digits` decimals, for printing. */
export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
