/** What a client and its watches can be told, each with its default and why. */
import type { JsonValue } from "./values.js";

/**
 * How the client reaches the server.
 * - `connect`: the Connect protocol (binary); HTTP/2 in Node, fetch in browsers.
 * - `grpc`: gRPC over HTTP/2; Node only (browsers cannot read HTTP trailers).
 * - `grpc-web`: gRPC-Web; Node and browsers.
 * - `websocket`: every watch of the client multiplexed on one stream socket (browsers allow
 *   only 6 HTTP/1.1 connections per server, so a page with many live lists needs it);
 *   unary calls go over `connect`.
 */
export type TransportName = "connect" | "grpc" | "grpc-web" | "websocket";

export interface ReconnectOptions {
  /**
   * The first retry waits a random time up to this, in ms. Default 250: short enough that a
   * restart is barely noticed, long enough that a refused connection does not spin.
   */
  initialDelayMs?: number;
  /** No wait is longer than this, in ms. Default 10,000: a server back after an outage is found within seconds. */
  maxDelayMs?: number;
  /** Each failed attempt in a row multiplies the ceiling by this. Default 2 (exponential backoff). */
  factor?: number;
}

export interface StreamClientOptions {
  /** The server's URL, e.g. `http://127.0.0.1:3112`. Required. */
  baseUrl: string;
  /** See TransportName. Default `connect`: it runs unchanged in Node and browsers. */
  transport?: TransportName;
  /**
   * Sent as `Authorization: Bearer <apiKey>` on every call (and, in Node, on the stream
   * socket's handshake). Default none. Browsers cannot set headers on a WebSocket: a page
   * authenticates its socket through the server's `auth_function` (see `socketQuery`).
   */
  apiKey?: string;
  /** Extra headers on every call (not on a browser's WebSocket, which cannot carry them). Default none. */
  headers?: Record<string, string>;
  /**
   * Query parameters of the stream socket's URL, for an `auth_function` that reads a token
   * from them (a browser's only way to present one). Default none.
   */
  socketQuery?: Record<string, string>;
  /** Backoff between reconnects, shared by every watch of the client (full jitter). */
  reconnect?: ReconnectOptions;
  /**
   * How often the server proves a quiet stream alive, in ms: its Subscribe heartbeat
   * (`heartbeat_ms`, 15,000 by default), or on `websocket` its ping interval (30,000).
   * A watch that hears nothing for twice this treats its connection as dead and
   * reconnects. Default: the server's default for the transport. In browsers the
   * stream socket's pings are invisible to the page, so there the socket's own close is
   * what tells.
   */
  heartbeatIntervalMs?: number;
}

export interface WatchOptions<T = JsonValue> {
  /**
   * Turns every value (snapshot items, changes) into `T`, e.g. a zod schema or its
   * `parse`. A value it rejects ends the view with `invalid_argument`: a view that
   * skipped it would no longer equal the server's. Default none (values are JSON).
   */
  parse?: ((value: JsonValue) => T) | { parse(value: unknown): T };
  /** Closes the view when aborted. Default none. */
  signal?: AbortSignal;
  /**
   * Start after this group offset, as a view that was live up to it would: the changes after
   * it arrive as `change`s, and when the server no longer holds them all, a `reset` brings
   * the whole state. Until such a reset `items` holds only what changed after the offset,
   * so this is for change feeds (a resumed `iii-stream watch`), not for a copy of the group.
   * Default none: the view starts from a snapshot of the whole group.
   */
  fromOffset?: number;
  /**
   * Ask for deltas over Subscribe: a change made by `update` may then carry its ops instead
   * of the whole value, which the view applies to its copy with the server's own update
   * code (a large item changed a little sends a little). Default true: the view is the
   * same either way. Ignored on the WebSocket transport, whose protocol has no deltas,
   * and until a view started from `fromOffset` holds the whole group.
   */
  deltas?: boolean;
}
