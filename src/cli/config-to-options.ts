import { resolve } from "node:path";
import { apiKeyProblem } from "../access/api-keys.js";
import type { AdapterChoice } from "../adapters/backend.js";
import { DEFAULT_REDIS_URL } from "../adapters/redis/redis-item-store.js";
import { DEFAULT_KEY_PREFIX } from "../adapters/redis/key-layout.js";
import type { FunctionsOptions } from "../functions/functions-runtime.js";
import type { ConnectionLimits } from "../server/connection-limits.js";
import type { StreamServerOptions } from "../server/options.js";
import type { WebSocketOptions } from "../ws/websocket-bridge.js";
import { LOG_LEVELS, type LogLevel } from "../core/log.js";
import type { LogFormat } from "../server/pino-log.js";
import { ConfigError, LOG_FORMATS, loadConfigFile, validateConfig, type AdapterConfig, type FileConfig } from "./config.js";

/** The command line's settings, as given (strings); they override the environment and the file. */
export interface CommandLine {
  port?: string;
  host?: string;
  adapter?: string;
  dataDir?: string;
  syncIntervalMs?: string;
  redisUrl?: string;
  redisPrefix?: string;
  tlsCert?: string;
  tlsKey?: string;
  drainMs?: string;
  idempotencyWindowMs?: string;
  metricsPort?: string;
  /** `--no-metrics`: count nothing, serve no /metrics. */
  noMetrics?: boolean;
  /** `--console true|false`: serve the web console or not (default by the host, see StreamServerOptions.console). */
  console?: string;
  /** `--no-unary-fast-path`: every unary call through connect-node. */
  noUnaryFastPath?: boolean;
  config?: string;
  logLevel?: string;
  logFormat?: string;
}

/** What the process starts: a store and a server over it. */
export interface Startup {
  backend: AdapterChoice;
  /** Everything but the store, which is created from `backend`. */
  options: Omit<StreamServerOptions, "adapter">;
  /** Settings accepted for compatibility with the reference but without effect here, by path. */
  ignored: string[];
  /** How the process logs; a format left unset is chosen by whether standard output is a terminal. */
  log: { level: LogLevel; format?: LogFormat };
  /** The PEM files to serve HTTPS with, when asked to; read at start (see readTlsFiles). */
  tlsFiles?: TlsFiles;
}

/** Where the certificate and its key are. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/**
 * The one place where the config file, the environment and the flags (each overriding
 * the one before) become server options. Throws ConfigError for anything invalid.
 */
