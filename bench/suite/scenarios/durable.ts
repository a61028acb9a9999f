import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { UnaryProtocol } from "../../load/jobs.js";
import { startOurs, type RunningServer } from "../processes.js";
import type { Scenario } from "../scenario.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import { ratioTarget } from "../targets.js";
import { fanoutCharts, fanoutIncidents, fanoutTable, measureFanout, summarizeFanout, type FanoutSystem } from "./fanout-shape.js";
import { compareUnary, measureUnary, medianCalls, targetOf, unaryTable } from "./unary-shape.js";

const PROTOCOLS: UnaryProtocol[] = ["connect-binary-h2"];
const CONCURRENCIES = [16, 64];
/** Issue 7: Set on the durable adapter at least 0.5x the in-memory figure. */
const DURABLE_BOUND = 0.5;
const DURABLE = "file";
const MEMORY = "memory";

export const durableScenario: Scenario = {
  name: "durable",
  title: "The unary and fan-out shapes on the durable file adapter (SQLite, fsync before each reply)",
  async run(options) {
    const dataDir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-durable-"));
    const servers: RunningServer[] = [];
    try {
      const durable = await startOurs("iii-stream (file)", ["--adapter", "file", "--data-dir", dataDir]);
      servers.push(durable);
      const memory = await startOurs("iii-stream (memory)", ["--adapter", "memory"]);
      servers.push(memory);

      options.log("unary: file adapter against memory adapter");
      const unaryRuns = await measureUnary([targetOf(DURABLE, [durable]), targetOf(MEMORY, [memory])], PROTOCOLS, CONCURRENCIES, options);
      const comparisons = compareUnary(unaryRuns, DURABLE, MEMORY);
      await memory.stop();

      const streamSocketMissing = await streamSocketUnavailable(durable.url);
      const systems: FanoutSystem[] = [
        { label: "Subscribe (file)", transport: "subscribe", target: targetOf("Subscribe (file)", [durable]), ours: true },
        streamSocketMissing
          ? { label: "stream socket (file)", transport: "stream-socket", unavailable: streamSocketMissing, ours: true }
          : { label: "stream socket (file)", transport: "stream-socket", target: targetOf("stream socket (file)", [durable]), ours: true },
      ];
      const fanout = await measureFanout(systems, options, "durable-fanout");
      const summaries = fanout.map(summarizeFanout);
      return {
        tables: [
          unaryTable("Set, file adapter vs memory adapter (ratio = file / memory, median of per-run ratios)", comparisons, DURABLE, MEMORY),
          fanoutTable("Fan-out on the file adapter", summaries, []),
        ],
        charts: [
          {
            kind: "bars",
            title: "Set calls/s (median): file adapter vs memory adapter",
            unit: "calls/s",
            bars: comparisons.flatMap((c) => [
              { label: `${c.concurrency} callers: file`, value: medianCalls(c.subject), ours: true, system: DURABLE },
              { label: `${c.concurrency} callers: memory`, value: medianCalls(c.baseline), ours: true, system: MEMORY },
            ]),
          },
          ...fanoutCharts(summaries, "Fan-out, file adapter"),
        ],
        targets: comparisons.map((c) =>
          ratioTarget(`durable Set calls/s ≥ ${DURABLE_BOUND}x the memory adapter (${c.concurrency} callers)`, c.throughputRatio, DURABLE_BOUND, "at least"),
        ),
        notes: [...fanoutIncidents(fanout), ...(streamSocketMissing ? [`stream socket not available: ${streamSocketMissing}`] : [])],
        config: { protocols: PROTOCOLS, concurrencies: CONCURRENCIES, runs: options.runs },
        raw: { unary: unaryRuns, fanout: fanout.map(({ system, results }) => ({ system: system.label, unavailable: system.unavailable, results })) },
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};
