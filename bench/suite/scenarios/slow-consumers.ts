import type { SlowConsumersJob, SlowConsumersResult, StallingTransport } from "../../load/memory-jobs.js";
import { formatKiB, formatMiB, formatMs, formatNumber } from "../format.js";
import { runLoad, startOurs } from "../processes.js";
import { isWanted, type Scenario, type Table, type TargetCheck } from "../scenario.js";
import { median } from "../stats.js";
import type { Chart } from "../svg-chart.js";
import { memoryGuardBytes } from "./memory-guard.js";
import { rssLine } from "./rss-line.js";
import { fatalError } from "./server-fatal.js";
import { targetOf } from "./unary-shape.js";

const SUBSCRIBERS = 1000;
const SECONDS = 60;
const WRITES_PER_SECOND = 100;
const CHANGE_BYTES = 16 * 1024;
const JOIN_TIMEOUT_MS = 30_000;
/**
 * How long a stalled subscriber, once it reads again, may take to learn how it was
 * ended: enough to read what the kernel and the server still hold for it.
 */
const RESUME_TIMEOUT_MS = 30_000;
const SAMPLE_MS = 250;
const POINT_MS = 1000;

interface System {
  label: string;
  /** For the chart's legend, which has little room. */
  short: string;
  transport: StallingTransport;
  /** The ending the byte bound should give this transport's subscribers. */
  expected: string;
}

const SYSTEMS: System[] = [
  { label: "Subscribe, Connect binary, HTTP/2", short: "Connect, HTTP/2", transport: "subscribe-connect-h2", expected: "RESOURCE_EXHAUSTED" },
  { label: "Subscribe, gRPC, HTTP/2", short: "gRPC, HTTP/2", transport: "subscribe-grpc-h2", expected: "RESOURCE_EXHAUSTED" },
  { label: "Subscribe, Connect JSON, HTTP/1.1", short: "Connect JSON, HTTP/1.1", transport: "subscribe-connect-json-h1", expected: "RESOURCE_EXHAUSTED" },
  { label: "stream socket", short: "stream socket", transport: "stream-socket", expected: "close 4429" },
];

/** JSON turns NaN into null; figures read back as numbers. */
/** A run's figures with the end of the server's output, where a failure usually explains itself, and its fatal error if it died of one. */
interface Run extends SlowConsumersResult {
  serverLogTail: string;
  serverFatal: string | undefined;
}
/** Characters of the server's output kept with each run. */
const LOG_TAIL = 2000;

const num = (value: number | null | undefined): number => (typeof value === "number" ? value : NaN);
const seconds = (ms: number) => formatNumber(ms / 1000, 1);

