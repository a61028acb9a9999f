import { parseArgs } from "node:util";
import { createBackend } from "../adapters/backend.js";
import { createStreamServer } from "../server/stream-server.js";
import { ConfigError } from "./config.js";
import { configToOptions, maskedUrl, storeDetail, storeSettings } from "./config-to-options.js";
import { packageVersion } from "../server/package-version.js";
import { SERVE_FLAGS } from "./serve-flags.js";
import { readTlsFiles } from "./tls-files.js";
import { CLIENT_COMMANDS } from "./client-commands/command-line.js";
import { errorFields } from "../core/log.js";
import { pinoLog } from "../server/pino-log.js";

const HELP = `Usage: iii-stream [options]
       iii-stream COMMAND [arguments] [options]

Without a command, serves StreamService and TriggerService (Connect, gRPC and
gRPC-Web), gRPC health and server reflection, the health endpoints /livez,
/readyz and /healthz, and the WebSocket bridge (the stream socket and the iii
worker protocol) on one port. With a command, talks to a running server as a
client:

${Object.entries(CLIENT_COMMANDS)
  .map(([name, summary]) => `  ${name.padEnd(9)}${summary}`)
  .join("\n")}

\`iii-stream COMMAND --help\` describes a command, its flags and exit codes.

Options:
  --port N          port to listen on (default 3112; 0 picks a free port)
  --host ADDR       address to listen on (default 127.0.0.1)
  --adapter NAME    where items live: file (default; durable, on disk),
                    memory (nothing survives a restart) or redis (shared by
                    several servers behind a load balancer)
  --redis-url URL   the redis adapter's Redis, standalone or any node of a
                    Cluster (default redis://127.0.0.1:6379)
  --redis-prefix P  prefix of the redis adapter's keys and channels (default
                    iii-stream:); servers share data exactly when they share
                    the Redis and the prefix, so give each deployment its own
  --data-dir DIR    directory of the file adapter's store (default ./data);
                    one server at a time may use it
  --sync-interval-ms N
                    relaxed durability for the file adapter: reply before the
                    fsync and fsync every N ms; a power loss or OS crash can
                    lose the last N ms of acknowledged writes (default: every
                    write is on disk before its reply)
  --tls-cert FILE   serve HTTPS (h2 and http/1.1 by ALPN, wss:// for the
                    WebSockets) with this PEM certificate chain; needs --tls-key
  --tls-key FILE    the PEM private key of --tls-cert
  --drain-ms N      on SIGTERM or SIGINT, first serve N ms more with /readyz
                    503 "draining" and gRPC health NOT_SERVING, so that a load
                    balancer polling readiness moves new clients elsewhere;
                    set it to the balancer's time to notice (default 0)
  --idempotency-window-ms N
                    how long a group remembers a write's request_id: a retry
                    within it writes nothing and gets the first answer
                    (default 600000, 10 minutes)
  --metrics-port N  serve Prometheus metrics (GET /metrics) on this port, plain
                    HTTP on the same host, instead of on the service port
                    (default: /metrics on the service port)
  --no-metrics      count nothing and serve no /metrics (default: metrics on)
  --console BOOL    serve the web console at /console/: true or false (default:
                    true when --host is a loopback address, false otherwise)
  --no-unary-fast-path
                    serve every unary call through connect-node rather than
                    the fast path, which answers them alike at less CPU per
                    call (default: the fast path)
  --log-level L     least severe log level written: fatal, error, warn, info
                    (default), debug (adds an access log of unary calls and
                    subscription ends) or trace
  --log-format F    json (one object per line, the default when standard
                    output is not a terminal) or pretty (the default on one)
  --config FILE     YAML or JSON config file (keys: port, host, auth_function,
                    adapter {name: file|memory|redis|kv, config}, max_message_bytes,
                    heartbeat_ms, history_limit, subscriber_queue_limit,
                    api_keys, functions, triggers, function_timeout_ms,
                    auth_timeout_ms, allowed_origins, allowed_hosts,
                    allowed_function_hosts, browser_allowed_functions,
                    public_reads, max_subscriptions,
                    http2_max_concurrent_streams, log_level, log_format,
                    drain_ms, idempotency_window_ms, metrics_enabled, metrics_port,
                    metrics_stream_labels, tls_cert, tls_key, console);
                    \${VAR:default} placeholders in it are read from the
                    environment
  -h, --help        show this help
  -v, --version     print the version and exit

Environment (overrides the config file; flags override both):
  III_STREAM_PORT, III_STREAM_HOST, III_STREAM_ADAPTER, III_STREAM_CONFIG,
  III_STREAM_REDIS_URL, III_STREAM_REDIS_PREFIX, III_STREAM_LOG_LEVEL,
  III_STREAM_LOG_FORMAT, III_STREAM_DRAIN_MS, III_STREAM_METRICS_PORT,
  III_STREAM_API_KEYS (comma-separated keys that writes and administration need;
  each at least 16 printable ASCII characters without whitespace)
  OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): export
  spans of unary calls and trigger calls over OTLP/HTTP there; the other
  OTEL_* variables of the OpenTelemetry SDK apply (OTEL_SERVICE_NAME, ...)

Stops on SIGINT or SIGTERM: after the drain (--drain-ms), open subscriptions
end with UNAVAILABLE and the process exits 0. A second signal exits at once.

Logs go to standard output: JSON lines, or readable lines on a terminal. A
traceparent header (W3C trace context) on a call puts its trace and span ids in
its log lines and passes the trace on to the remote functions its triggers call.
`;

