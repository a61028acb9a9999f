/** Something with output to write once the current burst of deliveries is over. */
export interface Flushable {
  flush(): void;
}

/**
 * Event-loop time the flushes of one turn may take before the rest wait for the next
 * turn. 4 ms: long enough that the turn's own cost (a poll of the sockets) stays small
 * beside it, short enough that a unary call waits a few milliseconds per turn it needs,
 * however many subscribers are behind.
 */
export const SLICE_MS = 4;
/**
 * Most flushes in one turn, however quick they are. Each is at least one write to a
 * transport (some microseconds), so 64 of them cost a fraction of a millisecond, and a
 * turn's own cost stays a few percent of it; it bounds a turn the same way on any
 * machine, where SLICE_MS only caps a turn of large or slow flushes.
 */
export const FLUSHES_PER_TURN = 64;

/** A drained queue whose array grew beyond this many slots is replaced, so a past burst does not hold memory. */
const KEPT_SLOTS = 1024;

/**
 * Runs queued flushes after the I/O callbacks that queued them, from one `setImmediate`
 * per turn. A change fans out to every subscriber synchronously; flushing afterwards
 * keeps that loop short and lets a subscriber that got several messages in one turn
 * write them together. One timer serves every subscriber, so a delivery costs no closure.
 *
 * Flushing is the server's heaviest work when many subscribers are behind (issue 13:
 * 20,000 of them held other clients' Set and Get for seconds and cut writes to 40/s),
 * so a turn makes at most FLUSHES_PER_TURN flushes, for at most SLICE_MS, and leaves
 * the rest for the next turn, after the sockets have been polled again: unary calls,
 * acknowledgements and drains are served between slices instead of behind the whole
 * backlog. Targets are taken in the
 * order they were queued, each at most once per turn; one that queues itself again
 * (it still holds messages) goes behind the others, so every connection gets its turn
 * and one busy connection (or group) cannot keep the others waiting.
 *
 * A server makes one and hands it to every transport (see DeliveryPump).
 */
export class FlushScheduler {
  /** Targets waiting, from `head` on; slots before it are flushed and cleared. */
  private queue: Array<Flushable | undefined> = [];
  private head = 0;
  /** Targets that run first next turn (see addFirst). */
  private first: Flushable[] = [];
  private pending = false;

  private readonly run = (): void => {
    const deadline = performance.now() + SLICE_MS;
    const queue = this.queue;
    // Only what was queued before this turn: a target that queues itself again waits for the next one.
    const end = queue.length;
    try {
      const first = this.first;
      if (first.length > 0) {
        this.first = [];
        for (const target of first) target.flush();
      }
      // At least one of the others each turn, however long the first took: they always make progress.
      for (let flushed = 0; this.head < end && flushed < FLUSHES_PER_TURN; flushed++) {
        const target = queue[this.head]!;
        queue[this.head++] = undefined;
        target.flush();
        if (performance.now() >= deadline) break;
      }
    } finally {
      this.next();
    }
  };

  /** Clears what was flushed and comes back next turn for what is still queued. */
  private next(): void {
    const queue = this.queue;
    if (this.head === queue.length) {
      if (queue.length > KEPT_SLOTS) this.queue = [];
      else queue.length = 0;
      this.head = 0;
      if (this.first.length === 0) {
        this.pending = false;
        return;
      }
    }
    // The flushed slots are given back once they are the larger part, so compacting costs O(1) per target.
    if (this.head > queue.length >>> 1) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    setImmediate(this.run);
  }

  /** Queues `target` for the next turn; the caller makes sure it is queued at most once. */
  add(target: Flushable): void {
    this.queue.push(target);
    this.wake();
  }

  /**
   * Queues `target` to run at the start of the next turn, before the others and whatever
   * the turn's bounds: for a producer (a group's fan-out) whose work the others wait for,
   * which must not wait a whole round of them. It bounds its own work per flush.
   */
  addFirst(target: Flushable): void {
    this.first.push(target);
    this.wake();
  }

  private wake(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(this.run);
  }
}
