/**
 * Snapshot-join load: fills one group with `items` values, then `subscribers`
 * subscribers (Subscribe, Connect binary over HTTP/2, one connection each) join it at
 * the same moment and read Snapshot messages until one has `more` unset. Reports the
 * server's RSS throughout and when each subscriber had its whole snapshot. Run by the
 * suite (bench/suite/scenarios/snapshot-join.ts).
 */
import http2 from "node:http2";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { openCpuWindow } from "./cpu-window.js";
import { finish, readJob, sleep } from "./load-io.js";
import type { SnapshotJoinJob, SnapshotJoinResult, SnapshotJoins, SnapshotJoinSubscriber, Spread } from "./memory-jobs.js";
import { paddedValue } from "./padded-value.js";
import { RssWatch, settledRss } from "./rss-watch.js";
import { rssBytes } from "../suite/proc-stats.js";
import { median } from "../suite/stats.js";
import { subscribeEnvelope } from "./stalling-http2.js";
import { SubscribeFrameReader } from "./subscribe-frames.js";
import { STREAM_NAME } from "./transports/transport.js";
import { unaryClient } from "./unary-clients.js";
import { waitForQuiet } from "../suite/processes.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";
/** After the join, before the last RSS reading. */
const SETTLE_MS = 2000;
const REDIS_SAMPLE_MS = 250;
/** A stream that closed early is reported this long after, with the connection's own events that explain it. */
const CAUSE_WAIT_MS = 100;

const job = readJob<SnapshotJoinJob>();
const [url] = job.target.urls;
const [pid] = job.target.pids;
const sessions: http2.ClientHttp2Session[] = [];

/** Sets `items` values, `prefillConcurrency` at a time, on one HTTP/2 connection. */
async function prefill(): Promise<SnapshotJoinResult["prefill"]> {
  const writer = unaryClient("connect-binary-h2", url, job.prefillConcurrency);
  const started = performance.now();
  let next = 0;
  let errors = 0;
  const lane = async () => {
    while (next < job.items) {
      const i = next++;
      // Zero-padded ids keep insertion order and id order the same, which makes a listing easy to check by eye.
      const itemId = `item-${String(i).padStart(7, "0")}`;
      await writer.client
        .set({ streamName: STREAM_NAME, groupId: job.groupId, itemId, data: fromJson(ValueSchema, paddedValue(i, job.itemBytes)) })
        .catch(() => void errors++);
    }
  };
  await Promise.all(Array.from({ length: job.prefillConcurrency }, lane));
  const ms = performance.now() - started;
  writer.close();
  return { items: job.items, ms, errors };
}

/** One subscriber: a connection of its own, the Subscribe call, and its snapshot's chunks counted as they come. */
function join(started: number): Promise<SnapshotJoinSubscriber> {
  const figures: SnapshotJoinSubscriber = { firstChunkMs: NaN, completeMs: NaN, chunks: 0, items: 0, bytes: 0, offset: NaN, offsetMismatches: 0, error: undefined, failedMs: NaN };
  const session = http2.connect(url);
  return new Promise<SnapshotJoinSubscriber>((resolve) => {
    const done = (error?: string, atMs = performance.now() - started) => {
      if (error !== undefined && figures.error === undefined && Number.isNaN(figures.completeMs)) {
        figures.error = error;
        figures.failedMs = atMs;
      }
      clearTimeout(timer);
      resolve(figures);
    };
    const timer = setTimeout(() => done(`no complete snapshot within ${job.joinTimeoutMs} ms`), job.joinTimeoutMs - (performance.now() - started));
    // Why a stream closed early is spread over events that come in no fixed order: collected, then reported together.
    const why: string[] = [];
    let reporting = false;
    const failed = (reason: string) => {
      why.push(reason);
      if (reporting) return;
      reporting = true;
      const atMs = performance.now() - started;
      setTimeout(() => done(`${why.join("; ")}${rssBytes(pid) === undefined ? "; the server process was gone" : ""}`, atMs), CAUSE_WAIT_MS);
    };
    session.on("goaway", (code: number) => failed(`GOAWAY ${code}`));
    session.on("error", (error: NodeJS.ErrnoException) => failed(`connection error ${error.code ?? error.message}`));
    const reader = new SubscribeFrameReader(true, {
      message: (kind, bytes, snapshot) => {
        if (snapshot === undefined || !Number.isNaN(figures.completeMs)) return;
        const now = performance.now() - started;
        if (figures.chunks === 0) {
          figures.firstChunkMs = now;
          figures.offset = snapshot.offset;
        } else if (snapshot.offset !== figures.offset) {
          figures.offsetMismatches++;
        }
        figures.chunks++;
        figures.items += snapshot.items;
        figures.bytes += bytes;
        if (!snapshot.more) {
          figures.completeMs = now;
          done();
        }
      },
      end: (text) => done(`the stream ended before the snapshot did: ${text.slice(0, 200)}`),
    });
    const stream = session.request({
      ":method": "POST",
      ":path": SUBSCRIBE_PATH,
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    stream.on("error", () => undefined);
    stream.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        done((error as Error).message);
      }
    });
    stream.on("close", () => failed(`the stream closed with code ${stream.rstCode ?? 0} before the snapshot ended`));
    stream.end(subscribeEnvelope(job.groupId));
    sessions.push(session);
  });
}

