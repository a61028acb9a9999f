import type { JsonReadOptions } from "@bufbuild/protobuf";
import { createMethodUrl } from "@connectrpc/connect/protocol";
import type { JsonValue } from "../../core/json.js";
import type { StreamEngine } from "../../core/engine.js";
import type { HandshakeInfo } from "../../access/handshake.js";
import type { ReadAccess } from "../../access/read-access.js";
import { StreamService } from "../../../gen/iii/stream/v1/stream_pb.js";
import type { FlushScheduler } from "../../core/flush-scheduler.js";
import { NO_METRICS, type Metrics } from "../../core/metrics.js";
import { RequestReader, type NodeRequest } from "./request-reader.js";
import { SubscribeCall, type CallServices, type NodeResponse } from "./subscribe-call.js";
import { detectProtocol } from "./wire-protocol.js";

export interface SubscribeEndpointOptions {
  engine: StreamEngine;
  /** Runs the auth function for a subscriber: its context, or UNAUTHENTICATED. */
  authenticate(handshake: HandshakeInfo): Promise<JsonValue>;
  /** Who may subscribe at all: with API keys configured, a key (or the auth function, or public reads). */
  readAccess: ReadAccess;
  /** Largest request message in bytes; the limit Connect applies to the other methods. */
  readMaxBytes: number;
  /** How JSON requests are read; the options Connect uses for the other methods. */
  jsonOptions: Partial<JsonReadOptions>;
  /** The server's one flush scheduler, shared with the stream socket. */
  scheduler: FlushScheduler;
  /** Where calls, subscriptions and deliveries are counted. Default: nowhere. */
  metrics?: Metrics;
}

const SUBSCRIBE_PATH = createMethodUrl("/", StreamService.method.subscribe);

/**
 * `StreamService/Subscribe` without Connect's per-call pipeline: the same protocols on
 * the same port (gRPC, gRPC-Web and Connect, binary or JSON, HTTP/1.1 or HTTP/2), but
 * each message is framed once and every subscriber gets the same bytes. Whatever is
 * not a Subscribe call it can serve (another method, another HTTP method, an unknown
 * content type) is left to Connect, which answers it as before.
 *
 * Bypassing Connect means each concern Connect's pipeline gives the other methods is
 * done here again, or not at all; a new server-wide concern must be added in both places:
 * - Interceptors: none run. The server's (the API-key check, which leaves Subscribe
 *   to ReadAccess and the auth function, and the metrics interceptor) never see a
 *   Subscribe call; SubscribeCall counts its own call, with the same method, code and
 *   protocol labels, when its stream ends.
 * - Authentication: the read-key check (ReadAccess) and the auth function run here, per
 *   call, before the request is read (SubscribeCall.start), as the WebSocket bridge runs
 *   them per connection.
 * - Limits: `readMaxBytes`, the server's `maxMessageBytes`, is applied to the request by
 *   RequestReader, envelope and decompressed size alike.
 * - Timeout: the protocol's timeout header (`grpc-timeout`, `connect-timeout-ms`) is
 *   parsed and enforced by SubscribeCall's own deadline.
 * - Compression: a gzip or br request is decompressed (RequestReader negotiates as
 *   Connect does); responses are never compressed, since every subscriber shares one
 *   uncompressed frame per message.
 * - Serialization and errors: JSON with the server's strict `jsonOptions`, errors
 *   mapped by toConnectError and written as each protocol's end of stream (stream-end.ts).
 * - CORS is not re-done: the server's routes answer it before any call is dispatched.
 */
export class SubscribeEndpoint {
  private readonly services: CallServices;

  constructor(options: SubscribeEndpointOptions) {
    this.services = {
      engine: options.engine,
      authenticate: options.authenticate,
      readAccess: options.readAccess,
      requests: new RequestReader({ readMaxBytes: options.readMaxBytes, jsonOptions: options.jsonOptions }),
      scheduler: options.scheduler,
      metrics: options.metrics ?? NO_METRICS,
    };
  }

  /** Serves the request and returns true if it is a Subscribe call; returns false and leaves it alone otherwise. */
  serve(req: NodeRequest, res: NodeResponse): boolean {
    if (req.method !== "POST" || req.url?.split("?", 1)[0] !== SUBSCRIBE_PATH) return false;
    const protocol = detectProtocol(req.headers["content-type"]);
    if (!protocol) return false;
    void new SubscribeCall(req, res, protocol, this.services).start();
    return true;
  }
}
