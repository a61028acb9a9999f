/**
 * Fan-out over the WebSocket bridge next to Subscribe: 1,000 stream-socket
 * subscribers of one group (one WebSocket connection each, as 1,000 browsers would
 * have), then 1,000 Subscribe streams of one group (over 10 HTTP/2 connections, as in
 * bench/quick.ts), each while one writer sets at a fixed rate. Prints deliveries/s
 * and the delivery lag (receive time minus the change's commit timestamp).
 *
 * The server is the real CLI (memory adapter) in a child process; this process is
 * the clients, so both share the machine's cores. Takes about a minute.
 *
 *   npx tsx bench/ws.ts
 */
import { setMaxListeners } from "node:events";
import os from "node:os";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { WebSocket } from "ws";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { startServerProcess, type ServerProcess } from "./support/server-process.js";

const SUBSCRIBERS = 1000;
const SUBSCRIBE_CONNECTIONS = 10;
/** Sockets opened at once while connecting, so the listen backlog never overflows. */
const OPEN_BATCH = 100;
/**
 * Writes per second (one row each) and for how long. 50 writes/s to 1,000 subscribers
 * offer 50,000 deliveries/s, as bench/quick.ts does; 200/s shows where capacity ends.
 */
const WRITE_RATES = [50, 200];
const WRITE_MS = 4000;
const DRAIN_TIMEOUT_MS = 15_000;

type StreamClient = Client<typeof StreamService>;

interface Figures {
  offered: number;
  received: number;
  deliveriesPerSecond: number;
  lagP50Ms: number;
  lagP99Ms: number;
  /** Offered deliveries not received by the end of the drain. */
  missing: number;
  /** Subscribers the server ended early (slow consumer). */
  ended: number;
  serverCpuMicros: number | undefined;
}

/** Counts deliveries and their lag in a histogram by millisecond. */
class Tally {
  readonly lags = new Uint32Array(60_000);
  received = 0;
  lastAt = 0;

  record(timestampMs: number): void {
    this.received++;
    this.lastAt = performance.now();
    this.lags[Math.min(this.lags.length - 1, Math.max(0, Date.now() - timestampMs))]++;
  }

  percentile(p: number): number {
    let seen = 0;
    for (let ms = 0; ms < this.lags.length; ms++) {
      seen += this.lags[ms];
      if (seen >= (p / 100) * this.received) return ms;
    }
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function connectClient(baseUrl: string): StreamClient {
  return createClient(StreamService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }));
}

/** One writer at a fixed rate, paced by the clock so that a slow server does not lower the offered rate. */
async function writeAtRate(url: string, groupId: string, rate: number): Promise<{ writes: number; started: number }> {
  const writer = connectClient(url);
  const total = Math.round((rate * WRITE_MS) / 1000);
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let index = 0; index < total; index++) {
    const wait = started + (index * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(writer.set({ streamName: "bench", groupId, itemId: `i${index % 100}`, data: fromJson(ValueSchema, { index }) }));
  }
  await Promise.all(pending);
  return { writes: total, started };
}

async function drain(tally: Tally, expected: () => number): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (tally.received < expected() && Date.now() < deadline) await sleep(20);
}

async function measure(server: ServerProcess, tally: Tally, groupId: string, rate: number, alive: () => number): Promise<Figures> {
  const subscribers = alive();
  const cpuBefore = server.cpuSeconds();
  const { writes, started } = await writeAtRate(server.url, groupId, rate);
  const offered = writes * SUBSCRIBERS;
  await drain(tally, () => writes * alive());
  const cpuAfter = server.cpuSeconds();
  return {
    offered,
    received: tally.received,
    deliveriesPerSecond: tally.received / ((tally.lastAt - started) / 1000),
    lagP50Ms: tally.percentile(50),
    lagP99Ms: tally.percentile(99),
    missing: offered - tally.received,
    ended: subscribers - alive(),
    serverCpuMicros: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) / tally.received) * 1e6,
  };
}

