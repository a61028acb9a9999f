import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ItemWrite } from "../src/core/item-store.js";
import { ErrorCode, type GroupMessage, type JsonValue, RedisItemStore, StreamError } from "../src/index.js";
import { KeyLayout } from "../src/adapters/redis/key-layout.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deleteKeys, REDIS_URL, redisClient, uniquePrefix } from "./support/redis.js";

const keyPrefix = uniquePrefix("adapter");
const keys = new KeyLayout(keyPrefix);
const streamName = uniqueNames("redis-adapter");
const redis = redisClient();
let adapter: RedisItemStore;
let small: RedisItemStore;

beforeAll(async () => {
  adapter = await RedisItemStore.connect({ url: REDIS_URL, keyPrefix });
  small = await RedisItemStore.connect({ url: REDIS_URL, keyPrefix, historyLimit: 3 });
});

afterAll(async () => {
  await Promise.all([adapter?.close(), small?.close()]);
  await deleteKeys(keyPrefix);
  await redis.quit();
});

function write(stream: string, group: string, itemId: string, value: JsonValue | undefined, expectedRevision: number): ItemWrite {
  return { streamName: stream, groupId: group, itemId, value, expectedRevision, timestampMs: Date.now() };
}

async function commit(target: RedisItemStore, w: ItemWrite) {
  const result = await target.commit(w);
  if (!result.ok) throw new Error(`unexpected conflict at revision ${result.currentRevision}`);
  return result.change;
}

/** Collects what a watcher receives; `until` waits for a count, bounded in time. */
function collector() {
  const messages: GroupMessage[] = [];
  return {
    messages,
    listener: (message: GroupMessage) => void messages.push(message),
    async until(count: number): Promise<GroupMessage[]> {
      const deadline = Date.now() + 5000;
      while (messages.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      return messages;
    },
  };
}

async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + 5000;
  let value = await read();
  while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await read();
  }
  expect(value).toEqual(expected);
}

describe("values are stored as the JSON text JavaScript wrote", () => {
  const values: JsonValue[] = [
    [],
    {},
    { empty: [], nested: { list: [[], {}, [[]]] } },
    [{}, []],
    9007199254740991,
    -9007199254740991,
    { big: 9007199254740991, small: -9007199254740991, fraction: 0.1, huge: 1e300, tiny: 5e-324 },
    "line\nbreak\r\ttab \u2028 \"quoted\" \\ 🎉 é",
    { "": { "\n": "key with a newline", "a.b": [] } },
    null,
    true,
    "",
  ];

  it("round-trip exactly through commit, get, snapshot, history and the channel", async () => {
    const s = streamName("values");
    const watched = collector();
    const unwatch = await adapter.watch(s, "g", watched.listener);
    try {
      for (const [i, value] of values.entries()) {
        const change = await commit(adapter, write(s, "g", `item-${i}`, value, 0));
        expect(change.data).toStrictEqual(value);
      }
      const overwritten = await commit(adapter, write(s, "g", "item-0", { after: [] }, 1));
      expect(overwritten.oldValue).toStrictEqual([]);
      const deleted = await commit(adapter, write(s, "g", "item-1", undefined, 1));
      expect([deleted.type, deleted.data, deleted.oldValue]).toStrictEqual(["delete", {}, {}]);

      for (const [i, value] of values.entries()) {
        if (i > 1) expect((await adapter.getItem(s, "g", `item-${i}`))?.data).toStrictEqual(value);
      }
      const snapshot = await adapter.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 100, maxBytes: Infinity });
      expect(snapshot.items.map((item) => item.data)).toStrictEqual([{ after: [] }, ...values.slice(2)]);

      const history = await adapter.changesSince(s, "g", 0);
      expect(history?.map((change) => change.data)).toStrictEqual([...values, { after: [] }, {}]);
      expect(history?.map((change) => change.oldValue)).toStrictEqual([...values.map(() => undefined), [], {}]);

      const live = await watched.until(values.length + 2);
      expect(live.map((message) => message.data)).toStrictEqual([...values, { after: [] }, {}]);
      expect(live.map((message) => message.offset)).toEqual(Array.from({ length: values.length + 2 }, (_, i) => i + 1));
    } finally {
      unwatch();
    }
  });

  it("events carry their data, type and item id exactly", async () => {
    const s = streamName("events");
    const watched = collector();
    const unwatch = await adapter.watch(s, "g", watched.listener);
    try {
      await commit(adapter, write(s, "g", "i", 1, 0));
      const event = await adapter.publishEvent({
        streamName: s,
        groupId: "g",
        type: "type\nwith {braces}",
        itemId: "item\n:}",
        data: { list: [], n: 9007199254740991 },
        timestampMs: 1234,
      });
      expect(event.offset).toBe(1);
      await commit(adapter, write(s, "g", "i", 2, 1));
      const received = await watched.until(3);
      expect(received.map((m) => [m.kind, m.offset])).toEqual([
        ["change", 1],
        ["event", 1],
        ["change", 2],
      ]);
      expect(received[1]).toStrictEqual({ ...event, kind: "event" });
    } finally {
      unwatch();
    }
  });
});

