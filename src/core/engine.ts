import type { ItemStore } from "./item-store.js";
import type { ItemChange, StoredItem, StreamGroups } from "./model.js";
import { Delivery } from "./delivery.js";
import type { JsonValue } from "./json.js";
import { HookRunner, type EngineHooks, type JoinInfo } from "./hooks.js";
import { KeyedLock } from "./keyed-lock.js";
import { checkName, groupKey } from "./names.js";
import { ErrorCode, invalidArgument, StreamError } from "./errors.js";
import { SubscriberRegistry, type SubscriberStats } from "./subscriber-registry.js";
import { DEFAULT_QUEUE_LIMITS, type QueueLimits, type Subscription, type SubscriptionTarget } from "./subscription.js";
import { applyUpdateOps, type UpdateOp, type UpdateOpError } from "./update-ops.js";
import { checkRevision, checkValue, DEFAULT_MAX_VALUE_BYTES } from "./values.js";

export interface EngineOptions {
  store: ItemStore;
  /** Largest value (and Send payload), in bytes of JSON. Default 1 MiB. */
  maxValueBytes?: number;
  queueLimits?: QueueLimits;
  /** Default 15,000 ms; see RegistryOptions.heartbeatMs. */
  heartbeatMs?: number;
  /** Most subscriptions open at once (see RegistryOptions.maxSubscriptions). Default 100,000. */
  maxSubscriptions?: number;
  /** Run in list order around writes and subscriptions (see EngineHooks). Default none. */
  hooks?: readonly EngineHooks[];
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
  context?: JsonValue;
  subscriptionId?: string;
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

/**
 * The domain core: validates requests, runs writes as compare-and-set against the
 * adapter, and serves subscriptions with a snapshot followed by every later change.
 * It knows nothing of any transport.
 */
export class StreamEngine {
  readonly maxValueBytes: number;
  private readonly store: ItemStore;
  private readonly registry: SubscriberRegistry;
  private readonly hooks: HookRunner;
  /** Set by the first `shutdown`: the error every subscription ends with from then on. */
  private shutdownError: StreamError | undefined;
  private readonly itemLocks = new KeyedLock();
  private readonly queueLimits: QueueLimits;
  private nextSubscriptionId = 1;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.hooks = new HookRunner(options.hooks);
    this.queueLimits = options.queueLimits ?? DEFAULT_QUEUE_LIMITS;
    this.registry = new SubscriberRegistry(this.store, {
      queueLimits: this.queueLimits,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      maxSubscriptions: options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS,
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
    return this.writeItem(key, ifRevision, () => ({ value: data }));
  }

  async delete(key: ItemKey, ifRevision?: number): Promise<{ oldValue: JsonValue | undefined; offset: number }> {
    checkItemKey(key);
    checkRevision(ifRevision);
    const result = await this.writeItem(key, ifRevision, (current) => (current ? { value: undefined } : undefined));
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
    this.hooks.afterCommit(event);
  }

  async list(streamName: string, groupId: string): Promise<StoredItem[]> {
    checkName("stream_name", streamName);
    checkName("group_id", groupId);
    return this.store.listItems(streamName, groupId);
  }

  async listGroups(streamName: string): Promise<string[]> {
    checkName("stream_name", streamName);
    return this.store.listGroups(streamName);
  }

  async listAll(): Promise<StreamGroups[]> {
    return this.store.listAll();
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
    try {
      if (fromOffset !== undefined) {
        const missed = await this.store.changesSince(target.streamName, target.groupId, fromOffset);
        const relevant = target.itemId === undefined ? missed : missed?.filter((c) => c.itemId === target.itemId);
        // More changes than the queue holds would end the subscriber on arrival, and
        // again on every retry; a snapshot is one message.
        if (missed && relevant && relevant.length < this.queueLimits.maxMessages) {
          subscription.start(relevant.map((change) => new Delivery(change)), missed.at(-1)?.offset ?? fromOffset);
          return subscription;
        }
      }
      const snapshot = await this.store.snapshot(target.streamName, target.groupId, target.itemId);
      subscription.start([new Delivery({ kind: "snapshot", ...snapshot })], snapshot.offset);
      return subscription;
    } catch (error) {
      subscription.end();
      throw error;
    }
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
      const result = await this.store.commit({
        streamName,
        groupId,
        itemId,
        expectedRevision: revision,
        expectedCreatedOffset: current?.createdOffset,
        value: decision.value,
        timestampMs: Date.now(),
      });
      if (result.ok) {
        this.hooks.afterCommit(result.change);
        return writeResult(result.change);
      }
      const now = Date.now();
      deadline ??= now + COMMIT_RETRY_MS;
      if (now >= deadline) break;
      // A random pause after a lost race breaks a lockstep in which one process keeps winning.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    }
    throw new StreamError(ErrorCode.Aborted, "the item is written too often by other processes; try again");
  }
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
