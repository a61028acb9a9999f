import type Database from "better-sqlite3";

export interface GroupRow {
  id: number;
  last_offset: number;
  item_count: number;
}

export interface ItemRow {
  item_id: string;
  position: number;
  revision: number;
  updated_at_ms: number;
  data: string;
  /** NULL: the item never expires. */
  expires_at_ms: number | null;
}

export interface DueRow {
  stream_name: string;
  group_id: string;
  item_id: string;
  expires_at_ms: number;
}

export interface ChangeRow {
  change_offset: number;
  change: string;
}

export interface RequestRow {
  request_id: string;
  fingerprint: string;
  response: string;
  commit_offset: number;
  expires_at_ms: number;
}

const ITEM_COLUMNS = "item_id, position, revision, updated_at_ms, data, expires_at_ms";

/** Every statement the adapter runs, prepared once when the store opens. @internal */
export function prepareStatements(db: Database.Database) {
  return {
    group: db.prepare<[string, string], GroupRow>(
      "SELECT id, last_offset, item_count FROM stream_groups WHERE stream_name = ? AND group_id = ?",
    ),
    insertGroup: db.prepare<[string, string]>(
      "INSERT INTO stream_groups (stream_name, group_id, last_offset, item_count) VALUES (?, ?, 0, 0)",
    ),
    /** For a create or a delete: the item count changes, and with it maybe the group's place in `non_empty_groups`. */
    updateGroup: db.prepare<[number, number, number]>(
      "UPDATE stream_groups SET last_offset = ?, item_count = ? WHERE id = ?",
    ),
    /** For an overwrite: leaves `item_count` alone, so that no index needs updating. */
    advanceGroup: db.prepare<[number, number]>("UPDATE stream_groups SET last_offset = ? WHERE id = ?"),
    // The `item_count > 0` term lets SQLite use the partial index non_empty_groups; names
    // are never empty, so '' as `after` starts at the first. BINARY collation compares
    // the UTF-8 bytes, the order compareBytes defines.
    groupsAfter: db.prepare<[string, string, number], { group_id: string }>(
      "SELECT group_id FROM stream_groups WHERE stream_name = ? AND item_count > 0 AND group_id > ? ORDER BY group_id LIMIT ?",
    ),
    countGroups: db.prepare<[string], { n: number }>(
      "SELECT count(*) AS n FROM stream_groups WHERE stream_name = ? AND item_count > 0",
    ),
    /** One seek in non_empty_groups per stream, however many groups each stream has. */
    nextStream: db.prepare<[string], { stream_name: string }>(
      "SELECT stream_name FROM stream_groups WHERE item_count > 0 AND stream_name > ? ORDER BY stream_name LIMIT 1",
    ),

    item: db.prepare<[number, string], ItemRow>(`SELECT ${ITEM_COLUMNS} FROM items WHERE group_ref = ? AND item_id = ?`),
    /** A range of items_in_order: a page starts with a seek, whatever its place in the group. */
    itemsAfter: db.prepare<[number, number, number], ItemRow>(
      `SELECT ${ITEM_COLUMNS} FROM items WHERE group_ref = ? AND position > ? ORDER BY position LIMIT ?`,
    ),
    insertItem: db.prepare<[number, string, number, number, number, string, number | null]>(
      "INSERT INTO items (group_ref, item_id, position, revision, updated_at_ms, data, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    updateItem: db.prepare<[number, number, string, number | null, number, string]>(
      "UPDATE items SET revision = ?, updated_at_ms = ?, data = ?, expires_at_ms = ? WHERE group_ref = ? AND item_id = ?",
    ),
    /** A range of items_by_expiry, earliest first. */
    dueItems: db.prepare<[number, number], DueRow>(
      "SELECT g.stream_name, g.group_id, i.item_id, i.expires_at_ms FROM items i JOIN stream_groups g ON g.id = i.group_ref " +
        "WHERE i.expires_at_ms IS NOT NULL AND i.expires_at_ms <= ? ORDER BY i.expires_at_ms LIMIT ?",
    ),
    deleteItem: db.prepare<[number, string]>("DELETE FROM items WHERE group_ref = ? AND item_id = ?"),

    appendChange: db.prepare<[number, number, string]>(
      "INSERT INTO history (group_ref, change_offset, change) VALUES (?, ?, ?)",
    ),
    /** Drops the changes at or below an offset; the index makes it a short range delete. */
    trimHistory: db.prepare<[number, number]>("DELETE FROM history WHERE group_ref = ? AND change_offset <= ?"),
    clearHistory: db.prepare<[number]>("DELETE FROM history WHERE group_ref = ?"),
    changesAfter: db.prepare<[number, number], ChangeRow>(
      "SELECT change_offset, change FROM history WHERE group_ref = ? AND change_offset > ? ORDER BY change_offset",
    ),

    request: db.prepare<[number, string], RequestRow>(
      "SELECT request_id, fingerprint, response, commit_offset, expires_at_ms FROM requests WHERE group_ref = ? AND request_id = ?",
    ),
    /** INSERT OR REPLACE: an expired record of the same id may still be there. */
    insertRequest: db.prepare<[number, string, string, string, number, number]>(
      "INSERT OR REPLACE INTO requests (group_ref, request_id, fingerprint, response, commit_offset, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    /** A range of requests_by_expiry. */
    dropExpiredRequests: db.prepare<[number, number]>("DELETE FROM requests WHERE group_ref = ? AND expires_at_ms <= ?"),
    countRequests: db.prepare<[number], { n: number }>("SELECT count(*) AS n FROM requests WHERE group_ref = ?"),
    dropOldestRequests: db.prepare<[number, number, number]>(
      "DELETE FROM requests WHERE group_ref = ? AND request_id IN " +
        "(SELECT request_id FROM requests WHERE group_ref = ? ORDER BY expires_at_ms LIMIT ?)",
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
