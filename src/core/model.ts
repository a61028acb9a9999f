import type { JsonValue } from "./json.js";

/** An item as an adapter stores it. */
export interface StoredItem {
  itemId: string;
  data: JsonValue;
  /** 1 on creation, +1 on every write. */
  revision: number;
  /**
   * The group offset of the change that created the item. Revisions start again at 1
   * after a delete and re-create; this does not, so with `revision` it names one state
   * of one incarnation of the item.
   */
  createdOffset: number;
  updatedAtMs: number;
}

export type ChangeType = "create" | "update" | "delete";

/** A stored change of one item, as kept in history and delivered to watchers. */
export interface ItemChange {
  kind: "change";
  streamName: string;
  groupId: string;
  type: ChangeType;
  itemId: string;
  /** The new value; for a delete, the removed value. */
  data: JsonValue;
  /** The value before the change; undefined for a create. */
  oldValue: JsonValue | undefined;
  /** The item's revision after the change (for a delete, the revision it had). */
  revision: number;
  /** The group offset of this change. */
  offset: number;
  timestampMs: number;
}

/** A transient event (Send): delivered to watchers, never stored, does not advance the offset. */
export interface GroupEvent {
  kind: "event";
  streamName: string;
  groupId: string;
  type: string;
  itemId: string | undefined;
  data: JsonValue;
  /** The group offset when the event was sent. */
  offset: number;
  timestampMs: number;
}

export type GroupMessage = ItemChange | GroupEvent;

export interface GroupSnapshot {
  items: StoredItem[];
  /** The group offset this snapshot reflects. */
  offset: number;
}

export interface StreamGroups {
  streamName: string;
  groups: string[];
}