export function configToOptions(flags: CommandLine, env: NodeJS.ProcessEnv): Startup {
  const configPath = flags.config ?? env.III_STREAM_CONFIG;
  const fromFile: FileConfig = configPath ? loadConfigFile(configPath, env) : {};
  const config = validateConfig(
    {
      ...fromFile,
      ...portOption("III_STREAM_PORT", env.III_STREAM_PORT),
      ...(env.III_STREAM_HOST ? { host: env.III_STREAM_HOST } : {}),
      ...apiKeysFromEnv(env.III_STREAM_API_KEYS),
      ...drainOption("III_STREAM_DRAIN_MS", env.III_STREAM_DRAIN_MS),
      ...logSettings("III_STREAM_LOG_LEVEL", env.III_STREAM_LOG_LEVEL, "III_STREAM_LOG_FORMAT", env.III_STREAM_LOG_FORMAT),
      ...logSettings("--log-level", flags.logLevel, "--log-format", flags.logFormat),
      ...portOption("--port", flags.port),
      ...(flags.host ? { host: flags.host } : {}),
      ...drainOption("--drain-ms", flags.drainMs),
      ...idempotencyWindowOption("--idempotency-window-ms", flags.idempotencyWindowMs),
      ...metricsPortOption("III_STREAM_METRICS_PORT", env.III_STREAM_METRICS_PORT),
      ...metricsPortOption("--metrics-port", flags.metricsPort),
      ...(flags.noMetrics ? { metrics_enabled: false } : {}),
      ...consoleOption("--console", flags.console),
      ...(flags.noUnaryFastPath ? { unary_fast_path: false } : {}),
    },
    "the command line and environment",
  );
  const choice = chooseAdapter(
    flags.adapter ?? env.III_STREAM_ADAPTER,
    config.adapter,
    { dataDir: flags.dataDir, syncIntervalMs: intervalOption("--sync-interval-ms", flags.syncIntervalMs) },
    { url: flags.redisUrl ?? env.III_STREAM_REDIS_URL, keyPrefix: flags.redisPrefix ?? env.III_STREAM_REDIS_PREFIX },
  );
  return {
    backend: {
      ...choice,
      historyLimit: config.history_limit,
      maxOutbox: config.max_trigger_outbox,
      ...(choice.name === "redis" && config.trigger_lease_ms !== undefined ? { outboxLeaseMs: config.trigger_lease_ms } : {}),
    },
    options: {
      port: config.port,
      host: config.host,
      maxMessageBytes: config.max_message_bytes,
      drainMs: config.drain_ms,
      heartbeatMs: config.heartbeat_ms,
      queueLimits: { maxMessages: config.subscriber_queue_limit, maxBytes: config.subscriber_queue_bytes },
      snapshotChunkBytes: config.snapshot_chunk_bytes,
      maxUnpagedBytes: config.max_unpaged_bytes,
      expirySweepMs: config.expiry_sweep_ms,
      idempotencyWindowMs: config.idempotency_window_ms,
      functions: functionsOptionsFromConfig(config),
      apiKeys: config.api_keys,
      allowedOrigins: config.allowed_origins,
      allowedHosts: config.allowed_hosts,
      allowedFunctionHosts: config.allowed_function_hosts,
      webSocket: { browserAllowedFunctions: config.browser_allowed_functions, ...workerLimitsFromConfig(config) },
      ...readsAndAdmissionFromConfig(config),
      connections: connectionLimitsFromConfig(config),
      metrics: { enabled: config.metrics_enabled, port: config.metrics_port, streamLabels: config.metrics_stream_labels },
      console: config.console,
    },
    ignored: ignoredSettings(config.adapter),
    log: { level: config.log_level ?? "info", ...(config.log_format !== undefined ? { format: config.log_format } : {}) },
    ...tlsFilesOf(flags.tlsCert ?? config.tls_cert, flags.tlsKey ?? config.tls_key),
  };
}

/** Both files or neither: a certificate without its key (or the reverse) cannot serve anything. */
function tlsFilesOf(cert: string | undefined, key: string | undefined): { tlsFiles?: TlsFiles } {
  if (cert === undefined && key === undefined) return {};
  if (cert === undefined || key === undefined) {
    throw new ConfigError(`--tls-cert (tls_cert) and --tls-key (tls_key) go together; only ${cert === undefined ? "the key" : "the certificate"} is given`);
  }
  return { tlsFiles: { cert, key } };
}

/**
 * The reference's kv adapter tunes its own store with `save_interval_ms` (how often
 * it writes its file) and `channel_size` (its broadcast buffer); this server's stores
 * have neither, so a reference config loads but these keys change nothing.
 */
function ignoredSettings(adapter: AdapterConfig | undefined): string[] {
  if (adapter?.name !== "kv" || !adapter.config) return [];
  return (["save_interval_ms", "channel_size"] as const)
    .filter((key) => adapter.config?.[key] !== undefined)
    .map((key) => `adapter.config.${key}`);
}

/**
 * The log level and format from the environment or the flags, refused by the name the
 * operator wrote (the merged settings would name the config key instead).
 */
function logSettings(levelName: string, level: string | undefined, formatName: string, format: string | undefined): Pick<FileConfig, "log_level" | "log_format"> {
  const settings: Pick<FileConfig, "log_level" | "log_format"> = {};
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(`${levelName} must be one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
    settings.log_level = level as LogLevel;
  }
  if (format !== undefined) {
    if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new ConfigError(`${formatName} must be one of ${LOG_FORMATS.join(", ")}, got "${format}"`);
    settings.log_format = format as LogFormat;
  }
  return settings;
}

function intervalOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a positive number of milliseconds, got "${value}"`);
  return Number(value);
}

