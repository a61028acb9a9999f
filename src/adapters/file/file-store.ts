import type Database from "better-sqlite3";
import type { JsonValue } from "../../core/json.js";
import { ErrorCode, StreamError } from "../../core/errors.js";
import { silentLog, type Log } from "../../core/log.js";
import type {
  BatchCommitResult,
  BatchWrite,
  CommitResult,
  DueExpiry,
  GroupListener,
  ItemStore,
  ItemStoreOptions,
  ItemWrite,
  StoredRequest,
  WriteBatch,
} from "../../core/item-store.js";
import type {
  GroupEvent,
  GroupMessage,
  GroupSnapshot,
  ItemChange,
  ItemPage,
  ItemPageRequest,
  NamePageRequest,
  StoredItem,
} from "../../core/model.js";
import { checkBatch, commitOne, DEFAULT_HISTORY_LIMIT, MAX_REQUESTS_PER_GROUP } from "../../core/item-store.js";
import { NO_METRICS, secondsSince, type Metrics } from "../../core/metrics.js";
import { updateOpsFromJson, updateOpsToJson } from "../../core/update-ops-json.js";
import { fillCreatedOffsets, type StoredChange } from "./legacy-changes.js";
import { openStore, probeWrite } from "./open-store.js";
import { RegistrationTable } from "./registration-table.js";
import { OutboxTable } from "./outbox-table.js";
import { outboxAdditions } from "../../core/outbox.js";
import { prepareStatements, type GroupRow, type ItemRow, type RequestRow, type Statements } from "./statements.js";
import { WriteHealth } from "./write-health.js";

export interface FileStoreOptions extends ItemStoreOptions {
  /** Directory of the store; created when missing. One process at a time may use it. */
  dataDir: string;
  /**
   * Relaxed durability. Unset (the default): a write is acknowledged only after its
   * commit is fsynced, so no acknowledged write is ever lost. Set: writes are
   * acknowledged once written to the OS and fsynced every `syncIntervalMs`; a crash of
   * the process still loses nothing, but a power loss or OS crash can lose the writes
   * of the last interval.
   */
  syncIntervalMs?: number;
}

type EventInput = Omit<GroupEvent, "kind" | "offset">;

/** A batch of writes or an event waiting for the next commit, and what it turned into. */
type Queued =
  | {
      kind: "batch";
      batch: WriteBatch;
      result?: BatchCommitResult;
      resolve: (result: BatchCommitResult) => void;
      reject: (error: Error) => void;
    }
  | {
      kind: "event";
      event: EventInput;
      stamped?: GroupEvent;
      resolve: (event: GroupEvent) => void;
      reject: (error: Error) => void;
    };

/**
 * Keeps everything in one SQLite database (WAL mode) in the data directory.
 *
 * Group commit: batches of writes are queued; once per event-loop turn, every queued
 * batch runs in one transaction with one fsync (a batch that fails its checks rolls
 * back alone, to its savepoint), and only then are the writes answered and their
 * changes handed to watchers, in queue order. The whole batch runs synchronously, so
 * reads never see a write before it is committed (durable, unless in relaxed mode), and
 * a snapshot never falls between a commit and the delivery of its changes. Events queue behind the writes before them,
 * so they never overtake a change that is still waiting for its commit.
 */
export class FileStore implements ItemStore {
  readonly name = "file";
  /** Every queued batch runs in queue order, inside one transaction per flush. */
  readonly commitsInQueueOrder = true;
  /** The database file, named in every storage error. */
  readonly file: string;
  /** Remote functions and triggers, kept in the same file so that they survive a restart too. */
  readonly registrations: RegistrationTable;
  /** The pending calls of `at_least_once` triggers, recorded in the commit of their change. */
  readonly outbox: OutboxTable;
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private readonly historyLimit: number;
  /** Whether the store can write, which is what readiness reports. */
  private readonly health: WriteHealth;
  private readonly log: Log;
  private readonly listeners = new Map<string, Set<GroupListener>>();
  private queue: Queued[] = [];
  /**
   * Request records per group, as counted inside committed transactions: counting the
   * rows on every commit would cost a scan of up to MAX_REQUESTS_PER_GROUP. Only this
   * process writes the file (it holds the lock), and a failed commit clears it.
   */
  private readonly requestCounts = new Map<number, number>();
  private flushHandle: NodeJS.Immediate | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  /** Relaxed mode: whether something was committed since the last sync. */
  private unsynced = false;
  private closed = false;
  private metrics: Metrics = NO_METRICS;

