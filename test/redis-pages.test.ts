import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ItemWrite } from "../src/core/item-store.js";
import type { JsonValue } from "../src/core/json.js";
import type { ItemChange, ItemPage, StoredItem } from "../src/core/model.js";
import { compareBytes } from "../src/core/names.js";
import { RedisItemStore } from "../src/index.js";
import { KeyLayout } from "../src/adapters/redis/key-layout.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deleteKeys, REDIS_URL, redisClient, startRedisCluster, uniquePrefix, type RedisCluster } from "./support/redis.js";

/*
 * Paging on Redis: items of a group in insertion order (read-items.lua), and the group
 * and stream index (ZSETs paged by ZRANGE BYLEX, repaired lazily, migrated from the
 * SETs of earlier versions), plus the fields every change carries.
 */

const keyPrefix = uniquePrefix("pages");
const keys = new KeyLayout(keyPrefix);
const streamName = uniqueNames("redis-pages");
const redis = redisClient();
const prefixes = [keyPrefix];
const stores: RedisItemStore[] = [];
let adapter: RedisItemStore;
let writer: RedisItemStore;

async function connect(prefix: string, url: string = REDIS_URL, into: RedisItemStore[] = stores): Promise<RedisItemStore> {
  const store = await RedisItemStore.connect({ url, keyPrefix: prefix });
  into.push(store);
  return store;
}

/** A key prefix of its own, for checks of the stream index, which lists every stream under a prefix. */
function ownPrefix(label: string): { prefix: string; keys: KeyLayout } {
  const prefix = uniquePrefix(`pages-${label}`);
  prefixes.push(prefix);
  return { prefix, keys: new KeyLayout(prefix) };
}

beforeAll(async () => {
  adapter = await connect(keyPrefix);
  writer = await connect(keyPrefix);
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  for (const prefix of prefixes) await deleteKeys(prefix);
  await redis.quit();
});

function write(
  stream: string,
  group: string,
  itemId: string,
  value: JsonValue | undefined,
  expectedRevision: number,
  expectedCreatedOffset?: number,
): ItemWrite {
  return { streamName: stream, groupId: group, itemId, value, expectedRevision, expectedCreatedOffset, timestampMs: Date.now() };
}

async function commit(target: RedisItemStore, w: ItemWrite): Promise<ItemChange> {
  const result = await target.commit(w);
  if (!result.ok) throw new Error(`unexpected conflict at revision ${result.currentRevision}`);
  return result.change;
}

const everything = { afterCreatedOffset: 0, maxItems: 1_000_000, maxBytes: Number.MAX_SAFE_INTEGER };

/** Reads every page after `afterCreatedOffset` by following the cursor, as a snapshot reader would. */
async function readAll(store: RedisItemStore, stream: string, group: string, maxItems: number, maxBytes: number): Promise<ItemPage[]> {
  const pages: ItemPage[] = [];
  let afterCreatedOffset = 0;
  for (;;) {
    const page = await store.readItems(stream, group, { afterCreatedOffset, maxItems, maxBytes });
    pages.push(page);
    if (!page.more) return pages;
    afterCreatedOffset = page.items[page.items.length - 1].createdOffset;
  }
}

/** The page size of one item, as read-items.lua counts it: bytes of the value's JSON and of the id. */
function size(item: StoredItem): number {
  return Buffer.byteLength(JSON.stringify(item.data)) + Buffer.byteLength(item.itemId);
}

async function walkNames(list: (after: string | undefined) => Promise<string[]>, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | undefined;
  for (;;) {
    const page = await list(after);
    pages.push(page);
    if (page.length < limit) return pages;
    after = page[page.length - 1];
  }
}

