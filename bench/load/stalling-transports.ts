import type { StallingTransport } from "./memory-jobs.js";
import { StallingHttp1Subscriber } from "./stalling-http1.js";
import { StallingHttp2Subscriber } from "./stalling-http2.js";
import { StallingStreamSocketSubscriber } from "./stalling-stream-socket.js";
import type { StallingOptions, StallingSubscriber } from "./stalling-subscriber.js";

/** Opens a subscriber of `groupId` over `transport`, each on a connection of its own. */
export function openStalling(transport: StallingTransport, url: string, groupId: string, options: StallingOptions): StallingSubscriber {
  switch (transport) {
    case "subscribe-connect-h2":
      return new StallingHttp2Subscriber(url, groupId, "connect", options);
    case "subscribe-grpc-h2":
      return new StallingHttp2Subscriber(url, groupId, "grpc", options);
    case "subscribe-connect-json-h1":
      return new StallingHttp1Subscriber(url, groupId, options);
    case "stream-socket":
      return new StallingStreamSocketSubscriber(url, groupId, options);
  }
}
