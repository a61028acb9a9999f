import { LOAD_SATURATED_CORES } from "../../load/cpu-window.js";
import type { FanoutJob, FanoutResult, FanoutStep, Target } from "../../load/jobs.js";
import type { TransportName } from "../../load/transports/transports.js";
import { formatMicros, formatMs, formatNumber, formatRatio } from "../format.js";
import { runLoad, waitForQuiet } from "../processes.js";
import { isWanted, type ScenarioOptions, type Table } from "../scenario.js";
import { median, ratio } from "../stats.js";
import type { BarChart, LineChart } from "../svg-chart.js";

export const SUBSCRIBERS = 1000;
/**
 * Writes/s of each step; every write reaches all 1,000 subscribers, so the ladder
 * offers 10k to 300k deliveries/s. The first step is the reference at which every
 * system's CPU per delivery is compared: the same load for all.
 */
export const RATES = [10, 20, 40, 70, 100, 150, 200, 300];
export const STEP_MS = 2000;
/**
 * The reference step runs longer: at 10,000 deliveries/s a server uses a tenth to a
 * fifth of a core, and /proc counts CPU in 10 ms ticks, so 2 s would leave the
 * comparison to a few dozen ticks and to whatever else ran in those 2 s.
 */
export const REFERENCE_STEP_MS = 5000;
export const WARMUP_MS = 1000;
/** Writes to an empty group before the ladder, so no system's write path is measured cold. */
export const WRITE_PATH_WARMUP_WRITES = 3000;
export const DRAIN_MS = 3000;
export const P99_LIMIT_MS = 50;
const JOIN_TIMEOUT_MS = 20_000;

export interface FanoutSystem {
  label: string;
  transport: TransportName;
  /** Undefined when the system cannot run here (the reason is in `unavailable`). */
  target?: Target;
  unavailable?: string;
  ours: boolean;
}

export interface FanoutRuns {
  system: FanoutSystem;
  results: FanoutResult[];
}

/** Runs the ladder for every available system `runs` times, rotating which goes first. */
export async function measureFanout(systems: FanoutSystem[], options: ScenarioOptions, groupPrefix: string): Promise<FanoutRuns[]> {
  const measured = systems.map((system) => ({ system, results: [] as FanoutResult[] }));
  const available = measured.filter((m) => m.system.target && isWanted(options, m.system.label));
  for (let run = 0; run < options.runs; run++) {
    const order = available.map((_, index) => available[(index + run) % available.length]);
    for (const { system, results } of order) {
      const rates = ladderAfter(results[0]);
      const target = system.target!;
      options.log(`run ${run + 1}/${options.runs}: ${system.label}`);
      const job: FanoutJob = {
        transport: system.transport,
        target,
        subscribers: SUBSCRIBERS,
        groupId: `${groupPrefix}-${run}-${system.transport}`,
        rates,
        stepMs: STEP_MS,
        referenceStepMs: REFERENCE_STEP_MS,
        warmupMs: WARMUP_MS,
        writePathWarmupWrites: WRITE_PATH_WARMUP_WRITES,
        drainMs: DRAIN_MS,
        p99LimitMs: P99_LIMIT_MS,
        joinTimeoutMs: JOIN_TIMEOUT_MS,
        deadlineMs: JOIN_TIMEOUT_MS * 2 + WARMUP_MS + DRAIN_MS + 2 * REFERENCE_STEP_MS + 2 * rates.length * (STEP_MS + DRAIN_MS) + 10_000,
      };
      results.push(await runLoad("fanout", job));
      await waitForQuiet(target.pids);
    }
  }
  return measured;
}

/**
 * The rates a run climbs: the whole ladder the first time; later runs measure the
 * reference step, then resume one step below the first run's highest sustained rate,
 * which keeps several runs of every system within the suite's time.
 */
function ladderAfter(first: FanoutResult | undefined): number[] {
  const best = first ? maxSustained(first) : undefined;
  const resumeAt = best ? RATES.indexOf(best.writesPerSecond) - 1 : 1;
  return [RATES[0], ...RATES.slice(Math.max(1, resumeAt))];
}

/** The highest delivery rate a run sustained (every delivery, p99 within the limit); 0 if none. */
export function maxSustained(result: FanoutResult): FanoutStep | undefined {
  return result.steps.filter((step) => step.sustained).at(-1);
}

function limitedBy(result: FanoutResult): string {
  const last = result.steps.at(-1);
  if (!last) return "no steps";
  if (last.sustained) return "ladder top";
  if (last.loadCores >= LOAD_SATURATED_CORES) return "load CPU";
  if (last.serverCores >= 0.85) return "server CPU";
  return "latency";
}

export interface FanoutSummary {
  runs: FanoutRuns;
  sustained: number;
  p99AtSustained: number;
  /** Server CPU per delivery and cores used at the highest sustained step: the server's side of the sustained figure. */
  cpuMicrosAtSustained: number;
  serverCoresAtSustained: number;
  referenceCpuMicros: number;
  limitedBy: string;
  loadCoresAtLimit: number;
}

export function summarizeFanout(runs: FanoutRuns): FanoutSummary {
  const results = runs.results;
  const limits = [...new Set(results.map(limitedBy))];
  return {
    runs,
    sustained: median(results.map(sustainedRate)),
    p99AtSustained: median(results.map((r) => maxSustained(r)?.p99Ms ?? NaN)),
    cpuMicrosAtSustained: median(results.map((r) => maxSustained(r)?.serverCpuMicrosPerDelivery ?? NaN)),
    serverCoresAtSustained: median(results.map((r) => maxSustained(r)?.serverCores ?? NaN)),
    referenceCpuMicros: median(results.map((r) => r.steps[0]?.serverCpuMicrosPerDelivery ?? NaN)),
    limitedBy: limits.join(", ") || "n/a",
    loadCoresAtLimit: median(results.map((r) => r.steps.at(-1)?.loadCores ?? NaN)),
  };
}

