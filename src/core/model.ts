import type { JsonValue } from "./json.js";
import type { UpdateOp } from "./update-ops.js";

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
  /**
   * When the item expires (ms since the Unix epoch); undefined (or 0) for an item that
   * never does. An item whose time has come is never read, even before the engine's
   * sweeper has removed it (see ExpirySweeper).
   */
  expiresAtMs?: number;
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
  /**
   * When the item was last written before this change; undefined for a create (and
   * for changes recorded before this field existed). With `oldValue` and `revision`
   * it tells what the item was just before the change, which a snapshot read while
   * writers run needs (see snapshot-session.ts).
   */
  oldUpdatedAtMs: number | undefined;
  /** The offset that created the changed incarnation of the item (this change's own offset for a create). */
  createdOffset: number;
  /** The item's revision after the change (for a delete, the revision it had). */
  revision: number;
  /** The group offset of this change. */
  offset: number;
  timestampMs: number;
  /**
   * For an update made by update ops: the ops that applied, in order. Applied to
   * `oldValue` they give `data`, so a subscriber that asked for deltas gets them instead
   * of the whole value. Absent for every other change, and for changes recorded before
   * the field existed.
   */
  ops?: readonly UpdateOp[];
  /** Set on the delete that removed an item because its time to live ran out. */
  expired?: boolean;
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

/** A page of a group's items: see ItemStore.readItems. */
export interface ItemPage {
  /** Items whose created offset is above the request's, in created-offset (insertion) order. */
  items: StoredItem[];
  /** The group offset the page reflects: it was read in the same step as the items. */
  offset: number;
  /** Whether the group holds items beyond the last one returned. */
  more: boolean;
}

export interface ItemPageRequest {
  /** Only items created after this offset (their `createdOffset` is greater); 0 for the first page. */
  afterCreatedOffset: number;
  /** Most items in the page, at least 1. */
  maxItems: number;
  /**
   * The page ends with the item that brings its size to this or beyond; the first
   * item always comes, however large. Size is the length of the value's JSON text
   * plus that of the item id: an estimate of the encoded bytes that every adapter
   * can compute without encoding anything.
   */
  maxBytes: number;
}

/** A page of sorted names (groups of a stream, or streams). */
export interface NamePageRequest {
  /** Only names sorting after this one by bytes; undefined for the first page. */
  after: string | undefined;
  /** Most names in the page, at least 1. */
  limit: number;
}
