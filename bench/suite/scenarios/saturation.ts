import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { sleep } from "../../load/load-io.js";
import type { SaturationProbeResult, SaturationSubscribersResult, SaturationTransport } from "../../load/saturation-jobs.js";
import { formatMiB, formatMs, formatNumber } from "../format.js";
import { runLoad, startOurs, type RunningServer } from "../processes.js";
import { isWanted, type Scenario, type Table } from "../scenario.js";
import { median } from "../stats.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import type { Chart } from "../svg-chart.js";
import { memoryGuardBytes } from "./memory-guard.js";
import { fatalError } from "./server-fatal.js";

/** Issue 13's figure: 20,000 subscriptions on one group with 100 writes/s offered. */
const SUBSCRIPTIONS = 20_000;
const SECONDS = 30;
const WRITES_PER_SECOND = 100;
/**
 * Subscriptions per connection: a process here may hold at most 20,000 file
 * descriptors, and the server holds one per connection too, so 20,000 subscriptions
 * cannot each have their own; `scale` shares HTTP/2 connections the same way.
 */
const PER_CONNECTION = 10;
const SAMPLE_EVERY = 100;
const JOIN_PARALLEL_CONNECTIONS = 20;
const JOIN_TIMEOUT_MS = 30_000;
/** The probe alone, subscribers joined and nothing written: the reference its latencies are read against. */
const BASELINE_MS = 3000;
const PROBE_INTERVAL_MS = 10;
const WARMUP_WRITES = 1000;
const WARMUP_PAIRS = 200;
const DRAIN_MS = 15_000;
const CALL_TIMEOUT_MS = 30_000;
const SAMPLE_MS = 250;
/** After the probe load ended, before the subscribers stop and report: deliveries still on their way may arrive. */
const TAIL_MS = 3000;
/** Setting up the probe load (warm-up writes and pairs) may take this long on a loaded server. */
const SETUP_BUDGET_MS = 60_000;
const READY_POLL_MS = 200;
const LOG_TAIL = 2000;
/** Below this many probe pairs in the window, p99 is just the slowest pair, and the notes say so. */
const FEW_PAIRS = 100;

interface System {
  label: string;
  /** Chart legends have little room. */
  short: string;
  /** Undefined for the reference: the same writer and probe with nobody subscribed. */
  transport: SaturationTransport | undefined;
  /** How the subscriptions share connections, for the notes. */
  sharing: string;
}

const SYSTEMS: System[] = [
  { label: "no subscriptions (reference)", short: "none", transport: undefined, sharing: "none" },
  {
    label: "Subscribe, Connect binary, HTTP/2",
    short: "Subscribe",
    transport: "subscribe",
    sharing: `${PER_CONNECTION} Subscribe calls per HTTP/2 connection`,
  },
  { label: "stream socket", short: "stream socket", transport: "stream-socket", sharing: `${PER_CONNECTION} joins per WebSocket` },
];

/** One run of one system: what each process measured, or why it did not. */
interface Run {
  probe: SaturationProbeResult | undefined;
  subscribers: SaturationSubscribersResult | undefined;
  error: string | undefined;
  serverFatal: string | undefined;
  serverLogTail: string;
}

/** JSON turns NaN into null; figures read back as numbers. */
const num = (value: number | null | undefined): number => (typeof value === "number" ? value : NaN);

