import type Database from "better-sqlite3";
import type { FunctionRecord, RegistrationStore, StoredRegistrations, TriggerRecord } from "../../core/registrations.js";
import { ChangeListeners } from "../../core/change-listeners.js";

type Kind = "function" | "trigger";

/** How the table's writes report to the store's readiness. */
export interface WriteOutcomes {
  /** A write failed: returns the error to throw (and turns readiness off for a storage failure). */
  failed(error: unknown): Error;
  /** A write was committed. */
  succeeded(): void;
}

/**
 * Remote functions and triggers in the store's `registrations` table, so that they
 * survive a restart like the items do. Each change is its own small transaction,
 * durable before it resolves: registrations change rarely, batching would gain nothing.
 * One process owns the store, so change notifications only come from this instance.
 */
export class RegistrationTable implements RegistrationStore {
  private readonly listeners = new ChangeListeners();
  private readonly sql;

  constructor(
    db: Database.Database,
    private readonly outcomes: WriteOutcomes,
  ) {
    this.sql = {
      all: db.prepare<[], { kind: Kind; record: string }>("SELECT kind, record FROM registrations"),
      save: db.prepare<[Kind, string, string]>("INSERT OR REPLACE INTO registrations (kind, id, record) VALUES (?, ?, ?)"),
      remove: db.prepare<[Kind, string]>("DELETE FROM registrations WHERE kind = ? AND id = ?"),
    };
  }

  async load(): Promise<StoredRegistrations> {
    const result: StoredRegistrations = { functions: [], triggers: [] };
    for (const row of this.sql.all.iterate()) {
      if (row.kind === "function") result.functions.push(JSON.parse(row.record) as FunctionRecord);
      else result.triggers.push(JSON.parse(row.record) as TriggerRecord);
    }
    return result;
  }

  async saveFunction(record: FunctionRecord): Promise<void> {
    this.save("function", record.functionId, record);
  }

  async deleteFunction(functionId: string): Promise<boolean> {
    return this.remove("function", functionId);
  }

  async saveTrigger(record: TriggerRecord): Promise<void> {
    this.save("trigger", record.triggerId, record);
  }

  async deleteTrigger(triggerId: string): Promise<boolean> {
    return this.remove("trigger", triggerId);
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  private save(kind: Kind, id: string, record: FunctionRecord | TriggerRecord): void {
    this.write(() => this.sql.save.run(kind, id, JSON.stringify(record)).changes);
    this.changed();
  }

  private remove(kind: Kind, id: string): boolean {
    const found = this.write(() => this.sql.remove.run(kind, id).changes) > 0;
    if (found) this.changed();
    return found;
  }

  private write(run: () => number): number {
    let changes: number;
    try {
      changes = run();
    } catch (error) {
      throw this.outcomes.failed(error);
    }
    if (changes > 0) this.outcomes.succeeded();
    return changes;
  }

  private changed(): void {
    this.listeners.notify();
  }
}
