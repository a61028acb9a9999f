import { startOurs, startPeer, type RunningServer } from "../processes.js";
import type { Scenario, TargetCheck } from "../scenario.js";
import { streamSocketUnavailable } from "../stream-socket-probe.js";
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
  STEP_MS,
  SUBSCRIBERS,
  summarizeFanout,
  sustainedRate,
  WARMUP_MS,
  type FanoutRuns,
  type FanoutSystem,
} from "./fanout-shape.js";

export const SUBSCRIBE = "Subscribe";
export const STREAM_SOCKET = "stream socket";
const SOCKET_IO = "Socket.IO room";
const WS = "bare ws broadcast";

export const fanoutScenario: Scenario = {
  name: "fanout",
  title: `One group, ${SUBSCRIBERS.toLocaleString("en-US")} subscribers each on its own connection, one writer at stepped rates`,
  async run(options) {
    const servers: RunningServer[] = [];
    try {
      const ours = await startOurs("iii-stream", ["--adapter", "memory"]);
      servers.push(ours);
      const socketIo = await startPeer("socket.io", "socket-io-server");
      servers.push(socketIo);
      const ws = await startPeer("ws", "ws-broadcast-server");
      servers.push(ws);
      const streamSocketMissing = await streamSocketUnavailable(ours.url);
      const systems: FanoutSystem[] = [
        { label: SUBSCRIBE, transport: "subscribe", target: targetOf(SUBSCRIBE, [ours]), ours: true },
        streamSocketMissing
          ? { label: STREAM_SOCKET, transport: "stream-socket", unavailable: streamSocketMissing, ours: true }
          : { label: STREAM_SOCKET, transport: "stream-socket", target: targetOf(STREAM_SOCKET, [ours]), ours: true },
        { label: SOCKET_IO, transport: "socket.io", target: targetOf(SOCKET_IO, [socketIo]), ours: false },
        { label: WS, transport: "ws", target: targetOf(WS, [ws]), ours: false },
      ];
      const measured = await measureFanout(systems, options, "fanout");
      const summaries = measured.map(summarizeFanout);
      const byLabel = (label: string) => measured.find((m) => m.system.label === label && m.system.target);
      const baselines = [byLabel(SOCKET_IO), byLabel(WS)].filter((b): b is FanoutRuns => b !== undefined);
      const notes = fanoutIncidents(measured);
      if (streamSocketMissing) notes.push(`stream socket not available: ${streamSocketMissing}`);
      notes.push(
        `"next step stopped by" says what failed the step above the sustained one: "server CPU" when the server used ≥ 0.85 of its core, ` +
          `"load CPU" when the load generator used ≥ 0.9 of its core (then the sustained figure is a floor of what the server could do), ` +
          `"latency" when neither was saturated, "ladder top" when every step up to ${RATES.at(-1)! * SUBSCRIBERS}/s held.`,
      );
      return {
        tables: [fanoutTable("Fan-out (ratios: median of per-run ratios; CPU at the reference step, the same load for all)", summaries, baselines)],
        charts: fanoutCharts(summaries, "Fan-out"),
        targets: fanoutTargets(byLabel(SUBSCRIBE), byLabel(STREAM_SOCKET), byLabel(SOCKET_IO), byLabel(WS), streamSocketMissing),
        notes,
        config: { subscribers: SUBSCRIBERS, writesPerSecondSteps: RATES, stepMs: STEP_MS, warmupMs: WARMUP_MS, drainMs: DRAIN_MS, p99LimitMs: P99_LIMIT_MS, runs: options.runs },
        raw: measured.map(({ system, results }) => ({ system: system.label, unavailable: system.unavailable, results })),
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  },
};

function fanoutTargets(
  subscribe: FanoutRuns | undefined,
  streamSocket: FanoutRuns | undefined,
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
    : [
        ratioTarget("stream socket CPU/delivery ≤ 1.25x bare ws", pairedRatio(streamSocket, ws, referenceCpu), 1.25, "at most"),
        ratioTarget("stream socket CPU/delivery ≤ 0.75x Socket.IO", pairedRatio(streamSocket, socketIo, referenceCpu), 0.75, "at most"),
        ratioTarget("stream socket sustained deliveries/s ≥ Socket.IO", pairedRatio(streamSocket, socketIo, sustainedRate), 1, "at least"),
      ];
  return [
    ...streamSocketTargets,
    ratioTarget("Subscribe CPU/delivery ≤ Socket.IO", pairedRatio(subscribe, socketIo, referenceCpu), 1, "at most"),
    ratioTarget("Subscribe sustained deliveries/s ≥ Socket.IO", pairedRatio(subscribe, socketIo, sustainedRate), 1, "at least"),
  ];
}
