import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createBackend } from "../adapters/backend.js";
import { chooseAdapter } from "./config-to-options.js";
import { ConfigError, loadConfigFile, validateConfig, type FileConfig } from "./config.js";
import { apiKeysFromEnv, functionsOptionsFromConfig } from "./config-to-options.js";
import { createStreamServer } from "../server/stream-server.js";

const HELP = `Usage: iii-stream [options]

Serves StreamService (Connect, gRPC and gRPC-Web), /healthz and the WebSocket
bridge (the stream socket and the iii worker protocol) on one port.

Options:
  --port N          port to listen on (default 3112; 0 picks a free port)
  --host ADDR       address to listen on (default 127.0.0.1)
  --adapter NAME    where items live: file (default; durable, on disk),
                    memory (nothing survives a restart) or redis (shared by
                    several servers behind a load balancer)
  --redis-url URL   the redis adapter's Redis, standalone or any node of a
                    Cluster (default redis://127.0.0.1:6379)
  --data-dir DIR    directory of the file adapter's store (default ./data);
                    one server at a time may use it
  --sync-interval-ms N
                    relaxed durability for the file adapter: reply before the
                    fsync and fsync every N ms; a power loss or OS crash can
                    lose the last N ms of acknowledged writes (default: every
                    write is on disk before its reply)
  --config FILE     YAML or JSON config file (keys: port, host, auth_function,
                    adapter {name: file|memory|redis|kv, config}, max_message_bytes,
                    heartbeat_ms, history_limit, subscriber_queue_limit,
                    api_keys, functions, triggers, function_timeout_ms,
                    auth_timeout_ms, allowed_origins,
                    browser_allowed_functions);
                    \${VAR:default} placeholders in it are read from the
                    environment
  -h, --help        show this help

Environment (overrides the config file; flags override both):
  III_STREAM_PORT, III_STREAM_HOST, III_STREAM_ADAPTER, III_STREAM_CONFIG,
  III_STREAM_REDIS_URL,
  III_STREAM_API_KEYS (comma-separated keys that writes and administration need)

Stops on SIGINT or SIGTERM: open subscriptions end with UNAVAILABLE and the
process exits 0.
`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        adapter: { type: "string" },
        "data-dir": { type: "string" },
        "sync-interval-ms": { type: "string" },
        "redis-url": { type: "string" },
        config: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(`iii-stream: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }

  // Listen for signals before anything can print that the server is up: a
  // supervisor may send SIGTERM the moment it reads that line.
  const stopSignal = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });

  const env = process.env;
  let config: FileConfig = {};
  let server;
  let storeNote = "";
  try {
    const configPath = args.config ?? env.III_STREAM_CONFIG;
    if (configPath) config = loadConfigFile(configPath);
    config = validateConfig(
      {
        ...config,
        ...numberOption("III_STREAM_PORT", env.III_STREAM_PORT),
        ...(env.III_STREAM_HOST ? { host: env.III_STREAM_HOST } : {}),
        ...apiKeysFromEnv(env.III_STREAM_API_KEYS),
        ...numberOption("--port", args.port),
        ...(args.host ? { host: args.host } : {}),
      },
      "the command line and environment",
    );
    const choice = chooseAdapter(args.adapter ?? env.III_STREAM_ADAPTER, config.adapter, {
      dataDir: args["data-dir"],
      syncIntervalMs: intervalOption("--sync-interval-ms", args["sync-interval-ms"]),
    }, args["redis-url"] ?? env.III_STREAM_REDIS_URL);
    const backend = await createBackend({ ...choice, historyLimit: config.history_limit });
    if (choice.name === "file") storeNote = `, data: ${resolve(choice.dataDir)}`;
    server = createStreamServer({
      port: config.port,
      host: config.host,
      backend,
      maxMessageBytes: config.max_message_bytes,
      heartbeatMs: config.heartbeat_ms,
      queueLimits: config.subscriber_queue_limit ? { maxMessages: config.subscriber_queue_limit } : undefined,
      functions: functionsOptionsFromConfig(config),
      apiKeys: config.api_keys,
      allowedOrigins: config.allowed_origins,
      webSocket: { browserAllowedFunctions: config.browser_allowed_functions },
    });
    await server.start();
  } catch (error) {
    process.stderr.write(`iii-stream: ${(error as Error).message}\n`);
    await server?.stop().catch(() => undefined);
    return error instanceof ConfigError ? 2 : 1;
  }

  process.stdout.write(`iii-stream listening on ${server.url} (adapter: ${server.engine.adapter.name}${storeNote})\n`);
  const signal = await stopSignal;
  process.stdout.write(`iii-stream: ${signal} received, shutting down\n`);
  // A second signal means "now".
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  try {
    await server.stop();
  } catch (error) {
    process.stderr.write(`iii-stream: shutdown failed: ${String(error)}\n`);
  }
  return 0;
}

function intervalOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a positive number of milliseconds, got "${value}"`);
  return Number(value);
}

function numberOption(name: string, value: string | undefined): { port?: number } {
  if (value === undefined) return {};
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a port number, got "${value}"`);
  return { port: Number(value) };
}

process.exitCode = await main(process.argv.slice(2));
