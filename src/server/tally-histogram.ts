import type { Metric } from "prom-client";

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram without labels whose `observe` is a few array operations, for what is
 * observed on the fan-out path (once per socket write). prom-client's own histogram
 * validates and hashes its labels on every observation, about a microsecond, which with
 * one subscriber per connection is a tenth of a delivery's whole cost. Registered in a
 * prom-client registry like any metric; its buckets are made cumulative when scraped.
 */
export class TallyHistogram {
  readonly type = "histogram";
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(value: number): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > buckets[i]) i++;
    // Beyond the last bound: counted in +Inf (the count) only.
    if (i < buckets.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** What prom-client's registry reads when it scrapes. */
  async get(): Promise<{ name: string; help: string; type: "histogram"; values: Sample[]; aggregator: "sum" }> {
    const values: Sample[] = [];
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += this.counts[i];
      values.push({ metricName: `${this.name}_bucket`, labels: { le: bound }, value: cumulative });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf" }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: "histogram", values, aggregator: "sum" };
  }

  /** The registry's view of it: prom-client's Metric type, which it reads only through `name` and `get`. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
