import type { Target, UnaryCase, UnaryFigures, UnaryJob, UnaryProtocol } from "../../load/jobs.js";
import { formatMicros, formatMs, formatNumber, formatRatio } from "../format.js";
import { runLoad, type RunningServer } from "../processes.js";
import type { ScenarioOptions, Table } from "../scenario.js";
import { median, ratio } from "../stats.js";

export const UNARY_WARMUP_MS = 500;
export const UNARY_MEASURE_MS = 1500;

export const PROTOCOL_LABELS: Record<UnaryProtocol, string> = {
  "connect-binary-h2": "Connect binary, HTTP/2",
  "connect-json-h1": "Connect JSON, HTTP/1.1",
  grpc: "gRPC",
};

export function targetOf(system: string, servers: RunningServer[]): Target {
  return { system, urls: servers.map((s) => s.url), pids: servers.map((s) => s.pid) };
}

/**
 * Measures Set for every protocol and concurrency on each target, `runs` times. Within
 * a run the targets alternate case by case, and the order flips every run, so drift in
 * the machine's other load falls on all of them alike.
 */
export async function measureUnary(
  targets: Target[],
  protocols: UnaryProtocol[],
  concurrencies: number[],
  options: ScenarioOptions,
): Promise<UnaryFigures[][]> {
  const runs: UnaryFigures[][] = [];
  for (let run = 0; run < options.runs; run++) {
    const order = run % 2 === 0 ? targets : [...targets].reverse();
    const cases: UnaryCase[] = protocols.flatMap((protocol) =>
      concurrencies.flatMap((concurrency) => order.map((target) => ({ target, protocol, concurrency }))),
    );
    options.log(`run ${run + 1}/${options.runs}: ${cases.length} cases of ${(UNARY_WARMUP_MS + UNARY_MEASURE_MS) / 1000} s`);
    const job: UnaryJob = {
      cases,
      warmupMs: UNARY_WARMUP_MS,
      measureMs: UNARY_MEASURE_MS,
      deadlineMs: cases.length * (UNARY_WARMUP_MS + UNARY_MEASURE_MS + 5000) * 2 + 20_000,
    };
    runs.push(await runLoad("unary", job));
  }
  return runs;
}

export interface UnaryComparison {
  protocol: UnaryProtocol;
  concurrency: number;
  subject: UnaryFigures[];
  baseline: UnaryFigures[];
  /** Median over runs of subject/baseline calls/s within each run (the pairs ran back to back). */
  throughputRatio: number;
  cpuRatio: number;
}

export function compareUnary(runs: UnaryFigures[][], subject: string, baseline: string): UnaryComparison[] {
  const keys = new Map<string, { protocol: UnaryProtocol; concurrency: number }>();
  for (const figures of runs.flat()) keys.set(`${figures.protocol}/${figures.concurrency}`, figures);
  return [...keys.values()].map(({ protocol, concurrency }) => {
    const pick = (run: UnaryFigures[], system: string) => run.find((f) => f.system === system && f.protocol === protocol && f.concurrency === concurrency);
    const pairs = runs.map((run) => [pick(run, subject), pick(run, baseline)] as const);
    return {
      protocol,
      concurrency,
      subject: pairs.map(([s]) => s).filter((f) => f !== undefined),
      baseline: pairs.map(([, b]) => b).filter((f) => f !== undefined),
      throughputRatio: median(pairs.map(([s, b]) => ratio(s?.callsPerSecond, b?.callsPerSecond))),
      cpuRatio: median(pairs.map(([s, b]) => ratio(s?.serverCpuMicrosPerCall, b?.serverCpuMicrosPerCall))),
    };
  });
}

const med = (figures: UnaryFigures[], pick: (f: UnaryFigures) => number) => median(figures.map(pick));

export function unaryTable(title: string, comparisons: UnaryComparison[], subjectName: string, baselineName: string): Table {
  return {
    title,
    header: [
      "protocol",
      "callers",
      `${subjectName} calls/s`,
      `${baselineName} calls/s`,
      "ratio",
      `${subjectName} p50/p99 ms`,
      `${baselineName} p50/p99 ms`,
      `${subjectName} µs CPU/call`,
      `${baselineName} µs CPU/call`,
      "CPU ratio",
      "errors",
    ],
    rows: comparisons.map((c) => [
      PROTOCOL_LABELS[c.protocol],
      String(c.concurrency),
      formatNumber(med(c.subject, (f) => f.callsPerSecond)),
      formatNumber(med(c.baseline, (f) => f.callsPerSecond)),
      formatRatio(c.throughputRatio),
      `${formatMs(med(c.subject, (f) => f.p50Ms))} / ${formatMs(med(c.subject, (f) => f.p99Ms))}`,
      `${formatMs(med(c.baseline, (f) => f.p50Ms))} / ${formatMs(med(c.baseline, (f) => f.p99Ms))}`,
      formatMicros(med(c.subject, (f) => f.serverCpuMicrosPerCall)),
      formatMicros(med(c.baseline, (f) => f.serverCpuMicrosPerCall)),
      formatRatio(c.cpuRatio),
      String([...c.subject, ...c.baseline].reduce((sum, f) => sum + f.errors, 0)),
    ]),
  };
}

/** Median calls/s of one side of a comparison, for charts. */
export function medianCalls(figures: UnaryFigures[]): number {
  return med(figures, (f) => f.callsPerSecond);
}
