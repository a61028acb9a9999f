import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend, RecordingLog } from "../src/index.js";
import { op } from "./conformance/proto-values.js";
import { redisClient, startRedisServer, uniquePrefix, type RedisServer } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { GroupView, plain, ViewReader, waitFor } from "./support/subscribe-view.js";

/*
 * Redis that stops answering without going away (`DEBUG SLEEP`: a long command, a swap
 * storm, a stalled VM) while writers are busy, on a redis-server of this test's own.
 * Writes fail cleanly or succeed, none applied twice, nothing acknowledged lost, and a
 * subscriber sees every change once. Redis killed (SIGKILL) mid-write is in
 * redis-faults.test.ts.
 */

const PAUSE_SECONDS = 3;
let redis: RedisServer;
let server: RunningServer;

beforeAll(async () => {
  redis = await startRedisServer({ durable: true, args: ["--enable-debug-command", "local"] });
  const backend = await connectRedisBackend({ url: redis.url, keyPrefix: uniquePrefix("pause"), commandTimeoutMs: 1000 });
  server = await startServer({ backend, log: new RecordingLog("warn") });
});

afterAll(async () => {
  await server?.stop();
  await redis?.stop();
});

describe("Redis paused by DEBUG SLEEP in the middle of writes", () => {
  it("fails writes with UNAVAILABLE meanwhile, applies none twice, loses none acknowledged, and a subscriber sees every change once", async () => {
    const client = server.client();
    const target = { streamName: "paused", groupId: "g" };
    const view = new GroupView(undefined, true);
    const reader = new ViewReader(client, target, view);
    await waitFor(() => view.offset !== undefined, "the first snapshot");

    const acknowledged: number[] = [];
    const failures: string[] = [];
    let paused = false;
    let ackedAfterPause = 0;
    const writer = async () => {
      while (ackedAfterPause < 100) {
        try {
          const result = await client.update({ ...target, itemId: "counter", ops: [op.increment(["n"], 1)] });
          acknowledged.push(Number(result.revision));
          if (paused) ackedAfterPause++;
        } catch (error) {
          const failure = ConnectError.from(error);
          failures.push(`${Code[failure.code]}: ${failure.message}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const writers = Promise.all([writer(), writer(), writer(), writer()]);
    await waitFor(() => acknowledged.length >= 50, "50 writes before the pause");

    const admin = redisClient(redis.url);
    try {
      const before = failures.length;
      const pause = admin.call("DEBUG", "SLEEP", String(PAUSE_SECONDS));
      paused = true;
      await pause;
      expect(failures.length, "no write failed while Redis slept").toBeGreaterThan(before);
    } finally {
      admin.disconnect();
    }
    await writers;

    console.log(`faults-redis-pause: ${acknowledged.length} acknowledged, ${failures.length} failed during a ${PAUSE_SECONDS} s pause (${failures[0]})`);
    expect(new Set(failures.map((text) => text.split(":")[0]))).toEqual(new Set(["Unavailable"]));
    // Revisions are unique per acknowledged write; the counter holds every one of them.
    expect(new Set(acknowledged).size).toBe(acknowledged.length);
    const { item } = await client.get({ ...target, itemId: "counter" });
    const finalRevision = Number(item!.revision);
    expect(plain(item!.data)).toEqual({ n: finalRevision });
    expect(finalRevision).toBeGreaterThanOrEqual(acknowledged.length);
    expect(finalRevision).toBeLessThanOrEqual(acknowledged.length + failures.length);

    await waitFor(() => view.offset === finalRevision, "the subscriber to catch up");
    await reader.leave();
    expect(reader.error).toBeUndefined();
    expect(view.problems).toEqual([]);
    expect(view.changes.map((change) => Number(change.revision))).toEqual(Array.from({ length: finalRevision }, (_, i) => i + 1));
  });
});
