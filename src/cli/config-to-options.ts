import type { AdapterConfig, FileConfig } from "./config.js";
import { ConfigError } from "./config.js";
import type { AdapterChoice } from "../adapters/backend.js";
import { DEFAULT_REDIS_URL } from "../adapters/redis/redis-item-store.js";
import type { FunctionsOptions } from "../functions/functions-runtime.js";

/** The config file's function, trigger and auth keys as server options. */
export function functionsOptionsFromConfig(config: FileConfig): FunctionsOptions {
  return {
    authFunction: config.auth_function,
    remote: config.functions?.map((f) => ({ functionId: f.function_id, url: f.url })),
    triggers: config.triggers?.map((t) => ({
      triggerId: t.trigger_id,
      type: t.type,
      functionId: t.function_id,
      config: {
        streamName: t.config?.stream_name,
        groupId: t.config?.group_id,
        itemId: t.config?.item_id,
        conditionFunctionId: t.config?.condition_function_id,
      },
    })),
    functionTimeoutMs: config.function_timeout_ms,
    authTimeoutMs: config.auth_timeout_ms,
  };
}

/** `III_STREAM_API_KEYS`: comma-separated keys; blanks around and between them are ignored. */
export function apiKeysFromEnv(value: string | undefined): { api_keys?: string[] } {
  const keys = (value ?? "").split(",").map((key) => key.trim()).filter((key) => key !== "");
  return keys.length > 0 ? { api_keys: keys } : {};
}

/** Where the file adapter keeps its store unless told otherwise, relative to the working directory. */
export const DEFAULT_DATA_DIR = "data";

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
