import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { TallyCounter } from "../src/server/tally-counter.js";
import { TallyHistogram } from "../src/server/tally-histogram.js";

const BUCKETS = [0.001, 0.01, 0.1, 1];
/** Values on, between, below and beyond the bounds. */
const OBSERVED = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 3, 42];

/** Both registries' exposition, a metric registered in each the same way. */
async function expositions(register: (registry: Registry) => void, registerTally: (registry: Registry) => void): Promise<[string, string]> {
  const reference = new Registry();
  register(reference);
  const tally = new Registry();
  registerTally(tally);
  return [await reference.metrics(), await tally.metrics()];
}

describe("tally metrics: the same exposition as prom-client's own metrics", () => {
  it("a histogram with labels, several series", async () => {
    const [reference, tally] = await expositions(
      (registry) => {
        const histogram = new Histogram({ name: "h_seconds", help: "a histogram", labelNames: ["method", "protocol"], buckets: BUCKETS, registers: [registry] });
        OBSERVED.forEach((value, i) => histogram.labels(i % 2 ? "Set" : "Get", "grpc").observe(value));
        histogram.labels("Set", "connect").observe(0.2);
      },
      (registry) => {
        const histogram = new TallyHistogram("h_seconds", "a histogram", BUCKETS, ["method", "protocol"]);
        registry.registerMetric(histogram.asMetric());
        OBSERVED.forEach((value, i) => histogram.labels(i % 2 ? "Set" : "Get", "grpc").observe(value));
        histogram.labels("Set", "connect").observe(0.2);
      },
    );
    expect(tally).toBe(reference);
    expect(tally).toContain('h_seconds_bucket{le="+Inf",method="Set",protocol="connect"} 1');
  });

  it("a histogram without labels", async () => {
    const [reference, tally] = await expositions(
      (registry) => {
        const histogram = new Histogram({ name: "lag_seconds", help: "lag", buckets: BUCKETS, registers: [registry] });
        for (const value of OBSERVED) histogram.observe(value);
      },
      (registry) => {
        const histogram = new TallyHistogram("lag_seconds", "lag", BUCKETS);
        registry.registerMetric(histogram.asMetric());
        for (const value of OBSERVED) histogram.observe(value);
      },
    );
    expect(tally).toBe(reference);
  });

  it("a counter with labels; a series bound once keeps counting", async () => {
    const [reference, tally] = await expositions(
      (registry) => {
        const counter = new Counter({ name: "calls_total", help: "calls", labelNames: ["method", "code"], registers: [registry] });
        counter.labels("Set", "ok").inc();
        counter.labels("Set", "ok").inc(2);
        counter.labels("Get", "not_found").inc();
      },
      (registry) => {
        const counter = new TallyCounter("calls_total", "calls", ["method", "code"]);
        registry.registerMetric(counter.asMetric());
        const bound = counter.labels("Set", "ok");
        bound.inc();
        counter.labels("Set", "ok").inc(2);
        counter.labels("Get", "not_found").inc();
      },
    );
    expect(tally).toBe(reference);
    expect(tally).toContain('calls_total{method="Set",code="ok"} 3');
  });

  it("label values that need escaping, and a value that joins like two", async () => {
    const [reference, tally] = await expositions(
      (registry) => {
        const counter = new Counter({ name: "odd_total", help: "odd", labelNames: ["a", "b"], registers: [registry] });
        counter.labels('quo"te\\', "new\nline").inc();
        counter.labels("x", "").inc();
        counter.labels("", "x").inc();
      },
      (registry) => {
        const counter = new TallyCounter("odd_total", "odd", ["a", "b"]);
        registry.registerMetric(counter.asMetric());
        counter.labels('quo"te\\', "new\nline").inc();
        counter.labels("x", "").inc();
        counter.labels("", "x").inc();
      },
    );
    expect(tally).toBe(reference);
  });

  it("nothing observed: the help and type lines only, as prom-client writes them", async () => {
    const [reference, tally] = await expositions(
      (registry) => void new Histogram({ name: "idle_seconds", help: "idle", labelNames: ["adapter"], buckets: BUCKETS, registers: [registry] }),
      (registry) => registry.registerMetric(new TallyHistogram("idle_seconds", "idle", BUCKETS, ["adapter"]).asMetric()),
    );
    expect(tally).toBe(reference);
  });
});
