import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileStore, MemoryItemStore, RedisItemStore, type ItemStore } from "../src/index.js";
import { startServer } from "./support/server.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

/** Creates `count` items through the port (many at once): far faster than as many Sets. */
async function fill(store: ItemStore, streamName: string, groupId: string, count: number, value: (i: number) => unknown = (i) => i): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => start + i);
    await Promise.all(
      batch.map((i) => store.commit({ streamName, groupId, itemId: `i${i}`, expectedRevision: 0, value: value(i) as never, timestampMs: Date.now() })),
    );
  }
}

describe("List page sizes and bytes", () => {
  it("0 means 1,000, more than 10,000 means 10,000, and a page also ends before 1 MiB of items", async () => {
    const store = new MemoryItemStore();
    const running = await startServer({ backend: { items: store } });
    try {
      await fill(store, "s", "many", 10_005);
      const client = running.client();
      const byDefault = await client.list({ streamName: "s", groupId: "many" });
      expect(byDefault.items.length).toBe(1000);
      const clamped = await client.list({ streamName: "s", groupId: "many", pageSize: 50_000 });
      expect(clamped.items.length).toBe(10_000);
      const rest = await client.list({ streamName: "s", groupId: "many", pageSize: 50_000, pageToken: clamped.nextPageToken });
      expect([rest.items.length, rest.nextPageToken]).toEqual([5, ""]);

      // 300 KB items: three fit in 1 MiB, the fourth would not; a single item larger than that still comes alone.
      await fill(store, "s", "large", 7, (i) => (i === 6 ? "y".repeat(1_000_000) : "x".repeat(300_000)));
      const sizes: number[] = [];
      let pageToken = "";
      do {
        const page = await client.list({ streamName: "s", groupId: "large", pageToken });
        sizes.push(page.items.length);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(sizes).toEqual([3, 3, 1]);
    } finally {
      await running.stop();
    }
  });
});

describe("page tokens outlive the server that made them", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-paging-"));
  const keyPrefix = uniquePrefix("paging");
  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await deleteKeys(keyPrefix);
  });

  it("a token from before a restart reads on (file adapter)", async () => {
    const first = await startServer({ backend: { items: FileStore.open({ dataDir }) } });
    let token: string;
    try {
      for (let i = 0; i < 5; i++) await first.client().set({ streamName: "s", groupId: "g", itemId: `i${i}`, data: { kind: { case: "numberValue", value: i } } });
      const page = await first.client().list({ streamName: "s", groupId: "g", pageSize: 2 });
      expect(page.items.map((item) => item.itemId)).toEqual(["i0", "i1"]);
      token = page.nextPageToken;
      const groups = await first.client().listGroups({ streamName: "s", pageSize: 1 });
      expect(groups.nextPageToken).toBe("");
    } finally {
      await first.stop();
    }
    const second = await startServer({ backend: { items: FileStore.open({ dataDir }) } });
    try {
      const page = await second.client().list({ streamName: "s", groupId: "g", pageSize: 10, pageToken: token });
      expect([page.items.map((item) => item.itemId), page.nextPageToken]).toEqual([["i2", "i3", "i4"], ""]);
    } finally {
      await second.stop();
    }
  });

  it("a token from one instance of a fleet reads on at another (Redis adapter)", async () => {
    const a = await startServer({ backend: { items: await RedisItemStore.connect({ url: REDIS_URL, keyPrefix }) } });
    const b = await startServer({ backend: { items: await RedisItemStore.connect({ url: REDIS_URL, keyPrefix }) } });
    try {
      for (const groupId of ["g1", "g2", "g3"]) await a.client().set({ streamName: "fleet", groupId, itemId: "x", data: { kind: { case: "numberValue", value: 1 } } });
      for (let i = 0; i < 4; i++) await a.client().set({ streamName: "fleet", groupId: "g1", itemId: `i${i}`, data: { kind: { case: "numberValue", value: i } } });
      const items = await a.client().list({ streamName: "fleet", groupId: "g1", pageSize: 3 });
      const rest = await b.client().list({ streamName: "fleet", groupId: "g1", pageToken: items.nextPageToken });
      expect([...items.items, ...rest.items].map((item) => item.itemId)).toEqual(["x", "i0", "i1", "i2", "i3"]);
      const groups = await a.client().listGroups({ streamName: "fleet", pageSize: 2 });
      const moreGroups = await b.client().listGroups({ streamName: "fleet", pageToken: groups.nextPageToken });
      expect([...groups.groups, ...moreGroups.groups]).toEqual(["g1", "g2", "g3"]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
