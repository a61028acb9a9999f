import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Backend } from "../adapters/backend.js";
import { memoryBackend } from "../adapters/memory/memory-backend.js";
import { MemoryRegistrationStore } from "../adapters/memory/memory-registration-store.js";
import { DEFAULT_MAX_VALUE_BYTES, StreamEngine, type EngineHooks } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { QueueLimits } from "../core/subscription.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { healthService } from "../rpc/health-service.js";
import { streamService } from "../rpc/stream-service.js";
import { SubscribeEndpoint } from "../rpc/subscribe-stream/subscribe-endpoint.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";
import { composeHooks } from "../functions/compose-hooks.js";
import type { FunctionHandler } from "../functions/function-registry.js";
import { FunctionsRuntime, type FunctionsOptions } from "../functions/functions-runtime.js";
import { openAccessWarning } from "../access/access-warning.js";
import { apiKeyInterceptor } from "../rpc/api-key-interceptor.js";
import { triggerService } from "../rpc/trigger-service.js";
import { corsHandler } from "../access/cors.js";
import { DEFAULT_FUNCTION_TIMEOUT_MS } from "../functions/functions-runtime.js";
import { WebSocketBridge, type WebSocketOptions } from "../ws/websocket-bridge.js";

export interface StreamServerOptions {
  /** TCP port; default 3112, the port clients of the reference expect. 0 picks a free one. */
  port?: number;
  /** Default 127.0.0.1: nothing is exposed beyond this machine unless asked for. */
  host?: string;
  /**
   * Where items, registrations and the fleet bus live (see Backend); the server closes the
   * backend on stop. Default: a fresh in-memory backend, so a server needs nothing to start.
   */
  backend?: Backend;
  /** Largest request and largest stored value, in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Heartbeat interval of quiet subscriptions. Default 15,000 ms. */
  heartbeatMs?: number;
  queueLimits?: QueueLimits;
  hooks?: EngineHooks;
  /** How long stop() lets open requests finish before cutting connections. Default 3,000 ms. */
  shutdownGraceMs?: number;
  /** Functions, triggers and the auth function (see FunctionsOptions). Default: none. */
  functions?: FunctionsOptions;
  /**
   * Keys that writes and administration need as `Authorization: Bearer <key>`. Default
   * none: anyone who can reach the port may write, which suits the loopback default.
   */
  apiKeys?: string[];
  /**
   * Origins (e.g. "https://app.example.com", or "*" for any) whose pages may use the
   * server from a browser: CORS for Connect and gRPC-Web, and WebSocket handshakes
   * that carry an Origin header. Default none: pages on other sites can neither call
   * nor open a WebSocket, which protects a server on loopback from any site a local
   * browser visits.
   */
  allowedOrigins?: string[];
  /** The WebSocket bridge (stream socket and worker protocol); see WebSocketOptions. */
  webSocket?: WebSocketOptions;
}

type FallbackRequest = Parameters<NonNullable<ConnectNodeAdapterOptions["fallback"]>>[0];
type FallbackResponse = Parameters<NonNullable<ConnectNodeAdapterOptions["fallback"]>>[1];

/**
 * JSON bodies must be UTF-8. Connect's default decoder turns invalid bytes into U+FFFD,
 * which would store names and values the client never sent; a fatal decoder makes them
 * INVALID_ARGUMENT. Connect reads `textDecoder` although its option type does not list
 * it; unknown fields stay ignored, Connect's default.
 */
const STRICT_UTF8_JSON = { ignoreUnknownFields: true, textDecoder: new TextDecoder("utf-8", { fatal: true }) };

/** The HTTP/2 connection preface; anything else on a new connection is HTTP/1.1. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One port serving Connect (HTTP/1.1 and HTTP/2), gRPC (h2c) and gRPC-Web, plus
 * `GET /healthz`. Create it, `start()` it, `stop()` it.
 */
