import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ItemWrite } from "../src/core/item-store.js";
import { FileStore, type ItemStore, type JsonValue, MemoryItemStore, RedisItemStore } from "../src/index.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

/*
 * Revisions start again at 1 when an item is deleted and re-created, so a compare-and-set
 * computed by another process on the deleted incarnation could match the new one at the
 * same revision (ABA). Every adapter therefore also compares the offset that created the
 * item, which a re-created item never shares with its predecessor.
 */

const dir = mkdtempSync(join(tmpdir(), "iii-stream-incarnation-"));
const keyPrefix = uniquePrefix("incarnation");
const streamName = uniqueNames("incarnation");
const adapters: ItemStore[] = [];

afterAll(async () => {
  await Promise.all(adapters.map((adapter) => adapter.close()));
  await deleteKeys(keyPrefix);
  rmSync(dir, { recursive: true, force: true });
});

const makers: Record<string, () => Promise<ItemStore> | ItemStore> = {
  memory: () => new MemoryItemStore(),
  file: () => FileStore.open({ dataDir: join(dir, "store") }),
  redis: () => RedisItemStore.connect({ url: REDIS_URL, keyPrefix }),
};

describe.each(Object.keys(makers))("the %s adapter", (name) => {
  it("refuses a write expecting the revision of an item that was deleted and re-created meanwhile", async () => {
    const adapter = await makers[name]();
    adapters.push(adapter);
    const s = streamName(name);
    const commit = async (expectedRevision: number, value: JsonValue | undefined, expectedCreatedOffset?: number) => {
      const write: ItemWrite = { streamName: s, groupId: "g", itemId: "i", expectedRevision, expectedCreatedOffset, value, timestampMs: 1 };
      return adapter.commit(write);
    };

    await commit(0, "first, revision 1");
    await adapter.commit({ streamName: s, groupId: "g", itemId: "n", expectedRevision: 0, value: "a neighbour", timestampMs: 1 });
    await commit(1, "first, revision 2");
    const stale = (await adapter.getItem(s, "g", "i"))!;
    expect([stale.revision, stale.createdOffset]).toEqual([2, 1]);

    await commit(2, undefined, stale.createdOffset);
    const created = await commit(0, "second, revision 1");
    expect(created.ok && created.change.offset).toBe(5);
    await commit(1, "second, revision 2", 5);
    const current = (await adapter.getItem(s, "g", "i"))!;
    expect([current.revision, current.createdOffset, current.data]).toEqual([2, 5, "second, revision 2"]);

    expect(await commit(2, "computed from the first", stale.createdOffset)).toEqual({ ok: false, currentRevision: 2 });
    expect(await commit(2, undefined, stale.createdOffset)).toEqual({ ok: false, currentRevision: 2 });
    expect((await adapter.getItem(s, "g", "i"))?.data).toBe("second, revision 2");

    const written = await commit(2, "computed from the second", current.createdOffset);
    expect(written.ok && [written.change.revision, written.change.offset]).toEqual([3, 7]);
    // Every read reports the incarnation: pages too, in insertion order, and single-item snapshots.
    const { items } = await adapter.readItems(s, "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1 << 20 });
    expect(items.map((item) => [item.itemId, item.revision, item.createdOffset])).toEqual([
      ["n", 1, 2],
      ["i", 3, 5],
    ]);
    expect((await adapter.snapshotItem(s, "g", "i")).items.map((item) => item.createdOffset)).toEqual([5]);
  });
});