async function streamSocketFanOut(server: ServerProcess, rate: number): Promise<Figures> {
  const groupId = `ws-${rate}`;
  const tally = new Tally();
  const sockets: WebSocket[] = [];
  let synced = 0;
  let open = 0;
  const url = `${server.url.replace(/^http/, "ws")}/`;
  const connect = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url);
      sockets.push(socket);
      socket.once("open", () => {
        open++;
        socket.send(JSON.stringify({ type: "join", data: { subscriptionId: `s${index}`, streamName: "bench", groupId } }));
        resolve();
      });
      socket.once("error", reject);
      socket.once("close", () => open--);
      socket.on("message", (data) => {
        const wrapper = JSON.parse(String(data)) as { timestamp: number; event: { type: string } };
        if (wrapper.event.type === "sync") synced++;
        else tally.record(wrapper.timestamp);
      });
    });
  for (let first = 0; first < SUBSCRIBERS; first += OPEN_BATCH) {
    await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, SUBSCRIBERS - first) }, (_, i) => connect(first + i)));
  }
  const deadline = Date.now() + 20_000;
  while (synced < SUBSCRIBERS && Date.now() < deadline) await sleep(20);
  try {
    return await measure(server, tally, groupId, rate, () => open);
  } finally {
    await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => (socket.once("close", () => resolve()), socket.close()))));
  }
}

async function subscribeFanOut(server: ServerProcess, rate: number): Promise<Figures> {
  const groupId = `subscribe-${rate}`;
  const tally = new Tally();
  const clients = Array.from({ length: SUBSCRIBE_CONNECTIONS }, () => connectClient(server.url));
  const abort = new AbortController();
  setMaxListeners(SUBSCRIBERS + 1, abort.signal);
  let snapshots = 0;
  let failed = 0;
  const subscriber = async (client: StreamClient) => {
    try {
      for await (const response of client.subscribe({ streamName: "bench", groupId }, { signal: abort.signal })) {
        if (response.message.case === "snapshot") snapshots++;
        else if (response.message.case === "change") tally.record(Number(response.message.value.timestampMs));
      }
    } catch {
      if (!abort.signal.aborted) failed++;
    }
  };
  const streams = Array.from({ length: SUBSCRIBERS }, (_, index) => subscriber(clients[index % SUBSCRIBE_CONNECTIONS]));
  const deadline = Date.now() + 20_000;
  while (snapshots + failed < SUBSCRIBERS && Date.now() < deadline) await sleep(20);
  try {
    return await measure(server, tally, groupId, rate, () => SUBSCRIBERS - failed);
  } finally {
    abort.abort();
    await Promise.all(streams);
  }
}

const format = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function row(name: string, rate: number, f: Figures): string {
  const cpu = f.serverCpuMicros === undefined ? "n/a" : `${format(f.serverCpuMicros, 1)} µs`;
  return [
    name.padEnd(26),
    `${format(rate * SUBSCRIBERS)}/s`.padStart(10),
    `${format(f.deliveriesPerSecond)}/s`.padStart(11),
    `${f.lagP50Ms} ms`.padStart(8),
    `${f.lagP99Ms} ms`.padStart(9),
    format(f.missing).padStart(8),
    format(f.ended).padStart(6),
    cpu.padStart(10),
  ].join("  ");
}

const server = await startServerProcess(["--adapter", "memory"]);
try {
  console.log(
    `iii-stream WebSocket bench: node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}; ` +
      `${SUBSCRIBERS} subscribers of one group, ${WRITE_MS / 1000} s of writes per row; server in a child process\n`,
  );
  console.log(["path".padEnd(26), "offered".padStart(10), "delivered".padStart(11), "p50 lag".padStart(8), "p99 lag".padStart(9), "missing".padStart(8), "ended".padStart(6), "server CPU".padStart(10)].join("  "));
  for (const rate of WRITE_RATES) {
    console.log(row("stream socket (1,000 ws)", rate, await streamSocketFanOut(server, rate)));
    console.log(row("Subscribe (10 h2 conns)", rate, await subscribeFanOut(server, rate)));
  }
  console.log(
    "\nserver CPU = server process CPU time per delivery; missing = offered deliveries not received " +
      `${DRAIN_TIMEOUT_MS / 1000} s after the last write; ended = subscribers ended early as slow consumers`,
  );
} finally {
  await server.stop();
}
