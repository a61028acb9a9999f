/**
 * Quick figures for the two hot paths:
 *   (a) Set calls/s and latency with 16 concurrent callers (Connect, binary, HTTP/2);
 *   (b) Subscribe deliveries/s with 1,000 streams on one group, spread over a few
 *       HTTP/2 connections as real clients would, while one writer sets at a fixed rate.
 *
 * The server is the real CLI (memory adapter) in a child process; this process is the
 * clients. Both share the machine's cores, so (b) is also bounded by how fast this
 * process decodes. Takes well under a minute.
 *
 *   npx tsx bench/quick.ts
 */
import { setMaxListeners } from "node:events";
import os from "node:os";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { startServerProcess, type ServerProcess } from "./support/server-process.js";

const SET_CALLERS = 16;
const SET_WARMUP_MS = 1000;
const SET_MEASURE_MS = 5000;
const SET_ITEMS = 1000;

const SUBSCRIBERS = 1000;
const CONNECTIONS = 10;
/**
 * Writes per second, and for how long. 1,000 subscribers turn each write into 1,000
 * deliveries, so 50,000 deliveries/s are offered: a figure below that is the capacity
 * of server and clients together; at that figure, they kept up.
 */
const WRITE_RATE = 50;
const WRITE_MS = 4000;
/** Stop waiting for stragglers after this long: the figure then counts what arrived. */
const DRAIN_TIMEOUT_MS = 15_000;

type StreamClient = Client<typeof StreamService>;

function connectClient(baseUrl: string): StreamClient {
  return createClient(StreamService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface SetFigures {
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU per call: unlike the rates, it barely depends on what else runs on the machine. */
  serverCpuMicros: number | undefined;
}

async function measureSets(server: ServerProcess): Promise<SetFigures> {
  const client = connectClient(server.url);
  const data = fromJson(ValueSchema, { name: "bench", count: 1, tags: ["a", "b"] });
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  let next = 0;
  const caller = async () => {
    while (!stop) {
      const itemId = `i${next++ % SET_ITEMS}`;
      const started = performance.now();
      await client.set({ streamName: "bench", groupId: "sets", itemId, data });
      if (measuring) latencies.push(performance.now() - started);
    }
  };
  const callers = Array.from({ length: SET_CALLERS }, caller);
  await sleep(SET_WARMUP_MS);
  measuring = true;
  const cpuBefore = server.cpuSeconds();
  const started = performance.now();
  await sleep(SET_MEASURE_MS);
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const cpu = perCall(cpuBefore, server.cpuSeconds(), latencies.length);
  stop = true;
  await Promise.all(callers);
  const sorted = Float64Array.from(latencies).sort();
  return { callsPerSecond: latencies.length / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), serverCpuMicros: cpu };
}

interface FanOutFigures {
  writes: number;
  expected: number;
  received: number;
  deliveriesPerSecond: number;
  lagP50Ms: number;
  lagP99Ms: number;
  failures: Map<string, number>;
  /** CPU per delivery while the writes were delivered, in the server and in this (client) process. */
  serverCpuMicros: number | undefined;
  clientCpuMicros: number;
}

async function measureFanOut(server: ServerProcess): Promise<FanOutFigures> {
  const url = server.url;
  const clients = Array.from({ length: CONNECTIONS }, () => connectClient(url));
  const abort = new AbortController();
  setMaxListeners(SUBSCRIBERS + 1, abort.signal);
  const lags = new Uint32Array(60_000); // a histogram by millisecond: 1,000,000s of samples stay cheap
  const failures = new Map<string, number>();
  let snapshots = 0;
  let failed = 0;
  let received = 0;
  let lastReceivedAt = 0;

  const subscriber = async (client: StreamClient) => {
    try {
      for await (const response of client.subscribe({ streamName: "bench", groupId: "fan-out" }, { signal: abort.signal })) {
        if (response.message.case === "snapshot") snapshots++;
        else if (response.message.case === "change") {
          received++;
          lastReceivedAt = performance.now();
          lags[Math.min(lags.length - 1, Math.max(0, Date.now() - Number(response.message.value.timestampMs)))]++;
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) {
        const code = Code[ConnectError.from(error).code];
        failures.set(code, (failures.get(code) ?? 0) + 1);
        failed++;
      }
    }
  };
  const streams = Array.from({ length: SUBSCRIBERS }, (_, index) => subscriber(clients[index % CONNECTIONS]));
  const joinDeadline = Date.now() + 20_000;
  while (snapshots + failed < SUBSCRIBERS && Date.now() < joinDeadline) await sleep(20);

  const writer = connectClient(url);
  const total = Math.round((WRITE_RATE * WRITE_MS) / 1000);
  const serverCpuBefore = server.cpuSeconds();
  const clientCpuBefore = process.cpuUsage();
  const started = performance.now();
  const writes: Promise<unknown>[] = [];
  for (let index = 0; index < total; index++) {
    // Paced by the clock, not by replies: a slow server does not lower the offered rate.
    const due = started + (index * 1000) / WRITE_RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    writes.push(writer.set({ streamName: "bench", groupId: "fan-out", itemId: `i${index % 100}`, data: fromJson(ValueSchema, { index }) }));
  }
  await Promise.all(writes);
  const expected = total * SUBSCRIBERS;
  const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
  // A stream that failed receives nothing more: do not wait for it.
  while (received < expected - failed * total && Date.now() < drainDeadline) await sleep(20);
  const seconds = (lastReceivedAt - started) / 1000;
  const serverCpuAfter = server.cpuSeconds();
  const clientCpu = process.cpuUsage(clientCpuBefore);

  abort.abort();
  await Promise.all(streams);
  return {
    writes: total,
    expected,
    received,
    deliveriesPerSecond: received / seconds,
    lagP50Ms: histogramPercentile(lags, 50),
    lagP99Ms: histogramPercentile(lags, 99),
    failures,
    serverCpuMicros: perCall(serverCpuBefore, serverCpuAfter, received),
    clientCpuMicros: perCall(0, (clientCpu.user + clientCpu.system) / 1e6, received)!,
  };
}

function perCall(cpuBefore: number | undefined, cpuAfter: number | undefined, calls: number): number | undefined {
  return cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) / calls) * 1e6;
}

