import type http from "node:http";
import type http2 from "node:http2";
import type { Duplex } from "node:stream";
import { ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { HostAllowList } from "../access/hosts.js";
import type { StreamEngine } from "../core/engine.js";
import type { FunctionsRuntime } from "../functions/functions-runtime.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../../gen/iii/stream/v1/triggers_pb.js";
import { healthService } from "../rpc/health-service.js";
import { callContextValues } from "../rpc/call-peer.js";
import { ReflectionIndex, reflectionService, reflectionServiceV1alpha, ServerReflection } from "../rpc/reflection-service.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { streamService } from "../rpc/stream-service.js";
import { triggerService } from "../rpc/trigger-service.js";
import { reportUndecodableRequests } from "../rpc/undecodable-requests.js";
import { explainProtocolRefusals } from "../rpc/protocol-refusals.js";
import { WEBSOCKET_ENDPOINTS } from "../ws/websocket-bridge.js";
import { serveHealth, type HealthState } from "./health-endpoints.js";
import type { SubscribeEndpoint } from "../rpc/subscribe-stream/subscribe-endpoint.js";
import type { UnaryFastPath } from "../rpc/unary-fast-path/unary-endpoint.js";
import { METRICS_PATH } from "./metrics-endpoint.js";

type NodeRequest = Parameters<NonNullable<ConnectNodeAdapterOptions["fallback"]>>[0];
type NodeResponse = Parameters<NonNullable<ConnectNodeAdapterOptions["fallback"]>>[1];
type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;

/**
 * How JSON bodies are read. They must be UTF-8: Connect's default decoder turns invalid
 * bytes into U+FFFD, which would store names and values the client never sent; a fatal
 * decoder makes them INVALID_ARGUMENT (Connect reads `textDecoder` although its option
 * type does not list it). An unknown field is INVALID_ARGUMENT naming it, the ProtoJSON
 * default that Connect turns off: a misspelt `if_revision` would otherwise turn a
 * conditional write into an unconditional one. Binary bodies keep protobuf's rule
 * (unknown fields are skipped), since there a field is a number, not a name to misspell.
 */
export const STRICT_JSON = { ignoreUnknownFields: false, textDecoder: new TextDecoder("utf-8", { fatal: true }) };

export interface ConnectRoutesOptions {
  engine: StreamEngine;
  functions: FunctionsRuntime;
  interceptors: Interceptor[];
  /** Largest request message, in bytes. */
  readMaxBytes: number;
  /** Where the server is in its life, for the gRPC health service and the HTTP health endpoints. */
  health(): HealthState;
  /** Serves `GET /metrics`; undefined when metrics are off or served on their own port. */
  metrics?: NodeHandler;
  /** Serves the web console under `/console`, returning false for other paths; undefined when it is off. */
  console?: (req: NodeRequest, res: NodeResponse) => boolean;
}

/** Every service this server answers, as gRPC server reflection lists them. */
const SERVED = [StreamService, TriggerService, Health, ServerReflection, ServerReflectionV1alpha];

/**
 * StreamService, TriggerService, gRPC health and server reflection (v1 and v1alpha)
 * through Connect; `/livez`, `/readyz`, `/healthz`, and a 404 naming the routes for anything else.
 */
export function connectRoutes(options: ConnectRoutesOptions): NodeHandler {
  const reflection = new ReflectionIndex(SERVED);
  return connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.service(StreamService, streamService(options.engine));
      router.service(Health, healthService(() => options.health().readiness === "ready"));
      router.service(TriggerService, triggerService(options.functions));
      router.service(ServerReflection, reflectionService(reflection));
      router.service(ServerReflectionV1alpha, reflectionServiceV1alpha(reflection));
      reportUndecodableRequests(router, options.readMaxBytes);
      explainProtocolRefusals(router);
    },
    interceptors: options.interceptors,
    contextValues: callContextValues,
    readMaxBytes: options.readMaxBytes,
    jsonOptions: STRICT_JSON,
    fallback: (req, res) => fallback(req, res, options),
  });
}

