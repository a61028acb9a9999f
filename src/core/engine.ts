import type { ItemStore } from "./item-store.js";
import type { GroupMessage, ItemChange, StoredItem, StreamGroups } from "./model.js";
import { Delivery } from "./delivery.js";
import type { JsonValue } from "./json.js";
import { KeyedLock } from "./keyed-lock.js";
import { checkName } from "./names.js";
import { ErrorCode, invalidArgument, StreamError } from "./errors.js";
import { SubscriberRegistry } from "./subscriber-registry.js";
import { DEFAULT_QUEUE_LIMITS, type QueueLimits, type Subscription, type SubscriptionTarget } from "./subscription.js";
import { applyUpdateOps, type UpdateOp, type UpdateOpError } from "./update-ops.js";

/** Default limit of one stored value, and of one request, in bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/**
 * Deepest nesting of arrays and objects in a stored value (each counts one level).
 * Protobuf decoders stop at 100 nested messages by default and every level of a
 * google.protobuf.Value costs two, so deeper values, though accepted over JSON, could
 * not be read back by binary and gRPC clients (a whole List or Subscribe would fail).
 */
export const MAX_VALUE_DEPTH = 32;

/**
 * Extension points, called by the engine in a fixed order:
 * write -> fan-out to subscribers -> `onMessage` (triggers) -> reply.
 */
export interface EngineHooks {
  /** After a change is committed or an event sent. Must not throw or block. */
  onMessage?(message: GroupMessage): void;
  /** Before a subscription reads its snapshot. Throw a StreamError to refuse it. */
  beforeJoin?(join: JoinInfo): Promise<void>;
  /** Once for every subscription that `beforeJoin` accepted, when it ends for any reason. */
  afterLeave?(join: JoinInfo): void;
}

export interface JoinInfo extends SubscriptionTarget {
  /** Whatever the transport's authentication produced, passed through to hooks. */
  context: JsonValue;
  /** Identifies the subscription in hook payloads. */
  subscriptionId: string;
}

export interface EngineOptions {
  adapter: ItemStore;
  /** Largest value (and Send payload), in bytes of JSON. Default 1 MiB. */
  maxValueBytes?: number;
  queueLimits?: QueueLimits;
  /** Default 15,000 ms; see RegistryOptions.heartbeatMs. */
  heartbeatMs?: number;
  hooks?: EngineHooks;
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

/**
 * The domain core: validates requests, runs writes as compare-and-set against the
 * adapter, and serves subscriptions with a snapshot followed by every later change.
 * It knows nothing of any transport.
 */
export class StreamEngine {
  readonly adapter: ItemStore;
  readonly registry: SubscriberRegistry;
  readonly maxValueBytes: number;
  private readonly hooks: EngineHooks;
  private readonly itemLocks = new KeyedLock();
  private readonly queueLimits: QueueLimits;
  private nextSubscriptionId = 1;

  constructor(options: EngineOptions) {
    this.adapter = options.adapter;
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.hooks = options.hooks ?? {};
    this.queueLimits = options.queueLimits ?? DEFAULT_QUEUE_LIMITS;
    this.registry = new SubscriberRegistry(this.adapter, {
      queueLimits: this.queueLimits,
      heartbeatMs: options.heartbeatMs ?? 15_000,
    });
  }

  async get(key: ItemKey): Promise<StoredItem | undefined> {
    checkItemKey(key);
    return this.adapter.getItem(key.streamName, key.groupId, key.itemId);
  }

  async set(key: ItemKey, data: JsonValue, ifRevision?: number): Promise<WriteResult> {
    checkItemKey(key);
    this.checkValue("data", data);
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
      this.checkValue("the updated value", outcome.value);
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
    this.checkValue("data", data);
    const event = await this.adapter.publishEvent({
      streamName: target.streamName,
      groupId: target.groupId,
      type,
      itemId: target.itemId,
      data,
      timestampMs: Date.now(),
    });
    this.hooks.onMessage?.(event);
  }

  async list(streamName: string, groupId: string): Promise<StoredItem[]> {
    checkName("stream_name", streamName);
    checkName("group_id", groupId);
    return this.adapter.listItems(streamName, groupId);
  }

  async listGroups(streamName: string): Promise<string[]> {
    checkName("stream_name", streamName);
    return this.adapter.listGroups(streamName);
  }

