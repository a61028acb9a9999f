import type { JsonValue } from "../../core/json.js";
import type { ItemChange } from "../../core/model.js";

/**
 * A change as a history row stores it (JSON), without what the row's columns say.
 * Rows written by store format 1 lack `oldUpdatedAtMs` and `createdOffset`.
 */
export interface StoredChange {
  type: ItemChange["type"];
  itemId: string;
  data: JsonValue;
  oldValue?: JsonValue;
  oldUpdatedAtMs?: number;
  createdOffset?: number;
  revision: number;
  timestampMs: number;
  /** An update's ops (see ItemChange.ops) as updateOpsToJson writes them; absent for other changes. */
  ops?: JsonValue[];
  /** Present (true) only on the delete that removed an expired item. */
  expired?: boolean;
}

/**
 * Fills in `createdOffset` for the rows of `changes` written before the field existed,
 * from what the other rows and the items tell. `changes` must be every change of the
 * group from some offset up to now, in order (what changesSince returns).
 *
 * - A create was created by itself; a later change of the item in the list belongs to
 *   the incarnation of the last create or known change before it.
 * - A change of an item that is neither created nor deleted anywhere in the list
 *   belongs to the incarnation that exists now: `currentCreatedOffset`.
 * - What is left (changes up to the first delete in the list, of an incarnation
 *   created before the list starts) cannot be told: 0, which no real offset is.
 *
 * `oldUpdatedAtMs` of such rows stays undefined, as ItemChange allows.
 */
export function fillCreatedOffsets(
  changes: Array<{ offset: number; stored: StoredChange }>,
  currentCreatedOffset: (itemId: string) => number | undefined,
): void {
  const incarnation = new Map<string, number>();
  const createdOrDeleted = new Set<string>();
  for (const { offset, stored } of changes) {
    if (stored.type !== "update") createdOrDeleted.add(stored.itemId);
    if (stored.createdOffset === undefined) {
      stored.createdOffset = stored.type === "create" ? offset : incarnation.get(stored.itemId);
    }
    if (stored.type === "delete") incarnation.delete(stored.itemId);
    else if (stored.createdOffset !== undefined) incarnation.set(stored.itemId, stored.createdOffset);
  }
  for (const { stored } of changes) {
    if (stored.createdOffset !== undefined) continue;
    stored.createdOffset = (createdOrDeleted.has(stored.itemId) ? undefined : currentCreatedOffset(stored.itemId)) ?? 0;
  }
}