type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpRoutes {
  http1(req: http.IncomingMessage, res: http.ServerResponse): void;
  http2(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void;
  /**
   * HTTP/2 streams the unary fast path serves before Node's compatibility layer sees them:
   * those for a host the server answers, without an Origin (CORS stays with the routes).
   */
  http2Stream?(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
  /** HTTP/1.1 upgrades: the WebSocket bridge. */
  upgrade: UpgradeHandler;
}

/**
 * Every request, in order: the Host check (421 for a host this server does not answer
 * for, against DNS rebinding), CORS (which answers preflights itself), then the unary
 * fast path and Subscribe (which bypass Connect's per-call pipeline, see
 * unary-endpoint.ts and subscribe-endpoint.ts), then Connect.
 * WebSocket handshakes pass the same Host check before the bridge sees them.
 */
export function httpRoutes(routes: {
  hosts: HostAllowList;
  cors: (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => boolean;
  subscribe: SubscribeEndpoint;
  /** The unary calls it serves without Connect's per-call pipeline; undefined sends them all through Connect. */
  unary?: UnaryFastPath;
  connect: NodeHandler;
  upgrade: UpgradeHandler;
}): HttpRoutes {
  const { hosts, cors, subscribe, unary, connect, upgrade } = routes;
  return {
    ...(unary
      ? {
          http2Stream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) =>
            headers.origin === undefined && hosts.allows(headers[":authority"] ?? headers.host) && unary.serveStream(stream, headers),
        }
      : {}),
    http1: (req, res) => {
      const host = req.headers.host;
      if (!hosts.allows(host)) return misdirected(res, hosts.refusal(host ?? ""), true);
      if (cors(req, res)) return;
      closeWhenBodyUnread(req, res);
      if (!unary?.serve(req, res) && !subscribe.serve(req, res)) serveConnect(connect, req, res);
    },
    http2: (req, res) => {
      // HTTP/2 names the host in :authority; a client may send Host instead (RFC 9113, 8.3.1).
      const host = req.headers[":authority"] ?? req.headers.host;
      if (!hosts.allows(host)) return misdirected(res, hosts.refusal(host ?? ""), false);
      if (!cors(req, res) && !unary?.serve(req, res) && !subscribe.serve(req, res)) serveConnect(connect, req, res);
    },
    upgrade: (req, socket, head) => {
      const host = req.headers.host;
      if (hosts.allows(host)) return upgrade(req, socket, head);
      socket.on("error", () => socket.destroy());
      const body = Buffer.from(hosts.refusal(host ?? ""));
      socket.end(
        `HTTP/1.1 421 Misdirected Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `X-Content-Type-Options: nosniff\r\nContent-Length: ${body.length}\r\n\r\n${body.toString()}`,
      );
    },
  };
}

/**
 * 421 Misdirected Request: the request reached a server that does not answer for its
 * host. On HTTP/1.1 the connection closes, since its body (if any) stays unread.
 */
function misdirected(res: http.ServerResponse | http2.Http2ServerResponse, body: string, close: boolean): void {
  if (close) (res as http.ServerResponse).shouldKeepAlive = false;
  res.writeHead(421, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" });
  res.end(body);
}

function fallback(req: NodeRequest, res: NodeResponse, options: ConnectRoutesOptions): void {
  if (serveHealth(req, res, options.health)) return;
  const path = (req.url ?? "/").split("?")[0];
  if (path === METRICS_PATH && options.metrics) return options.metrics(req, res);
  if (options.console?.(req, res)) return;
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" });
  res.end(`no route for ${req.method} ${path}; the routes are:\n${ROUTES}`);
}

/** What a 404 lists: every RPC by service (Connect, gRPC and gRPC-Web alike), the HTTP endpoints and the WebSocket ones. */
const ROUTES = [
  ...SERVED.map((service) => `POST /${service.typeName}/{${service.methods.map((m) => m.name).join(",")}}`),
  "GET /livez, /readyz, /healthz, /metrics, /console/",
  WEBSOCKET_ENDPOINTS,
]
  .map((line) => `  ${line}\n`)
  .join("");

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
function serveConnect(handler: NodeHandler, req: NodeRequest, res: NodeResponse): void {
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
