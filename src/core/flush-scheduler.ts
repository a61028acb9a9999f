/** Something with output to write once the current burst of deliveries is over. */
export interface Flushable {
  flush(): void;
}

/**
 * Runs queued flushes once per event-loop turn, after the I/O callbacks that queued
 * them. A change fans out to every subscriber synchronously; flushing afterwards keeps
 * that loop short and lets a subscriber that got several messages in one turn write
 * them together. One timer serves every subscriber, so a delivery costs no closure.
 *
 * A server makes one and hands it to every transport (see DeliveryPump), so that all
 * of its connections flush in the same turn from one `setImmediate`.
 */
export class FlushScheduler {
  private queued: Flushable[] = [];
  private readonly run = () => {
    const batch = this.queued;
    this.queued = [];
    for (const target of batch) target.flush();
  };

  /** Queues `target` for the next turn; the caller makes sure it is queued at most once. */
  add(target: Flushable): void {
    if (this.queued.push(target) === 1) setImmediate(this.run);
  }
}
