import { StreamEngine } from "../core/engine.js";
import { ApiKeys } from "../access/api-keys.js";
import { ReadAccess } from "../access/read-access.js";
import { openAccessWarning } from "../access/access-warning.js";
import { corsHandler } from "../access/origins.js";
import { HostAllowList, hostsNotice } from "../access/hosts.js";
import { FlushScheduler } from "../core/flush-scheduler.js";
import type { JsonValue } from "../core/json.js";
import type { SubscriberStats } from "../core/subscriber-registry.js";
import type { FunctionHandler } from "../functions/types.js";
import { MemoryRegistrationStore } from "../adapters/memory/memory-registration-store.js";
import { FunctionsRuntime } from "../functions/functions-runtime.js";
import { apiKeyInterceptor } from "../rpc/api-key-interceptor.js";
import { accessLogInterceptor } from "../rpc/access-log-interceptor.js";
import { tracingInterceptor } from "../rpc/tracing-interceptor.js";
import { metricsInterceptor } from "../rpc/metrics-interceptor.js";
import { NO_METRICS } from "../core/metrics.js";
import { SubscribeEndpoint } from "../rpc/subscribe-stream/subscribe-endpoint.js";
import { WebSocketBridge } from "../ws/websocket-bridge.js";
import { connectRoutes, httpRoutes, STRICT_JSON } from "./http-routes.js";
import { unaryRoutes } from "./unary-routes.js";
import { OnePortListener, type ConnectionStats } from "./one-port-listener.js";
import { DEFAULT_MAX_CONNECTIONS } from "./connection-limits.js";
import { openFileLimitWarning } from "./open-file-limit.js";
import type { Readiness } from "./health-endpoints.js";
import { resolveOptions, type ResolvedOptions, type StreamServerOptions } from "./options.js";
import { PrometheusMetrics } from "./prometheus-metrics.js";
import { MetricsListener, serveMetrics } from "./metrics-endpoint.js";
import { effectiveConfig } from "./effective-config.js";
import { consoleRoute } from "./console-route.js";
import { packageVersion } from "./package-version.js";

export type { MetricsOptions, StreamServerOptions } from "./options.js";
export type { ConnectionStats } from "./one-port-listener.js";
export type { Readiness } from "./health-endpoints.js";

export interface ServerStats extends SubscriberStats {
  /** Functions callable from here: in process, of workers (here and elsewhere) and remote. */
  functions: number;
  /** Triggers in force: stored, declared and those of connected workers. */
  triggers: number;
  /** Open WebSocket connections (stream sockets and workers). */
  webSockets: number;
}

/**
 * One port serving Connect (HTTP/1.1 and HTTP/2), gRPC (h2c, or h2 over TLS) and
 * gRPC-Web, the WebSocket bridge, plus `GET /livez`, `/readyz` and `/healthz`. Create it,
 * `start()` it, `stop()` it.
 *
 * The wiring, in order: the store (from the options), the functions runtime and the
 * engine, the transports (Subscribe, the WebSocket bridge, Connect), the HTTP routes,
 * and the one-port listener.
 */
export class StreamServer {
  readonly engine: StreamEngine;
  /** Functions, triggers and the subscription gate. */
  readonly functions: FunctionsRuntime;
  /** The stream socket and the iii worker protocol, on HTTP/1.1 upgrades. */
  readonly webSockets: WebSocketBridge;
  private readonly listener: OnePortListener;
  /** The separate metrics port's listener, when `metrics.port` is set. */
  private readonly metricsListener: MetricsListener | undefined;
  private readonly options: ResolvedOptions;
  private started = false;
  private draining = false;
  private stopping: Promise<void> | undefined;

