import type { FileConfig } from "../config.js";
import type { FunctionsOptions } from "./functions-runtime.js";

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
