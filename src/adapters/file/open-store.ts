import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";

/** The one database file inside the data directory (SQLite adds `-wal` beside it). */
export const STORE_FILE_NAME = "iii-stream.db";

/** Written and removed by the write probe; never holds anything of value. */
export const PROBE_FILE_NAME = "iii-stream.probe";

/**
 * What the probe writes: room for a write of the largest value the server takes by
 * default. Random bytes, so that a compressing filesystem cannot store it in less.
 */
const PROBE_BYTES = 1024 * 1024;
let probeData: Buffer | undefined;

/** Marks the file as ours in the SQLite header ("iiSt"), so a foreign database is never taken over. */
const APPLICATION_ID = 0x69695374;
/** Format 2 added the `non_empty_groups` index, format 3 the `requests` table, format 4 item expiry, format 5 the trigger `outbox` (see MIGRATIONS). */
const SCHEMA_VERSION = 5;

/**
 * `stream_groups` keeps one row per group ever written, on purpose: after the group empties,
 * its `last_offset` is the only thing left, so offsets never repeat. Items and history
 * refer to it by `id`, which keeps their keys short.
 *
 * `position` is the offset of the change that created the item, so ordering by it is
 * insertion order: overwriting keeps it, delete and re-create gets a new one. Pages of
 * items are ranges of `items_in_order`.
 *
 * `non_empty_groups` holds only the groups that have items, so that listing groups and
 * streams, and counting a stream's groups, never step over the rows that emptied groups
 * leave behind. Its condition only involves `item_count`, which a plain overwrite does
 * not set, so the index costs nothing on the most common write.
 */
const NON_EMPTY_GROUPS_INDEX = "CREATE INDEX non_empty_groups ON stream_groups (stream_name, group_id) WHERE item_count > 0;";

/**
 * `requests` remembers the requests that carried a request id, per group, so that a
 * retry answers the same without writing again (see RequestRecord). Expired rows and
 * the oldest beyond the bound are deleted by the commits of the same group.
 */
const REQUESTS_TABLE = `
  CREATE TABLE requests (
    group_ref INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response TEXT NOT NULL,
    commit_offset INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_ref, request_id)
  ) WITHOUT ROWID;
  CREATE INDEX requests_by_expiry ON requests (group_ref, expires_at_ms);
`;

/**
 * The pending calls (and dead letters, `dead = 1`) of `at_least_once` triggers, recorded
 * in the commit of their change (see outbox-table.ts). AUTOINCREMENT: an entry id is never
 * reused, so reading on from the last id taken never skips a newer call.
 */
const OUTBOX_TABLE = `
  CREATE TABLE outbox (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    change TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    dead INTEGER NOT NULL
  );
  CREATE INDEX outbox_by_trigger ON outbox (trigger_id, dead, entry_id);
`;

/**
 * `items.expires_at_ms` is NULL for an item that never expires; `items_by_expiry` holds
 * only the others, so the sweeper finds the due items with one range read however many
 * items never expire, and a write without expiry costs no index update.
 */
const ITEMS_BY_EXPIRY_INDEX = "CREATE INDEX items_by_expiry ON items (expires_at_ms) WHERE expires_at_ms IS NOT NULL;";

const SCHEMA = `
  CREATE TABLE stream_groups (
    id INTEGER PRIMARY KEY,
    stream_name TEXT NOT NULL,
    group_id TEXT NOT NULL,
    last_offset INTEGER NOT NULL,
    item_count INTEGER NOT NULL,
    UNIQUE (stream_name, group_id)
  );
  CREATE TABLE items (
    group_ref INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    data TEXT NOT NULL,
    expires_at_ms INTEGER
  );
  CREATE UNIQUE INDEX items_by_id ON items (group_ref, item_id);
  CREATE INDEX items_in_order ON items (group_ref, position);
  CREATE TABLE history (
    group_ref INTEGER NOT NULL,
    change_offset INTEGER NOT NULL,
    change TEXT NOT NULL
  );
  CREATE UNIQUE INDEX history_by_offset ON history (group_ref, change_offset);
  ${NON_EMPTY_GROUPS_INDEX}
  ${REQUESTS_TABLE}
  ${ITEMS_BY_EXPIRY_INDEX}
  ${OUTBOX_TABLE}
  CREATE TABLE registrations (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, id)
  ) WITHOUT ROWID;
`;

