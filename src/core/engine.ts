import { isExpired, type BatchWrite, type DueExpiry, type ItemStore, type RequestRecord, type StoredRequest } from "./item-store.js";
import type { StoredItem } from "./model.js";
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
import { NO_METRICS, type Metrics, type SubscriptionTransport } from "./metrics.js";
import { checkTtl, DEFAULT_EXPIRY_SWEEP_MS } from "./expiry.js";
import { ExpirySweeper } from "./expiry-sweeper.js";
import { checkRequestId, decodeResults, DEFAULT_IDEMPOTENCY_WINDOW_MS, encodeResults, fingerprint, type RecordedResult } from "./request-ids.js";

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
  /**
   * How long a group remembers a write's request_id (see RequestRecord): a retry within
   * it writes nothing and gets the first answer. Default 10 minutes
   * (DEFAULT_IDEMPOTENCY_WINDOW_MS), far beyond any client's retries.
   */
  idempotencyWindowMs?: number;
  /**
   * How often, in ms, the engine looks for expired items (written with `ttl_ms`) and
   * removes them, each with one DELETE change marked `expired`. An item is removed at
   * most this long after its expiry, plus the time the removals before it take; reads
   * never return it meanwhile. Default 250 ms (DEFAULT_EXPIRY_SWEEP_MS): well within
   * 1 s late, for one cheap store read per interval when nothing is due. 0 turns
   * removal off (expired items are still never read), e.g. for an engine that only
   * reads.
   */
  expirySweepMs?: number;
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

/** What every write method takes besides its own fields. */
export interface WriteOptions {
  /**
   * Makes the request safe to retry: a second request with the same id to the same
   * group within `idempotencyWindowMs` writes nothing and answers as the first did; one
   * with another body is refused (FAILED_PRECONDITION). At most 128 bytes. Default none.
   */
  requestId?: string;
  /**
   * Set and Update: the item expires this many ms after the write (1 ms to 10 years,
   * MAX_TTL_MS). Without it the item never expires, whatever expiry it had; an Update
   * where no op applies writes nothing and keeps the expiry. Default none.
   */
  ttlMs?: number;
}

/** One write of a batch: exactly one of `set`, `update`, `delete`. */
export interface BatchWriteRequest {
  itemId: string;
  ifRevision?: number;
  set?: JsonValue;
  update?: readonly UpdateOp[];
  delete?: boolean;
  /** For `set` and `update`, as WriteOptions.ttlMs; not allowed with `delete`. */
  ttlMs?: number;
}

export interface BatchResult {
  /** One per write, in order; a write that changed nothing has the offset before it. */
  results: UpdateResult[];
  /** The offsets of the batch's first and last change (both the group offset when nothing changed). */
  firstOffset: number;
  lastOffset: number;
}

/** Most writes in one Batch. */
export const MAX_BATCH_WRITES = 1000;

/** A write of the engine's write path: what it decides for the item as the earlier writes left it. */
interface WriteStep {
  itemId: string;
  ifRevision: number | undefined;
  /** The written item's time to live (see WriteOptions.ttlMs). */
  ttlMs?: number;
  decide: (current: StoredItem | undefined) => { value: JsonValue | undefined; ops?: readonly UpdateOp[]; errors?: UpdateOpError[] } | { skip: true; errors?: UpdateOpError[] };
}

/** An item as a queued write leaves it; `created` when that write (or one before it, still queued) created it. */
interface QueuedItem {
  item: StoredItem | undefined;
  created: boolean;
  /** The write's commit; the write itself handles its failure. */
  committed: Promise<unknown>;
}

const ignore = () => undefined;

