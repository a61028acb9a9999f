import { ErrorCode, StreamError } from "../core/errors.js";

/**
 * The close codes the WebSocket bridge uses, beyond the standard ones (1000 normal,
 * 1001 going away at shutdown). The 4xxx codes are private-use codes (RFC 6455
 * section 7.4.2), numbered after the HTTP status they resemble so they are easy to
 * remember. Browsers show them as `CloseEvent.code`.
 */
export const CloseCode = {
  /** The server is shutting down: reconnect (elsewhere) and resume with `fromOffset`. */
  GoingAway: 1001,
  /** The `auth_function` refused the connection at the handshake. Do not retry as is. */
  Unauthenticated: 4401,
  /** A message begun in fragments was not finished within one to two ping intervals. */
  MessageTimeout: 4408,
  /**
   * A frame was larger than the server's message limit (`max_message_bytes`) and had
   * nobody to answer. A worker's oversized invocation or result within four times the
   * limit gets an error instead, and the connection stays open.
   */
  MessageTooBig: 4413,
  /** The client read too slowly and its queue bound was exceeded: reconnect and resume with `fromOffset`. */
  SlowConsumer: 4429,
  /** Messages were lost in transit inside the server (e.g. a broker reconnect): reconnect and resume with `fromOffset`. */
  Unavailable: 4503,
} as const;

/** ws closes an oversized message with this standard code; the bridge reports MessageTooBig instead. */
export const WS_MESSAGE_TOO_BIG = 1009;

/** Close reasons are limited to 123 bytes of UTF-8 by the protocol. */
const MAX_REASON_BYTES = 123;

export interface Closing {
  code: number;
  reason: string;
}

/** How a connection closes when one of its subscriptions ended with `error`. */
export function closingFor(error: StreamError): Closing {
  if (error.code === ErrorCode.ResourceExhausted) {
    return { code: CloseCode.SlowConsumer, reason: "slow consumer: reconnect and rejoin with fromOffset" };
  }
  return { code: CloseCode.Unavailable, reason: truncateReason(`${error.message}`) };
}

/** Cuts a reason to what a close frame can carry, on a character boundary. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason, "utf8") <= MAX_REASON_BYTES) return reason;
  let cut = reason;
  while (Buffer.byteLength(cut, "utf8") > MAX_REASON_BYTES) cut = cut.slice(0, -1);
  return cut.isWellFormed() ? cut : cut.slice(0, -1);
}