const TABLES = ["stream_groups", "items", "history", "registrations"];

/**
 * What brings a store of format N - 1 to format N (the key), run in one transaction
 * when an older store is opened. Older code refuses a newer store (checkSchema), so a
 * store is never written by a version that does not know its format.
 */
const MIGRATIONS: Record<number, string> = {
  // History rows written by format 1 lack oldUpdatedAtMs and createdOffset: they are
  // read as they are (see legacy-changes.ts) and give way to complete rows as each
  // group's history moves on, so no rewrite of the history is needed here.
  2: NON_EMPTY_GROUPS_INDEX,
  3: REQUESTS_TABLE,
  // Items of older formats never expire: NULL is what the new column holds for them.
  4: `ALTER TABLE items ADD COLUMN expires_at_ms INTEGER; ${ITEMS_BY_EXPIRY_INDEX}`,
  5: OUTBOX_TABLE,
};

/** The store cannot be opened; the message names the file and what to do. */
export class StoreOpenError extends Error {
  override readonly name = "StoreOpenError";
}

export interface OpenStoreOptions {
  dataDir: string;
  /** Relaxed durability: commits skip their fsync (see FileStoreOptions.syncIntervalMs). */
  relaxed: boolean;
}

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive
 * `mkdirSync` never returns on some paths (under /proc it retries forever, a core
 * spinning and signals unanswered); walking the levels ends after one try each, and
 * the first that fails says why.
 */