/** A drain time in ms; the config schema bounds it. */
function drainOption(name: string, value: string | undefined): { drain_ms?: number } {
  if (value === undefined) return {};
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a number of milliseconds (0 or more), got "${value}"`);
  return { drain_ms: Number(value) };
}

/** How long request ids are remembered, in ms; the config schema bounds it. */
function idempotencyWindowOption(name: string, value: string | undefined): { idempotency_window_ms?: number } {
  if (value === undefined) return {};
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a positive number of milliseconds, got "${value}"`);
  return { idempotency_window_ms: Number(value) };
}

function portOption(name: string, value: string | undefined): { port?: number } {
  if (value === undefined) return {};
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a port number, got "${value}"`);
  return { port: Number(value) };
}

function consoleOption(name: string, value: string | undefined): { console?: boolean } {
  if (value === undefined) return {};
  if (value !== "true" && value !== "false") throw new ConfigError(`${name} must be true or false, got "${value}"`);
  return { console: value === "true" };
}

function metricsPortOption(name: string, value: string | undefined): { metrics_port?: number } {
  if (value === undefined) return {};
  const { port } = portOption(name, value);
  return { metrics_port: port };
}

/** The config file's function, trigger and auth keys as server options. */
function functionsOptionsFromConfig(config: FileConfig): Omit<FunctionsOptions, "log"> {
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
        delivery: t.config?.delivery,
        maxAttempts: t.config?.max_attempts,
        retryInitialMs: t.config?.retry_initial_ms,
        retryMaxMs: t.config?.retry_max_ms,
      },
    })),
    functionTimeoutMs: config.function_timeout_ms,
    authTimeoutMs: config.auth_timeout_ms,
  };
}

/** Who may read, and how many subscriptions and HTTP/2 streams are admitted; unset keys keep the server's defaults. */
function readsAndAdmissionFromConfig(config: FileConfig): Pick<StreamServerOptions, "publicReads" | "unaryFastPath" | "maxSubscriptions" | "http2MaxConcurrentStreams"> {
  return {
    ...(config.public_reads !== undefined ? { publicReads: config.public_reads } : {}),
    ...(config.unary_fast_path !== undefined ? { unaryFastPath: config.unary_fast_path } : {}),
    ...(config.max_subscriptions !== undefined ? { maxSubscriptions: config.max_subscriptions } : {}),
    ...(config.http2_max_concurrent_streams !== undefined ? { http2MaxConcurrentStreams: config.http2_max_concurrent_streams } : {}),
  };
}

/** The per-connection bounds of worker connections; unset keys keep the bridge's defaults. */
function workerLimitsFromConfig(config: FileConfig): WebSocketOptions {
  return {
    ...(config.max_worker_functions !== undefined ? { maxFunctionsPerConnection: config.max_worker_functions } : {}),
    ...(config.max_worker_triggers !== undefined ? { maxTriggersPerConnection: config.max_worker_triggers } : {}),
    ...(config.max_worker_invocations !== undefined ? { maxInvocationsPerConnection: config.max_worker_invocations } : {}),
  };
}

/** The connection limits and caps; unset keys keep the listener's defaults. */
function connectionLimitsFromConfig(config: FileConfig): Partial<ConnectionLimits> {
  const limits: Partial<ConnectionLimits> = {
    firstBytesTimeoutMs: config.first_bytes_timeout_ms,
    headersTimeoutMs: config.headers_timeout_ms,
    requestTimeoutMs: config.request_timeout_ms,
    keepAliveTimeoutMs: config.keep_alive_timeout_ms,
    http2IdleTimeoutMs: config.http2_idle_timeout_ms,
    maxConnections: config.max_connections,
    maxConnectionsPerAddress: config.max_connections_per_address,
  };
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
}

/**
 * `III_STREAM_API_KEYS`: comma-separated keys; blanks around and between them are
 * ignored. A bad key is named by its place in the variable, not by its place in the
 * merged settings, which the operator never wrote.
 */
function apiKeysFromEnv(value: string | undefined): { api_keys?: string[] } {
  const keys = (value ?? "").split(",").map((key) => key.trim()).filter((key) => key !== "");
  keys.forEach((key, index) => {
    const problem = apiKeyProblem(key);
    if (problem !== undefined) throw new ConfigError(`III_STREAM_API_KEYS: key ${index + 1} (counting from 1) ${problem}`);
  });
  return keys.length > 0 ? { api_keys: keys } : {};
}

/** Where the file adapter keeps its store unless told otherwise, relative to the working directory. */
export const DEFAULT_DATA_DIR = "data";

/** Command-line settings of the file adapter; they override the config file's. */
export interface FileAdapterFlags {
  dataDir?: string;
  syncIntervalMs?: number;
}

/** The redis adapter's settings from the command line or the environment; they override the config file. */
export interface RedisAdapterFlags {
  url?: string;
  /** Every key and channel starts with it: deployments that share a Redis keep apart by it. */
  keyPrefix?: string;
}

/**
 * The adapter the command line names with `--adapter`, resolved against the config
 * file's `adapter`. Without either, the durable file adapter in `./data`.
 */
export function chooseAdapter(
  flag: string | undefined,
  fromConfig: AdapterConfig | undefined,
  fileFlags: FileAdapterFlags = {},
  redisFlags: RedisAdapterFlags = {},
): AdapterChoice {
  const name = flag ?? configuredName(fromConfig);
  if (redisFlags.url !== undefined && name !== "redis") {
    throw new ConfigError(`--redis-url (III_STREAM_REDIS_URL) applies to the redis adapter, but the adapter is ${name}`);
  }
  if (redisFlags.keyPrefix !== undefined && name !== "redis") {
    throw new ConfigError(`--redis-prefix (III_STREAM_REDIS_PREFIX) applies to the redis adapter, but the adapter is ${name}`);
  }
  if (redisFlags.keyPrefix !== undefined && (redisFlags.keyPrefix === "" || /[{}]/.test(redisFlags.keyPrefix))) {
    throw new ConfigError(`--redis-prefix (III_STREAM_REDIS_PREFIX) must be non-empty and without "{" or "}", got ${JSON.stringify(redisFlags.keyPrefix)}`);
  }
  if (name === "redis") {
    if (fileFlags.dataDir !== undefined || fileFlags.syncIntervalMs !== undefined) {
      throw new ConfigError("--data-dir and --sync-interval-ms apply to the file adapter, but the adapter is redis");
    }
    const redisConfig = fromConfig?.name === "redis" ? fromConfig.config : undefined;
    const keyPrefix = redisFlags.keyPrefix ?? redisConfig?.key_prefix;
    return {
      name: "redis",
      url: redisFlags.url ?? redisConfig?.redis_url ?? DEFAULT_REDIS_URL,
      ...(keyPrefix !== undefined ? { keyPrefix } : {}),
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

/** The store's settings for the start-up line, the Redis password masked. */
export function storeSettings(choice: AdapterChoice): Record<string, unknown> {
  const history = choice.historyLimit !== undefined ? { history_limit: choice.historyLimit } : {};
  if (choice.name === "file") {
    return { data_dir: resolve(choice.dataDir), ...(choice.syncIntervalMs !== undefined ? { sync_interval_ms: choice.syncIntervalMs } : {}), ...history };
  }
  if (choice.name === "redis") return { redis_url: maskedUrl(choice.url), redis_prefix: choice.keyPrefix ?? DEFAULT_KEY_PREFIX, ...history };
  return history;
}

/** A URL with its password (if any) replaced by ****; something that is not a URL is not shown at all. */
export function maskedUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "(not a URL)";
  }
  if (url.password !== "") url.password = "****";
  return url.toString();
}

/**
 * Where the store is, for the line that says the server is up: the data directory, or
 * the Redis (its password masked) and the key prefix, which decide what is shared.
 */
export function storeDetail(choice: AdapterChoice): string {
  if (choice.name === "file") return `, data: ${resolve(choice.dataDir)}`;
  if (choice.name !== "redis") return "";
  return `, redis: ${maskedUrl(choice.url)}, prefix: ${choice.keyPrefix ?? DEFAULT_KEY_PREFIX}`;
}