describe("readItems", () => {
  it("pages in insertion order: overwriting keeps an item's place, re-creating moves it to the end", async () => {
    const s = streamName("order");
    for (const id of ["a", "b", "c", "d", "e", "f", "g"]) await commit(writer, write(s, "g", id, { id }, 0));
    await commit(writer, write(s, "g", "b", { id: "b", again: true }, 1)); // offset 8, keeps its place
    await commit(writer, write(s, "g", "c", undefined, 1)); // 9
    await commit(writer, write(s, "g", "c", { id: "c", back: true }, 0)); // 10, now last
    const expected = ["a", "b", "d", "e", "f", "g", "c"];

    const whole = await adapter.readItems(s, "g", everything);
    expect(whole.items.map((item) => item.itemId)).toEqual(expected);
    expect(whole.items.map((item) => item.createdOffset)).toEqual([1, 2, 4, 5, 6, 7, 10]);
    expect(whole.items[1]).toMatchObject({ revision: 2, data: { id: "b", again: true } });
    expect([whole.offset, whole.more]).toEqual([10, false]);

    const pages = await readAll(adapter, s, "g", 3, Number.MAX_SAFE_INTEGER);
    expect(pages.map((page) => page.items.map((item) => item.itemId))).toEqual([["a", "b", "d"], ["e", "f", "g"], ["c"]]);
    expect(pages.map((page) => [page.offset, page.more])).toEqual([
      [10, true],
      [10, true],
      [10, false],
    ]);
    // A page ending exactly at the last item says there is no more.
    const exact = await adapter.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 7, maxBytes: Number.MAX_SAFE_INTEGER });
    expect([exact.items.length, exact.more]).toEqual([7, false]);
    // The cursor is exclusive, need not be an item's offset, and may be past the end.
    expect((await adapter.readItems(s, "g", { ...everything, afterCreatedOffset: 2 })).items.map((i) => i.itemId)).toEqual(
      expected.slice(2),
    );
    expect((await adapter.readItems(s, "g", { ...everything, afterCreatedOffset: 8 })).items.map((i) => i.itemId)).toEqual(["c"]);
    expect(await adapter.readItems(s, "g", { ...everything, afterCreatedOffset: 10 })).toEqual({ items: [], offset: 10, more: false });
    // Fewer than one item is asked as one.
    expect((await adapter.readItems(s, "g", { ...everything, maxItems: 0 })).items.map((i) => i.itemId)).toEqual(["a"]);
  });

  it("ends a page with the item that brings its size to maxBytes; the first item always comes", async () => {
    const s = streamName("bytes");
    // Each item: value JSON "xxxx" with quotes (6 bytes) + a one-byte id = 7.
    for (const id of ["a", "b", "c", "d", "e"]) await commit(writer, write(s, "g", id, "xxxx", 0));
    const ids = async (maxBytes: number, maxItems = 100) =>
      (await adapter.readItems(s, "g", { afterCreatedOffset: 0, maxItems, maxBytes })).items.map((item) => item.itemId);
    expect(await ids(14)).toEqual(["a", "b"]);
    expect(await ids(15)).toEqual(["a", "b", "c"]);
    expect(await ids(13)).toEqual(["a", "b"]);
    expect(await ids(7)).toEqual(["a"]);
    expect(await ids(1)).toEqual(["a"]);
    expect(await ids(0)).toEqual(["a"]);
    expect(await ids(35)).toEqual(["a", "b", "c", "d", "e"]);
    expect(await ids(Infinity)).toEqual(["a", "b", "c", "d", "e"]);
    expect(await ids(100, 2)).toEqual(["a", "b"]);

    // Sizes are counted in bytes of UTF-8: "é" takes two.
    const t = streamName("bytes-utf8");
    await commit(writer, write(t, "g", "é", "éé", 0)); // 6 + 2 = 8
    await commit(writer, write(t, "g", "x", "x", 0));
    expect((await adapter.readItems(t, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 8 })).items).toHaveLength(1);
    expect((await adapter.readItems(t, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 9 })).items).toHaveLength(2);

    // One large item is still a page of its own.
    const u = streamName("bytes-large");
    await commit(writer, write(u, "g", "big", "y".repeat(100_000), 0));
    await commit(writer, write(u, "g", "small", 1, 0));
    const first = await adapter.readItems(u, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1000 });
    expect([first.items.map((item) => item.itemId), first.more]).toEqual([["big"], true]);
  });

  it("pages a group larger than the script's read batches, cut by count or by size anywhere in a batch", async () => {
    const s = streamName("large");
    const ids = Array.from({ length: 1200 }, (_, i) => `i${String(i).padStart(4, "0")}`);
    // In order, so that creation order is id order. Each item: 5-byte id + '"vvv"' = 10 bytes.
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map((id) => commit(writer, write(s, "g", id, "vvv", 0))));
    }
    const byOffset = (await adapter.readItems(s, "g", everything)).items.map((item) => item.itemId);
    expect([...byOffset].sort()).toEqual(ids);
    const lengths = async (maxItems: number, maxBytes: number) =>
      (await readAll(adapter, s, "g", maxItems, maxBytes)).map((page) => page.items.length);
    expect(await lengths(1000, Number.MAX_SAFE_INTEGER)).toEqual([1000, 200]);
    expect(await lengths(333, Number.MAX_SAFE_INTEGER)).toEqual([333, 333, 333, 201]);
    expect(await lengths(1000, 5000)).toEqual([500, 500, 200]);
    expect(await lengths(1000, 4991)).toEqual([500, 500, 200]);
    expect(await lengths(1000, 4990)).toEqual([499, 499, 202]);
    const pages = await readAll(adapter, s, "g", 777, 3333);
    expect(pages.flatMap((page) => page.items.map((item) => item.itemId))).toEqual(byOffset);
  });

  it("reads a missing group as an empty last page at its offset", async () => {
    const s = streamName("missing");
    expect(await adapter.readItems(s, "never", everything)).toEqual({ items: [], offset: 0, more: false });
    await commit(writer, write(s, "g", "a", 1, 0));
    await commit(writer, write(s, "g", "a", undefined, 1));
    expect(await adapter.readItems(s, "g", everything)).toEqual({ items: [], offset: 2, more: false });
  });

  it("pages while others create, overwrite, delete and re-create: each page is the group at its offset", async () => {
    const s = streamName("concurrent");
    const g = "g";
    const log: ItemChange[] = [];
    const state = new Map<string, { revision: number; createdOffset: number }>();
    const apply = async (itemId: string, value: JsonValue | undefined) => {
      const current = state.get(itemId);
      const change = await commit(writer, write(s, g, itemId, value, current?.revision ?? 0, current?.createdOffset));
      log.push(change);
      if (change.type === "delete") state.delete(itemId);
      else state.set(itemId, { revision: change.revision, createdOffset: change.createdOffset });
    };

    // Interleaved, so that every kind sits all along the insertion order.
    const stable: string[] = [];
    const doomed: string[] = [];
    const churned: string[] = [];
    for (let i = 0; i < 60; i++) {
      stable.push(`stable-${i}`, `stable-${i}b`);
      doomed.push(`doomed-${i}`);
      if (i % 2 === 0) churned.push(`churn-${i}`);
    }
    for (let i = 0; i < 60; i++) {
      await apply(`stable-${i}`, { n: 0 });
      await apply(`doomed-${i}`, { n: 0 });
      await apply(`stable-${i}b`, { n: 0 });
      if (i % 2 === 0) await apply(`churn-${i}`, { n: 0 });
    }

    let done = false;
    const writers = [
      // Overwrites the items that exist throughout.
      async () => {
        for (let n = 1; !done; n++) for (const id of stable) if (!done) await apply(id, { n, pad: "p".repeat(n % 7) });
      },
      // Deletes, each for good.
      async () => {
        for (const id of doomed) if (!done) await apply(id, undefined);
      },
      // Deletes and re-creates, so incarnations move to the end.
      async () => {
        for (let n = 1; !done; n++) {
          for (const id of churned) {
            if (done) break;
            await apply(id, undefined);
            await apply(id, { n });
          }
        }
      },
      // Creates new items at the end.
      async () => {
        for (let n = 0; !done; n++) await apply(`fresh-${n}`, { n });
      },
    ];
    const writing = Promise.all(writers.map((run) => run()));

    const pages: Array<{ after: number; page: ItemPage }> = [];
    let afterCreatedOffset = 0;
    try {
      for (;;) {
        // Lets some writes land between pages, whatever the speeds.
        const target = log.length + 5;
        while (log.length < target) await new Promise((resolve) => setTimeout(resolve, 1));
        const page = await adapter.readItems(s, g, { afterCreatedOffset, maxItems: 7, maxBytes: 120 });
        pages.push({ after: afterCreatedOffset, page });
        if (!page.more) break;
        afterCreatedOffset = page.items[page.items.length - 1].createdOffset;
      }
    } finally {
      done = true;
      await writing;
    }

    log.sort((a, b) => a.offset - b.offset);
    expect(log.map((change) => change.offset)).toEqual(log.map((_, i) => i + 1));

    // Each page must be exactly what the group held at the page's offset, after its cursor.
    for (const { after, page } of pages) {
      const live = new Map<string, StoredItem>();
      for (const change of log) {
        if (change.offset > page.offset) break;
        if (change.type === "delete") live.delete(change.itemId);
        else {
          live.set(change.itemId, {
            itemId: change.itemId,
            data: change.data,
            revision: change.revision,
            createdOffset: change.createdOffset,
            updatedAtMs: change.timestampMs,
          });
        }
      }
      const candidates = [...live.values()].filter((item) => item.createdOffset > after).sort((a, b) => a.createdOffset - b.createdOffset);
      const count = page.items.length;
      expect(page.items).toEqual(candidates.slice(0, count));
      expect(page.more).toBe(candidates.length > count);
      if (candidates.length > 0) expect(count).toBeGreaterThan(0);
      const sizes = page.items.map(size);
      const before = sizes.slice(0, -1).reduce((sum, n) => sum + n, 0);
      expect(count).toBeLessThanOrEqual(7);
      expect(count <= 1 || before < 120).toBe(true);
      if (page.more) expect(count === 7 || before + sizes[count - 1] >= 120).toBe(true);
    }

    const read = pages.flatMap(({ page }) => page.items);
    const times = (id: string) => read.filter((item) => item.itemId === id).length;
    for (const id of stable) expect(times(id)).toBe(1);
    const incarnations = read.map((item) => `${item.itemId}@${item.createdOffset}`);
    expect(new Set(incarnations).size).toBe(incarnations.length);
    // Deleted never after its delete: checked per page above; and every page moved the cursor on.
    expect(pages.length).toBeGreaterThan(10);
    expect(log.some((change) => change.type === "delete" && change.itemId.startsWith("doomed"))).toBe(true);
    expect(log.some((change) => change.itemId.startsWith("fresh"))).toBe(true);
  });
});