function makeDirectory(dir: string): void {
  const levels: string[] = [];
  for (let level = dir; level !== dirname(level); level = dirname(level)) levels.unshift(level);
  for (const level of levels) {
    try {
      mkdirSync(level);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && isDirectory(level)) continue;
      const reason = code === "EEXIST" ? `${level} exists and is not a directory` : (error as Error).message;
      throw new StoreOpenError(`cannot create the data directory ${dir}: ${reason}`);
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Opens (or creates) the store in `dataDir` and takes its lock for the life of the
 * connection. A locked, damaged or foreign file fails with a StoreOpenError and is
 * left exactly as it was.
 */
export function openStore(options: OpenStoreOptions): { db: Database.Database; file: string; dataDir: string } {
  const dataDir = resolve(options.dataDir);
  const file = join(dataDir, STORE_FILE_NAME);
  makeDirectory(dataDir);
  let db: Database.Database;
  try {
    // timeout 0: a lock held by another process is reported at once, not waited for.
    db = new Database(file, { timeout: 0 });
  } catch (error) {
    throw describeOpenError(error, file, dataDir);
  }
  try {
    // EXCLUSIVE: the connection keeps the file locked until it closes, so a second
    // server on the same directory fails at start. The kernel drops the lock when a
    // process dies, so a kill -9 leaves no stale lock behind.
    db.pragma("locking_mode = EXCLUSIVE");
    // The first read, before anything is written: a damaged or foreign file is
    // refused here and stays byte for byte as it was.
    const fresh = isEmpty(db);
    const version = fresh ? SCHEMA_VERSION : checkSchema(db, file);
    configure(db, options.relaxed);
    if (fresh) createSchema(db, dataDir);
    else if (version < SCHEMA_VERSION) migrate(db, version);
  } catch (error) {
    db.close();
    throw error instanceof StoreOpenError ? error : describeOpenError(error, file, dataDir);
  }
  return { db, file, dataDir };
}

/**
 * Throws unless the store can write now: a file of PROBE_BYTES in the data directory,
 * written, fsynced and removed (the filesystem has space and takes writes), then one
 * committed write to the database itself (its file and log take writes). The database
 * write rewrites the format number with its own value, so the store's content is
 * unchanged.
 */
export function probeWrite(db: Database.Database, dataDir: string): void {
  const path = join(dataDir, PROBE_FILE_NAME);
  probeData ??= randomBytes(PROBE_BYTES);
  let fd: number | undefined;
  try {
    fd = openSync(path, "w");
    // A short write is the filesystem running out of space part way.
    if (writeSync(fd, probeData) < probeData.length) throw new Error(`${path}: short write`);
    fsyncSync(fd);
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // Never created (the directory refused it): nothing to remove.
    }
  }
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

function configure(db: Database.Database, relaxed: boolean): void {
  db.pragma("journal_mode = WAL");
  // FULL: every commit fsyncs the WAL, so a commit that returned is on disk.
  // NORMAL (relaxed mode): commits are written but synced only at checkpoints.
  db.pragma(`synchronous = ${relaxed ? "NORMAL" : "FULL"}`);
  // 32 MiB of page cache: lookups in a store of a million items stay off the disk
  // for the hot part; pages are only allocated when touched.
  db.pragma("cache_size = -32768");
  // The WAL is reused after each checkpoint; a burst of large values must not leave
  // it at its peak size for good.
  db.pragma("journal_size_limit = 67108864");
  // A write transaction takes the exclusive lock now rather than at the first write.
  db.exec("BEGIN IMMEDIATE; COMMIT");
}

function isEmpty(db: Database.Database): boolean {
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number };
  return tables.n === 0 && db.pragma("application_id", { simple: true }) === 0;
}

function createSchema(db: Database.Database, dataDir: string): void {
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
  // The new file's directory entry must be durable too, or a power loss could leave
  // committed writes in a WAL whose database file vanished.
  const dirFd = openSync(dataDir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Brings an older store to the current format, all steps in one transaction. */
function migrate(db: Database.Database, from: number): void {
  db.transaction(() => {
    for (let version = from + 1; version <= SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version]);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/** Refuses a foreign, damaged or newer store; returns the format of one this version can open. */
function checkSchema(db: Database.Database, file: string): number {
  const applicationId = db.pragma("application_id", { simple: true });
  if (applicationId !== APPLICATION_ID) {
    throw new StoreOpenError(
      `${file} is an SQLite database of another application (application_id ${String(applicationId)}), not an ` +
        `iii-stream store; it was left untouched: choose another data directory`,
    );
  }
  const version = db.pragma("user_version", { simple: true });
  if (typeof version !== "number" || version < 1 || version > SCHEMA_VERSION) {
    throw new StoreOpenError(
      `${file} has store format ${String(version)}, this version of iii-stream reads formats 1 to ${SCHEMA_VERSION}; ` +
        `it was left untouched`,
    );
  }
  const present = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((row) => row.name),
  );
  const expected = version >= 3 ? [...TABLES, "requests"] : TABLES;
  const missing = expected.filter((table) => !present.has(table));
  if (missing.length > 0) {
    throw new StoreOpenError(`${file} is damaged: table ${missing.join(", ")} is missing; it was left untouched`);
  }
  return version;
}

function describeOpenError(error: unknown, file: string, dataDir: string): StoreOpenError {
  const code = (error as { code?: string }).code ?? "";
  const message = (error as Error).message;
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
    return new StoreOpenError(
      `another process is using the data directory ${dataDir} (${file} is locked): ` +
        `stop that process or choose another data directory`,
    );
  }
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return new StoreOpenError(
      `${file} is damaged or not an iii-stream store (${message}); it was left untouched: ` +
        `restore it from a backup, or move it away to start with an empty store`,
    );
  }
  return new StoreOpenError(`cannot open the store ${file}: ${message}`);
}