function histogramPercentile(histogram: Uint32Array, p: number): number {
  let count = 0;
  for (const n of histogram) count += n;
  let seen = 0;
  for (let ms = 0; ms < histogram.length; ms++) {
    seen += histogram[ms];
    if (seen >= (p / 100) * count) return ms;
  }
  return NaN;
}

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join("\n");
}

const micros = (n: number | undefined) => (n === undefined ? "n/a" : `${format(n)} µs`);
const format = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const server = await startServerProcess(["--adapter", "memory"]);
try {
  const load = os.loadavg()[0].toFixed(1);
  console.log(`iii-stream quick bench: node ${process.version}, ${os.cpus().length} cores, load average ${load} at start; server in a child process\n`);
  const sets = await measureSets(server);
  const fanOut = await measureFanOut(server);
  const failed = [...fanOut.failures].map(([code, count]) => `${count} (${code})`).join(", ") || "0";
  console.log(
    table([
      [`Set, ${SET_CALLERS} concurrent callers (Connect binary, HTTP/2)`, `${format(sets.callsPerSecond)} calls/s`],
      ["  latency p50 / p99", `${format(sets.p50Ms, 2)} ms / ${format(sets.p99Ms, 2)} ms`],
      ["  server CPU per call", micros(sets.serverCpuMicros)],
      [`Subscribe, ${SUBSCRIBERS} streams on one group over ${CONNECTIONS} connections`, `${format(fanOut.deliveriesPerSecond)} deliveries/s`],
      [`  writes (${WRITE_RATE}/s for ${WRITE_MS / 1000} s), deliveries received / expected`, `${format(fanOut.writes)}, ${format(fanOut.received)} / ${format(fanOut.expected)}`],
      ["  commit-to-client lag p50 / p99", `${format(fanOut.lagP50Ms)} ms / ${format(fanOut.lagP99Ms)} ms`],
      ["  streams that failed", failed],
      ["  CPU per delivery: server / clients (this process)", `${micros(fanOut.serverCpuMicros)} / ${micros(fanOut.clientCpuMicros)}`],
    ]),
  );
} finally {
  await server.stop();
}
