import type { AdapterConfig } from "../config.js";
import { ConfigError } from "../config.js";
import type { StorageAdapter } from "./adapter.js";
import { MemoryAdapter } from "./memory-adapter.js";
import { DEFAULT_REDIS_URL, RedisAdapter } from "./redis/redis-adapter.js";
import { SqliteAdapter } from "./sqlite/sqlite-adapter.js";

/** Where the file adapter keeps its store unless told otherwise, relative to the working directory. */
export const DEFAULT_DATA_DIR = "data";

/** What the command line and config file chose, reduced to one description. */
export type AdapterChoice =
  | { name: "memory"; historyLimit?: number }
  | { name: "file"; dataDir: string; syncIntervalMs?: number; historyLimit?: number }
  | { name: "redis"; url: string; keyPrefix?: string; historyLimit?: number };

/** Command-line settings of the file adapter; they override the config file's. */
export interface FileAdapterFlags {
  dataDir?: string;
  syncIntervalMs?: number;
}

/**
 * The adapter the command line names with `--adapter`, resolved against the config
 * file's `adapter`. Without either, the durable file adapter in `./data`.
 */
export function chooseAdapter(
  flag: string | undefined,
  fromConfig: AdapterConfig | undefined,
  fileFlags: FileAdapterFlags = {},
  redisUrl?: string,
): AdapterChoice {
  const name = flag ?? configuredName(fromConfig);
  if (redisUrl !== undefined && name !== "redis") {
    throw new ConfigError(`--redis-url (III_STREAM_REDIS_URL) applies to the redis adapter, but the adapter is ${name}`);
  }
  if (name === "redis") {
    if (fileFlags.dataDir !== undefined || fileFlags.syncIntervalMs !== undefined) {
      throw new ConfigError("--data-dir and --sync-interval-ms apply to the file adapter, but the adapter is redis");
    }
    const redisConfig = fromConfig?.name === "redis" ? fromConfig.config : undefined;
    return {
      name: "redis",
      url: redisUrl ?? redisConfig?.redis_url ?? DEFAULT_REDIS_URL,
      ...(redisConfig?.key_prefix !== undefined ? { keyPrefix: redisConfig.key_prefix } : {}),
    };
  }
  if (name === "memory") {
    if (fileFlags.dataDir !== undefined || fileFlags.syncIntervalMs !== undefined) {
      throw new ConfigError("--data-dir and --sync-interval-ms apply to the file adapter, but the adapter is memory");
    }
    return { name: "memory" };
  }
  if (name === "file") {
    const fileConfig = fromConfig?.name === "file" || fromConfig?.name === "kv" ? fromConfig.config : undefined;
    const syncIntervalMs = fileFlags.syncIntervalMs ?? (fromConfig?.name === "file" ? fromConfig.config?.sync_interval_ms : undefined);
    return {
      name: "file",
      dataDir: fileFlags.dataDir ?? fileConfig?.file_path ?? DEFAULT_DATA_DIR,
      ...(syncIntervalMs !== undefined ? { syncIntervalMs } : {}),
    };
  }
  throw new ConfigError(`unknown adapter "${name}" (available: file, memory, redis)`);
}

/** The reference's `kv` adapter maps onto ours by its `store_method` (default in_memory, as there). */
function configuredName(fromConfig: AdapterConfig | undefined): string {
  if (!fromConfig) return "file";
  if (fromConfig.name !== "kv") return fromConfig.name;
  return fromConfig.config?.store_method === "file_based" ? "file" : "memory";
}

export async function createAdapter(choice: AdapterChoice): Promise<StorageAdapter> {
  if (choice.name === "redis") {
    return RedisAdapter.connect({ url: choice.url, keyPrefix: choice.keyPrefix, historyLimit: choice.historyLimit });
  }
  if (choice.name === "file") {
    return SqliteAdapter.open({ dataDir: choice.dataDir, syncIntervalMs: choice.syncIntervalMs, historyLimit: choice.historyLimit });
  }
  return new MemoryAdapter({ historyLimit: choice.historyLimit });
}
