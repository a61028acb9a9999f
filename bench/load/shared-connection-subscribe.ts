import http2 from "node:http2";
import { SubscribeCall } from "./transports/subscribe-transport.js";
import type { Subscriber, SubscriberEvents } from "./transports/transport.js";

/**
 * One HTTP/2 connection carrying several Subscribe calls, as a browser or a gRPC channel
 * multiplexes them. The fan-out scenarios give every subscriber a connection of its
 * own; at 20,000 subscribers that needs more file descriptors than a process may hold
 * on machines that cap them at 20,000 (the server must hold one per connection as well),
 * so the `scale` scenario puts a fixed number of calls on each connection, the same for
 * every row.
 */
export class SharedSubscribeConnection {
  private readonly session: http2.ClientHttp2Session;

  constructor(url: string) {
    this.session = http2.connect(url);
    this.session.on("error", () => undefined);
  }

  subscribe(streamName: string, groupId: string, events: SubscriberEvents): Subscriber {
    return new SubscribeCall(this.session, streamName, groupId, events);
  }

  close(): void {
    this.session.destroy();
  }
}
