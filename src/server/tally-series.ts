/** A line of a metric as prom-client's registry formats it. */
export interface TallySample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** The key of a label set: the values joined by a character no label value of ours holds. */
export function seriesKey(values: readonly string[]): string {
  return values.join("\u0000");
}
