import { parseArgs } from "node:util";
import { chooseAdapter, createAdapter } from "./adapters/create-adapter.js";
import { ConfigError, loadConfigFile, validateConfig, type FileConfig } from "./config.js";
import { createStreamServer } from "./server.js";

const HELP = `Usage: iii-stream [options]

Serves StreamService (Connect, gRPC and gRPC-Web) and /healthz on one port.

Options:
  --port N          port to listen on (default 3112; 0 picks a free port)
  --host ADDR       address to listen on (default 127.0.0.1)
  --adapter NAME    where items live: memory (default)
  --config FILE     YAML or JSON config file (keys: port, host, auth_function,
                    adapter {name, config}, max_message_bytes, heartbeat_ms,
                    history_limit, subscriber_queue_limit); \${VAR:default}
                    placeholders in it are read from the environment
  -h, --help        show this help

Environment (overrides the config file; flags override both):
  III_STREAM_PORT, III_STREAM_HOST, III_STREAM_ADAPTER, III_STREAM_CONFIG

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

  const env = process.env;
  let config: FileConfig = {};
  let server;
  try {
    const configPath = args.config ?? env.III_STREAM_CONFIG;
    if (configPath) config = loadConfigFile(configPath);
    config = validateConfig(
      {
        ...config,
        ...numberOption("III_STREAM_PORT", env.III_STREAM_PORT),
        ...(env.III_STREAM_HOST ? { host: env.III_STREAM_HOST } : {}),
        ...numberOption("--port", args.port),
        ...(args.host ? { host: args.host } : {}),
      },
      "the command line and environment",
    );
    const choice = chooseAdapter(args.adapter ?? env.III_STREAM_ADAPTER, config.adapter);
    const adapter = await createAdapter({ ...choice, historyLimit: config.history_limit });
    server = createStreamServer({
      port: config.port,
      host: config.host,
      adapter,
      maxMessageBytes: config.max_message_bytes,
      heartbeatMs: config.heartbeat_ms,
      queueLimits: config.subscriber_queue_limit ? { maxMessages: config.subscriber_queue_limit } : undefined,
    });
    await server.start();
  } catch (error) {
    process.stderr.write(`iii-stream: ${(error as Error).message}\n`);
    await server?.stop().catch(() => undefined);
    return error instanceof ConfigError ? 2 : 1;
  }

  process.stdout.write(`iii-stream listening on ${server.url} (adapter: ${server.engine.adapter.name})\n`);
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`iii-stream: ${signal} received, shutting down\n`);
      // A second signal means "now".
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      void running.stop().then(resolve, (error: unknown) => {
        process.stderr.write(`iii-stream: shutdown failed: ${String(error)}\n`);
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}

function numberOption(name: string, value: string | undefined): { port?: number } {
  if (value === undefined) return {};
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a port number, got "${value}"`);
  return { port: Number(value) };
}

process.exitCode = await main(process.argv.slice(2));
