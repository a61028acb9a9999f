import type Database from "better-sqlite3";
import type { ItemChange } from "../../core/model.js";
import {
  DEFAULT_MAX_OUTBOX,
  deliveryIdOf,
  outboxChangeText,
  outboxFullError,
  type OutboxCounts,
  type PendingCall,
  type ScheduledCall,
  type TriggerOutbox,
} from "../../core/outbox.js";

interface OutboxRow {
  entry_id: number;
  trigger_id: string;
  delivery_id: string;
  change: string;
  attempts: number;
  last_error: string;
}

const COLUMNS = "entry_id, trigger_id, delivery_id, change, attempts, last_error";

/** One change to the table that may wait for the next batch (see TriggerOutbox: losing it only repeats a call). */
type LazyWrite = () => void;

/**
 * The outbox of the file store, in its `outbox` table. A commit adds its calls inside the
 * store's batch transaction (`record`), so a write acknowledged to its client has its
 * calls on disk with it. What delivery does to them afterwards (done, retried, dead) is
 * applied in batches, one transaction per event-loop turn: a crash that loses one only
 * makes a call come again. One process owns the file, so this instance owns every trigger;
 * pending counts are kept in memory (loaded at open), which makes the bound check of a
 * commit a map lookup.
 */
export class OutboxTable implements TriggerOutbox {
  private readonly sql;
  /** Pending calls per trigger. */
  private readonly pending = new Map<string, number>();
  /** Per trigger, the last entry taken: `take` reads on from it. */
  private readonly cursors = new Map<string, number>();
  private lazy: LazyWrite[] = [];
  /** Triggers given a call in the store's transaction now running, for `settled`. */
  private uncommitted: string[] = [];
  private flushHandle: NodeJS.Immediate | undefined;

  constructor(
    private readonly db: Database.Database,
    readonly maxPending: number = DEFAULT_MAX_OUTBOX,
    /** Turns an SQLite failure into the store's error (and its readiness off). */
    private readonly failed: (error: unknown) => Error,
  ) {
    this.sql = {
      insert: db.prepare<[string, string, string]>("INSERT INTO outbox (trigger_id, delivery_id, change, attempts, last_error, dead) VALUES (?, ?, ?, 0, '', 0)"),
      after: db.prepare<[string, number, number], OutboxRow>(
        `SELECT ${COLUMNS} FROM outbox WHERE trigger_id = ? AND dead = 0 AND entry_id > ? ORDER BY entry_id LIMIT ?`,
      ),
      remove: db.prepare<[number]>("DELETE FROM outbox WHERE entry_id = ?"),
      attempt: db.prepare<[number, string, number]>("UPDATE outbox SET attempts = ?, last_error = ? WHERE entry_id = ?"),
      bury: db.prepare<[number, string, number]>("UPDATE outbox SET attempts = ?, last_error = ?, dead = 1 WHERE entry_id = ?"),
      deadAfter: db.prepare<[string, number, number], OutboxRow>(
        `SELECT ${COLUMNS} FROM outbox WHERE trigger_id = ? AND dead = 1 AND entry_id > ? ORDER BY entry_id LIMIT ?`,
      ),
      allDead: db.prepare<[string], OutboxRow>(`SELECT ${COLUMNS} FROM outbox WHERE trigger_id = ? AND dead = 1 ORDER BY entry_id`),
      countDead: db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM outbox WHERE trigger_id = ? AND dead = 1"),
      pendingByTrigger: db.prepare<[], { trigger_id: string; n: number }>(
        "SELECT trigger_id, count(*) AS n FROM outbox WHERE dead = 0 GROUP BY trigger_id",
      ),
      forget: db.prepare<[string]>("DELETE FROM outbox WHERE trigger_id = ?"),
    };
    for (const row of this.sql.pendingByTrigger.all()) this.pending.set(row.trigger_id, row.n);
  }

  /** The trigger whose outbox cannot take `additions` more calls, if any (inside the transaction, before the batch changes anything). */
  full(additions: ReadonlyMap<string, number>): string | undefined {
    for (const [id, count] of additions) if ((this.pending.get(id) ?? 0) + count > this.maxPending) return id;
    return undefined;
  }

  /** Adds one call per trigger for a change, inside the store's batch transaction (see `settled`). */
  record(triggerIds: readonly string[], change: ItemChange): void {
    const text = outboxChangeText(change);
    for (const triggerId of triggerIds) {
      this.sql.insert.run(triggerId, deliveryIdOf(triggerId, change), text);
      this.pending.set(triggerId, (this.pending.get(triggerId) ?? 0) + 1);
      this.uncommitted.push(triggerId);
    }
  }

