import { describe, expect, it } from "vitest";
import { chooseAdapter } from "../src/cli/config-to-options.js";
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
    expect(chooseAdapter(undefined, config.adapter, {}, "redis://127.0.0.1:6380")).toEqual({
      name: "redis",
      url: "redis://127.0.0.1:6380",
      keyPrefix: "app:",
    });
  });

  it("refuses a Redis URL for another adapter, and file flags for redis", () => {
    expect(() => chooseAdapter("memory", undefined, {}, "redis://127.0.0.1:6379")).toThrow(ConfigError);
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
