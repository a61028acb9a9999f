import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../../../gen/iii/stream/v1/stream_pb.js";
import { openConnectWriter } from "./connect-writer.js";
import { STREAM_NAME, SubscriberBase, type Subscriber, type SubscriberEvents, type Transport } from "./transport.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";
/** Connect streaming envelope: 1 flag byte, 4 length bytes. */
const ENVELOPE_HEADER = 5;
const END_STREAM_FLAG = 0b10;

/**
 * Subscribe over Connect (binary, HTTP/2), one connection per subscriber. The client is
 * written against the wire format rather than through the Connect client so that it
 * does what any client must (frame and decode each message) and no more: the load
 * generator's CPU then bounds the figures as little as it does for the peers' clients.
 */
export const subscribeTransport: Transport = {
  subscribe(url, groupId, events) {
    const session = http2.connect(url);
    session.on("error", () => undefined);
    const call = new SubscribeCall(session, STREAM_NAME, groupId, events, () => session.destroy());
    session.on("close", () => call.connectionClosed());
    return call;
  },
  openWriter: openConnectWriter,
};

/**
 * One Subscribe call on an HTTP/2 session, its frames read and decoded by hand. Joined
 * with the snapshot's last message (`more` unset; absent on a server that sends one).
 */
export class SubscribeCall extends SubscriberBase implements Subscriber {
  private readonly stream: http2.ClientHttp2Stream;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    session: http2.ClientHttp2Session,
    streamName: string,
    groupId: string,
    events: SubscriberEvents,
    /** How leaving closes it: the session when the call has one of its own, else the stream. */
    private readonly leave?: () => void,
  ) {
    super(events);
    const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName, groupId }));
    const envelope = Buffer.alloc(ENVELOPE_HEADER + request.length);
    envelope.writeUInt32BE(request.length, 1);
    envelope.set(request, ENVELOPE_HEADER);
    const stream = session.request({
      ":method": "POST",
      ":path": SUBSCRIBE_PATH,
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    this.stream = stream;
    stream.on("error", () => undefined);
    stream.on("data", (chunk: Buffer) => this.read(chunk));
    stream.on("close", () => this.markEnded(new Error("the Subscribe stream ended")));
    stream.end(envelope);
  }

  /** The call's own session closed (see subscribeTransport). */
  connectionClosed(): void {
    this.markEnded(new Error("the HTTP/2 connection closed"));
  }

  protected disconnect(): void {
    if (this.leave) this.leave();
    else this.stream.close();
  }

  private read(chunk: Buffer): void {
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buffer.length >= ENVELOPE_HEADER) {
      const length = buffer.readUInt32BE(1);
      if (buffer.length < ENVELOPE_HEADER + length) break;
      const flags = buffer[0];
      const message = buffer.subarray(ENVELOPE_HEADER, ENVELOPE_HEADER + length);
      buffer = buffer.subarray(ENVELOPE_HEADER + length);
      if ((flags & END_STREAM_FLAG) === 0) this.deliver(message);
    }
    this.pending = buffer;
  }

  private deliver(bytes: Uint8Array): void {
    const message = fromBinary(SubscribeResponseSchema, bytes).message;
    if (message.case === "snapshot") {
      if (message.value.more !== true) this.markJoined();
    } else if (message.case === "change") {
      const data = message.value.data?.kind;
      const index = data?.case === "structValue" ? data.value.fields.i?.kind : undefined;
      if (index?.case === "numberValue") this.events.onChange(index.value);
    }
  }
}
