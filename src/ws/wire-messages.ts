/**
 * The stream socket's wire format (reference spec 5.1). Client messages are
 * `{type: "join" | "leave", data: {...}}`; every server message is the reference's
 * wrapper `{type: "stream", timestamp, streamName, groupId, id, event}` followed by
 * our additions, which old clients ignore: `offset` (and `revision` for item
 * changes) and the `subscriptionId` the message belongs to.
 */
import { Delivery, type SnapshotMessage, type SubscriptionMessage } from "../core/delivery.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../core/json.js";
import { MAX_NAME_BYTES } from "../core/names.js";
import type { SubscriptionTarget } from "../core/subscription.js";

export interface JoinMessage {
  type: "join";
  subscriptionId: string;
  streamName: string;
  groupId: string;
  /** The item of an item-level subscription. */
  itemId: string | undefined;
  /** Resume after this offset instead of starting from a `sync`. */
  fromOffset: number | undefined;
  /**
   * `chunks: true` in the join (an addition to the reference): a large group's sync
   * comes as several `sync` messages, each with `more`, instead of one message that
   * must hold the whole group (refused beyond the server's maxUnpagedBytes).
   */
  chunks: boolean;
}

export interface LeaveMessage {
  type: "leave";
  subscriptionId: string;
}

/**
 * A join or a leave, or undefined for anything else, which the socket ignores as the
 * reference does. Names are checked by the engine (an empty name gets an `error`
 * event); only the shape is checked here.
 */
export function parseClientMessage(message: JsonObject): JoinMessage | LeaveMessage | undefined {
  const data = message.data;
  if (!isJsonObject(data) || !isSubscriptionId(data.subscriptionId)) return undefined;
  if (message.type === "leave") return { type: "leave", subscriptionId: data.subscriptionId };
  if (message.type !== "join") return undefined;
  const { streamName, groupId, id, fromOffset, chunks } = data;
  if (typeof streamName !== "string" || typeof groupId !== "string") return undefined;
  if (id !== undefined && id !== null && typeof id !== "string") return undefined;
  if (fromOffset !== undefined && fromOffset !== null && !isOffset(fromOffset)) return undefined;
  return {
    type: "join",
    subscriptionId: data.subscriptionId,
    streamName,
    groupId,
    itemId: id ?? undefined,
    fromOffset: fromOffset ?? undefined,
    chunks: chunks === true,
  };
}

/** `fromOffset` of a path-based join's query string; undefined when absent or not an offset. */
export function offsetFromQuery(value: string | null): number | undefined {
  if (value === null || !/^\d{1,16}$/.test(value)) return undefined;
  const offset = Number(value);
  return isOffset(offset) ? offset : undefined;
}

/**
 * A message in wire form without its closing brace, so that each subscription can
 * append its own `subscriptionId` (see `subscriptionSuffix`). Undefined for heartbeats, which
 * the stream socket does not forward: protocol pings keep its connections alive.
 * Changes and events are encoded once and shared by every socket that receives them.
 */
export function wrapperHead(delivery: Delivery, target: SubscriptionTarget): Buffer | undefined {
  const message = delivery.message;
  if (message.kind === "heartbeat") return undefined;
  if (message.kind === "snapshot") {
    // A group's snapshot chunk is shared by the subscribers that joined together; an item's sync has its own shape.
    if (target.itemId === undefined) return delivery.encoded(GROUP_SYNC_HEAD);
    return head(syncWrapper(message, target));
  }
  return delivery.encoded(SHARED_HEAD);
}

/** A change or an event as every stream socket sends it, less the subscription's suffix. */
const SHARED_HEAD = Delivery.format<Buffer>("ws-stream", encodeShared);
/** A group-level sync: the same for every subscriber of the group that receives this snapshot (chunk). */
const GROUP_SYNC_HEAD = Delivery.format<Buffer>("ws-group-sync", (message) => {
  if (message.kind !== "snapshot") throw new Error(`${message.kind} messages are not syncs`);
  return head(syncWrapper(message, { streamName: message.streamName, groupId: message.groupId, itemId: undefined }));
});

/** `,"subscriptionId":"..."}`: what closes every wrapper of one subscription. */
export function subscriptionSuffix(subscriptionId: string): Buffer {
  return Buffer.from(`,"subscriptionId":${JSON.stringify(subscriptionId)}}`, "utf8");
}

/** The reply to a join that a `stream:join` handler refused. */
export function unauthorizedWrapper(join: JoinMessage): string {
  return JSON.stringify({
    ...wrapperStart(join.streamName, join.groupId, join.itemId ?? null, Date.now()),
    event: { type: "unauthorized" },
    subscriptionId: join.subscriptionId,
  });
}

/**
 * The reply to a join the server cannot serve (an invalid name, too many
 * subscriptions on the connection, an unavailable store): an addition to the
 * reference, whose clients ignore the unknown event type.
 */
export function errorWrapper(join: JoinMessage, code: string, message: string): string {
  return JSON.stringify({
    ...wrapperStart(join.streamName, join.groupId, join.itemId ?? null, Date.now()),
    event: { type: "error", code, message },
    subscriptionId: join.subscriptionId,
  });
}

function encodeShared(message: SubscriptionMessage): Buffer {
  switch (message.kind) {
    case "change":
      return head({
        ...wrapperStart(message.streamName, message.groupId, message.itemId, message.timestampMs),
        event: { type: message.type, data: message.data },
        offset: message.offset,
        revision: message.revision,
      });
    case "event":
      return head({
        ...wrapperStart(message.streamName, message.groupId, message.itemId ?? null, message.timestampMs),
        event: { type: "event", event: { type: message.type, data: message.data } },
        offset: message.offset,
      });
    default:
      throw new Error(`${message.kind} messages are not shared`);
  }
}

/**
 * An item-level sync carries the value (null when missing), a group-level one the array
 * of values, as in the reference. Additions that old clients ignore: `items`, the id,
 * revision and write time of each value in `data` (so that later changes, keyed by id, can
 * be matched to the synced rows), and `more`, set on every chunk but the last of a chunked sync.
 */
function syncWrapper(snapshot: SnapshotMessage, target: SubscriptionTarget): JsonObject {
  const { items } = snapshot;
  const data: JsonValue = target.itemId === undefined ? items.map((item) => item.data) : (items[0]?.data ?? null);
  const rows: JsonValue = items.map((item) => ({ id: item.itemId, revision: item.revision, updatedAtMs: item.updatedAtMs }));
  return {
    ...wrapperStart(target.streamName, target.groupId, target.itemId ?? null, Date.now()),
    event: { type: "sync", data, items: rows, more: snapshot.more },
    offset: snapshot.offset,
  };
}

/** The reference's field order: type, timestamp, streamName, groupId, id, then event. */
function wrapperStart(streamName: string, groupId: string, id: string | null, timestamp: number): JsonObject {
  return { type: "stream", timestamp, streamName, groupId, id };
}

function head(wrapper: JsonObject): Buffer {
  const json = JSON.stringify(wrapper);
  return Buffer.from(json.slice(0, -1), "utf8");
}

function isSubscriptionId(value: JsonValue | undefined): value is string {
  return typeof value === "string" && value.length > 0 && Buffer.byteLength(value, "utf8") <= MAX_NAME_BYTES;
}

function isOffset(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
