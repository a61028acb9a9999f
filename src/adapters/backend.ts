import type { ItemStore } from "../core/item-store.js";
import { MemoryItemStore } from "./memory/memory-item-store.js";
import { DEFAULT_REDIS_URL, RedisItemStore } from "./redis/redis-item-store.js";
import { FileStore } from "./file/file-store.js";

/** What the command line and config file chose, reduced to one description. */
export type AdapterChoice =
  | { name: "memory"; historyLimit?: number }
  | { name: "file"; dataDir: string; syncIntervalMs?: number; historyLimit?: number }
  | { name: "redis"; url: string; keyPrefix?: string; historyLimit?: number };

export async function createAdapter(choice: AdapterChoice): Promise<ItemStore> {
  if (choice.name === "redis") {
    return RedisItemStore.connect({ url: choice.url, keyPrefix: choice.keyPrefix, historyLimit: choice.historyLimit });
  }
  if (choice.name === "file") {
    return FileStore.open({ dataDir: choice.dataDir, syncIntervalMs: choice.syncIntervalMs, historyLimit: choice.historyLimit });
  }
  return new MemoryItemStore({ historyLimit: choice.historyLimit });
}
