import type { Metric } from "prom-client";
import { TallySeriesSet, type TallySample } from "./tally-series.js";

/** One label set's count: what a call site keeps and increments. */
export class TallyCounterSeries {
  value = 0;

  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(by = 1): void {
    this.value += by;
  }
}

/**
 * A counter whose `inc` adds to a number, for what is counted once per call on the write
 * path: prom-client's counter validates and hashes the labels of each increment. A call
 * site binds its label set once (`labels`) and keeps the series. Registered in a
 * prom-client registry like any metric.
 */
export class TallyCounter {
  readonly type = "counter";
  private readonly series: TallySeriesSet<TallyCounterSeries>;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
  ) {
    this.series = new TallySeriesSet(labelNames, (labels) => new TallyCounterSeries(labels));
  }

  /** The series of these label values, in the order of the label names; made on first use. */
  labels(...values: string[]): TallyCounterSeries {
    return this.series.labels(values);
  }

  /** What prom-client's registry reads when it scrapes. */
  async get(): Promise<{ name: string; help: string; type: "counter"; values: TallySample[]; aggregator: "sum" }> {
    const values = [...this.series.values()].map((series) => ({ labels: series.labels, value: series.value }));
    return { name: this.name, help: this.help, type: "counter", values, aggregator: "sum" };
  }

  /** The registry's view of it: prom-client's Metric type, which it reads only through `name` and `get`. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
