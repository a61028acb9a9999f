import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { groupName } from "../../load/port-fill.js";
import type { FileStoreResult, GroupWalkResult, ItemsResult, ScaleAdapter, ScaleServerConfig, SubscribersResult } from "../../load/scale-jobs.js";
import { formatKiB, formatMiB, formatMs, formatNumber } from "../format.js";
import { rssBytes } from "../proc-stats.js";
import type { Scenario, ScenarioOptions } from "../scenario.js";
import { median } from "../stats.js";
import { runScaleLoad, startCliTimed, startScaleServer, type ScaleServer } from "./scale-processes.js";
import { deleteKeysUnder, REDIS_URL, redisUsedMemoryAt, redisVersionAt } from "./redis-keys.js";
import { growthLines, growthOf, growthTable, seriesChart, seriesTable, type Series, type SeriesColumn } from "./scale-report.js";

/** The sizes of the issue; `SCALE_QUICK=1` runs every series at small sizes (a few minutes), to try the harness. */
const FULL_SIZES = {
  items: [10, 1_000, 100_000],
  groups: [10, 10_000, 1_000_000],
  subscribers: [1_000, 10_000, 20_000],
  store: [1_000_000, 10_000_000],
};
const QUICK_SIZES = { items: [10, 100, 1_000], groups: [10, 100, 10_000], subscribers: [100, 500, 1_000], store: [10_000, 100_000] };
const QUICK = process.env.SCALE_QUICK === "1";
const SIZES = QUICK ? QUICK_SIZES : FULL_SIZES;

const SERIES_NAMES = ["items", "groups", "subscribers", "store"] as const;
type SeriesName = (typeof SERIES_NAMES)[number];
const ADAPTERS: ScaleAdapter[] = ["memory", "file", "redis"];

const STREAM = "scale";
/** Set and Get calls measured per size, one at a time. */
const CALLS = 500;
/**
 * Unmeasured calls before each size's: the first size runs on a fresh server, whose
 * code is still in V8's first tiers after a hundred calls (Set p50 came out twice the
 * next size's); a thousand put it where the later sizes find it.
 */
const WARMUP_CALLS = 1000;
const GROUP_PAGE_SIZE = 1000;
/** Subscribe calls per HTTP/2 connection: 20,000 subscribers on 2,000 connections, within a 20,000-descriptor limit. */
const STREAMS_PER_CONNECTION = 10;
/** 2 writes/s: 40,000 deliveries/s at 20,000 subscribers, within what one core receives and decodes. */
const WRITES_PER_SECOND = 2;
const WINDOW_MS = 10_000;
const WRITE_PATH_WARMUP = 1000;
const ITEMS_PER_STORE_GROUP = 1000;
/** Memory is read this long after the last change, five times 200 ms apart (median). */
const SETTLE_MS = 1000;
/**
 * A fresh server's RSS falls by some 15 MiB five to six seconds after it started,
 * whatever it does meanwhile (most likely V8 giving back heap it grew while loading); a
 * baseline read before that made the next rows' memory come out negative.
 */
const STARTUP_SETTLE_MS = 10_000;

