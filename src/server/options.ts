import { DEFAULT_EXPIRY_SWEEP_MS } from "../core/expiry.js";
import type { Backend } from "../adapters/backend.js";
import { memoryBackend } from "../adapters/memory/memory-backend.js";
import type { EngineHooks } from "../core/hooks.js";
import type { Log } from "../core/log.js";
import { passThroughTracer, type Tracer } from "../core/tracer.js";
import { DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_MAX_UNPAGED_BYTES, DEFAULT_SNAPSHOT_CHUNK_BYTES } from "../core/engine.js";
import { DEFAULT_IDEMPOTENCY_WINDOW_MS } from "../core/request-ids.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import { DEFAULT_MAX_VALUE_BYTES } from "../core/values.js";
import { DEFAULT_QUEUE_LIMITS, type QueueLimits } from "../core/subscription.js";
import { DEFAULT_FUNCTION_TIMEOUT_MS, type FunctionsOptions } from "../functions/functions-runtime.js";
import { FunctionHosts } from "../functions/function-hosts.js";
import type { WebSocketOptions } from "../ws/websocket-bridge.js";
import { checkAllowedHosts, isLoopback } from "../access/hosts.js";
import { checkApiKeys } from "../access/api-keys.js";
import { resolveConnectionLimits, type ConnectionLimits } from "./connection-limits.js";
import { checkTls, type TlsOptions } from "./tls-context.js";
import { pinoLog } from "./pino-log.js";

/**
 * Options of one server. Every default is resolved once, by `resolveOptions()`; the
 * nested options of a component (`webSocket`, `queueLimits`, the rest of `functions`)
 * are resolved by that component, where they are documented.
 */
