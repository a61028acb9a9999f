import type { ItemStoreOptions } from "../../core/item-store.js";
import { MemoryItemStore } from "./memory-item-store.js";
import type { MemoryOutbox } from "./memory-outbox.js";

/**
 * A backend in this process: items, and the outbox of `at_least_once` triggers beside them. With no registration store, the server keeps
 * remote functions and triggers in its own memory; with no fleet bus, worker functions
 * are called only on the instance their worker is connected to.
 */
export function memoryBackend(options: ItemStoreOptions = {}): { items: MemoryItemStore; outbox: MemoryOutbox } {
  const items = new MemoryItemStore(options);
  return { items, outbox: items.outbox };
}
