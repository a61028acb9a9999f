import { randomUUID } from "node:crypto";
import type http from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { isJsonObject, type JsonObject, type JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { FlushScheduler } from "../core/flush-scheduler.js";
import type { Metrics, SubscriptionEndReason } from "../core/metrics.js";
import { handshakeFromNode, peerAddress } from "../access/handshake.js";
import type { Log } from "../core/log.js";
import type { FunctionsRuntime } from "../functions/functions-runtime.js";
import { CloseCode, WS_MESSAGE_TOO_BIG, type Closing } from "./close-codes.js";
import type { ApiKeys } from "../access/api-keys.js";
import { READ_KEY_REQUIRED, type ReadAccess } from "../access/read-access.js";
import { originAllowed } from "../access/origins.js";
import { DEFAULT_BROWSER_ALLOWED_FUNCTIONS, isPrivileged } from "./worker-privilege.js";
import { StreamSocket } from "./stream-socket.js";
import { offsetFromQuery } from "./wire-messages.js";
import { hasUnfinishedMessage } from "./unfinished-message.js";
import { WORKER_MESSAGE_TYPES, WorkerSocket } from "./worker-socket.js";

export interface WebSocketOptions {
  /**
   * Functions a restricted worker connection (a browser page, or a client without an
   * API key when keys are configured) may invoke. Default: the read functions
   * (`stream::get`, `stream::list`, `stream::list_groups`, `stream::list_all`), so a
   * browser cannot write unless the operator allows it.
   */
  browserAllowedFunctions?: string[];
  /**
   * How often the server pings every connection; a peer that has not answered the
   * previous ping by the next one is dropped. Default 30,000 ms: within the idle
   * timeouts of common proxies, and twice within the iii SDK's 60 s idle timeout.
   */
  pingIntervalMs?: number;
  /** Most subscriptions one stream-socket connection may hold. Default 1,000, which bounds what one client can hold open. */
  maxSubscriptionsPerConnection?: number;
  /**
   * Most functions one worker connection may register, privileged or not; the next one
   * gets a `functionregistrationresult` with `resource_exhausted` and is not registered.
   * @default 1,000: far more than a real worker offers, while one connection cannot
   * flood the registry and every listing of it
   */
  maxFunctionsPerConnection?: number;
  /**
   * Most triggers one worker connection may register, privileged or not; the next one
   * gets its `triggerregistrationresult` with `resource_exhausted` and is not registered.
   * @default 1,000: each write fans out one call per matching trigger, so this bounds
   * what one connection can make every write cost
   */
  maxTriggersPerConnection?: number;
  /**
   * Most calls of one worker connection's functions (by triggers, the auth function or
   * other callers) waiting for its answer at once; a call beyond it fails at once with
   * `resource_exhausted` instead of waiting.
   * @default 1,000: a worker that stops answering holds at most this many calls (and
   * their payloads) until they time out
   */
  maxInvocationsPerConnection?: number;
}

/** The per-connection bounds of worker connections, resolved. */
export interface WorkerLimits {
  functions: number;
  triggers: number;
  invocations: number;
}

export const DEFAULT_WORKER_LIMITS: WorkerLimits = { functions: 1000, triggers: 1000, invocations: 1000 };

function workerLimits(options: WebSocketOptions): WorkerLimits {
  const limit = (name: string, value: number | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!(Number.isSafeInteger(value) && value > 0)) {
      throw new StreamError(ErrorCode.InvalidArgument, `webSocket.${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  return {
    functions: limit("maxFunctionsPerConnection", options.maxFunctionsPerConnection, DEFAULT_WORKER_LIMITS.functions),
    triggers: limit("maxTriggersPerConnection", options.maxTriggersPerConnection, DEFAULT_WORKER_LIMITS.triggers),
    invocations: limit("maxInvocationsPerConnection", options.maxInvocationsPerConnection, DEFAULT_WORKER_LIMITS.invocations),
  };
}

export interface BridgeServices {
  engine: StreamEngine;
  functions: FunctionsRuntime;
  /** The largest frame a client may send (the server's `max_message_bytes`). */
  maxMessageBytes: number;
  /** Worker connections that present one are privileged (see `isPrivileged`). */
  apiKeys: ApiKeys;
  /** Who may read: stream sockets and a worker's reads and stream triggers need it. */
  readAccess: ReadAccess;
  /** Origins whose pages may connect; see `originAllowed`. */
  allowedOrigins: readonly string[];
  functionTimeoutMs: number;
  /** Where misbehaving workers are reported. */
  log: Log;
  /** The server's one flush scheduler, shared with Subscribe. */
  scheduler: FlushScheduler;
  /** Where stream-socket subscriptions and deliveries are counted. Default: nowhere. */
  metrics?: Metrics;
}

/** Why the subscriptions of a connection the server closes with `code` end (for metrics). */
function endReasonOf(code: number): SubscriptionEndReason {
  if (code === CloseCode.GoingAway) return "shutdown";
  // One subscription fell behind, and the others share its socket.
  if (code === CloseCode.SlowConsumer) return "slow_consumer";
  return "error";
}

/** Which protocol a connection speaks, by the path of its upgrade. */
type Route =
  | { kind: "either" }
  | { kind: "worker" }
  | { kind: "telemetry" }
  | { kind: "stream-path"; streamName: string; groupId: string; itemId: string | undefined; fromOffset: number | undefined; chunks: boolean };

interface Connection {
  readonly id: string;
  readonly ws: WebSocket;
  readonly socket: Duplex;
  readonly request: http.IncomingMessage;
  readonly context: JsonValue;
  /** Decided at the handshake (see ReadAccess): a stream socket needs it, a worker without it may not read. */
  readonly mayRead: boolean;
  /** Undefined on `/` until the first join, leave or worker message decides. */
  handler: StreamSocket | WorkerSocket | "telemetry" | undefined;
  /** Cleared by each ping, set by its pong. */
  alive: boolean;
  /** Messages received so far: a sweep that finds the same count and a message still unfinished ends the connection. */
  messages: number;
  /** The message count at the last sweep that found a message unfinished; undefined when none was. */
  unfinishedAt: number | undefined;
}

/**
 * ws reports an oversized message with the standard close code 1009; this reports it
 * with the bridge's documented MessageTooBig instead. ws builds every server-side
 * socket from this class (the server's `WebSocket` option).
 */
class BridgeWebSocket extends WebSocket {
  override close(code?: number, data?: string | Buffer): void {
    if (code === WS_MESSAGE_TOO_BIG) super.close(CloseCode.MessageTooBig, "message too big");
    else super.close(code, data);
  }
}

/**
 * How many times max_message_bytes a frame may be for ws to read it at all. A message
 * over the limit must be read to be answered: a worker's oversized invocation then gets
 * an error result instead of a closed connection, which the iii SDK answers by
 * reconnecting and waiting out its timeout. Beyond this, ws refuses the frame from its
 * header, unread, and the connection closes with 4413: one frame may make the server
 * buffer this much, and no more.
 */
const READ_LIMIT_FACTOR = 4;

/** Most bytes a worker may leave unread before it is disconnected (a few maximal messages). */
const WORKER_BUFFER_MESSAGES = 8;

/**
 * The WebSocket side of the one port. HTTP/1.1 upgrades arrive here and are routed by
 * path:
 * - `/stream/{stream_name}/{group_id}[/{item_id}]`: the stream socket, joined to that
 *   subscription at once (optional `?fromOffset=N`, and `?chunks=true` for a chunked sync);
 * - `/worker`: the iii worker protocol;
 * - `/`: either, decided by the first message (`join`/`leave` or a worker message);
 * - `/otel`, `/worker/otel`: where the iii SDK sends its telemetry; accepted and discarded.
 *
 * Every connection passes the origin check and the auth function at the handshake;
 * the server pings it and drops it when it stops answering.
 */
export class WebSocketBridge {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly allowedFunctions: ReadonlySet<string>;
  private readonly maxSubscriptions: number;
  private readonly workerLimits: WorkerLimits;
  /**
   * Connection ids name worker functions of restricted connections and worker
   * triggers; the random part keeps them apart across restarts and across instances
   * that share a registration store.
   */
  private readonly idPrefix = `ws-${randomUUID().slice(0, 8)}-`;
  private nextConnection = 1;
  private closing = false;

  constructor(
    private readonly services: BridgeServices,
    options: WebSocketOptions = {},
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: READ_LIMIT_FACTOR * services.maxMessageBytes, WebSocket: BridgeWebSocket });
    this.allowedFunctions = new Set(options.browserAllowedFunctions ?? DEFAULT_BROWSER_ALLOWED_FUNCTIONS);
    this.maxSubscriptions = options.maxSubscriptionsPerConnection ?? 1000;
    this.workerLimits = workerLimits(options);
    this.pingTimer = setInterval(() => this.pingAll(), options.pingIntervalMs ?? 30_000);
    this.pingTimer.unref();
  }

  /** Open connections, for tests and metrics. */
  get size(): number {
    return this.connections.size;
  }

  /**
   * Open connections by protocol, for metrics: `other` holds those on `/` that have not
   * said yet which protocol they speak, and the telemetry sockets.
   */
  connectionCounts(): { stream_socket: number; worker: number; other: number } {
    const counts = { stream_socket: 0, worker: 0, other: 0 };
    for (const { handler } of this.connections) {
      if (handler instanceof StreamSocket) counts.stream_socket++;
      else if (handler instanceof WorkerSocket) counts.worker++;
      else counts.other++;
    }
    return counts;
  }

  /** The `upgrade` listener of the HTTP/1.1 server. */
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const route = routeOf(request.url ?? "/");
    if ("refusal" in route) return refuseUpgrade(socket, route.status, route.refusal);
    if (this.closing) return refuseUpgrade(socket, 503, "the server is shutting down; connect again (elsewhere)");
    if (!originAllowed(request.headers.origin, this.services.allowedOrigins)) {
      return refuseUpgrade(socket, 403, `the origin ${request.headers.origin} is not in allowed_origins`);
    }
    void this.services.functions.authenticate(handshakeFromNode(request)).then(
      (context) => this.upgrade(request, socket, head, route, context),
      () => this.upgrade(request, socket, head, route, undefined),
    );
  }

  /** Closes every connection with 1001 (going away); their subscriptions end and leave triggers fire. */
  close(): void {
    this.closing = true;
    clearInterval(this.pingTimer);
    for (const connection of [...this.connections]) this.closeConnection(connection, { code: CloseCode.GoingAway, reason: "the server is shutting down" });
  }

  /** `context` undefined: the auth function refused, and the connection is closed right after the upgrade. */
  private upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer, route: Route, context: JsonValue | undefined): void {
    if (socket.destroyed) return;
    if (this.closing) return refuseUpgrade(socket, 503, "the server is shutting down; connect again (elsewhere)");
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      // Browsers cannot read an HTTP status of a failed handshake, but they can read a close code.
      if (context === undefined) {
        ws.close(CloseCode.Unauthenticated, "unauthenticated");
        return;
      }
      this.accept(ws, request, socket, route, context);
    });
  }

  private accept(ws: WebSocket, request: http.IncomingMessage, socket: Duplex, route: Route, context: JsonValue): void {
    const mayRead = this.services.readAccess.allows(request.headers.authorization);
    const connection: Connection = {
      id: `${this.idPrefix}${this.nextConnection++}`,
      ws,
      socket,
      request,
      context,
      mayRead,
      handler: undefined,
      alive: true,
      messages: 0,
      unfinishedAt: undefined,
    };
    this.connections.add(connection);
    ws.on("pong", () => (connection.alive = true));
    ws.on("message", (data) => {
      connection.messages++;
      this.receive(connection, data);
    });
    // ws closes the connection itself after a protocol error; the close event cleans up.
    ws.on("error", () => undefined);
    ws.on("close", () => {
      this.connections.delete(connection);
      this.dispose(connection, "client");
    });
    if (route.kind === "telemetry") connection.handler = "telemetry";
    else if (route.kind === "worker") this.startWorker(connection);
    else if (route.kind === "stream-path") {
      const { streamName, groupId, itemId, fromOffset, chunks } = route;
      this.startStream(connection)?.joinFromPath({ type: "join", subscriptionId: randomUUID(), streamName, groupId, itemId, fromOffset, chunks });
    }
  }

  private receive(connection: Connection, data: RawData): void {
    if (connection.handler === "telemetry") return;
    const bytes = frameBytes(data);
    const message = parseFrame(bytes);
    if (bytes.length > this.services.maxMessageBytes) return this.refuseOversized(connection, message, bytes.length);
    if (!message) return;
    let handler = connection.handler;
    if (!handler) {
      if (message.type === "join" || message.type === "leave") {
        handler = this.startStream(connection);
        if (!handler) return;
      }
      else if (typeof message.type === "string" && WORKER_MESSAGE_TYPES.has(message.type)) handler = this.startWorker(connection);
      else {
        if (message.type === "ping") connection.ws.send(JSON.stringify({ type: "pong" }));
        return;
      }
    }
    handler.receive(message);
  }

  /**
   * A message over max_message_bytes (but within what ws reads, see READ_LIMIT_FACTOR):
   * a worker's invocation gets an error result, and a worker's oversized result fails
   * the call it answers, the connection going on as after any failed call; anything
   * else has nobody to answer and closes the connection with 4413, as before.
   */
  private refuseOversized(connection: Connection, message: JsonObject | undefined, size: number): void {
    let handler = connection.handler;
    if (!handler && typeof message?.type === "string" && WORKER_MESSAGE_TYPES.has(message.type)) handler = this.startWorker(connection);
    const why = `${size} bytes, more than max_message_bytes (${this.services.maxMessageBytes})`;
    if (message && handler instanceof WorkerSocket && handler.refuseOversized(message, why)) return;
    this.closeConnection(connection, { code: CloseCode.MessageTooBig, reason: "message too big" });
  }

  /** Undefined when the connection may not read: it is closed as the auth function's refusal is. */
  private startStream(connection: Connection): StreamSocket | undefined {
    if (!connection.mayRead) {
      this.closeConnection(connection, { code: CloseCode.Unauthenticated, reason: READ_KEY_REQUIRED });
      return undefined;
    }
    const handler = new StreamSocket(connection.ws, connection.socket, {
      engine: this.services.engine,
      context: connection.context,
      maxSubscriptions: this.maxSubscriptions,
      close: (closing) => this.closeConnection(connection, closing),
      scheduler: this.services.scheduler,
      metrics: this.services.metrics,
      peer: peerAddress(connection.request.socket),
    });
    connection.handler = handler;
    return handler;
  }

  private startWorker(connection: Connection): WorkerSocket {
    const handler = new WorkerSocket(connection.ws, {
      engine: this.services.engine,
      runtime: this.services.functions,
      connectionId: connection.id,
      privileged: isPrivileged(connection.request, this.services.apiKeys),
      mayRead: connection.mayRead,
      allowedFunctions: this.allowedFunctions,
      functionTimeoutMs: this.services.functionTimeoutMs,
      maxBufferedBytes: WORKER_BUFFER_MESSAGES * this.services.maxMessageBytes,
      limits: this.workerLimits,
      close: (closing) => this.closeConnection(connection, closing),
      log: this.services.log.child({ connection_id: connection.id, peer: peerAddress(connection.request.socket) }),
    });
    connection.handler = handler;
    handler.welcome();
    return handler;
  }

  /** Ends the connection's subscriptions and registrations at once, then closes it. */
  private closeConnection(connection: Connection, closing: Closing): void {
    this.connections.delete(connection);
    this.dispose(connection, endReasonOf(closing.code));
    connection.ws.close(closing.code, closing.reason);
  }

  private dispose(connection: Connection, reason: SubscriptionEndReason): void {
    const handler = connection.handler;
    if (handler instanceof StreamSocket) handler.dispose(reason);
    else if (handler instanceof WorkerSocket) handler.dispose();
  }

  /**
   * Drops the connections that did not answer the last ping, and closes those whose
   * client began a fragmented message before the last sweep and has finished nothing
   * since: a message must end within one to two ping intervals of its start.
   */
  private pingAll(): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        this.connections.delete(connection);
        connection.ws.terminate();
        continue;
      }
      if (hasUnfinishedMessage(connection.ws)) {
        if (connection.unfinishedAt === connection.messages) {
          this.closeConnection(connection, { code: CloseCode.MessageTimeout, reason: "a message was not finished in time" });
          continue;
        }
        connection.unfinishedAt = connection.messages;
      } else {
        connection.unfinishedAt = undefined;
      }
      connection.alive = false;
      connection.ws.ping();
    }
  }
}

function frameBytes(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** A frame's JSON object; undefined for blank, undecodable or non-object frames, which are ignored. */
function parseFrame(bytes: Buffer): JsonObject | undefined {
  const text = bytes.toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    const value = JSON.parse(text) as JsonValue;
    return isJsonObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Why an upgrade is refused before it is looked at further: an HTTP status and what to do instead. */
interface Refusal {
  status: number;
  refusal: string;
}

/** The paths a WebSocket upgrade may take, for the refusals that name them. */
export const WEBSOCKET_ENDPOINTS = "the WebSocket endpoints are /, /worker, /otel and /stream/{stream_name}/{group_id}[/{item_id}]";

function routeOf(url: string): Route | Refusal {
  let parsed: URL;
  const unknown = (path: string): Refusal => ({ status: 404, refusal: `no WebSocket endpoint at ${path}; ${WEBSOCKET_ENDPOINTS}` });
  try {
    parsed = new URL(url, "http://localhost");
  } catch {
    return unknown(url);
  }
  const path = parsed.pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { kind: "either" };
  if (path === "/worker") return { kind: "worker" };
  if (path === "/otel" || path === "/worker/otel") return { kind: "telemetry" };
  const segments = path.split("/").slice(1);
  if (segments[0] !== "stream" || segments.length < 3 || segments.length > 4) return unknown(path);
  let names: string[];
  try {
    names = segments.slice(1).map((segment) => decodeURIComponent(segment));
  } catch {
    return { status: 400, refusal: `${path} is not valid percent-encoding; encode each name with encodeURIComponent` };
  }
  const fromOffsetText = parsed.searchParams.get("fromOffset");
  const fromOffset = offsetFromQuery(fromOffsetText);
  if (fromOffsetText !== null && fromOffset === undefined) {
    return { status: 400, refusal: `fromOffset must be a non-negative integer (an offset seen earlier), got ${JSON.stringify(fromOffsetText)}` };
  }
  const chunks = parsed.searchParams.get("chunks");
  if (chunks !== null && chunks !== "true" && chunks !== "false") {
    return { status: 400, refusal: `chunks must be true or false, got ${JSON.stringify(chunks)}` };
  }
  return {
    kind: "stream-path",
    streamName: names[0],
    groupId: names[1],
    itemId: names[2],
    fromOffset,
    chunks: chunks === "true",
  };
}

/** Answers an upgrade that will not happen with an HTTP status and why, and closes the connection. */
function refuseUpgrade(socket: Duplex, status: number, why: string): void {
  if (socket.destroyed) return;
  const body = Buffer.from(`${why}\n`, "utf8");
  socket.end(
    Buffer.concat([
      Buffer.from(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `X-Content-Type-Options: nosniff\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
      body,
    ]),
  );
}
