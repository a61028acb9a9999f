/**
 * Figures of the Redis adapter, measured in one run against real server processes on
 * one Redis (REDIS_URL, default redis://127.0.0.1:6379), with load from this process:
 *   (a) deliveries/s and write-to-subscriber latency with 1,000 subscribers of one
 *       group, all on one instance, then split 500/500 over two instances, under the
 *       same write load;
 *   (b) Update calls/s on one hot item with 100 concurrent callers, through one
 *       instance, then 50 + 50 through two (compare-and-set across processes).
 * This process and the servers share the machine's cores: on a small machine the
 * figures are bounded by how fast this process decodes, too. Under two minutes.
 *
 *   npx tsx bench/redis.ts
 */
import { setMaxListeners } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { create, fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { StreamService, UpdateOpSchema } from "../gen/iii/stream/v1/stream_pb.js";
import { startServerProcess, type ServerProcess } from "./support/server-process.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const KEY_PREFIX = `iii-stream-bench:${Date.now().toString(36)}:`;

const SUBSCRIBERS = 1000;
/** HTTP/2 connections per instance that the subscribers share, as real clients would spread. */
const CONNECTIONS_PER_INSTANCE = 10;
/**
 * Writes per second, and for how long; every write becomes one delivery per
 * subscriber. 40/s offers 40,000 deliveries/s: more than one instance sustains on a
 * 2-core machine that also runs Redis and these clients, so a second instance shows.
 */
const WRITE_RATE = 40;
const WRITE_MS = 5000;
const DRAIN_TIMEOUT_MS = 15_000;

const HOT_CALLERS = 100;
const HOT_WARMUP_MS = 1000;
const HOT_MEASURE_MS = 4000;

type StreamClient = Client<typeof StreamService>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function connectClient(baseUrl: string): StreamClient {
  return createClient(StreamService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }));
}

/** Latencies in 0.1 ms buckets: a million samples stay cheap. */
class Histogram {
  private readonly buckets = new Uint32Array(600_000);
  count = 0;

  add(ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.max(0, Math.round(ms * 10)))]++;
    this.count++;
  }

  percentile(p: number): number {
    let seen = 0;
    for (let bucket = 0; bucket < this.buckets.length; bucket++) {
      seen += this.buckets[bucket];
      if (seen >= (p / 100) * this.count) return bucket / 10;
    }
    return NaN;
  }
}

interface FanOutFigures {
  expected: number;
  received: number;
  deliveriesPerSecond: number;
  latency: Histogram;
  failedStreams: Map<string, number>;
  failedWrites: number;
}

async function measureFanOut(servers: ServerProcess[], streamName: string): Promise<FanOutFigures> {
  const clients = servers.flatMap((server) => Array.from({ length: CONNECTIONS_PER_INSTANCE }, () => connectClient(server.url)));
  const abort = new AbortController();
  setMaxListeners(SUBSCRIBERS + 1, abort.signal);
  const latency = new Histogram();
  const sentAt = new Float64Array(Math.ceil((WRITE_RATE * WRITE_MS) / 1000));
  let snapshots = 0;
  let failed = 0;
  const failedStreams = new Map<string, number>();
  let failedWrites = 0;
  let lastReceivedAt = 0;

  const subscriber = async (client: StreamClient) => {
    try {
      for await (const response of client.subscribe({ streamName, groupId: "fan-out" }, { signal: abort.signal })) {
        if (response.message.case === "snapshot") snapshots++;
        else if (response.message.case === "change") {
          lastReceivedAt = performance.now();
          latency.add(lastReceivedAt - sentAt[Number(response.message.value.itemId)]);
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) {
        failed++;
        const code = ConnectError.from(error).code;
        failedStreams.set(Code[code], (failedStreams.get(Code[code]) ?? 0) + 1);
      }
    }
  };
  // Instance k serves subscribers k, k + n, k + 2n...: an even split.
  const streams = Array.from({ length: SUBSCRIBERS }, (_, index) =>
    subscriber(clients[(index % servers.length) * CONNECTIONS_PER_INSTANCE + (Math.floor(index / servers.length) % CONNECTIONS_PER_INSTANCE)]),
  );
  const joinDeadline = Date.now() + 30_000;
  while (snapshots + failed < SUBSCRIBERS && Date.now() < joinDeadline) await sleep(20);

  // Writes alternate between the instances, paced by the clock rather than by replies.
  const writers = servers.map((server) => connectClient(server.url));
  const data = fromJson(ValueSchema, { name: "bench", tags: ["a", "b"] });
  const started = performance.now();
  const writes: Promise<unknown>[] = [];
  for (let index = 0; index < sentAt.length; index++) {
    const wait = started + (index * 1000) / WRITE_RATE - performance.now();
    if (wait > 1) await sleep(wait);
    sentAt[index] = performance.now();
    writes.push(
      writers[index % writers.length].set({ streamName, groupId: "fan-out", itemId: String(index), data }).catch(() => failedWrites++),
    );
  }
  await Promise.all(writes);
  const expected = sentAt.length * SUBSCRIBERS;
  const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (latency.count < expected - failed * sentAt.length && Date.now() < drainDeadline) await sleep(20);
  abort.abort();
  await Promise.all(streams);
  return {
    expected,
    received: latency.count,
    deliveriesPerSecond: latency.count / ((lastReceivedAt - started) / 1000),
    latency,
    failedStreams,
    failedWrites,
  };
}

interface HotItemFigures {
  callsPerSecond: number;
  latency: Histogram;
}

async function measureHotItem(servers: ServerProcess[], streamName: string): Promise<HotItemFigures> {
  const clients = servers.map((server) => connectClient(server.url));
  const increment = [create(UpdateOpSchema, { op: { case: "increment", value: { path: ["n"], by: 1n } } })];
  const latency = new Histogram();
  let measuring = false;
  let stop = false;
  const caller = async (client: StreamClient) => {
    while (!stop) {
      const started = performance.now();
      await client.update({ streamName, groupId: "hot", itemId: "counter", ops: increment });
      if (measuring) latency.add(performance.now() - started);
    }
  };
  const callers = Array.from({ length: HOT_CALLERS }, (_, i) => caller(clients[i % clients.length]));
  await sleep(HOT_WARMUP_MS);
  measuring = true;
  const started = performance.now();
  await sleep(HOT_MEASURE_MS);
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(callers);
  return { callsPerSecond: latency.count / seconds, latency };
}

async function withInstances<T>(count: number, configPath: string, run: (servers: ServerProcess[]) => Promise<T>): Promise<T> {
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      servers.push(await startServerProcess(["--adapter", "redis", "--redis-url", REDIS_URL, "--config", configPath]));
    }
    return await run(servers);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

async function deleteBenchKeys(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${KEY_PREFIX}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
}

const format = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ")).join("\n");
}

