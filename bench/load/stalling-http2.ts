/**
 * Subscribe over HTTP/2 (Connect binary or gRPC), one connection per subscriber, with
 * Node's default flow-control windows (64 KiB per stream). Pausing the client stream
 * stops Node from consuming its data, so no WINDOW_UPDATE goes out: once the window is
 * full the server cannot send, and whatever it still accepts for this subscriber stays
 * in its own memory. That is the slow reader the byte bound is about.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import { SubscribeFrameReader } from "./subscribe-frames.js";
import { connectEnding, grpcCodeName, StallingBase, type StallingOptions } from "./stalling-subscriber.js";
import { STREAM_NAME } from "./transports/transport.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";
/** HTTP/2 error codes (RFC 9113 section 7) by number, for a reset stream. */
const H2_ERRORS = [
  "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
  "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
];

/** The Subscribe request in a streaming envelope (flags 0), as both Connect and gRPC send it. */
export function subscribeEnvelope(groupId: string): Buffer {
  const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: STREAM_NAME, groupId }));
  const envelope = Buffer.alloc(5 + request.length);
  envelope.writeUInt32BE(request.length, 1);
  envelope.set(request, 5);
  return envelope;
}

export class StallingHttp2Subscriber extends StallingBase {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;

  constructor(url: string, groupId: string, protocol: "connect" | "grpc", options: StallingOptions) {
    super(options);
    this.session = http2.connect(url);
    this.session.on("error", (error: NodeJS.ErrnoException) => this.ended("connection error", error.code ?? error.message));
    this.session.on("close", () => this.ended("connection closed", "the HTTP/2 connection closed without a status"));
    const reader = new SubscribeFrameReader(true, {
      message: (kind, bytes) => {
        if (kind === "snapshot" || kind === "change" || kind === "event" || kind === "heartbeat") this.markJoined();
        if (kind !== "snapshot") this.received(bytes);
      },
      end: (text) => {
        const { ending, detail } = connectEnding(text);
        this.ended(ending, detail, text);
      },
    });
    this.stream = this.session.request({
      ":method": "POST",
      ":path": SUBSCRIBE_PATH,
      ...(protocol === "connect"
        ? { "content-type": "application/connect+proto", "connect-protocol-version": "1" }
        : { "content-type": "application/grpc+proto", te: "trailers" }),
    });
    this.stream.on("error", () => undefined);
    this.stream.on("response", (headers) => {
      // gRPC's trailers-only response: the status comes in the headers.
      if (headers["grpc-status"] !== undefined) this.grpcStatus(headers);
      else if (headers[":status"] !== 200) this.ended(`HTTP ${headers[":status"]}`, String(headers["content-type"] ?? ""));
    });
    this.stream.on("trailers", (trailers) => this.grpcStatus(trailers));
    this.stream.on("data", (chunk: Buffer) => reader.push(chunk));
    this.stream.on("close", () => {
      const code = this.stream.rstCode ?? 0;
      if (code !== 0) this.ended(`reset ${H2_ERRORS[code] ?? code}`, `RST_STREAM ${code} without a status`);
      else this.ended("closed without status", "the stream ended without a status");
    });
    this.stream.end(subscribeEnvelope(groupId));
  }

  protected pauseReading(): void {
    this.stream.pause();
  }

  protected resumeReading(): void {
    this.stream.resume();
  }

  protected disconnect(): void {
    this.session.destroy();
  }

  private grpcStatus(fields: http2.IncomingHttpHeaders): void {
    const code = Number(fields["grpc-status"]);
    const raw = String(fields["grpc-message"] ?? "");
    let message = raw;
    try {
      message = decodeURIComponent(raw);
    } catch {
      // Left percent-encoded: a malformed message is still worth reporting.
    }
    this.ended(grpcCodeName(code), message, JSON.stringify(fields));
  }
}
