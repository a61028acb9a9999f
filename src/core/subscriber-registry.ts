import type { ItemStore } from "./item-store.js";
import { GroupFeed } from "./group-feed.js";
import { ErrorCode, StreamError } from "./errors.js";
import { groupKey } from "./names.js";
import { Subscription, type QueueLimits, type SubscriptionTarget } from "./subscription.js";
import type { SnapshotSession } from "./snapshot-session.js";
import type { FlushScheduler } from "./flush-scheduler.js";

export interface SubscriberStats {
  /** Subscriptions open in this process. */
  subscriptions: number;
  /** Groups watched through the store: one feed per group, however many subscribe to it. */
  groupFeeds: number;
}

export interface RegistryOptions {
  queueLimits: QueueLimits;
  /**
   * A subscriber that received nothing for this long gets a heartbeat. Default
   * 15,000 ms: below the idle timeouts of common proxies and load balancers.
   */
  heartbeatMs: number;
  /**
   * Most subscriptions open at once in this process, over every transport; the next is
   * refused with RESOURCE_EXHAUSTED. Each costs memory and a share of every fan-out.
   */
  maxSubscriptions: number;
  /** See SnapshotSession's chunkBytes. */
  snapshotChunkBytes: number;
  /** See EngineOptions.scheduler. */
  scheduler: FlushScheduler | undefined;
}

/**
 * All local subscribers, grouped by (stream, group) into feeds. A feed exists while
 * it has subscribers, so the adapter only delivers the groups someone here watches.
 */
export class SubscriberRegistry {
  private readonly feeds = new Map<string, GroupFeed>();
  private readonly heartbeatTimer: NodeJS.Timeout;
  /** Subscriptions added and not yet ended: the count admission is decided on, kept as it changes. */
  private open = 0;

  constructor(
    private readonly store: ItemStore,
    private readonly options: RegistryOptions,
  ) {
    const sweepEvery = Math.max(10, Math.floor(options.heartbeatMs / 3));
    this.heartbeatTimer = setInterval(() => this.sendHeartbeats(), sweepEvery);
    this.heartbeatTimer.unref();
  }

  /** For metrics and tests that check nothing leaks. */
  stats(): SubscriberStats {
    let subscriptions = 0;
    for (const feed of this.feeds.values()) subscriptions += feed.size;
    return { subscriptions, groupFeeds: this.feeds.size };
  }

  /** Subscriptions open here on one group. */
  subscriberCount(streamName: string, groupId: string): number {
    return this.feeds.get(groupKey(streamName, groupId))?.size ?? 0;
  }

  /**
   * Registers a subscriber in catching-up state: it holds live messages back until
   * `start` is called with its snapshot. Resolves once the group's feed is live.
   * Beyond `maxSubscriptions` it refuses with RESOURCE_EXHAUSTED and registers nothing.
   */
  async add(target: SubscriptionTarget, onReadable?: () => void): Promise<Subscription> {
    this.admit();
    const key = groupKey(target.streamName, target.groupId);
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = new GroupFeed(target.streamName, target.groupId, this.store, this.options.snapshotChunkBytes, {
        scheduler: this.options.scheduler,
        maxPending: this.options.queueLimits.maxMessages,
      });
      this.feeds.set(key, feed);
    }
    const subscription = new Subscription(target, this.options.queueLimits, onReadable);
    feed.add(subscription);
    this.open++;
    const owner = feed;
    subscription.onEnd(() => {
      this.open--;
      owner.remove(subscription);
      if (owner.size === 0 && this.feeds.get(key) === owner) {
        this.feeds.delete(key);
        owner.close();
      }
    });
    try {
      await feed.ready;
    } catch (error) {
      subscription.end(new StreamError(ErrorCode.Unavailable, `cannot watch the group: ${String(error)}`));
      if (this.feeds.get(key) === owner) this.feeds.delete(key);
      throw error;
    }
    return subscription;
  }

  /**
   * The snapshot session of the group of a subscription just added (see
   * GroupFeed.snapshotSession). Call `release` once the last chunk is queued; an ended
   * subscription releases it too.
   */
  snapshotSession(subscription: Subscription): { session: SnapshotSession; release: () => void } | undefined {
    const feed = this.feeds.get(groupKey(subscription.target.streamName, subscription.target.groupId));
    if (!feed || subscription.ended) return undefined;
    const session = feed.snapshotSession();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      session.release();
    };
    subscription.onEnd(release);
    return { session, release };
  }

  /** Throws RESOURCE_EXHAUSTED when no further subscription may open; cheap enough to call before any other work. */
  admit(): void {
    if (this.open >= this.options.maxSubscriptions) {
      throw new StreamError(
        ErrorCode.ResourceExhausted,
        `the server holds at most ${this.options.maxSubscriptions} subscriptions; try again later`,
      );
    }
  }

  /** Ends every subscription open now with `error`, the server stopping; an ended one leaves its feed, so none is ended twice. */
  endAll(error: StreamError): void {
    for (const feed of [...this.feeds.values()]) for (const subscription of feed.subscriptions()) subscription.end(error, "shutdown");
  }

  /** Stops the heartbeats and ends whatever is still open. */
  close(error: StreamError): void {
    clearInterval(this.heartbeatTimer);
    this.endAll(error);
  }

  private sendHeartbeats(): void {
    const due = Date.now() - this.options.heartbeatMs;
    for (const feed of this.feeds.values()) {
      for (const subscription of feed.subscriptions()) {
        if (subscription.lastQueuedAt <= due) subscription.heartbeat(feed.deliveredOffset);
      }
    }
  }
}