export interface StreamServerOptions {
  /**
   * TCP port. 0 picks a free one (tests, several servers on one machine).
   * @default 3112, the port clients of the reference expect
   */
  port?: number;
  /**
   * Address to listen on.
   * @default "127.0.0.1": nothing is exposed beyond this machine unless asked for
   */
  host?: string;
  /**
   * Where items, function registrations and the fleet bus live (see Backend). The server
   * closes it on `stop()`, whoever created it.
   * @default a fresh in-memory backend: nothing to set up, nothing survives the process
   */
  backend?: Backend;
  /**
   * Largest request and largest stored value, in bytes; also the largest WebSocket frame.
   * @default 1 MiB: room for any ordinary item, while one request cannot make the server buffer much
   */
  maxMessageBytes?: number;
  /**
   * A subscriber that received nothing for this long gets a heartbeat, in ms; resolved by the engine.
   * @default 15,000 ms: below the idle timeouts of common proxies and load balancers
   */
  heartbeatMs?: number;
  /**
   * How far one subscriber may fall behind before it is ended with RESOURCE_EXHAUSTED
   * (Subscribe, naming the offset to resume from) or close code 4429 (stream socket).
   * @default 4,096 messages and 4 MiB (see QueueLimits): a client may fall a few seconds
   * behind a busy group without being cut off, and one that stopped reading holds little
   */
  queueLimits?: Partial<QueueLimits>;
  /**
   * Most estimated bytes of items in one snapshot chunk; a larger group's snapshot comes
   * as several Snapshot messages (see the Snapshot message in the proto).
   * @default 256 KiB: far below the 4 MB that gRPC clients accept by default
   */
  snapshotChunkBytes?: number;
  /**
   * Most estimated bytes of an answer the reference's protocols send whole (a stream
   * socket `sync` that did not ask for chunks; the worker's `stream::list`,
   * `stream::list_groups`, `stream::list_all`); beyond it the call fails with
   * RESOURCE_EXHAUSTED instead of building a message too large to send.
   * @default 64 MiB
   */
  maxUnpagedBytes?: number;
  /**
   * How often the server looks for expired items (written with `ttl_ms`) and removes
   * them, each with one DELETE change marked `expired`; 0 turns removal off (expired
   * items are still never read). On a fleet every instance sweeps, and exactly one
   * removes each item.
   * @default 250 ms: an item is removed well within 1 s of its expiry on a server that
   * keeps up, for one cheap store read per interval when nothing is due
   */
  expirySweepMs?: number;
  /**
   * How long a group remembers a write's `request_id`: a retry within it writes
   * nothing and gets the first answer (see "Idempotent writes" in the README).
   * @default 600,000 ms (10 minutes): far beyond any client's retries, short enough that
   * a busy group keeps few records
   */
  idempotencyWindowMs?: number;
  /**
   * Most subscriptions the server holds at once, over Subscribe and stream sockets
   * together; the next is refused with RESOURCE_EXHAUSTED until one ends.
   * @default 100,000: beyond what one process fans out to with writes still served promptly,
   * and a flood of subscribers cannot take all its memory
   */
  maxSubscriptions?: number;
  /**
   * Most streams one HTTP/2 connection may have open at once, advertised to the client
   * as SETTINGS_MAX_CONCURRENT_STREAMS (a client that exceeds it gets its stream refused).
   * @default 1,000: plenty for one client multiplexing its subscriptions, while one
   * connection cannot hold thousands
   */
  http2MaxConcurrentStreams?: number;
  /**
   * Extension points of the engine, run after those of the functions runtime.
   * @default none
   */
  hooks?: EngineHooks[];
  /**
   * How long `stop()` keeps serving before it stops accepting connections, in ms. For
   * that time readiness is false (`/readyz` 503 "draining", gRPC health NOT_SERVING,
   * `/healthz` 503) while every request, subscription and WebSocket is served as before,
   * so that a load balancer that polls readiness sends new clients elsewhere before this
   * instance refuses them. Set it to the balancer's time to notice (probe interval times
   * failures needed, plus its propagation).
   * @default 0: no balancer is assumed, and any other guess would delay every stop (a
   * terminal's Ctrl-C, `docker stop`, a test) without knowing what it waits for
   */
  drainMs?: number;
  /**
   * How long `stop()` lets open requests (and leave triggers) finish before cutting
   * connections, in ms.
   * @default 3,000 ms: long enough for an ordinary call, short enough for a supervisor's stop timeout
   */
  shutdownGraceMs?: number;
  /**
   * Functions, triggers and the auth function (see FunctionsOptions).
   * `functionTimeoutMs` is resolved here, because the WebSocket bridge bounds worker
   * calls by it too.
   * @default none
   */
  functions?: Omit<FunctionsOptions, "log">;
  /**
   * Keys that writes and administration need as `Authorization: Bearer <key>`. Each must
   * be at least 16 printable ASCII characters without whitespace; any other stops the
   * start with INVALID_ARGUMENT naming its position, since it could never match or
   * could be guessed.
   * @default none: anyone who can reach the port may write, which suits the loopback default
   */
  apiKeys?: string[];
  /**
   * With `apiKeys` set, whether anyone who reaches the port may read without a key:
   * Subscribe, the stream socket, and a worker connection's `stream::*` reads and
   * `stream` triggers. Without keys it changes nothing (everything is open then).
   * @default false: a key that guards writes guards reads too, unless an `auth_function`
   * vets readers instead
   */
  publicReads?: boolean;
  /**
   * Whether unary calls (Set, Get, Update, Delete, Send, the lists, the trigger calls) are
   * served by the fast path, which answers them as Connect does without its per-call
   * pipeline; false sends every call through connect-node, as before the fast path.
   * @default true: the same answers at a fraction of the CPU per call; false remains for
   * comparing the two, and as a way back should a client ever see a difference
   */
  unaryFastPath?: boolean;
  /**
   * Origins (e.g. "https://app.example.com", or "*" for any) whose pages may use the
   * server from a browser: CORS for Connect and gRPC-Web, and WebSocket handshakes
   * that carry an Origin header.
   * @default none: pages on other sites can neither call nor open a WebSocket, which,
   * with the Host check of `allowedHosts` against pages that rebind their own name to
   * this address, protects a server on loopback from any site a local browser visits
   */
  allowedOrigins?: string[];
  /**
   * Host names (or addresses, or "*" for any) that requests may carry in `Host` or
   * `:authority`, besides those always allowed: localhost, 127.x.y.z, [::1] and the
   * address the server listens on (unless it is a wildcard such as 0.0.0.0). A request
   * for another host gets 421 before any handler runs; ports are not compared.
   * @default none beyond those: a page whose own name an attacker rebinds to this
   * machine's address (DNS rebinding) cannot use the server, which the origin checks
   * alone cannot prevent, since to the browser that page is then same-origin
   */
  allowedHosts?: string[];
  /**
   * Hosts a remote function may be registered at: names or addresses ("fn.internal",
   * "10.0.0.5"), each optionally with ":port" to pin the port, or "*" for any. A
   * registration elsewhere is PERMISSION_DENIED. Names are compared as written, not
   * resolved.
   * @default any host when `apiKeys` are set (only key holders register); loopback only
   * (localhost, 127.x.x.x, [::1]) when they are not, since anyone who can reach the port
   * could otherwise make the server POST to any internal service
   */
  allowedFunctionHosts?: string[];
  /**
   * The WebSocket bridge (stream socket and worker protocol); see WebSocketOptions.
   * @default the bridge's own defaults
   */
  webSocket?: WebSocketOptions;
  /**
   * Where the server reports what it cannot return to a caller (a trigger that failed,
   * a worker that misbehaved, a hook that threw), its warnings at start, and, at
   * `debug`, an access log of unary calls and subscription ends. `silentLog` keeps
   * nothing; `RecordingLog` keeps records for assertions.
   * @default pino JSON lines at `info` on standard error: an embedding program's own
   * standard output stays its own, and failures are still seen
   */
  log?: Log;
  /**
   * Where spans of unary calls and trigger calls go (the command line starts the
   * OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set). The server does not
   * close it: whoever made it does, after `stop()`.
   * @default passThroughTracer: nothing recorded or exported, no cost for calls without
   * a `traceparent`, and a write's incoming trace still reaches the remote functions its
   * triggers call
   */
  tracer?: Tracer;
  /**
   * Time limits (first bytes, HTTP/1.1 headers, request and keep-alive, idle HTTP/2
   * sessions) and caps (in total, per remote address) of connections; see ConnectionLimits.
   * @default each limit's own default there: stalled connections go within seconds,
   * while Subscribes and WebSockets, which have a stream open, are never cut
   */
  connections?: Partial<ConnectionLimits>;
  /**
   * Serve HTTPS with this certificate and key (PEM) instead of cleartext: every protocol
   * stays on the one port, HTTP/2 (gRPC, Connect) and HTTP/1.1 (Connect, gRPC-Web,
   * `wss://` WebSockets) chosen by ALPN. A key that is not the certificate's, or PEM that
   * cannot be parsed, throws INVALID_ARGUMENT from the constructor.
   * @default none: cleartext, for loopback or behind a proxy or mesh sidecar that
   * terminates TLS
   */
  tls?: TlsOptions;
  /**
   * Prometheus metrics: `GET /metrics` and what is counted for it; see MetricsOptions.
   * @default on, at `/metrics` on the service port, without stream names
   */
  metrics?: MetricsOptions;
  /**
   * Serve the web console at `/console/`: streams, groups and items live, functions and
   * triggers, the server's figures. It is a page of static files and adds no way in: it
   * calls the same RPCs as any client, with the API key its user types (read-only without
   * one when `apiKeys` are set), and embeds no secret, so `true` is safe on any address.
   * @default true when `host` is a loopback address, false otherwise: on this machine it is
   * what a developer looks at first, while a server on the network serves nothing it was
   * not asked to
   */
  console?: boolean;
}

