/**
 * The measuring side of the saturation load: a writer offers Sets to the subscribed
 * group at a fixed rate, whatever the server acknowledges (an open loop: a stalled
 * server gets more writes in flight, as it would from real clients), while a probe on
 * a connection of its own makes a Set and then a Get of a group nobody subscribed to,
 * one pair after another, and the server's CPU and memory are read every second.
 * Before the writes, the probe runs alone for a reference. Run by the suite
 * (bench/suite/scenarios/saturation.ts) next to saturation-subscribers.ts.
 */
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { cpuSeconds } from "../suite/proc-stats.js";
import { LatencyHistogram } from "../suite/stats.js";
import { epochNow } from "./counting-connection.js";
import { finish, readJob, sleep } from "./load-io.js";
import { RssWatch } from "./rss-watch.js";
import type { ProbeFigures, SaturationProbeJob, SaturationProbeResult, SaturationSecond } from "./saturation-jobs.js";
import { ITEMS_PER_GROUP, STREAM_NAME } from "./transports/transport.js";
import { unaryClient } from "./unary-clients.js";

/** RSS readings kept in the results, one a second; the peak comes from every reading. */
const RSS_POINT_MS = 1000;
/** Writes in flight at once during the warm-up. */
const WARMUP_CONCURRENCY = 16;

const job = readJob<SaturationProbeJob>();
const writer = unaryClient("connect-binary-h2", job.url, 1);
const prober = unaryClient("connect-binary-h2", job.url, 1);
const callOptions = { timeoutMs: job.callTimeoutMs };

/** A small chat-like value that carries its index and the writer's clock, for the sampled subscribers' lag. */
const writeValue = (i: number) => fromJson(ValueSchema, { i, t: epochNow(), text: "a benchmark message" });

async function write(groupId: string, i: number): Promise<void> {
  await writer.client.set({ streamName: STREAM_NAME, groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: writeValue(i) }, callOptions);
}

/** Pair latencies of one phase. */
class ProbePhase {
  readonly pair = new LatencyHistogram();
  readonly set = new LatencyHistogram();
  readonly get = new LatencyHistogram();
  errors = 0;
  maxMs = 0;

  figures(): ProbeFigures {
    return {
      pairs: this.pair.count,
      errors: this.errors,
      p50Ms: this.pair.percentile(50),
      p99Ms: this.pair.percentile(99),
      maxMs: this.pair.count === 0 ? NaN : this.maxMs,
      setP99Ms: this.set.percentile(99),
      getP99Ms: this.get.percentile(99),
    };
  }
}

let probeValue = 0;
/** One Set then one Get of the probe's item; returns the pair's ms, or undefined when a call failed. */
async function probePair(phase: ProbePhase): Promise<number | undefined> {
  const request = { streamName: STREAM_NAME, groupId: job.probeGroupId, itemId: "probe" };
  const started = performance.now();
  try {
    await prober.client.set({ ...request, data: fromJson(ValueSchema, { n: probeValue++ }) }, callOptions);
    const setDone = performance.now();
    await prober.client.get(request, callOptions);
    const done = performance.now();
    phase.set.add(setDone - started);
    phase.get.add(done - setDone);
    phase.pair.add(done - started);
    phase.maxMs = Math.max(phase.maxMs, done - started);
    return done - started;
  } catch {
    phase.errors++;
    return undefined;
  }
}

/** Runs pairs back to back, at most one per probeIntervalMs, until `stop()` returns true. */
async function probeUntil(phase: ProbePhase, stop: () => boolean, onPair?: (startedMs: number, ms: number) => void): Promise<void> {
  while (!stop()) {
    const started = performance.now();
    const ms = await probePair(phase);
    if (ms !== undefined) onPair?.(started, ms);
    const wait = started + job.probeIntervalMs - performance.now();
    if (wait > 1) await sleep(wait);
  }
}

// The write and probe paths' first calls run through V8's first tiers: unmeasured.
let warmed = 0;
await Promise.all(
  Array.from({ length: WARMUP_CONCURRENCY }, async () => {
    while (warmed < job.warmupWrites) await write(`${job.groupId}-warm-up`, warmed++).catch(() => undefined);
  }),
);
for (let k = 0; k < job.warmupPairs; k++) await probePair(new ProbePhase());

const watch = new RssWatch(job.serverPid, job.sampleMs, RSS_POINT_MS, job.memoryGuardBytes);
const baseline = new ProbePhase();
const baselineEnd = performance.now() + job.baselineMs;
await probeUntil(baseline, () => performance.now() >= baselineEnd);

