import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { TRIGGER_TYPES } from "../core/registrations.js";
import { hostsProblem } from "../access/hosts.js";
import { apiKeyProblem } from "../access/api-keys.js";
import { LOG_LEVELS } from "../core/log.js";

/**
 * The configuration file: YAML or JSON with the reference's keys (`port`, `host`,
 * `auth_function`, `adapter: {name, config}`) and a few of our own. Unknown keys are
 * errors, so a typo never silently falls back to a default.
 */
const adapterSchema = z.discriminatedUnion("name", [
  z.strictObject({ name: z.literal("memory"), config: z.strictObject({}).optional() }),
  z.strictObject({
    name: z.literal("file"),
    config: z
      .strictObject({
        /** The data directory; default `./data`. */
        file_path: z.string().min(1).optional(),
        /** Relaxed durability: fsync every this many ms instead of before each reply. */
        sync_interval_ms: z.number().int().min(1).max(3_600_000).optional(),
      })
      .optional(),
  }),
  z.strictObject({
    name: z.literal("redis"),
    config: z
      .strictObject({
        /** redis://[user:password@]host:port[/db] (rediss:// for TLS); default redis://127.0.0.1:6379. */
        redis_url: z.url({ protocol: /^rediss?$/ }).optional(),
        /** Prefix of every key and channel; default "iii-stream:". */
        key_prefix: z
          .string()
          .min(1)
          .refine((prefix) => !/[{}]/.test(prefix), 'must not contain "{" or "}"')
          .optional(),
      })
      .optional(),
  }),
  z.strictObject({
    name: z.literal("kv"),
    config: z
      .strictObject({
        store_method: z.enum(["in_memory", "file_based"]).optional(),
        file_path: z.string().min(1).optional(),
        // The reference's tuning of its own store; accepted so its files load, and named
        // at startup as ignored (see ignoredSettings in config-to-options.ts).
        save_interval_ms: z.number().int().min(100).max(3_600_000).optional(),
        channel_size: z.number().int().min(1).max(1_048_576).optional(),
      })
      .optional(),
  }),
]);

/** A trigger declared in the file; registered at start (see TriggerService.RegisterTrigger). */
const triggerSchema = z
  .strictObject({
    trigger_id: z.string().min(1).optional(),
    type: z.enum(TRIGGER_TYPES),
    function_id: z.string().min(1),
    config: z
      .strictObject({
        stream_name: z.string().optional(),
        group_id: z.string().optional(),
        item_id: z.string().optional(),
        condition_function_id: z.string().optional(),
        /** Default at_most_once (see TriggerDelivery). */
        delivery: z.enum(["at_most_once", "at_least_once"]).optional(),
        /** At least once: attempts before a dead letter (default 10). */
        max_attempts: z.number().int().min(1).optional(),
        /** At least once: first retry pause in ms, doubled per retry with jitter (default 1,000). */
        retry_initial_ms: z.number().int().min(1).optional(),
        /** At least once: longest retry pause in ms (default 60,000). */
        retry_max_ms: z.number().int().min(1).optional(),
      })
      .optional(),
  })
  .refine((trigger) => trigger.type !== "stream" || Boolean(trigger.config?.stream_name), {
    message: "a stream trigger needs config.stream_name",
    path: ["config", "stream_name"],
  });

/**
 * A list that may also be written as its only entry: `allowed_origins: "*"` reads as the
 * one-element list a user means, where a bare string would otherwise be refused.
 */
function oneOrMany<T extends z.ZodType>(entry: T) {
  return z.preprocess((value) => (typeof value === "string" ? [value] : value), z.array(entry));
}

/** The forms of log lines; see pinoLog. */
export const LOG_FORMATS = ["json", "pretty"] as const;