export class StreamServer {
  readonly engine: StreamEngine;
  /** Functions, triggers and the subscription gate. */
  readonly functions: FunctionsRuntime;
  /** Plain HTTP/1.1 requests and upgrades land here (the WebSocket bridge hooks in). */
  readonly http1: http.Server;
  readonly http2: http2.Http2Server;
  /** The stream socket and the iii worker protocol, on HTTP/1.1 upgrades. */
  readonly webSockets: WebSocketBridge;
  private readonly listener: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly options: StreamServerOptions;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(options: StreamServerOptions = {}) {
    this.options = options;
    const backend: Backend = options.backend ?? memoryBackend();
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.functions = new FunctionsRuntime({
      ...options.functions,
      registrations: backend.registrations ?? new MemoryRegistrationStore(),
      fleet: backend.fleet,
    });
    this.engine = new StreamEngine({
      adapter: backend.items,
      maxValueBytes: maxMessageBytes,
      heartbeatMs: options.heartbeatMs,
      queueLimits: options.queueLimits,
      hooks: composeHooks(this.functions.hooks, options.hooks),
    });

    const handler = connectNodeAdapter({
      routes: (router: ConnectRouter) => {
        router.service(StreamService, streamService(this.engine));
        router.service(Health, healthService(() => this.isReady()));
        router.service(TriggerService, triggerService(this.functions));
      },
      interceptors: options.apiKeys?.length ? [apiKeyInterceptor(options.apiKeys)] : [],
      readMaxBytes: maxMessageBytes,
      jsonOptions: STRICT_UTF8_JSON,
      fallback: (req, res) => this.fallback(req, res),
    });
    // Subscribe bypasses Connect's per-call pipeline (see subscribe-endpoint.ts); Connect still lists the method.
    const subscribe = new SubscribeEndpoint({
      engine: this.engine,
      authenticate: (handshake) => this.functions.authenticate(handshake),
      readMaxBytes: maxMessageBytes,
      jsonOptions: STRICT_UTF8_JSON,
    });
    const cors = corsHandler(options.allowedOrigins ?? []);
    this.http1 = http.createServer((req, res) => {
      if (cors(req, res)) return;
      closeWhenBodyUnread(req, res);
      if (!subscribe.serve(req, res)) serveConnect(handler, req, res);
    });
    this.http2 = http2.createServer((req, res) => {
      if (!cors(req, res) && !subscribe.serve(req, res)) serveConnect(handler, req, res);
    });
    this.webSockets = new WebSocketBridge(
      {
        engine: this.engine,
        functions: this.functions,
        maxMessageBytes,
        apiKeys: options.apiKeys ?? [],
        allowedOrigins: options.allowedOrigins ?? [],
        functionTimeoutMs: options.functions?.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS,
        log: options.functions?.log ?? ((line) => process.stderr.write(`iii-stream: ${line}\n`)),
      },
      options.webSocket,
    );
    this.http1.on("upgrade", (req: http.IncomingMessage, socket, head: Buffer) => this.webSockets.handleUpgrade(req, socket, head));
    this.http2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
    // As node:http's own servers do: HTTP/1.1 responses and streams are written when
    // ready, and Nagle's algorithm would hold a small write behind an unacknowledged one
    // (tens of ms against delayed ACKs). HTTP/2 sessions and ws set it themselves.
    this.listener = net.createServer({ noDelay: true }, (socket) => this.route(socket));
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const address = this.listener.address();
    return typeof address === "object" && address ? address.port : (this.options.port ?? 3112);
  }

  get url(): string {
    const host = this.options.host ?? "127.0.0.1";
    return `http://${host.includes(":") ? `[${host}]` : host}:${this.port}`;
  }

  /** Registers (or replaces) an in-process function; the returned function removes it. */
  registerFunction(functionId: string, handler: FunctionHandler): () => void {
    return this.functions.registerFunction(functionId, handler);
  }

  isReady(): boolean {
    return this.started && !this.stopping && this.engine.adapter.isReady();
  }