/** Runs the server until SIGINT or SIGTERM; resolves with the process's exit code. */
export async function serve(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: SERVE_FLAGS, strict: true }).values;
  } catch (error) {
    process.stderr.write(`iii-stream: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }

  // Listen for signals before anything can print that the server is up: a
  // supervisor may send SIGTERM the moment it reads that line.
  const stopSignal = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });

  let startup;
  try {
    startup = configToOptions(
      {
        port: args.port,
        host: args.host,
        adapter: args.adapter,
        dataDir: args["data-dir"],
        syncIntervalMs: args["sync-interval-ms"],
        redisUrl: args["redis-url"],
        redisPrefix: args["redis-prefix"],
        tlsCert: args["tls-cert"],
        tlsKey: args["tls-key"],
        drainMs: args["drain-ms"],
        idempotencyWindowMs: args["idempotency-window-ms"],
        metricsPort: args["metrics-port"],
        noMetrics: args["no-metrics"],
        console: args.console,
        noUnaryFastPath: args["no-unary-fast-path"],
        config: args.config,
        logLevel: args["log-level"],
        logFormat: args["log-format"],
      },
      process.env,
    );
  } catch (error) {
    // No log yet: a setting is wrong, and saying so is the command line's own answer.
    process.stderr.write(`iii-stream: ${(error as Error).message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }

  const { backend: choice, options, ignored, tlsFiles } = startup;
  const log = pinoLog({ level: startup.log.level, format: startup.log.format ?? (process.stdout.isTTY ? "pretty" : "json") });
  let server;
  // "memory", "redis", or "file, data: /abs/dir", for the line that says the server is up.
  let storeLabel = "";
  // Without an OTLP endpoint the SDK is never even loaded: tracing then costs nothing.
  const tracesTo = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const tracer = tracesTo ? (await import("../server/otel-tracer.js")).otelTracer(packageVersion()) : undefined;
  try {
    if (ignored.length > 0) log.warn("ignored: the reference's kv store settings have no effect here", { settings: ignored });
    const tls = tlsFiles ? { tls: readTlsFiles(tlsFiles) } : {};
    const backend = await createBackend(choice, log);
    storeLabel = backend.items.name + storeDetail(choice);
    server = createStreamServer({ ...options, ...tls, backend, log, tracer });
    await server.start();
  } catch (error) {
    log.fatal(`iii-stream cannot start: ${(error as Error).message}`);
    await server?.stop().catch(() => undefined);
    await tracer?.close().catch(() => undefined);
    return error instanceof ConfigError ? 2 : 1;
  }

  // The one line that says the server is up, with everything it runs with.
  log.info(`iii-stream listening on ${server.url} (adapter: ${storeLabel})`, {
    config: { ...server.effectiveConfig(), ...storeSettings(choice), log_level: startup.log.level, traces: tracesTo ? maskedUrl(tracesTo) : "off" },
  });
  const signal = await stopSignal;
  const drain = options.drainMs ?? 0;
  log.info(`${signal} received, ${drain > 0 ? `draining for ${drain} ms (not ready, still serving), then ` : ""}shutting down`, { signal });
  // A second signal means "now".
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  try {
    await server.stop();
  } catch (error) {
    log.error("shutdown failed", errorFields(error));
  }
  // The spans of the last calls, exported before the process ends.
  await tracer?.close().catch((error: unknown) => log.error("cannot export the last spans", errorFields(error)));
  return 0;
}
