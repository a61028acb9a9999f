import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import { SubscriberBase, type Subscriber, type SubscriberEvents } from "./transports/transport.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";
/** Connect streaming envelope: 1 flag byte, 4 length bytes. */
const ENVELOPE_HEADER = 5;
const END_STREAM_FLAG = 0b10;

/**
 * One HTTP/2 connection carrying several Subscribe calls, as a browser or a gRPC channel
 * multiplexes them. The fan-out scenarios give every subscriber a connection of its
 * own; at 20,000 subscribers that needs more file descriptors than a process may hold
 * on machines that cap them at 20,000 (the server must hold one per connection as well),
 * so the `scale` scenario puts a fixed number of calls on each connection, the same for
 * every row. Frames are read and decoded by hand, as in subscribe-transport.ts.
 */
export class SharedSubscribeConnection {
  private readonly session: http2.ClientHttp2Session;

  constructor(url: string) {
    this.session = http2.connect(url);
    this.session.on("error", () => undefined);
  }

  subscribe(streamName: string, groupId: string, events: SubscriberEvents): Subscriber {
    return new MultiplexedSubscriber(this.session, streamName, groupId, events);
  }

  close(): void {
    this.session.destroy();
  }
}

class MultiplexedSubscriber extends SubscriberBase {
  private readonly stream: http2.ClientHttp2Stream;
  private pending: Buffer = Buffer.alloc(0);

  constructor(session: http2.ClientHttp2Session, streamName: string, groupId: string, events: SubscriberEvents) {
    super(events);
    const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName, groupId }));
    const envelope = Buffer.alloc(ENVELOPE_HEADER + request.length);
    envelope.writeUInt32BE(request.length, 1);
    envelope.set(request, ENVELOPE_HEADER);
    this.stream = session.request({
      ":method": "POST",
      ":path": SUBSCRIBE_PATH,
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    this.stream.on("error", () => undefined);
    this.stream.on("data", (chunk: Buffer) => this.read(chunk));
    this.stream.on("close", () => this.markEnded(new Error("the Subscribe stream ended")));
    this.stream.end(envelope);
  }

  protected disconnect(): void {
    this.stream.close();
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
      // Joined with the snapshot's last message; `more` is absent on a server that sends one.
      if (message.value.more !== true) this.markJoined();
    } else if (message.case === "change") {
      const data = message.value.data?.kind;
      const index = data?.case === "structValue" ? data.value.fields.i?.kind : undefined;
      if (index?.case === "numberValue") this.events.onChange(index.value);
    }
  }
}