  async start(): Promise<void> {
    const port = this.options.port ?? 3112;
    const host = this.options.host ?? "127.0.0.1";
    await this.functions.start();
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.listener.off("listening", onListening);
        if (error.code === "EADDRINUSE") {
          reject(new StreamError(ErrorCode.Unavailable, `cannot listen on ${host}:${port}: the address is already in use`));
        } else {
          reject(new StreamError(ErrorCode.Unavailable, `cannot listen on ${host}:${port}: ${error.message}`));
        }
      };
      const onListening = () => {
        this.listener.off("error", onError);
        resolve();
      };
      this.listener.once("error", onError);
      this.listener.once("listening", onListening);
      this.listener.listen(port, host);
    });
    this.started = true;
    const warning = openAccessWarning(host, this.options.apiKeys ?? [], this.options.functions?.authFunction);
    if (warning) process.stderr.write(`iii-stream: ${warning}\n`);
  }

  /**
   * Stops accepting connections, ends open subscriptions with UNAVAILABLE (clients
   * resume elsewhere with from_offset), lets other requests finish for the grace
   * period, then closes every connection and the adapter.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const grace = this.options.shutdownGraceMs ?? 3000;
    const closed = this.started ? new Promise<void>((resolve) => this.listener.close(() => resolve())) : Promise.resolve();
    this.webSockets.close();
    this.engine.registry.endAll(new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    for (const session of this.sessions) session.close();
    this.http1.closeIdleConnections();
    // These timers stay referenced: a process waiting for its own shutdown must not
    // see an empty event loop and exit before it has finished.
    const deadline = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, grace);
    const drained = new Promise<void>((resolve) => {
      const check = () => (this.sockets.size === 0 ? resolve() : setTimeout(check, 20));
      check();
    });
    await Promise.all([closed, drained]);
    clearTimeout(deadline);
    // The leave triggers of the subscriptions just ended, before the adapter they may write to closes.
    await this.functions.close(grace);
    await this.engine.close();
  }

  /** Hands a new connection to the HTTP/2 or the HTTP/1.1 server by its first bytes. */
  private route(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const firstBytes = (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      const length = Math.min(chunk.length, HTTP2_PREFACE.length);
      const isHttp2 = chunk.subarray(0, length).equals(HTTP2_PREFACE.subarray(0, length));
      if (isHttp2) {
        // The HTTP/2 session takes the unshifted bytes over itself; resuming the
        // socket here would make it read them twice.
        this.http2.emit("connection", socket);
      } else {
        this.http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.once("data", firstBytes);
  }

  private fallback(req: FallbackRequest, res: FallbackResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const ready = this.isReady();
      const body = JSON.stringify({ status: ready ? "ok" : "unavailable", adapter: this.engine.adapter.name });
      res.writeHead(ready ? 200 : 503, { "content-type": "application/json" });
      res.end(req.method === "HEAD" ? "" : body);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end(`no route for ${req.method} ${path}\n`);
  }
}

/**
 * Connect stops reading a request body it rejects (too large, undecodable), and Node then
 * keeps the connection alive but stalled: the client's next request on it hangs until the
 * keep-alive timeout and fails. A response sent before its request was fully read
 * therefore says `Connection: close`, and the client opens a fresh connection.
 */
function closeWhenBodyUnread(req: http.IncomingMessage, res: http.ServerResponse): void {
  const writeHead = res.writeHead as (...args: unknown[]) => http.ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    if (!req.complete) res.shouldKeepAlive = false;
    return writeHead.apply(res, args);
  }) as typeof res.writeHead;
}

/**
 * Connect's Node.js adapter throws, from within the request event, for a call it cannot
 * describe: one without an authority (HTTP/1.0 may leave out Host). Uncaught, that
 * would end the process; the call is a bad request.
 */
function serveConnect(
  handler: (req: FallbackRequest, res: FallbackResponse) => void,
  req: FallbackRequest,
  res: FallbackResponse,
): void {
  try {
    handler(req, res);
  } catch (error) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(400, { "content-type": "text/plain" });
    res.end(`bad request: ${error instanceof ConnectError ? error.rawMessage : String(error)}\n`);
  }
}

/** Creates a server; call `start()` to listen. */
export function createStreamServer(options: StreamServerOptions = {}): StreamServer {
  return new StreamServer(options);
}