describe("snapshotItem", () => {
  it("reads one item, or none, with the offset it reflects", async () => {
    const s = streamName("snapshot-item");
    await commit(writer, write(s, "g", "a", { v: 1 }, 0));
    await commit(writer, write(s, "g", "b", { v: 2 }, 0));
    const one = await adapter.snapshotItem(s, "g", "b");
    expect(one.offset).toBe(2);
    expect(one.items).toEqual([expect.objectContaining({ itemId: "b", data: { v: 2 }, revision: 1, createdOffset: 2 })]);
    expect(await adapter.snapshotItem(s, "g", "none")).toEqual({ items: [], offset: 2 });
    expect(await adapter.snapshotItem(s, "never", "a")).toEqual({ items: [], offset: 0 });
    expect(await adapter.getItem(s, "g", "a")).toMatchObject({ itemId: "a", createdOffset: 1 });
  });
});

describe("the group and stream index", () => {
  // Byte order differs from JavaScript's UTF-16 order: U+FF61 sorts before an emoji
  // (EF.. < F0..) although its UTF-16 unit is above the emoji's surrogate.
  const names = ["10", "9", "B", "a", "a b", "b", "z", "é", "ß", "日本", "\uff61", "😀", "{x}", "a:b", "a.b"];
  const sorted = [...names].sort(compareBytes);

  it("pages groups by bytes, after any name, and counts them", async () => {
    const s = streamName("groups");
    for (const g of names) await commit(writer, write(s, g, "i", 1, 0));
    expect(sorted).not.toEqual([...names].sort());
    for (const limit of [1, 4, names.length, 100]) {
      const pages = await walkNames((after) => adapter.listGroups(s, { after, limit }), limit);
      expect(pages.flat()).toEqual(sorted);
      for (const page of pages.slice(0, -1)) expect(page).toHaveLength(limit);
    }
    expect(await adapter.listGroups(s, { after: "a", limit: 3 })).toEqual(sorted.filter((g) => compareBytes(g, "a") > 0).slice(0, 3));
    expect(await adapter.listGroups(s, { after: "c", limit: 100 })).toEqual(sorted.filter((g) => compareBytes(g, "c") > 0));
    expect(await adapter.listGroups(s, { after: "\u{10ffff}", limit: 100 })).toEqual([]);
    expect(await adapter.countGroups(s)).toBe(names.length);
    expect(await adapter.countGroups(streamName("none"))).toBe(0);
    expect(await adapter.listGroups(streamName("none"), { after: undefined, limit: 10 })).toEqual([]);
  });

  it("pages streams by bytes", async () => {
    const own = ownPrefix("streams");
    const store = await connect(own.prefix);
    for (const s of names) await commit(store, write(s, "g", "i", 1, 0));
    for (const limit of [1, 4, 100]) {
      const pages = await walkNames((after) => store.listStreams({ after, limit }), limit);
      expect(pages.flat()).toEqual(sorted);
    }
    expect(await store.listStreams({ after: "b", limit: 2 })).toEqual(sorted.filter((s) => compareBytes(s, "b") > 0).slice(0, 2));
  });

  it("drops an emptied group and stream at once, so the count stays exact", async () => {
    const own = ownPrefix("emptied");
    const store = await connect(own.prefix);
    for (const g of ["a", "b", "c"]) await commit(store, write("s", g, "i", 1, 0));
    await commit(store, write("t", "only", "i", 1, 0));
    expect(await store.countGroups("s")).toBe(3);
    await commit(store, write("s", "b", "i", undefined, 1));
    expect(await store.countGroups("s")).toBe(2);
    expect(await redis.zrange(own.keys.streamGroups("s"), "0", "-1")).toEqual(["a", "c"]);
    await commit(store, write("t", "only", "i", undefined, 1));
    expect(await redis.exists(own.keys.streamGroups("t"))).toBe(0);
    expect(await redis.zrange(own.keys.streams, "0", "-1")).toEqual(["s"]);
    // Re-creating lists it again.
    await commit(store, write("t", "only", "i", 2, 0));
    expect(await store.listStreams({ after: undefined, limit: 10 })).toEqual(["s", "t"]);
  });

  it("repairs stale entries while paging, and still fills every page but the last", async () => {
    const own = ownPrefix("repair");
    const store = await connect(own.prefix);
    const s = "s";
    const live: string[] = [];
    // What writers that stopped between the index and the commit leave: entries of empty groups.
    for (let i = 0; i < 60; i++) {
      const g = `g${String(i).padStart(3, "0")}`;
      if (i % 3 === 0 || (i >= 20 && i < 40)) await redis.zadd(own.keys.streamGroups(s), 0, g);
      else {
        await commit(store, write(s, g, "i", 1, 0));
        live.push(g);
      }
    }
    await redis.zadd(own.keys.streams, 0, s);
    expect(await store.countGroups(s)).toBe(60); // the stale entries count until a reader meets them
    const pages = await walkNames((after) => store.listGroups(s, { after, limit: 5 }), 5);
    expect(pages.flat()).toEqual(live);
    for (const page of pages.slice(0, -1)) expect(page).toHaveLength(5);
    expect(await store.countGroups(s)).toBe(live.length);
    expect(await redis.zrange(own.keys.streamGroups(s), "0", "-1")).toEqual(live);

    // Streams whose groups are all gone (or only ever listed) are dropped the same way.
    for (let i = 0; i < 12; i++) {
      const t = `t${String(i).padStart(2, "0")}`;
      await redis.zadd(own.keys.streams, 0, t);
      if (i % 4 === 0) await commit(store, write(t, "g", "i", 1, 0));
      else if (i % 4 === 1) await redis.zadd(own.keys.streamGroups(t), 0, "ghost");
    }
    const streams = await walkNames((after) => store.listStreams({ after, limit: 2 }), 2);
    expect(streams.flat()).toEqual(["s", "t00", "t04", "t08"]);
    for (const page of streams.slice(0, -1)) expect(page).toHaveLength(2);
    expect(await redis.zrange(own.keys.streams, "0", "-1")).toEqual(["s", "t00", "t04", "t08"]);
    expect(await redis.exists(own.keys.streamGroups("t01"))).toBe(0);
  });

  it("moves the SET index of an earlier version into the ZSETs once, with two processes connecting at once", async () => {
    const own = ownPrefix("migrate");
    const setup = await connect(own.prefix);
    const groups = Array.from({ length: 2500 }, (_, i) => `g${i}`);
    await Promise.all(groups.map((g) => commit(setup, write("big", g, "i", 1, 0))));
    for (const s of names) await commit(setup, write(s, "g", "i", 1, 0));
    // Turn the index back into what an earlier version wrote.
    await redis.del(own.keys.streams, own.keys.streamGroups("big"), ...names.map((s) => own.keys.streamGroups(s)));
    await redis.sadd(own.keys.legacyStreams, "big", ...names, "ghost-stream");
    for (let i = 0; i < groups.length; i += 500) await redis.sadd(own.keys.legacyStreamGroups("big"), ...groups.slice(i, i + 500));
    await redis.sadd(own.keys.legacyStreamGroups("big"), "ghost-group");
    for (const s of names) await redis.sadd(own.keys.legacyStreamGroups(s), "g");

    const [first, second] = await Promise.all([connect(own.prefix), connect(own.prefix)]);
    expect(await redis.exists(own.keys.legacyStreams, own.keys.legacyStreamGroups("big"), own.keys.legacyStreamGroups(names[0]))).toBe(0);
    expect(await redis.zcard(own.keys.streamGroups("big"))).toBe(groups.length + 1);
    const scores = new Set((await redis.zrange(own.keys.streamGroups("big"), "0", "-1", "WITHSCORES")).filter((_, i) => i % 2 === 1));
    expect([...scores]).toEqual(["0"]);

    const walked = await walkNames((after) => first.listGroups("big", { after, limit: 1000 }), 1000);
    expect(walked.flat()).toEqual([...groups].sort(compareBytes));
    expect(await second.listStreams({ after: undefined, limit: 100 })).toEqual(["big", ...names].sort(compareBytes));
    expect(await redis.zscore(own.keys.streams, "ghost-stream")).toBeNull();
    // A later connect finds nothing to move.
    await connect(own.prefix);
    expect(await redis.zcard(own.keys.streamGroups("big"))).toBe(groups.length);
  });
});

