// Imported rather than read from the global, which optimized code looks up on every use.
import { Buffer } from "node:buffer";

/** Copies bytes; taken from Uint8Array, as a property of a Buffer it is looked up on every call. */
const copyBytes = Uint8Array.prototype.set;

/**
 * Server-to-client WebSocket text frames (RFC 6455 5.2: FIN, opcode 1, unmasked) built
 * into one buffer, so that what a connection sends in one flush costs one plain write
 * to its socket instead of a frame header, a payload and a writev per message.
 *
 * Writing frames past `ws` is safe because they are complete frames written
 * synchronously, as `ws` writes its own (pings, pongs, close) when no message of its
 * own is being compressed; a stream socket sends every message of its own this way,
 * so `ws` never has one in progress. Frames go out uncompressed (RSV1 clear), which
 * is valid on a connection that negotiated permessage-deflate as well.
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

  /** Adds one text frame whose payload is `head` followed by `tail`. */
  add(head: Buffer, tail: Buffer): void {
    const payload = head.length + tail.length;
    this.parts[this.used++] = head;
    this.parts[this.used++] = tail;
    this.bytes += headerLength(payload) + payload;
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
      copyBytes.call(out, head, at);
      at += head.length;
      copyBytes.call(out, tail, at);
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
  copyBytes.call(out, payload, writeHeader(out, 0, payload.length));
  return out;
}

function headerLength(payload: number): number {
  return payload < 126 ? 2 : payload < 0x10000 ? 4 : 10;
}

/**
 * Writes a FIN text frame header for `payload` bytes at `at`; returns where the payload
 * starts. Byte by byte: Buffer's write methods are looked up on every call in hot code.
 */
function writeHeader(out: Buffer, at: number, payload: number): number {
  out[at] = 0x81;
  if (payload < 126) {
    out[at + 1] = payload;
    return at + 2;
  }
  if (payload < 0x10000) {
    out[at + 1] = 126;
    out[at + 2] = payload >>> 8;
    out[at + 3] = payload & 0xff;
    return at + 4;
  }
  out[at + 1] = 127;
  // Payloads stay far below 2^53, so the high word is a plain division.
  const high = Math.floor(payload / 0x1_0000_0000);
  const low = payload >>> 0;
  for (let i = 0; i < 4; i++) {
    out[at + 5 - i] = (high >>> (8 * i)) & 0xff;
    out[at + 9 - i] = (low >>> (8 * i)) & 0xff;
  }
  return at + 10;
}