export const saturationScenario: Scenario = {
  name: "saturation",
  title: "What another client sees while fan-out is saturated: probe Set+Get latency and write acknowledgements with 20,000 subscriptions on one group and 100 writes/s offered",
  // One run of each system takes about two minutes at full size.
  defaultRuns: 1,
  async run(options) {
    const subscriptions = options.subscribers ?? SUBSCRIPTIONS;
    const seconds = options.seconds ?? SECONDS;
    const guard = memoryGuardBytes();
    const systems = SYSTEMS.filter((s) => isWanted(options, s.label));
    const results = new Map<System, Run[]>(systems.map((s) => [s, []]));
    const notes: string[] = [];
    for (let run = 0; run < options.runs; run++) {
      for (let index = 0; index < systems.length; index++) {
        const system = systems[(index + run) % systems.length];
        options.log(`run ${run + 1}/${options.runs}: ${system.label}${system.transport ? `, ${formatNumber(subscriptions)} subscriptions` : ""}, ${seconds} s of writes`);
        // A fresh server each time: what one system's subscriptions left behind would count against the next.
        const server = await startOurs("iii-stream", ["--adapter", "memory"]);
        try {
          if (system.transport === "stream-socket") {
            const missing = await streamSocketUnavailable(server.url);
            if (missing) {
              notes.push(`stream socket not available: ${missing}`);
              continue;
            }
          }
          const result = await measure(system, server, subscriptions, seconds, guard, run);
          results.get(system)!.push(result);
          options.log(`  ${summaryLine(result)}`);
        } finally {
          await server.stop();
        }
      }
    }
    const all = [...results].filter(([, runs]) => runs.length > 0);
    for (const [system, runs] of all) {
      runs.forEach((r, run) => {
        if (r.error) notes.push(`${system.label}, run ${run + 1}: ${r.error}`);
        if (r.serverFatal) notes.push(`${system.label}, run ${run + 1}: the server died: ${r.serverFatal}`);
        if (r.probe?.rss.guardTripped) notes.push(`${system.label}, run ${run + 1}: the server passed the memory guard and was killed.`);
        // A percentile of a handful of pairs is the slowest of them: say so where the table cannot.
        if (r.probe && r.probe.probe.pairs < FEW_PAIRS) {
          notes.push(`${system.label}, run ${run + 1}: only ${r.probe.probe.pairs} probe pairs completed in the window, so its probe p99 is the slowest pair.`);
        }
      });
    }
    return {
      tables: [mainTable(all, subscriptions), deliveryTable(all)],
      charts: charts(all),
      targets: [],
      notes: [
        `Server: the CLI on the memory adapter, pinned to core 0. Subscriptions: ${formatNumber(subscriptions)} on one group, ${PER_CONNECTION} to a connection (a process here may hold at most 20,000 file descriptors, so they cannot each have their own): Subscribe shares HTTP/2 connections (${PER_CONNECTION} calls each, Connect binary), the stream socket shares WebSockets (${PER_CONNECTION} joins each). Every subscription reads as fast as its client can; every ${SAMPLE_EVERY}th also decodes its changes and counts them (the "sampled" columns), the others only count bytes.`,
        `Writer: Set over Connect binary on an HTTP/2 connection of its own, ${WRITES_PER_SECOND}/s offered on a fixed schedule whatever is acknowledged (in flight without bound), small JSON values cycling over 16 items; "writes acked/s" counts the acknowledgements that arrived within the ${seconds} s window. Writes still unacknowledged ${DRAIN_MS / 1000} s after the window are "outstanding"; the ack percentiles cover the acknowledged ones.`,
        `Probe: on an HTTP/2 connection of its own, a Set then a Get of one item of a group nobody subscribed to, pair after pair, a pair starting at most every ${PROBE_INTERVAL_MS} ms; "before writes" is the probe over ${BASELINE_MS / 1000} s with every subscription joined and nothing written. ${WARMUP_WRITES} writes to another group and ${WARMUP_PAIRS} probe pairs warm the paths first, unmeasured.`,
        `Processes: subscribers in one load process, writer and probe in another, both on core 1; the subscribers' process runs at niceness 10, so the probe's process is scheduled first whenever it has work and its latencies are the server's. "load cores" is the subscribers' process's share of core 1 while reading: near 1, the clients, not the server, bounded the deliveries.`,
        `Server CPU is its user + system time over the window from /proc (100% = one core); RSS is VmRSS when the window began and the highest reading during it (every ${SAMPLE_MS} ms). The server is killed if it passes ${formatMiB(guard)} MiB (guard).`,
        `Deliveries: "per sampled subscription/s" counts the changes the sampled subscriptions received in the window's whole seconds; "all, estimated" multiplies it by the joined subscriptions; "delivered by the end" is what the sampled subscriptions had received ${TAIL_MS / 1000} s after the writes were acknowledged (or the drain ended), against the acknowledged writes. Lag: the writer's clock when it sent the Set to a sampled subscription's receipt.`,
        ...notes,
      ],
      config: {
        subscriptions,
        seconds,
        writesPerSecond: WRITES_PER_SECOND,
        perConnection: PER_CONNECTION,
        sampleEvery: SAMPLE_EVERY,
        baselineMs: BASELINE_MS,
        probeIntervalMs: PROBE_INTERVAL_MS,
        warmupWrites: WARMUP_WRITES,
        warmupPairs: WARMUP_PAIRS,
        drainMs: DRAIN_MS,
        callTimeoutMs: CALL_TIMEOUT_MS,
        tailMs: TAIL_MS,
        memoryGuardBytes: guard,
        runs: options.runs,
      },
      raw: all.map(([system, runs]) => ({ system: system.label, runs })),
    };
  },
};

