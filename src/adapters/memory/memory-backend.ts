import type { ItemStoreOptions } from "../../core/item-store.js";
import { MemoryItemStore } from "./memory-item-store.js";

/**
 * A backend in this process: items only. With no registration store, the server keeps
 * remote functions and triggers in its own memory; with no fleet bus, worker functions
 * are called only on the instance their worker is connected to.
 */
export function memoryBackend(options: ItemStoreOptions = {}): { items: MemoryItemStore } {
  return { items: new MemoryItemStore(options) };
}