export const slowConsumersScenario: Scenario = {
  name: "slow-consumers",
  title: "Subscribers that stop reading while a writer sends 16 KiB changes: server memory, and how each subscriber is ended",
  // One run of each transport takes over two minutes at full size.
  defaultRuns: 1,
  async run(options) {
    const subscribers = options.subscribers ?? SUBSCRIBERS;
    const writeSeconds = options.seconds ?? SECONDS;
    const guard = memoryGuardBytes();
    const systems = SYSTEMS.filter((s) => isWanted(options, s.label));
    const results = new Map<System, Run[]>(systems.map((s) => [s, []]));
    for (let run = 0; run < options.runs; run++) {
      for (let index = 0; index < systems.length; index++) {
        const system = systems[(index + run) % systems.length];
        options.log(`run ${run + 1}/${options.runs}: ${system.label}, ${subscribers} stalled subscribers, ${writeSeconds} s of writes`);
        // A fresh server each time: what one transport's subscribers left behind would count against the next.
        const server = await startOurs("iii-stream", ["--adapter", "memory"]);
        try {
          const job: SlowConsumersJob = {
            transport: system.transport,
            target: targetOf(system.label, [server]),
            subscribers,
            seconds: writeSeconds,
            writesPerSecond: WRITES_PER_SECOND,
            changeBytes: CHANGE_BYTES,
            groupId: "slow-consumers",
            joinTimeoutMs: JOIN_TIMEOUT_MS,
            resumeTimeoutMs: RESUME_TIMEOUT_MS,
            sampleMs: SAMPLE_MS,
            pointMs: POINT_MS,
            memoryGuardBytes: guard,
            deadlineMs: Math.ceil(subscribers / 100) * JOIN_TIMEOUT_MS + writeSeconds * 1000 + RESUME_TIMEOUT_MS + 60_000,
          };
          const result = { ...(await runLoad("slow-consumers", job)), serverLogTail: server.output().slice(-LOG_TAIL), serverFatal: fatalError(server.output()) };
          results.get(system)!.push(result);
          options.log(`  ${summaryLine(result)}`);
        } finally {
          await server.stop();
        }
      }
    }
    const all = [...results];
    return {
      tables: [memoryTable(all, subscribers), endingTable(all)],
      charts: charts(all),
      targets: all.map(([system, runs]) => endedTarget(system, runs)),
      notes: [
        `Each subscriber has a connection of its own (HTTP/2: one session per subscriber, Node's default 64 KiB stream window); it joins, receives its snapshot, then stops reading: HTTP/2 pauses the client stream (no WINDOW_UPDATE follows), HTTP/1.1 pauses the raw socket, the stream socket pauses the ws client's socket.`,
        `One more subscriber of the same transport reads throughout (the "reading subscriber" column): it must receive every write and not be ended.`,
        `Writes: Set over Connect binary on one HTTP/2 connection, ${WRITES_PER_SECOND}/s, values whose JSON is ${formatNumber(CHANGE_BYTES)} bytes, cycling over 16 item ids (the store stays small); memory adapter.`,
        `After the writes, every stalled subscriber reads again and reports how its stream ended (or "not ended" after ${RESUME_TIMEOUT_MS / 1000} s); "while paused" counts endings that reached the client before it read again (an HTTP/2 reset does).`,
        `RSS is VmRSS of the server process, sampled every ${SAMPLE_MS} ms; "start" is with every subscriber joined, "end" when the writes stopped, "after" once every subscriber was closed and 2 s passed. The server is killed if it passes ${formatMiB(guard)} MiB (guard).`,
        ...all.flatMap(([system, runs]) => (runs.some((r) => r.rss.guardTripped) ? [`${system.label}: the server passed the memory guard and was killed.`] : [])),
        ...all.flatMap(([system, runs]) => runs.flatMap((r, run) => (r.serverFatal ? [`${system.label}, run ${run + 1}: the server died: ${r.serverFatal}`] : []))),
      ],
      config: {
        subscribers,
        seconds: writeSeconds,
        writesPerSecond: WRITES_PER_SECOND,
        changeBytes: CHANGE_BYTES,
        resumeTimeoutMs: RESUME_TIMEOUT_MS,
        sampleMs: SAMPLE_MS,
        pointMs: POINT_MS,
        memoryGuardBytes: guard,
        runs: options.runs,
      },
      raw: all.map(([system, runs]) => ({ system: system.label, runs })),
    };
  },
};

function summaryLine(r: SlowConsumersResult): string {
  return (
    `joined ${r.joined}, RSS start ${formatMiB(num(r.rssStartBytes))} / peak ${formatMiB(r.rss.peakBytes)} / end ${formatMiB(num(r.rssEndBytes))} / after ${formatMiB(num(r.rssAfterBytes))} MiB; ` +
    r.endings.map((e) => `${e.subscribers} ${e.ending}`).join(", ")
  );
}

function memoryTable(all: Array<[System, SlowConsumersResult[]]>, subscribers: number): Table {
  return {
    title: `Server memory with ${formatNumber(subscribers)} subscribers that stopped reading (medians over runs)`,
    header: [
      "transport",
      "joined",
      "RSS fresh MiB",
      "RSS start MiB",
      "RSS peak MiB (at s)",
      "RSS end MiB",
      "RSS after MiB",
      "peak − start KiB per subscriber",
      "writes (failed)",
      "write ack p50 / p99 ms",
      "slowest ack ms (sent at s)",
      "reading subscriber",
      "change frame bytes",
    ],
    rows: all.map(([system, runs]) => {
      const m = (pick: (r: SlowConsumersResult) => number) => median(runs.map(pick));
      return [
        system.label,
        formatNumber(m((r) => r.joined)),
        formatMiB(m((r) => r.rssFreshBytes)),
        formatMiB(m((r) => r.rssStartBytes)),
        `${formatMiB(m((r) => r.rss.peakBytes))} (${runs.map((r) => seconds(r.rss.peakAtMs - r.writesStartMs)).join(", ")})`,
        formatMiB(m((r) => r.rssEndBytes)),
        formatMiB(m((r) => r.rssAfterBytes)),
        formatKiB(m((r) => (r.rss.peakBytes - r.rssStartBytes) / Math.max(1, r.joined))),
        `${formatNumber(m((r) => r.writes))} (${runs.reduce((sum, r) => sum + r.failedWrites, 0)})`,
        `${formatMs(m((r) => num(r.writeAckP50Ms)))} / ${formatMs(m((r) => num(r.writeAckP99Ms)))}`,
        runs.map(slowestAck).join("; "),
        runs.map((r) => `${formatNumber(r.reader.messages)} msgs${r.reader.ended ? `, ended ${r.reader.ended}` : ""}`).join("; "),
        formatNumber(m((r) => num(r.changeFrameBytes))),
      ];
    }),
  };
}