  async listAll(): Promise<StreamGroups[]> {
    return this.adapter.listAll();
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
    await this.hooks.beforeJoin?.(join);

    const subscription = await this.registry.add(target, options.onReadable);
    const afterLeave = this.hooks.afterLeave;
    if (afterLeave) subscription.onEnd(() => afterLeave(join));
    try {
      if (fromOffset !== undefined) {
        const missed = await this.adapter.changesSince(target.streamName, target.groupId, fromOffset);
        const relevant = target.itemId === undefined ? missed : missed?.filter((c) => c.itemId === target.itemId);
        // More changes than the queue holds would end the subscriber on arrival, and
        // again on every retry; a snapshot is one message.
        if (missed && relevant && relevant.length < this.queueLimits.maxMessages) {
          subscription.start(relevant.map((change) => new Delivery(change)), missed.at(-1)?.offset ?? fromOffset);
          return subscription;
        }
      }
      const snapshot = await this.adapter.snapshot(target.streamName, target.groupId, target.itemId);
      subscription.start([new Delivery({ kind: "snapshot", ...snapshot })], snapshot.offset);
      return subscription;
    } catch (error) {
      subscription.end();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.registry.close();
    await this.adapter.close();
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
    // Length prefixes keep the key unambiguous whatever the names contain.
    const lockKey = `${streamName.length}:${streamName}${groupId.length}:${groupId}${itemId}`;
    return this.itemLocks.run(lockKey, () => this.commitItem(streamName, groupId, itemId, ifRevision, decide));
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
      const current = await this.adapter.getItem(streamName, groupId, itemId);
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
          offset: await this.adapter.currentOffset(streamName, groupId),
        };
      }
      const result = await this.adapter.commit({
        streamName,
        groupId,
        itemId,
        expectedRevision: revision,
        expectedCreatedOffset: current?.createdOffset,
        value: decision.value,
        timestampMs: Date.now(),
      });
      if (result.ok) {
        this.hooks.onMessage?.(result.change);
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

  /** Within the size limit, and only content every client can read back as JSON. */
  private checkValue(field: string, value: JsonValue): void {
    const scan = new ValueScan();
    scan.visit(value, 0);
    // The common value is far below the limit by the scan's bound alone, so it is never
    // serialised; anything else is measured exactly, and the size is reported first.
    if (scan.problem === undefined && scan.boundBytes <= this.maxValueBytes) return;
    const bytes = Buffer.byteLength(JSON.stringify(value), "utf8");
    if (bytes > this.maxValueBytes) {
      throw new StreamError(
        ErrorCode.ResourceExhausted,
        `${field} is ${bytes} bytes of JSON; the limit is ${this.maxValueBytes}`,
      );
    }
    if (scan.problem !== undefined) throw invalidArgument(`${field} contains ${scan.problem}`);
  }
}

function writeResult(change: ItemChange): WriteResult {
  if (change.type === "delete") {
    return { oldValue: change.data, newValue: undefined, revision: 0, offset: change.offset };
  }
  return { oldValue: change.oldValue, newValue: change.data, revision: change.revision, offset: change.offset };
}

/** Characters of the longest number JSON.stringify writes, e.g. -0.0000012345678901234567. */
const MAX_NUMBER_CHARS = 25;

/**
 * One walk over a value: the first thing that makes it unfit to store, if any (a lone
 * surrogate, which no binary client could read back; a number JSON cannot carry;
 * nesting past MAX_VALUE_DEPTH), and an upper bound of its size as UTF-8 JSON. The
 * bound counts 6 bytes per UTF-16 unit of a string (a \uXXXX escape; no character
 * takes more). The recursion stops at MAX_VALUE_DEPTH, so deep values cannot
 * overflow the stack.
 */
class ValueScan {
  boundBytes = 0;
  problem: string | undefined;

  /** False once a problem is found, which ends the walk. */
  visit(value: JsonValue, depth: number): boolean {
    if (typeof value === "string") {
      this.boundBytes += 2 + 6 * value.length;
      if (value.isWellFormed()) return true;
      this.problem = "a string that is not valid UTF-8";
      return false;
    }
    if (typeof value === "number") {
      this.boundBytes += MAX_NUMBER_CHARS;
      if (Number.isFinite(value)) return true;
      this.problem = "a number that is NaN or infinite";
      return false;
    }
    if (value === null || typeof value !== "object") {
      this.boundBytes += 5;
      return true;
    }
    if (depth === MAX_VALUE_DEPTH) {
      this.problem = `arrays or objects nested deeper than ${MAX_VALUE_DEPTH} levels`;
      return false;
    }
    if (Array.isArray(value)) {
      this.boundBytes += 2 + value.length;
      for (let i = 0; i < value.length; i++) if (!this.visit(value[i], depth + 1)) return false;
      return true;
    }
    this.boundBytes += 2;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      // Quotes, colon and comma around the key.
      this.boundBytes += 4 + 6 * key.length;
      if (!key.isWellFormed()) {
        this.problem = "a key that is not valid UTF-8";
        return false;
      }
      if (!this.visit(value[key], depth + 1)) return false;
    }
    return true;
  }
}

function checkItemKey(key: ItemKey): void {
  checkName("stream_name", key.streamName);
  checkName("group_id", key.groupId);
  checkName("item_id", key.itemId);
}

function checkRevision(ifRevision: number | undefined): void {
  if (ifRevision !== undefined && !(Number.isSafeInteger(ifRevision) && ifRevision >= 0)) {
    throw invalidArgument("if_revision must be a non-negative integer");
  }
}