export const scaleScenario: Scenario = {
  name: "scale",
  title: "How cost grows as work grows: items per group, groups, subscribers per group, store size",
  async run(options) {
    const only = options.only ?? [];
    const seriesFilter = only.filter((o): o is SeriesName => (SERIES_NAMES as readonly string[]).includes(o));
    const adapterFilter = only.filter((o): o is ScaleAdapter => (ADAPTERS as string[]).includes(o));
    const wantSeries = (name: SeriesName) => seriesFilter.length === 0 || seriesFilter.includes(name);
    const wantAdapter = (adapter: ScaleAdapter) => adapterFilter.length === 0 || adapterFilter.includes(adapter);

    const redis = await redisVersionAt(REDIS_URL);
    const redisMissing = redis === undefined ? `no Redis answered at ${REDIS_URL} (set REDIS_URL)` : undefined;
    const adapters = ADAPTERS.filter(wantAdapter);
    const runner = new Runner(options, redisMissing);
    const measured: Series[] = [];
    const raw: Record<string, unknown> = {};
    const notes: string[] = [];

    if (wantSeries("items")) {
      const results = await runner.eachAdapter(adapters, "items", (server) => measureItems(server, options));
      raw.items = Object.fromEntries(results);
      measured.push(...itemsSeries(results, redisMissing));
      for (const [adapter, rows] of results) {
        for (const row of rows ?? []) if (row.errors > 0) notes.push(`items: ${row.errors} calls or snapshots failed on ${adapter} at ${formatNumber(row.size)} items (left out of the figures)`);
      }
    }
    if (wantSeries("groups")) {
      const results = await runner.eachAdapter(adapters, "groups", (server, config) => measureGroups(server, config, options), STARTUP_SETTLE_MS);
      raw.groups = Object.fromEntries(results);
      measured.push(...groupsSeries(results, redisMissing));
      for (const [adapter, rows] of results) {
        for (const row of rows ?? []) if (row.error) notes.push(`groups: the ListGroups walk failed on ${adapter} at ${formatNumber(row.size)} groups: ${row.error}`);
        if (rows) notes.push(`groups, ${adapter}: server memory per added group ${marginal(rows.map((r) => [r.size, r.rssBytes]), (v) => `${formatNumber(v)} B`)}`);
      }
    }
    if (wantSeries("subscribers")) {
      const results = await runner.eachAdapter(adapters, "subscribers", (server) => measureSubscribers(server, options), STARTUP_SETTLE_MS);
      raw.subscribers = Object.fromEntries(results);
      measured.push(...subscribersSeries(results, redisMissing));
      for (const [adapter, result] of results) {
        if (result) notes.push(`subscribers, ${adapter}: idle memory per added subscriber ${marginal(result.points.map((p) => [p.subscribers, p.idleRssBytes]), (v) => `${formatKiB(v)} KiB`)}`);
      }
      const shortfalls = [...results].flatMap(([adapter, r]) =>
        r ? r.points.filter((p) => p.received < p.expected || p.joinFailures > 0).map((p) => `${adapter} at ${formatNumber(p.subscribers)}: ${p.received}/${p.expected} delivered, ${p.joinFailures} join failures`) : [],
      );
      if (shortfalls.length > 0) notes.push(`subscribers: not every delivery arrived (CPU per delivery divides by those that did): ${shortfalls.join("; ")}`);
      const saturated = [...results].flatMap(([adapter, r]) => (r ? r.points.filter((p) => p.loadCores >= 0.9).map((p) => `${adapter} at ${formatNumber(p.subscribers)}`) : []));
      if (saturated.length > 0) notes.push(`subscribers: the load process used ≥ 0.9 of its core (${saturated.join(", ")}): deliveries may have queued on the client side`);
    }
    let store: StoreRow[] = [];
    if (wantSeries("store") && wantAdapter("file")) {
      try {
        store = await measureStore(options);
        raw.store = store;
        measured.push(...storeSeries(store));
        notes.push(...storeNotes(store));
      } catch (error) {
        runner.failures.push(`store on file failed: ${(error as Error).message.split("\n")[0]}`);
        options.log(`  failed: ${(error as Error).stack ?? String(error)}`);
      }
    }

    // A series whose adapters were all left out by --only has nothing to show.
    const all = measured.filter((series) => series.columns.length > 0);
    const tables = [...all.map(seriesTable), growthTable(all)];
    const flagged = all.flatMap((series) => growthOf(series).filter((g) => g.fasterThanLinear).map((g) => `${g.series} (${g.column})`));
    return {
      tables,
      charts: all.map(seriesChart),
      targets: [],
      notes: [
        ...(QUICK ? ["SCALE_QUICK=1: small sizes, to try the harness; not the issue's sizes."] : []),
        ...(redisMissing ? [`redis not available: ${redisMissing}`] : [`Redis ${redis} at ${REDIS_URL}, not pinned: it shares the cores with server and load.`]),
        ...METHOD_NOTES,
        ...runner.failures,
        ...notes,
        ...growthLines(all),
        flagged.length > 0 ? `grows faster than linear (⚑), to explain or fix: ${flagged.join("; ")}` : "no series grows faster than linear.",
      ],
      config: {
        sizes: SIZES,
        quick: QUICK,
        adapters,
        calls: CALLS,
        warmupCalls: WARMUP_CALLS,
        groupPageSize: GROUP_PAGE_SIZE,
        streamsPerConnection: STREAMS_PER_CONNECTION,
        writesPerSecond: WRITES_PER_SECOND,
        windowMs: WINDOW_MS,
        itemsPerStoreGroup: ITEMS_PER_STORE_GROUP,
        repeats: options.runs,
        redis: redis ?? null,
      },
      raw,
    };
  },
};

