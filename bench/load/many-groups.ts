/**
 * Many-groups load, the shape of published chat benchmarks: `groups` groups of
 * `subscribersPerGroup` subscribers (each on its own connection) and every group
 * receiving `writesPerGroupPerSecond` writes, spread evenly in time. Reports latency
 * percentiles and the server's CPU. Run by the suite (bench/suite/scenarios/many-groups.ts).
 */
import { LatencyHistogram } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import type { ManyGroupsJob, ManyGroupsResult } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { joinSubscribers } from "./subscribers.js";
import { TRANSPORTS } from "./transports/transports.js";

const job = readJob<ManyGroupsJob>();
const transport = TRANSPORTS[job.transport];
const rate = job.groups * job.writesPerGroupPerSecond;
const sentAt = new Float64Array(Math.ceil((rate * (job.warmupMs + job.measureMs)) / 1000) + 1).fill(NaN);
const latency = new LatencyHistogram();
/** Write call to acknowledgement: when deliveries lag, this says whether the writes did. */
const ackLatency = new LatencyHistogram();
let received = 0;
let lost = 0;

const groupId = (index: number) => `${job.groupPrefix}-${index % job.groups}`;
const joined = await joinSubscribers(
  transport,
  job.target.urls,
  job.groups * job.subscribersPerGroup,
  groupId,
  {
    onChange(i) {
      latency.add(performance.now() - sentAt[i]);
      received++;
    },
    onLost() {
      lost++;
    },
  },
  job.joinTimeoutMs,
);
const writer = await transport.openWriter(job.target.urls[0]);

/** Write i goes to group i mod groups: each group gets its share at an even pace. */
let nextWrite = 0;
let failedWrites = 0;
async function writeFor(ms: number): Promise<Promise<void>[]> {
  const acks: Promise<void>[] = [];
  const started = performance.now();
  const writes = Math.round((rate * ms) / 1000);
  for (let k = 0; k < writes && nextWrite < sentAt.length; k++) {
    const wait = started + (k * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const i = nextWrite++;
    const sent = (sentAt[i] = performance.now());
    acks.push(
      writer.write(groupId(i), i).then(
        () => ackLatency.add(performance.now() - sent),
        () => void failedWrites++,
      ),
    );
  }
  return acks;
}

await Promise.all(await writeFor(job.warmupMs));
await sleep(200);
latency.reset();
ackLatency.reset();
received = 0;
const firstMeasured = nextWrite;
const window = openCpuWindow(job.target.pids);
const acks = await writeFor(job.measureMs);
const writes = nextWrite - firstMeasured;
const expected = writes * job.subscribersPerGroup;
const deadline = performance.now() + job.drainMs;
await Promise.race([Promise.all(acks), sleep(job.drainMs)]);
while (received < expected && performance.now() < deadline) await sleep(5);
const cpu = window();

const result: ManyGroupsResult = {
  transport: job.transport,
  joined: joined.subscribers.length - joined.failures,
  joinFailures: joined.failures,
  joinMs: joined.ms,
  lost,
  writes,
  expected,
  received,
  p50Ms: latency.percentile(50),
  p95Ms: latency.percentile(95),
  p99Ms: latency.percentile(99),
  writeAckP50Ms: ackLatency.percentile(50),
  writeAckP99Ms: ackLatency.percentile(99),
  serverCores: cpu.serverSeconds / cpu.wallSeconds,
  serverCpuMicrosPerDelivery: (cpu.serverSeconds / Math.max(1, received)) * 1e6,
  loadCores: cpu.loadSeconds / cpu.wallSeconds,
  failedWrites,
};
for (const subscriber of joined.subscribers) subscriber.close();
writer.close();
await finish(result);