  constructor(options: StreamServerOptions = {}) {
    const resolved = (this.options = resolveOptions(options));
    const apiKeys = new ApiKeys(resolved.apiKeys);
    const readAccess = new ReadAccess(apiKeys, { publicReads: resolved.publicReads, authFunction: resolved.functions.authFunction !== undefined });

    const { backend } = resolved;
    const prometheus = resolved.metrics.enabled
      ? new PrometheusMetrics({
          streamLabels: resolved.metrics.streamLabels,
          sources: {
            storeReady: () => this.engine.isReady(),
            storeConnections: () => backend.items.connectionStatus?.(),
            webSocketConnections: () => this.webSockets.connectionCounts(),
            triggerLoads: () => this.functions.listTriggerLoads(),
            connections: () => this.listener.stats().open,
            build: { version: packageVersion(), adapter: resolved.backend.items.name },
          },
        })
      : undefined;
    const metrics = prometheus ?? NO_METRICS;
    this.functions = new FunctionsRuntime({
      metrics,
      ...resolved.functions,
      registrations: backend.registrations ?? new MemoryRegistrationStore(),
      fleet: backend.fleet,
      outbox: backend.outbox,
      changesSince: (streamName, groupId, afterOffset) => backend.items.changesSince(streamName, groupId, afterOffset),
      allowedHosts: resolved.allowedFunctionHosts,
      tracer: resolved.tracer,
    });
    // One per server: every Subscribe call and stream socket flushes from one timer per
    // event-loop turn, and a large group's fan-out runs in the same slices.
    const scheduler = new FlushScheduler();
    this.engine = new StreamEngine({
      store: backend.items,
      scheduler,
      maxValueBytes: resolved.maxMessageBytes,
      heartbeatMs: resolved.heartbeatMs,
      queueLimits: resolved.queueLimits,
      snapshotChunkBytes: resolved.snapshotChunkBytes,
      maxUnpagedBytes: resolved.maxUnpagedBytes,
      expirySweepMs: resolved.expirySweepMs,
      idempotencyWindowMs: resolved.idempotencyWindowMs,
      maxSubscriptions: resolved.maxSubscriptions,
      hooks: [this.functions.hooks, ...resolved.hooks],
      metrics,
      log: resolved.log,
    });
    const subscribe = new SubscribeEndpoint({
      scheduler,
      engine: this.engine,
      authenticate: (handshake) => this.functions.authenticate(handshake),
      readAccess,
      readMaxBytes: resolved.maxMessageBytes,
      jsonOptions: STRICT_JSON,
      metrics,
    });
    this.webSockets = new WebSocketBridge(
      {
        engine: this.engine,
        functions: this.functions,
        maxMessageBytes: resolved.maxMessageBytes,
        apiKeys,
        readAccess,
        allowedOrigins: resolved.allowedOrigins,
        functionTimeoutMs: resolved.functions.functionTimeoutMs,
        log: resolved.log,
        scheduler,
        metrics,
      },
      resolved.webSocket,
    );
    // Outermost first: metrics (calls the key check refuses are counted too), tracing (so
    // that every record below carries the trace), the access log, the key check.
    const interceptors = [
      ...(prometheus ? [metricsInterceptor(prometheus)] : []),
      tracingInterceptor(resolved.tracer),
      accessLogInterceptor(resolved.log),
      ...(apiKeys.configured ? [apiKeyInterceptor(apiKeys)] : []),
    ];
    const connect = connectRoutes({
      engine: this.engine,
      functions: this.functions,
      interceptors,
      readMaxBytes: resolved.maxMessageBytes,
      health: () => ({ readiness: this.readiness(), adapter: this.engine.storeName }),
      metrics: prometheus && resolved.metrics.port === undefined ? (req, res) => serveMetrics(prometheus, req, res) : undefined,
      console: resolved.console
        ? consoleRoute({
            settings: {
              apiKeys: apiKeys.configured,
              metrics: prometheus !== undefined && resolved.metrics.port === undefined,
            },
            subscriberCount: (stream, group) => this.engine.subscriberCount(stream, group),
            readAccess,
          })
        : undefined,
    });
    this.metricsListener = prometheus && resolved.metrics.port !== undefined ? new MetricsListener(prometheus) : undefined;

    const routes = httpRoutes({
      hosts: new HostAllowList(resolved.allowedHosts, resolved.host),
      cors: corsHandler(resolved.allowedOrigins),
      subscribe,
      unary: resolved.unaryFastPath
        ? unaryRoutes({ engine: this.engine, functions: this.functions, interceptors, readMaxBytes: resolved.maxMessageBytes })
        : undefined,
      connect,
      upgrade: (req, socket, head) => this.webSockets.handleUpgrade(req, socket, head),
    });
    this.listener = new OnePortListener(
      routes,
      resolved.connections,
      { maxConcurrentStreams: resolved.http2MaxConcurrentStreams },
      (message) => resolved.log.warn(message),
      resolved.tls,
    );
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return this.listener.port ?? this.options.port;
  }