const dir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-redis-"));
const configPath = join(dir, "config.yaml");
writeFileSync(configPath, `adapter:\n  name: redis\n  config:\n    key_prefix: "${KEY_PREFIX}"\n`);
try {
  const redisVersion = await (async () => {
    const redis = new Redis(REDIS_URL);
    try {
      return /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "?";
    } finally {
      await redis.quit();
    }
  })();
  console.log(
    `iii-stream Redis bench: node ${process.version}, Redis ${redisVersion}, ${os.cpus().length} cores, ` +
      `load average ${os.loadavg()[0].toFixed(1)} at start; servers in child processes\n`,
  );
  const fanOut1 = await withInstances(1, configPath, (servers) => measureFanOut(servers, "fan-out-1"));
  const fanOut2 = await withInstances(2, configPath, (servers) => measureFanOut(servers, "fan-out-2"));
  const hot1 = await withInstances(1, configPath, (servers) => measureHotItem(servers, "hot-1"));
  const hot2 = await withInstances(2, configPath, (servers) => measureHotItem(servers, "hot-2"));

  const writes = `${WRITE_RATE} writes/s for ${WRITE_MS / 1000} s`;
  const fanOutRow = (name: string, figures: FanOutFigures) => [
    name,
    format(figures.deliveriesPerSecond),
    `${format(figures.received)} / ${format(figures.expected)}`,
    format(figures.latency.percentile(50), 1),
    format(figures.latency.percentile(99), 1),
    [...figures.failedStreams].map(([code, count]) => `${count} ${code}`).join(", ") || "0",
    String(figures.failedWrites),
  ];
  console.log(`(a) ${SUBSCRIBERS} subscribers of one group, ${writes}; latency = write sent -> change received`);
  console.log(
    table([
      ["instances", "deliveries/s", "received / expected", "p50 ms", "p99 ms", "failed streams", "failed writes"],
      fanOutRow("1 (1,000 subscribers)", fanOut1),
      fanOutRow("2 (500 + 500)", fanOut2),
    ]),
  );
  const hotRow = (name: string, figures: HotItemFigures) => [
    name,
    format(figures.callsPerSecond),
    format(figures.latency.percentile(50), 1),
    format(figures.latency.percentile(99), 1),
  ];
  console.log(`\n(b) Update (increment by 1) of one item, ${HOT_CALLERS} concurrent callers, ${HOT_MEASURE_MS / 1000} s`);
  console.log(
    table([
      ["instances", "calls/s", "p50 ms", "p99 ms"],
      hotRow("1 (100 callers)", hot1),
      hotRow("2 (50 + 50)", hot2),
    ]),
  );
} finally {
  await deleteBenchKeys();
  rmSync(dir, { recursive: true, force: true });
}
