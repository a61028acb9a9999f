import type { ItemChange } from "../../core/model.js";
import { DEFAULT_MAX_OUTBOX, outboxFullError, type OutboxCounts, type PendingCall, type ScheduledCall, type TriggerOutbox } from "../../core/outbox.js";
import { deliveryIdOf } from "../../core/outbox.js";

/** One trigger's calls: every pending one by entry id, those not taken yet in order, and the dead letters. */
interface Box {
  pending: Map<number, PendingCall>;
  untaken: PendingCall[];
  /** Index of the first untaken call in `untaken` (shifting an array of 100,000 per call would be quadratic). */
  head: number;
  dead: Map<number, PendingCall>;
}

/**
 * The outbox of the memory store: in this process only, like its items, so it survives
 * failing functions but not a restart. Single process, so this instance owns every trigger.
 */
export class MemoryOutbox implements TriggerOutbox {
  private readonly boxes = new Map<string, Box>();
  private nextEntry = 1;

  constructor(readonly maxPending: number = DEFAULT_MAX_OUTBOX) {}

  /** The trigger whose outbox cannot take `additions` more calls, if any: checked before a commit changes anything. */
  full(additions: ReadonlyMap<string, number>): string | undefined {
    for (const [id, count] of additions) if ((this.boxes.get(id)?.pending.size ?? 0) + count > this.maxPending) return id;
    return undefined;
  }

  /** Records one call per trigger for a committed change (inside the store's commit). */
  record(triggerIds: readonly string[], change: ItemChange): void {
    for (const triggerId of triggerIds) this.add(triggerId, deliveryIdOf(triggerId, change), change);
  }

  async take(triggerId: string, limit: number): Promise<PendingCall[]> {
    const box = this.boxes.get(triggerId);
    if (!box) return [];
    const end = Math.min(box.untaken.length, box.head + limit);
    const taken = box.untaken.slice(box.head, end);
    box.head = end;
    if (box.head > 1024 && box.head * 2 > box.untaken.length) {
      box.untaken = box.untaken.slice(box.head);
      box.head = 0;
    }
    return taken.map((call) => ({ ...call }));
  }

  async complete(call: PendingCall): Promise<void> {
    this.boxes.get(call.triggerId)?.pending.delete(Number(call.entryId));
  }

  async retryLater(call: PendingCall, error: string): Promise<void> {
    const stored = this.boxes.get(call.triggerId)?.pending.get(Number(call.entryId));
    if (stored) Object.assign(stored, { attempts: call.attempts, lastError: error });
  }

  async bury(call: PendingCall, error: string): Promise<void> {
    const box = this.boxes.get(call.triggerId);
    if (!box?.pending.delete(Number(call.entryId))) return;
    box.dead.set(Number(call.entryId), { ...call, lastError: error });
  }

  async deadLetters(triggerId: string, afterEntryId: string, limit: number): Promise<PendingCall[]> {
    const after = afterEntryId === "" ? 0 : Number(afterEntryId);
    const page: PendingCall[] = [];
    for (const [entry, call] of this.boxes.get(triggerId)?.dead ?? []) {
      if (entry <= after) continue;
      page.push({ ...call });
      if (page.length >= limit) break;
    }
    return page;
  }

  async reviveDeadLetters(triggerId: string, deliveryIds: readonly string[]): Promise<number> {
    const box = this.boxes.get(triggerId);
    if (!box) return 0;
    const wanted = deliveryIds.length === 0 ? undefined : new Set(deliveryIds);
    const revived = [...box.dead].filter(([, call]) => wanted === undefined || wanted.has(call.deliveryId));
    for (const [entry, call] of revived) {
      box.dead.delete(entry);
      this.add(triggerId, call.deliveryId, call.change);
    }
    return revived.length;
  }

  async schedule(triggerId: string, calls: readonly ScheduledCall[]): Promise<number> {
    const pending = this.boxes.get(triggerId)?.pending.size ?? 0;
    if (pending + calls.length > this.maxPending) throw outboxFullError(triggerId);
    for (const call of calls) this.add(triggerId, call.deliveryId, call.change);
    return calls.length;
  }

  async counts(triggerId: string): Promise<OutboxCounts> {
    const box = this.boxes.get(triggerId);
    return { pending: box?.pending.size ?? 0, dead: box?.dead.size ?? 0 };
  }

  async forget(triggerId: string): Promise<void> {
    this.boxes.delete(triggerId);
  }

  owns(): boolean {
    return true;
  }

  async release(triggerId: string): Promise<void> {
    const box = this.boxes.get(triggerId);
    if (!box) return;
    box.untaken = [...box.pending.values()];
    box.head = 0;
  }

  private add(triggerId: string, deliveryId: string, change: ItemChange): void {
    let box = this.boxes.get(triggerId);
    if (!box) this.boxes.set(triggerId, (box = { pending: new Map(), untaken: [], head: 0, dead: new Map() }));
    const entry = this.nextEntry++;
    const call: PendingCall = { triggerId, entryId: String(entry), deliveryId, change, attempts: 0, lastError: "" };
    box.pending.set(entry, call);
    box.untaken.push(call);
  }
}
