import type { ItemStore } from "../../src/index.js";
import type { FillPlan } from "./scale-jobs.js";

/**
 * Commits in flight at once. The file adapter commits everything queued in one event-loop
 * turn as one transaction, and ioredis pipelines concurrent scripts, so a wide window
 * fills a store hundreds of times faster than Sets over RPC would; 2,000 keeps the
 * promises of one window small next to what is stored.
 */
const IN_FLIGHT = 2000;

/** Group names sort in numeric order (byte order of zero-padded digits). */
export function groupName(prefix: string, index: number): string {
  return `${prefix}${String(index).padStart(7, "0")}`;
}

export function itemName(index: number): string {
  return `i-${String(index).padStart(7, "0")}`;
}

/** About 60 bytes of JSON: the shape of the fan-out scenarios' writes. */
export function itemValue(index: number): { i: number; text: string; tags: string[] } {
  return { i: index, text: "a benchmark item", tags: ["a", "b"] };
}

/**
 * Creates the plan's items through the store's port, as the engine would commit Sets
 * that create them (revision 0 expected). Throws on the first refused write: a filled
 * store that is not what the plan says would mislabel every figure measured on it.
 */
export async function fillThroughPort(store: Pick<ItemStore, "commit">, plan: FillPlan): Promise<void> {
  const total = plan.groups * plan.itemsPerGroup;
  const timestampMs = Date.now();
  for (let next = 0; next < total; ) {
    const window = [];
    for (const end = Math.min(total, next + IN_FLIGHT); next < end; next++) {
      const item = next % plan.itemsPerGroup;
      window.push(
        store.commit({
          streamName: plan.streamName,
          groupId: groupName(plan.groupPrefix, plan.firstGroup + Math.floor(next / plan.itemsPerGroup)),
          itemId: itemName(item),
          expectedRevision: 0,
          value: itemValue(item),
          timestampMs,
        }),
      );
    }
    for (const result of await Promise.all(window)) {
      if (!result.ok) throw new Error(`fill refused: an item already existed (revision ${result.currentRevision}); fill into fresh groups only`);
    }
  }
}
