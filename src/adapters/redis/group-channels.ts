import { ErrorCode, StreamError } from "../../core/errors.js";
import type { GroupListener, GroupLossListener } from "../../core/item-store.js";
import { KeyedLock } from "../../core/keyed-lock.js";
import type { RedisConnections } from "./connections.js";
import type { KeyLayout } from "./key-layout.js";
import { decodeMessage } from "./record-format.js";
import { toStreamError } from "./redis-errors.js";

interface Watcher {
  listener: GroupListener;
  onLoss: GroupLossListener | undefined;
}

interface WatchedGroup {
  streamName: string;
  groupId: string;
  channel: string;
  watchers: Set<Watcher>;
  /** Resolves once the channel subscription is confirmed and the group is live. */
  subscribed: Promise<void>;
  live: boolean;
}

/**
 * The shard channels of the groups this process watches: a channel is subscribed
 * while at least one local watcher wants its group, so a process only receives the
 * traffic of its own subscribers' groups.
 *
 * Delivery is at most once: a message in transit when the subscriber connection
 * dropped is lost. When the connection comes back, every channel is subscribed again
 * and its watchers are told through `onLoss`; they replay what they missed from history
 * (the engine's group feed does, and it alone checks offsets for gaps).
 */
export class GroupChannels {
  private readonly groups = new Map<string, WatchedGroup>();
  /** SSUBSCRIBE/SUNSUBSCRIBE of one channel must reach Redis in the order they were sent. */
  private readonly channelOps = new KeyedLock();
  /** Counts subscriber disconnects; a subscription confirmed across one is void. */
  private disconnects = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: KeyLayout,
  ) {
    connections.subscriber.on("smessage", (channel: string, text: string) => this.receive(channel, text));
    connections.onSubscriberLost(() => this.disconnects++);
    connections.onSubscriberBack(() => this.renewAll());
  }

  /** Channels subscribed now, for tests and metrics. */
  get channelCount(): number {
    return this.groups.size;
  }

  async watch(
    streamName: string,
    groupId: string,
    listener: GroupListener,
    onLoss: GroupLossListener | undefined,
  ): Promise<() => void> {
    const channel = this.keys.group(streamName, groupId).channel;
    let group = this.groups.get(channel);
    if (!group) {
      group = { streamName, groupId, channel, watchers: new Set(), subscribed: Promise.resolve(), live: false };
      this.groups.set(channel, group);
      group.subscribed = this.subscribe(group);
    }
    const watcher: Watcher = { listener, onLoss };
    group.watchers.add(watcher);
    const watched = group;
    try {
      await watched.subscribed;
    } catch (error) {
      watched.watchers.delete(watcher);
      throw toStreamError("subscribing to the group's channel", error);
    }
    return () => this.unwatch(watched, watcher);
  }

  private async subscribe(group: WatchedGroup): Promise<void> {
    const disconnects = this.disconnects;
    try {
      await this.channelOp(group.channel, () => this.connections.subscriber.ssubscribe(group.channel));
      if (disconnects !== this.disconnects) {
        throw new StreamError(ErrorCode.Unavailable, "the Redis subscriber connection dropped while subscribing");
      }
    } catch (error) {
      if (this.groups.get(group.channel) === group) this.forget(group);
      throw error;
    }
    group.live = true;
  }

  private unwatch(group: WatchedGroup, watcher: Watcher): void {
    if (!group.watchers.delete(watcher) || group.watchers.size > 0) return;
    if (this.groups.get(group.channel) === group) this.forget(group);
  }

  private forget(group: WatchedGroup): void {
    this.groups.delete(group.channel);
    void this.channelOp(group.channel, () => this.connections.subscriber.sunsubscribe(group.channel)).catch(
      // A dropped connection has dropped the subscription too.
      () => undefined,
    );
  }

  private channelOp(channel: string, op: () => Promise<unknown>): Promise<void> {
    return this.channelOps.run(channel, async () => {
      await op();
    });
  }

  private receive(channel: string, text: string): void {
    const group = this.groups.get(channel);
    if (!group) return;
    const message = decodeMessage(group.streamName, group.groupId, text);
    for (const watcher of group.watchers) watcher.listener(message);
  }

  /** Subscribes every live channel again; its watchers then replay what the outage lost. */
  private renewAll(): void {
    for (const group of this.groups.values()) {
      if (!group.live) continue;
      this.channelOp(group.channel, () => this.connections.subscriber.ssubscribe(group.channel)).then(
        () => this.lost(group, "the Redis subscriber connection dropped", true),
        (error: unknown) => {
          // With the connection down again, its return renews again; otherwise the
          // channel is gone for good, and so is everything that would arrive on it.
          if (this.connections.subscriberReady()) this.lost(group, `cannot subscribe to the group again: ${String(error)}`, false);
        },
      );
    }
  }

  private lost(group: WatchedGroup, reason: string, replayable: boolean): void {
    if (this.groups.get(group.channel) !== group) return;
    for (const watcher of [...group.watchers]) watcher.onLoss?.(reason, replayable);
  }

  async close(): Promise<void> {
    for (const group of [...this.groups.values()]) this.forget(group);
    await this.channelOps.idle();
  }
}
