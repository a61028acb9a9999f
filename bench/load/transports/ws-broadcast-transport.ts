import { WebSocket } from "ws";
import type { ChangeWrapper } from "../../peers/wrapper-message.js";
import { ITEMS_PER_GROUP, SubscriberBase, writeData, type SubscriberEvents, type Transport } from "./transport.js";

const wsUrl = (url: string, path: string) => `${url.replace(/^http/, "ws")}${path}`;

/** The bare `ws` broadcast peer: subscribers on `/sub/<group>`, the writer on `/write`. */
export const wsBroadcastTransport: Transport = {
  subscribe(url, groupId, events) {
    return new WsSubscriber(url, groupId, events);
  },
  async openWriter(url) {
    const socket = new WebSocket(wsUrl(url, "/write"), { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    const acks = new Map<number, () => void>();
    socket.on("message", (data) => {
      const { ack } = JSON.parse(data.toString()) as { ack: number };
      acks.get(ack)?.();
      acks.delete(ack);
    });
    return {
      write: (groupId, i) =>
        new Promise<void>((resolve) => {
          acks.set(i, resolve);
          socket.send(JSON.stringify({ groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: writeData(i) }));
        }),
      close: () => socket.terminate(),
    };
  },
};

class WsSubscriber extends SubscriberBase {
  private readonly socket: WebSocket;

  constructor(url: string, groupId: string, events: SubscriberEvents) {
    super(events);
    this.socket = new WebSocket(wsUrl(url, `/sub/${encodeURIComponent(groupId)}`), { perMessageDeflate: false });
    this.socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as ChangeWrapper | { type: "joined" };
      if (message.type === "joined") this.markJoined();
      else this.events.onChange(message.event.data.i);
    });
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => this.markEnded(new Error("the socket closed")));
  }

  protected disconnect(): void {
    this.socket.terminate();
  }
}
