/**
 * Slow-consumer load: `subscribers` subscribers join one group and stop reading, one
 * more keeps reading, and a writer sets 16 KiB values at a steady rate. The server's
 * RSS is sampled throughout. Afterwards every stalled subscriber reads again and
 * reports how it was ended. Run by the suite (bench/suite/scenarios/slow-consumers.ts).
 */
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { LatencyHistogram, median } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import { finish, inBatches, readJob, sleep } from "./load-io.js";
import type { EndingSummary, SlowConsumersJob, SlowConsumersResult, StallOutcome } from "./memory-jobs.js";
import { paddedValue } from "./padded-value.js";
import { RssWatch, settledRss } from "./rss-watch.js";
import type { StallingSubscriber } from "./stalling-subscriber.js";
import { openStalling } from "./stalling-transports.js";
import { ITEMS_PER_GROUP, STREAM_NAME } from "./transports/transport.js";
import { unaryClient } from "./unary-clients.js";

/** Joins in flight at once: thousands of simultaneous connects would overflow the accept backlog. */
const JOIN_PARALLELISM = 100;
/** Once the last write was sent, how long its acknowledgements may take. */
const ACK_WAIT_MS = 10_000;
/** After the subscribers were closed, before the last RSS reading: the server frees what they held. */
const RELEASE_MS = 2000;

/** The outcomes grouped by how the stream ended. */
function summarize(outcomes: StallOutcome[]): EndingSummary[] {
  const groups = new Map<string, StallOutcome[]>();
  for (const outcome of outcomes) groups.set(outcome.ending, [...(groups.get(outcome.ending) ?? []), outcome]);
  return [...groups].map(([ending, group]) => {
    const at = group.map((o) => o.atMs).filter(Number.isFinite);
    const messages = group.map((o) => o.messagesAfterResume);
    return {
      ending,
      subscribers: group.length,
      namesOffset: group.filter((o) => o.namesOffset).length,
      whilePaused: group.filter((o) => o.whilePaused).length,
      atMs: at.length === 0 ? { min: NaN, median: NaN, max: NaN } : { min: Math.min(...at), median: median(at), max: Math.max(...at) },
      messagesAfterResume: { median: median(messages), max: Math.max(...messages) },
      bytesAfterResumeMedian: median(group.map((o) => o.bytesAfterResume)),
      detail: group[0].detail,
    };
  });
}

const job = readJob<SlowConsumersJob>();
const [url] = job.target.urls;
const [pid] = job.target.pids;
const clock = { origin: performance.now() };

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const rssFreshBytes = await settledRss(pid);
const watch = new RssWatch(pid, job.sampleMs, job.pointMs, job.memoryGuardBytes);

// The control: a subscriber that reads throughout, which also tells the size of a change on the wire.
let readerMessages = 0;
let changeFrameBytes = NaN;
const reader = openStalling(job.transport, url, job.groupId, {
  stall: false,
  clock,
  onMessage: (bytes) => {
    readerMessages++;
    if (Number.isNaN(changeFrameBytes)) changeFrameBytes = bytes;
  },
});
await withTimeout(reader.joined, job.joinTimeoutMs, "the reading subscriber's join");

const joinStarted = performance.now();
const subscribers: StallingSubscriber[] = [];
const joins = await inBatches(job.subscribers, JOIN_PARALLELISM, async () => {
  const subscriber = openStalling(job.transport, url, job.groupId, { stall: true, clock });
  subscribers.push(subscriber);
  try {
    await withTimeout(subscriber.joined, job.joinTimeoutMs, "a join");
    return subscriber;
  } catch (error) {
    subscriber.close();
    throw error;
  }
});
const joinMs = performance.now() - joinStarted;
const stalled = joins.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
await sleep(1000);
const rssStartBytes = await settledRss(pid);

const writer = unaryClient("connect-binary-h2", url, 1);
const ack = new LatencyHistogram();
let failedWrites = 0;
const writes = Math.round(job.seconds * job.writesPerSecond);
const ackMaxBySecond = new Array<number>(Math.ceil(job.seconds)).fill(0);
const cpu = openCpuWindow([pid]);
clock.origin = performance.now();
const writesStartMs = watch.elapsedMs();
const acks: Promise<void>[] = [];
for (let i = 0; i < writes && !watch.series.guardTripped; i++) {
  // Paced by the clock: a server that slows down does not lower the offered rate.
  const wait = clock.origin + (i * 1000) / job.writesPerSecond - performance.now();
  if (wait > 1) await sleep(wait);
  const sentAt = performance.now();
  acks.push(
    writer.client
      .set({ streamName: STREAM_NAME, groupId: job.groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: fromJson(ValueSchema, paddedValue(i, job.changeBytes)) })
      .then(
        () => {
          const ms = performance.now() - sentAt;
          ack.add(ms);
          const second = Math.floor((sentAt - clock.origin) / 1000);
          ackMaxBySecond[second] = Math.max(ackMaxBySecond[second] ?? 0, Math.round(ms));
        },
        () => void failedWrites++,
      ),
  );
}
await Promise.race([Promise.all(acks), sleep(ACK_WAIT_MS)]);
const cpuFigures = cpu();
const rssEndBytes = await settledRss(pid);

const outcomes = await Promise.all(stalled.map((subscriber) => subscriber.resume(job.resumeTimeoutMs)));
for (const subscriber of subscribers) subscriber.close();
const readerEnding = reader.ending;
reader.close();
writer.close();
await sleep(RELEASE_MS);
const rssAfterBytes = await settledRss(pid);
const rss = watch.stop();

const result: SlowConsumersResult = {
  transport: job.transport,
  joined: stalled.length,
  joinFailures: job.subscribers - stalled.length,
  joinMs,
  rssFreshBytes,
  rssStartBytes,
  rssEndBytes,
  rssAfterBytes,
  rss,
  writesStartMs,
  writes: acks.length,
  failedWrites,
  writeAckP50Ms: ack.percentile(50),
  writeAckP99Ms: ack.percentile(99),
  writeAckMaxMsBySecond: ackMaxBySecond,
  changeFrameBytes,
  reader: { messages: readerMessages, ended: readerEnding },
  serverCpuSeconds: cpuFigures.serverSeconds,
  loadCores: cpuFigures.loadSeconds / cpuFigures.wallSeconds,
  endings: summarize(outcomes),
};
await finish(result);
