import type { ItemStore } from "./item-store.js";
import type { ItemChange, StoredItem } from "./model.js";
import { Delivery } from "./delivery.js";
import type { JsonValue } from "./json.js";
import { HookRunner, type EngineHooks, type JoinInfo } from "./hooks.js";
import { silentLog, type Log } from "./log.js";
import { KeyedLock } from "./keyed-lock.js";
import { checkName, groupKey } from "./names.js";
import { ErrorCode, invalidArgument, StreamError } from "./errors.js";
import { SubscriberRegistry, type SubscriberStats } from "./subscriber-registry.js";
import { DEFAULT_QUEUE_LIMITS, type QueueLimits, type Subscription, type SubscriptionTarget } from "./subscription.js";
import { applyUpdateOps, type UpdateOp, type UpdateOpError } from "./update-ops.js";
import { checkRevision, checkValue, DEFAULT_MAX_VALUE_BYTES } from "./values.js";
import { decodePageToken, encodePageToken, type PageScope } from "./page-token.js";
import { GROUP_PAGE_SIZES, GROUPS_PER_STREAM, ITEM_PAGE_SIZES, resolvePageSize, STREAM_PAGE_SIZES } from "./page-size.js";
import { itemBytes } from "./encoded-size.js";
import type { SnapshotChunk, SnapshotSession } from "./snapshot-session.js";
import type { FlushScheduler } from "./flush-scheduler.js";
import { outboxFullError } from "./outbox.js";
import { NO_METRICS, type Metrics, type SubscriptionTransport, type WriteOp } from "./metrics.js";

export interface EngineOptions {
  store: ItemStore;
  /** Largest value (and Send payload), in bytes of JSON. Default 1 MiB. */
  maxValueBytes?: number;
  /** See QueueLimits; a limit left out keeps its default. */
  queueLimits?: Partial<QueueLimits>;
  /** Default 15,000 ms; see RegistryOptions.heartbeatMs. */
  heartbeatMs?: number;
  /** Most subscriptions open at once (see RegistryOptions.maxSubscriptions). Default 100,000. */
  maxSubscriptions?: number;
  /** Run in list order around writes and subscriptions (see EngineHooks). Default none. */
  hooks?: readonly EngineHooks[];
  /**
   * Where the fan-out of a large group runs (see GroupFeed): give the server's, which its
   * transports flush from, so that handing a change to 20,000 subscribers happens in the
   * same slices as writing it to them, and never inside the write that made it. Default
   * none: every subscriber gets a change before the write returns, as an engine used in
   * process without transports expects.
   */
  scheduler?: FlushScheduler;
  /**
   * Most estimated bytes of items in one snapshot chunk (see encoded-size.ts); an item
   * larger than that is a chunk of its own. Default 256 KiB: far below the 4 MB that
   * gRPC clients accept by default, large enough that a chunk's framing is noise.
   */
  snapshotChunkBytes?: number;
  /**
   * Most estimated bytes of an answer that the reference's protocols send whole: a
   * stream-socket `sync` that did not ask for chunks, and the worker functions
   * `stream::list`, `stream::list_groups` and `stream::list_all`. Beyond it the call
   * fails with RESOURCE_EXHAUSTED (page with List, or join with chunks) instead of
   * building a message no client can take. Default 64 MiB.
   */
  maxUnpagedBytes?: number;
  /**
   * Where writes, subscriptions and the store's commits are counted (the store gets it
   * through `ItemStore.useMetrics`). Default: counted nowhere.
   */
  metrics?: Metrics;
  /**
   * Where a hook's exception is reported (see EngineHooks), and, at `debug`, the end of
   * every subscription. Default: nowhere (silentLog).
   */
  log?: Log;
}

/** A page request (AIP-158): `pageSize` 0 or absent for the default, `pageToken` empty for the first page. */
export interface PageRequest {
  pageSize?: number;
  pageToken?: string;
}

export interface Page<T> {
  /** Also ends before MAX_PAGE_BYTES of estimated encoding, so may hold fewer than the page size asked. */
  entries: T[];
  /** Empty on the last page. */
  nextPageToken: string;
}

