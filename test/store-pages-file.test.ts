import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { ItemWrite } from "../src/core/item-store.js";
import { FileStore } from "../src/index.js";
import { STORE_FILE_NAME } from "../src/adapters/file/open-store.js";
import { prepareStatements } from "../src/adapters/file/statements.js";
import { defineStorePagesSuite } from "./conformance/store-pages.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-pages-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

defineStorePagesSuite("file", async () => {
  const store = FileStore.open({ dataDir: join(root, "suite") });
  return { store, close: () => store.close() };
});

function write(groupId: string, itemId: string, expectedRevision: number, value: ItemWrite["value"], expectedCreatedOffset?: number): ItemWrite {
  return { streamName: "s", groupId, itemId, expectedRevision, expectedCreatedOffset, value, timestampMs: 100 + expectedRevision };
}

/** Opens the database file directly, as the store left it; closes it after `use`. */
function withDatabase<T>(dataDir: string, use: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, STORE_FILE_NAME));
  try {
    return use(db);
  } finally {
    db.close();
  }
}

describe("the file store's format", () => {
  it("brings a store of format 1 to the current format, and reads the history rows that format 1 wrote", async () => {
    const dataDir = join(root, "format-1");
    const store = FileStore.open({ dataDir });
    const writes: ItemWrite[] = [
      write("g", "a", 0, "a1"), // 1
      write("g", "b", 0, "b1"), // 2
      write("g", "a", 1, "a2", 1), // 3
      write("g", "a", 2, undefined, 1), // 4: deletes the incarnation created at 1
      write("g", "a", 0, "a3"), // 5: a new incarnation
      write("g", "a", 1, "a4", 5), // 6
      write("g", "b", 1, "b2", 2), // 7
      write("emptied", "x", 0, "x"),
      write("emptied", "x", 1, undefined, 1),
    ];
    for (const next of writes) expect((await store.commit(next)).ok).toBe(true);
    await store.close();

    // What a store written by format 1 looks like: no non_empty_groups index, no
    // requests or outbox table, no item expiry, history rows without oldUpdatedAtMs and createdOffset.
    withDatabase(dataDir, (db) => {
      db.exec("DROP INDEX non_empty_groups");
      db.exec("DROP TABLE requests");
      db.exec("DROP INDEX items_by_expiry");
      db.exec("ALTER TABLE items DROP COLUMN expires_at_ms");
      db.exec("DROP TABLE outbox");
      for (const row of db.prepare("SELECT rowid, change FROM history").all() as Array<{ rowid: number; change: string }>) {
        const { oldUpdatedAtMs, createdOffset, ...older } = JSON.parse(row.change) as Record<string, unknown>;
        expect([typeof oldUpdatedAtMs === "number" || oldUpdatedAtMs === undefined, typeof createdOffset]).toStrictEqual([true, "number"]);
        db.prepare("UPDATE history SET change = ? WHERE rowid = ?").run(JSON.stringify(older), row.rowid);
      }
      db.pragma("user_version = 1");
    });

    const reopened = FileStore.open({ dataDir });
    try {
      const fields = async (afterOffset: number) =>
        (await reopened.changesSince("s", "g", afterOffset))!.map((change) => [change.offset, change.createdOffset, change.oldUpdatedAtMs]);
      // Every create tells its own; later changes follow the create before them; b was
      // created before and never deleted, so its change belongs to the b of now.
      expect(await fields(0)).toStrictEqual([
        [1, 1, undefined],
        [2, 2, undefined],
        [3, 1, undefined],
        [4, 1, undefined],
        [5, 5, undefined],
        [6, 5, undefined],
        [7, 2, undefined],
      ]);
      // From offset 2 on, nothing tells which a changes 3 and 4 were about: 0.
      expect((await fields(2)).map(([offset, createdOffset]) => [offset, createdOffset])).toStrictEqual([
        [3, 0],
        [4, 0],
        [5, 5],
        [6, 5],
        [7, 2],
      ]);
      expect(await reopened.listGroups("s", { after: undefined, limit: 10 })).toStrictEqual(["g"]);
      expect(await reopened.countGroups("s")).toBe(1);
      expect(await reopened.listStreams({ after: undefined, limit: 10 })).toStrictEqual(["s"]);
      const page = await reopened.readItems("s", "g", { afterCreatedOffset: 0, maxItems: 10, maxBytes: 1000 });
      expect(page.items.map((item) => [item.itemId, item.createdOffset])).toStrictEqual([
        ["b", 2],
        ["a", 5],
      ]);
      const next = await reopened.commit(write("g", "a", 2, "a5", 5));
      expect(next.ok && [next.change.createdOffset, next.change.oldUpdatedAtMs]).toStrictEqual([5, 101]);
      expect((await reopened.changesSince("s", "g", 7))!.map((change) => [change.createdOffset, change.oldUpdatedAtMs])).toStrictEqual([[5, 101]]);
    } finally {
      await reopened.close();
    }
    withDatabase(dataDir, (db) => {
      expect(db.pragma("user_version", { simple: true })).toBe(5);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'non_empty_groups'").all()).toHaveLength(1);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'requests'").all()).toHaveLength(1);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'items_by_expiry'").all()).toHaveLength(1);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").all()).toHaveLength(1);
    });
  });

  it("refuses a store of a newer format and leaves it as it was", async () => {
    const dataDir = join(root, "format-6");
    await FileStore.open({ dataDir }).close();
    withDatabase(dataDir, (db) => db.pragma("user_version = 6"));
    expect(() => FileStore.open({ dataDir })).toThrow(/format 6.*reads formats 1 to 5.*left untouched/);
    withDatabase(dataDir, (db) => expect(db.pragma("user_version", { simple: true })).toBe(6));
  });

  it("answers pages and listings with index searches, never a scan", async () => {
    const dataDir = join(root, "plans");
    await FileStore.open({ dataDir }).close();
    const plans = withDatabase(dataDir, (db) => {
      const sql = prepareStatements(db);
      const plan = (source: string, ...parameters: unknown[]) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...parameters) as Array<{ detail: string }>).map((row) => row.detail).join("; ");
      return {
        itemsAfter: plan(sql.itemsAfter.source, 1, 0, 10),
        groupsAfter: plan(sql.groupsAfter.source, "s", "", 10),
        countGroups: plan(sql.countGroups.source, "s"),
        nextStream: plan(sql.nextStream.source, ""),
        dueItems: plan(sql.dueItems.source, 1000, 10),
      };
    });
    expect(plans.itemsAfter).toMatch(/^SEARCH items USING INDEX items_in_order \(group_ref=\? AND position>\?\)$/);
    expect(plans.groupsAfter).toMatch(/^SEARCH stream_groups USING INDEX non_empty_groups \(stream_name=\? AND group_id>\?\)$/);
    expect(plans.countGroups).toMatch(/^SEARCH stream_groups USING (COVERING )?INDEX non_empty_groups \(stream_name=\?\)$/);
    expect(plans.nextStream).toMatch(/^SEARCH stream_groups USING (COVERING )?INDEX non_empty_groups \(stream_name>\?\)$/);
    expect(plans.dueItems).toMatch(/^SEARCH i USING INDEX items_by_expiry \((expires_at_ms>\? AND )?expires_at_ms<\?\); SEARCH g USING INTEGER PRIMARY KEY \(rowid=\?\)$/);
  });
});
