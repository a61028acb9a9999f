import { WebSocket } from "ws";
import { openConnectWriter } from "./connect-writer.js";
import { STREAM_NAME, SubscriberBase, type SubscriberEvents, type Transport } from "./transport.js";

interface Wrapper {
  event?: { type?: string; data?: { i?: unknown } };
}

/**
 * iii-stream's stream socket: one WebSocket per subscriber on `/`, a `join` message,
 * then wrapper messages; the `sync` that answers the join says it took effect. Writes
 * go through Set, as a backend's would.
 */
export const streamSocketTransport: Transport = {
  subscribe(url, groupId, events) {
    return new StreamSocketSubscriber(url, groupId, events);
  },
  openWriter: openConnectWriter,
};

let nextSubscriptionId = 0;

class StreamSocketSubscriber extends SubscriberBase {
  private readonly socket: WebSocket;

  constructor(url: string, groupId: string, events: SubscriberEvents) {
    super(events);
    this.socket = new WebSocket(`${url.replace(/^http/, "ws")}/`, { perMessageDeflate: false });
    const subscriptionId = `s${nextSubscriptionId++}`;
    this.socket.on("open", () =>
      this.socket.send(JSON.stringify({ type: "join", data: { subscriptionId, streamName: STREAM_NAME, groupId } })),
    );
    this.socket.on("message", (data) => this.read(data.toString()));
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => this.markEnded(new Error("the stream socket closed")));
  }

  protected disconnect(): void {
    this.socket.terminate();
  }

  private read(text: string): void {
    const event = (JSON.parse(text) as Wrapper).event;
    if (event?.type === "sync") this.markJoined();
    else if (typeof event?.data?.i === "number") this.events.onChange(event.data.i);
  }
}
