import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/**
 * The parts of ws that writing frames beneath it relies on (read from ws 8.23):
 * a WebSocket keeps its socket in `_socket` and its Sender in `_sender`, and the
 * Sender writes each frame of its own (ping, pong, close, messages) to that same
 * socket whole and synchronously (`sendFrame`), unless it is compressing a message,
 * which only permessage-deflate makes it do. test/ws-text-frame-batch.test.ts fails
 * when any of this changes.
 */
interface WsInternals {
  _socket?: unknown;
  _sender?: { _socket?: unknown; sendFrame?: unknown };
}

/**
 * Whether frames may be written to `socket` beneath `ws` (see TextFrameBatch): no
 * extension was negotiated (permessage-deflate, the only one ws has, would have ws
 * write compressed messages of its own later, out of our order), and ws writes its
 * own frames to this very socket in the way described above. Otherwise a connection
 * sends through `ws.send`, slower but always correct.
 */
export function canWriteBeneath(ws: WebSocket, socket: Duplex): boolean {
  const internals = ws as unknown as WsInternals;
  return (
    ws.extensions === "" &&
    internals._socket === socket &&
    internals._sender?._socket === socket &&
    typeof internals._sender.sendFrame === "function"
  );
}

/**
 * Server-to-client WebSocket text frames (RFC 6455 5.2: FIN, opcode 1, unmasked) built
 * into one buffer, so that what a connection sends in one flush costs one plain write
 * to its socket instead of a frame header, a payload and a writev per message.
 *
 * Writing frames past `ws` is safe because they are complete frames written
 * synchronously, as `ws` writes its own (pings, pongs, close) when it compresses
 * nothing (`canWriteBeneath`); a stream socket sends every message of its own this
 * way, so `ws` never has one in progress.
 */
export class TextFrameBatch {
  /**
   * Each frame's payload in two parts: the shared head and the subscription's suffix.
   * The array is reused from batch to batch (emptying it would free its storage), so
   * only the first `used` slots count; taken slots are cleared to hold no buffer alive.
   */
  private readonly parts: Array<Buffer | undefined> = [];
  private used = 0;
  private bytes = 0;

  /** Bytes on the wire of the frames added so far. */
  get byteLength(): number {
    return this.bytes;
  }

  /** Adds one text frame whose payload is `head` followed by `tail`; returns the frame's bytes on the wire. */
  add(head: Buffer, tail: Buffer): number {
    const payload = head.length + tail.length;
    this.parts[this.used++] = head;
    this.parts[this.used++] = tail;
    const frame = headerLength(payload) + payload;
    this.bytes += frame;
    return frame;
  }

  /** Every frame added, in order, in one buffer; the batch is empty afterwards. Undefined when it was empty. */
  take(): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    const out = Buffer.allocUnsafe(this.bytes);
    const parts = this.parts;
    let at = 0;
    for (let i = 0; i < this.used; i += 2) {
      const head = parts[i]!;
      const tail = parts[i + 1]!;
      parts[i] = parts[i + 1] = undefined;
      at = writeHeader(out, at, head.length + tail.length);
      out.set(head, at);
      at += head.length;
      out.set(tail, at);
      at += tail.length;
    }
    this.used = 0;
    this.bytes = 0;
    return out;
  }
}

/** One text frame holding `text`. */
export function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  const out = Buffer.allocUnsafe(headerLength(payload.length) + payload.length);
  out.set(payload, writeHeader(out, 0, payload.length));
  return out;
}

function headerLength(payload: number): number {
  return payload < 126 ? 2 : payload < 0x10000 ? 4 : 10;
}

/** Writes a FIN text frame header for `payload` bytes at `at`; returns where the payload starts. */
function writeHeader(out: Buffer, at: number, payload: number): number {
  out[at] = 0x81;
  if (payload < 126) {
    out[at + 1] = payload;
    return at + 2;
  }
  if (payload < 0x10000) {
    out[at + 1] = 126;
    out.writeUInt16BE(payload, at + 2);
    return at + 4;
  }
  out[at + 1] = 127;
  // Payloads stay far below 2^53, so the high word is a plain division.
  out.writeUInt32BE(Math.floor(payload / 0x1_0000_0000), at + 2);
  out.writeUInt32BE(payload >>> 0, at + 6);
  return at + 10;
}
