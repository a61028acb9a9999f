import type { HotItemJob, HotItemResult } from "../../load/jobs.js";
import { formatMicros, formatMs, formatNumber } from "../format.js";
import { runLoad, startOurs, waitForQuiet } from "../processes.js";
import type { Scenario, TargetCheck } from "../scenario.js";
import { median } from "../stats.js";
import { targetOf } from "./unary-shape.js";

const CALLERS = 100;
const WARMUP_MS = 500;
const MEASURE_MS = 2000;

export const hotItemScenario: Scenario = {
  name: "hot-item",
  title: `Update (increment) of one item by ${CALLERS} concurrent callers, memory adapter`,
  async run(options) {
    const server = await startOurs("iii-stream", ["--adapter", "memory"]);
    try {
      const runs: HotItemResult[] = [];
      for (let run = 0; run < options.runs; run++) {
        options.log(`run ${run + 1}/${options.runs}`);
        const job: HotItemJob = {
          target: targetOf("iii-stream", [server]),
          callers: CALLERS,
          warmupMs: WARMUP_MS,
          measureMs: MEASURE_MS,
          groupId: `hot-${run}`,
          deadlineMs: WARMUP_MS + MEASURE_MS + 30_000,
        };
        runs.push(await runLoad("hot-item", job));
        await waitForQuiet([server.pid]);
      }
      const lost = runs.map((r) => r.acknowledged - r.finalValue);
      const consistent = lost.every((n) => n === 0);
      const targets: TargetCheck[] = [
        {
          target: "hot item: the final value equals the acknowledged Updates (nothing lost)",
          measured: runs.map((r) => `${formatNumber(r.finalValue)} of ${formatNumber(r.acknowledged)}`).join("; "),
          status: consistent ? "met" : "missed",
        },
      ];
      return {
        tables: [
          {
            title: "Hot item (medians)",
            header: ["calls/s", "p50 ms", "p99 ms", "µs CPU/call", "errors", "final value = acknowledged"],
            rows: [
              [
                formatNumber(median(runs.map((r) => r.callsPerSecond))),
                formatMs(median(runs.map((r) => r.p50Ms))),
                formatMs(median(runs.map((r) => r.p99Ms))),
                formatMicros(median(runs.map((r) => r.serverCpuMicrosPerCall))),
                String(runs.reduce((sum, r) => sum + r.errors, 0)),
                consistent ? `yes, in all ${runs.length} runs` : `no: lost ${lost.join(", ")}`,
              ],
            ],
          },
        ],
        charts: [{ kind: "bars", title: `Update calls/s on one item, ${CALLERS} callers (per run)`, unit: "calls/s", bars: runs.map((r, i) => ({ label: `run ${i + 1}`, value: r.callsPerSecond, ours: true, system: "iii-stream" })) }],
        targets,
        notes: [],
        config: { callers: CALLERS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, runs: options.runs },
        raw: runs,
      };
    } finally {
      await server.stop();
    }
  },
};
