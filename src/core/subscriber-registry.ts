import type { ItemStore } from "./item-store.js";
import { GroupFeed } from "./group-feed.js";
import { ErrorCode, StreamError } from "./errors.js";
import { Subscription, type QueueLimits, type SubscriptionTarget } from "./subscription.js";

export interface RegistryOptions {
  queueLimits: QueueLimits;
  /**
   * A subscriber that received nothing for this long gets a heartbeat. Default
   * 15,000 ms: below the idle timeouts of common proxies and load balancers.
   */
  heartbeatMs: number;
}

/**
 * All local subscribers, grouped by (stream, group) into feeds. A feed exists while
 * it has subscribers, so the adapter only delivers the groups someone here watches.
 */
export class SubscriberRegistry {
  private readonly feeds = new Map<string, GroupFeed>();
  private readonly heartbeatTimer: NodeJS.Timeout;

  constructor(
    private readonly adapter: ItemStore,
    private readonly options: RegistryOptions,
  ) {
    const sweepEvery = Math.max(10, Math.floor(options.heartbeatMs / 3));
    this.heartbeatTimer = setInterval(() => this.sendHeartbeats(), sweepEvery);
    this.heartbeatTimer.unref();
  }

  /** Subscriber count, for metrics and tests that check nothing leaks. */
  get size(): number {
    let size = 0;
    for (const feed of this.feeds.values()) size += feed.size;
    return size;
  }

  get feedCount(): number {
    return this.feeds.size;
  }

  /**
   * Registers a subscriber in catching-up state: it holds live messages back until
   * `start` is called with its snapshot. Resolves once the group's feed is live.
   */
  async add(target: SubscriptionTarget, onReadable?: () => void): Promise<Subscription> {
    const key = feedKey(target.streamName, target.groupId);
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = new GroupFeed(target.streamName, target.groupId, this.adapter);
      this.feeds.set(key, feed);
    }
    const subscription = new Subscription(target, this.options.queueLimits, onReadable);
    feed.add(subscription);
    const owner = feed;
    subscription.onEnd(() => {
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

  /** Ends every subscription, e.g. on shutdown. */
  endAll(error: StreamError): void {
    for (const feed of [...this.feeds.values()]) for (const subscription of feed.subscriptions()) subscription.end(error);
  }

  close(): void {
    clearInterval(this.heartbeatTimer);
    this.endAll(new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
  }

  private sendHeartbeats(): void {
    const due = Date.now() - this.options.heartbeatMs;
    for (const feed of this.feeds.values()) {
      for (const subscription of feed.subscriptions()) {
        if (subscription.lastQueuedAt <= due) subscription.heartbeat(feed.offset);
      }
    }
  }
}

function feedKey(streamName: string, groupId: string): string {
  return JSON.stringify([streamName, groupId]);
}
