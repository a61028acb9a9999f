/**
 * Fan-out load: `subscribers` subscribers of one group, each on its own connection,
 * and one writer at stepped rates. Each step reports deliveries/s, write-to-receipt
 * latency and the server's CPU per delivery; the ladder stops at the first step the
 * server does not sustain. Run by the suite (bench/suite/scenarios/fanout.ts).
 */
import { LatencyHistogram } from "../suite/stats.js";
import { LOAD_SATURATED_CORES, openCpuWindow } from "./cpu-window.js";
import type { FanoutJob, FanoutResult, FanoutStep } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { joinSubscribers } from "./subscribers.js";
import { TRANSPORTS } from "./transports/transports.js";
import type { Writer } from "./transports/transport.js";

const job = readJob<FanoutJob>();
const transport = TRANSPORTS[job.transport];
const latency = new LatencyHistogram();
/** Every write the job may make: the warm-up, then each step twice (it may be retried). */
const longestStepMs = Math.max(job.stepMs, job.referenceStepMs);
const totalWrites = Math.ceil((job.warmupMs * job.rates[0] + 2 * longestStepMs * job.rates.reduce((sum, rate) => sum + rate, 0)) / 1000) + 2 * job.rates.length + 1;
const sentAt = new Float64Array(totalWrites).fill(NaN);
let nextWrite = 0;
let received = 0;
let lastReceivedAt = 0;
let lost = 0;

const events = {
  onChange(i: number) {
    const now = performance.now();
    latency.add(now - sentAt[i]);
    received++;
    lastReceivedAt = now;
  },
  onLost() {
    lost++;
  },
};

const joined = await joinSubscribers(transport, job.target.urls, job.subscribers, () => job.groupId, events, job.joinTimeoutMs);
const writers: Writer[] = [];
for (const url of job.target.urls) writers.push(await transport.openWriter(url));

/** Writes at `rate` for `ms`, paced by the clock (a slow server does not lower the offered rate), then waits for the deliveries. */
async function runStep(rate: number, ms: number): Promise<FanoutStep> {
  const writes = Math.max(1, Math.round((rate * ms) / 1000));
  const listening = joined.subscribers.length - joined.failures - lost;
  const expected = writes * listening;
  const lostBefore = lost;
  latency.reset();
  received = 0;
  let failedWrites = 0;
  const window = openCpuWindow(job.target.pids);
  const started = performance.now();
  const acks: Promise<void>[] = [];
  for (let k = 0; k < writes && nextWrite < sentAt.length; k++) {
    const wait = started + (k * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const i = nextWrite++;
    sentAt[i] = performance.now();
    acks.push(writers[i % writers.length].write(job.groupId, i).catch(() => void failedWrites++));
  }
  const deadline = performance.now() + job.drainMs;
  while ((received < expected - (lost - lostBefore) * writes || acks.length > 0) && performance.now() < deadline) {
    if (acks.length > 0) await Promise.race([Promise.all(acks.splice(0)), sleep(deadline - performance.now())]);
    else await sleep(5);
  }
  const cpu = window();
  const seconds = Math.max(lastReceivedAt - started, ms) / 1000;
  const p99Ms = latency.percentile(99);
  return {
    writesPerSecond: rate,
    offeredDeliveriesPerSecond: rate * listening,
    writes,
    expected,
    received,
    deliveriesPerSecond: received / seconds,
    p50Ms: latency.percentile(50),
    p99Ms,
    serverCpuMicrosPerDelivery: (cpu.serverSeconds / Math.max(1, received)) * 1e6,
    serverCores: cpu.serverSeconds / cpu.wallSeconds,
    loadCores: cpu.loadSeconds / cpu.wallSeconds,
    failedWrites,
    sustained: received >= expected && failedWrites === 0 && p99Ms <= job.p99LimitMs,
    attempts: 1,
  };
}

/**
 * Writes to a group nobody joined, `concurrency` at a time: the write path reaches the
 * state it has on a server that takes writes all day (V8's optimising tiers) before the
 * low-rate steps measure it. Without it, the reference step's 10 writes/s run through
 * code still in its first tiers, and the writer's cost, not the fan-out, dominates the
 * difference between systems. Every system gets the same writes; nothing is measured.
 */
async function warmWritePath(writes: number, concurrency: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < writes) await writers[next % writers.length].write(`${job.groupId}-warm-up`, next++).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

const steps: FanoutStep[] = [];
if (joined.subscribers.length - joined.failures > 0) {
  await warmWritePath(job.writePathWarmupWrites, 16);
  // Warm-up (JIT, buffers) at the first rate; not reported.
  await runStep(job.rates[0], job.warmupMs);
  for (const [index, rate] of job.rates.entries()) {
    const ms = index === 0 ? job.referenceStepMs : job.stepMs;
    let step = await runStep(rate, ms);
    // One retry: on a shared machine a single stall elsewhere can fail a 50 ms p99. A step
    // this process could not keep up with would fail again: it ends the ladder at once.
    if (!step.sustained && step.loadCores < LOAD_SATURATED_CORES) step = { ...(await runStep(rate, ms)), attempts: 2 };
    steps.push(step);
    if (!step.sustained) break;
  }
}
for (const subscriber of joined.subscribers) subscriber.close();
for (const writer of writers) writer.close();

const result: FanoutResult = {
  transport: job.transport,
  joined: joined.subscribers.length - joined.failures,
  joinFailures: joined.failures,
  joinMs: joined.ms,
  lost,
  steps,
};
await finish(result);
