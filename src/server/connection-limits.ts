import { CONNECTION_SHARE_OF_FILES, openFileLimit } from "./open-file-limit.js";

/**
 * Time limits and caps of the connections of one port. Every limit applies only to a
 * connection that is not doing anything legitimate: a Subscribe (any protocol) has a
 * stream or a response open, and an upgraded WebSocket has left HTTP, so neither is
 * ever cut by them. A timeout of 0 turns that timeout off.
 */
export interface ConnectionLimits {
  /**
   * A new connection must have sent its whole HTTP/2 preface and first SETTINGS, or the
   * first byte of an HTTP/1.1 request, within this many ms; otherwise it is destroyed.
   * @default 10,000 ms: a real client sends its first bytes at once; an idle or
   * half-opened connection only holds a file descriptor
   */
  firstBytesTimeoutMs: number;
  /**
   * An HTTP/1.1 request's headers must be complete this many ms after its first byte
   * (slowloris); otherwise the answer is 408 and the connection closes.
   * @default 30,000 ms: headers are a few hundred bytes, sent in one go by any client
   */
  headersTimeoutMs: number;
  /**
   * An HTTP/1.1 request, body included, must be complete this many ms after its first
   * byte; otherwise 408 and close. Only the request: a response (a Subscribe) may last.
   * @default 60,000 ms: a body of the largest message (1 MiB by default) still fits at
   * about 20 KB/s, while a dribbled body cannot hold a connection for long
   */
  requestTimeoutMs: number;
  /**
   * An HTTP/1.1 connection with no request in progress closes after this many ms.
   * @default 5,000 ms: Node's own default, which clients' connection pools expect
   */
  keepAliveTimeoutMs: number;
  /**
   * An HTTP/2 session with no open stream is closed (GOAWAY) after this many ms.
   * @default 120,000 ms: long enough for a client's burst of calls to reuse one
   * session, and clients reconnect transparently after a GOAWAY
   */
  http2IdleTimeoutMs: number;
  /**
   * Open connections in total (WebSockets included); one more is destroyed at once.
   * @default 10,000, or 80% of the process's file-descriptor limit if that is lower:
   * refusing a connection is better than failing to open files and sockets for everyone
   */
  maxConnections: number;
  /**
   * Open connections from one remote address; one more is destroyed at once. Set it
   * when clients reach the port directly, so that one client cannot take every connection.
   * @default `maxConnections`, i.e. no cap of its own: behind a load balancer, a proxy or
   * a mesh sidecar every client has that one address, and a lower default would refuse
   * legitimate clients there (and a local load test)
   */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_FIRST_BYTES_TIMEOUT_MS = 10_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const DEFAULT_HTTP2_IDLE_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** The limits with every default filled in; throws a RangeError naming a bad value. */
export function resolveConnectionLimits(given: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits: ConnectionLimits = {
    firstBytesTimeoutMs: given.firstBytesTimeoutMs ?? DEFAULT_FIRST_BYTES_TIMEOUT_MS,
    headersTimeoutMs: given.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: given.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: given.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    http2IdleTimeoutMs: given.http2IdleTimeoutMs ?? DEFAULT_HTTP2_IDLE_TIMEOUT_MS,
    maxConnections: given.maxConnections ?? defaultMaxConnections(),
    maxConnectionsPerAddress: 0,
  };
  limits.maxConnectionsPerAddress = given.maxConnectionsPerAddress ?? limits.maxConnections;
  for (const [name, value] of Object.entries(limits)) {
    const least = name.startsWith("max") ? 1 : 0;
    if (!Number.isSafeInteger(value) || value < least) {
      throw new RangeError(`connections.${name} must be an integer of at least ${least}, got ${String(value)}`);
    }
  }
  // Node refuses a headers timeout longer than the request's, which contains it.
  if (limits.requestTimeoutMs > 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(
      `connections.headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed connections.requestTimeoutMs (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

/** 10,000, or 80% of the soft limit on open files where it is known (Linux) and lower. */
export function defaultMaxConnections(fileLimit = openFileLimit()): number {
  if (fileLimit === undefined) return DEFAULT_MAX_CONNECTIONS;
  return Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, Math.floor(fileLimit * CONNECTION_SHARE_OF_FILES)));
}