  /** The store's batch transaction ended: the counts of what it recorded stay, or go back when it was rolled back. */
  settled(committed: boolean): void {
    if (!committed) for (const triggerId of this.uncommitted) this.adjust(triggerId, -1);
    this.uncommitted = [];
  }

  async take(triggerId: string, limit: number): Promise<PendingCall[]> {
    const after = this.cursors.get(triggerId) ?? 0;
    const rows = this.run(() => this.sql.after.all(triggerId, after, limit));
    if (rows.length > 0) this.cursors.set(triggerId, rows.at(-1)!.entry_id);
    return rows.map(pendingCall);
  }

  async complete(call: PendingCall): Promise<void> {
    this.adjust(call.triggerId, -1);
    this.later(() => this.sql.remove.run(Number(call.entryId)));
  }

  async retryLater(call: PendingCall, error: string): Promise<void> {
    this.later(() => this.sql.attempt.run(call.attempts, error, Number(call.entryId)));
  }

  async bury(call: PendingCall, error: string): Promise<void> {
    this.adjust(call.triggerId, -1);
    this.later(() => this.sql.bury.run(call.attempts, error, Number(call.entryId)));
  }

  async deadLetters(triggerId: string, afterEntryId: string, limit: number): Promise<PendingCall[]> {
    this.flush();
    return this.run(() => this.sql.deadAfter.all(triggerId, afterEntryId === "" ? 0 : Number(afterEntryId), limit)).map(pendingCall);
  }

  async reviveDeadLetters(triggerId: string, deliveryIds: readonly string[]): Promise<number> {
    this.flush();
    const wanted = deliveryIds.length === 0 ? undefined : new Set(deliveryIds);
    return this.run(() =>
      this.db.transaction(() => {
        let revived = 0;
        for (const row of this.sql.allDead.all(triggerId)) {
          if (wanted !== undefined && !wanted.has(row.delivery_id)) continue;
          // A new row, at the end of the outbox: the cursor of `take` only moves forward.
          this.sql.remove.run(row.entry_id);
          this.sql.insert.run(triggerId, row.delivery_id, row.change);
          revived++;
        }
        this.adjust(triggerId, revived);
        return revived;
      })(),
    );
  }

  async schedule(triggerId: string, calls: readonly ScheduledCall[]): Promise<number> {
    if ((this.pending.get(triggerId) ?? 0) + calls.length > this.maxPending) throw outboxFullError(triggerId);
    this.run(() =>
      this.db.transaction(() => {
        for (const call of calls) this.sql.insert.run(triggerId, call.deliveryId, outboxChangeText(call.change));
      })(),
    );
    this.adjust(triggerId, calls.length);
    return calls.length;
  }

  async counts(triggerId: string): Promise<OutboxCounts> {
    this.flush();
    return { pending: this.pending.get(triggerId) ?? 0, dead: this.run(() => this.sql.countDead.get(triggerId)!.n) };
  }

  async forget(triggerId: string): Promise<void> {
    this.flush();
    this.run(() => this.sql.forget.run(triggerId));
    this.pending.delete(triggerId);
    this.cursors.delete(triggerId);
  }

  owns(): boolean {
    return true;
  }

  async release(triggerId: string): Promise<void> {
    this.flush();
    this.cursors.delete(triggerId);
  }

  /** Applies what waits (the store calls it before closing the file). */
  flush(): void {
    if (this.flushHandle) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    const writes = this.lazy;
    if (writes.length === 0) return;
    this.lazy = [];
    try {
      this.db.transaction(() => {
        for (const write of writes) write();
      })();
    } catch {
      // Lost: the calls concerned come again after a restart, which at least once allows.
    }
  }

  private later(write: LazyWrite): void {
    this.lazy.push(write);
    this.flushHandle ??= setImmediate(() => this.flush());
  }

  private adjust(triggerId: string, by: number): void {
    this.pending.set(triggerId, Math.max(0, (this.pending.get(triggerId) ?? 0) + by));
  }

  private run<T>(query: () => T): T {
    try {
      return query();
    } catch (error) {
      throw this.failed(error);
    }
  }
}

function pendingCall(row: OutboxRow): PendingCall {
  return {
    triggerId: row.trigger_id,
    entryId: String(row.entry_id),
    deliveryId: row.delivery_id,
    change: JSON.parse(row.change) as ItemChange,
    attempts: row.attempts,
    lastError: row.last_error,
  };
}
