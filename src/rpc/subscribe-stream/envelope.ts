/** Flags byte, then the payload length as a big-endian uint32: the framing gRPC, gRPC-Web and Connect share. */
const ENVELOPE_HEADER_BYTES = 5;

/** One length-prefixed message with the given flags, as one buffer ready to write. */
export function envelope(flags: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + payload.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(payload.byteLength, 1);
  frame.set(payload, ENVELOPE_HEADER_BYTES);
  return frame;
}

/** Like `envelope`, for text that is sent as UTF-8, without an intermediate copy. */
export function textEnvelope(flags: number, text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + length);
  frame[0] = flags;
  frame.writeUInt32BE(length, 1);
  frame.write(text, ENVELOPE_HEADER_BYTES, "utf8");
  return frame;
}
