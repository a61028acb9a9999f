import type { UnaryProtocol } from "../../load/jobs.js";
import { startOurs, startPeer } from "../processes.js";
import type { Scenario } from "../scenario.js";
import type { BarChart } from "../svg-chart.js";
import { ratioTarget } from "../targets.js";
import { compareUnary, measureUnary, medianCalls, PROTOCOL_LABELS, targetOf, UNARY_MEASURE_MS, UNARY_WARMUP_MS, unaryTable } from "./unary-shape.js";

const PROTOCOLS: UnaryProtocol[] = ["connect-binary-h2", "connect-json-h1", "grpc"];
const CONCURRENCIES = [16, 64];
const OURS = "iii-stream";
const CEILING = "no-op";
/** Issue 7: Set on the in-memory adapter at least 0.8x the do-nothing server. */
const THROUGHPUT_BOUND = 0.8;

export const unaryScenario: Scenario = {
  name: "unary",
  title: "Set calls/s: iii-stream (memory adapter) against a connect-node server whose Set does nothing",
  async run(options) {
    const ours = await startOurs("iii-stream", ["--adapter", "memory"]);
    const noop = await startPeer("no-op connect-node", "noop-connect-server").catch(async (error) => {
      await ours.stop();
      throw error;
    });
    try {
      const runs = await measureUnary([targetOf(OURS, [ours]), targetOf(CEILING, [noop])], PROTOCOLS, CONCURRENCIES, options);
      const comparisons = compareUnary(runs, OURS, CEILING);
      const chart: BarChart = {
        kind: "bars",
        title: "Set calls/s (median), iii-stream vs the no-op ceiling",
        unit: "calls/s",
        bars: comparisons.flatMap((c) => [
          { label: `${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency}: iii-stream`, value: medianCalls(c.subject), ours: true, system: OURS },
          { label: `${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency}: no-op`, value: medianCalls(c.baseline), system: CEILING },
        ]),
      };
      return {
        tables: [unaryTable("Set, memory adapter vs no-op ceiling (ratio = iii-stream / no-op, median of per-run ratios)", comparisons, OURS, CEILING)],
        charts: [chart],
        targets: comparisons.map((c) =>
          ratioTarget(`Set calls/s ≥ ${THROUGHPUT_BOUND}x the no-op ceiling (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.throughputRatio, THROUGHPUT_BOUND, "at least"),
        ),
        notes: [],
        config: { protocols: PROTOCOLS, concurrencies: CONCURRENCIES, warmupMs: UNARY_WARMUP_MS, measureMs: UNARY_MEASURE_MS, runs: options.runs },
        raw: runs,
      };
    } finally {
      await Promise.all([ours.stop(), noop.stop()]);
    }
  },
};
