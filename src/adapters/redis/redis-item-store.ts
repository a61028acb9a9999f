import type { JsonValue } from "../../core/json.js";
import type {
  BatchCommitResult,
  CommitResult,
  DueExpiry,
  GroupListener,
  GroupLossListener,
  ItemStore,
  ItemStoreOptions,
  ItemWrite,
  StoredRequest,
  WriteBatch,
} from "../../core/item-store.js";
import type {
  ChangeType,
  GroupEvent,
  GroupSnapshot,
  ItemChange,
  ItemPage,
  ItemPageRequest,
  NamePageRequest,
  StoredItem,
} from "../../core/model.js";
import { commitOne, DEFAULT_HISTORY_LIMIT, MAX_REQUESTS_PER_GROUP } from "../../core/item-store.js";
import { NO_METRICS, secondsSince, type Metrics } from "../../core/metrics.js";
import { DEFAULT_MAX_OUTBOX } from "../../core/outbox.js";
import { openConnections, type RedisConnections } from "./connections.js";
import { ExpiryIndex } from "./expiry-index.js";
import { GroupChannels } from "./group-channels.js";
import { GroupIndex } from "./group-index.js";
import { migrateLegacyIndex } from "./index-migration.js";
import { DEFAULT_KEY_PREFIX, KeyLayout } from "./key-layout.js";
import { decodeChangeMessage, decodeStoredItem, decodeStoredRequest, encodeEventFields } from "./record-format.js";
import { withRedisErrors } from "./redis-errors.js";
import { scripts, type RedisClient } from "./scripts.js";
import { updateOpsToJson } from "../../core/update-ops-json.js";

export interface RedisItemStoreOptions extends ItemStoreOptions {
  /**
   * Where Redis listens: redis://[user:password@]host:port[/db], rediss:// for TLS.
   * On Redis Cluster, any one node (the cluster is detected and discovered from it).
   * Default redis://127.0.0.1:6379, a Redis on this machine.
   */
  url?: string;
  /**
   * Prefix of every key and channel. Default "iii-stream:". Separates several
   * deployments (or test runs) on one Redis; must not contain "{" or "}".
   */
  keyPrefix?: string;
  /**
   * How long one command may take before the request fails with UNAVAILABLE. Default
   * 10,000 ms: a hung Redis does not hang every client forever, while a process so
   * overloaded that it reads replies seconds late does not yet report writes that were
   * stored as failed (the timer cannot tell the two apart).
   */
  commandTimeoutMs?: number;
  /** How long connecting at startup may take. Default 5,000 ms, as in the reference. */
  connectTimeoutMs?: number;
}

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/**
 * Keeps items in Redis (standalone or Cluster), so that several server processes
 * share them: every multi-key step runs as one Lua script (see lua/), values are
 * stored as the JSON text JavaScript produced and never decoded in Lua, and each
 * group's changes reach the processes that watch it over its own shard channel.
 */
export class RedisItemStore implements ItemStore {
  readonly name = "redis";
  private readonly commands: RedisClient;
  private readonly index: GroupIndex;
  private readonly expiries: ExpiryIndex;
  private readonly channels: GroupChannels;
  private metrics: Metrics = NO_METRICS;

