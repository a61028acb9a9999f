/**
 * The benchmark suite's moving parts, at toy sizes: every load generator against the
 * real servers it measures (our CLI and the peers), in their own processes, so that
 * `npm run bench` cannot silently measure a broken transport. Nothing here times
 * anything: the assertions are about what was delivered and counted.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Target } from "../bench/load/jobs.js";
import type { TransportName } from "../bench/load/transports/transports.js";
import { markdownTable, textTable } from "../bench/suite/format.js";
import { runLoad, startOurs, startPeer, type RunningServer } from "../bench/suite/processes.js";
import { LatencyHistogram, median } from "../bench/suite/stats.js";
import { renderSvg } from "../bench/suite/svg-chart.js";

let ours: RunningServer;
let socketIo: RunningServer;
let ws: RunningServer;
let noop: RunningServer;
let http2: RunningServer;
const target = (server: RunningServer): Target => ({ system: server.label, urls: [server.url], pids: [server.pid] });

beforeAll(async () => {
  [ours, socketIo, ws, noop, http2] = await Promise.all([
    startOurs("iii-stream", ["--adapter", "memory"]),
    startPeer("socket.io", "socket-io-server"),
    startPeer("ws", "ws-broadcast-server"),
    startPeer("no-op", "noop-connect-server"),
    startPeer("http2", "http2-broadcast-server"),
  ]);
});

afterAll(async () => {
  await Promise.all([ours, socketIo, ws, noop, http2].filter(Boolean).map((server) => server.stop()));
});

describe("fan-out load", () => {
  const cases: Array<[string, TransportName, () => RunningServer]> = [
    ["Subscribe", "subscribe", () => ours],
    ["stream socket", "stream-socket", () => ours],
    ["stream socket, WebSocket writes", "stream-socket-worker-writes", () => ours],
    ["Socket.IO", "socket.io", () => socketIo],
    ["bare ws", "ws", () => ws],
    ["bare HTTP/2", "subscribe", () => http2],
  ];
  test.each(cases)("%s: every subscriber receives every write", async (label, transport, server) => {
    const result = await runLoad("fanout", {
      transport,
      target: target(server()),
      subscribers: 5,
      groupId: `test-${label}`,
      rates: [10],
      stepMs: 500,
      referenceStepMs: 500,
      warmupMs: 200,
      writePathWarmupWrites: 20,
      drainMs: 5000,
      p99LimitMs: 60_000,
      joinTimeoutMs: 10_000,
      deadlineMs: 30_000,
    });
    expect(result.joined).toBe(5);
    expect(result.lost).toBe(0);
    expect(result.steps).toHaveLength(1);
    const [step] = result.steps;
    expect(step.expected).toBe(step.writes * 5);
    expect(step.received).toBe(step.expected);
    expect(step.failedWrites).toBe(0);
    expect(step.serverCpuMicrosPerDelivery).toBeGreaterThanOrEqual(0);
  });
});

test("many-groups load delivers each group's writes to its subscribers only", async () => {
  const result = await runLoad("many-groups", {
    transport: "stream-socket",
    target: target(ours),
    groups: 3,
    subscribersPerGroup: 2,
    writesPerGroupPerSecond: 5,
    warmupMs: 200,
    measureMs: 600,
    drainMs: 5000,
    joinTimeoutMs: 10_000,
    groupPrefix: "test-chat",
    deadlineMs: 30_000,
  });
  expect(result.joined).toBe(6);
  expect(result.writes).toBeGreaterThan(0);
  expect(result.received).toBe(result.writes * 2);
});

test("unary load calls Set on iii-stream and on the no-op server over each protocol", async () => {
  const protocols = ["connect-binary-h2", "connect-json-h1", "grpc"] as const;
  const figures = await runLoad("unary", {
    cases: protocols.flatMap((protocol) => [ours, noop].map((server) => ({ target: target(server), protocol, concurrency: 2 }))),
    warmupMs: 100,
    measureMs: 300,
    deadlineMs: 30_000,
  });
  expect(figures).toHaveLength(6);
  for (const f of figures) {
    expect(f.errors).toBe(0);
    expect(f.callsPerSecond).toBeGreaterThan(0);
  }
});

test("hot-item load reads back exactly the acknowledged increments", async () => {
  const result = await runLoad("hot-item", {
    target: target(ours),
    callers: 10,
    warmupMs: 100,
    measureMs: 300,
    groupId: "test-hot",
    deadlineMs: 30_000,
  });
  expect(result.errors).toBe(0);
  expect(result.acknowledged).toBeGreaterThan(0);
  expect(result.finalValue).toBe(result.acknowledged);
});

test.each(["subscribe-connect-h2", "subscribe-connect-json-h1", "stream-socket"] as const)(
  "slow-consumers load (%s): the reading subscriber gets every write, and every stalled one is accounted for",
  async (transport) => {
    const result = await runLoad("slow-consumers", {
      transport,
      target: target(ours),
      subscribers: 3,
      seconds: 1,
      writesPerSecond: 50,
      changeBytes: 4096,
      groupId: `test-slow-${transport}`,
      joinTimeoutMs: 10_000,
      resumeTimeoutMs: 1000,
      sampleMs: 50,
      pointMs: 200,
      memoryGuardBytes: 4 * 1024 ** 3,
      deadlineMs: 60_000,
    });
    expect([result.joined, result.joinFailures, result.failedWrites]).toEqual([3, 0, 0]);
    expect(result.reader.messages).toBeGreaterThanOrEqual(result.writes);
    expect(result.endings.reduce((sum, ending) => sum + ending.subscribers, 0)).toBe(3);
    expect(result.rss.peakBytes).toBeGreaterThan(0);
  },
);

test("snapshot-join load: every subscriber gets the whole group at one offset", async () => {
  const result = await runLoad("snapshot-join", {
    target: target(ours),
    groupId: "test-snapshot-join",
    items: 300,
    itemBytes: 200,
    prefillConcurrency: 8,
    subscribers: 3,
    joinTimeoutMs: 20_000,
    sampleMs: 50,
    pointMs: 200,
    memoryGuardBytes: 4 * 1024 ** 3,
    deadlineMs: 60_000,
  });
  expect(result.joins.complete).toBe(3);
  expect([result.joins.items.min, result.joins.items.max, result.joins.offsetMismatches]).toEqual([300, 300, 0]);
});

test("idle load reads the server's resident memory at each checkpoint", async () => {
  const result = await runLoad("idle", {
    transport: "subscribe",
    target: target(ours),
    checkpoints: [5, 10],
    settleMs: 50,
    joinTimeoutMs: 10_000,
    groupId: "test-idle",
    deadlineMs: 30_000,
  });
  expect(result.joinFailures).toBe(0);
  expect(result.baselineRssBytes).toBeGreaterThan(0);
  expect(result.points.map((p) => p.subscribers)).toEqual([5, 10]);
  for (const point of result.points) expect(point.rssBytes).toBeGreaterThan(0);
});

describe("result helpers", () => {
  test("percentiles come from the histogram's 0.1 ms buckets", () => {
    const histogram = new LatencyHistogram();
    for (let ms = 1; ms <= 100; ms++) histogram.add(ms);
    expect(histogram.percentile(50)).toBe(50);
    expect(histogram.percentile(99)).toBe(99);
    expect(histogram.percentile(100)).toBe(100);
    histogram.reset();
    expect(histogram.percentile(50)).toBeNaN();
  });

  test("median ignores missing figures", () => {
    expect(median([3, NaN, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  test("the SVG has one bar per system, escapes labels and marks missing figures", () => {
    const svg = renderSvg([
      { kind: "bars", title: "a <b> & c", unit: "µs", bars: [{ label: "ours", value: 2, ours: true }, { label: "peer", value: NaN }] },
      { kind: "lines", title: "lines", xLabel: "x", yLabel: "y", series: [{ label: "s", points: [[1, 2], [2, 4]] }], limit: { y: 3, label: "limit" } },
    ]);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("a &lt;b&gt; &amp; c");
    expect(svg).toContain("not available");
    expect(svg.match(/<polyline/g)).toHaveLength(1);
  });

  test("bars of one system share a colour", () => {
    const svg = renderSvg([
      {
        kind: "bars",
        title: "t",
        unit: "/s",
        bars: [
          { label: "16: ours", value: 1, ours: true, system: "ours" },
          { label: "16: peer", value: 2, system: "peer" },
          { label: "64: ours", value: 3, ours: true, system: "ours" },
        ],
      },
    ]);
    const fills = [...svg.matchAll(/<rect x="\d+" y="[\d.]+" width="[\d.]+" height="\d+" fill="(#[0-9a-f]+)"/g)].map((m) => m[1]);
    expect(fills).toHaveLength(3);
    expect(fills[0]).toBe(fills[2]);
    expect(fills[1]).not.toBe(fills[0]);
  });

  test("tables line up their columns", () => {
    expect(textTable(["a", "bb"], [["x", "1"]]).split("\n")).toEqual(["a  bb", "-  --", "x   1"]);
    expect(markdownTable(["a", "b"], [["x|y", "1"]])).toBe("| a | b |\n| --- | ---: |\n| x\\|y | 1 |");
  });
});
