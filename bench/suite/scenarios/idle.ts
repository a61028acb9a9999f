import type { IdleJob, IdleResult } from "../../load/jobs.js";
import type { TransportName } from "../../load/transports/transports.js";
import { formatKiB, formatMiB, formatNumber, formatRatio } from "../format.js";
import { runLoad, startOurs, startPeer, type RunningServer } from "../processes.js";
import { isWanted, type Scenario, type Table, type TargetCheck } from "../scenario.js";
import { median, ratio } from "../stats.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import type { BarChart } from "../svg-chart.js";
import { ratioTarget, unavailableTarget } from "../targets.js";
import { targetOf } from "./unary-shape.js";

const SUBSCRIBERS = 5000;
/** Memory is also read at this count: the growth from here to 5,000 is free of one-time costs. */
const FIRST_CHECKPOINT = 1000;
const SETTLE_MS = 1000;
const JOIN_TIMEOUT_MS = 30_000;

interface System {
  label: string;
  transport: TransportName;
  start(): Promise<RunningServer>;
  ours: boolean;
}

const perSubscriber = (r: IdleResult) => {
  const last = r.points.at(-1)!;
  return (last.rssBytes - r.baselineRssBytes) / last.subscribers;
};
const marginal = (r: IdleResult) => {
  const [first, last] = [r.points[0], r.points.at(-1)!];
  return (last.rssBytes - first.rssBytes) / (last.subscribers - first.subscribers);
};

export const idleScenario: Scenario = {
  name: "idle",
  title: `Resident memory per idle subscriber at ${SUBSCRIBERS.toLocaleString("en-US")} subscribers`,
  // Memory barely moves between runs; two keep the scenario short.
  defaultRuns: 2,
  async run(options) {
    const probe = await startOurs("iii-stream (probe)", ["--adapter", "memory"]);
    const streamSocketMissing = await streamSocketUnavailable(probe.url).finally(() => probe.stop());
    const systems: System[] = [
      { label: "Subscribe", transport: "subscribe", start: () => startOurs("iii-stream", ["--adapter", "memory"]), ours: true },
      ...(streamSocketMissing
        ? []
        : [{ label: "stream socket", transport: "stream-socket" as const, start: () => startOurs("iii-stream", ["--adapter", "memory"]), ours: true }]),
      { label: "Socket.IO", transport: "socket.io", start: () => startPeer("socket.io", "socket-io-server"), ours: false },
    ];
    const results = new Map<System, IdleResult[]>(systems.map((s) => [s, []]));
    for (let run = 0; run < options.runs; run++) {
      for (let index = 0; index < systems.length; index++) {
        const system = systems[(index + run) % systems.length];
        if (!isWanted(options, system.label)) continue;
        options.log(`run ${run + 1}/${options.runs}: ${system.label}`);
        // A fresh server each time: memory a previous load left behind would count against the next.
        const server = await system.start();
        try {
          const job: IdleJob = {
            transport: system.transport,
            target: targetOf(system.label, [server]),
            checkpoints: [FIRST_CHECKPOINT, SUBSCRIBERS],
            settleMs: SETTLE_MS,
            joinTimeoutMs: JOIN_TIMEOUT_MS,
            groupId: "idle",
            deadlineMs: 3 * JOIN_TIMEOUT_MS + 3 * (SETTLE_MS + 1500) + 60_000,
          };
          results.get(system)!.push(await runLoad("idle", job));
        } finally {
          await server.stop();
        }
      }
    }
    const socketIo = results.get(systems.at(-1)!)!;
    const pairedToSocketIo = (runs: IdleResult[]) => median(runs.map((r, run) => ratio(perSubscriber(r), socketIo[run] ? perSubscriber(socketIo[run]) : NaN)));
    const table: Table = {
      title: `Idle subscribers, each on its own connection, one group (medians; ratio: median per-run ratio to Socket.IO)`,
      header: ["system", "RSS at start MiB", `RSS at ${formatNumber(SUBSCRIBERS)} MiB`, "KiB per subscriber", `KiB per subscriber ${formatNumber(FIRST_CHECKPOINT)}→${formatNumber(SUBSCRIBERS)}`, "vs Socket.IO", "join failures / lost"],
      rows: systems.map((system) => {
        const runs = results.get(system)!;
        return [
          system.label,
          formatMiB(median(runs.map((r) => r.baselineRssBytes))),
          formatMiB(median(runs.map((r) => r.points.at(-1)!.rssBytes))),
          formatKiB(median(runs.map(perSubscriber))),
          formatKiB(median(runs.map(marginal))),
          formatRatio(pairedToSocketIo(runs)),
          `${runs.reduce((sum, r) => sum + r.joinFailures, 0)} / ${runs.reduce((sum, r) => sum + r.lost, 0)}`,
        ];
      }),
    };
    const chart: BarChart = {
      kind: "bars",
      title: `Resident memory per idle subscriber at ${formatNumber(SUBSCRIBERS)} (lower is better)`,
      unit: "KiB",
      bars: systems.map((s) => ({ label: s.label, value: median(results.get(s)!.map(perSubscriber)) / 1024, ours: s.ours })),
    };
    const streamSocket = systems.find((s) => s.transport === "stream-socket");
    const targets: TargetCheck[] = [
      streamSocket
        ? ratioTarget("stream socket memory per idle subscriber ≤ Socket.IO", pairedToSocketIo(results.get(streamSocket)!), 1, "at most")
        : unavailableTarget("stream socket memory per idle subscriber ≤ Socket.IO", streamSocketMissing ?? "not measured"),
    ];
    return {
      tables: [table],
      charts: [chart],
      targets,
      notes: [
        ...(streamSocketMissing ? [`stream socket not available: ${streamSocketMissing}`] : []),
        "KiB per subscriber = (RSS with all subscribers − RSS of the fresh server) / subscribers; the 1,000→5,000 column is the growth between those counts, free of one-time costs.",
      ],
      config: { subscribers: SUBSCRIBERS, firstCheckpoint: FIRST_CHECKPOINT, settleMs: SETTLE_MS, runs: options.runs },
      raw: [...results].map(([system, runs]) => ({ system: system.label, runs })),
    };
  },
};
