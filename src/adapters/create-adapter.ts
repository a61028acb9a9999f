import type { AdapterConfig } from "../config.js";
import { ConfigError } from "../config.js";
import type { StorageAdapter } from "./adapter.js";
import { MemoryAdapter } from "./memory-adapter.js";

/** What the command line and config file chose, reduced to one description. */
export interface AdapterChoice {
  name: "memory";
  historyLimit?: number;
}

/** The adapter the command line names with `--adapter`, resolved against the config file's `adapter`. */
export function chooseAdapter(flag: string | undefined, fromConfig: AdapterConfig | undefined): AdapterChoice {
  if (flag !== undefined) {
    if (flag === "memory") return { name: "memory" };
    throw new ConfigError(`unknown adapter "${flag}" (available: memory)`);
  }
  if (!fromConfig || fromConfig.name === "memory") return { name: "memory" };
  const method = fromConfig.config?.store_method ?? "in_memory";
  if (method === "in_memory") return { name: "memory" };
  throw new ConfigError(`adapter.config.store_method "${method}" is not available (available: in_memory)`);
}

export async function createAdapter(choice: AdapterChoice): Promise<StorageAdapter> {
  return new MemoryAdapter({ historyLimit: choice.historyLimit });
}
