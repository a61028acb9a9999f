import { Redis } from "ioredis";

/** Where the `scale` scenario's Redis rows run: REDIS_URL, or a local Redis if one answers. */
export const SCALE_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

function connection(): Redis {
  const redis = new Redis(SCALE_REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on("error", () => undefined);
  return redis;
}

/** The server's version, or undefined when nothing answers. */
export async function redisVersion(): Promise<string | undefined> {
  const redis = connection();
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
 * `used_memory` of the whole Redis, in bytes (NaN when unavailable). Other users of the
 * same Redis move it too, so only a large difference is a figure of ours.
 */
export async function redisUsedMemory(): Promise<number> {
  const redis = connection();
  try {
    await redis.connect();
    return Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? NaN);
  } catch {
    return NaN;
  } finally {
    redis.disconnect();
  }
}

/** Removes every key under the prefix (SCAN in bounded pages, UNLINK so Redis frees them in the background). */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = connection();
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = "0";
    // Bounded: 100,000 pages of 10,000 cover a keyspace far larger than any run writes.
    for (let page = 0; page < 100_000; page++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 10_000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } catch {
    // Nothing to clean when Redis went away; the keys carry a unique prefix.
  } finally {
    redis.disconnect();
  }
  return deleted;
}
