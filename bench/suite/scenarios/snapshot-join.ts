import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { SnapshotJoinJob, SnapshotJoinResult, Spread } from "../../load/memory-jobs.js";
import { formatMiB, formatNumber } from "../format.js";
import { runLoad, startOurs, type RunningServer } from "../processes.js";
import { isWanted, type Scenario, type Table, type TargetCheck } from "../scenario.js";
import { median } from "../stats.js";
import type { Chart } from "../svg-chart.js";
import { unavailableTarget } from "../targets.js";
import { memoryGuardBytes } from "./memory-guard.js";
import { rssLine } from "./rss-line.js";
import { fatalError } from "./server-fatal.js";
import { deleteKeysUnder, REDIS_URL, redisVersionAt } from "./redis-keys.js";
import { targetOf } from "./unary-shape.js";

const ITEMS = 100_000;
const ITEM_BYTES = 1000;
const SUBSCRIBERS = 100;
const PREFILL_CONCURRENCY = 64;
/** Every subscriber must have its whole snapshot within this; an old server sends each a ~100 MB message. */
const JOIN_TIMEOUT_MS = 300_000;
const SAMPLE_MS = 100;
const POINT_MS = 500;
/** The slowest prefill allowed for (items/s) when setting the load's deadline. */
const SLOWEST_PREFILL_PER_SECOND = 500;

interface Adapter {
  label: "file" | "redis";
  /** Starts a server on this adapter, with a store of its own; `cleanup` removes the store. */
  start(run: number): Promise<{ server: RunningServer; cleanup(): Promise<void>; redisUrl?: string }>;
}

/** A run's figures with the end of the server's output, where a failure usually explains itself, and its fatal error if it died of one. */
interface Run extends SnapshotJoinResult {
  serverLogTail: string;
  serverFatal: string | undefined;
}
/** Characters of the server's output kept with each run. */
const LOG_TAIL = 2000;

const num = (value: number | null | undefined): number => (typeof value === "number" ? value : NaN);
const seconds = (ms: number) => formatNumber(ms / 1000, ms < 10_000 ? 2 : 1);

