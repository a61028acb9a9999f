import { FileStore, type FileStoreOptions } from "./file-store.js";
import type { RegistrationTable } from "./registration-table.js";
import type { OutboxTable } from "./outbox-table.js";

/**
 * A backend in one SQLite file: items, and remote functions and triggers in the same
 * file's registration table, so both survive a restart. Closing the item store (the
 * engine does, on stop) closes the file, the table with it. No fleet: the file is locked
 * to one process.
 */
export function openFileBackend(options: FileStoreOptions): { items: FileStore; registrations: RegistrationTable; outbox: OutboxTable } {
  const items = FileStore.open(options);
  return { items, registrations: items.registrations, outbox: items.outbox };
}
