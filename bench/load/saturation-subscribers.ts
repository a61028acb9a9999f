/**
 * The subscribing side of the saturation load: `subscriptions` subscriptions on one
 * group, `perConnection` to a connection, every one reading as fast as it can and
 * every `sampleEvery`-th also decoding and counting its changes. Once all joined it
 * writes the ready file, then reads until the stop file appears, and reports. The
 * writer and the probe run in another process (saturation-probe.ts); this one lowers
 * its own scheduling priority so that, sharing a core, it never delays them. Run by
 * the suite (bench/suite/scenarios/saturation.ts).
 */
import { existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import { LatencyHistogram } from "../suite/stats.js";
import { epochNow, type CountingConnection, type SampleSink, type SampleSlot } from "./counting-connection.js";
import { CountingSocketConnection } from "./counting-socket-connection.js";
import { CountingSubscribeConnection } from "./counting-subscribe-connection.js";
import { finish, inBatches, readJob, sleep } from "./load-io.js";
import type { SaturationSubscribersJob, SaturationSubscribersResult } from "./saturation-jobs.js";

/** Niceness of this process: the probe process on the same core runs first whenever it has work. */
const NICENESS = 10;
const STOP_POLL_MS = 100;

const job = readJob<SaturationSubscribersJob>();
os.setPriority(NICENESS);

const connectionCount = Math.ceil(job.subscriptions / job.perConnection);
const sampleCount = Math.ceil(job.subscriptions / job.sampleEvery);
const received = new Uint32Array(sampleCount);
const lag = new LatencyHistogram();
let lagMaxMs = 0;
const bySecond = new Map<number, number>();
const sink: SampleSink = {
  onChange(sample, _i, sentAtEpochMs) {
    const now = epochNow();
    const ms = now - sentAtEpochMs;
    lag.add(ms);
    if (ms > lagMaxMs) lagMaxMs = ms;
    received[sample]++;
    const second = Math.floor(now / 1000);
    bySecond.set(second, (bySecond.get(second) ?? 0) + 1);
  },
};

/** The sampled subscription among connection `index`'s, if one of its subscriptions is a multiple of sampleEvery. */
function slotOf(index: number, calls: number): SampleSlot | undefined {
  const first = index * job.perConnection;
  const sampled = Math.ceil(first / job.sampleEvery) * job.sampleEvery;
  return sampled < first + calls ? { position: sampled - first, sample: sampled / job.sampleEvery } : undefined;
}

const connections: CountingConnection[] = [];
const sampledJoined = new Set<number>();
let joinFailures = 0;
const joinStarted = performance.now();
await inBatches(connectionCount, job.joinParallelConnections, async (index) => {
  const calls = Math.min(job.perConnection, job.subscriptions - index * job.perConnection);
  const slot = slotOf(index, calls);
  const connection =
    job.transport === "subscribe"
      ? new CountingSubscribeConnection(job.url, job.groupId, calls, slot, sink)
      : new CountingSocketConnection(job.url, job.groupId, calls, slot, sink);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), job.joinTimeoutMs)));
  const outcome = await Promise.race([connection.settled.then(() => "settled" as const), timeout]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    // Which of its calls hung is not known here: the connection goes, and all its calls count as failed.
    connection.close();
    joinFailures += calls;
    return;
  }
  joinFailures += calls - connection.joinedCount;
  connections.push(connection);
  // A sampled subscription counts as joined when its whole connection did (a failure is rare and counted above).
  if (slot && connection.joinedCount === calls) sampledJoined.add(slot.sample);
});
const joinMs = performance.now() - joinStarted;
const joined = connections.reduce((sum, c) => sum + c.joinedCount, 0);
writeFileSync(job.readyFile, JSON.stringify({ joined, joinFailures }));

const cpuBefore = process.cpuUsage();
const readingSince = performance.now();
while (!existsSync(job.stopFile)) await sleep(STOP_POLL_MS);
const cpu = process.cpuUsage(cpuBefore);
const readingSeconds = (performance.now() - readingSince) / 1000;

const sampledCounts = [...sampledJoined].map((sample) => received[sample]);
const result: SaturationSubscribersResult = {
  transport: job.transport,
  connections: connections.length,
  joined,
  joinFailures,
  joinMs,
  lost: connections.reduce((sum, c) => sum + c.lost, 0),
  sampled: sampledJoined.size,
  sampleDeliveries: sampledCounts.reduce((sum, n) => sum + n, 0),
  sampleBySecond: [...bySecond].sort((a, b) => a[0] - b[0]),
  sampleMinReceived: sampledCounts.length === 0 ? NaN : Math.min(...sampledCounts),
  sampleMaxReceived: sampledCounts.length === 0 ? NaN : Math.max(...sampledCounts),
  lagP50Ms: lag.percentile(50),
  lagP99Ms: lag.percentile(99),
  lagMaxMs: lag.count === 0 ? NaN : lagMaxMs,
  bytesRead: connections.reduce((sum, c) => sum + c.bytes, 0),
  loadCores: (cpu.user + cpu.system) / 1e6 / readingSeconds,
};
await finish(result);
