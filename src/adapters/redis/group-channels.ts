import { ErrorCode, StreamError } from "../../core/errors.js";
import type { GroupListener, GroupLossListener } from "../../core/item-store.js";
import type { GroupMessage, ItemChange } from "../../core/model.js";
import type { RedisConnections } from "./connections.js";
import type { KeyLayout } from "./key-layout.js";
import { decodeMessage } from "./record-format.js";
import { toStreamError } from "./redis-errors.js";

/** What the channels read from storage to replay missed changes. */
export interface ChangeSource {
  currentOffset(streamName: string, groupId: string): Promise<number>;
  changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined>;
}

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
  /**
   * The offset of the last change passed on: every later one arrives on the channel or
   * is in history. Undefined after a loss, until the next change sets it again.
   */
  delivered: number | undefined;
  /** Messages held back while missed changes are read from history. */
  held: GroupMessage[] | undefined;
  /** Counts catch-ups, so that a stale one (overtaken by a newer reconnect) does nothing. */
  catchUps: number;
}

/**
 * The shard channels of the groups this process watches: a channel is subscribed
 * while at least one local watcher wants its group, so a process only receives the
 * traffic of its own subscribers' groups.
 *
 * Messages are passed on with contiguous change offsets. A message in transit when the
 * subscriber connection dropped is lost, so when the connection comes back (or a
 * change arrives after a gap) the group catches up from history, holding live
 * messages back meanwhile; when the history no longer holds what was missed, the
 * watchers are told to end their subscribers, which then resume with from_offset.
 */
export class GroupChannels {
  private readonly groups = new Map<string, WatchedGroup>();
  /** Per channel, the last SSUBSCRIBE/SUNSUBSCRIBE sent: they must reach Redis in order. */
  private readonly channelOps = new Map<string, Promise<void>>();
  /** Counts subscriber disconnects; a subscription confirmed across one is void. */
  private disconnects = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: KeyLayout,
    private readonly source: ChangeSource,
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
      group = {
        streamName,
        groupId,
        channel,
        watchers: new Set(),
        subscribed: Promise.resolve(),
        live: false,
        delivered: 0,
        held: [],
        catchUps: 0,
      };
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

  /**
   * Subscribes, then reads the offset: a change at or below it is covered by every
   * snapshot taken after `watch` resolves, and every later one was published after
   * the subscription took effect, so it arrives on the channel.
   */
  private async subscribe(group: WatchedGroup): Promise<void> {
    const disconnects = this.disconnects;
    try {
      await this.channelOp(group.channel, () => this.connections.subscriber.ssubscribe(group.channel));
      group.delivered = await this.source.currentOffset(group.streamName, group.groupId);
      if (disconnects !== this.disconnects) {
        throw new StreamError(ErrorCode.Unavailable, "the Redis subscriber connection dropped while subscribing");
      }
    } catch (error) {
      if (this.groups.get(group.channel) === group) this.forget(group);
      throw error;
    }
    group.live = true;
    this.release(group, []);
  }

  private unwatch(group: WatchedGroup, watcher: Watcher): void {
    if (!group.watchers.delete(watcher) || group.watchers.size > 0) return;
    if (this.groups.get(group.channel) === group) this.forget(group);
  }

  private forget(group: WatchedGroup): void {
    this.groups.delete(group.channel);
    group.held = undefined;
    void this.channelOp(group.channel, () => this.connections.subscriber.sunsubscribe(group.channel)).catch(
      // A dropped connection has dropped the subscription too.
      () => undefined,
    );
  }

  private channelOp(channel: string, op: () => Promise<unknown>): Promise<void> {
    const previous = this.channelOps.get(channel) ?? Promise.resolve();
    const next = previous.then(op, op).then(() => undefined);
    this.channelOps.set(channel, next);
    const cleanUp = () => {
      if (this.channelOps.get(channel) === next) this.channelOps.delete(channel);
    };
    next.then(cleanUp, cleanUp);
    return next;
  }

  private receive(channel: string, text: string): void {
    const group = this.groups.get(channel);
    if (!group) return;
    this.accept(group, decodeMessage(group.streamName, group.groupId, text));
  }

  private accept(group: WatchedGroup, message: GroupMessage): void {
    if (group.held) {
      group.held.push(message);
      return;
    }
    if (message.kind === "change" && group.delivered !== undefined) {
      if (message.offset <= group.delivered) return;
      if (message.offset > group.delivered + 1) {
        group.held = [message];
        void this.catchUp(group, false);
        return;
      }
    }
    if (message.kind === "change") group.delivered = message.offset;
    for (const watcher of group.watchers) watcher.listener(message);
  }

  /** Passes on the changes read from history, then the messages held back meanwhile. */
  private release(group: WatchedGroup, missed: ItemChange[]): void {
    const held = group.held ?? [];
    group.held = undefined;
    for (const change of missed) this.accept(group, change);
    for (const message of held) this.accept(group, message);
  }

  private renewAll(): void {
    for (const group of this.groups.values()) if (group.live) void this.catchUp(group, true);
  }

  /** Replays what the group missed; with `resubscribe`, first renews its subscription. */
  private async catchUp(group: WatchedGroup, resubscribe: boolean): Promise<void> {
    const attempt = ++group.catchUps;
    group.held ??= [];
    const current = () => attempt === group.catchUps && this.groups.get(group.channel) === group;
    const after = group.delivered;
    let missed: ItemChange[] | undefined = [];
    try {
      if (resubscribe) await this.channelOp(group.channel, () => this.connections.subscriber.ssubscribe(group.channel));
      if (after !== undefined) missed = await this.source.changesSince(group.streamName, group.groupId, after);
    } catch (error) {
      // With the subscriber connection down, its reconnect catches up again; otherwise
      // give up on this group's subscribers, which resume with from_offset.
      if (current() && this.connections.subscriberReady()) {
        this.lose(group, `cannot replay the changes after offset ${after}: ${String(error)}`);
      }
      return;
    }
    if (!current()) return;
    if (!missed) {
      this.lose(group, `changes after offset ${after} were lost in transit and are no longer in the history`);
      return;
    }
    this.release(group, missed);
  }

  private lose(group: WatchedGroup, reason: string): void {
    group.held = undefined;
    group.delivered = undefined;
    for (const watcher of [...group.watchers]) watcher.onLoss?.(reason);
  }

  async close(): Promise<void> {
    for (const group of [...this.groups.values()]) this.forget(group);
    await Promise.all([...this.channelOps.values()].map((op) => op.catch(() => undefined)));
  }
}
