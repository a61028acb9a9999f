import type { GroupMessage } from "../core/model.js";
import type { JsonObject } from "../core/json.js";
import type { JoinInfo } from "../core/hooks.js";

/**
 * The input of a `stream` trigger (and of its condition): the reference's wrapper
 * message, with camelCase `streamName`/`groupId` as there, plus the group `offset` and
 * the item's `revision` (null for an event from Send, which has none). The delete that
 * removed an expired item has `event.expired: true`; no other event has the field.
 */
export function streamTriggerPayload(message: GroupMessage): JsonObject {
  const event: JsonObject =
    message.kind === "change"
      ? message.expired
        ? { type: message.type, data: message.data, expired: true }
        : { type: message.type, data: message.data }
      : { type: "event", event: { type: message.type, data: message.data } };
  return {
    type: "stream",
    timestamp: message.timestampMs,
    streamName: message.streamName,
    groupId: message.groupId,
    id: message.itemId ?? null,
    event,
    offset: message.offset,
    revision: message.kind === "change" ? message.revision : null,
  };
}

/** The input of `stream:join` and `stream:leave` triggers; `id` and `context` are always present. */
export function subscriptionTriggerPayload(join: JoinInfo): JsonObject {
  return {
    subscription_id: join.subscriptionId,
    stream_name: join.streamName,
    group_id: join.groupId,
    id: join.itemId ?? null,
    context: join.context,
  };
}
