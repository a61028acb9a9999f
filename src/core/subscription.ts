import { Delivery } from "./delivery.js";
import { ErrorCode, StreamError } from "./errors.js";
import type { SubscriptionEndReason } from "./metrics.js";

export interface SubscriptionTarget {
  streamName: string;
  groupId: string;
  /** Only this item's changes and events; undefined for the whole group. */
  itemId: string | undefined;
}

export interface QueueLimits {
  /**
   * Most messages waiting for one subscriber. Default 4096: a client may fall a few
   * seconds behind a busy group without being cut off.
   */
  maxMessages: number;
  /**
   * Most bytes waiting for one subscriber whose client does not read: the estimated
   * encoded size of its queued messages (see encoded-size.ts) plus what its transport
   * holds unsent beyond the kernel, checked while that transport is blocked (full, waiting
   * for the client). Default 4 MiB: four of the largest values, or seconds of an ordinary
   * group's changes, yet 1,000 subscribers that stop reading hold at most 4 GiB by this
   * count, and in fact far less, since they share each message's one copy. A message
   * arriving at an empty queue is always taken, however large; a queue that grows while
   * its transport still takes data (the server is behind, not the client) is bounded by
   * `maxMessages` alone.
   */
  maxBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = { maxMessages: 4096, maxBytes: 4 * 1024 * 1024 };

type State = "catching-up" | "live" | "ended";

const UNBUFFERED = { buffered: () => 0, blocked: () => true };

const NO_SLOTS: Array<Delivery | undefined> = [];
/** Room a queue starts with once something is queued; it doubles as needed, up to the queue limit. */
const FIRST_SLOTS = 4;
/** A drained queue that grew beyond this gives its room back, so a past burst does not hold memory. */
const KEPT_SLOTS = 64;

/**
 * One subscriber's bounded queue. While the snapshot (or the history a resume needs)
 * is read, live messages are held back; afterwards the ones the snapshot already
 * covers are dropped, so the subscriber sees every offset exactly once.
 *
 * A subscriber that falls `maxMessages` or `maxBytes` behind is ended with RESOURCE_EXHAUSTED: one
 * slow client never slows writers or other subscribers, and memory stays bounded. It
 * can resume with the last offset it saw.
 */
export class Subscription implements AsyncIterable<Delivery> {
  /**
   * The queue: its oldest message in `next`, the others in a ring whose length is a
   * power of two. A subscriber that takes each message as it comes touches neither the
   * ring nor the allocator.
   */
  private next: Delivery | undefined;
  private slots = NO_SLOTS;
  private first = 0;
  /** Messages waiting, `next` included. */
  private count = 0;
  private held: Delivery[] = [];
  /** Estimated bytes of what is queued and held (see Delivery.size). */
  private queuedBytes = 0;
  private heldBytes = 0;
  /**
   * What the subscriber's transport holds unsent, and whether it is blocked (its buffer
   * full, waiting for the client to read); set by the transport's pump. A queue that
   * grows while its transport still takes data belongs to a server that is behind, not
   * to a client that stopped reading: only the count bound applies then. Without a pump
   * (a subscription iterated in process) nothing is buffered and the queue is all there is.
   */
  transport: { buffered(): number; blocked(): boolean } = UNBUFFERED;
  private drainWaiter: (() => void) | undefined;
  private state: State = "catching-up";
  private failure: StreamError | undefined;
  /** Why it ended (for metrics); meaningful once `ended`. */
  endReason: SubscriptionEndReason = "client";
  private wake: (() => void) | undefined;
  private readonly endListeners: Array<(error: StreamError | undefined) => void> = [];
  /** The largest group offset this subscriber has been given. */
  private lastOffset = 0;
  /** The offset of the last message taken: what the subscriber has certainly seen. */
  private takenOffset: number | undefined;
  /** Messages the transport has taken (heartbeats and snapshot chunks included), for the access log. */
  deliveries = 0;
  /** When something was last queued, for heartbeats (to within the event-loop turn that queued it). */
  lastQueuedAt = Date.now();

  constructor(
    readonly target: SubscriptionTarget,
    private readonly limits: QueueLimits,
    /** Called when the queue gains a message, for push transports. */
    private readonly onReadable?: () => void,
  ) {}

  get ended(): boolean {
    return this.state === "ended";
  }

  get position(): number {
    return this.lastOffset;
  }

  /** Messages waiting to be taken. */
  get pending(): number {
    return this.count;
  }

  /** Called by the group feed for every message that matches this subscriber. */
  deliver(delivery: Delivery): void {
    if (this.state === "catching-up") {
      this.held.push(delivery);
      this.heldBytes += delivery.size;
      if (this.held.length > this.limits.maxMessages) this.overflow("messages");
      else if (this.heldBytes > this.limits.maxBytes && this.transport.blocked()) this.overflow("bytes");
      return;
    }
    if (this.state === "live") this.accept(delivery);
  }

  /**
   * Queues one chunk of a snapshot that more chunks follow, while live messages are
   * still held back (see `start`, which queues the last chunk).
   */
  pushChunk(chunk: Delivery): void {
    if (this.state === "catching-up") this.push(chunk);
  }

