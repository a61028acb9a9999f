import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { UnaryProtocol } from "../../load/jobs.js";
import { formatMicros, formatNumber, formatRatio } from "../format.js";
import { H2LOAD_AVAILABLE, runH2load, type H2loadFigures, type H2loadMethod } from "../h2load.js";
import { startOurs, startPeer, waitForQuiet, type RunningServer } from "../processes.js";
import type { Scenario, ScenarioOptions, Table, TargetCheck } from "../scenario.js";
import { median, ratio } from "../stats.js";
import type { BarChart } from "../svg-chart.js";
import { ratioTarget, unavailableTarget } from "../targets.js";
import { compareUnary, measureUnary, medianCalls, PROTOCOL_LABELS, targetOf, UNARY_MEASURE_MS, UNARY_WARMUP_MS, unaryTable } from "./unary-shape.js";

const PROTOCOLS: UnaryProtocol[] = ["connect-binary-h2", "connect-json-h1", "grpc"];
const CONCURRENCIES = [16, 64];
const OURS = "iii-stream";
const PLAIN = "iii-stream plain";
const CEILING = "no-op";
/** The fast path on the file adapter: every Set answered after its commit's fsync. */
const DURABLE = "iii-stream file";
/** Every system h2load measures, as the comparisons list them. */
const H2LOAD_SYSTEMS = [OURS, PLAIN, CEILING, DURABLE];
/** Issue 19: Set calls/s on the fast path at least 2.5x the do-nothing connect-node server... */
const THROUGHPUT_BOUND = 2.5;
/** ...at most 0.4x its server CPU per call. */
const CPU_BOUND = 0.4;
/** Issue 7, kept for the plain path: at least 0.8x the do-nothing server. */
const PLAIN_THROUGHPUT_BOUND = 0.8;
const H2LOAD_SECONDS = 2;
const H2LOAD_WARMUP_SECONDS = 1;
const H2LOAD_METHODS: H2loadMethod[] = ["Set", "Get"];