/** A request id with the fingerprint of its request's body. */
interface RequestKey {
  requestId: string;
  fingerprint: string;
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
  /**
   * Items whose latest write is queued in a store that commits in queue order, as that
   * write leaves them (see ItemStore.commitsInQueueOrder). The item's next writer decides
   * against this instead of waiting a commit (an fsync, on the file store) for the lock.
   */
  private readonly queuedItems = new Map<string, QueuedItem>();
  private readonly queueLimits: QueueLimits;
  private readonly metrics: Metrics;
  private readonly idempotencyWindowMs: number;
  private nextSubscriptionId = 1;
  private readonly sweeper: ExpirySweeper | undefined;

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
    this.idempotencyWindowMs = options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
    this.registry = new SubscriberRegistry(this.store, {
      queueLimits: this.queueLimits,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      maxSubscriptions: options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS,
      snapshotChunkBytes: options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES,
      scheduler: options.scheduler,
    });
    const sweepMs = options.expirySweepMs ?? DEFAULT_EXPIRY_SWEEP_MS;
    if (!(Number.isSafeInteger(sweepMs) && sweepMs >= 0)) throw new RangeError(`expirySweepMs must be a whole number of ms, got ${sweepMs}`);
    const store = this.store;
    if (sweepMs > 0 && store.dueExpiries) {
      const due = store.dueExpiries.bind(store);
      this.sweeper = new ExpirySweeper(due, (item) => this.expire(item), sweepMs, this.log);
    }
  }

  async get(key: ItemKey): Promise<StoredItem | undefined> {
    checkItemKey(key);
    const item = await this.store.getItem(key.streamName, key.groupId, key.itemId);
    return item && !isExpired(item, Date.now()) ? item : undefined;
  }

  async set(key: ItemKey, data: JsonValue, ifRevision?: number, options: WriteOptions = {}): Promise<WriteResult> {
    checkItemKey(key);
    checkValue(this.maxValueBytes, "data", data);
    checkRevision(ifRevision);
    const { ttlMs } = options;
    checkTtl(ttlMs);
    const request = this.requestKey(options, "set", [key.itemId, data, ifRevision ?? null, ...ttlBody(ttlMs)]);
    const [result] = await this.writeItems(key.streamName, key.groupId, [{ itemId: key.itemId, ifRevision, ttlMs, decide: () => ({ value: data }) }], request);
    this.metrics.written("set", key.streamName);
    const { oldValue, newValue, revision, offset } = result;
    return { oldValue, newValue, revision, offset };
  }

  async delete(key: ItemKey, ifRevision?: number, options: WriteOptions = {}): Promise<{ oldValue: JsonValue | undefined; offset: number }> {
    checkItemKey(key);
    checkRevision(ifRevision);
    const request = this.requestKey(options, "delete", [key.itemId, ifRevision ?? null]);
    const [result] = await this.writeItems(key.streamName, key.groupId, [{ itemId: key.itemId, ifRevision, decide: deleteDecision }], request);
    this.metrics.written("delete", key.streamName);
    return { oldValue: result.oldValue, offset: result.offset };
  }

  async update(key: ItemKey, ops: readonly UpdateOp[], ifRevision?: number, options: WriteOptions = {}): Promise<UpdateResult> {
    checkItemKey(key);
    checkRevision(ifRevision);
    const { ttlMs } = options;
    checkTtl(ttlMs);
    const request = this.requestKey(options, "update", [key.itemId, ops, ifRevision ?? null, ...ttlBody(ttlMs)]);
    const [result] = await this.writeItems(
      key.streamName,
      key.groupId,
      [{ itemId: key.itemId, ifRevision, ttlMs, decide: this.updateDecision(ops, "the updated value") }],
      request,
    );
    this.metrics.written("update", key.streamName);
    return result;
  }

  /**
   * Writes to several items of one group, all or nothing: every write's if_revision is
   * checked against the item as the earlier writes of the batch left it, and the changes
   * are committed in one step at consecutive offsets (see WriteBatch). A failed check
   * fails the whole batch with FAILED_PRECONDITION naming the write's index.
   */
  async batch(streamName: string, groupId: string, writes: readonly BatchWriteRequest[], options: WriteOptions = {}): Promise<BatchResult> {
    checkName("stream_name", streamName);
    checkName("group_id", groupId);
    if (writes.length === 0) throw invalidArgument("writes is empty: a batch needs at least one write");
    if (writes.length > MAX_BATCH_WRITES) throw invalidArgument(`writes has ${writes.length} writes; the limit is ${MAX_BATCH_WRITES}`);
    const steps = writes.map((write, index): WriteStep => {
      const at = `writes[${index}]`;
      checkName(`${at}.item_id`, write.itemId);
      checkRevision(write.ifRevision);
      try {
        checkTtl(write.ttlMs);
      } catch (error) {
        throw invalidArgument(`${at}: ${(error as StreamError).message}`);
      }
      if (write.ttlMs !== undefined && write.delete === true) throw invalidArgument(`${at}.ttl_ms is set on a delete, which leaves no item to expire`);
      const ops = [write.set !== undefined, write.update !== undefined, write.delete === true].filter(Boolean).length;
      if (ops !== 1) throw invalidArgument(`${at} must set exactly one of set, update and delete (it sets ${ops})`);
      let decide: WriteStep["decide"];
      if (write.set !== undefined) {
        checkValue(this.maxValueBytes, `${at}.set`, write.set);
        const value = write.set;
        decide = () => ({ value });
      } else if (write.update !== undefined) {
        decide = this.updateDecision(write.update, `the value updated by ${at}`);
      } else {
        decide = deleteDecision;
      }
      return { itemId: write.itemId, ifRevision: write.ifRevision, ttlMs: write.ttlMs, decide };
    });
    const body = writes.map((write) => [
      write.itemId,
      write.ifRevision ?? null,
      write.set ?? null,
      write.update ?? null,
      write.delete === true,
      ...ttlBody(write.ttlMs),
    ]);
    const request = this.requestKey(options, "batch", body);
    const results = await this.writeItems(streamName, groupId, steps, request);
    this.metrics.written("batch", streamName);
    return { results, ...batchOffsets(results) };
  }

  async send(
    target: { streamName: string; groupId: string; itemId?: string },
    type: string,
    data: JsonValue,
    options: WriteOptions = {},
  ): Promise<void> {
    checkName("stream_name", target.streamName);
    checkName("group_id", target.groupId);
    if (target.itemId !== undefined) checkName("item_id", target.itemId);
    checkName("type", type);
    checkValue(this.maxValueBytes, "data", data);
    const request = this.requestKey(options, "send", [target.itemId ?? null, type, data]);
    // Remembered before it goes out: a retry of a Send whose answer was lost is not sent twice.
    if (request && !(await this.rememberSend(target.streamName, target.groupId, request))) return;
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
    // The cursor is the last item read, shown or not: expired items are skipped, so a
    // page may hold fewer than asked (even none) and still be followed by another.
    const nextPageToken = more ? encodePageToken(scope, items.at(-1)!.createdOffset) : "";
    const now = Date.now();
    return { entries: items.filter((item) => !isExpired(item, now)), nextPageToken };
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
        const now = Date.now();
        snapshot.items = snapshot.items.filter((item) => !isExpired(item, now));
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

  /** Subscriptions open in this process on one group (the console shows it; other instances have their own). */
  subscriberCount(streamName: string, groupId: string): number {
    return this.registry.subscriberCount(streamName, groupId);
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
    await this.sweeper?.stop();
    this.registry.close(this.shutdownError ?? new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    await this.store.close();
  }

  /** The commit of a queued write; once it settled, later writers of the item read the store again unless another write queued since. */
  private async afterQueued<T>(key: string, queued: QueuedItem, committed: Promise<T>): Promise<T> {
    try {
      return await committed;
    } finally {
      if (this.queuedItems.get(key) === queued) this.queuedItems.delete(key);
    }
  }

  /**
   * The sweeper's removal of one due item, in the item's queue like any write: read it
   * again and, when it is still expired, delete it with its revision as expected. Another
   * process that removed (or rewrote) it first makes the commit fail, and the item read
   * after that is gone or no longer expired, so the removal happens once.
   */
  private expire(due: DueExpiry): Promise<void> {
    const { streamName, groupId, itemId } = due;
    return this.itemLocks.run(groupKey(streamName, groupId, itemId), async () => {
      let deadline: number | undefined;
      for (;;) {
        const current = await this.store.getItem(streamName, groupId, itemId);
        if (await this.removeExpiredOf(streamName, groupId, [current])) return;
        const now = Date.now();
        deadline ??= now + COMMIT_RETRY_MS;
        if (now >= deadline) throw new StreamError(ErrorCode.Aborted, "the item is written too often by other processes");
      }
    });
  }

  /**
   * Deletes the expired ones of `items` (as just read; undefined for a missing one),
   * each at the revision read, and marks them missing in `items`. False when one of them
   * changed meanwhile: nothing was deleted for it, and the caller reads again.
   */
  private async removeExpiredOf(streamName: string, groupId: string, items: Array<StoredItem | undefined>): Promise<boolean> {
    const now = Date.now();
    for (let index = 0; index < items.length; index++) {
      const current = items[index];
      if (current?.expiresAtMs === undefined || !isExpired(current, now)) continue;
      // An expiry fires at-least-once triggers like any delete: their calls are stored with it.
      const outbox = this.hooks.durableTriggers({ streamName, groupId, itemId: current.itemId });
      const result = await this.store.commit({
        streamName,
        groupId,
        itemId: current.itemId,
        expectedRevision: current.revision,
        expectedCreatedOffset: current.createdOffset,
        value: undefined,
        timestampMs: Date.now(),
        expired: true,
        ...(outbox !== undefined ? { outbox } : {}),
      });
      if (!result.ok) return false;
      this.hooks.afterCommit(result.change);
      items[index] = undefined;
    }
    return true;
  }

  /** The request key of a write that carries a request id (checked here), or none. */
  private requestKey(options: WriteOptions, method: string, body: unknown): RequestKey | undefined {
    checkRequestId(options.requestId);
    return options.requestId === undefined ? undefined : { requestId: options.requestId, fingerprint: fingerprint(method, body) };
  }

  private updateDecision(ops: readonly UpdateOp[], field: string): WriteStep["decide"] {
    return (current) => {
      const outcome = applyUpdateOps(current?.data, ops);
      // Nothing applied: nothing to write, and nothing to create.
      if (outcome.applied === 0) return { skip: true, errors: outcome.errors };
      checkValue(this.maxValueBytes, field, outcome.value);
      // Kept with the change for subscribers that take deltas: a failed op changed nothing, so the others alone give the same value.
      return { value: outcome.value, ops: current ? appliedOps(ops, outcome.errors) : undefined, errors: outcome.errors };
    };
  }

  /** Records a Send's request id; false when the group remembers it already (the retry sends nothing). */
  private async rememberSend(streamName: string, groupId: string, request: RequestKey): Promise<boolean> {
    return this.itemLocks.run(requestLockKey(streamName, groupId, request.requestId), async () => {
      const known = await this.store.findRequest(streamName, groupId, request.requestId, Date.now());
      if (known) {
        checkFingerprint(known, request);
        return false;
      }
      const timestampMs = Date.now();
      const result = await this.store.commitBatch({ streamName, groupId, writes: [], timestampMs, request: this.record(request, [], timestampMs) });
      if (result.ok) return true;
      if (result.reason === "duplicate") checkFingerprint(result.request, request);
      return false;
    });
  }

  private record(request: RequestKey, results: readonly RecordedResult[], timestampMs: number): RequestRecord {
    return { ...request, response: encodeResults(results), expiresAtMs: timestampMs + this.idempotencyWindowMs };
  }

  /**
   * The write path of every write method: the steps in order against one group, as one
   * commit. Local writers of the same items (and of the same request id) queue on locks
   * taken in one order; writers in other processes are caught by the store's revision
   * checks, and the whole batch is then read and decided again.
   */
  private writeItems(streamName: string, groupId: string, steps: readonly WriteStep[], request: RequestKey | undefined): Promise<UpdateResult[]> {
    // One write without a request id, the usual call, takes its item's lock without building a list.
    if (steps.length === 1 && !request) {
      const key = groupKey(streamName, groupId, steps[0].itemId);
      if (!this.store.commitsInQueueOrder) return this.itemLocks.run(key, () => this.commitSteps(streamName, groupId, steps, request));
      // The lock is let go once the write is queued, so that the item's next writer joins the same commit.
      return this.itemLocks.runReleasable(key, (release) => this.commitSteps(streamName, groupId, steps, request, { key, queued: release }));
    }
    const keys = [...new Set(steps.map((step) => groupKey(streamName, groupId, step.itemId)))].sort();
    if (request) keys.unshift(requestLockKey(streamName, groupId, request.requestId));
    const run = (index: number): Promise<UpdateResult[]> =>
      index === keys.length ? this.commitSteps(streamName, groupId, steps, request) : this.itemLocks.run(keys[index], () => run(index + 1));
    return run(0);
  }

  private async commitSteps(
    streamName: string,
    groupId: string,
    steps: readonly WriteStep[],
    request: RequestKey | undefined,
    pipeline?: { key: string; queued: () => void },
  ): Promise<UpdateResult[]> {
    // Set on the first lost race: an uncontended write never reads the clock for it.
    let deadline: number | undefined;
    // A queued write this one builds on; after a refused commit the store is read instead.
    let ahead = pipeline && this.queuedItems.get(pipeline.key);
    for (;;) {
      if (request) {
        const known = await this.store.findRequest(streamName, groupId, request.requestId, Date.now());
        if (known) return replay(known, request);
      }
      const ids = steps.length === 1 ? [steps[0].itemId] : [...new Set(steps.map((step) => step.itemId))];
      const stored = ahead
        ? [ahead.item]
        : ids.length === 1
          ? [await this.store.getItem(streamName, groupId, ids[0])]
          : await Promise.all(ids.map((itemId) => this.store.getItem(streamName, groupId, itemId)));
      // An expired item not yet swept away is removed first, with its own DELETE change:
      // the writes then meet no item, as a reader would. Changed meanwhile: read again.
      if (stored.some((item) => item?.expiresAtMs !== undefined) && !(await this.removeExpiredOf(streamName, groupId, stored))) continue;
      // Each item as the steps so far left it; `created` marks those the batch itself created.
      const view = new Map(ids.map((itemId, index) => [itemId, { item: stored[index], created: ahead?.created ?? false }]));
      const writes: BatchWrite[] = [];
      const planned: RecordedResult[] = [];
      const timestampMs = Date.now();
      for (let index = 0; index < steps.length; index++) {
        const step = steps[index];
        const state = view.get(step.itemId)!;
        const current = state.item;
        const revision = current === undefined ? 0 : current.revision;
        if (step.ifRevision !== undefined && step.ifRevision !== revision) {
          throw new StreamError(
            ErrorCode.FailedPrecondition,
            (steps.length > 1 ? `writes[${index}]: ` : "") +
              `revision mismatch: if_revision is ${step.ifRevision} but the item is at revision ${revision}` +
              (revision === 0 ? " (it does not exist)" : ""),
          );
        }
        let decision: ReturnType<WriteStep["decide"]>;
        try {
          decision = step.decide(current);
        } catch (error) {
          if (steps.length > 1 && error instanceof StreamError) throw new StreamError(error.code, `writes[${index}]: ${error.message}`);
          throw error;
        }
        const errors = decision.errors ?? [];
        if ("skip" in decision) {
          planned.push({ oldValue: current?.data, newValue: current?.data, revision, offsetBelow: writes.length - 1, errors });
          continue;
        }
        const outbox = this.hooks.durableTriggers({ streamName, groupId, itemId: step.itemId });
        writes.push({
          itemId: step.itemId,
          expectedRevision: revision,
          expectedCreatedOffset: state.created ? undefined : current?.createdOffset,
          value: decision.value,
          ...(decision.ops ? { ops: decision.ops } : {}),
          ...(step.ttlMs !== undefined && decision.value !== undefined ? { expiresAtMs: timestampMs + step.ttlMs } : {}),
          ...(outbox !== undefined ? { outbox } : {}),
        });
        if (decision.value === undefined) {
          planned.push({ oldValue: current?.data, newValue: undefined, revision: 0, offsetBelow: writes.length - 1, errors });
          view.set(step.itemId, { item: undefined, created: false });
        } else {
          const item: StoredItem = { itemId: step.itemId, data: decision.value, revision: revision + 1, createdOffset: current?.createdOffset ?? -1, updatedAtMs: 0 };
          planned.push({ oldValue: current?.data, newValue: decision.value, revision: revision + 1, offsetBelow: writes.length - 1, errors });
          view.set(step.itemId, { item, created: state.created || current === undefined });
        }
      }
      // offsetBelow holds the index of the write's change (or of the change before it, -1 for
      // none) among the batch's: turn it into the distance below the batch's last.
      for (const result of planned) result.offsetBelow = writes.length - 1 - result.offsetBelow;

      if (writes.length === 0 && !request) {
        // Nothing to write: the answer is the group as committed, so the queued write this was decided against must be committed first.
        if (ahead) {
          await ahead.committed.then(ignore, ignore);
          ahead = undefined;
          continue;
        }
        const offset = await this.store.currentOffset(streamName, groupId);
        return planned.map((result) => answer(result, offset));
      }
      const committed = this.store.commitBatch({
        streamName,
        groupId,
        writes,
        timestampMs,
        ...(request ? { request: this.record(request, planned, timestampMs) } : {}),
      });
      // Queued now: the item's next writer may build on this write, unless an expiry makes the item's future a matter of time.
      let queued: QueuedItem | undefined;
      if (pipeline && steps[0].ttlMs === undefined) {
        queued = { ...view.get(steps[0].itemId)!, committed };
        this.queuedItems.set(pipeline.key, queued);
        pipeline.queued();
      }
      const result = queued ? await this.afterQueued(pipeline!.key, queued, committed) : await committed;
      if (result.ok) {
        for (const change of result.changes) this.hooks.afterCommit(change);
        return planned.map((entry) => answer(entry, result.offset));
      }
      if (result.reason === "duplicate") return replay(result.request, request!);
      if (result.reason === "outbox_full") throw outboxFullError(result.triggerId);
      const now = Date.now();
      deadline ??= now + COMMIT_RETRY_MS;
      if (now >= deadline) break;
      ahead = undefined;
      // A random pause after a lost race breaks a lockstep in which one process keeps winning.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    }
    throw new StreamError(ErrorCode.Aborted, "the item is written too often by other processes; try again");
  }
}

/** A write's ttl_ms in its request body (see fingerprint): left out when absent, so that bodies without one stay as they were. */
function ttlBody(ttlMs: number | undefined): number[] {
  return ttlMs === undefined ? [] : [ttlMs];
}

/** The answer of a request the group remembers, to a retry with the same body. */
function replay(known: StoredRequest, request: RequestKey): UpdateResult[] {
  checkFingerprint(known, request);
  return decodeResults(known.response).map((result) => answer(result, known.offset));
}

function checkFingerprint(known: StoredRequest, request: RequestKey): void {
  if (known.fingerprint !== request.fingerprint) {
    throw new StreamError(
      ErrorCode.FailedPrecondition,
      `request_id ${JSON.stringify(request.requestId)} was already used for another request to this group; use a new id for a new request`,
    );
  }
}

function answer(result: RecordedResult, offsetAfter: number): UpdateResult {
  return {
    oldValue: result.oldValue,
    newValue: result.newValue,
    revision: result.revision,
    offset: offsetAfter - result.offsetBelow,
    errors: result.errors,
  };
}

/** The first and last offsets a batch's results name (the group offset twice when nothing changed). */
function batchOffsets(results: readonly UpdateResult[]): { firstOffset: number; lastOffset: number } {
  return { firstOffset: Math.min(...results.map((result) => result.offset)), lastOffset: Math.max(...results.map((result) => result.offset)) };
}

function appliedOps(ops: readonly UpdateOp[], errors: readonly UpdateOpError[]): readonly UpdateOp[] {
  if (errors.length === 0) return ops;
  const failed = new Set(errors.map((error) => error.opIndex));
  return ops.filter((_, index) => !failed.has(index));
}

function deleteDecision(current: StoredItem | undefined): ReturnType<WriteStep["decide"]> {
  return current ? { value: undefined } : { skip: true };
}

/** The lock of a request id: the same key space as items, but no item key starts with "request ". */
function requestLockKey(streamName: string, groupId: string, requestId: string): string {
  return `request ${JSON.stringify([streamName, groupId, requestId])}`;
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

function checkItemKey(key: ItemKey): void {
  checkName("stream_name", key.streamName);
  checkName("group_id", key.groupId);
  checkName("item_id", key.itemId);
}