describe("changes", () => {
  it("carry oldUpdatedAtMs and createdOffset, the same from commit, history and the channel", async () => {
    const s = streamName("change-fields");
    const received: ItemChange[] = [];
    const unwatch = await adapter.watch(s, "g", (message) => {
      if (message.kind === "change") received.push(message);
    });
    try {
      const at = (timestampMs: number, w: ItemWrite) => ({ ...w, timestampMs });
      await commit(writer, at(1000, write(s, "g", "other", 0, 0)));
      const created = await commit(writer, at(2000, write(s, "g", "a", { v: 1 }, 0)));
      const updated = await commit(writer, at(3000, write(s, "g", "a", { v: 2 }, 1, 2)));
      const deleted = await commit(writer, at(4000, write(s, "g", "a", undefined, 2, 2)));
      const again = await commit(writer, at(5000, write(s, "g", "a", { v: 3 }, 0)));
      const changes = [created, updated, deleted, again];
      expect(changes.map((c) => [c.type, c.offset, c.oldUpdatedAtMs, c.createdOffset])).toEqual([
        ["create", 2, undefined, 2],
        ["update", 3, 2000, 2],
        ["delete", 4, 3000, 2],
        ["create", 5, undefined, 5],
      ]);
      expect("oldUpdatedAtMs" in created).toBe(true);
      expect((await adapter.changesSince(s, "g", 1))!).toStrictEqual(changes);
      const deadline = Date.now() + 5000;
      while (received.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(received.slice(1)).toStrictEqual(changes);
    } finally {
      unwatch();
    }
  });

  it("decode from history messages written before the fields existed", async () => {
    const s = streamName("old-format");
    const group = keys.group(s, "g");
    // Change messages as an earlier version stored them: eight lines, ending with the old value.
    await redis.set(group.offset, "3");
    await redis.rpush(
      group.history,
      ["c", "1", "create", "1", "1000", '"a"', '{"v":1}', ""].join("\n"),
      ["c", "2", "update", "2", "2000", '"a"', '{"v":2}', '{"v":1}'].join("\n"),
      ["c", "3", "delete", "2", "3000", '"a"', '{"v":2}', ""].join("\n"),
    );
    const changes = await adapter.changesSince(s, "g", 0);
    expect(changes?.map((c) => [c.type, c.data, c.oldValue, c.oldUpdatedAtMs, c.createdOffset])).toEqual([
      ["create", { v: 1 }, undefined, undefined, 1],
      ["update", { v: 2 }, { v: 1 }, undefined, 0],
      ["delete", { v: 2 }, { v: 2 }, undefined, 0],
    ]);
  });
});

describe("on Redis Cluster", () => {
  // The cluster and everything on it go with this block.
  const clusterPrefix = uniquePrefix("pages-cluster");
  const clusterStores: RedisItemStore[] = [];
  let cluster: RedisCluster;
  let admin: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    admin = new Cluster([{ host: "127.0.0.1", port: cluster.nodes[0].port }]);
  });

  afterAll(async () => {
    await Promise.all(clusterStores.map((store) => store.close()));
    admin?.disconnect();
    await cluster?.stop();
  });

  it("pages items, groups and streams, and migrates the SET index, with groups on every master", async () => {
    const store = await connect(clusterPrefix, cluster.url, clusterStores);
    const other = await connect(clusterPrefix, cluster.url, clusterStores);
    expect(store.isCluster).toBe(true);
    const layout = new KeyLayout(clusterPrefix);

    for (const id of ["a", "b", "c", "d"]) await commit(store, write("s", "g", id, id, 0));
    await commit(store, write("s", "g", "b", undefined, 1));
    const pages = await readAll(other, "s", "g", 2, 1000);
    expect(pages.map((page) => [page.items.map((item) => item.itemId), page.offset, page.more])).toEqual([
      [["a", "c"], 5, true],
      [["d"], 5, false],
    ]);

    const groups = Array.from({ length: 30 }, (_, i) => `group ${i} é`);
    await Promise.all(groups.map((g) => commit(store, write("many", g, "i", 1, 0))));
    const walked = await walkNames((after) => other.listGroups("many", { after, limit: 7 }), 7);
    expect(walked.flat()).toEqual([...groups].sort(compareBytes));
    expect(await other.countGroups("many")).toBe(groups.length);
    expect(await other.listStreams({ after: undefined, limit: 10 })).toEqual(["many", "s"]);

    // An earlier version's SETs, each in the slot of its own key.
    await commit(store, write("legacy", "g1", "i", 1, 0));
    await commit(store, write("legacy", "g2", "i", 1, 0));
    await admin.del(layout.streamGroups("legacy"));
    await admin.zrem(layout.streams, "legacy");
    await admin.sadd(layout.legacyStreamGroups("legacy"), "g1", "g2");
    await admin.sadd(layout.legacyStreams, "legacy");
    const migrated = await connect(clusterPrefix, cluster.url, clusterStores);
    expect(await migrated.listGroups("legacy", { after: undefined, limit: 10 })).toEqual(["g1", "g2"]);
    expect(await migrated.listStreams({ after: undefined, limit: 10 })).toEqual(["legacy", "many", "s"]);
    expect(await admin.exists(layout.legacyStreams)).toBe(0);
    expect(await admin.exists(layout.legacyStreamGroups("legacy"))).toBe(0);
  });
});