/** Median over runs of a per-run ratio between two systems (run k of each ran in the same round). */
export function pairedRatio(a: FanoutRuns | undefined, b: FanoutRuns | undefined, pick: (r: FanoutResult) => number): number {
  if (!a || !b) return NaN;
  return median(a.results.map((result, run) => ratio(pick(result), b.results[run] ? pick(b.results[run]) : NaN)));
}

export const referenceCpu = (r: FanoutResult) => r.steps[0]?.serverCpuMicrosPerDelivery ?? NaN;
/**
 * The offered rate of the highest sustained step: every delivery of it arrived, with p99
 * within the limit. (Deliveries counted over the step would read a little lower only
 * because the last ones land a few ms after the step's last write.)
 */
export const sustainedRate = (r: FanoutResult) => maxSustained(r)?.offeredDeliveriesPerSecond ?? 0;

/**
 * The fan-out table; ratio columns appear for each named baseline (a peer measured in
 * the same run).
 */
export function fanoutTable(title: string, summaries: FanoutSummary[], baselines: FanoutRuns[]): Table {
  const header = [
    "system",
    "sustained deliveries/s",
    "p99 ms there",
    "µs CPU/delivery there",
    "server cores there",
    `µs CPU/delivery at ${formatNumber(RATES[0] * SUBSCRIBERS)}/s`,
  ];
  for (const baseline of baselines) header.push(`CPU vs ${baseline.system.label}`);
  for (const baseline of baselines) header.push(`sustained vs ${baseline.system.label}`);
  header.push("next step stopped by", "load cores then");
  const rows = summaries.map((s) => {
    if (!s.runs.system.target) return [s.runs.system.label, "not available", ...header.slice(2).map(() => "")];
    return [
      s.runs.system.label,
      formatNumber(s.sustained),
      formatMs(s.p99AtSustained),
      formatMicros(s.cpuMicrosAtSustained),
      formatNumber(s.serverCoresAtSustained, 2),
      formatMicros(s.referenceCpuMicros),
      ...baselines.map((b) => formatRatio(pairedRatio(s.runs, b, referenceCpu))),
      ...baselines.map((b) => formatRatio(pairedRatio(s.runs, b, sustainedRate))),
      s.limitedBy,
      formatNumber(s.loadCoresAtLimit, 2),
    ];
  });
  return { title, header, rows };
}

export function fanoutCharts(summaries: FanoutSummary[], titlePrefix: string): [BarChart, BarChart, LineChart] {
  const present = summaries.filter((s) => s.runs.system.target);
  return [
    {
      kind: "bars",
      title: `${titlePrefix}: sustained deliveries/s, p99 ≤ ${P99_LIMIT_MS} ms (median of runs)`,
      unit: "/s",
      bars: summaries.map((s) => ({ label: s.runs.system.label, value: s.runs.system.target ? s.sustained : NaN, ours: s.runs.system.ours })),
    },
    {
      kind: "bars",
      title: `${titlePrefix}: server CPU per delivery at ${formatNumber(RATES[0] * SUBSCRIBERS)}/s (lower is better)`,
      unit: "µs",
      bars: summaries.map((s) => ({ label: s.runs.system.label, value: s.runs.system.target ? s.referenceCpuMicros : NaN, ours: s.runs.system.ours })),
    },
    {
      kind: "lines",
      title: `${titlePrefix}: p99 latency by offered load (median of runs)`,
      xLabel: "offered deliveries/s",
      yLabel: `p99 ms (cut at ${5 * P99_LIMIT_MS})`,
      limit: { y: P99_LIMIT_MS, label: `${P99_LIMIT_MS} ms` },
      maxY: 5 * P99_LIMIT_MS,
      series: present.map((s) => ({
        label: s.runs.system.label,
        ours: s.runs.system.ours,
        points: RATES.map((rate): [number, number] => {
          const steps = s.runs.results.map((r) => r.steps.find((step) => step.writesPerSecond === rate)).filter((step) => step !== undefined);
          return [rate * SUBSCRIBERS, steps.length === 0 ? NaN : median(steps.map((step) => step.p99Ms))];
        }).filter(([, p99]) => Number.isFinite(p99)),
      })),
    },
  ];
}

/** Joins, losses and failed writes, which would make a delivery rate mean less than it says; and a load-bound ladder. */
export function fanoutIncidents(runs: FanoutRuns[]): string[] {
  const notes: string[] = [];
  const loadBound = runs.filter((r) => r.results.length > 0 && r.results.every((result) => limitedBy(result) === "load CPU"));
  if (loadBound.length > 0) {
    notes.push(
      `${loadBound.map((r) => r.system.label).join(", ")}: every ladder ended with the load generator's core saturated, so the ` +
        `sustained figure is a floor set by the subscribers' client cost; the server's CPU per delivery is the comparison that holds.`,
    );
  }
  for (const { system, results } of runs) {
    results.forEach((r, run) => {
      const failedWrites = r.steps.reduce((sum, step) => sum + step.failedWrites, 0);
      if (r.joinFailures > 0 || r.lost > 0 || failedWrites > 0) {
        notes.push(`${system.label}, run ${run + 1}: ${r.joinFailures} subscribers failed to join, ${r.lost} lost, ${failedWrites} writes failed`);
      }
    });
  }
  return notes;
}
