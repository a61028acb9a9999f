import { Redis } from "ioredis";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Redis's version at `url`, or undefined when nothing answers there. */
export async function redisVersionAt(url: string): Promise<string | undefined> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown";
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/**
 * `used_memory` of the whole Redis at `url`, in bytes (NaN when unavailable). Other users
 * of the same Redis move it too, so only a large difference is a figure of ours.
 */
export async function redisUsedMemoryAt(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? NaN);
  } catch {
    return NaN;
  } finally {
    redis.disconnect();
  }
}

/**
 * Deletes every key under `prefix` (a scenario's own, unique one), a bounded SCAN page at
 * a time, with UNLINK so that Redis frees large stores in the background; returns how many.
 */
export async function deleteKeysUnder(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on("error", () => undefined);
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = "0";
    for (let page = 0; page < 100_000; page++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 10_000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } catch {
    // Redis went away: nothing to clean; the prefix is unique to the run.
  } finally {
    redis.disconnect();
  }
  return deleted;
}