export interface StreamSummary {
  streamName: string;
  /** The first groups, sorted (at most `groupsPerStream`). */
  groups: string[];
  /** How many non-empty groups the stream has. */
  groupCount: number;
}

export interface ListAllRequest extends PageRequest {
  /** Most groups listed per stream: 0 or absent for the default (100), at most 1,000. */
  groupsPerStream?: number;
}

export interface ItemKey {
  streamName: string;
  groupId: string;
  itemId: string;
}

export interface WriteResult {
  oldValue: JsonValue | undefined;
  newValue: JsonValue | undefined;
  revision: number;
  offset: number;
}

export interface UpdateResult extends WriteResult {
  errors: UpdateOpError[];
}

export interface SubscribeRequest {
  streamName: string;
  groupId: string;
  itemId?: string;
  fromOffset?: number;
}

export interface SubscribeOptions {
  /** Called whenever the subscription's queue gains a message (push transports). */
  onReadable?: () => void;
  /**
   * Queue a large group's snapshot as one message instead of chunks, for clients of
   * the reference's protocol, up to `maxUnpagedBytes`. Default false.
   */
  wholeSnapshot?: boolean;
  context?: JsonValue;
  subscriptionId?: string;
  /** How the subscriber is connected, for metrics and the access log. Default `in_process`. */
  transport?: SubscriptionTransport;
  /** The subscriber's address, for the access log. Default none. */
  peer?: string;
}

/**
 * How long one write keeps retrying after losing compare-and-set races to writers in
 * other processes. A time rather than a count: a busier (slower) process can lose
 * every race on a hot item until the other process has drained its own queue of
 * writes to it, however many that takes.
 */
const COMMIT_RETRY_MS = 10_000;

/** See EngineOptions.maxSubscriptions: far above what one process serves well, while a flood cannot exhaust memory. */
export const DEFAULT_MAX_SUBSCRIPTIONS = 100_000;
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;
export const DEFAULT_MAX_UNPAGED_BYTES = 64 * 1024 * 1024;
/**
 * Most estimated bytes of one List, ListGroups or ListAll page: a quarter of the 4 MB
 * that gRPC clients accept by default, so that a page of large items still arrives (a
 * page ends early instead, as AIP-158 allows). A single item larger than this comes alone.
 */
export const MAX_PAGE_BYTES = 1024 * 1024;

/** Each snapshot chunk wrapped once, so that every subscriber of a session shares its encodings. */
const chunkDeliveries = new WeakMap<SnapshotChunk, Delivery>();

/**
 * The domain core: validates requests, runs writes as compare-and-set against the
 * adapter, and serves subscriptions with a snapshot followed by every later change.
 * It knows nothing of any transport.
 */