  /**
   * An item store over connections it owns: its `close` closes them. `closeFirst` closes
   * what else uses them (the fleet bus and registrations of a Redis backend) before that.
   */
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: KeyLayout,
    private readonly historyLimit: number = DEFAULT_HISTORY_LIMIT,
    private readonly closeFirst: () => Promise<void> = async () => undefined,
    /** Most calls one at-least-once trigger's outbox holds (see ItemStoreOptions.maxOutbox). */
    private readonly maxOutbox: number = DEFAULT_MAX_OUTBOX,
  ) {
    this.commands = connections.commands;
    this.index = new GroupIndex(this.commands, keys);
    this.expiries = new ExpiryIndex(this.commands, keys);
    this.channels = new GroupChannels(connections, keys);
  }

  /**
   * Connects (failing after `connectTimeoutMs` when Redis does not answer) and keeps items
   * only; a server also wanting shared registrations and the fleet takes a whole Redis
   * backend (redis-backend.ts).
   */
  static async connect(options: RedisItemStoreOptions = {}): Promise<RedisItemStore> {
    const { connections, keys } = await connectRedis(options);
    return new RedisItemStore(connections, keys, options.historyLimit ?? DEFAULT_HISTORY_LIMIT, undefined, options.maxOutbox);
  }

  /** Whether the adapter talks to a Redis Cluster. */
  get isCluster(): boolean {
    return this.connections.isCluster;
  }

  /** Groups whose shard channel this process subscribes to now. */
  get watchedGroupCount(): number {
    return this.channels.channelCount;
  }

  async getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined> {
    // Through the snapshot script: the record and the item's created offset must come from one moment.
    return (await this.snapshotItem(streamName, groupId, itemId)).items[0];
  }

  commit(write: ItemWrite): Promise<CommitResult> {
    return commitOne(this, write);
  }

  commitBatch(batch: WriteBatch): Promise<BatchCommitResult> {
    const { streamName, groupId, writes, request } = batch;
    const keys = this.keys.group(streamName, groupId);
    const args = [
      String(batch.timestampMs),
      String(this.historyLimit),
      keys.channel,
      request?.requestId ?? "",
      request ? String(request.expiresAtMs) : "",
      request?.fingerprint ?? "",
      request?.response ?? "",
      String(MAX_REQUESTS_PER_GROUP),
      String(this.maxOutbox),
      streamName,
      groupId,
    ];
    // One key per trigger the batch fires, numbered after the seven of the group.
    const outboxes: string[] = [];
    const scriptKeys = [keys.items, keys.order, keys.offset, keys.history, keys.requests, keys.requestExpiry, keys.expiry];
    const keyNumber = (triggerId: string) => {
      let index = outboxes.indexOf(triggerId);
      if (index < 0) index = outboxes.push(triggerId) - 1;
      return String(8 + index);
    };
    const values: Array<string | undefined> = [];
    for (const write of writes) {
      const value = write.value === undefined ? undefined : JSON.stringify(write.value);
      values.push(value);
      args.push(
        write.itemId,
        String(write.expectedRevision),
        write.expectedCreatedOffset === undefined ? "" : String(write.expectedCreatedOffset),
        value === undefined ? "delete" : "set",
        value ?? "",
        JSON.stringify(write.itemId),
        write.ops ? JSON.stringify(updateOpsToJson(write.ops)) : "",
        value === undefined || write.expiresAtMs === undefined ? "" : String(write.expiresAtMs),
        write.expired ? "1" : "",
        write.outbox ? write.outbox.map(keyNumber).join(" ") : "",
      );
    }
    for (const triggerId of outboxes) scriptKeys.push(this.keys.outbox(triggerId).calls);
    // The earliest expiry the batch gives an item, which the group's entry in the
    // expiry index must not be later than: before and after the commit (see expiry-index.ts).
    let earliestExpiry: number | undefined;
    for (const write of writes) {
      if (write.value !== undefined && write.expiresAtMs !== undefined) earliestExpiry = Math.min(earliestExpiry ?? Infinity, write.expiresAtMs);
    }
    return withRedisErrors("writing items", async () => {
      if (writes.some((write) => write.expectedRevision === 0 && write.value !== undefined)) await this.index.add(streamName, groupId);
      if (earliestExpiry !== undefined) await this.expiries.add(streamName, groupId, earliestExpiry);
      const start = performance.now();
      const reply = (await scripts.commit.run(
        this.commands,
        scriptKeys,
        args,
      )) as [2, string] | [0, number, string] | [3, number] | [1, string, ...string[]];
      // One script, one round trip: a lost race is timed too, since it cost the same.
      this.metrics.committed(this.name, writes.length, secondsSince(start));
      if (reply[0] === 2) return { ok: false, reason: "duplicate", request: decodeStoredRequest(request!.requestId, reply[1]) };
      if (reply[0] === 0) return { ok: false, reason: "precondition", index: reply[1] - 1, currentRevision: Number(reply[2]) };
      if (reply[0] === 3) return { ok: false, reason: "outbox_full", triggerId: outboxes[reply[1] - 8] };

      const transition = reply[1];
      // The writes are stored, so an index update failing after it must not report them as
      // failed: the index is corrected by the next reader either way (see group-index.ts).
      if (transition === "created") {
        // The entry added before the commit still lists the group unless a reader
        // dropped it a moment ago, while the group was still empty.
        await this.index.add(streamName, groupId).catch(() => undefined);
      } else if (transition === "emptied") {
        await this.index.dropEmptied(streamName, groupId).catch(() => undefined);
      }
      if (earliestExpiry !== undefined) await this.expiries.add(streamName, groupId, earliestExpiry).catch(() => undefined);
      const changes: ItemChange[] = [];
      for (let i = 0; i < writes.length; i++) {
        const at = 3 + i * 6;
        const [offset, type, revision, oldText, oldUpdatedAt, createdOffset] = reply.slice(at, at + 6) as [string, ChangeType, string, string, string, string];
        const oldValue = oldText === "" ? undefined : (JSON.parse(oldText) as JsonValue);
        const written = values[i];
        changes.push({
          kind: "change",
          streamName,
          groupId,
          type,
          itemId: writes[i].itemId,
          data: written === undefined ? (oldValue as JsonValue) : (writes[i].value as JsonValue),
          oldValue,
          oldUpdatedAtMs: oldUpdatedAt === "" ? undefined : Number(oldUpdatedAt),
          createdOffset: Number(createdOffset),
          revision: Number(revision),
          offset: Number(offset),
          timestampMs: batch.timestampMs,
          ...(type === "update" && writes[i].ops ? { ops: writes[i].ops } : {}),
          ...(type === "delete" && writes[i].expired ? { expired: true } : {}),
        });
      }
      return { ok: true, changes, offset: Number(reply[2]) };
    });
  }

  findRequest(streamName: string, groupId: string, requestId: string, nowMs: number): Promise<StoredRequest | undefined> {
    const keys = this.keys.group(streamName, groupId);
    return withRedisErrors("reading a request record", async () => {
      const record = await this.commands.hget(keys.requests, requestId);
      const known = record === null ? undefined : decodeStoredRequest(requestId, record);
      return known && known.expiresAtMs > nowMs ? known : undefined;
    });
  }

  publishEvent(event: Omit<GroupEvent, "kind" | "offset">): Promise<GroupEvent> {
    const keys = this.keys.group(event.streamName, event.groupId);
    return withRedisErrors("sending an event", async () => {
      const offset = await scripts.publishEvent.run(this.commands, [keys.offset], [keys.channel, ...encodeEventFields(event)]);
      return { kind: "event", ...event, offset: Number(offset) };
    });
  }

  snapshotItem(streamName: string, groupId: string, itemId: string): Promise<GroupSnapshot> {
    const keys = this.keys.group(streamName, groupId);
    return withRedisErrors("reading an item", async () => {
      const reply = (await scripts.snapshotItem.run(this.commands, [keys.items, keys.order, keys.offset, keys.expiry], [itemId])) as
        | [string]
        | [string, string, string, string];
      const items = reply.length === 4 ? [decodeStoredItem(itemId, reply[1], reply[2], reply[3])] : [];
      return { items, offset: Number(reply[0]) };
    });
  }

  readItems(streamName: string, groupId: string, page: ItemPageRequest): Promise<ItemPage> {
    const keys = this.keys.group(streamName, groupId);
    return withRedisErrors("reading a group", async () => {
      const reply = (await scripts.readItems.run(
        this.commands,
        [keys.items, keys.order, keys.offset, keys.expiry],
        [decimal(page.afterCreatedOffset, 0), decimal(Math.max(1, page.maxItems), 1), decimal(page.maxBytes, 0)],
      )) as [string, number, ...string[]];
      const items: StoredItem[] = [];
      for (let i = 2; i < reply.length; i += 4) {
        items.push(decodeStoredItem(reply[i] as string, reply[i + 1] as string, reply[i + 2] as string, reply[i + 3] as string));
      }
      return { items, offset: Number(reply[0]), more: reply[1] === 1 };
    });
  }

  currentOffset(streamName: string, groupId: string): Promise<number> {
    return withRedisErrors("reading the group offset", async () =>
      Number((await this.commands.get(this.keys.group(streamName, groupId).offset)) ?? 0),
    );
  }

  changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined> {
    const keys = this.keys.group(streamName, groupId);
    return withRedisErrors("reading the group history", async () => {
      const reply = (await scripts.changesSince.run(this.commands, [keys.offset, keys.history], [String(afterOffset)])) as
        | string[]
        | null;
      return reply?.map((text) => decodeChangeMessage(streamName, groupId, text));
    });
  }

  dueExpiries(nowMs: number, limit: number): Promise<DueExpiry[]> {
    return withRedisErrors("reading due expiries", () => this.expiries.due(nowMs, limit));
  }

  listGroups(streamName: string, page: NamePageRequest): Promise<string[]> {
    return withRedisErrors("listing groups", () => this.index.groups(streamName, page));
  }

  /** The index's count: exact but for a group whose emptying writer stopped before it dropped the entry (see GroupIndex.count). */
  countGroups(streamName: string): Promise<number> {
    return withRedisErrors("counting groups", () => this.index.count(streamName));
  }

  listStreams(page: NamePageRequest): Promise<string[]> {
    return withRedisErrors("listing streams", () => this.index.streams(page));
  }

  watch(streamName: string, groupId: string, listener: GroupListener, onLoss?: GroupLossListener): Promise<() => void> {
    return this.channels.watch(streamName, groupId, listener, onLoss);
  }

  isReady(): boolean {
    return this.connections.ready();
  }

  useMetrics(metrics: Metrics): void {
    this.metrics = metrics;
  }

  connectionStatus(): Record<string, boolean> {
    return { commands: this.commands.status === "ready", subscriber: this.connections.subscriberReady() };
  }

  async close(): Promise<void> {
    await this.closeFirst();
    await this.channels.close();
    await this.connections.close();
  }
}

/** Opens the two connections of one Redis backend (see connections.ts) and the key layout under its prefix. */
export async function connectRedis(options: RedisItemStoreOptions): Promise<{ connections: RedisConnections; keys: KeyLayout }> {
  const keys = new KeyLayout(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const url = options.url ?? DEFAULT_REDIS_URL;
  const connections = await withRedisErrors(`connecting to ${redactUrl(url)}`, () =>
    openConnections({
      url,
      commandTimeoutMs: options.commandTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    }),
  );
  try {
    await withRedisErrors("moving the group index to its current layout", () => migrateLegacyIndex(connections.commands, keys));
  } catch (error) {
    await connections.close();
    throw error;
  }
  return { connections, keys };
}

/**
 * A whole number as the decimal text the scripts parse; what Lua's tonumber cannot read
 * (Infinity, NaN) becomes the largest safe integer, or `fallback` for NaN.
 */
function decimal(value: number, fallback: number): string {
  if (Number.isNaN(value)) return String(fallback);
  return String(Math.floor(Math.min(value, Number.MAX_SAFE_INTEGER)));
}

/** The URL without its password, for error messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}
