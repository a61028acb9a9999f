import type { ManyGroupsJob, ManyGroupsResult } from "../../load/jobs.js";
import type { TransportName } from "../../load/transports/transports.js";
import { formatMicros, formatMs, formatNumber, formatRatio } from "../format.js";
import { runLoad, startOurs, startPeer, waitForQuiet, type RunningServer } from "../processes.js";
import { isWanted, type Scenario, type Table, type TargetCheck } from "../scenario.js";
import { ratioTarget } from "../targets.js";
import { median, ratio } from "../stats.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import type { BarChart } from "../svg-chart.js";
import { targetOf } from "./unary-shape.js";

const GROUPS = 500;
const SUBSCRIBERS_PER_GROUP = 4;
const WRITES_PER_GROUP_PER_SECOND = 2;
const WARMUP_MS = 1000;
const MEASURE_MS = 4000;
const DRAIN_MS = 3000;
const JOIN_TIMEOUT_MS = 20_000;
const SET = "Set, Connect binary, HTTP/2";
const SOCKET_IO = "Socket.IO rooms";
const BARE_HTTP2 = "bare HTTP/2 broadcast";
/** Issue 19: with writes by Set, server CPU per delivery at most this many times Socket.IO's... */
const CPU_VS_SOCKET_IO = 1.25;
/** ...and the writer's acknowledgements p99 under this. */
const WRITE_ACK_P99_MS = 10;

function msTarget(target: string, measured: number, bound: number): TargetCheck {
  if (!Number.isFinite(measured)) return { target, measured: "n/a", status: "not available" };
  return { target, measured: `${formatMs(measured)} ms`, status: measured < bound ? "met" : "missed" };
}

interface System {
  label: string;
  transport: TransportName;
  server: RunningServer;
  ours: boolean;
  /** How the load's writer writes, for the table. */
  writesOver: string;
}