function spread(values: number[]): Spread {
  const known = values.filter(Number.isFinite);
  return known.length === 0 ? { min: NaN, median: NaN, max: NaN } : { min: Math.min(...known), median: median(known), max: Math.max(...known) };
}

function summarize(subscribers: SnapshotJoinSubscriber[]): SnapshotJoins {
  const failures = new Map<string, SnapshotJoins["failures"][number]>();
  for (const { error, failedMs } of subscribers) {
    if (error === undefined) continue;
    const failure = failures.get(error) ?? { error, subscribers: 0, firstMs: failedMs, lastMs: failedMs };
    failure.subscribers++;
    failure.firstMs = Math.min(failure.firstMs, failedMs);
    failure.lastMs = Math.max(failure.lastMs, failedMs);
    failures.set(error, failure);
  }
  return {
    subscribers: subscribers.length,
    complete: subscribers.filter((s) => s.error === undefined && s.items === job.items && s.offsetMismatches === 0 && Number.isFinite(s.completeMs)).length,
    firstChunkMs: spread(subscribers.map((s) => s.firstChunkMs)),
    completeMs: spread(subscribers.map((s) => s.completeMs)),
    chunks: spread(subscribers.map((s) => s.chunks)),
    items: spread(subscribers.map((s) => s.items)),
    bytes: spread(subscribers.map((s) => s.bytes)),
    offsetMismatches: subscribers.reduce((sum, s) => sum + s.offsetMismatches, 0),
    failures: [...failures.values()],
  };
}

/** `used_memory` of the adapter's Redis, sampled while the subscribers join; Redis holds each reply until the server reads it. */
class RedisMemory {
  private readonly redis: Redis;
  private timer: NodeJS.Timeout | undefined;
  peak = 0;

  constructor(redisUrl: string) {
    this.redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    this.redis.on("error", () => undefined);
  }

  async read(): Promise<number> {
    if (this.redis.status === "wait") await this.redis.connect();
    const used = Number(/used_memory:(\d+)/.exec(await this.redis.info("memory"))?.[1] ?? NaN);
    if (used > this.peak) this.peak = used;
    return used;
  }

  start(): void {
    let reading = false;
    this.timer = setInterval(() => {
      if (reading) return;
      reading = true;
      this.read()
        .catch(() => undefined)
        .finally(() => (reading = false));
    }, REDIS_SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.redis.disconnect();
  }
}

const filled = await prefill();
await waitForQuiet([pid], 10_000);
const redis = job.redisUrl === undefined ? undefined : new RedisMemory(job.redisUrl);
const redisBeforeBytes = await redis?.read().catch(() => undefined);
const rssBeforeBytes = await settledRss(pid);

const watch = new RssWatch(pid, job.sampleMs, job.pointMs, job.memoryGuardBytes);
redis?.start();
const cpu = openCpuWindow([pid]);
const started = performance.now();
const subscribers = await Promise.all(Array.from({ length: job.subscribers }, () => join(started)));
const cpuFigures = cpu();
const done = subscribers.map((s) => s.completeMs);
redis?.stop();
const rssJoinedBytes = await settledRss(pid);
for (const session of sessions) session.destroy();
await sleep(SETTLE_MS);
const rssAfterBytes = await settledRss(pid);

const result: SnapshotJoinResult = {
  prefill: filled,
  rssBeforeBytes,
  rss: watch.stop(),
  rssJoinedBytes,
  rssAfterBytes,
  allCompleteMs: done.some((ms) => Number.isNaN(ms)) ? NaN : Math.max(...done),
  joins: summarize(subscribers),
  serverCpuSeconds: cpuFigures.serverSeconds,
  loadCores: cpuFigures.loadSeconds / cpuFigures.wallSeconds,
  redisPeakBytes: redis?.peak,
  redisBeforeBytes,
};
await finish(result);