  /** Opens the store; fails with a StoreOpenError when it is locked, damaged or foreign. */
  static open(options: FileStoreOptions): FileStore {
    return new FileStore(options);
  }

  private constructor(options: FileStoreOptions) {
    const relaxed = options.syncIntervalMs !== undefined;
    const log = (this.log = options.log ?? silentLog);
    const { db, file, dataDir } = openStore({ dataDir: options.dataDir, relaxed });
    this.db = db;
    this.file = file;
    this.sql = prepareStatements(db);
    this.health = new WriteHealth(
      () => probeWrite(db, dataDir),
      (message) => log.warn(message, { data_dir: dataDir }),
    );
    this.registrations = new RegistrationTable(db, {
      failed: (error) => this.storageError(error),
      succeeded: () => this.health.succeeded(),
    });
    this.outbox = new OutboxTable(db, options.maxOutbox, (error) => this.storageError(error));
    this.historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    if (relaxed) {
      this.syncTimer = setInterval(() => this.syncIfNeeded(), options.syncIntervalMs);
      this.syncTimer.unref();
    }
  }

  async getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.read(() => {
      const group = this.sql.group.get(streamName, groupId);
      const row = group && this.sql.item.get(group.id, itemId);
      return row ? storedItem(row) : undefined;
    });
  }

  commit(write: ItemWrite): Promise<CommitResult> {
    return commitOne(this, write);
  }

  commitBatch(batch: WriteBatch): Promise<BatchCommitResult> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "batch", batch, resolve, reject }));
  }

  async findRequest(streamName: string, groupId: string, requestId: string, nowMs: number): Promise<StoredRequest | undefined> {
    return this.read(() => {
      const group = this.sql.group.get(streamName, groupId);
      return group && this.liveRequest(group.id, requestId, nowMs);
    });
  }

  publishEvent(event: EventInput): Promise<GroupEvent> {
    if (this.queue.length > 0) {
      return new Promise((resolve, reject) => this.enqueue({ kind: "event", event, resolve, reject }));
    }
    // Nothing is waiting for a commit, so the event can go out now.
    return this.read(() => {
      const stamped = this.stamp(event);
      this.emit(stamped);
      return stamped;
    });
  }

  async snapshotItem(streamName: string, groupId: string, itemId: string): Promise<GroupSnapshot> {
    return this.read(() => {
      const group = this.sql.group.get(streamName, groupId);
      if (!group) return { items: [], offset: 0 };
      const row = this.sql.item.get(group.id, itemId);
      return { items: row ? [storedItem(row)] : [], offset: group.last_offset };
    });
  }

  /** One synchronous read: no batch can commit between reading the offset and the items. */
  async readItems(streamName: string, groupId: string, request: ItemPageRequest): Promise<ItemPage> {
    return this.read(() => {
      const group = this.sql.group.get(streamName, groupId);
      if (!group) return { items: [], offset: 0, more: false };
      const items: StoredItem[] = [];
      let bytes = 0;
      let more = false;
      // One row beyond the page tells whether more follow.
      for (const row of this.sql.itemsAfter.iterate(group.id, request.afterCreatedOffset, request.maxItems + 1)) {
        if (items.length > 0 && (items.length >= request.maxItems || bytes >= request.maxBytes)) {
          more = true;
          break;
        }
        items.push(storedItem(row));
        // The stored text is the value's JSON text: its length is the size the port defines.
        bytes += row.data.length + row.item_id.length;
      }
      return { items, offset: group.last_offset, more };
    });
  }

  async currentOffset(streamName: string, groupId: string): Promise<number> {
    return this.read(() => this.sql.group.get(streamName, groupId)?.last_offset ?? 0);
  }

  async changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined> {
    return this.read(() => {
      const group = this.sql.group.get(streamName, groupId);
      const current = group?.last_offset ?? 0;
      if (afterOffset > current) return undefined;
      if (afterOffset === current) return [];
      const rows = this.sql.changesAfter.all(group!.id, afterOffset);
      // Trimmed (or cleared when the group emptied): the history cannot fill the gap.
      if (rows.length === 0 || rows[0].change_offset !== afterOffset + 1) return undefined;
      const changes = rows.map((row) => ({ offset: row.change_offset, stored: JSON.parse(row.change) as StoredChange }));
      if (changes.some((change) => change.stored.createdOffset === undefined)) {
        fillCreatedOffsets(changes, (itemId) => this.sql.item.get(group!.id, itemId)?.position);
      }
      return changes.map((change) => itemChange(streamName, groupId, change.offset, change.stored));
    });
  }

  async dueExpiries(nowMs: number, limit: number): Promise<DueExpiry[]> {
    return this.read(() =>
      this.sql.dueItems.all(nowMs, limit).map((row) => ({
        streamName: row.stream_name,
        groupId: row.group_id,
        itemId: row.item_id,
        expiresAtMs: row.expires_at_ms,
      })),
    );
  }

  async listGroups(streamName: string, page: NamePageRequest): Promise<string[]> {
    return this.read(() => this.sql.groupsAfter.all(streamName, page.after ?? "", page.limit).map((row) => row.group_id));
  }

  async countGroups(streamName: string): Promise<number> {
    return this.read(() => this.sql.countGroups.get(streamName)!.n);
  }

  async listStreams(page: NamePageRequest): Promise<string[]> {
    return this.read(() => {
      const names: string[] = [];
      let after = page.after ?? "";
      while (names.length < page.limit) {
        const next = this.sql.nextStream.get(after)?.stream_name;
        if (next === undefined) break;
        names.push(next);
        after = next;
      }
      return names;
    });
  }

  async watch(streamName: string, groupId: string, listener: GroupListener): Promise<() => void> {
    const key = groupKey(streamName, groupId);
    let listeners = this.listeners.get(key);
    if (!listeners) {
      listeners = new Set();
      this.listeners.set(key, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.listeners.get(key) === listeners) this.listeners.delete(key);
    };
  }

  /**
   * False once a write failed for a storage reason (disk full, I/O error, read-only
   * filesystem), until a later write or the periodic probe succeeds; see WriteHealth.
   */
  isReady(): boolean {
    return !this.closed && this.health.healthy;
  }

  useMetrics(metrics: Metrics): void {
    this.metrics = metrics;
  }

  /** Commits what is queued, makes it durable and closes the file (which releases the lock). */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushHandle) {
      clearImmediate(this.flushHandle);
      this.flush();
    }
    clearInterval(this.syncTimer);
    this.health.stop();
    this.outbox.flush();
    this.closed = true;
    this.listeners.clear();
    // Closing checkpoints the WAL into the database file with fsyncs, in both modes.
    this.db.close();
  }

  private enqueue(entry: Queued): void {
    if (this.closed) {
      entry.reject(closedError());
      return;
    }
    this.queue.push(entry);
    this.flushHandle ??= setImmediate(() => this.flush());
  }

  /**
   * Runs every queued write in one transaction (one fsync), then answers them and
   * delivers their changes and the queued events, in queue order. A failed commit
   * fails every write of the batch: none of them was acknowledged, none is kept.
   */
  private flush(): void {
    this.flushHandle = undefined;
    const batch = this.queue;
    this.queue = [];
    const start = performance.now();
    try {
      this.db.transaction(() => {
        for (const entry of batch) {
          if (entry.kind === "batch") entry.result = this.apply(entry.batch);
          else entry.stamped = this.stamp(entry.event);
        }
      })();
      this.outbox.settled(true);
      this.unsynced = true;
      // One transaction, one fsync (unless relaxed): the batch is the unit of commit.
      this.metrics.committed(this.name, countWrites(batch), secondsSince(start));
      // Only a batch that changed something wrote to the disk; refused writes and
      // events alone commit nothing and prove nothing.
      if (batch.some((entry) => entry.kind === "batch" && entry.result?.ok)) this.health.succeeded();
    } catch (error) {
      this.outbox.settled(false);
      this.requestCounts.clear();
      const failure = this.storageError(error);
      for (const entry of batch) {
        if (entry.kind === "batch") {
          entry.result = undefined;
          entry.reject(failure);
        } else {
          // The offsets it was stamped with inside the transaction were rolled back.
          entry.stamped = undefined;
        }
      }
    }
    for (const entry of batch) this.settle(entry);
  }

  private settle(entry: Queued): void {
    try {
      if (entry.kind === "batch") {
        if (!entry.result) return;
        if (entry.result.ok) for (const change of entry.result.changes) this.emit(change);
        entry.resolve(entry.result);
      } else {
        const stamped = entry.stamped ?? this.stamp(entry.event);
        this.emit(stamped);
        entry.resolve(stamped);
      }
    } catch (error) {
      entry.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * One batch of writes, inside the transaction of the queued batches: all its checks
   * first, so that a refused batch writes nothing.
   */
  private apply(batch: WriteBatch): BatchCommitResult {
    let group = this.sql.group.get(batch.streamName, batch.groupId);
    const { request } = batch;
    if (group && request) {
      const known = this.liveRequest(group.id, request.requestId, batch.timestampMs);
      if (known) return { ok: false, reason: "duplicate", request: known };
    }
    // The rows the checks read, so that each item's first write does not read its row again.
    const rows = new Map<string, ItemRow | undefined>();
    const refused = checkBatch(batch.writes, (itemId) => {
      const row = group && this.sql.item.get(group.id, itemId);
      rows.set(itemId, row);
      return row && { revision: row.revision, createdOffset: row.position };
    });
    if (refused) return refused;
    const calls = outboxAdditions(batch.writes);
    const outboxFull = calls && this.outbox.full(calls);
    if (outboxFull) return { ok: false, reason: "outbox_full", triggerId: outboxFull };
    group ??= this.createGroup(batch.streamName, batch.groupId);
    const state = { ...group };
    const changes = batch.writes.map((write) => {
      const existing = rows.has(write.itemId) ? rows.get(write.itemId) : this.sql.item.get(state.id, write.itemId);
      // A later write of the same item reads the row this one leaves.
      rows.delete(write.itemId);
      return this.applyWrite(batch, state, write, existing);
    });
    if (state.item_count > 0) this.sql.trimHistory.run(group.id, state.last_offset - this.historyLimit);
    if (calls) batch.writes.forEach((write, index) => write.outbox && this.outbox.record(write.outbox, changes[index]));
    if (state.item_count === group.item_count) this.sql.advanceGroup.run(state.last_offset, group.id);
    else this.sql.updateGroup.run(state.last_offset, state.item_count, group.id);
    if (request) this.remember(group.id, { ...request, offset: state.last_offset }, batch.timestampMs);
    return { ok: true, changes, offset: state.last_offset };
  }

  /** One write whose check passed; advances `group` (written to its row once, after the batch). */
  private applyWrite(batch: WriteBatch, group: GroupRow, write: BatchWrite, existing: ItemRow | undefined): ItemChange {
    const currentRevision = existing?.revision ?? 0;
    const timestampMs = batch.timestampMs;
    const offset = ++group.last_offset;
    let stored: StoredChange;
    if (write.value === undefined) {
      const removed = JSON.parse(existing!.data) as JsonValue;
      this.sql.deleteItem.run(group.id, write.itemId);
      group.item_count--;
      stored = {
        type: "delete",
        itemId: write.itemId,
        data: removed,
        oldValue: removed,
        oldUpdatedAtMs: existing!.updated_at_ms,
        createdOffset: existing!.position,
        revision: currentRevision,
        timestampMs,
        ...(write.expired ? { expired: true } : {}),
      };
    } else {
      const revision = currentRevision + 1;
      const data = JSON.stringify(write.value);
      const expiresAt = write.expiresAtMs ?? null;
      if (existing) {
        this.sql.updateItem.run(revision, timestampMs, data, expiresAt, group.id, write.itemId);
      } else {
        this.sql.insertItem.run(group.id, write.itemId, offset, revision, timestampMs, data, expiresAt);
        group.item_count++;
      }
      stored = {
        type: existing ? "update" : "create",
        itemId: write.itemId,
        data: write.value,
        oldValue: existing ? (JSON.parse(existing.data) as JsonValue) : undefined,
        oldUpdatedAtMs: existing?.updated_at_ms,
        createdOffset: existing?.position ?? offset,
        revision,
        timestampMs,
      };
      if (existing && write.ops) stored.ops = updateOpsToJson(write.ops);
    }
    this.recordHistory(group.id, offset, group.item_count, stored);
    return itemChange(batch.streamName, batch.groupId, offset, stored);
  }

  private liveRequest(groupRef: number, requestId: string, nowMs: number): StoredRequest | undefined {
    const row = this.sql.request.get(groupRef, requestId);
    return row && row.expires_at_ms > nowMs ? storedRequest(row) : undefined;
  }

  /**
   * Records a request, forgetting the group's expired ones and the oldest beyond the
   * bound. The group's count of records is counted once and then kept (see requestCounts).
   */
  private remember(groupRef: number, request: StoredRequest, nowMs: number): void {
    let count = this.requestCounts.get(groupRef) ?? this.sql.countRequests.get(groupRef)!.n;
    count -= this.sql.dropExpiredRequests.run(groupRef, nowMs).changes;
    // Always a new row: a live record of the id refused the batch, and an expired one was just dropped.
    this.sql.insertRequest.run(groupRef, request.requestId, request.fingerprint, request.response, request.offset, request.expiresAtMs);
    count++;
    if (count > MAX_REQUESTS_PER_GROUP) count -= this.sql.dropOldestRequests.run(groupRef, groupRef, count - MAX_REQUESTS_PER_GROUP).changes;
    this.requestCounts.set(groupRef, count);
  }

  /** An emptied group drops its history; otherwise the change is kept (the batch trims the oldest beyond the limit once, in apply). */
  private recordHistory(groupRef: number, offset: number, itemCount: number, stored: StoredChange): void {
    if (itemCount === 0) {
      this.sql.clearHistory.run(groupRef);
      return;
    }
    if (this.historyLimit > 0) this.sql.appendChange.run(groupRef, offset, JSON.stringify(stored));
  }

  private createGroup(streamName: string, groupId: string): GroupRow {
    const { lastInsertRowid } = this.sql.insertGroup.run(streamName, groupId);
    return { id: Number(lastInsertRowid), last_offset: 0, item_count: 0 };
  }

  /** The event with its group's offset as this connection sees it (inside a batch: with the batch's changes). */
  private stamp(event: EventInput): GroupEvent {
    const offset = this.sql.group.get(event.streamName, event.groupId)?.last_offset ?? 0;
    return { kind: "event", ...event, offset };
  }

  private emit(message: GroupMessage): void {
    const listeners = this.listeners.get(groupKey(message.streamName, message.groupId));
    if (listeners) for (const listener of listeners) listener(message);
  }

  /** Relaxed mode: a checkpoint fsyncs the WAL (then copies it into the database file). */
  private syncIfNeeded(): void {
    if (!this.unsynced || this.closed) return;
    this.unsynced = false;
    try {
      this.db.pragma("wal_checkpoint(PASSIVE)");
    } catch (error) {
      this.unsynced = true;
      this.log.warn("a periodic fsync failed; retried at the next interval", { error: this.storageError(error).message });
    }
  }

  private async read<T>(query: () => T): Promise<T> {
    if (this.closed) throw closedError();
    try {
      return query();
    } catch (error) {
      throw this.storageError(error);
    }
  }

  /** The error a caller gets; a failure of the storage itself also turns readiness off. */
  private storageError(error: unknown): StreamError {
    if (error instanceof StreamError) return error;
    const failure = new StreamError(ErrorCode.Unavailable, `the store ${this.file} failed: ${(error as Error).message}`);
    this.health.failed(error, failure.message);
    return failure;
  }
}

function storedRequest(row: RequestRow): StoredRequest {
  return {
    requestId: row.request_id,
    fingerprint: row.fingerprint,
    response: row.response,
    offset: row.commit_offset,
    expiresAtMs: row.expires_at_ms,
  };
}

/** How many writes the queued batches carry, for the commit metrics. */
function countWrites(queue: Queued[]): number {
  let writes = 0;
  for (const entry of queue) if (entry.kind === "batch") writes += entry.batch.writes.length;
  return writes;
}

function storedItem(row: ItemRow): StoredItem {
  return {
    itemId: row.item_id,
    data: JSON.parse(row.data) as JsonValue,
    revision: row.revision,
    createdOffset: row.position,
    updatedAtMs: row.updated_at_ms,
    ...(row.expires_at_ms === null ? {} : { expiresAtMs: row.expires_at_ms }),
  };
}

/** The change a history row (or a commit) describes; `createdOffset` is known by now (see legacy-changes.ts). */
function itemChange(streamName: string, groupId: string, offset: number, stored: StoredChange): ItemChange {
  return {
    kind: "change",
    streamName,
    groupId,
    type: stored.type,
    itemId: stored.itemId,
    data: stored.data,
    oldValue: stored.oldValue,
    oldUpdatedAtMs: stored.oldUpdatedAtMs,
    createdOffset: stored.createdOffset ?? offset,
    revision: stored.revision,
    offset,
    timestampMs: stored.timestampMs,
    ...(stored.ops ? { ops: updateOpsFromJson(stored.ops) } : {}),
    ...(stored.expired ? { expired: true } : {}),
  };
}

function groupKey(streamName: string, groupId: string): string {
  return JSON.stringify([streamName, groupId]);
}

function closedError(): StreamError {
  return new StreamError(ErrorCode.Unavailable, "the store is closed");
}