const METHOD_NOTES = [
  "Method, the same for every row: each series and adapter gets a fresh server process (bench/load/scale-server.ts: the compiled package's createStreamServer on that adapter, pinned to core 0); clients run in load processes on core 1; memory is VmRSS and CPU is utime+stime from /proc.",
  "Filling: items and groups are created through the store's port (ItemStore.commit, 2,000 in flight) inside the serving process, not over RPC; the store-size rows' store is built before the server starts (see bench/README.md).",
  `items: one group per size; Set (overwriting a random item) and Get (a random item) latency over ${CALLS} calls each after ${WARMUP_CALLS} unmeasured, one at a time, Connect binary on HTTP/2; snapshot = Subscribe through the Connect client until the Snapshot message whose \`more\` is false, time from the call, encoded bytes of those messages, and the server's CPU time over it (/proc, 10 ms ticks: 0 below that is left off the chart); median of the repeats, after one untimed snapshot.`,
  "groups: groups of 1 item each, added up to each size; memory per group = (RSS − RSS of the server before any group) / groups, each read after two forced garbage collections; store bytes per group = growth of the database file (file) or of Redis's used_memory (redis, shared with anything else using that Redis); ListGroups walk = every page of page_size 1,000 following next_page_token, median of the repeats after one untimed walk.",
  `subscribers: Subscribe calls on one group, ${STREAMS_PER_CONNECTION} per HTTP/2 connection (see bench/README.md), added up to each size; idle memory per subscriber = (settled RSS with them − RSS before any) / subscribers, each read after forced garbage collections; then Set at ${WRITES_PER_SECOND}/s for ${WINDOW_MS / 1000} s and server CPU per delivery = server CPU time over the window / deliveries received (the Set's own cost included).`,
];

type Measure<T> = (server: ScaleServer, config: ScaleServerConfig) => Promise<T>;

/** Starts a fresh server per adapter and series, and removes its data (directory, Redis keys) after. */
class Runner {
  /** One line per series and adapter that could not be measured, for the notes. */
  readonly failures: string[] = [];

  constructor(
    private readonly options: ScenarioOptions,
    private readonly redisMissing: string | undefined,
  ) {}

  /** `startupSettleMs`: how long a series that reads memory waits after the server started (see STARTUP_SETTLE_MS). */
  async eachAdapter<T>(adapters: ScaleAdapter[], series: SeriesName, measure: Measure<T>, startupSettleMs = 0): Promise<Map<ScaleAdapter, T | undefined>> {
    const results = new Map<ScaleAdapter, T | undefined>();
    for (const adapter of adapters) {
      if (adapter === "redis" && this.redisMissing) {
        results.set(adapter, undefined);
        continue;
      }
      this.options.log(`${series}: ${adapter}`);
      const dataDir = adapter === "file" ? mkdtempSync(join(os.tmpdir(), "iii-stream-bench-scale-")) : undefined;
      const keyPrefix = adapter === "redis" ? `iii-stream-bench-scale:${Date.now().toString(36)}:` : undefined;
      const config: ScaleServerConfig = { adapter, dataDir, redisUrl: REDIS_URL, keyPrefix };
      let server: ScaleServer | undefined;
      try {
        server = await startScaleServer(`iii-stream (${adapter})`, config);
        await sleep(startupSettleMs);
        results.set(adapter, await measure(server, config));
      } catch (error) {
        // One adapter failing (a timeout at a million groups, say) leaves the others' rows standing.
        const reason = (error as Error).message.split("\n")[0];
        this.failures.push(`${series} on ${adapter} failed: ${reason}`);
        this.options.log(`  failed: ${(error as Error).stack ?? reason}`);
        results.set(adapter, undefined);
      } finally {
        await server?.stop();
        if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        if (keyPrefix) await deleteKeysUnder(REDIS_URL, keyPrefix);
      }
    }
    return results;
  }
}

