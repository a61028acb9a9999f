import { LOAD_SATURATED_CORES } from "../../load/cpu-window.js";
import { startOurs, startPeer, type RunningServer } from "../processes.js";
import type { Scenario, TargetCheck } from "../scenario.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
import { formatRatio } from "../format.js";
import { ratioTarget, unavailableTarget } from "../targets.js";
import { targetOf } from "./unary-shape.js";
import {
  DRAIN_MS,
  fanoutCharts,
  fanoutIncidents,
  fanoutTable,
  measureFanout,
  P99_LIMIT_MS,
  pairedRatio,
  RATES,
  referenceCpu,
  REFERENCE_STEP_MS,
  STEP_MS,
  SUBSCRIBERS,
  summarizeFanout,
  sustainedRate,
  WARMUP_MS,
  WRITE_PATH_WARMUP_WRITES,
  type FanoutRuns,
  type FanoutSystem,
} from "./fanout-shape.js";

export const SUBSCRIBE = "Subscribe";
export const STREAM_SOCKET = "stream socket";
/** The stream socket again, written to as an iii SDK backend writes: the writer that costs what the peers' WebSocket writers cost. */
const STREAM_SOCKET_WS_WRITES = "stream socket, WebSocket writes";
/** The same server started with --no-metrics: what counting for /metrics costs on the fan-out path. */
const SUBSCRIBE_NO_METRICS = "Subscribe, metrics off";
const STREAM_SOCKET_NO_METRICS = "stream socket, metrics off";
/** Subscribe on a server whose Set writer goes through connect-node (--no-unary-fast-path). */
const SUBSCRIBE_PLAIN = "Subscribe, Set on the plain path";
/** Issue 19: Subscribe's CPU per delivery at most this many times the bare HTTP/2 broadcast's. */
const SUBSCRIBE_VS_HTTP2 = 1.05;
const SOCKET_IO = "Socket.IO room";
const WS = "bare ws broadcast";
const HTTP2 = "bare HTTP/2 broadcast";