  /** Resolves once the queue is empty (everything queued has been taken) or the subscription has ended. */
  drained(): Promise<void> {
    if (this.count === 0 || this.state === "ended") return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiter = resolve));
  }

  /**
   * Ends catching up: queues the initial messages (a snapshot, or the changes a
   * resume needs), then the held-back live messages that come after `offset`.
   */
  start(initial: Delivery[], offset: number): void {
    if (this.state !== "catching-up") return;
    this.state = "live";
    this.lastOffset = offset;
    for (const delivery of initial) this.push(delivery);
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const delivery of held) this.accept(delivery);
    // Held messages were wrapped before the snapshot was read; they are queued only now.
    if (this.pending > 0) this.lastQueuedAt = Date.now();
  }

  /** Queues a heartbeat carrying the group offset the subscriber has caught up to. */
  heartbeat(groupOffset: number): void {
    if (this.state !== "live") return;
    this.lastOffset = Math.max(this.lastOffset, groupOffset);
    this.push(new Delivery({ kind: "heartbeat", offset: this.lastOffset }));
  }

  /** Takes the next message, if one is waiting. */
  take(): Delivery | undefined {
    const delivery = this.next;
    if (delivery === undefined) return undefined;
    this.queuedBytes -= delivery.size;
    if (--this.count === 0) {
      this.next = undefined;
      if (this.slots.length > KEPT_SLOTS) this.slots = NO_SLOTS;
      const waiter = this.drainWaiter;
      this.drainWaiter = undefined;
      waiter?.();
    } else {
      const slots = this.slots;
      this.next = slots[this.first];
      slots[this.first] = undefined;
      this.first = (this.first + 1) & (slots.length - 1);
    }
    this.deliveries++;
    // A chunk that more chunks follow is not a state to resume from.
    if (!delivery.partial) this.takenOffset = delivery.offset;
    return delivery;
  }

  /**
   * Ends the subscription with RESOURCE_EXHAUSTED, as an overflow of its own queue would:
   * its group holds more than `maxMessages` messages not yet handed to it (see GroupFeed).
   */
  fellBehind(): void {
    if (this.state !== "ended") this.overflow("messages");
  }

  /**
   * Ends the subscription; queued messages are dropped. Idempotent: the first call's
   * error and reason stand. Without a reason: `client` when there is no error, else `error`.
   */
  end(error?: StreamError, reason?: SubscriptionEndReason): void {
    if (this.state === "ended") return;
    this.state = "ended";
    this.failure = error;
    this.endReason = reason ?? (error === undefined ? "client" : "error");
    this.next = undefined;
    this.slots = NO_SLOTS;
    this.first = 0;
    this.count = 0;
    this.queuedBytes = 0;
    this.held = [];
    this.heldBytes = 0;
    const waiter = this.drainWaiter;
    this.drainWaiter = undefined;
    waiter?.();
    this.signal();
    for (const listener of this.endListeners.splice(0)) listener(error);
  }

  onEnd(listener: (error: StreamError | undefined) => void): void {
    if (this.state === "ended") listener(this.failure);
    else this.endListeners.push(listener);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery> {
    try {
      for (;;) {
        const delivery = this.take();
        if (delivery) {
          yield delivery;
          continue;
        }
        if (this.state === "ended") {
          if (this.failure) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.end();
    }
  }

  private accept(delivery: Delivery): void {
    const message = delivery.message;
    if (message.kind === "change") {
      if (message.offset <= this.lastOffset) return;
      this.lastOffset = message.offset;
    } else if (message.kind === "event" && message.offset < this.lastOffset) {
      // The event happened before the state the subscriber started from.
      return;
    }
    this.push(delivery);
  }

  private push(delivery: Delivery): void {
    // An overflow while `start` queues its backlog ends the subscription; what follows must not be queued.
    if (this.state === "ended") return;
    if (this.pending >= this.limits.maxMessages) {
      this.overflow("messages");
      return;
    }
    const size = delivery.size;
    if (this.count > 0 && this.queuedBytes + size + this.transport.buffered() > this.limits.maxBytes && this.transport.blocked()) {
      this.overflow("bytes");
      return;
    }
    this.queuedBytes += size;
    if (this.count === 0) {
      this.next = delivery;
    } else {
      const behind = this.count - 1;
      if (behind === this.slots.length) this.grow(behind);
      this.slots[(this.first + behind) & (this.slots.length - 1)] = delivery;
    }
    this.count++;
    this.lastQueuedAt = delivery.createdAt;
    this.signal();
  }

  /** Doubles the ring, which holds `held` messages. */
  private grow(held: number): void {
    const old = this.slots;
    const slots = new Array<Delivery | undefined>(Math.max(FIRST_SLOTS, old.length * 2)).fill(undefined);
    for (let i = 0; i < held; i++) slots[i] = old[(this.first + i) & (old.length - 1)];
    this.slots = slots;
    this.first = 0;
  }

  private overflow(limit: "messages" | "bytes"): void {
    // The queue is dropped, so only what was taken has reached the subscriber.
    const retry = this.takenOffset === undefined ? "subscribe again" : `resume with from_offset=${this.takenOffset}`;
    const behind = limit === "messages" ? `${this.limits.maxMessages} messages` : `${this.limits.maxBytes} bytes`;
    this.end(new StreamError(ErrorCode.ResourceExhausted, `subscriber fell more than ${behind} behind; ${retry}`), "slow_consumer");
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    this.onReadable?.();
  }
}