describe("key layout", () => {
  it("gives every key and the channel of one group one hash tag, distinct per (stream, group)", () => {
    const tagOf = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    const pairs: Array<[string, string]> = [
      ["a.b", "c"],
      ["a", "b.c"],
      ["{x}", "}"],
      ["s:1", ":g"],
      ["s", "g\n"],
    ];
    const tags = pairs.map(([stream, group]) => {
      const group_ = keys.group(stream, group);
      const all = [group_.items, group_.order, group_.offset, group_.history, group_.channel].map(tagOf);
      expect(new Set(all).size).toBe(1);
      expect(group_.items.startsWith(keyPrefix)).toBe(true);
      return all[0];
    });
    expect(new Set(tags).size).toBe(pairs.length);
  });

  it("refuses a prefix with a brace, which would put every group in one slot", () => {
    expect(() => new KeyLayout("app{1}:")).toThrow(/must not contain/);
  });

  it("an emptied group keeps only its offset counter; the offset goes on from there", async () => {
    const s = streamName("emptied");
    await commit(adapter, write(s, "g", "a", [], 0));
    await commit(adapter, write(s, "g", "b", {}, 0));
    await commit(adapter, write(s, "g", "a", undefined, 1));
    await commit(adapter, write(s, "g", "b", undefined, 1));
    const group = keys.group(s, "g");
    expect(await redis.exists(group.items, group.order, group.history)).toBe(0);
    expect(await redis.get(group.offset)).toBe("4");
    expect(await adapter.changesSince(s, "g", 4)).toEqual([]);
    expect(await adapter.changesSince(s, "g", 3)).toBeUndefined();
    const again = await commit(adapter, write(s, "g", "a", 1, 0));
    expect([again.offset, again.revision, again.type]).toEqual([5, 1, "create"]);
    expect((await adapter.changesSince(s, "g", 4))?.map((c) => c.offset)).toEqual([5]);
  });

  it("keeps the last historyLimit changes, and says when older ones are gone", async () => {
    const s = streamName("history");
    for (let i = 1; i <= 5; i++) await commit(small, write(s, "g", "i", i, i - 1));
    expect(await redis.llen(keys.group(s, "g").history)).toBe(3);
    expect((await small.changesSince(s, "g", 2))?.map((c) => [c.offset, c.data])).toEqual([
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    expect(await small.changesSince(s, "g", 1)).toBeUndefined();
    expect(await small.changesSince(s, "g", 6)).toBeUndefined();
    expect(await small.changesSince(s, "never-written", 0)).toEqual([]);
  });
});

describe("the group index", () => {
  it("drops entries of groups found empty, and of streams left without groups", async () => {
    const s = streamName("stale");
    await commit(adapter, write(s, "g", "i", 1, 0));
    // What a writer that crashed between adding the index entries and committing leaves.
    await redis.zadd(keys.streamGroups(s), 0, "ghost");
    const ghostStream = streamName("ghost-stream");
    await redis.zadd(keys.streamGroups(ghostStream), 0, "ghost");
    await redis.zadd(keys.streams, 0, ghostStream);

    expect(await adapter.listGroups(s, { after: undefined, limit: 10 })).toEqual(["g"]);
    expect(await redis.zrange(keys.streamGroups(s), "0", "-1")).toEqual(["g"]);
    const all = await adapter.listStreams({ after: undefined, limit: 1_000_000 });
    expect(all).toContain(s);
    expect(all).not.toContain(ghostStream);
    expect(await redis.zscore(keys.streams, ghostStream)).toBeNull();
    expect(await redis.exists(keys.streamGroups(ghostStream))).toBe(0);
  });

  it("lists a group from its first create, and drops it once its last item is gone", async () => {
    const s = streamName("lifecycle");
    await commit(adapter, write(s, "b", "i", 1, 0));
    await commit(adapter, write(s, "a", "i", 1, 0));
    expect(await adapter.listGroups(s, { after: undefined, limit: 10 })).toEqual(["a", "b"]);
    await commit(adapter, write(s, "b", "i", undefined, 1));
    expect(await adapter.listGroups(s, { after: undefined, limit: 10 })).toEqual(["a"]);
    expect(await redis.zscore(keys.streamGroups(s), "b")).toBeNull();
  });
});

describe("watching", () => {
  it("subscribes a group's channel once, while someone watches it, and only that group's", async () => {
    const s = streamName("watch");
    const channel = keys.group(s, "g").channel;
    const shardSubscribers = async () => (await redis.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
    const first = collector();
    const second = collector();
    const unwatchFirst = await adapter.watch(s, "g", first.listener);
    expect(await shardSubscribers()).toEqual([channel, 1]);
    const unwatchSecond = await adapter.watch(s, "g", second.listener);
    expect(await shardSubscribers()).toEqual([channel, 1]);
    expect(adapter.watchedGroupCount).toBe(1);
    const watchedChannels = (await redis.call("PUBSUB", "SHARDCHANNELS", `${keyPrefix}*changes`)) as string[];
    expect(watchedChannels).toContain(channel);
    expect(watchedChannels).not.toContain(keys.group(s, "other").channel);

    // Delivery is live as soon as watch resolves.
    await commit(adapter, write(s, "g", "i", 1, 0));
    expect((await first.until(1)).map((m) => m.offset)).toEqual([1]);
    expect((await second.until(1)).map((m) => m.offset)).toEqual([1]);

    unwatchFirst();
    await commit(adapter, write(s, "g", "i", 2, 1));
    expect((await second.until(2)).map((m) => m.offset)).toEqual([1, 2]);
    expect(first.messages).toHaveLength(1);
    unwatchSecond();
    expect(adapter.watchedGroupCount).toBe(0);
    await eventually(shardSubscribers, [channel, 0]);
  });

  it("delivers a group's changes written through another adapter in offset order", async () => {
    const s = streamName("two-adapters");
    const watched = collector();
    const unwatch = await adapter.watch(s, "g", watched.listener);
    try {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => commit(i % 2 ? adapter : small, write(s, "g", `item-${i}`, i, 0))),
      );
      const received = await watched.until(40);
      expect(received.map((m) => m.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      unwatch();
    }
  });
});

describe("errors", () => {
  it("connecting to a port where nothing listens fails with UNAVAILABLE", async () => {
    const error = await RedisItemStore.connect({ url: "redis://127.0.0.1:1", connectTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamError);
    expect((error as StreamError).code).toBe(ErrorCode.Unavailable);
  });
});

describe("lua scripts", () => {
  it("each documents its KEYS and ARGV in its header", () => {
    const dir = new URL("../src/adapters/redis/lua/", import.meta.url);
    const files = readdirSync(dir).filter((name) => name.endsWith(".lua"));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const text = readFileSync(new URL(file, dir), "utf8");
      const header = text.slice(0, text.search(/^[^-\n]/m));
      for (const used of new Set(text.match(/\b(KEYS|ARGV)\[\d+\]/g))) {
        expect(header, `${file} documents ${used}`).toContain(`-- ${used}`);
      }
    }
  });
});