/** The slowest write acknowledgement of a run and the second of the write phase it was sent in. */
function slowestAck(r: SlowConsumersResult): string {
  const slowest = Math.max(...r.writeAckMaxMsBySecond);
  return `${formatNumber(slowest)} (${r.writeAckMaxMsBySecond.indexOf(slowest)})`;
}

/** Every run's endings of one kind together: counts added, times spanning all runs (the median of the runs' medians). */
interface EndingTotal {
  subscribers: number;
  namesOffset: number;
  whilePaused: number;
  atMinMs: number;
  atMedianMs: number[];
  atMaxMs: number;
  messagesMedian: number[];
  detail: string;
}

function countEndings(runs: SlowConsumersResult[]): Map<string, EndingTotal> {
  const totals = new Map<string, EndingTotal>();
  for (const summary of runs.flatMap((r) => r.endings)) {
    let total = totals.get(summary.ending);
    if (!total) {
      total = { subscribers: 0, namesOffset: 0, whilePaused: 0, atMinMs: NaN, atMedianMs: [], atMaxMs: NaN, messagesMedian: [], detail: summary.detail };
      totals.set(summary.ending, total);
    }
    total.subscribers += summary.subscribers;
    total.namesOffset += summary.namesOffset;
    total.whilePaused += summary.whilePaused;
    const [min, mid, max] = [num(summary.atMs.min), num(summary.atMs.median), num(summary.atMs.max)];
    if (Number.isFinite(min)) total.atMinMs = Number.isFinite(total.atMinMs) ? Math.min(total.atMinMs, min) : min;
    if (Number.isFinite(max)) total.atMaxMs = Number.isFinite(total.atMaxMs) ? Math.max(total.atMaxMs, max) : max;
    total.atMedianMs.push(mid);
    total.messagesMedian.push(num(summary.messagesAfterResume.median));
  }
  return totals;
}

function endingTable(all: Array<[System, SlowConsumersResult[]]>): Table {
  return {
    title: "How the stalled subscribers were ended, as each saw it once it read again (all runs)",
    header: ["transport", "ending", "subscribers", "names an offset", "while paused", "received at s (first / median / last)", "messages read after resuming (median)", "detail (first seen)"],
    rows: all.flatMap(([system, runs]) =>
      [...countEndings(runs)].map(([ending, t]) => [
        system.label,
        ending,
        formatNumber(t.subscribers),
        formatNumber(t.namesOffset),
        formatNumber(t.whilePaused),
        `${seconds(t.atMinMs)} / ${seconds(median(t.atMedianMs))} / ${seconds(t.atMaxMs)}`,
        formatNumber(median(t.messagesMedian)),
        t.detail.slice(0, 120),
      ]),
    ),
  };
}

function endedTarget(system: System, runs: SlowConsumersResult[]): TargetCheck {
  const totals = countEndings(runs);
  const all = [...totals.values()].reduce((sum, t) => sum + t.subscribers, 0);
  const expected = totals.get(system.expected);
  const [ended, withOffset] = [expected?.subscribers ?? 0, expected?.namesOffset ?? 0];
  const offsetToo = system.expected === "RESOURCE_EXHAUSTED";
  return {
    target: `${system.label}: every stalled subscriber ended with ${system.expected}${offsetToo ? " naming the offset to resume from" : ""}`,
    measured: `${ended} / ${all}${offsetToo ? `, ${withOffset} name an offset` : ""}`,
    status: all > 0 && ended === all && (!offsetToo || withOffset === all) ? "met" : "missed",
  };
}

function charts(all: Array<[System, SlowConsumersResult[]]>): Chart[] {
  const mib = (bytes: number) => bytes / 2 ** 20;
  return [
    {
      kind: "lines",
      title: "Server RSS while the writer runs (first run of each transport; 0 s = first write)",
      xLabel: "s since the first write",
      yLabel: "RSS MiB",
      series: all.flatMap(([system, runs]) =>
        runs.length === 0
          ? []
          : [{ label: system.short, ours: true, points: rssLine(runs[0].rss.points, runs[0].writesStartMs) }],
      ),
    },
    {
      kind: "bars",
      title: "Server RSS: peak while writing, and at the end of the writes (medians, lower is better)",
      unit: "MiB",
      bars: all.flatMap(([system, runs]) => [
        { label: `${system.short}: peak`, value: mib(median(runs.map((r) => r.rss.peakBytes))), ours: true, system: system.label },
        { label: `${system.short}: end`, value: mib(median(runs.map((r) => r.rssEndBytes))), ours: true, system: system.label },
      ]),
    },
  ];
}
