import type { ResolvedOptions } from "./options.js";

/**
 * The settings a server runs with, every default filled in, for the start-up log line:
 * an operator sees what the file, the environment and the flags added up to. Secrets
 * never appear: API keys are counted, not shown (remote function URLs carry no
 * credentials; registration refuses them).
 */
export function effectiveConfig(options: ResolvedOptions, port: number, metricsPort?: number): Record<string, unknown> {
  const { functions } = options;
  return {
    port,
    host: options.host,
    max_message_bytes: options.maxMessageBytes,
    ...(options.heartbeatMs !== undefined ? { heartbeat_ms: options.heartbeatMs } : {}),
    subscriber_queue_limit: options.queueLimits.maxMessages,
    subscriber_queue_bytes: options.queueLimits.maxBytes,
    snapshot_chunk_bytes: options.snapshotChunkBytes,
    max_unpaged_bytes: options.maxUnpagedBytes,
    expiry_sweep_ms: options.expirySweepMs,
    idempotency_window_ms: options.idempotencyWindowMs,
    max_subscriptions: options.maxSubscriptions,
    http2_max_concurrent_streams: options.http2MaxConcurrentStreams,
    drain_ms: options.drainMs,
    shutdown_grace_ms: options.shutdownGraceMs,
    api_keys: options.apiKeys.length,
    public_reads: options.publicReads,
    unary_fast_path: options.unaryFastPath,
    allowed_origins: options.allowedOrigins,
    allowed_hosts: options.allowedHosts,
    allowed_function_hosts: String(options.allowedFunctionHosts),
    ...(functions.authFunction !== undefined ? { auth_function: functions.authFunction } : {}),
    function_timeout_ms: functions.functionTimeoutMs,
    ...(functions.authTimeoutMs !== undefined ? { auth_timeout_ms: functions.authTimeoutMs } : {}),
    functions: (functions.remote ?? []).map((f) => ({ function_id: f.functionId, url: f.url })),
    triggers: (functions.triggers ?? []).length,
    web_socket: snakeCaseKeys(options.webSocket),
    connections: snakeCaseKeys(options.connections),
    metrics_enabled: options.metrics.enabled,
    // Where /metrics is served: the service port unless a port of its own was asked for.
    ...(options.metrics.enabled ? { metrics_port: metricsPort ?? port, metrics_stream_labels: options.metrics.streamLabels } : {}),
    // Whether the port serves HTTPS; the key is a secret and the files' paths are the command line's.
    tls: options.tls !== undefined,
    console: options.console,
  };
}

/** Option names as the config file spells them (firstBytesTimeoutMs: first_bytes_timeout_ms). */
function snakeCaseKeys(options: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).map(([key, value]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), value]));
}
