/**
 * The stream socket (a WebSocket on `/`), one per subscriber. `ws.pause()` pauses the
 * underlying TCP socket, so frames, the close frame included, stay in the kernel until
 * the client reads again; the close code it then sees is how the server ended it.
 */
import { WebSocket } from "ws";
import { StallingBase, type StallingOptions } from "./stalling-subscriber.js";
import { STREAM_NAME } from "./transports/transport.js";

let nextSubscriptionId = 0;

export class StallingStreamSocketSubscriber extends StallingBase {
  private readonly socket: WebSocket;
  private synced = false;

  constructor(url: string, groupId: string, options: StallingOptions) {
    super(options);
    this.socket = new WebSocket(`${url.replace(/^http/, "ws")}/`, { perMessageDeflate: false });
    const subscriptionId = `stall-${nextSubscriptionId++}`;
    this.socket.on("open", () => this.socket.send(JSON.stringify({ type: "join", data: { subscriptionId, streamName: STREAM_NAME, groupId } })));
    this.socket.on("message", (data: Buffer) => {
      // Only the join's answer is parsed: decoding every 16 KiB change would cost the load process more than the server.
      if (!this.synced) {
        const event = (JSON.parse(data.toString()) as { event?: { type?: string } }).event;
        if (event?.type !== "sync") return;
        this.synced = true;
        this.markJoined();
        return;
      }
      this.received(data.length);
    });
    this.socket.on("error", () => undefined);
    this.socket.on("close", (code: number, reason: Buffer) => {
      const text = reason.toString();
      this.ended(`close ${code}`, text);
    });
  }

  protected pauseReading(): void {
    this.socket.pause();
  }

  protected resumeReading(): void {
    this.socket.resume();
  }

  protected disconnect(): void {
    this.socket.terminate();
  }
}
