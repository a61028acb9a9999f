import { randomUUID } from "node:crypto";
import { checkName } from "../core/names.js";
import { invalidArgument } from "../core/errors.js";
import { TRIGGER_TYPES, type TriggerConfig, type TriggerRecord, type TriggerType } from "../core/registrations.js";

/** A trigger as a caller describes it: ids may be missing, filters may be empty strings. */
export interface TriggerInput {
  triggerId?: string;
  type: string;
  functionId: string;
  config?: TriggerConfig;
}

/** What a trigger is matched against: a changed item, or a subscription. */
export interface TriggerTarget {
  streamName: string;
  groupId: string;
  /** Undefined for an event without an item, or a subscription to a whole group. */
  itemId: string | undefined;
}

/**
 * Validates a trigger and normalises it: a missing id is generated, empty filters are
 * dropped (empty means "any"). A `stream` trigger without `stream_name` is refused
 * here, where the reference crashed.
 */
export function checkTrigger(input: TriggerInput): TriggerRecord {
  if (!isTriggerType(input.type)) {
    throw invalidArgument(`type must be one of ${TRIGGER_TYPES.join(", ")}; got "${input.type}"`);
  }
  const config: TriggerConfig = {};
  const raw = input.config ?? {};
  if (raw.streamName) config.streamName = checkName("config.stream_name", raw.streamName);
  if (raw.groupId) config.groupId = checkName("config.group_id", raw.groupId);
  if (raw.itemId) config.itemId = checkName("config.item_id", raw.itemId);
  if (raw.conditionFunctionId) config.conditionFunctionId = checkName("config.condition_function_id", raw.conditionFunctionId);
  if (input.type === "stream" && !config.streamName) throw invalidArgument("a stream trigger needs config.stream_name");
  checkDelivery(input.type, raw, config);
  return {
    triggerId: input.triggerId === undefined ? randomUUID() : checkName("trigger_id", input.triggerId),
    type: input.type,
    functionId: checkName("function_id", input.functionId),
    config,
  };
}

/** Longest pause a retry setting may ask for: one day. */
const MAX_RETRY_MS = 86_400_000;

/**
 * The delivery settings, copied into `config` when set. Zero means the default, as in the
 * proto, so it is dropped; the settings of at least once need that mode and a stream trigger.
 */
function checkDelivery(type: string, raw: TriggerConfig, config: TriggerConfig): void {
  const delivery = raw.delivery;
  if (delivery !== undefined && delivery !== "at_most_once" && delivery !== "at_least_once") {
    throw invalidArgument(`config.delivery must be at_most_once or at_least_once; got "${String(delivery)}"`);
  }
  if (delivery === "at_least_once") {
    if (type !== "stream") throw invalidArgument(`only stream triggers can be delivered at least once; this one is ${type}`);
    config.delivery = delivery;
  }
  const settings = [
    ["max_attempts", "maxAttempts", 1_000_000],
    ["retry_initial_ms", "retryInitialMs", MAX_RETRY_MS],
    ["retry_max_ms", "retryMaxMs", MAX_RETRY_MS],
  ] as const;
  for (const [field, key, max] of settings) {
    const value = raw[key];
    if (value === undefined || value === 0) continue;
    if (!(Number.isSafeInteger(value) && value > 0 && value <= max)) {
      throw invalidArgument(`config.${field} must be a whole number from 1 to ${max} (0 for the default); got ${value}`);
    }
    if (config.delivery !== "at_least_once") throw invalidArgument(`config.${field} applies to at_least_once triggers only`);
    config[key] = value;
  }
  if (config.retryInitialMs !== undefined && config.retryMaxMs !== undefined && config.retryInitialMs > config.retryMaxMs) {
    throw invalidArgument(`config.retry_initial_ms (${config.retryInitialMs}) must not exceed config.retry_max_ms (${config.retryMaxMs})`);
  }
}

function isTriggerType(type: string): type is TriggerType {
  return (TRIGGER_TYPES as readonly string[]).includes(type);
}

