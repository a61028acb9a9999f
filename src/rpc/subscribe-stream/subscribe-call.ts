import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { JsonValue } from "../../core/json.js";
import type { StreamEngine } from "../../core/engine.js";
import type { StreamError } from "../../core/errors.js";
import type { Subscription } from "../../core/subscription.js";
import { DeliveryPump } from "../../core/delivery-pump.js";
import type { FlushScheduler } from "../../core/flush-scheduler.js";
import { secondsSince, type Metrics, type RpcProtocol, type SubscriptionEndReason } from "../../core/metrics.js";
import { codeName } from "../connect-errors.js";
import { StreamService } from "../../../gen/iii/stream/v1/stream_pb.js";
import { handshakeFromNode, peerAddress, type HandshakeInfo } from "../../access/handshake.js";
import { READ_KEY_REQUIRED, type ReadAccess } from "../../access/read-access.js";
import { toConnectError } from "../connect-errors.js";
import { countFromProto } from "../proto-convert.js";
import { cutStream, stallGraceMs } from "../stalled-stream.js";
import { headerValue, type NodeRequest, type RequestReader } from "./request-reader.js";
import { ResponseSink } from "./response-sink.js";
import { streamEnd } from "./stream-end.js";
import type { WireProtocol } from "./wire-protocol.js";

/** Timers wait at most 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const ignore = (): void => undefined;

export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** What every Subscribe call of a server shares. */
export interface CallServices {
  engine: StreamEngine;
  /** The subscriber's context from the auth function, or UNAUTHENTICATED. */
  authenticate(handshake: HandshakeInfo): Promise<JsonValue>;
  /** Whether the caller may read at all (an API key when keys are configured). */
  readAccess: ReadAccess;
  requests: RequestReader;
  /** The server's one scheduler: every call and stream socket flushes from one timer per event-loop turn. */
  scheduler: FlushScheduler;
  /** Where calls, subscriptions and deliveries are counted. */
  metrics: Metrics;
}

const METHOD = `${StreamService.typeName}/${StreamService.method.subscribe.name}`;
const PROTOCOLS: Record<WireProtocol["family"], RpcProtocol> = { connect: "connect", grpc: "grpc", "grpc-web": "grpc_web" };

/**
 * One Subscribe call, from the request to the end of the stream: authentication, the
 * request, the subscription, and the final status. Messages go out through a
 * DeliveryPump over a ResponseSink (shared, pre-encoded frames, one write per flush,
 * nothing taken while the transport is full, so a client that does not keep up is
 * ended with RESOURCE_EXHAUSTED by its bounded queue).
 */
export class SubscribeCall {
  private subscription: Subscription | undefined;
  /** Nothing more is written: the status is sent or the stream is gone. */
  private finished = false;
  private deadline: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  /** The code of the status sent, which also decides how a stalled stream is cut. */
  private endCode: Code | undefined;
  private readonly pump: DeliveryPump<undefined>;
  private readonly sink: ResponseSink;
  private readonly startedAt = performance.now();

  constructor(
    private readonly req: NodeRequest,
    private readonly res: NodeResponse,
    private readonly protocol: WireProtocol,
    private readonly services: CallServices,
  ) {
    // HTTP/2 messages skip the compatibility response, whose checks every write would repeat.
    const target = "stream" in req ? req.stream : res;
    this.sink = new ResponseSink(target, protocol.binary);
    this.pump = new DeliveryPump(this.sink, services.scheduler, { metrics: services.metrics, transport: "subscribe" });
    res.once("close", this.onClose);
    // A client that leaves in the middle of its request fails the request; 'close' then releases the call.
    req.on("error", ignore);
  }

  /** Authenticates, reads the request, subscribes and starts streaming; reports every failure in the stream. */
  async start(): Promise<void> {
    try {
      const timeout = this.protocol.parseTimeout(headerValue(this.req, this.protocol.timeoutHeader));
      this.startDeadline(timeout.timeoutMs);
      // Before anything is read: a refused subscriber learns nothing about its request.
      if (!this.services.readAccess.allows(headerValue(this.req, "authorization"))) {
        throw new ConnectError(READ_KEY_REQUIRED, Code.Unauthenticated);
      }
      const context = await this.services.authenticate(handshakeFromNode(this.req));
      if (this.finished) return;
      if (timeout.error) throw timeout.error;
      const request = await this.services.requests.read(this.req, this.protocol);
      if (this.finished) return;
      this.sink.deltas = request.deltas;
      const subscription = await this.services.engine.subscribe(
        {
          streamName: request.streamName,
          groupId: request.groupId,
          itemId: request.itemId,
          fromOffset: countFromProto("from_offset", request.fromOffset),
        },
        { context, onReadable: this.pump.onReadable, transport: "subscribe", peer: peerAddress(this.req.socket) },
      );
      // The client left, or the deadline passed, while the snapshot was read.
      if (this.finished) {
        subscription.end();
        return;
      }
      this.subscription = subscription;
      subscription.onEnd(this.onSubscriptionEnd);
      if (this.finished) return;
      this.res.writeHead(200, { "content-type": this.protocol.contentType });
      this.pump.add(subscription, undefined);
    } catch (error) {
      this.finish(toConnectError(error));
    }
  }

  private startDeadline(timeoutMs: number | undefined): void {
    // Longer than a timer can wait is as good as none (Node.js would fire it at once).
    if (timeoutMs === undefined || timeoutMs > MAX_TIMER_MS) return;
    this.deadline = setTimeout(this.onDeadline, timeoutMs);
    this.deadline.unref();
  }

  private readonly onSubscriptionEnd = (error: StreamError | undefined): void => {
    this.finish(error === undefined ? undefined : toConnectError(error));
  };

  private readonly onDeadline = (): void => {
    this.finish(new ConnectError("the operation timed out", Code.DeadlineExceeded), "deadline");
  };

  /**
   * Sends the final status after whatever is already buffered; messages still queued
   * are dropped (the error says where to resume). A stream that has not closed
   * `stallGraceMs` later belongs to a client that stopped reading, and is cut.
   */
  private finish(error: ConnectError | undefined, reason?: SubscriptionEndReason): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadline);
    this.pump.close();
    this.subscription?.end(undefined, reason);
    this.endCode = error?.code;
    this.counted(codeName(error?.code));
    const end = streamEnd(this.protocol.family, error);
    const res = this.res;
    if (!res.headersSent) {
      res.setHeader("content-type", this.protocol.contentType);
      // No message yet: gRPC sends its status in the headers alone (trailers-only).
      if (end.trailers) for (const [name, value] of Object.entries(end.trailers)) res.setHeader(name, value);
    } else if (end.trailers) {
      res.addTrailers(end.trailers);
    }
    if (end.frame) res.end(end.frame);
    else res.end();
    // An unread request body (a refused or malformed call) must not hold the stream open.
    this.req.resume();
    this.stallTimer = setTimeout(this.cut, stallGraceMs(this.req));
    this.stallTimer.unref();
  }

  private counted(code: string): void {
    this.services.metrics.rpcFinished(METHOD, PROTOCOLS[this.protocol.family], code, secondsSince(this.startedAt));
  }

  private readonly cut = (): void => cutStream(this.req, this.endCode);

  private readonly onClose = (): void => {
    // The client left before the status was sent.
    if (!this.finished) this.counted("canceled");
    this.finished = true;
    clearTimeout(this.deadline);
    clearTimeout(this.stallTimer);
    this.pump.close();
    this.subscription?.end();
  };
}
