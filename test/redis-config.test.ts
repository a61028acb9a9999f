import { createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { value } from "./conformance/proto-values.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { transportFor } from "./support/server.js";
import { chooseAdapter, storeDetail } from "../src/cli/config-to-options.js";
import { ConfigError, validateConfig } from "../src/cli/config.js";

describe("choosing the redis adapter", () => {
  it("defaults to the Redis of this machine and the default prefix", () => {
    expect(chooseAdapter("redis", undefined)).toEqual({ name: "redis", url: "redis://127.0.0.1:6379" });
  });

  it("reads redis_url and key_prefix from the config; --redis-url (or its variable) overrides the URL", () => {
    const config = validateConfig(
      { adapter: { name: "redis", config: { redis_url: "redis://127.0.0.1:7000", key_prefix: "app:" } } },
      "test",
    );
    expect(chooseAdapter(undefined, config.adapter)).toEqual({ name: "redis", url: "redis://127.0.0.1:7000", keyPrefix: "app:" });
    expect(chooseAdapter(undefined, config.adapter, {}, { url: "redis://127.0.0.1:6380" })).toEqual({
      name: "redis",
      url: "redis://127.0.0.1:6380",
      keyPrefix: "app:",
    });
    expect(chooseAdapter(undefined, config.adapter, {}, { keyPrefix: "other:" })).toEqual({
      name: "redis",
      url: "redis://127.0.0.1:7000",
      keyPrefix: "other:",
    });
  });

  it("takes the key prefix from --redis-prefix or III_STREAM_REDIS_PREFIX, checked like the config key", () => {
    expect(chooseAdapter("redis", undefined, {}, { keyPrefix: "shop-a:" })).toEqual({ name: "redis", url: "redis://127.0.0.1:6379", keyPrefix: "shop-a:" });
    expect(() => chooseAdapter("redis", undefined, {}, { keyPrefix: "app{1}:" })).toThrow(/must be non-empty and without/);
    expect(() => chooseAdapter("redis", undefined, {}, { keyPrefix: "" })).toThrow(ConfigError);
    expect(() => chooseAdapter("memory", undefined, {}, { keyPrefix: "app:" })).toThrow(/applies to the redis adapter/);
  });

  it("says at start which Redis (password masked) and which prefix it uses", () => {
    expect(storeDetail({ name: "redis", url: "redis://user:s3cret@cache.internal:6380/2", keyPrefix: "shop-a:" })).toBe(
      ", redis: redis://user:****@cache.internal:6380/2, prefix: shop-a:",
    );
    expect(storeDetail({ name: "redis", url: "redis://127.0.0.1:6379" })).toBe(", redis: redis://127.0.0.1:6379, prefix: iii-stream:");
  });

  it("refuses a Redis URL for another adapter, and file flags for redis", () => {
    expect(() => chooseAdapter("memory", undefined, {}, { url: "redis://127.0.0.1:6379" })).toThrow(ConfigError);
    expect(() => chooseAdapter("redis", undefined, { dataDir: "data" })).toThrow(ConfigError);
  });

  it("validates the config keys", () => {
    const invalid = [
      { name: "redis", config: { redis_url: "http://127.0.0.1:6379" } },
      { name: "redis", config: { key_prefix: "app{1}:" } },
      { name: "redis", config: { url: "redis://127.0.0.1:6379" } },
    ];
    for (const adapter of invalid) expect(() => validateConfig({ adapter }, "test")).toThrow(ConfigError);
  });
});

describe("deployments on one Redis", () => {
  const first = uniquePrefix("deployment-a");
  const second = uniquePrefix("deployment-b");
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const server of servers) {
      server.child.kill("SIGTERM");
      await server.exited;
    }
    await deleteKeys(first);
    await deleteKeys(second);
  });

  it("share data exactly when they share the prefix given by --redis-prefix, and say which at start", async () => {
    const start = async (prefix: string) => {
      const server = await spawnServer(["--port", "0", "--adapter", "redis", "--redis-url", REDIS_URL, "--redis-prefix", prefix]);
      servers.push(server);
      return server;
    };
    const [a1, a2, b] = [await start(first), await start(first), await start(second)];
    expect(a1.output()).toContain(`prefix: ${first})`);
    const client = (server: ServerProcess) => createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
    const key = { streamName: "s", groupId: "g", itemId: "i" };
    await client(a1).set({ ...key, data: value("from a") });
    expect((await client(a2).get(key)).item?.itemId).toBe("i");
    expect((await client(b).get(key)).item).toBeUndefined();
  });
});
