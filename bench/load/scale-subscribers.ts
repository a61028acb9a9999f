/**
 * Cost of a group's subscriber count: Subscribe calls on one group (a fixed number per
 * HTTP/2 connection, see shared-connection-subscribe.ts) added up to each checkpoint.
 * At each, after a full garbage collection and once the server settled, its resident
 * memory is read from /proc (idle: nothing written since the last checkpoint's window); then one writer makes Sets at a
 * fixed modest rate for a window and the server's CPU time over it (/proc) is divided by
 * the deliveries that arrived. Run by the `scale` scenario (bench/suite/scenarios/scale.ts).
 */
import { rssBytes } from "../suite/proc-stats.js";
import { LatencyHistogram, median } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import { finish, inBatches, readJob, sleep } from "./load-io.js";
import type { SubscribersJob, SubscribersPoint, SubscribersResult } from "./scale-jobs.js";
import { SharedSubscribeConnection } from "./shared-connection-subscribe.js";
import { openConnectWriter } from "./transports/connect-writer.js";
import { STREAM_NAME, type Subscriber } from "./transports/transport.js";

/** Connections whose calls are being joined at once: more overflows the server's accept backlog. */
const JOIN_PARALLEL_CONNECTIONS = 20;
/** Readings per memory figure: the median steps over a garbage collection that happens to run. */
const READINGS = 5;
const READING_GAP_MS = 200;
/** An unmeasured stretch of writes before each window: new subscribers' first deliveries allocate. */
const LEAD_IN_MS = 2000;

const job = readJob<SubscribersJob>();
const latency = new LatencyHistogram();
const longestRun = job.warmupWrites + job.checkpoints.length * Math.ceil(((LEAD_IN_MS + job.windowMs) * job.writesPerSecond) / 1000 + 2);
const sentAt = new Float64Array(longestRun).fill(NaN);
let nextWrite = 0;
let received = 0;
let lost = 0;
const events = {
  onChange(i: number) {
    latency.add(performance.now() - sentAt[i]);
    received++;
  },
  onLost() {
    lost++;
  },
};

/**
 * The server's memory once settled, after full garbage collections (scale-server.ts runs
 * them on SIGUSR2): what it retains for its subscribers, not what the last window's
 * deliveries left for the collector.
 */
async function settledRss(): Promise<number> {
  process.kill(job.serverPid, "SIGUSR2");
  await sleep(job.settleMs);
  const readings: number[] = [];
  for (let r = 0; r < READINGS; r++) {
    readings.push(rssBytes(job.serverPid) ?? NaN);
    await sleep(READING_GAP_MS);
  }
  return median(readings);
}

const connections: SharedSubscribeConnection[] = [];
const subscribers: Subscriber[] = [];
let joinFailures = 0;

/** Opens connections of `streamsPerConnection` calls each until `count` calls were made. */
async function joinUpTo(count: number): Promise<number> {
  const started = performance.now();
  const missing = count - subscribers.length;
  const perConnection = job.streamsPerConnection;
  await inBatches(Math.ceil(missing / perConnection), JOIN_PARALLEL_CONNECTIONS, async (index) => {
    const connection = new SharedSubscribeConnection(job.url);
    connections.push(connection);
    const calls = Math.min(perConnection, missing - index * perConnection);
    const opened = Array.from({ length: calls }, () => connection.subscribe(STREAM_NAME, job.groupId, events));
    subscribers.push(...opened);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), job.joinTimeoutMs)));
    const outcomes = await Promise.all(opened.map((s) => Promise.race([s.joined.then(() => "joined" as const, () => "failed" as const), timeout])));
    clearTimeout(timer);
    for (const [k, outcome] of outcomes.entries()) {
      if (outcome === "joined") continue;
      joinFailures++;
      opened[k].close();
    }
  });
  return performance.now() - started;
}

const writer = await openConnectWriter(job.url);

/** Writes at the job's rate for `ms`, paced by the clock, then waits for the deliveries. */
async function writeFor(ms: number, listening: number): Promise<{ writes: number; expected: number }> {
  const writes = Math.max(1, Math.round((job.writesPerSecond * ms) / 1000));
  const expected = writes * listening;
  const started = performance.now();
  const acks: Promise<void>[] = [];
  for (let k = 0; k < writes && nextWrite < sentAt.length; k++) {
    const wait = started + (k * 1000) / job.writesPerSecond - performance.now();
    if (wait > 1) await sleep(wait);
    const i = nextWrite++;
    sentAt[i] = performance.now();
    acks.push(writer.write(job.groupId, i).catch(() => undefined));
  }
  await Promise.all(acks);
  const deadline = performance.now() + job.drainMs;
  while (received < expected && performance.now() < deadline) await sleep(5);
  return { writes, expected };
}

// The write path's first calls run through V8's first tiers; a group nobody joined takes them.
let warmed = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (warmed < job.warmupWrites) await writer.write(`${job.groupId}-warm-up`, warmed++).catch(() => undefined);
  }),
);
nextWrite = job.warmupWrites;

const baselineRssBytes = await settledRss();
const points: SubscribersPoint[] = [];
for (const checkpoint of job.checkpoints) {
  const failuresBefore = joinFailures;
  const joinMs = await joinUpTo(checkpoint);
  const idleRssBytes = await settledRss();
  const listening = subscribers.length - joinFailures - lost;
  await writeFor(LEAD_IN_MS, listening);
  received = 0;
  latency.reset();
  const window = openCpuWindow([job.serverPid]);
  const { writes, expected } = await writeFor(job.windowMs, listening);
  const cpu = window();
  points.push({
    subscribers: subscribers.length - joinFailures,
    joinFailures: joinFailures - failuresBefore,
    joinMs,
    idleRssBytes,
    writes,
    expected,
    received,
    serverCpuMicrosPerDelivery: (cpu.serverSeconds / Math.max(1, received)) * 1e6,
    serverCores: cpu.serverSeconds / cpu.wallSeconds,
    loadCores: cpu.loadSeconds / cpu.wallSeconds,
    p50Ms: latency.percentile(50),
    p99Ms: latency.percentile(99),
  });
}
for (const connection of connections) connection.close();
writer.close();
const result: SubscribersResult = { baselineRssBytes, points, lost };
await finish(result);
