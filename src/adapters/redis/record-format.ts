import type { JsonValue } from "../../core/json.js";
import type { StoredRequest } from "../../core/item-store.js";
import type { ChangeType, GroupEvent, GroupMessage, ItemChange, StoredItem } from "../../core/model.js";
import type { UpdateOp } from "../../core/update-ops.js";
import { updateOpsFromJson } from "../../core/update-ops-json.js";

/*
 * The texts Redis stores and carries. They are lines joined by "\n": JSON.stringify
 * never emits a raw newline (one inside a string is escaped), so JSON texts and
 * decimal numbers can be framed by newlines without any escaping, and Lua can build
 * and cut them with plain string operations: values are never decoded in Lua, so they
 * come back exactly as JavaScript wrote them (no `[]` turning into `{}`, no lost digits).
 *
 * Stored item:   <revision>\n<updated_at_ms>\n<value JSON>
 * Change:        c\n<offset>\n<type>\n<revision>\n<timestamp_ms>\n<item id JSON>\n<value JSON>\n<old value JSON or empty>
 *                \n<old updated_at_ms or empty>\n<created offset>[\n<ops JSON> | \n1]
 *                (for a delete, the value is the removed one and the old-value line is empty;
 *                the old updated_at is empty for a create, the created offset is that of the
 *                changed incarnation). Messages written before the last two lines existed end
 *                after the old value and still decode, see decodeChange. The ops line (see
 *                ItemChange.ops, as updateOpsToJson writes them) follows only on an update made by ops;
 *                a line "1" only on the delete of an expired item (ItemChange.expired).
 * Request:       <offset after its commit>\n<expires_at_ms>\n<fingerprint>\n<response>
 *                (the response is the engine's JSON text, opaque here)
 * Event:         e\n<offset>\n<type JSON>\n<timestamp_ms>\n<item id JSON or empty>\n<data JSON>
 */

/**
 * A stored item record; its created offset is the item's score in the group's order
 * ZSET, its expiry (empty or absent: never) its score in the group's expiry ZSET.
 */
export function decodeStoredItem(itemId: string, record: string, createdOffset: string, expiresAt = ""): StoredItem {
  const first = record.indexOf("\n");
  const second = record.indexOf("\n", first + 1);
  const item: StoredItem = {
    itemId,
    revision: Number(record.slice(0, first)),
    createdOffset: Number(createdOffset),
    updatedAtMs: Number(record.slice(first + 1, second)),
    data: JSON.parse(record.slice(second + 1)) as JsonValue,
  };
  if (expiresAt !== "") item.expiresAtMs = Number(expiresAt);
  return item;
}

/** A remembered request's record (see commit.lua). */
export function decodeStoredRequest(requestId: string, record: string): StoredRequest {
  const first = record.indexOf("\n");
  const second = record.indexOf("\n", first + 1);
  const third = record.indexOf("\n", second + 1);
  return {
    requestId,
    offset: Number(record.slice(0, first)),
    expiresAtMs: Number(record.slice(first + 1, second)),
    fingerprint: record.slice(second + 1, third),
    response: record.slice(third + 1),
  };
}

/** Decodes a change or event message of one group. */
export function decodeMessage(streamName: string, groupId: string, text: string): GroupMessage {
  const lines = text.split("\n");
  if (lines[0] === "c") return decodeChange(streamName, groupId, lines);
  const event: GroupEvent = {
    kind: "event",
    streamName,
    groupId,
    offset: Number(lines[1]),
    type: JSON.parse(lines[2]) as string,
    timestampMs: Number(lines[3]),
    itemId: lines[4] === "" ? undefined : (JSON.parse(lines[4]) as string),
    data: JSON.parse(lines[5]) as JsonValue,
  };
  return event;
}

/** Decodes a change message, e.g. one read from the history. */
export function decodeChangeMessage(streamName: string, groupId: string, text: string): ItemChange {
  return decodeChange(streamName, groupId, text.split("\n"));
}

/**
 * A message of an earlier version (still in a group's history, or published by an
 * instance not yet upgraded) has no old updated_at and no created offset. The first is
 * then undefined, as the port allows. The second is exact for a create (its own offset);
 * for an update or a delete it is unknown and decodes as 0, "older than any page
 * cursor": a reader then takes the change as one to an item it has already read and
 * passes it on, which at worst repeats what a later page would show, where a guess
 * too high could hide a change to an item the reader already sent.
 */
function decodeChange(streamName: string, groupId: string, lines: string[]): ItemChange {
  const type = lines[2] as ChangeType;
  const data = JSON.parse(lines[6]) as JsonValue;
  const offset = Number(lines[1]);
  const oldUpdatedAt = lines[8];
  const createdOffset = lines[9];
  const change: ItemChange = {
    kind: "change",
    streamName,
    groupId,
    type,
    offset,
    revision: Number(lines[3]),
    timestampMs: Number(lines[4]),
    itemId: JSON.parse(lines[5]) as string,
    data,
    oldValue: type === "delete" ? data : lines[7] === "" ? undefined : (JSON.parse(lines[7]) as JsonValue),
    oldUpdatedAtMs: oldUpdatedAt === undefined || oldUpdatedAt === "" ? undefined : Number(oldUpdatedAt),
    createdOffset: createdOffset !== undefined ? Number(createdOffset) : type === "create" ? offset : 0,
    ...(lines.length > 10 && type === "update" ? decodeOps(lines[10]) : {}),
  };
  if (type === "delete" && lines[10] === "1") change.expired = true;
  return change;
}

/** An update's ops line; one that does not decode (a later version's) leaves the change whole, as it was before ops. */
function decodeOps(line: string): { ops?: UpdateOp[] } {
  const ops = updateOpsFromJson(JSON.parse(line) as JsonValue);
  return ops ? { ops } : {};
}

/** The event line for the publish-event script: everything but the offset, which Redis stamps. */
export function encodeEventFields(event: Omit<GroupEvent, "kind" | "offset" | "streamName" | "groupId">): string[] {
  return [
    JSON.stringify(event.type),
    String(event.timestampMs),
    event.itemId === undefined ? "" : JSON.stringify(event.itemId),
    JSON.stringify(event.data),
  ];
}
