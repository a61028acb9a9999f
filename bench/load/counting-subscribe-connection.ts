import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import type { CountingConnection, SampleSink, SampleSlot } from "./counting-connection.js";
import { STREAM_NAME } from "./transports/transport.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";
/** Connect streaming envelope: 1 flag byte, 4 length bytes. */
const ENVELOPE_HEADER = 5;
const END_STREAM_FLAG = 0b10;

/**
 * Several Subscribe calls (Connect binary) on one HTTP/2 connection, as a browser or a
 * gRPC channel multiplexes them; see counting-connection.ts for what is decoded. Each
 * stream's data is consumed at once, so HTTP/2 flow control never holds the server back.
 */
export class CountingSubscribeConnection implements CountingConnection {
  readonly settled: Promise<void>;
  joinedCount = 0;
  lost = 0;
  bytes = 0;
  private readonly session: http2.ClientHttp2Session;
  private unsettled: number;
  private settle!: () => void;
  private closed = false;

  constructor(url: string, groupId: string, calls: number, slot: SampleSlot | undefined, sink: SampleSink) {
    this.unsettled = calls;
    this.settled = new Promise<void>((resolve) => (this.settle = resolve));
    this.session = http2.connect(url);
    this.session.on("error", () => undefined);
    const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: STREAM_NAME, groupId }));
    const envelope = Buffer.alloc(ENVELOPE_HEADER + request.length);
    envelope.writeUInt32BE(request.length, 1);
    envelope.set(request, ENVELOPE_HEADER);
    for (let position = 0; position < calls; position++) {
      this.open(envelope, slot?.position === position ? slot.sample : undefined, sink);
    }
  }

  close(): void {
    this.closed = true;
    this.session.destroy();
  }

  private open(envelope: Buffer, sample: number | undefined, sink: SampleSink): void {
    const stream = this.session.request({
      ":method": "POST",
      ":path": SUBSCRIBE_PATH,
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    let state: "joining" | "joined" | "ended" = "joining";
    let pending: Buffer = Buffer.alloc(0);
    const end = () => {
      if (state === "joining") this.settleOne();
      else if (state === "joined" && !this.closed) this.lost++;
      state = "ended";
    };
    /** Decodes whole messages; returns false once the stream need not be decoded any more. */
    const decode = (chunk: Buffer): boolean => {
      let buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (buffer.length >= ENVELOPE_HEADER) {
        const length = buffer.readUInt32BE(1);
        if (buffer.length < ENVELOPE_HEADER + length) break;
        const flags = buffer[0];
        const bytes = buffer.subarray(ENVELOPE_HEADER, ENVELOPE_HEADER + length);
        buffer = buffer.subarray(ENVELOPE_HEADER + length);
        if ((flags & END_STREAM_FLAG) !== 0) {
          end();
          continue;
        }
        const message = fromBinary(SubscribeResponseSchema, bytes).message;
        if (message.case === "snapshot" && state === "joining" && message.value.more !== true) {
          state = "joined";
          this.joinedCount++;
          this.settleOne();
          if (sample === undefined) return false;
        } else if (message.case === "change" && sample !== undefined) {
          const data = message.value.data?.kind;
          const fields = data?.case === "structValue" ? data.value.fields : undefined;
          const i = fields?.i?.kind;
          const t = fields?.t?.kind;
          if (i?.case === "numberValue" && t?.case === "numberValue") sink.onChange(sample, i.value, t.value);
        }
      }
      pending = buffer;
      return true;
    };
    let decoding = true;
    stream.on("data", (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (decoding) decoding = decode(chunk);
    });
    stream.on("error", () => undefined);
    stream.on("close", end);
    stream.end(envelope);
  }

  private settleOne(): void {
    if (--this.unsettled === 0) this.settle();
  }
}
