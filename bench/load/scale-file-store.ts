/**
 * Builds a file-adapter store of `items` items, `itemsPerGroup` to a group, for the
 * `scale` scenario's store-size rows (time to ready and memory of a server opening it).
 *
 * Ten million Sets through FileStore would take most of an hour; so the first group is
 * written through FileStore's port (ItemStore.commit, the writes a Set makes), and every
 * other group is a copy of its rows made in SQL: each table that refers to a group by
 * `group_ref` gets the first group's rows again under the new group's id, and the group
 * table a row like the first group's under the new name. The store then holds what
 * FileStore would have written for the same Sets (items, history, offsets, counts), but
 * for the group names and identical timestamps. Should the schema not have that shape
 * any more, every group is written through the port instead ("commit" in the result).
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { ItemStore } from "../../src/index.js";
import { loadBuiltPackage } from "./built-package.js";
import { finish, readJob } from "./load-io.js";
import { fillThroughPort, groupName, itemName } from "./port-fill.js";
import type { FileStoreJob, FileStoreResult } from "./scale-jobs.js";

/** The adapter's database file in the data directory (open-store.ts). */
const STORE_FILE = "iii-stream.db";
const GROUP_PREFIX = "store-";
/** Groups copied per transaction: a transaction per group would fsync ten thousand times, one for all would grow the WAL to the whole store. */
const GROUPS_PER_TRANSACTION = 100;

const job = readJob<FileStoreJob>();
const iii = await loadBuiltPackage();
const groups = Math.ceil(job.items / job.itemsPerGroup);
const plan = { streamName: job.streamName, groupPrefix: GROUP_PREFIX, itemsPerGroup: job.itemsPerGroup };
const started = performance.now();

const template = iii.openFileBackend({ dataDir: job.dataDir }).items;
await fillThroughPort(template, { ...plan, firstGroup: 0, groups: 1 });
await template.close();

let method: FileStoreResult["method"] = "clone";
const db = new Database(join(job.dataDir, STORE_FILE));
const cloner = groups > 1 ? prepareCloner(db) : () => undefined;
if (cloner === undefined) {
  method = "commit";
  db.close();
  const store = iii.openFileBackend({ dataDir: job.dataDir }).items;
  await fillThroughPort(store, { ...plan, firstGroup: 1, groups: groups - 1 });
  await store.close();
} else {
  // A prefill, not a write anyone was promised: the WAL reaches the disk at the checkpoint of close().
  db.pragma("synchronous = OFF");
  for (let first = 1; first < groups; first += GROUPS_PER_TRANSACTION) {
    db.transaction(() => {
      for (let group = first; group < Math.min(groups, first + GROUPS_PER_TRANSACTION); group++) cloner(groupName(GROUP_PREFIX, group));
    })();
  }
  db.close();
}

// The store must read back as FileStore sees it: the last group's last item, at the first group's offset.
const check = iii.openFileBackend({ dataDir: job.dataDir }).items;
const lastGroup = groupName(GROUP_PREFIX, groups - 1);
// A store that counts its groups must count the copies too (a count kept elsewhere than in the copied rows would not).
const counter = (check as Partial<Pick<ItemStore, "countGroups">>).countGroups?.bind(check);
const [item, offset, firstOffset, counted] = await Promise.all([
  check.getItem(job.streamName, lastGroup, itemName(job.itemsPerGroup - 1)),
  check.currentOffset(job.streamName, lastGroup),
  check.currentOffset(job.streamName, groupName(GROUP_PREFIX, 0)),
  counter ? counter(job.streamName) : groups,
]);
await check.close();
if (item === undefined || offset !== firstOffset || counted !== groups) {
  throw new Error(
    `the built store does not read back: last item ${item ? "found" : "missing"}, offset ${offset} vs ${firstOffset}, ${counted} groups counted of ${groups}`,
  );
}

const size = (name: string) => {
  try {
    return statSync(join(job.dataDir, name)).size;
  } catch {
    return 0;
  }
};
const result: FileStoreResult = {
  method,
  groups,
  items: groups * job.itemsPerGroup,
  ms: performance.now() - started,
  fileBytes: size(STORE_FILE) + size(`${STORE_FILE}-wal`),
};
await finish(result);

interface Column {
  name: string;
  type: string;
  pk: number;
}

/**
 * A function copying the first group under a new name, or undefined when the schema is
 * not one it understands: a group table with an integer `id` key and a `group_id`, and
 * tables whose `group_ref` refers to it.
 */
function prepareCloner(db: Database.Database): ((groupId: string) => void) | undefined {
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
  const columnsOf = (table: string) => db.prepare(`PRAGMA table_info(${JSON.stringify(table)})`).all() as Column[];
  const quote = (name: string) => JSON.stringify(name);
  const groupTable = tables.find((t) => {
    const columns = columnsOf(t);
    return columns.some((c) => c.name === "group_id") && columns.some((c) => c.name === "id" && c.pk === 1 && c.type.toUpperCase() === "INTEGER");
  });
  const referring = tables.filter((t) => columnsOf(t).some((c) => c.name === "group_ref"));
  if (groupTable === undefined || referring.length === 0) return undefined;
  const templateId = (db.prepare(`SELECT id FROM ${quote(groupTable)} WHERE group_id = ?`).get(groupName(GROUP_PREFIX, 0)) as { id: number } | undefined)?.id;
  if (templateId === undefined) return undefined;

  const groupColumns = columnsOf(groupTable).filter((c) => c.name !== "id").map((c) => c.name);
  const copyGroup = db.prepare(
    `INSERT INTO ${quote(groupTable)} (${groupColumns.map(quote).join(", ")}) ` +
      `SELECT ${groupColumns.map((c) => (c === "group_id" ? "@groupId" : quote(c))).join(", ")} FROM ${quote(groupTable)} WHERE id = @templateId`,
  );
  const copyRows = referring.map((table) => {
    const columns = columnsOf(table).map((c) => c.name);
    return db.prepare(
      `INSERT INTO ${quote(table)} (${columns.map(quote).join(", ")}) ` +
        `SELECT ${columns.map((c) => (c === "group_ref" ? "@groupRef" : quote(c))).join(", ")} FROM ${quote(table)} WHERE group_ref = @templateId`,
    );
  });
  return (groupId) => {
    const groupRef = Number(copyGroup.run({ groupId, templateId }).lastInsertRowid);
    for (const copy of copyRows) copy.run({ groupRef, templateId });
  };
}
