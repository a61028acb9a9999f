import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { HotItemJob, HotItemResult, UnaryProtocol } from "../../load/jobs.js";
import { formatMs, formatNumber } from "../format.js";
import { runLoad, startOurs, type RunningServer } from "../processes.js";
import type { Scenario, ScenarioOptions, ScenarioOutput, Table } from "../scenario.js";
import { median } from "../stats.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import { fanoutCharts, fanoutIncidents, fanoutTable, measureFanout, summarizeFanout, type FanoutSystem } from "./fanout-shape.js";
import { compareUnary, measureUnary, medianCalls, targetOf, unaryTable } from "./unary-shape.js";
import { deleteKeysUnder, REDIS_URL, redisVersionAt } from "./redis-keys.js";

const PROTOCOLS: UnaryProtocol[] = ["connect-binary-h2"];
const CONCURRENCIES = [16, 64];
const INSTANCES = 2;
const REDIS = "redis x2";
const MEMORY = "memory x1";
/** Callers of the hot-item step: enough that writers in both processes keep losing compare-and-set races. */
const HOT_CALLERS = 100;
const HOT_WARMUP_MS = 500;
const HOT_MEASURE_MS = 2000;

export const redisScenario: Scenario = {
  name: "redis",
  title: `The unary, hot-item and fan-out shapes across ${INSTANCES} instances sharing one Redis`,
  async run(options) {
    const version = await redisVersionAt(REDIS_URL);
    if (version === undefined) return unavailable(`no Redis answered at ${REDIS_URL} (set REDIS_URL)`);
    const keyPrefix = `iii-stream-bench:${Date.now().toString(36)}:`;
    const dir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-redis-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, `adapter:\n  name: redis\n  config:\n    key_prefix: "${keyPrefix}"\n`);
    const servers: RunningServer[] = [];
    try {
      const instances: RunningServer[] = [];
      for (let i = 0; i < INSTANCES; i++) {
        const instance = await startOurs(`iii-stream (redis ${i + 1})`, ["--adapter", "redis", "--redis-url", REDIS_URL, "--config", config]);
        servers.push(instance);
        instances.push(instance);
      }
      const memory = await startOurs("iii-stream (memory)", ["--adapter", "memory"]);
      servers.push(memory);

      options.log(`unary: ${INSTANCES} Redis instances (callers split) against one memory instance`);
      const unaryRuns = await measureUnary([targetOf(REDIS, instances), targetOf(MEMORY, [memory])], PROTOCOLS, CONCURRENCIES, options);
      const comparisons = compareUnary(unaryRuns, REDIS, MEMORY);
      await memory.stop();

      options.log(`hot item: Update of one item by ${HOT_CALLERS} callers through one instance, then split over ${INSTANCES}`);
      const hot = await measureHotItem(instances, options);

      const streamSocketMissing = await streamSocketUnavailable(instances[0].url);
      const systems: FanoutSystem[] = [
        { label: `Subscribe (${REDIS})`, transport: "subscribe", target: targetOf("Subscribe", instances), ours: true },
        streamSocketMissing
          ? { label: `stream socket (${REDIS})`, transport: "stream-socket", unavailable: streamSocketMissing, ours: true }
          : { label: `stream socket (${REDIS})`, transport: "stream-socket", target: targetOf("stream socket", instances), ours: true },
      ];
      const fanout = await measureFanout(systems, options, "redis-fanout");
      const summaries = fanout.map(summarizeFanout);
      return {
        tables: [
          unaryTable(`Set through ${INSTANCES} instances on Redis ${version} vs one memory instance (ratio = Redis / memory)`, comparisons, REDIS, MEMORY),
          hotItemTable(hot),
          fanoutTable(`Fan-out: subscribers split evenly over ${INSTANCES} instances, writes alternating between them (CPU = both instances)`, summaries, []),
        ],
        charts: [
          {
            kind: "bars",
            title: `Set calls/s (median): ${INSTANCES} instances on Redis vs one on memory`,
            unit: "calls/s",
            bars: comparisons.flatMap((c) => [
              { label: `${c.concurrency} callers: ${REDIS}`, value: medianCalls(c.subject), ours: true, system: REDIS },
              { label: `${c.concurrency} callers: ${MEMORY}`, value: medianCalls(c.baseline), ours: true, system: MEMORY },
            ]),
          },
          ...fanoutCharts(summaries, `Fan-out, ${REDIS}`),
        ],
        targets: [],
        notes: [
          `Redis ${version} at ${REDIS_URL}, not pinned: it shares the cores with servers and load.`,
          ...fanoutIncidents(fanout),
          ...(streamSocketMissing ? [`stream socket not available: ${streamSocketMissing}`] : []),
        ],
        config: { instances: INSTANCES, protocols: PROTOCOLS, concurrencies: CONCURRENCIES, runs: options.runs, redis: version },
        raw: { unary: unaryRuns, hotItem: hot, fanout: fanout.map(({ system, results }) => ({ system: system.label, unavailable: system.unavailable, results })) },
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await deleteKeysUnder(REDIS_URL, keyPrefix);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

interface HotItemRuns {
  one: HotItemResult[];
  split: HotItemResult[];
}

/**
 * The same item updated by every caller, through one instance (its writers queue on
 * the item's lock) and split over all of them (compare-and-set across processes); the
 * counter read back must equal the acknowledged Updates either way.
 */
async function measureHotItem(instances: RunningServer[], options: ScenarioOptions): Promise<HotItemRuns> {
  const runs: HotItemRuns = { one: [], split: [] };
  for (let run = 0; run < options.runs; run++) {
    const order: Array<keyof HotItemRuns> = run % 2 === 0 ? ["one", "split"] : ["split", "one"];
    for (const shape of order) {
      const job: HotItemJob = {
        target: targetOf(shape === "one" ? "redis x1" : REDIS, shape === "one" ? [instances[0]] : instances),
        callers: HOT_CALLERS,
        warmupMs: HOT_WARMUP_MS,
        measureMs: HOT_MEASURE_MS,
        groupId: `hot-${shape}-${run}`,
        deadlineMs: HOT_WARMUP_MS + HOT_MEASURE_MS + 30_000,
      };
      runs[shape].push(await runLoad("hot-item", job));
    }
  }
  return runs;
}

function hotItemTable(runs: HotItemRuns): Table {
  const row = (label: string, results: HotItemResult[]): string[] => [
    label,
    formatNumber(median(results.map((r) => r.callsPerSecond))),
    formatMs(median(results.map((r) => r.p50Ms))),
    formatMs(median(results.map((r) => r.p99Ms))),
    String(results.reduce((sum, r) => sum + r.errors, 0)),
    results.every((r) => r.finalValue === r.acknowledged) ? "yes" : `no: lost ${results.map((r) => r.acknowledged - r.finalValue).join(", ")}`,
  ];
  return {
    title: `Hot item on Redis: Update (increment) of one item by ${HOT_CALLERS} callers (medians)`,
    header: ["through", "calls/s", "p50 ms", "p99 ms", "errors", "final value = acknowledged"],
    rows: [row("one instance", runs.one), row(`${INSTANCES} instances, callers split`, runs.split)],
  };
}

function unavailable(reason: string): ScenarioOutput {
  return { tables: [], charts: [], targets: [], notes: [`redis scenario not available: ${reason}`], config: { redisUrl: REDIS_URL }, raw: null };
}
