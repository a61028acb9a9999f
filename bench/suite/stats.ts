/** Middle value of a list (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** a / b, NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? NaN : a / b;
}

/**
 * Latencies in 0.1 ms buckets up to 60 s: millions of samples cost one array increment
 * each, which matters when the load generator's own CPU bounds what it can measure.
 */
export class LatencyHistogram {
  private readonly buckets = new Uint32Array(600_000);
  count = 0;

  add(ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.max(0, Math.round(ms * 10)))]++;
    this.count++;
  }

  /** The latency (ms) that p percent of the samples do not exceed; NaN without samples. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let bucket = 0; bucket < this.buckets.length; bucket++) {
      seen += this.buckets[bucket];
      if (seen >= rank) return bucket / 10;
    }
    return NaN;
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
  }
}
