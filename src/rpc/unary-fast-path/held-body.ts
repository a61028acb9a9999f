import type http2 from "node:http2";
import type { NodeRequest } from "./unary-call.js";

/** A body read up to a limit: whole (`complete`), or the chunks read when it went beyond. */
export interface HeldBody {
  chunks: Buffer[];
  size: number;
  complete: boolean;
  req: NodeRequest;
}

function ignore(): void {}

/** Reads the body whole, or until it is larger than `limit` (then stops reading and leaves the rest in the request). */
export function holdBody(req: NodeRequest, limit: number): Promise<HeldBody> {
  return new Promise((resolve) => {
    const held: HeldBody = { chunks: [], size: 0, complete: false, req };
    const done = (complete: boolean) => {
      req.off("data", onData);
      req.off("end", onEnd);
      held.complete = complete;
      if (!complete) req.pause();
      resolve(held);
    };
    const onData = (chunk: Buffer) => {
      held.chunks.push(chunk);
      held.size += chunk.byteLength;
      if (held.size > limit) done(false);
    };
    const onEnd = () => done(true);
    // An error ends the call (the client went away); unheard, it would end the process.
    req.on("error", ignore);
    req.on("data", onData);
    req.once("end", onEnd);
  });
}

/**
 * The same for a raw HTTP/2 stream, read so that Node does not emit its `end` before the
 * stream closes. A stream whose end was emitted is destroyed the moment it closes, which,
 * for an answer that ends with its last DATA frame, comes before that frame's write has
 * completed; Node then builds an ERR_STREAM_DESTROYED error (with its stack) per call, a
 * tenth of what a call costs. Node emits the end when the client's END_STREAM finds the
 * stream's buffer empty, so the bytes stay buffered until the end has arrived (or the
 * buffer is full) and are read a tick later; the stream then closes with its end unread,
 * and Node destroys it once the end is read and the answer's write has finished. (An
 * empty body's end comes with its headers and is emitted at once; it costs the error.)
 */
export function holdStreamBody(stream: http2.ServerHttp2Stream, req: NodeRequest, limit: number): Promise<HeldBody> {
  const held: HeldBody = { chunks: [], size: 0, complete: false, req };
  /** Reads what is buffered; false once the body is beyond the limit (the rest stays in the stream). */
  const take = (): boolean => {
    // Exactly what is buffered: a read of that length never emits the end, as read() would.
    for (let length = stream.readableLength; length > 0; length = stream.readableLength) {
      const chunk = stream.read(length) as Buffer | null;
      if (chunk === null) break;
      held.chunks.push(chunk);
      held.size += chunk.byteLength;
      if (held.size > limit) return false;
    }
    return true;
  };
  return new Promise<boolean>((resolve) => {
    const done = (ended: boolean) => {
      stream.off("readable", onReadable);
      stream.off("end", onEnd);
      resolve(ended);
    };
    const onReadable = () => {
      const ended = readableEnded(stream);
      if (ended === true) return done(true);
      // Before the end, bytes are read only when Node's buffer is full, so that the client is not held up.
      if (ended === false && stream.readableLength < stream.readableHighWaterMark) return;
      // (A Node that does not say whether the stream ended: everything is read, and its end event ends the body.)
      if (!take()) done(false);
    };
    const onEnd = () => done(true);
    stream.on("readable", onReadable);
    stream.once("end", onEnd);
  }).then((ended) => {
    // A tick after the end arrived, once Node has looked at the stream's buffer for it.
    held.complete = ended && take();
    return held;
  });
}

/** Whether the stream has ended (its last byte is buffered or read), before its `end` event; undefined when this Node does not say. */
function readableEnded(stream: http2.ServerHttp2Stream): boolean | undefined {
  return (stream as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended;
}

/** The bytes held, then the rest of the body as Connect's adapter reads it. */
export async function* replay(held: HeldBody, req: NodeRequest): AsyncGenerator<Uint8Array> {
  yield* held.chunks;
  if (held.complete) return;
  for await (const chunk of req as AsyncIterable<Uint8Array>) yield chunk;
}
