/**
 * Many-groups load, the shape of published chat benchmarks: `groups` groups of
 * `subscribersPerGroup` subscribers (each on its own connection) and every group
 * receiving `writesPerGroupPerSecond` writes, spread evenly in time. Reports latency
 * percentiles and the server's CPU. Run by the suite (bench/suite/scenarios/many-groups.ts).
 *
 * The writer runs in a child process (bench/load/paced-writer.ts) on the same core:
 * in this process its acknowledgements would wait behind the subscribers' reads, and
 * the write-ack figure would then be this process's queueing rather than the server's.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LatencyHistogram } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import type { ManyGroupsJob, ManyGroupsResult } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { epochNow } from "./counting-connection.js";
import { groupIdOf, type PacedPhase, type PacedWriterJob } from "./paced-writer.js";
import { joinSubscribers } from "./subscribers.js";
import { TRANSPORTS } from "./transports/transports.js";

const job = readJob<ManyGroupsJob>();
const transport = TRANSPORTS[job.transport];
const rate = job.groups * job.writesPerGroupPerSecond;
const capacity = Math.ceil((rate * (job.warmupMs + job.measureMs)) / 1000) + 1;
/** Each delivery as (write index, epoch ms received): latencies are computed once the writer reports its send times. */
const receivedIndex = new Int32Array(capacity * job.subscribersPerGroup);
const receivedAt = new Float64Array(capacity * job.subscribersPerGroup);
let receipts = 0;
let lost = 0;

const joined = await joinSubscribers(
  transport,
  job.target.urls,
  job.groups * job.subscribersPerGroup,
  (index) => groupIdOf(job.groupPrefix, job.groups, index),
  {
    onChange(i) {
      if (receipts === receivedAt.length) return;
      receivedIndex[receipts] = i;
      receivedAt[receipts++] = epochNow();
    },
    onLost() {
      lost++;
    },
  },
  job.joinTimeoutMs,
);

const writerJob: PacedWriterJob = { transport: job.transport, url: job.target.urls[0], rate, groups: job.groups, groupPrefix: job.groupPrefix };
const writer = fork(fileURLToPath(new URL("./paced-writer.ts", import.meta.url)), [JSON.stringify(writerJob)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
writer.once("exit", (code) => {
  if (code !== 0 && code !== null) {
    process.stderr.write(`the writer process exited with ${code}\n`);
    process.exit(1);
  }
});
await new Promise<void>((resolve) => writer.once("message", () => resolve()));
const writeFor = (ms: number) =>
  new Promise<PacedPhase>((resolve) => {
    writer.once("message", (phase: PacedPhase) => resolve(phase));
    writer.send({ ms });
  });

await writeFor(job.warmupMs);
await sleep(200);
const window = openCpuWindow(job.target.pids);
const measured = await writeFor(job.measureMs);
const expected = measured.sentAt.length * job.subscribersPerGroup;
const lastIndex = measured.firstIndex + measured.sentAt.length;
const countMeasured = () => {
  let count = 0;
  for (let r = 0; r < receipts; r++) if (receivedIndex[r] >= measured.firstIndex && receivedIndex[r] < lastIndex) count++;
  return count;
};
const deadline = performance.now() + job.drainMs;
while (countMeasured() < expected && performance.now() < deadline) await sleep(5);
const cpu = window();

const latency = new LatencyHistogram();
let received = 0;
for (let r = 0; r < receipts; r++) {
  const i = receivedIndex[r];
  if (i < measured.firstIndex || i >= lastIndex) continue;
  latency.add(receivedAt[r] - measured.sentAt[i - measured.firstIndex]);
  received++;
}
const ackLatency = new LatencyHistogram();
for (const ms of measured.ackMs) ackLatency.add(ms);

const result: ManyGroupsResult = {
  transport: job.transport,
  joined: joined.subscribers.length - joined.failures,
  joinFailures: joined.failures,
  joinMs: joined.ms,
  lost,
  writes: measured.sentAt.length,
  expected,
  received,
  p50Ms: latency.percentile(50),
  p95Ms: latency.percentile(95),
  p99Ms: latency.percentile(99),
  writeAckP50Ms: ackLatency.percentile(50),
  writeAckP99Ms: ackLatency.percentile(99),
  serverCores: cpu.serverSeconds / cpu.wallSeconds,
  serverCpuMicrosPerDelivery: (cpu.serverSeconds / Math.max(1, received)) * 1e6,
  // The writer's CPU is its phase's; the phase spans most of this window.
  loadCores: (cpu.loadSeconds + measured.cpuSeconds) / cpu.wallSeconds,
  failedWrites: measured.failed,
};
for (const subscriber of joined.subscribers) subscriber.close();
writer.kill();
await finish(result);