export const manyGroupsScenario: Scenario = {
  name: "many-groups",
  title: `${GROUPS} groups of ${SUBSCRIBERS_PER_GROUP} subscribers, ${WRITES_PER_GROUP_PER_SECOND} writes/s per group (chat shape)`,
  async run(options) {
    const servers: RunningServer[] = [];
    try {
      const ours = await startOurs("iii-stream", ["--adapter", "memory"]);
      servers.push(ours);
      // The same server with every unary call through connect-node: what the fast path changes for the Set writer.
      const plain = await startOurs("iii-stream plain", ["--adapter", "memory", "--no-unary-fast-path"]);
      servers.push(plain);
      const socketIo = await startPeer("socket.io", "socket-io-server");
      servers.push(socketIo);
      // The floor under Subscribe in this shape: the same subscribers and Set writer against a server that only writes HTTP/2 frames.
      const bareHttp2 = await startPeer("bare HTTP/2 broadcast", "http2-broadcast-server");
      servers.push(bareHttp2);
      const streamSocketMissing = await streamSocketUnavailable(ours.url);
      const systems: System[] = [
        { label: "Subscribe", transport: "subscribe", server: ours, ours: true, writesOver: SET },
        { label: "Subscribe, Set on the plain path", transport: "subscribe", server: plain, ours: true, writesOver: `${SET}, connect-node` },
        ...(streamSocketMissing
          ? []
          : [
              { label: "stream socket", transport: "stream-socket" as const, server: ours, ours: true, writesOver: SET },
              { label: "stream socket, Set on the plain path", transport: "stream-socket" as const, server: plain, ours: true, writesOver: `${SET}, connect-node` },
              { label: "stream socket, WebSocket writes", transport: "stream-socket-worker-writes" as const, server: ours, ours: true, writesOver: "stream::set, worker WebSocket" },
            ]),
        { label: BARE_HTTP2, transport: "subscribe", server: bareHttp2, ours: false, writesOver: `${SET}, answered empty` },
        { label: SOCKET_IO, transport: "socket.io", server: socketIo, ours: false, writesOver: "acknowledged emit, WebSocket" },
      ];
      const results = new Map<System, ManyGroupsResult[]>(systems.map((s) => [s, []]));
      for (let run = 0; run < options.runs; run++) {
        for (let index = 0; index < systems.length; index++) {
          const system = systems[(index + run) % systems.length];
          if (!isWanted(options, system.label)) continue;
          options.log(`run ${run + 1}/${options.runs}: ${system.label}`);
          const job: ManyGroupsJob = {
            transport: system.transport,
            target: targetOf(system.label, [system.server]),
            groups: GROUPS,
            subscribersPerGroup: SUBSCRIBERS_PER_GROUP,
            writesPerGroupPerSecond: WRITES_PER_GROUP_PER_SECOND,
            warmupMs: WARMUP_MS,
            measureMs: MEASURE_MS,
            drainMs: DRAIN_MS,
            joinTimeoutMs: JOIN_TIMEOUT_MS,
            groupPrefix: `chat-${run}-${system.transport}`,
            deadlineMs: JOIN_TIMEOUT_MS * 2 + WARMUP_MS + MEASURE_MS + DRAIN_MS + 20_000,
          };
          results.get(system)!.push(await runLoad("many-groups", job));
          await waitForQuiet([system.server.pid]);
        }
      }
      const runsOf = (label: string) => results.get(systems.find((s) => s.label === label)!)!;
      const socketIoRuns = runsOf(SOCKET_IO);
      const table: Table = {
        title: `Many groups: ${GROUPS * SUBSCRIBERS_PER_GROUP} subscribers, ${GROUPS * WRITES_PER_GROUP_PER_SECOND} writes/s, ${GROUPS * SUBSCRIBERS_PER_GROUP * WRITES_PER_GROUP_PER_SECOND} deliveries/s offered (medians; ratios are median per-run ratios to Socket.IO)`,
        header: ["system", "writes over", "p50 ms", "p95 ms", "p99 ms", "write ack p99 ms", "server cores", "µs CPU/delivery", "CPU vs Socket.IO", "p99 vs Socket.IO", "load cores", "received / expected"],
        rows: systems.map((system) => {
          const runs = results.get(system)!;
          const med = (pick: (r: ManyGroupsResult) => number) => median(runs.map(pick));
          const paired = (pick: (r: ManyGroupsResult) => number) => median(runs.map((r, run) => ratio(pick(r), socketIoRuns[run] ? pick(socketIoRuns[run]) : NaN)));
          return [
            system.label,
            system.writesOver,
            formatMs(med((r) => r.p50Ms)),
            formatMs(med((r) => r.p95Ms)),
            formatMs(med((r) => r.p99Ms)),
            formatMs(med((r) => r.writeAckP99Ms)),
            formatNumber(med((r) => r.serverCores), 2),
            formatMicros(med((r) => r.serverCpuMicrosPerDelivery)),
            formatRatio(paired((r) => r.serverCpuMicrosPerDelivery)),
            formatRatio(paired((r) => r.p99Ms)),
            formatNumber(med((r) => r.loadCores), 2),
            `${formatNumber(runs.reduce((sum, r) => sum + r.received, 0))} / ${formatNumber(runs.reduce((sum, r) => sum + r.expected, 0))}`,
          ];
        }),
      };
      const medianOf = (system: System, pick: (r: ManyGroupsResult) => number) => median(results.get(system)!.map(pick));
      const charts: BarChart[] = [
        {
          kind: "bars",
          title: "Many groups: p99 write-to-receipt latency (lower is better)",
          unit: "ms",
          bars: systems.map((s) => ({ label: s.label, value: medianOf(s, (r) => r.p99Ms), ours: s.ours })),
        },
        {
          kind: "bars",
          title: "Many groups: server CPU per delivery (lower is better)",
          unit: "µs",
          bars: systems.map((s) => ({ label: s.label, value: medianOf(s, (r) => r.serverCpuMicrosPerDelivery), ours: s.ours })),
        },
      ];
      const notes: string[] = [
        "load cores: the load generator's share of its core (the subscribers' process and the writer's, a child process of its own so that acknowledgements do not queue behind the subscribers' reads); near 1, queueing on that core adds to the latencies.",
      ];
      if (streamSocketMissing) notes.push(`stream socket not available: ${streamSocketMissing}`);
      const bareRuns = runsOf(BARE_HTTP2);
      const subscribeRuns = runsOf("Subscribe");
      if (bareRuns.length > 0 && subscribeRuns.length > 0) {
        const perDelivery = (r: ManyGroupsResult) => r.serverCpuMicrosPerDelivery;
        const vsBare = median(subscribeRuns.map((r, run) => ratio(perDelivery(r), bareRuns[run] ? perDelivery(bareRuns[run]) : NaN)));
        const bareVsSocketIo = median(bareRuns.map((r, run) => ratio(perDelivery(r), socketIoRuns[run] ? perDelivery(socketIoRuns[run]) : NaN)));
        notes.push(
          `${BARE_HTTP2}: Subscribe's subscribers and Set writer against a bare node:http2 server that stores nothing and writes one pre-encoded frame per subscriber (bench/peers/http2-broadcast-server.ts), the floor under Subscribe in this shape. It used ${formatRatio(bareVsSocketIo)} Socket.IO's CPU per delivery; Subscribe used ${formatRatio(vsBare)} its CPU per delivery.`,
        );
      }
      for (const [system, runs] of results) {
        runs.forEach((r, run) => {
          if (r.joinFailures > 0 || r.lost > 0 || r.failedWrites > 0) {
            notes.push(`${system.label}, run ${run + 1}: ${r.joinFailures} subscribers failed to join, ${r.lost} lost, ${r.failedWrites} writes failed`);
          }
        });
      }
      const paired = (system: System, pick: (r: ManyGroupsResult) => number) =>
        median(results.get(system)!.map((r, run) => ratio(pick(r), socketIoRuns[run] ? pick(socketIoRuns[run]) : NaN)));
      const targets: TargetCheck[] = systems
        .filter((s) => s.ours && s.writesOver === SET && results.get(s)!.length > 0)
        .flatMap((s) => [
          ratioTarget(`${s.label} (writes by Set): server CPU per delivery ≤ ${CPU_VS_SOCKET_IO}x Socket.IO's`, paired(s, (r) => r.serverCpuMicrosPerDelivery), CPU_VS_SOCKET_IO, "at most"),
          msTarget(`${s.label} (writes by Set): write ack p99 < ${WRITE_ACK_P99_MS} ms at ${GROUPS * WRITES_PER_GROUP_PER_SECOND} writes/s`, medianOf(s, (r) => r.writeAckP99Ms), WRITE_ACK_P99_MS),
        ]);
      return {
        tables: [table],
        charts,
        targets,
        notes,
        config: {
          groups: GROUPS,
          subscribersPerGroup: SUBSCRIBERS_PER_GROUP,
          writesPerGroupPerSecond: WRITES_PER_GROUP_PER_SECOND,
          warmupMs: WARMUP_MS,
          measureMs: MEASURE_MS,
          runs: options.runs,
        },
        raw: [...results].map(([system, runs]) => ({ system: system.label, runs })),
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  },
};