async function settledRss(pid: number): Promise<number> {
  await sleep(SETTLE_MS);
  const readings: number[] = [];
  for (let r = 0; r < 5; r++) {
    readings.push(rssBytes(pid) ?? NaN);
    await sleep(200);
  }
  return median(readings);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ItemsRow extends ItemsResult {
  size: number;
  fillMs: number;
}

async function measureItems(server: ScaleServer, options: ScenarioOptions): Promise<ItemsRow[]> {
  const rows: ItemsRow[] = [];
  for (const size of SIZES.items) {
    const prefix = `items-${size}-`;
    const fillMs = await server.fill({ streamName: STREAM, groupPrefix: prefix, firstGroup: 0, groups: 1, itemsPerGroup: size });
    const result = await runScaleLoad("scale-items", {
      url: server.url,
      serverPid: server.pid,
      streamName: STREAM,
      groupId: groupName(prefix, 0),
      items: size,
      warmupCalls: WARMUP_CALLS,
      calls: CALLS,
      snapshots: options.runs,
      deadlineMs: 10 * 60_000,
    });
    options.log(
      `  ${formatNumber(size)} items: Set p50 ${formatMs(result.setP50Ms)} ms, Get p50 ${formatMs(result.getP50Ms)} ms, ` +
        `snapshot ${formatMs(median(result.snapshotMs))} ms, ${formatKiB(result.snapshotBytes)} KiB in ${result.snapshotMessages} messages (fill ${formatMs(fillMs)} ms)`,
    );
    rows.push({ size, fillMs, ...result });
  }
  return rows;
}

interface GroupsRow extends GroupWalkResult {
  size: number;
  fillMs: number;
  rssBytes: number;
  baselineRssBytes: number;
  storeBytes: number;
  baselineStoreBytes: number;
}

/** What the adapter keeps outside the serving process: the database file, or Redis's memory. */
async function storeBytes(config: ScaleServerConfig): Promise<number> {
  if (config.adapter === "file") {
    const size = (name: string) => {
      try {
        return statSync(join(config.dataDir!, name)).size;
      } catch {
        return 0;
      }
    };
    return size("iii-stream.db") + size("iii-stream.db-wal");
  }
  return config.adapter === "redis" ? redisUsedMemoryAt(REDIS_URL) : NaN;
}

async function measureGroups(server: ScaleServer, config: ScaleServerConfig, options: ScenarioOptions): Promise<GroupsRow[]> {
  await server.collectGarbage();
  const baselineRssBytes = await settledRss(server.pid);
  const baselineStoreBytes = await storeBytes(config);
  const rows: GroupsRow[] = [];
  let filled = 0;
  for (const size of SIZES.groups) {
    const fillMs = await server.fill({ streamName: STREAM, groupPrefix: "g-", firstGroup: filled, groups: size - filled, itemsPerGroup: 1 });
    filled = size;
    await server.collectGarbage();
    const rss = await settledRss(server.pid);
    const store = await storeBytes(config);
    options.log(`  ${formatNumber(size)} groups (filled in ${formatMs(fillMs)} ms): ${formatNumber((rss - baselineRssBytes) / size)} B RSS per group`);
    const walk = await runScaleLoad("scale-group-walk", { url: server.url, streamName: STREAM, pageSize: GROUP_PAGE_SIZE, walks: options.runs, deadlineMs: 10 * 60_000 });
    if (walk.error === undefined && walk.groups !== size) walk.error = `the walk listed ${walk.groups} groups of ${size}`;
    options.log(walk.error ? `  ListGroups walk failed: ${walk.error}` : `  ListGroups walk ${formatMs(median(walk.walkMs))} ms in ${walk.pages} pages`);
    rows.push({ size, fillMs, rssBytes: rss, baselineRssBytes, storeBytes: store, baselineStoreBytes, ...walk });
  }
  return rows;
}

function measureSubscribers(server: ScaleServer, options: ScenarioOptions): Promise<SubscribersResult> {
  const checkpoints = SIZES.subscribers;
  const perCheckpointMs = 60_000 + 2 * SETTLE_MS + 2000 + WINDOW_MS + 2 * 10_000;
  return runScaleLoad("scale-subscribers", {
    url: server.url,
    serverPid: server.pid,
    groupId: "fan-out",
    checkpoints,
    streamsPerConnection: STREAMS_PER_CONNECTION,
    writesPerSecond: WRITES_PER_SECOND,
    windowMs: WINDOW_MS,
    warmupWrites: WRITE_PATH_WARMUP,
    settleMs: SETTLE_MS,
    joinTimeoutMs: 60_000,
    drainMs: 10_000,
    deadlineMs: 60_000 + checkpoints.length * perCheckpointMs,
  }).then((result) => {
    for (const p of result.points) {
      options.log(
        `  ${formatNumber(p.subscribers)} subscribers: ${formatKiB((p.idleRssBytes - result.baselineRssBytes) / p.subscribers)} KiB each idle, ` +
          `${formatNumber(p.serverCpuMicrosPerDelivery, 2)} µs CPU per delivery (${p.received}/${p.expected} delivered, load ${formatNumber(p.loadCores, 2)} cores)`,
      );
    }
    return result;
  });
}

interface StoreRow {
  size: number;
  build: FileStoreResult;
  /** One per repeat: a fresh server process on the built store. */
  starts: Array<{ listeningMs: number; readyMs: number; rssBytes: number }>;
}

/** A store of each size is built once, then a server is started on it `runs` times, each timed to ready. */
async function measureStore(options: ScenarioOptions): Promise<StoreRow[]> {
  const rows: StoreRow[] = [];
  for (const size of [0, ...SIZES.store]) {
    const dataDir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-scale-store-"));
    try {
      options.log(`store: building ${formatNumber(size)} items`);
      const build: FileStoreResult =
        size === 0
          ? { method: "empty", groups: 0, items: 0, ms: 0, fileBytes: 0 }
          : await runScaleLoad("scale-file-store", { dataDir, streamName: STREAM, items: size, itemsPerGroup: ITEMS_PER_STORE_GROUP, deadlineMs: 60 * 60_000 });
      const starts: StoreRow["starts"] = [];
      for (let run = 0; run < options.runs; run++) {
        const server = await startCliTimed(["--adapter", "file", "--data-dir", dataDir]);
        try {
          starts.push({ listeningMs: server.listeningMs, readyMs: server.readyMs, rssBytes: await settledRss(server.pid) });
        } finally {
          await server.stop();
        }
      }
      const last = starts.at(-1)!;
      options.log(
        `  ${formatNumber(size)} items (${build.method}, ${formatMiB(build.fileBytes)} MiB, built in ${formatMs(build.ms)} ms): ` +
          `ready in ${formatMs(median(starts.map((s) => s.readyMs)))} ms, RSS ${formatMiB(last.rssBytes)} MiB`,
      );
      rows.push({ size, build, starts });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return rows;
}

/**
 * Memory per unit added between consecutive sizes, e.g. "1,000→10,000: 14.2 KiB, 10,000→20,000: 14.0 KiB":
 * free of the one-time costs and RSS noise that the first size's figure carries.
 */
function marginal(points: Array<[number, number]>, format: (perUnit: number) => string): string {
  const steps = points.slice(1).map(([size, bytes], index) => {
    const [previousSize, previousBytes] = points[index];
    return `${formatNumber(previousSize)}→${formatNumber(size)}: ${format((bytes - previousBytes) / (size - previousSize))}`;
  });
  return steps.length > 0 ? steps.join(", ") : "n/a (one size)";
}

const column = <T>(label: string, result: T | undefined, missing: string | undefined, value: (result: T) => Map<number, number>): SeriesColumn =>
  result === undefined ? { label, values: new Map(), unavailable: label === "redis" && missing ? missing : "failed, see notes" } : { label, values: value(result) };

function itemsSeries(results: Map<ScaleAdapter, ItemsRow[] | undefined>, redisMissing: string | undefined): Series[] {
  const make = (title: string, unit: string, linearExponent: 0 | 1, pick: (row: ItemsRow) => number, format: (v: number) => string): Series => ({
    title,
    unit,
    size: "items per group",
    sizes: SIZES.items,
    linearExponent,
    format,
    columns: [...results].map(([adapter, rows]) => column(adapter, rows, redisMissing, (r) => new Map(r.map((row) => [row.size, pick(row)])))),
  });
  const ms = (v: number) => formatNumber(v, v < 10 ? 2 : 0);
  return [
    make("Set latency, p50", "ms", 0, (r) => r.setP50Ms, ms),
    make("Set latency, p99", "ms", 0, (r) => r.setP99Ms, ms),
    make("Get latency, p50", "ms", 0, (r) => r.getP50Ms, ms),
    make("Get latency, p99", "ms", 0, (r) => r.getP99Ms, ms),
    make("Full snapshot time", "ms", 1, (r) => median(r.snapshotMs), ms),
    make("Full snapshot, server CPU", "ms", 1, (r) => median(r.snapshotServerCpuMs), ms),
    make("Full snapshot size", "KiB", 1, (r) => r.snapshotBytes / 1024, (v) => formatNumber(v, v < 10 ? 2 : 0)),
  ];
}

function groupsSeries(results: Map<ScaleAdapter, GroupsRow[] | undefined>, redisMissing: string | undefined): Series[] {
  const make = (title: string, unit: string, linearExponent: 0 | 1, pick: (row: GroupsRow) => number, format: (v: number) => string, elsewhere?: Partial<Record<ScaleAdapter, string>>): Series => ({
    title,
    unit,
    size: "groups",
    sizes: SIZES.groups,
    linearExponent,
    format,
    columns: [...results].map(([adapter, rows]) =>
      elsewhere?.[adapter] ? { label: adapter, values: new Map(), unavailable: elsewhere[adapter] } : column(adapter, rows, redisMissing, (r) => new Map(r.map((row) => [row.size, pick(row)])))),
  });
  const bytes = (v: number) => formatNumber(v, v < 10 ? 1 : 0);
  return [
    make("Server memory per group", "bytes", 0, (r) => (r.rssBytes - r.baselineRssBytes) / r.size, bytes),
    make("Store memory or disk per group", "bytes", 0, (r) => (r.storeBytes - r.baselineStoreBytes) / r.size, bytes, { memory: "in server RSS" }),
    make("ListGroups walk, every page", "ms", 1, (r) => median(r.walkMs), (v) => formatNumber(v, v < 10 ? 1 : 0)),
  ];
}

function subscribersSeries(results: Map<ScaleAdapter, SubscribersResult | undefined>, redisMissing: string | undefined): Series[] {
  const make = (title: string, unit: string, pick: (point: SubscribersResult["points"][number], result: SubscribersResult) => number, format: (v: number) => string): Series => ({
    title,
    unit,
    size: "subscribers on one group",
    sizes: SIZES.subscribers,
    linearExponent: 0,
    format,
    columns: [...results].map(([adapter, result]) =>
      column(adapter, result, redisMissing, (r) => new Map(r.points.map((p, index) => [SIZES.subscribers[index], pick(p, r)]))),
    ),
  });
  return [
    make("Server CPU per delivery", "µs", (p) => p.serverCpuMicrosPerDelivery, (v) => formatNumber(v, 2)),
    make("Idle server memory per subscriber", "KiB", (p, r) => (p.idleRssBytes - r.baselineRssBytes) / p.subscribers / 1024, (v) => formatNumber(v, 2)),
  ];
}

function storeSeries(rows: StoreRow[]): Series[] {
  const sized = rows.filter((row) => row.size > 0);
  const make = (title: string, unit: string, linearExponent: 0 | 1, pick: (row: StoreRow) => number, format: (v: number) => string): Series => ({
    title,
    unit,
    size: "items in the store",
    sizes: sized.map((row) => row.size),
    linearExponent,
    format,
    columns: [{ label: "file", values: new Map(sized.map((row) => [row.size, pick(row)])) }],
  });
  return [
    make("Time to ready (spawn to /healthz 200)", "ms", 1, (row) => median(row.starts.map((s) => s.readyMs)), formatMs),
    make("Server RSS when ready", "MiB", 1, (row) => median(row.starts.map((s) => s.rssBytes)) / 2 ** 20, (v) => formatNumber(v, 1)),
  ];
}

function storeNotes(rows: StoreRow[]): string[] {
  const empty = rows.find((row) => row.size === 0);
  return [
    `store: ${ITEMS_PER_STORE_GROUP.toLocaleString("en-US")} items per group; a fresh server on the built store each repeat (the store's pages are in the OS cache: it was just written); time to ready = spawn of bin/iii-stream.mjs to the first /healthz 200, RSS read after settling.`,
    ...(empty ? [`store: an empty store for comparison: ready in ${formatMs(median(empty.starts.map((s) => s.readyMs)))} ms, RSS ${formatMiB(median(empty.starts.map((s) => s.rssBytes)))} MiB.`] : []),
    ...rows
      .filter((row) => row.size > 0)
      .map(
        (row) =>
          `store: ${formatNumber(row.size)} items in ${formatNumber(row.build.groups)} groups built by ${row.build.method} in ${formatNumber(row.build.ms / 1000, 1)} s, ` +
          `${formatMiB(row.build.fileBytes)} MiB on disk; listening after ${formatMs(median(row.starts.map((s) => s.listeningMs)))} ms.`,
      ),
  ];
}