/** Where metrics are served and what they carry. */
export interface MetricsOptions {
  /**
   * Whether anything is counted and `/metrics` served at all.
   * @default true: counting costs nothing measurable (see the fan-out benchmark), and
   * an operator expects the endpoint to be there
   */
  enabled?: boolean;
  /**
   * Serve `/metrics` on this port (plain HTTP, same host) instead of the service port,
   * so that the monitoring network can reach it while the service port stays closed, or
   * the other way round. 0 picks a free port.
   * @default none: `/metrics` on the service port
   */
  port?: number;
  /**
   * Add a `stream` label with the stream name to `iii_stream_writes_total`,
   * `iii_stream_subscriptions` and `iii_stream_subscriptions_ended_total`.
   * @default false: every stream name would be a series of its own, which with
   * many or generated names overwhelms Prometheus; turn it on only for a few, fixed streams
   */
  streamLabels?: boolean;
}

/** The options with every server-level default filled in. */
export interface ResolvedOptions {
  port: number;
  host: string;
  backend: Backend;
  maxMessageBytes: number;
  heartbeatMs: number | undefined;
  queueLimits: QueueLimits;
  snapshotChunkBytes: number;
  maxUnpagedBytes: number;
  expirySweepMs: number;
  idempotencyWindowMs: number;
  maxSubscriptions: number;
  http2MaxConcurrentStreams: number;
  hooks: EngineHooks[];
  drainMs: number;
  shutdownGraceMs: number;
  functions: FunctionsOptions & { functionTimeoutMs: number; log: Log };
  apiKeys: readonly string[];
  publicReads: boolean;
  unaryFastPath: boolean;
  allowedOrigins: readonly string[];
  allowedHosts: readonly string[];
  allowedFunctionHosts: FunctionHosts;
  webSocket: WebSocketOptions;
  log: Log;
  tracer: Tracer;
  connections: ConnectionLimits;
  tls: TlsOptions | undefined;
  metrics: { enabled: boolean; port: number | undefined; streamLabels: boolean };
  console: boolean;
}

