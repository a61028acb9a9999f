import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";

export type RedisClient = Redis | Cluster;

/**
 * One Lua script of `lua/`, run with EVALSHA and sent in full (EVAL, which also caches
 * it) only when Redis answers NOSCRIPT, e.g. after a restart or on a node that has not
 * seen it yet. NOSCRIPT means the script did not run, so the fallback never runs a
 * write twice.
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
    readonly keyCount: number,
    /** Whether more keys may follow the `keyCount` fixed ones (commit.lua's outboxes). */
    readonly moreKeys = false,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(client: RedisClient, keys: string[], args: string[]): Promise<unknown> {
    if (keys.length !== this.keyCount && !(this.moreKeys && keys.length > this.keyCount)) {
      throw new Error(`${this.name}.lua takes ${this.keyCount} keys, got ${keys.length}`);
    }
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Reads `lua/<name>.lua` next to this file, whatever the working directory. */
function load(name: string, keyCount: number, moreKeys = false): LuaScript {
  const source = readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");
  return new LuaScript(name, source, keyCount, moreKeys);
}

/** Every atomic multi-key step of the Redis adapter; each file's header documents KEYS and ARGV. */
export const scripts = {
  commit: load("commit", 7, true),
  outboxLease: load("outbox-lease", 1),
  publishEvent: load("publish-event", 1),
  snapshotItem: load("snapshot-item", 4),
  readItems: load("read-items", 4),
  changesSince: load("changes-since", 2),
  registrationWrite: load("registration-write", 1),
  fleetAnnounce: load("fleet-announce", 2),
  fleetHosted: load("fleet-hosted", 2),
};
