import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { ItemWrite } from "../src/core/item-store.js";
import { FileStore, type GroupMessage } from "../src/index.js";
import { STORE_FILE_NAME } from "../src/adapters/file/open-store.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-group-commit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(itemId: string, expectedRevision: number, value: ItemWrite["value"], groupId = "g"): ItemWrite {
  return { streamName: "s", groupId, itemId, expectedRevision, value, timestampMs: 1 };
}

function summary(message: GroupMessage): string {
  return message.kind === "change" ? `${message.type} ${message.itemId} @${message.offset}` : `event ${message.type} @${message.offset}`;
}

describe("group commit", () => {
  it("answers and delivers a tick's writes only once they are committed, in offset order, events after them", async () => {
    const adapter = FileStore.open({ dataDir: join(root, "batch") });
    try {
      const seen: string[] = [];
      await adapter.watch("s", "g", (message) => seen.push(summary(message)));
      const commits = [adapter.commit(write("a", 0, 1)), adapter.commit(write("b", 0, 2)), adapter.commit(write("a", 0, 3))];
      const event = adapter.publishEvent({ streamName: "s", groupId: "g", type: "ping", itemId: undefined, data: null, timestampMs: 1 });
      // Still queued: invisible to readers and watchers alike.
      expect(seen).toStrictEqual([]);
      expect(await adapter.getItem("s", "g", "a")).toBeUndefined();
      expect(await adapter.currentOffset("s", "g")).toBe(0);

      const results = await Promise.all(commits);
      expect(results.map((result) => result.ok)).toStrictEqual([true, true, false]);
      expect((await event).offset).toBe(2);
      expect(seen).toStrictEqual(["create a @1", "create b @2", "event ping @2"]);
      expect((await adapter.getItem("s", "g", "a"))?.revision).toBe(1);
    } finally {
      await adapter.close();
    }
  });

  it("an event with nothing queued goes out at once with the committed offset", async () => {
    const adapter = FileStore.open({ dataDir: join(root, "event") });
    try {
      await adapter.commit(write("a", 0, 1));
      const seen: string[] = [];
      await adapter.watch("s", "g", (message) => seen.push(summary(message)));
      const event = adapter.publishEvent({ streamName: "s", groupId: "g", type: "now", itemId: "a", data: 1, timestampMs: 1 });
      expect(seen).toStrictEqual(["event now @1"]);
      expect((await event).offset).toBe(1);
    } finally {
      await adapter.close();
    }
  });

  it("refuses work after close", async () => {
    const adapter = FileStore.open({ dataDir: join(root, "closed") });
    await adapter.close();
    expect(adapter.isReady()).toBe(false);
    await expect(adapter.commit(write("a", 0, 1))).rejects.toThrow(/closed/);
    await expect(adapter.getItem("s", "g", "a")).rejects.toThrow(/closed/);
  });
});

describe("bounded disk", () => {
  it("keeps history to its limit, and an emptied group leaves only its offset row", async () => {
    const dataDir = join(root, "bounded");
    const adapter = FileStore.open({ dataDir, historyLimit: 5 });
    for (let revision = 0; revision < 50; revision++) await adapter.commit(write("busy", revision, revision));
    await adapter.commit(write("x", 0, "x", "emptied"));
    await adapter.commit(write("y", 0, "y", "emptied"));
    await adapter.commit(write("x", 1, undefined, "emptied"));
    await adapter.commit(write("y", 1, undefined, "emptied"));
    expect(await adapter.listGroups("s", { after: undefined, limit: 10 })).toStrictEqual(["g"]);
    await adapter.close();

    const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true });
    try {
      const rows = (sql: string) => db.prepare(sql).all();
      expect(rows("SELECT group_id, last_offset, item_count FROM stream_groups ORDER BY group_id")).toStrictEqual([
        { group_id: "emptied", last_offset: 4, item_count: 0 },
        { group_id: "g", last_offset: 50, item_count: 1 },
      ]);
      expect(rows("SELECT change_offset FROM history ORDER BY change_offset").map((row) => (row as { change_offset: number }).change_offset)).toStrictEqual([
        46, 47, 48, 49, 50,
      ]);
      expect(rows("SELECT item_id FROM items")).toStrictEqual([{ item_id: "busy" }]);
    } finally {
      db.close();
    }
  });
});