export const DEFAULT_PORT = 3112;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_SHUTDOWN_GRACE_MS = 3000;
export const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS = 1000;

/** An admission limit: unset keeps the default, anything but a positive integer is refused by name. */
function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new StreamError(ErrorCode.InvalidArgument, `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** A duration that may be 0: unset keeps the default, anything but a non-negative integer is refused by name. */
function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    throw new StreamError(ErrorCode.InvalidArgument, `${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function metricsPort(port: number | undefined): number | undefined {
  if (port !== undefined && !(Number.isSafeInteger(port) && port >= 0 && port <= 65535)) {
    throw new StreamError(ErrorCode.InvalidArgument, `metrics.port must be a port number from 0 to 65535, got ${port}`);
  }
  return port;
}

export function resolveOptions(options: StreamServerOptions): ResolvedOptions {
  const log = options.log ?? pinoLog({ fd: 2 });
  return {
    port: options.port ?? DEFAULT_PORT,
    host: options.host ?? DEFAULT_HOST,
    backend: options.backend ?? memoryBackend(),
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_VALUE_BYTES,
    heartbeatMs: options.heartbeatMs,
    queueLimits: {
      maxMessages: positiveInteger("queueLimits.maxMessages", options.queueLimits?.maxMessages, DEFAULT_QUEUE_LIMITS.maxMessages),
      maxBytes: positiveInteger("queueLimits.maxBytes", options.queueLimits?.maxBytes, DEFAULT_QUEUE_LIMITS.maxBytes),
    },
    snapshotChunkBytes: positiveInteger("snapshotChunkBytes", options.snapshotChunkBytes, DEFAULT_SNAPSHOT_CHUNK_BYTES),
    maxUnpagedBytes: positiveInteger("maxUnpagedBytes", options.maxUnpagedBytes, DEFAULT_MAX_UNPAGED_BYTES),
    expirySweepMs: nonNegativeInteger("expirySweepMs", options.expirySweepMs, DEFAULT_EXPIRY_SWEEP_MS),
    idempotencyWindowMs: positiveInteger("idempotencyWindowMs", options.idempotencyWindowMs, DEFAULT_IDEMPOTENCY_WINDOW_MS),
    maxSubscriptions: positiveInteger("maxSubscriptions", options.maxSubscriptions, DEFAULT_MAX_SUBSCRIPTIONS),
    http2MaxConcurrentStreams: positiveInteger("http2MaxConcurrentStreams", options.http2MaxConcurrentStreams, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
    hooks: options.hooks ?? [],
    drainMs: nonNegativeInteger("drainMs", options.drainMs, 0),
    shutdownGraceMs: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
    functions: { ...options.functions, functionTimeoutMs: options.functions?.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS, log },
    apiKeys: checkApiKeys(options.apiKeys ?? []),
    publicReads: options.publicReads ?? false,
    unaryFastPath: options.unaryFastPath ?? true,
    allowedOrigins: options.allowedOrigins ?? [],
    allowedHosts: checkAllowedHosts(options.allowedHosts ?? []),
    allowedFunctionHosts: FunctionHosts.resolve(options.allowedFunctionHosts, (options.apiKeys ?? []).length > 0),
    webSocket: options.webSocket ?? {},
    log,
    tracer: options.tracer ?? passThroughTracer,
    connections: resolveConnectionLimits(options.connections),
    tls: options.tls ? checkTls(options.tls) : undefined,
    metrics: {
      enabled: options.metrics?.enabled ?? true,
      port: metricsPort(options.metrics?.port),
      streamLabels: options.metrics?.streamLabels ?? false,
    },
    console: options.console ?? isLoopback(options.host ?? DEFAULT_HOST),
  };
}
