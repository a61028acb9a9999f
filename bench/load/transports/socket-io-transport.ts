import { io, type Socket } from "socket.io-client";
import type { ChangeWrapper } from "../../peers/wrapper-message.js";
import { ITEMS_PER_GROUP, SubscriberBase, writeData, type SubscriberEvents, type Transport, type Writer } from "./transport.js";

/** Socket.IO over its WebSocket transport (no long-polling first), one connection each. */
function connect(url: string): Socket {
  return io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 20_000 });
}

export const socketIoTransport: Transport = {
  subscribe(url, groupId, events) {
    return new SocketIoSubscriber(url, groupId, events);
  },
  async openWriter(url) {
    const socket = connect(url);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", reject);
    });
    const writer: Writer = {
      write: (groupId, i) =>
        new Promise<void>((resolve) => socket.emit("write", { groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: writeData(i) }, resolve)),
      close: () => socket.disconnect(),
    };
    return writer;
  },
};

class SocketIoSubscriber extends SubscriberBase {
  private readonly socket: Socket;

  constructor(url: string, groupId: string, events: SubscriberEvents) {
    super(events);
    this.socket = connect(url);
    this.socket.once("connect", () => this.socket.emit("join", groupId, () => this.markJoined()));
    this.socket.on("change", (message: ChangeWrapper) => this.events.onChange(message.event.data.i));
    this.socket.once("connect_error", (error) => this.markEnded(error));
    this.socket.once("disconnect", (reason) => this.markEnded(new Error(reason)));
  }

  protected disconnect(): void {
    this.socket.disconnect();
  }
}
