import { socketIoTransport } from "./socket-io-transport.js";
import { streamSocketTransport } from "./stream-socket-transport.js";
import { subscribeTransport } from "./subscribe-transport.js";
import type { Transport } from "./transport.js";
import { wsBroadcastTransport } from "./ws-broadcast-transport.js";
import { openWorkerWriter } from "./worker-writer.js";

/** Every fan-out system the suite compares, by the name results use. */
export const TRANSPORTS = {
  subscribe: subscribeTransport,
  "stream-socket": streamSocketTransport,
  /** Stream-socket subscribers; writes are `stream::set` calls over the worker WebSocket. */
  "stream-socket-worker-writes": { ...streamSocketTransport, openWriter: openWorkerWriter },
  "socket.io": socketIoTransport,
  ws: wsBroadcastTransport,
} satisfies Record<string, Transport>;

export type TransportName = keyof typeof TRANSPORTS;