/** Runs the subscribers' load (if any), waits until they joined, runs the probe load, then stops the subscribers. */
async function measure(system: System, server: RunningServer, subscriptions: number, seconds: number, guard: number, run: number): Promise<Run> {
  const directory = mkdtempSync(join(os.tmpdir(), "iii-stream-saturation-"));
  const readyFile = join(directory, "ready");
  const stopFile = join(directory, "stop");
  const groupId = `saturation-${run}`;
  const probeDeadlineMs = SETUP_BUDGET_MS + BASELINE_MS + seconds * 1000 + DRAIN_MS + 30_000;
  const joinBudgetMs = 120_000 + subscriptions * 10;
  let subscribersLoad: Promise<SaturationSubscribersResult> | undefined;
  const finished = (partial: Partial<Run>): Run => ({
    probe: undefined,
    subscribers: undefined,
    error: undefined,
    ...partial,
    serverFatal: fatalError(server.output()),
    serverLogTail: server.output().slice(-LOG_TAIL),
  });
  try {
    if (system.transport) {
      subscribersLoad = runLoad("saturation-subscribers", {
        transport: system.transport,
        url: server.url,
        groupId,
        subscriptions,
        perConnection: PER_CONNECTION,
        sampleEvery: SAMPLE_EVERY,
        joinParallelConnections: JOIN_PARALLEL_CONNECTIONS,
        joinTimeoutMs: JOIN_TIMEOUT_MS,
        readyFile,
        stopFile,
        deadlineMs: joinBudgetMs + probeDeadlineMs + TAIL_MS + 30_000,
      });
      // Until the subscribers' process reports, its failure is the answer; it must not go unhandled meanwhile.
      let failure: string | undefined;
      subscribersLoad.catch((error: Error) => void (failure = error.message));
      const deadline = Date.now() + joinBudgetMs;
      while (!existsSync(readyFile) && failure === undefined && Date.now() < deadline) await sleep(READY_POLL_MS);
      if (!existsSync(readyFile)) {
        writeFileSync(stopFile, "");
        return finished({ error: failure ?? `the subscriptions did not all join or fail within ${joinBudgetMs / 1000} s` });
      }
    }
    let probe: SaturationProbeResult | undefined;
    let error: string | undefined;
    try {
      probe = await runLoad("saturation-probe", {
        url: server.url,
        serverPid: server.pid,
        groupId,
        probeGroupId: `${groupId}-probe`,
        writesPerSecond: WRITES_PER_SECOND,
        seconds,
        baselineMs: BASELINE_MS,
        probeIntervalMs: PROBE_INTERVAL_MS,
        warmupWrites: WARMUP_WRITES,
        warmupPairs: WARMUP_PAIRS,
        drainMs: DRAIN_MS,
        callTimeoutMs: CALL_TIMEOUT_MS,
        sampleMs: SAMPLE_MS,
        memoryGuardBytes: guard,
        deadlineMs: probeDeadlineMs,
      });
    } catch (failure) {
      error = (failure as Error).message;
    }
    if (!subscribersLoad) return finished({ probe, error });
    await sleep(TAIL_MS);
    writeFileSync(stopFile, "");
    const subscribers = await subscribersLoad.catch((failure: Error) => {
      error = [error, failure.message].filter(Boolean).join("; ");
      return undefined;
    });
    return finished({ probe, subscribers, error });
  } finally {
    if (subscribersLoad && !existsSync(stopFile)) writeFileSync(stopFile, "");
    await subscribersLoad?.catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Acknowledged writes per second of the window. */
const ackedPerSecond = (p: SaturationProbeResult) => p.writes.ackedInWindow / (p.windowMs / 1000);
const offeredPerSecond = (p: SaturationProbeResult) => p.writes.offered / (p.windowMs / 1000);

/** Changes per sampled subscription per second, over the window's whole seconds. */
function sampledPerSecond(s: SaturationSubscribersResult, p: SaturationProbeResult): number {
  const first = Math.ceil(p.windowStartEpochMs / 1000);
  const last = Math.floor((p.windowStartEpochMs + p.windowMs) / 1000);
  if (last <= first || s.sampled === 0) return NaN;
  const within = s.sampleBySecond.filter(([second]) => second >= first && second < last).reduce((sum, [, n]) => sum + n, 0);
  return within / (last - first) / s.sampled;
}

function summaryLine(r: Run): string {
  const p = r.probe;
  const s = r.subscribers;
  if (!p) return `failed: ${r.error ?? "no result"}`;
  return (
    (s ? `joined ${formatNumber(s.joined)} (${s.joinFailures} failed) in ${formatNumber(s.joinMs / 1000, 1)} s; ` : "") +
    `writes ${formatNumber(offeredPerSecond(p), 1)}/s offered, ${formatNumber(ackedPerSecond(p), 1)}/s acked, ack p99 ${formatMs(num(p.writes.ackP99Ms))} ms; ` +
    `probe p50/p99/max ${formatMs(num(p.probe.p50Ms))} / ${formatMs(num(p.probe.p99Ms))} / ${formatMs(num(p.probe.maxMs))} ms (before writes p99 ${formatMs(num(p.baseline.p99Ms))}); ` +
    `server ${formatNumber(num(p.serverCores) * 100)}% CPU, RSS peak ${formatMiB(p.rss.peakBytes)} MiB` +
    (s ? `; sampled ${formatNumber(sampledPerSecond(s, p), 1)} changes/s each, lag p99 ${formatMs(num(s.lagP99Ms))} ms, load ${formatNumber(num(s.loadCores), 2)} cores` : "") +
    (r.error ? `; ${r.error}` : "")
  );
}

/** Medians over the runs that produced this figure. */
function med<T>(runs: Run[], pick: (r: Run) => T | undefined, figure: (t: T) => number): number {
  return median(runs.map(pick).filter((t): t is T => t !== undefined).map(figure));
}
const probeOf = (r: Run) => r.probe;
const subscribersOf = (r: Run) => r.subscribers;

function mainTable(all: Array<[System, Run[]]>, subscriptions: number): Table {
  return {
    title: `Saturation: ${formatNumber(subscriptions)} subscriptions on one group, ${WRITES_PER_SECOND} writes/s offered; a probe client's Set+Get meanwhile (medians over runs)`,
    header: [
      "system",
      "subscriptions",
      "writes offered/s",
      "writes acked/s",
      "write ack p50 / p99 ms",
      "probe p50 ms",
      "probe p99 ms",
      "probe max ms",
      "probe p99 before writes ms",
      "server CPU %",
      "RSS start / peak MiB",
    ],
    rows: all.map(([system, runs]) => [
      system.label,
      system.transport ? formatNumber(med(runs, subscribersOf, (s) => s.joined)) : "0",
      formatNumber(med(runs, probeOf, offeredPerSecond), 1),
      formatNumber(med(runs, probeOf, ackedPerSecond), 1),
      `${formatMs(med(runs, probeOf, (p) => num(p.writes.ackP50Ms)))} / ${formatMs(med(runs, probeOf, (p) => num(p.writes.ackP99Ms)))}`,
      formatMs(med(runs, probeOf, (p) => num(p.probe.p50Ms))),
      formatMs(med(runs, probeOf, (p) => num(p.probe.p99Ms))),
      formatMs(med(runs, probeOf, (p) => num(p.probe.maxMs))),
      formatMs(med(runs, probeOf, (p) => num(p.baseline.p99Ms))),
      formatNumber(med(runs, probeOf, (p) => num(p.serverCores) * 100)),
      `${formatMiB(med(runs, probeOf, (p) => num(p.rssStartBytes)))} / ${formatMiB(med(runs, probeOf, (p) => p.rss.peakBytes))}`,
    ]),
  };
}

function deliveryTable(all: Array<[System, Run[]]>): Table {
  const withSubscribers = all.filter(([system]) => system.transport !== undefined);
  return {
    title: "Deliveries, the clients' side and failures (medians over runs; counts summed)",
    header: [
      "system",
      "connections",
      "join s",
      "sampled",
      "changes/s per sampled subscription",
      "deliveries/s, all (estimated)",
      "delivered by the end",
      "lag p50 / p99 / max ms",
      "lost",
      "load cores",
      "probe pairs (errors)",
      "writes failed / outstanding",
    ],
    rows: withSubscribers.map(([system, runs]) => {
      const both = runs.filter((r) => r.probe && r.subscribers) as Array<Run & { probe: SaturationProbeResult; subscribers: SaturationSubscribersResult }>;
      const perSampled = median(both.map((r) => sampledPerSecond(r.subscribers, r.probe)));
      const byEnd = median(both.map((r) => r.subscribers.sampleDeliveries / Math.max(1, r.subscribers.sampled * r.probe.writes.acked)));
      return [
        system.label,
        formatNumber(med(runs, subscribersOf, (s) => s.connections)),
        formatNumber(med(runs, subscribersOf, (s) => s.joinMs / 1000), 1),
        formatNumber(med(runs, subscribersOf, (s) => s.sampled)),
        formatNumber(perSampled, 1),
        formatNumber(median(both.map((r) => sampledPerSecond(r.subscribers, r.probe) * r.subscribers.joined))),
        Number.isFinite(byEnd) ? `${formatNumber(byEnd * 100, 1)}%` : "n/a",
        `${formatMs(med(runs, subscribersOf, (s) => num(s.lagP50Ms)))} / ${formatMs(med(runs, subscribersOf, (s) => num(s.lagP99Ms)))} / ${formatMs(med(runs, subscribersOf, (s) => num(s.lagMaxMs)))}`,
        formatNumber(runs.reduce((sum, r) => sum + (r.subscribers?.lost ?? 0), 0)),
        formatNumber(med(runs, subscribersOf, (s) => num(s.loadCores)), 2),
        `${formatNumber(med(runs, probeOf, (p) => p.probe.pairs))} (${runs.reduce((sum, r) => sum + (r.probe?.probe.errors ?? 0), 0)})`,
        `${runs.reduce((sum, r) => sum + (r.probe?.writes.failed ?? 0), 0)} / ${runs.reduce((sum, r) => sum + (r.probe?.writes.outstanding ?? 0), 0)}`,
      ];
    }),
  };
}

function charts(all: Array<[System, Run[]]>): Chart[] {
  /** The first run of each system that has a probe result: one line each. */
  const firsts = all.flatMap(([system, runs]) => {
    const run = runs.find((r) => r.probe);
    return run ? [{ system, run, probe: run.probe! }] : [];
  });
  const perSecond = (pick: (second: SaturationProbeResult["seconds"][number]) => number) =>
    firsts.map(({ system, probe }) => ({
      label: system.short,
      ours: true,
      points: probe.seconds.map((second, index): [number, number] => [index + 1, pick(second)]).filter(([, y]) => Number.isFinite(y)),
    }));
  return [
    {
      kind: "bars",
      title: "Probe Set+Get p99 while the writes ran (lower is better)",
      unit: "ms",
      bars: all.map(([system, runs]) => ({ label: system.label, value: med(runs, probeOf, (p) => num(p.probe.p99Ms)), ours: true, system: system.short })),
    },
    {
      kind: "lines",
      title: "Writes acknowledged per second (first run; writes stop at the window's end, the drain follows)",
      xLabel: "s since the window began",
      yLabel: "acks/s",
      series: perSecond((s) => s.acked),
      limit: { y: WRITES_PER_SECOND, label: "offered" },
    },
    {
      kind: "lines",
      title: "Slowest probe Set+Get started in each second (first run)",
      xLabel: "s since the window began",
      yLabel: "ms",
      series: perSecond((s) => (s.probePairs > 0 ? s.probeMaxMs : NaN)),
    },
    {
      kind: "lines",
      title: "Server CPU per second (first run; 1 = one core)",
      xLabel: "s since the window began",
      yLabel: "cores",
      series: perSecond((s) => num(s.serverCores)),
    },
  ];
}