const fileAdapter: Adapter = {
  label: "file",
  async start() {
    const dir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-snapshot-"));
    // Relaxed durability only makes the prefill quick; reads of a snapshot do not depend on it.
    const server = await startOurs("iii-stream (file)", ["--adapter", "file", "--data-dir", dir, "--sync-interval-ms", "1000"]);
    return {
      server,
      cleanup: async () => {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const redisAdapter: Adapter = {
  label: "redis",
  async start(run) {
    const keyPrefix = `iii-stream-bench:snapshot-join:${Date.now().toString(36)}-${run}:`;
    const dir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-snapshot-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, `adapter:\n  name: redis\n  config:\n    key_prefix: "${keyPrefix}"\n`);
    const cleanup = async (server?: RunningServer) => {
      await server?.stop();
      await deleteKeysUnder(REDIS_URL, keyPrefix);
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      const server = await startOurs("iii-stream (redis)", ["--adapter", "redis", "--redis-url", REDIS_URL, "--config", config]);
      return { server, cleanup: () => cleanup(server), redisUrl: REDIS_URL };
    } catch (error) {
      await cleanup();
      throw error;
    }
  },
};

export const snapshotJoinScenario: Scenario = {
  name: "snapshot-join",
  title: "Subscribers joining a 100,000-item group at once: peak server memory and time until all have the whole snapshot",
  // Filling 100,000 items and sending every subscriber the group take minutes per adapter.
  defaultRuns: 1,
  async run(options) {
    const items = options.items ?? ITEMS;
    const subscribers = options.subscribers ?? SUBSCRIBERS;
    const guard = memoryGuardBytes();
    const redisVersion = await redisVersionAt(REDIS_URL);
    const adapters = [fileAdapter, redisAdapter].filter((a) => isWanted(options, a.label));
    const results = new Map<Adapter, Run[]>(adapters.map((a) => [a, []]));
    const unavailable = new Map<Adapter, string>();
    if (redisVersion === undefined) unavailable.set(redisAdapter, `no Redis answered at ${REDIS_URL} (set REDIS_URL)`);
    for (let run = 0; run < options.runs; run++) {
      for (let index = 0; index < adapters.length; index++) {
        const adapter = adapters[(index + run) % adapters.length];
        if (unavailable.has(adapter)) continue;
        options.log(`run ${run + 1}/${options.runs}: ${adapter.label} adapter, ${formatNumber(items)} items, ${subscribers} subscribers`);
        const { server, cleanup, redisUrl } = await adapter.start(run);
        try {
          const job: SnapshotJoinJob = {
            target: targetOf(adapter.label, [server]),
            groupId: "snapshot-join",
            items,
            itemBytes: ITEM_BYTES,
            prefillConcurrency: PREFILL_CONCURRENCY,
            subscribers,
            joinTimeoutMs: JOIN_TIMEOUT_MS,
            sampleMs: SAMPLE_MS,
            pointMs: POINT_MS,
            memoryGuardBytes: guard,
            redisUrl,
            deadlineMs: Math.ceil((items / SLOWEST_PREFILL_PER_SECOND) * 1000) + JOIN_TIMEOUT_MS + 60_000,
          };
          const result = { ...(await runLoad("snapshot-join", job)), serverLogTail: server.output().slice(-LOG_TAIL), serverFatal: fatalError(server.output()) };
          results.get(adapter)!.push(result);
          options.log(`  ${summaryLine(result)}`);
        } finally {
          await cleanup();
        }
      }
    }
    const measured = adapters.filter((a) => !unavailable.has(a)).map((a): [Adapter, Run[]] => [a, results.get(a)!]);
    return {
      tables: [joinTable(measured, items, subscribers)],
      charts: charts(measured),
      targets: adapters.map((a) => (unavailable.has(a) ? unavailableTarget(wholeSnapshotTarget(a, subscribers), unavailable.get(a)!) : wholeSnapshot(a, results.get(a)!, subscribers))),
      notes: [
        `The group holds ${formatNumber(items)} items whose values' JSON is ${formatNumber(ITEM_BYTES)} bytes, filled by Set over Connect binary on one HTTP/2 connection, ${PREFILL_CONCURRENCY} calls in flight (the file adapter with --sync-interval-ms 1000 for the fill).`,
        `Then ${subscribers} subscribers, each on a connection of its own (Subscribe, Connect binary, HTTP/2, Node's default 64 KiB stream window), start at the same moment and read Snapshot messages until one has \`more\` unset; items are counted, not decoded. "all have it" is the time from that moment until the last subscriber's last chunk.`,
        `RSS is VmRSS of the server process every ${SAMPLE_MS} ms; "before" is after the fill, once the server was quiet; "joined" with every subscriber done and still subscribed; "after" once they disconnected and 2 s passed. The server is killed if it passes ${formatMiB(guard)} MiB (guard).`,
        ...(redisVersion ? [`Redis ${redisVersion} at ${REDIS_URL}, not pinned; keys under a prefix of the run's own, deleted afterwards. "Redis peak" is its used_memory (replies it holds until the server reads them count).`] : []),
        ...[...unavailable].map(([adapter, why]) => `${adapter.label} adapter not available: ${why}`),
        ...measured.flatMap(([adapter, runs]) => (runs.some((r) => r.rss.guardTripped) ? [`${adapter.label}: the server passed the memory guard and was killed.`] : [])),
        ...measured.flatMap(([adapter, runs]) => runs.flatMap((r, run) => (r.serverFatal ? [`${adapter.label}, run ${run + 1}: the server died: ${r.serverFatal}`] : []))),
      ],
      config: { items, itemBytes: ITEM_BYTES, subscribers, prefillConcurrency: PREFILL_CONCURRENCY, joinTimeoutMs: JOIN_TIMEOUT_MS, sampleMs: SAMPLE_MS, pointMs: POINT_MS, memoryGuardBytes: guard, runs: options.runs, redis: redisVersion },
      raw: measured.map(([adapter, runs]) => ({ adapter: adapter.label, runs })),
    };
  },
};

function summaryLine(r: SnapshotJoinResult): string {
  return (
    `filled in ${seconds(r.prefill.ms)} s (${r.prefill.errors} errors); RSS before ${formatMiB(r.rssBeforeBytes)} / peak ${formatMiB(r.rss.peakBytes)} / joined ${formatMiB(num(r.rssJoinedBytes))} MiB; ` +
    `${r.joins.complete}/${r.joins.subscribers} complete, all in ${seconds(num(r.allCompleteMs))} s`
  );
}

function joinTable(measured: Array<[Adapter, Run[]]>, items: number, subscribers: number): Table {
  return {
    title: `${subscribers} subscribers joining a ${formatNumber(items)}-item group at once (medians over runs)`,
    header: [
      "adapter",
      "fill s",
      "RSS before MiB",
      "RSS peak MiB (at s)",
      "peak − before MiB",
      "RSS joined MiB",
      "RSS after MiB",
      "all have it s",
      "first chunk p50 s",
      "whole snapshot p50 s",
      "chunks each",
      "MiB each",
      "complete",
      "server CPU s",
      "load cores",
      "Redis peak MiB",
    ],
    rows: measured.map(([adapter, runs]) => {
      const m = (pick: (r: SnapshotJoinResult) => number) => median(runs.map(pick));
      const mid = (pick: (j: SnapshotJoinResult["joins"]) => Spread) => m((r) => num(pick(r.joins).median));
      return [
        adapter.label,
        seconds(m((r) => r.prefill.ms)),
        formatMiB(m((r) => r.rssBeforeBytes)),
        `${formatMiB(m((r) => r.rss.peakBytes))} (${runs.map((r) => seconds(r.rss.peakAtMs)).join(", ")})`,
        formatMiB(m((r) => r.rss.peakBytes - r.rssBeforeBytes)),
        formatMiB(m((r) => r.rssJoinedBytes)),
        formatMiB(m((r) => r.rssAfterBytes)),
        seconds(m((r) => num(r.allCompleteMs))),
        seconds(mid((j) => j.firstChunkMs)),
        seconds(mid((j) => j.completeMs)),
        formatNumber(mid((j) => j.chunks)),
        formatMiB(mid((j) => j.bytes)),
        runs.map((r) => `${r.joins.complete}/${r.joins.subscribers}`).join(", "),
        formatNumber(m((r) => num(r.serverCpuSeconds)), 1),
        formatNumber(m((r) => num(r.loadCores)), 2),
        adapter.label === "redis" ? formatMiB(m((r) => num(r.redisPeakBytes))) : "",
      ];
    }),
  };
}

function wholeSnapshotTarget(adapter: Adapter, subscribers: number): string {
  return `${adapter.label}: all ${subscribers} subscribers receive the whole snapshot`;
}

function wholeSnapshot(adapter: Adapter, runs: Run[], subscribers: number): TargetCheck {
  const done = runs.reduce((sum, r) => sum + r.joins.complete, 0);
  const total = runs.reduce((sum, r) => sum + r.joins.subscribers, 0);
  const failures = runs.flatMap((r) => r.joins.failures);
  const note = failures
    .slice(0, 2)
    .map((f) => `${f.subscribers}: ${f.error.slice(0, 100)} (at ${seconds(num(f.firstMs))}–${seconds(num(f.lastMs))} s)`)
    .join("; ");
  return { target: wholeSnapshotTarget(adapter, subscribers), measured: `${done} / ${total}`, status: total > 0 && done === total ? "met" : "missed", note: note || undefined };
}

function charts(measured: Array<[Adapter, Run[]]>): Chart[] {
  const mib = (bytes: number) => bytes / 2 ** 20;
  return [
    {
      kind: "lines",
      title: "Server RSS while the subscribers join (first run of each adapter; 0 s = the join)",
      xLabel: "s since the join",
      yLabel: "RSS MiB",
      series: measured.flatMap(([adapter, runs]) =>
        runs.length === 0 ? [] : [{ label: adapter.label, ours: true, points: rssLine(runs[0].rss.points, 0) }],
      ),
    },
    {
      kind: "bars",
      title: "Peak server RSS above the RSS before the join (median, lower is better)",
      unit: "MiB",
      bars: measured.map(([adapter, runs]) => ({ label: adapter.label, value: mib(median(runs.map((r) => r.rss.peakBytes - r.rssBeforeBytes))), ours: true })),
    },
    {
      kind: "bars",
      title: "Time until every subscriber has the whole snapshot (median, lower is better)",
      unit: "s",
      bars: measured.map(([adapter, runs]) => ({ label: adapter.label, value: median(runs.map((r) => num(r.allCompleteMs))) / 1000, ours: true })),
    },
  ];
}