export const configSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  auth_function: z.string().min(1).optional(),
  adapter: adapterSchema.optional(),
  /** Largest request and stored value in bytes. */
  max_message_bytes: z.number().int().min(1024).optional(),
  heartbeat_ms: z.number().int().min(10).optional(),
  /** Changes kept per group for resuming subscribers. */
  history_limit: z.number().int().min(0).optional(),
  /** Most undelivered calls kept per at-least-once trigger; past it writes are refused (default 100,000). */
  max_trigger_outbox: z.number().int().min(1).optional(),
  /** Redis: how long an instance delivers an at-least-once trigger without renewing its lease (default 10,000 ms). */
  trigger_lease_ms: z.number().int().min(100).optional(),
  /** Messages one subscriber may fall behind before it is ended. */
  subscriber_queue_limit: z.number().int().min(1).optional(),
  /** Bytes one subscriber may fall behind (queued, and unsent in its transport) before it is ended. */
  subscriber_queue_bytes: z.number().int().min(1024).optional(),
  /** Most bytes of items in one snapshot chunk. */
  snapshot_chunk_bytes: z.number().int().min(1024).optional(),
  /** Most bytes of a whole (unpaged) answer of the reference's protocols: a sync without chunks, stream::list and the like. */
  max_unpaged_bytes: z.number().int().min(1024).optional(),
  /** How often expired items are looked for and removed, in ms; 0: never removed (still never read). */
  expiry_sweep_ms: z.number().int().min(0).optional(),
  /** How long a group remembers a write's request_id (ms); at most a week, so that records cannot pile up for good. */
  idempotency_window_ms: z.number().int().min(1).max(604_800_000).optional(),
  /** Keys that writes and administration need as `Authorization: Bearer <key>`. */
  api_keys: z.array(z.string().superRefine(apiKeyCheck)).optional(),
  /** Remote functions (FunctionService base URLs) registered at start. */
  functions: z.array(z.strictObject({ function_id: z.string().min(1), url: z.url({ protocol: /^https?$/ }) })).optional(),
  triggers: z.array(triggerSchema).optional(),
  /** How long one function call may take. */
  function_timeout_ms: z.number().int().min(1).optional(),
  /** How long the auth function may take. */
  auth_timeout_ms: z.number().int().min(1).optional(),
  /** Origins whose pages may call and open WebSockets ("https://app.example.com", or "*"). */
  allowed_origins: oneOrMany(z.string().refine((origin) => origin === "*" || isOrigin(origin), 'must be "*" or an origin such as https://app.example.com')).optional(),
  /** Host names requests may carry besides the loopback ones and the listening address ("*" for any). */
  allowed_hosts: oneOrMany(z.string().superRefine(hostEntryCheck)).optional(),
  /** Hosts (name, address, host:port, or "*") remote functions may be registered at; default: any with api_keys, loopback without. */
  allowed_function_hosts: oneOrMany(z.string().min(1)).optional(),
  /** Functions a browser's worker connection may invoke (default: the read functions). */
  browser_allowed_functions: z.array(z.string().min(1)).optional(),
  /** Most functions one worker connection may register (default 1,000). */
  max_worker_functions: z.number().int().min(1).optional(),
  /** Most triggers one worker connection may register (default 1,000). */
  max_worker_triggers: z.number().int().min(1).optional(),
  /** Most calls of one worker connection's functions awaiting its answer (default 1,000). */
  max_worker_invocations: z.number().int().min(1).optional(),
  /** With api_keys set, let anyone read without a key (default false). */
  public_reads: z.boolean().optional(),
  /** Serve unary calls on the fast path (default true); false sends them all through connect-node. */
  unary_fast_path: z.boolean().optional(),
  /** Most subscriptions the server holds at once (default 100,000). */
  max_subscriptions: z.number().int().min(1).optional(),
  /** Most concurrent streams per HTTP/2 connection (default 1,000). */
  http2_max_concurrent_streams: z.number().int().min(1).optional(),
  /** How long a stop keeps serving with readiness false before it stops accepting connections, in ms (default 0). */
  drain_ms: z.number().int().min(0).max(3_600_000).optional(),
  /** Connection limits in ms (0 turns one off) and caps; see ConnectionLimits for the defaults. */
  first_bytes_timeout_ms: z.number().int().min(0).optional(),
  headers_timeout_ms: z.number().int().min(0).optional(),
  request_timeout_ms: z.number().int().min(0).optional(),
  keep_alive_timeout_ms: z.number().int().min(0).optional(),
  http2_idle_timeout_ms: z.number().int().min(0).optional(),
  max_connections: z.number().int().min(1).optional(),
  max_connections_per_address: z.number().int().min(1).optional(),
  /** Serve HTTPS: the certificate chain's PEM file (relative paths from the working directory); needs tls_key. */
  tls_cert: z.string().min(1).optional(),
  /** The PEM file of tls_cert's private key; needs tls_cert. */
  tls_key: z.string().min(1).optional(),
  /** Count and serve Prometheus metrics at /metrics (default true). */
  metrics_enabled: z.boolean().optional(),
  /** Serve /metrics on this port instead of the service port (default: the service port). */
  metrics_port: z.number().int().min(0).max(65535).optional(),
  /** Label writes and subscriptions with their stream name (default false: one series per stream). */
  metrics_stream_labels: z.boolean().optional(),
  /** Serve the web console at /console/ (default true on a loopback host, false otherwise). */
  console: z.boolean().optional(),
  /** Least severe log level written (fatal, error, warn, info, debug, trace); default info. */
  log_level: z.enum(LOG_LEVELS).optional(),
  /** json (one object per line) or pretty; default pretty on a terminal, json otherwise. */
  log_format: z.enum(LOG_FORMATS).optional(),
});

