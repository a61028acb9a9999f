import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend } from "../src/index.js";
import { silentLog } from "../src/core/log.js";
import { startRedisServer, uniquePrefix, type RedisServer } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, waitFor } from "./support/subscribe-view.js";
import { scrape, valueOf } from "./support/prometheus-text.js";

/*
 * The Redis adapter's metrics, against a redis-server of our own: it is killed and
 * restarted, which the shared one must never be.
 */

let redis: RedisServer;
let running: RunningServer;
const metrics = () => scrape(`${running.url}/metrics`);

beforeAll(async () => {
  redis = await startRedisServer();
  const backend = await connectRedisBackend({ url: redis.url, keyPrefix: uniquePrefix("metrics"), commandTimeoutMs: 2000 });
  running = await startServer({ backend, log: silentLog });
});

afterAll(async () => {
  await running?.stop();
  await redis?.stop();
});

describe("metrics of the Redis adapter", () => {
  it("time each commit script, one write per commit", async () => {
    const client = running.client();
    for (let i = 0; i < 4; i++) await client.set({ streamName: "r", groupId: "g", itemId: `i${i}`, data: json(i) });
    const samples = await metrics();
    expect(valueOf(samples, "iii_stream_commit_duration_seconds_count", { adapter: "redis" })).toBe(4);
    expect(valueOf(samples, "iii_stream_commit_batch_size_sum", { adapter: "redis" })).toBe(4);
  });

  it("show both connections up, down while Redis is gone, and up again once it is back", async () => {
    const connected = async (connection: string) => valueOf(await metrics(), "iii_stream_redis_connected", { connection });
    expect([await connected("commands"), await connected("subscriber")]).toEqual([1, 1]);
    expect(valueOf(await metrics(), "iii_stream_store_ready")).toBe(1);

    await redis.kill();
    await waitFor(async () => (await connected("commands")) === 0 && (await connected("subscriber")) === 0, "both connections to be reported down");
    expect(valueOf(await metrics(), "iii_stream_store_ready")).toBe(0);

    await redis.restart();
    await waitFor(async () => (await connected("commands")) === 1 && (await connected("subscriber")) === 1, "both connections to be reported up", 20_000);
    expect(valueOf(await metrics(), "iii_stream_store_ready")).toBe(1);
  });
});