export const fanoutScenario: Scenario = {
  name: "fanout",
  title: `One group, ${SUBSCRIBERS.toLocaleString("en-US")} subscribers each on its own connection, one writer at stepped rates`,
  async run(options) {
    const servers: RunningServer[] = [];
    try {
      const ours = await startOurs("iii-stream", ["--adapter", "memory"]);
      servers.push(ours);
      const oursNoMetrics = await startOurs("iii-stream --no-metrics", ["--adapter", "memory", "--no-metrics"]);
      servers.push(oursNoMetrics);
      const oursPlain = await startOurs("iii-stream --no-unary-fast-path", ["--adapter", "memory", "--no-unary-fast-path"]);
      servers.push(oursPlain);
      const socketIo = await startPeer("socket.io", "socket-io-server");
      servers.push(socketIo);
      const ws = await startPeer("ws", "ws-broadcast-server");
      servers.push(ws);
      const http2 = await startPeer("http2", "http2-broadcast-server");
      servers.push(http2);
      const streamSocketMissing = await streamSocketUnavailable(ours.url);
      const systems: FanoutSystem[] = [
        { label: SUBSCRIBE, transport: "subscribe", target: targetOf(SUBSCRIBE, [ours]), ours: true },
        { label: SUBSCRIBE_NO_METRICS, transport: "subscribe", target: targetOf(SUBSCRIBE_NO_METRICS, [oursNoMetrics]), ours: true },
        { label: SUBSCRIBE_PLAIN, transport: "subscribe", target: targetOf(SUBSCRIBE_PLAIN, [oursPlain]), ours: true },
        ...(streamSocketMissing
          ? [{ label: STREAM_SOCKET, transport: "stream-socket" as const, unavailable: streamSocketMissing, ours: true }]
          : [
              { label: STREAM_SOCKET, transport: "stream-socket" as const, target: targetOf(STREAM_SOCKET, [ours]), ours: true },
              { label: STREAM_SOCKET_WS_WRITES, transport: "stream-socket-worker-writes" as const, target: targetOf(STREAM_SOCKET_WS_WRITES, [ours]), ours: true },
              { label: STREAM_SOCKET_NO_METRICS, transport: "stream-socket" as const, target: targetOf(STREAM_SOCKET_NO_METRICS, [oursNoMetrics]), ours: true },
            ]),
        { label: SOCKET_IO, transport: "socket.io", target: targetOf(SOCKET_IO, [socketIo]), ours: false },
        { label: WS, transport: "ws", target: targetOf(WS, [ws]), ours: false },
        // Subscribe's subscribers and writer against Node's HTTP/2 with nothing else: Subscribe's limit.
        { label: HTTP2, transport: "subscribe", target: targetOf(HTTP2, [http2]), ours: false },
      ];
      const measured = await measureFanout(systems, options, "fanout");
      const summaries = measured.map(summarizeFanout);
      const byLabel = (label: string) => measured.find((m) => m.system.label === label && m.system.target);
      const baselines = [byLabel(SOCKET_IO), byLabel(WS)].filter((b): b is FanoutRuns => b !== undefined);
      const notes = fanoutIncidents(measured);
      if (streamSocketMissing) notes.push(`stream socket not available: ${streamSocketMissing}`);
      const subscribeOverHttp2 = pairedRatio(byLabel(SUBSCRIBE), byLabel(HTTP2), referenceCpu);
      const http2OverSocketIo = pairedRatio(byLabel(HTTP2), byLabel(SOCKET_IO), referenceCpu);
      notes.push(
        `${HTTP2}: Subscribe's subscribers and Set writer against a bare node:http2 server that writes one pre-encoded frame to every stream ` +
          `(bench/peers/http2-broadcast-server.ts), the floor under Subscribe. At the reference step Subscribe used ${formatRatio(subscribeOverHttp2)} ` +
          `its CPU per delivery, and it used ${formatRatio(http2OverSocketIo)} Socket.IO's.`,
      );
      notes.push(
        `Metrics: at the reference step Subscribe used ${formatRatio(pairedRatio(byLabel(SUBSCRIBE), byLabel(SUBSCRIBE_NO_METRICS), referenceCpu))} ` +
          `the CPU per delivery of the same server with --no-metrics, and the stream socket ` +
          `${formatRatio(pairedRatio(byLabel(STREAM_SOCKET), byLabel(STREAM_SOCKET_NO_METRICS), referenceCpu))}; sustained deliveries/s with metrics over without: ` +
          `Subscribe ${formatRatio(pairedRatio(byLabel(SUBSCRIBE), byLabel(SUBSCRIBE_NO_METRICS), sustainedRate))}, ` +
          `stream socket ${formatRatio(pairedRatio(byLabel(STREAM_SOCKET), byLabel(STREAM_SOCKET_NO_METRICS), sustainedRate))}.`,
      );
      notes.push(
        `"next step stopped by" says what failed the step above the sustained one: "server CPU" when the server used ≥ 0.85 of its core, ` +
          `"load CPU" when the load generator used ≥ ${LOAD_SATURATED_CORES} of its core (then the sustained figure is a floor of what the server could do), ` +
          `"latency" when neither was saturated, "ladder top" when every step up to ${RATES.at(-1)! * SUBSCRIBERS}/s held.`,
      );
      return {
        tables: [fanoutTable("Fan-out (ratios: median of per-run ratios; CPU at the reference step, the same load for all)", summaries, baselines)],
        charts: fanoutCharts(summaries, "Fan-out"),
        targets: [
          ...fanoutTargets(
            byLabel(SUBSCRIBE),
            [STREAM_SOCKET, STREAM_SOCKET_WS_WRITES].map((label) => ({ label, runs: byLabel(label) })),
            byLabel(SOCKET_IO),
            byLabel(WS),
            streamSocketMissing,
          ),
          ratioTarget(`Subscribe CPU/delivery ≤ ${SUBSCRIBE_VS_HTTP2}x the bare HTTP/2 broadcast`, subscribeOverHttp2, SUBSCRIBE_VS_HTTP2, "at most"),
          ratioTarget(
            `${SUBSCRIBE_PLAIN}: CPU/delivery ≤ ${SUBSCRIBE_VS_HTTP2}x the bare HTTP/2 broadcast`,
            pairedRatio(byLabel(SUBSCRIBE_PLAIN), byLabel(HTTP2), referenceCpu),
            SUBSCRIBE_VS_HTTP2,
            "at most",
          ),
        ],
        notes,
        config: { subscribers: SUBSCRIBERS, writesPerSecondSteps: RATES, stepMs: STEP_MS, referenceStepMs: REFERENCE_STEP_MS, warmupMs: WARMUP_MS, writePathWarmupWrites: WRITE_PATH_WARMUP_WRITES, drainMs: DRAIN_MS, p99LimitMs: P99_LIMIT_MS, runs: options.runs },
        raw: measured.map(({ system, results }) => ({ system: system.label, unavailable: system.unavailable, results })),
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  },
};

/**
 * The stream socket's targets are checked for each of its writers: a Set call over
 * Connect and `stream::set` over the worker WebSocket (the peers write over their
 * WebSocket). At 10 writes/s the server's share of the writes is small but not nothing.
 */
function fanoutTargets(
  subscribe: FanoutRuns | undefined,
  streamSockets: Array<{ label: string; runs: FanoutRuns | undefined }>,
  socketIo: FanoutRuns | undefined,
  ws: FanoutRuns | undefined,
  streamSocketMissing: string | undefined,
): TargetCheck[] {
  const streamSocketTargets = streamSocketMissing
    ? [
        unavailableTarget("stream socket CPU/delivery ≤ 1.25x bare ws", streamSocketMissing),
        unavailableTarget("stream socket CPU/delivery ≤ 0.75x Socket.IO", streamSocketMissing),
        unavailableTarget("stream socket sustained deliveries/s ≥ Socket.IO", streamSocketMissing),
      ]
    : streamSockets.flatMap(({ label, runs }) => [
        ratioTarget(`${label}: CPU/delivery ≤ 1.25x bare ws`, pairedRatio(runs, ws, referenceCpu), 1.25, "at most"),
        ratioTarget(`${label}: CPU/delivery ≤ 0.75x Socket.IO`, pairedRatio(runs, socketIo, referenceCpu), 0.75, "at most"),
        ratioTarget(`${label}: sustained deliveries/s ≥ Socket.IO`, pairedRatio(runs, socketIo, sustainedRate), 1, "at least"),
      ]);
  return [
    ...streamSocketTargets,
    ratioTarget("Subscribe CPU/delivery ≤ Socket.IO", pairedRatio(subscribe, socketIo, referenceCpu), 1, "at most"),
    ratioTarget("Subscribe sustained deliveries/s ≥ Socket.IO", pairedRatio(subscribe, socketIo, sustainedRate), 1, "at least"),
  ];
}