export const unaryScenario: Scenario = {
  name: "unary",
  title: "Set calls/s: iii-stream (memory adapter: fast path and plain connect-node path; file adapter under h2load) against a connect-node server whose Set does nothing",
  async run(options) {
    const servers: RunningServer[] = [];
    const dataDir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-unary-"));
    try {
      const ours = await startOurs(OURS, ["--adapter", "memory"]);
      servers.push(ours);
      const plain = await startOurs(PLAIN, ["--adapter", "memory", "--no-unary-fast-path"]);
      servers.push(plain);
      const noop = await startPeer("no-op connect-node", "noop-connect-server");
      servers.push(noop);
      const durable = await startOurs(DURABLE, ["--adapter", "file", "--data-dir", dataDir]);
      servers.push(durable);
      const runs = await measureUnary([targetOf(OURS, [ours]), targetOf(PLAIN, [plain]), targetOf(CEILING, [noop])], PROTOCOLS, CONCURRENCIES, options);
      const fast = compareUnary(runs, OURS, CEILING);
      const plainVsCeiling = compareUnary(runs, PLAIN, CEILING);
      const fastVsPlain = compareUnary(runs, OURS, PLAIN);
      const h2load = H2LOAD_AVAILABLE
        ? await measureH2load(
            [
              { system: OURS, url: ours.url, pids: [ours.pid] },
              { system: PLAIN, url: plain.url, pids: [plain.pid] },
              { system: CEILING, url: noop.url, pids: [noop.pid] },
              { system: DURABLE, url: durable.url, pids: [durable.pid] },
            ],
            options,
          )
        : [];
      const chart: BarChart = {
        kind: "bars",
        title: "Set calls/s (median, Node callers): fast path, plain path, no-op ceiling",
        unit: "calls/s",
        bars: fast.flatMap((c, index) => [
          { label: `${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency}: fast path`, value: medianCalls(c.subject), ours: true, system: OURS },
          { label: `${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency}: plain path`, value: medianCalls(plainVsCeiling[index].subject), ours: true, system: PLAIN },
          { label: `${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency}: no-op`, value: medianCalls(c.baseline), system: CEILING },
        ]),
      };
      const targets: TargetCheck[] = [
        ...fast.flatMap((c) => [
          ratioTarget(`Set calls/s ≥ ${THROUGHPUT_BOUND}x the no-op ceiling, Node callers (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.throughputRatio, THROUGHPUT_BOUND, "at least", nodeCallersNote(c.subject)),
          ratioTarget(`server CPU per Set ≤ ${CPU_BOUND}x the no-op's, Node callers (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.cpuRatio, CPU_BOUND, "at most"),
        ]),
        ...plainVsCeiling.map((c) =>
          ratioTarget(`plain path: Set calls/s ≥ ${PLAIN_THROUGHPUT_BOUND}x the no-op ceiling (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.throughputRatio, PLAIN_THROUGHPUT_BOUND, "at least"),
        ),
        ...(H2LOAD_AVAILABLE ? h2loadTargets(h2load) : [unavailableTarget("Set calls/s and CPU with h2load", "h2load is not installed (Debian: nghttp2-client)")]),
      ];
      return {
        tables: [
          unaryTable("Set, Node callers: fast path vs no-op ceiling (ratio = fast / no-op, median of per-run ratios)", fast, OURS, CEILING),
          unaryTable("Set, Node callers: plain connect-node path vs no-op ceiling", plainVsCeiling, PLAIN, CEILING),
          unaryTable("Set, Node callers: fast path vs plain path", fastVsPlain, OURS, PLAIN),
          ...(H2LOAD_AVAILABLE ? [h2loadTable(h2load), h2loadDurableTable(h2load)] : []),
        ],
        charts: [chart],
        targets,
        notes: [
          "Node callers: the load generator (one Node process on its own core) saturates before a fast server does; its rows then measure the caller, and h2load's rows are the ones that hold for throughput. CPU per call holds in both.",
          "h2load sends one pre-encoded body over and over: its Set always writes the same item, its Get reads that item. On the memory adapter writers of one item queue on its lock; on the file adapter each joins the commit of the writes queued before it, so a commit (one fsync) carries every Set in flight.",
        ],
        config: {
          protocols: PROTOCOLS,
          concurrencies: CONCURRENCIES,
          warmupMs: UNARY_WARMUP_MS,
          measureMs: UNARY_MEASURE_MS,
          h2loadSeconds: H2LOAD_SECONDS,
          runs: options.runs,
        },
        raw: { nodeCallers: runs, h2load },
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

function nodeCallersNote(figures: { loadCores: number }[]): string | undefined {
  const load = median(figures.map((f) => f.loadCores));
  return load >= 0.9 ? `load generator at ${formatNumber(load, 2)} of its core: the figure is the caller's limit` : undefined;
}

/** h2load for each method, protocol and concurrency on each target, `runs` times, the order rotating. */
async function measureH2load(targets: { system: string; url: string; pids: number[] }[], options: ScenarioOptions): Promise<H2loadFigures[][]> {
  for (const target of targets) {
    for (const protocol of PROTOCOLS) await runH2load(target, "Set", protocol, 16, H2LOAD_WARMUP_SECONDS);
  }
  // The file adapter is measured on Set only: durability is a matter of writes.
  const measures = (target: { system: string }, method: H2loadMethod) => target.system !== DURABLE || method === "Set";
  const runs: H2loadFigures[][] = [];
  for (let run = 0; run < options.runs; run++) {
    options.log(`h2load run ${run + 1}/${options.runs}`);
    const figures: H2loadFigures[] = [];
    for (const method of H2LOAD_METHODS) {
      for (const protocol of PROTOCOLS) {
        for (const concurrency of CONCURRENCIES) {
          for (let index = 0; index < targets.length; index++) {
            const target = targets[(index + run) % targets.length];
            if (!measures(target, method)) continue;
            await waitForQuiet(target.pids, 2000);
            figures.push(await runH2load(target, method, protocol, concurrency, H2LOAD_SECONDS));
          }
        }
      }
    }
    runs.push(figures);
  }
  return runs;
}

interface H2loadComparison {
  method: H2loadMethod;
  protocol: UnaryProtocol;
  concurrency: number;
  calls: Record<string, number>;
  cpu: Record<string, number>;
  failed: number;
  /** Median over runs of fast / no-op within each run. */
  throughputRatio: number;
  cpuRatio: number;
  plainThroughputRatio: number;
  plainCpuRatio: number;
  durableThroughputRatio: number;
  durableCpuRatio: number;
}

function compareH2load(runs: H2loadFigures[][]): H2loadComparison[] {
  const comparisons: H2loadComparison[] = [];
  for (const method of H2LOAD_METHODS) {
    for (const protocol of PROTOCOLS) {
      for (const concurrency of CONCURRENCIES) {
        const pick = (run: H2loadFigures[], system: string) => run.find((f) => f.system === system && f.method === method && f.protocol === protocol && f.concurrency === concurrency);
        const all = runs.flatMap((run) => H2LOAD_SYSTEMS.map((system) => pick(run, system))).filter((f) => f !== undefined);
        if (all.length === 0) continue;
        const of = (system: string, value: (f: H2loadFigures) => number) => median(runs.map((run) => pick(run, system)).filter((f) => f !== undefined).map(value));
        const paired = (system: string, value: (f: H2loadFigures) => number) => median(runs.map((run) => ratio(pick(run, system) && value(pick(run, system)!), pick(run, CEILING) && value(pick(run, CEILING)!))));
        comparisons.push({
          method,
          protocol,
          concurrency,
          calls: Object.fromEntries(H2LOAD_SYSTEMS.map((s) => [s, of(s, (f) => f.callsPerSecond)])),
          cpu: Object.fromEntries(H2LOAD_SYSTEMS.map((s) => [s, of(s, (f) => f.serverCpuMicrosPerCall)])),
          failed: all.reduce((sum, f) => sum + f.failed, 0),
          throughputRatio: paired(OURS, (f) => f.callsPerSecond),
          cpuRatio: paired(OURS, (f) => f.serverCpuMicrosPerCall),
          plainThroughputRatio: paired(PLAIN, (f) => f.callsPerSecond),
          plainCpuRatio: paired(PLAIN, (f) => f.serverCpuMicrosPerCall),
          durableThroughputRatio: paired(DURABLE, (f) => f.callsPerSecond),
          durableCpuRatio: paired(DURABLE, (f) => f.serverCpuMicrosPerCall),
        });
      }
    }
  }
  return comparisons;
}

function h2loadTable(runs: H2loadFigures[][]): Table {
  return {
    title: "h2load (pre-encoded bodies; calls/s and server µs CPU per call, medians; ratios to the no-op are medians of per-run ratios)",
    header: ["method", "protocol", "callers", "fast calls/s", "plain calls/s", "no-op calls/s", "fast / no-op", "plain / no-op", "fast µs CPU/call", "plain µs CPU/call", "no-op µs CPU/call", "fast CPU ratio", "plain CPU ratio", "failed"],
    rows: compareH2load(runs).map((c) => [
      c.method,
      PROTOCOL_LABELS[c.protocol],
      String(c.concurrency),
      formatNumber(c.calls[OURS]),
      formatNumber(c.calls[PLAIN]),
      formatNumber(c.calls[CEILING]),
      formatRatio(c.throughputRatio),
      formatRatio(c.plainThroughputRatio),
      formatMicros(c.cpu[OURS]),
      formatMicros(c.cpu[PLAIN]),
      formatMicros(c.cpu[CEILING]),
      formatRatio(c.cpuRatio),
      formatRatio(c.plainCpuRatio),
      String(c.failed),
    ]),
  };
}

function h2loadDurableTable(runs: H2loadFigures[][]): Table {
  return {
    title: "h2load, Set on the file adapter (fast path, fsync before each answer) vs the no-op (medians; ratios are medians of per-run ratios)",
    header: ["protocol", "callers", "file calls/s", "no-op calls/s", "file / no-op", "file µs CPU/call", "no-op µs CPU/call", "file CPU ratio", "memory µs CPU/call", "failed"],
    rows: compareH2load(runs)
      .filter((c) => c.method === "Set")
      .map((c) => [
        PROTOCOL_LABELS[c.protocol],
        String(c.concurrency),
        formatNumber(c.calls[DURABLE]),
        formatNumber(c.calls[CEILING]),
        formatRatio(c.durableThroughputRatio),
        formatMicros(c.cpu[DURABLE]),
        formatMicros(c.cpu[CEILING]),
        formatRatio(c.durableCpuRatio),
        formatMicros(c.cpu[OURS]),
        String(c.failed),
      ]),
  };
}

function h2loadTargets(runs: H2loadFigures[][]): TargetCheck[] {
  return compareH2load(runs)
    .filter((c) => c.method === "Set")
    .flatMap((c) => [
      ratioTarget(`Set calls/s ≥ ${THROUGHPUT_BOUND}x the no-op ceiling, h2load (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.throughputRatio, THROUGHPUT_BOUND, "at least"),
      ratioTarget(`server CPU per Set ≤ ${CPU_BOUND}x the no-op's, h2load (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.cpuRatio, CPU_BOUND, "at most"),
      ratioTarget(`durable Set (file adapter): calls/s ≥ ${THROUGHPUT_BOUND}x the no-op ceiling, h2load (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.durableThroughputRatio, THROUGHPUT_BOUND, "at least"),
      ratioTarget(`durable Set (file adapter): server CPU per Set ≤ ${CPU_BOUND}x the no-op's, h2load (${PROTOCOL_LABELS[c.protocol]}, ${c.concurrency} callers)`, c.durableCpuRatio, CPU_BOUND, "at most"),
    ]);
}