export class StreamEngine {
  readonly maxValueBytes: number;
  readonly maxUnpagedBytes: number;
  private readonly store: ItemStore;
  private readonly log: Log;
  private readonly registry: SubscriberRegistry;
  private readonly hooks: HookRunner;
  /** Set by the first `shutdown`: the error every subscription ends with from then on. */
  private shutdownError: StreamError | undefined;
  private readonly itemLocks = new KeyedLock();
  private readonly queueLimits: QueueLimits;
  private readonly metrics: Metrics;
  private nextSubscriptionId = 1;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.metrics = options.metrics ?? NO_METRICS;
    if (options.metrics) this.store.useMetrics?.(options.metrics);
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.log = options.log ?? silentLog;
    this.hooks = new HookRunner(options.hooks, this.log);
    this.queueLimits = {
      maxMessages: options.queueLimits?.maxMessages ?? DEFAULT_QUEUE_LIMITS.maxMessages,
      maxBytes: options.queueLimits?.maxBytes ?? DEFAULT_QUEUE_LIMITS.maxBytes,
    };
    this.maxUnpagedBytes = options.maxUnpagedBytes ?? DEFAULT_MAX_UNPAGED_BYTES;
    this.registry = new SubscriberRegistry(this.store, {
      queueLimits: this.queueLimits,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      maxSubscriptions: options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS,
      snapshotChunkBytes: options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES,
      scheduler: options.scheduler,
    });
  }

  async get(key: ItemKey): Promise<StoredItem | undefined> {
    checkItemKey(key);
    return this.store.getItem(key.streamName, key.groupId, key.itemId);
  }

  async set(key: ItemKey, data: JsonValue, ifRevision?: number): Promise<WriteResult> {
    checkItemKey(key);
    checkValue(this.maxValueBytes, "data", data);
    checkRevision(ifRevision);
    const result = await this.writeItem(key, ifRevision, () => ({ value: data }));
    this.metrics.written("set", key.streamName);
    return result;
  }

  async delete(key: ItemKey, ifRevision?: number): Promise<{ oldValue: JsonValue | undefined; offset: number }> {
    checkItemKey(key);
    checkRevision(ifRevision);
    const result = await this.writeItem(key, ifRevision, (current) => (current ? { value: undefined } : undefined));
    this.metrics.written("delete", key.streamName);
    return { oldValue: result.oldValue, offset: result.offset };
  }

  async update(key: ItemKey, ops: readonly UpdateOp[], ifRevision?: number): Promise<UpdateResult> {
    checkItemKey(key);
    checkRevision(ifRevision);
    let errors: UpdateOpError[] = [];
    const result = await this.writeItem(key, ifRevision, (current) => {
      const outcome = applyUpdateOps(current?.data, ops);
      errors = outcome.errors;
      // Nothing applied: nothing to write, and nothing to create.
      if (outcome.applied === 0) return undefined;
      checkValue(this.maxValueBytes, "the updated value", outcome.value);
      return { value: outcome.value };
    });
    this.metrics.written("update", key.streamName);
    return { ...result, errors };
  }

  async send(
    target: { streamName: string; groupId: string; itemId?: string },
    type: string,
    data: JsonValue,
  ): Promise<void> {
    checkName("stream_name", target.streamName);
    checkName("group_id", target.groupId);
    if (target.itemId !== undefined) checkName("item_id", target.itemId);
    checkName("type", type);
    checkValue(this.maxValueBytes, "data", data);
    const event = await this.store.publishEvent({
      streamName: target.streamName,
      groupId: target.groupId,
      type,
      itemId: target.itemId,
      data,
      timestampMs: Date.now(),
    });
    this.metrics.written("send", target.streamName);
    this.hooks.afterCommit(event);
  }

  /** A page of a group's items in insertion order (see ItemStore.readItems for what paging while others write returns). */
  async list(streamName: string, groupId: string, request: PageRequest = {}): Promise<Page<StoredItem>> {
    checkName("stream_name", streamName);
    checkName("group_id", groupId);
    const scope: PageScope = { kind: "items", streamName, groupId };
    const after = decodePageToken(scope, request.pageToken ?? "") ?? 0;
    const pageSize = resolvePageSize("page_size", request.pageSize, ITEM_PAGE_SIZES);
    const page = await this.store.readItems(streamName, groupId, { afterCreatedOffset: after, maxItems: pageSize, maxBytes: MAX_PAGE_BYTES });
    const items: StoredItem[] = [];
    let bytes = 0;
    for (const item of page.items) {
      bytes += itemBytes(item);
      if (items.length > 0 && bytes > MAX_PAGE_BYTES) break;
      items.push(item);
    }
    const more = items.length < page.items.length || page.more;
    return { entries: items, nextPageToken: more ? encodePageToken(scope, items.at(-1)!.createdOffset) : "" };
  }

  /** A page of a stream's non-empty groups, sorted by bytes. */
  async listGroups(streamName: string, request: PageRequest = {}): Promise<Page<string>> {
    checkName("stream_name", streamName);
    const scope: PageScope = { kind: "groups", streamName };
    const after = decodePageToken(scope, request.pageToken ?? "");
    const pageSize = resolvePageSize("page_size", request.pageSize, GROUP_PAGE_SIZES);
    const groups = await this.store.listGroups(streamName, { after, limit: pageSize + 1 });
    const more = groups.length > pageSize;
    if (more) groups.length = pageSize;
    return { entries: groups, nextPageToken: more ? encodePageToken(scope, groups.at(-1)!) : "" };
  }

  /** A page of the streams, sorted by bytes, each with its first groups and their count. */
  async listAll(request: ListAllRequest = {}): Promise<Page<StreamSummary>> {
    const groupsPerStream = resolvePageSize("groups_per_stream", request.groupsPerStream, GROUPS_PER_STREAM);
    const scope: PageScope = { kind: "streams", groupsPerStream };
    const after = decodePageToken(scope, request.pageToken ?? "");
    const pageSize = resolvePageSize("page_size", request.pageSize, STREAM_PAGE_SIZES);
    const names = await this.store.listStreams({ after, limit: pageSize + 1 });
    const more = names.length > pageSize;
    if (more) names.length = pageSize;
    const streams: StreamSummary[] = [];
    let bytes = 0;
    for (const streamName of names) {
      const [groups, groupCount] = await Promise.all([
        this.store.listGroups(streamName, { after: undefined, limit: groupsPerStream }),
        this.store.countGroups(streamName),
      ]);
      // Emptied since the streams were listed.
      if (groups.length === 0) continue;
      bytes += streamName.length + groups.reduce((sum, group) => sum + group.length + 2, 0);
      if (streams.length > 0 && bytes > MAX_PAGE_BYTES) {
        return { entries: streams, nextPageToken: encodePageToken(scope, streams.at(-1)!.streamName) };
      }
      streams.push({ streamName, groups, groupCount: Math.max(groupCount, groups.length) });
    }
    return { entries: streams, nextPageToken: more ? encodePageToken(scope, names.at(-1)!) : "" };
  }

  /**
   * Opens a subscription. It is registered for live changes before the snapshot is
   * read, and holds them back until the snapshot is queued, so nothing falls between
   * the two. With `fromOffset`, the retained history replaces the snapshot when it
   * still holds every later change.
   */
  async subscribe(request: SubscribeRequest, options: SubscribeOptions = {}): Promise<Subscription> {
    const target: SubscriptionTarget = {
      streamName: checkName("stream_name", request.streamName),
      groupId: checkName("group_id", request.groupId),
      itemId: request.itemId === undefined ? undefined : checkName("item_id", request.itemId),
    };
    const fromOffset = request.fromOffset;
    if (fromOffset !== undefined && !(Number.isSafeInteger(fromOffset) && fromOffset >= 0)) {
      throw invalidArgument("from_offset must be a non-negative integer");
    }
    const join: JoinInfo = {
      ...target,
      context: options.context ?? null,
      subscriptionId: options.subscriptionId ?? `sub-${this.nextSubscriptionId++}`,
    };
    // Refused before the join triggers run; `add` checks again, for calls that were admitted meanwhile.
    this.registry.admit();
    await this.hooks.beforeJoin(join);

    const subscription = await this.registry.add(target, options.onReadable);
    const hooks = this.hooks;
    if (hooks.watchesLeaves) subscription.onEnd(() => hooks.afterLeave(join));
    const metrics = this.metrics;
    if (metrics !== NO_METRICS) {
      const transport = options.transport ?? "in_process";
      metrics.subscriptionOpened(transport, target.streamName);
      subscription.onEnd(() => metrics.subscriptionEnded(transport, subscription.endReason, target.streamName));
    }
    if (this.log.enabled("debug")) this.logEnd(subscription, join, options);
    try {
      if (fromOffset !== undefined) {
        const missed = await this.store.changesSince(target.streamName, target.groupId, fromOffset);
        const relevant = target.itemId === undefined ? missed : missed?.filter((c) => c.itemId === target.itemId);
        // More changes than the queue holds would end the subscriber on arrival, and
        // again on every retry; a snapshot is read as the subscriber takes it.
        const deliveries = relevant?.map((change) => new Delivery(change));
        if (missed && deliveries && this.fitsQueue(deliveries)) {
          subscription.start(deliveries, missed.at(-1)?.offset ?? fromOffset);
          return subscription;
        }
      }
      if (target.itemId !== undefined) {
        const snapshot = await this.store.snapshotItem(target.streamName, target.groupId, target.itemId);
        subscription.start([new Delivery({ kind: "snapshot", ...target, ...snapshot, more: false })], snapshot.offset);
        return subscription;
      }
      await this.startSnapshot(subscription, options.wholeSnapshot === true);
      return subscription;
    } catch (error) {
      subscription.end();
      throw error;
    }
  }

  /** The access log's record of a subscription's end: who, why, how long and how much it got. */
  private logEnd(subscription: Subscription, join: JoinInfo, options: SubscribeOptions): void {
    const started = performance.now();
    subscription.onEnd((error) => {
      this.log.debug("subscription ended", {
        transport: options.transport ?? "in_process",
        ...(options.peer !== undefined ? { peer: options.peer } : {}),
        stream: join.streamName,
        group: join.groupId,
        ...(join.itemId !== undefined ? { item: join.itemId } : {}),
        subscription_id: join.subscriptionId,
        reason: subscription.endReason,
        ...(error !== undefined ? { error: error.message } : {}),
        duration_ms: Math.round(performance.now() - started),
        deliveries: subscription.deliveries,
      });
    });
  }

  /**
   * Queues a group's snapshot: the first chunk before returning (so that an unreadable
   * store fails the subscribe call itself), every further one once the subscriber has
   * taken the one before, so that a slow reader of a large group holds about one chunk.
   * With `whole`, every chunk is gathered into one message first, within maxUnpagedBytes.
   */
  private async startSnapshot(subscription: Subscription, whole: boolean): Promise<void> {
    const reader = this.registry.snapshotSession(subscription);
    // Ended meanwhile (a slow joiner overflowing, or a shutdown): its end says why.
    if (!reader) return;
    const { session, release } = reader;
    let chunk = await session.chunk(0);
    if (whole) {
      const items = [...chunk.items];
      let bytes = chunk.bytes;
      while (chunk.more && !subscription.ended) {
        chunk = await session.chunk(chunk.next);
        items.push(...chunk.items);
        bytes += chunk.bytes;
        if (bytes > this.maxUnpagedBytes) {
          release();
          throw new StreamError(
            ErrorCode.ResourceExhausted,
            `the group holds more than ${this.maxUnpagedBytes} bytes, more than one sync message may carry; join with chunks`,
          );
        }
      }
      release();
      const { streamName, groupId } = session;
      subscription.start([Delivery.snapshot({ kind: "snapshot", streamName, groupId, items, offset: chunk.offset, more: false }, bytes)], chunk.offset);
      return;
    }
    if (!chunk.more) {
      release();
      subscription.start([chunkDelivery(session, chunk)], chunk.offset);
      return;
    }
    subscription.pushChunk(chunkDelivery(session, chunk));
    void this.continueSnapshot(subscription, session, chunk, release);
  }

  private async continueSnapshot(subscription: Subscription, session: SnapshotSession, first: SnapshotChunk, release: () => void): Promise<void> {
    let chunk = first;
    try {
      while (chunk.more) {
        await subscription.drained();
        if (subscription.ended) return;
        chunk = await session.chunk(chunk.next);
        if (chunk.more) subscription.pushChunk(chunkDelivery(session, chunk));
      }
      release();
      subscription.start([chunkDelivery(session, chunk)], chunk.offset);
    } catch (error) {
      subscription.end(new StreamError(ErrorCode.Unavailable, `reading the snapshot failed: ${StreamError.from(error).message}; subscribe again`));
    } finally {
      release();
    }
  }

  /** Whether `deliveries` fit in an empty subscriber queue. */
  private fitsQueue(deliveries: Delivery[]): boolean {
    if (deliveries.length >= this.queueLimits.maxMessages) return false;
    let bytes = 0;
    for (const delivery of deliveries) bytes += delivery.size;
    return bytes <= this.queueLimits.maxBytes;
  }

  /** The store's short name, for logs and health output ("memory", "file", "redis"). */
  get storeName(): string {
    return this.store.name;
  }

  /** Whether the store can serve requests now (for health checks). */
  isReady(): boolean {
    return this.store.isReady();
  }

  /** Open subscriptions and the group feeds they share, for metrics and tests that check nothing leaks. */
  stats(): SubscriberStats {
    return this.registry.stats();
  }

  /**
   * Ends every open subscription with UNAVAILABLE and `reason` (clients resume
   * elsewhere with from_offset). The first call's reason holds for later calls and for
   * `close`, which ends any subscription opened since.
   */
  shutdown(reason = "the server is shutting down"): void {
    this.shutdownError ??= new StreamError(ErrorCode.Unavailable, reason);
    this.registry.endAll(this.shutdownError);
  }

  /** Ends what is still open (see `shutdown`), stops heartbeats and closes the store. */
  async close(): Promise<void> {
    this.registry.close(this.shutdownError ?? new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    await this.store.close();
  }

  /**
   * One write of one item: read it, let `decide` compute the new value (undefined:
   * write nothing; `{value: undefined}`: delete), and commit it if nobody wrote in
   * between. Local writers of the same item queue on a lock; writers in other
   * processes are caught by the adapter's revision check and retried.
   */
  private writeItem(
    key: ItemKey,
    ifRevision: number | undefined,
    decide: (current: StoredItem | undefined) => { value: JsonValue | undefined } | undefined,
  ): Promise<WriteResult> {
    const { streamName, groupId, itemId } = key;
    return this.itemLocks.run(groupKey(streamName, groupId, itemId), () => this.commitItem(streamName, groupId, itemId, ifRevision, decide));
  }

  private async commitItem(
    streamName: string,
    groupId: string,
    itemId: string,
    ifRevision: number | undefined,
    decide: (current: StoredItem | undefined) => { value: JsonValue | undefined } | undefined,
  ): Promise<WriteResult> {
    // Set on the first lost race: an uncontended write never reads the clock for it.
    let deadline: number | undefined;
    for (;;) {
      const current = await this.store.getItem(streamName, groupId, itemId);
      const revision = current === undefined ? 0 : current.revision;
      if (ifRevision !== undefined && ifRevision !== revision) {
        throw new StreamError(
          ErrorCode.FailedPrecondition,
          `revision mismatch: if_revision is ${ifRevision} but the item is at revision ${revision}` +
            (revision === 0 ? " (it does not exist)" : ""),
        );
      }
      const decision = decide(current);
      if (!decision) {
        return {
          oldValue: current?.data,
          newValue: current?.data,
          revision,
          offset: await this.store.currentOffset(streamName, groupId),
        };
      }
      const outbox = this.hooks.durableTriggers({ streamName, groupId, itemId });
      const result = await this.store.commit({
        streamName,
        groupId,
        itemId,
        expectedRevision: revision,
        expectedCreatedOffset: current?.createdOffset,
        value: decision.value,
        timestampMs: Date.now(),
        ...(outbox !== undefined ? { outbox } : {}),
      });
      if (result.ok) {
        this.hooks.afterCommit(result.change);
        return writeResult(result.change);
      }
      if (result.outboxFull !== undefined) throw outboxFullError(result.outboxFull);
      const now = Date.now();
      deadline ??= now + COMMIT_RETRY_MS;
      if (now >= deadline) break;
      // A random pause after a lost race breaks a lockstep in which one process keeps winning.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    }
    throw new StreamError(ErrorCode.Aborted, "the item is written too often by other processes; try again");
  }
}

function chunkDelivery(session: SnapshotSession, chunk: SnapshotChunk): Delivery {
  let delivery = chunkDeliveries.get(chunk);
  if (!delivery) {
    const { streamName, groupId } = session;
    delivery = Delivery.snapshot({ kind: "snapshot", streamName, groupId, items: chunk.items, offset: chunk.offset, more: chunk.more }, chunk.bytes);
    chunkDeliveries.set(chunk, delivery);
  }
  return delivery;
}

function writeResult(change: ItemChange): WriteResult {
  if (change.type === "delete") {
    return { oldValue: change.data, newValue: undefined, revision: 0, offset: change.offset };
  }
  return { oldValue: change.oldValue, newValue: change.data, revision: change.revision, offset: change.offset };
}

function checkItemKey(key: ItemKey): void {
  checkName("stream_name", key.streamName);
  checkName("group_id", key.groupId);
  checkName("item_id", key.itemId);
}


