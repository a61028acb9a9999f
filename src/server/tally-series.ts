/** A line of a metric as prom-client's registry formats it. */
export interface TallySample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * The series of a tally metric, one per label set, made on first use: a call site binds
 * its label values once and keeps the series, so that counting hashes no labels.
 */
export class TallySeriesSet<S> {
  private readonly series = new Map<string, S>();

  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: (labels: Readonly<Record<string, string>>) => S,
  ) {}

  /** The series of these label values, in the order of the label names. */
  labels(values: readonly string[]): S {
    // Joined by a character no label value of ours holds.
    const key = values.join("\u0000");
    let series = this.series.get(key);
    if (series === undefined) {
      series = this.make(Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]])));
      this.series.set(key, series);
    }
    return series;
  }

  values(): IterableIterator<S> {
    return this.series.values();
  }
}