/** Whether a trigger's filters accept a target. */
function accepts(config: TriggerConfig, target: TriggerTarget): boolean {
  return (
    (config.streamName === undefined || config.streamName === target.streamName) &&
    (config.groupId === undefined || config.groupId === target.groupId) &&
    (config.itemId === undefined || config.itemId === target.itemId)
  );
}

/** Key for triggers without a stream filter (a real stream name is never empty). */
const ANY_STREAM = "";

/**
 * The current triggers, indexed by type and stream name so that a write only looks at
 * the triggers of its own stream. One entry per id: registering an id again replaces
 * it, so a re-registered trigger fires once per event, not twice.
 *
 * Two layers: the shared triggers (stored, and those of other instances' workers),
 * replaced as a whole when they are reloaded, and the triggers of the workers
 * connected here, added and removed one at a time. Every change touches only the
 * records it changes, so a worker that registers n triggers costs O(n) in all, not
 * O(n²) (rebuilding everything on each registration let one connection block the
 * event loop for seconds). A worker's trigger hides a shared one with the same id.
 */
export class TriggerRegistry {
  private shared = new Map<string, TriggerRecord>();
  private readonly workers = new Map<string, TriggerRecord>();
  private readonly index = new Map<TriggerType, Map<string, Map<string, TriggerRecord>>>();

  /** Replaces every shared trigger (stored and the fleet's); the workers' stay. */
  replaceShared(records: readonly TriggerRecord[]): void {
    for (const [triggerId, record] of this.shared) if (!this.workers.has(triggerId)) this.unindex(record);
    const shared = new Map<string, TriggerRecord>();
    for (const record of records) shared.set(record.triggerId, record);
    this.shared = shared;
    for (const [triggerId, record] of shared) if (!this.workers.has(triggerId)) this.indexRecord(record);
  }

  /** Adds a trigger of a worker connected here, or replaces the one with its id. */
  addWorker(record: TriggerRecord): void {
    const hidden = this.workers.get(record.triggerId) ?? this.shared.get(record.triggerId);
    if (hidden) this.unindex(hidden);
    this.workers.set(record.triggerId, record);
    this.indexRecord(record);
  }

  /** Removes a worker's trigger, if `record` is still the one registered under its id. */
  removeWorker(record: TriggerRecord): void {
    if (this.workers.get(record.triggerId) !== record) return;
    this.workers.delete(record.triggerId);
    this.unindex(record);
    const shared = this.shared.get(record.triggerId);
    if (shared) this.indexRecord(shared);
  }

  /** The triggers of the workers connected here. */
  workerTriggers(): TriggerRecord[] {
    return [...this.workers.values()];
  }

  /** The triggers of a type that accept the target. */
  matching(type: TriggerType, target: TriggerTarget): TriggerRecord[] {
    const byStream = this.index.get(type);
    if (!byStream) return [];
    const found: TriggerRecord[] = [];
    for (const stream of [target.streamName, ANY_STREAM]) {
      for (const trigger of byStream.get(stream)?.values() ?? []) if (accepts(trigger.config, target)) found.push(trigger);
    }
    return found;
  }

  /** Every trigger, ordered by id. */
  list(): TriggerRecord[] {
    const all = new Map([...this.shared, ...this.workers]);
    return [...all.values()].sort((a, b) => (a.triggerId < b.triggerId ? -1 : a.triggerId > b.triggerId ? 1 : 0));
  }

  private indexRecord(record: TriggerRecord): void {
    let byStream = this.index.get(record.type);
    if (!byStream) this.index.set(record.type, (byStream = new Map()));
    const stream = record.config.streamName ?? ANY_STREAM;
    let byId = byStream.get(stream);
    if (!byId) byStream.set(stream, (byId = new Map()));
    byId.set(record.triggerId, record);
  }

  private unindex(record: TriggerRecord): void {
    const byStream = this.index.get(record.type);
    const stream = record.config.streamName ?? ANY_STREAM;
    const byId = byStream?.get(stream);
    if (!byStream || !byId || byId.get(record.triggerId) !== record) return;
    byId.delete(record.triggerId);
    if (byId.size === 0) byStream.delete(stream);
  }
}
