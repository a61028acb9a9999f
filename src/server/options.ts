import type { Backend } from "../adapters/backend.js";
import { memoryBackend } from "../adapters/memory/memory-backend.js";
import type { EngineHooks } from "../core/hooks.js";
import { DEFAULT_MAX_VALUE_BYTES } from "../core/values.js";
import type { QueueLimits } from "../core/subscription.js";
import { DEFAULT_FUNCTION_TIMEOUT_MS, type FunctionsOptions } from "../functions/functions-runtime.js";
import type { WebSocketOptions } from "../ws/websocket-bridge.js";
import { resolveConnectionLimits, type ConnectionLimits } from "./connection-limits.js";

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
   * How far one subscriber may fall behind before it is ended; resolved by the engine.
   * @default 4,096 messages: a client may fall a few seconds behind a busy group without being cut off
   */
  queueLimits?: QueueLimits;
  /**
   * Extension points of the engine, run after those of the functions runtime.
   * @default none
   */
  hooks?: EngineHooks[];
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
   * Keys that writes and administration need as `Authorization: Bearer <key>`.
   * @default none: anyone who can reach the port may write, which suits the loopback default
   */
  apiKeys?: string[];
  /**
   * Origins (e.g. "https://app.example.com", or "*" for any) whose pages may use the
   * server from a browser: CORS for Connect and gRPC-Web, and WebSocket handshakes
   * that carry an Origin header.
   * @default none: pages on other sites can neither call nor open a WebSocket, which
   * protects a server on loopback from any site a local browser visits
   */
  allowedOrigins?: string[];
  /**
   * The WebSocket bridge (stream socket and worker protocol); see WebSocketOptions.
   * @default the bridge's own defaults
   */
  webSocket?: WebSocketOptions;
  /**
   * Where the server reports failures it cannot return to a caller (a trigger that
   * failed, a worker that misbehaved). Functions and the WebSocket bridge both use it.
   * @default standard error, each line prefixed with "iii-stream: "
   */
  log?: (line: string) => void;
  /**
   * Time limits (first bytes, HTTP/1.1 headers, request and keep-alive, idle HTTP/2
   * sessions) and caps (in total, per remote address) of connections; see ConnectionLimits.
   * @default each limit's own default there: stalled connections go within seconds,
   * while Subscribes and WebSockets, which have a stream open, are never cut
   */
  connections?: Partial<ConnectionLimits>;
}

/** The options with every server-level default filled in. */
export interface ResolvedOptions {
  port: number;
  host: string;
  backend: Backend;
  maxMessageBytes: number;
  heartbeatMs: number | undefined;
  queueLimits: QueueLimits | undefined;
  hooks: EngineHooks[];
  shutdownGraceMs: number;
  functions: FunctionsOptions & { functionTimeoutMs: number; log: (line: string) => void };
  apiKeys: readonly string[];
  allowedOrigins: readonly string[];
  webSocket: WebSocketOptions;
  log: (line: string) => void;
  connections: ConnectionLimits;
}

export const DEFAULT_PORT = 3112;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_SHUTDOWN_GRACE_MS = 3000;

export function resolveOptions(options: StreamServerOptions): ResolvedOptions {
  const log = options.log ?? ((line: string) => process.stderr.write(`iii-stream: ${line}\n`));
  return {
    port: options.port ?? DEFAULT_PORT,
    host: options.host ?? DEFAULT_HOST,
    backend: options.backend ?? memoryBackend(),
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_VALUE_BYTES,
    heartbeatMs: options.heartbeatMs,
    queueLimits: options.queueLimits,
    hooks: options.hooks ?? [],
    shutdownGraceMs: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
    functions: { ...options.functions, functionTimeoutMs: options.functions?.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS, log },
    apiKeys: options.apiKeys ?? [],
    allowedOrigins: options.allowedOrigins ?? [],
    webSocket: options.webSocket ?? {},
    log,
    connections: resolveConnectionLimits(options.connections),
  };
}