// The window: the writer's schedule, the probe and the per-second readings share its clock.
const windowMs = job.seconds * 1000;
const totalSeconds = Math.ceil((windowMs + job.drainMs) / 1000);
const seconds: SaturationSecond[] = Array.from({ length: totalSeconds }, () => ({
  offered: 0,
  acked: 0,
  probePairs: 0,
  probeMaxMs: 0,
  serverCores: NaN,
  rssBytes: NaN,
}));
const windowStart = performance.now();
const windowStartEpochMs = epochNow();
const windowStartRssMs = watch.elapsedMs();
const rssStartBytes = watch.sample(true);
const secondOf = (at: number) => Math.min(totalSeconds - 1, Math.max(0, Math.floor((at - windowStart) / 1000)));
const cpuAtStart = cpuSeconds(job.serverPid) ?? NaN;
const loadAtStart = process.cpuUsage();

// One reading a second, on a timer of its own, so that a slow server cannot delay it.
let lastCpu = cpuAtStart;
let readingsTaken = 0;
const reader = setInterval(() => {
  if (readingsTaken >= totalSeconds) return;
  const cpu = cpuSeconds(job.serverPid) ?? NaN;
  seconds[readingsTaken].serverCores = cpu - lastCpu;
  seconds[readingsTaken].rssBytes = watch.sample();
  lastCpu = cpu;
  readingsTaken++;
}, 1000);

const ack = new LatencyHistogram();
let ackMaxMs = 0;
let offered = 0;
let acked = 0;
let ackedInWindow = 0;
let failed = 0;
const writes: Promise<void>[] = [];
const windowOver = () => performance.now() - windowStart >= windowMs;

const probe = new ProbePhase();
const probing = probeUntil(probe, windowOver, (startedMs, ms) => {
  const second = seconds[secondOf(startedMs)];
  second.probePairs++;
  second.probeMaxMs = Math.max(second.probeMaxMs, ms);
});

const planned = Math.round((job.writesPerSecond * windowMs) / 1000);
for (let k = 0; k < planned; k++) {
  const wait = windowStart + (k * 1000) / job.writesPerSecond - performance.now();
  if (wait > 1) await sleep(wait);
  if (windowOver()) break;
  const sent = performance.now();
  offered++;
  seconds[secondOf(sent)].offered++;
  writes.push(
    write(job.groupId, k).then(
      () => {
        const done = performance.now();
        ack.add(done - sent);
        ackMaxMs = Math.max(ackMaxMs, done - sent);
        acked++;
        if (done - windowStart < windowMs) ackedInWindow++;
        seconds[secondOf(done)].acked++;
      },
      () => void failed++,
    ),
  );
}
while (!windowOver()) await sleep(5);
const windowCpu = (cpuSeconds(job.serverPid) ?? NaN) - cpuAtStart;
const windowWallSeconds = (performance.now() - windowStart) / 1000;
const load = process.cpuUsage(loadAtStart);
const rssEndBytes = watch.sample(true);
await probing;
await Promise.race([Promise.all(writes), sleep(job.drainMs)]);
// Every second of the window gets its reading, even when the drain was over at once.
while (readingsTaken < job.seconds && performance.now() - windowStart < windowMs + 2000) await sleep(20);
clearInterval(reader);
const rss = watch.stop();
// Every second that began, drain included: its writes and acknowledgements count even if its reading never came.
const secondsSeen = Math.min(totalSeconds, Math.ceil((performance.now() - windowStart) / 1000));

const result: SaturationProbeResult = {
  windowStartEpochMs,
  windowMs,
  baseline: baseline.figures(),
  probe: probe.figures(),
  writes: {
    offered,
    ackedInWindow,
    acked,
    failed,
    outstanding: offered - acked - failed,
    ackP50Ms: ack.percentile(50),
    ackP99Ms: ack.percentile(99),
    ackMaxMs: ack.count === 0 ? NaN : ackMaxMs,
  },
  seconds: seconds.slice(0, secondsSeen),
  serverCpuSeconds: windowCpu,
  serverCores: windowCpu / windowWallSeconds,
  rssStartBytes,
  rssEndBytes,
  rss,
  windowStartRssMs,
  loadCores: (load.user + load.system) / 1e6 / windowWallSeconds,
};
writer.close();
prober.close();
await finish(result);
