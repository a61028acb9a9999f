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
  return {
    triggerId: input.triggerId === undefined ? randomUUID() : checkName("trigger_id", input.triggerId),
    type: input.type,
    functionId: checkName("function_id", input.functionId),
    config,
  };
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
 */
export class TriggerRegistry {
  private byId = new Map<string, TriggerRecord>();
  private index = new Map<TriggerType, Map<string, TriggerRecord[]>>();

  /** Replaces every trigger with the stored ones. */
  replaceAll(records: readonly TriggerRecord[]): void {
    const sorted = [...records].sort((a, b) => (a.triggerId < b.triggerId ? -1 : a.triggerId > b.triggerId ? 1 : 0));
    const byId = new Map<string, TriggerRecord>();
    const index = new Map<TriggerType, Map<string, TriggerRecord[]>>();
    for (const record of sorted) {
      byId.set(record.triggerId, record);
      let byStream = index.get(record.type);
      if (!byStream) index.set(record.type, (byStream = new Map()));
      const stream = record.config.streamName ?? ANY_STREAM;
      const list = byStream.get(stream);
      if (list) list.push(record);
      else byStream.set(stream, [record]);
    }
    this.byId = byId;
    this.index = index;
  }

  /** The triggers of a type that accept the target. */
  matching(type: TriggerType, target: TriggerTarget): TriggerRecord[] {
    const byStream = this.index.get(type);
    if (!byStream) return [];
    const candidates = [...(byStream.get(target.streamName) ?? []), ...(byStream.get(ANY_STREAM) ?? [])];
    return candidates.filter((trigger) => accepts(trigger.config, target));
  }

  /** Every trigger, ordered by id. */
  list(): TriggerRecord[] {
    return [...this.byId.values()];
  }
}