  /** The port `/metrics` is served on: the separate metrics port when set, else the service port. */
  get metricsPort(): number {
    return this.metricsListener?.port ?? this.options.metrics.port ?? this.port;
  }

  get url(): string {
    const host = this.options.host;
    const scheme = this.options.tls ? "https" : "http";
    return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${this.port}`;
  }

  /** Registers (or replaces) an in-process function; the returned function removes it. */
  registerFunction(functionId: string, handler: FunctionHandler): () => void {
    return this.functions.registerFunction(functionId, handler);
  }

  /**
   * Calls a function wherever it is served (in process, by a worker here or on another
   * instance, or remotely), as a trigger would. Default timeout: the functions' own.
   */
  invoke(functionId: string, payload: JsonValue, timeoutMs?: number): Promise<JsonValue | undefined> {
    return this.functions.invoke(functionId, payload, timeoutMs);
  }

  /** What this server holds now, for metrics and for tests that check nothing leaks. */
  stats(): ServerStats {
    return {
      ...this.engine.stats(),
      functions: this.functions.listFunctions().length,
      triggers: this.functions.listTriggers().length,
      webSockets: this.webSockets.size,
    };
  }

  /** The settings this server runs with, defaults filled in and secrets left out (the start-up log line). */
  effectiveConfig(): Record<string, unknown> {
    return { adapter: this.engine.storeName, ...effectiveConfig(this.options, this.port, this.metricsPort) };
  }

  /** Open and refused connections, and the bytes waiting in their sockets. */
  connectionStats(): ConnectionStats {
    return this.listener.stats();
  }

  /** Whether the server takes new clients: started, not draining or stopping, and its store ready. */
  isReady(): boolean {
    return this.readiness() === "ready";
  }

  /** Where the server is in its life; see Readiness. */
  readiness(): Readiness {
    if (!this.started) return "starting";
    if (this.draining) return "draining";
    if (this.stopping) return "stopping";
    return this.engine.isReady() ? "ready" : "store_unavailable";
  }

  async start(): Promise<void> {
    const { port, host } = this.options;
    await this.functions.start();
    await this.listener.listen(port, host);
    if (this.metricsListener) await this.metricsListener.listen(this.options.metrics.port!, host);
    this.started = true;
    const warning = openAccessWarning(host, this.options.apiKeys, this.options.functions.authFunction);
    if (warning) this.options.log.warn(warning);
    const hostsNote = hostsNotice(host, this.options.allowedHosts);
    if (hostsNote) this.options.log.warn(hostsNote);
    const filesNote = openFileLimitWarning(this.options.connections.maxConnections, DEFAULT_MAX_CONNECTIONS);
    if (filesNote) this.options.log.warn(filesNote);
  }

  /**
   * Drains for `drainMs` (not ready, still serving everything), then stops accepting
   * connections, ends open subscriptions with UNAVAILABLE (clients resume elsewhere with
   * from_offset), lets other requests finish for the grace period, and closes every
   * connection and the backend. A server that never started stops without draining.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.started && this.options.drainMs > 0) {
      this.draining = true;
      await new Promise((resolve) => setTimeout(resolve, this.options.drainMs));
      this.draining = false;
    }
    const grace = this.options.shutdownGraceMs;
    await this.listener.close(grace, () => {
      this.webSockets.close();
      this.engine.shutdown("the server is shutting down");
    });
    // The leave triggers of the subscriptions just ended, before the backend they may write to closes.
    await this.functions.close(grace);
    await this.engine.close();
    await this.metricsListener?.close();
  }
}

/** Creates a server; call `start()` to listen. */
export function createStreamServer(options: StreamServerOptions = {}): StreamServer {
  return new StreamServer(options);
}
