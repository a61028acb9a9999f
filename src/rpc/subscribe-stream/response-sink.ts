import type { Writable } from "node:stream";
import type { Delivery } from "../../core/delivery.js";
import type { FrameSink } from "../../core/delivery-pump.js";
import { deliveryFrame } from "./delivery-frame.js";

/**
 * The frames of the call being flushed. Flushes run one at a time and each writes what
 * it framed before it returns, so every call shares this array instead of keeping one
 * as large as its largest burst. Written slots are cleared to hold no frame alive.
 */
const frames: Array<Buffer | undefined> = [];

/**
 * A Subscribe call as the delivery pump sees it: each delivery becomes its shared,
 * pre-encoded frame (the same bytes for every subscriber of that serialization), and
 * a flush's frames are written corked, so that several cost one writev. `target` is
 * the HTTP/2 stream itself (the compatibility response would repeat its checks on
 * every write) or the HTTP/1.1 response.
 */
export class ResponseSink implements FrameSink<undefined> {
  private count = 0;
  /** Whether the subscriber asked for deltas (SubscribeRequest.deltas); known once its request is read. */
  deltas = false;

  constructor(
    private readonly target: Writable,
    private readonly binary: boolean,
  ) {}

  /** Up to the transport's own high-water mark: the pump stops where `write` would start returning false. */
  get room(): number {
    return this.target.writableHighWaterMark - this.target.writableLength;
  }

  get buffered(): number {
    return this.target.writableLength;
  }

  frame(delivery: Delivery): number {
    const frame = deliveryFrame(delivery, this.binary, this.deltas);
    frames[this.count++] = frame;
    return frame.length;
  }

  write(): boolean {
    const target = this.target;
    const count = this.count;
    if (count > 0) {
      this.count = 0;
      const corked = count > 1;
      if (corked) target.cork();
      for (let i = 0; i < count; i++) {
        target.write(frames[i]!);
        frames[i] = undefined;
      }
      if (corked) target.uncork();
    }
    // Set exactly when a write returned false, so 'drain' is certain to follow.
    return !target.writableNeedDrain;
  }

  onDrain(listener: () => void): void {
    this.target.on("drain", listener);
  }

  offDrain(listener: () => void): void {
    this.target.off("drain", listener);
  }
}