/** Refuses an API key as the server would, naming why and never the key (zod's message quotes no input). */
function apiKeyCheck(key: string, context: z.RefinementCtx): void {
  const problem = apiKeyProblem(key);
  if (problem !== undefined) context.addIssue({ code: "custom", message: `this key ${problem}` });
}

/** Refuses an allowed_hosts entry as the server option would, with the same reason. */
function hostEntryCheck(entry: string, context: z.RefinementCtx): void {
  const problem = hostsProblem(entry);
  if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
}

/** scheme://host[:port] exactly as a browser sends it in the Origin header: no path, no trailing slash. */
function isOrigin(text: string): boolean {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}

export type FileConfig = z.infer<typeof configSchema>;
export type AdapterConfig = z.infer<typeof adapterSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Reads, expands `${VAR}` / `${VAR:default}` placeholders in, and validates a config file. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  let expanded: unknown;
  try {
    expanded = expandPlaceholders(raw ?? {}, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(`invalid config in ${path}:\n  ${error.message}`);
  }
  return validateConfig(expanded, path);
}

export function validateConfig(raw: unknown, source: string): FileConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
    const path = [...issue.path, ...(keys.length === 1 ? keys : [])].join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  throw new ConfigError(`invalid config in ${source}:\n  ${problems.join("\n  ")}`);
}

function expandPlaceholders(value: unknown, env: NodeJS.ProcessEnv, path: string[] = []): unknown {
  if (typeof value === "string") {
    // A placeholder without a default whose variable is unset would otherwise become "", and the
    // user would read an error about an empty key instead of the variable they forgot to export.
    const read = (name: string, fallback: string | undefined): string => {
      const found = env[name] ?? fallback;
      if (found === undefined) {
        throw new ConfigError(`${path.join(".") || "config"}: environment variable ${name} is not set (export it, or write \${${name}:default})`);
      }
      return found;
    };
    const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}$/.exec(value);
    // A value that is only a placeholder may become a number or a boolean.
    if (whole) return coerce(read(whole[1], whole[2]));
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g, (_, name: string, fallback?: string) => read(name, fallback));
  }
  if (Array.isArray(value)) return value.map((v, i) => expandPlaceholders(v, env, [...path, String(i)]));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandPlaceholders(v, env, [...path, k])]));
  }
  return value;
}

function coerce(text: string): unknown {
  if (/^-?\d+$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}
