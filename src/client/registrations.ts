/** The functions and triggers a server knows, as plain values (TriggerService's List calls). */
import { FunctionKind, TriggerDelivery, type FunctionInfo as WireFunction, type Trigger as WireTrigger } from "../../gen/iii/stream/v1/triggers_pb.js";

export interface FunctionInfo {
  functionId: string;
  /** Where it runs: in the server's process, at a remote URL, or in a connected worker. */
  kind: "in_process" | "remote" | "worker" | "unspecified";
  /** A remote function's URL; empty otherwise. */
  url: string;
}

export interface TriggerInfo {
  triggerId: string;
  /** `stream`, `stream:join`, `stream:leave`, ... */
  type: string;
  functionId: string;
  config: { streamName: string; groupId: string; itemId: string; conditionFunctionId: string };
  /** `at_most_once` (from memory after the write) or `at_least_once` (stored with the change, retried). */
  delivery: "at_most_once" | "at_least_once";
  /**
   * The trigger's counters by name (`calls`, `failures`, `timeouts`, `skipped`, `dropped`,
   * and whatever a newer server adds), as numbers: a client keeps showing what it is sent.
   */
  stats: Record<string, number>;
  /** At least once: calls stored and not yet delivered, over the fleet; at most once: calls waiting in this instance's memory. */
  lag: number;
  /** At least once: calls kept as dead letters; always 0 at most once. */
  deadLetters: number;
}

const KINDS: Record<FunctionKind, FunctionInfo["kind"]> = {
  [FunctionKind.UNSPECIFIED]: "unspecified",
  [FunctionKind.IN_PROCESS]: "in_process",
  [FunctionKind.REMOTE]: "remote",
  [FunctionKind.WORKER]: "worker",
};

export function functionInfo(wire: WireFunction): FunctionInfo {
  return { functionId: wire.functionId, kind: KINDS[wire.kind] ?? "unspecified", url: wire.url };
}

export function triggerInfo(wire: WireTrigger): TriggerInfo {
  const stats: Record<string, number> = {};
  for (const [name, value] of Object.entries(wire.stats ?? {})) {
    if (typeof value === "bigint" || typeof value === "number") stats[name] = Number(value);
  }
  const config = wire.config;
  return {
    triggerId: wire.triggerId,
    type: wire.type,
    functionId: wire.functionId,
    config: { streamName: config?.streamName ?? "", groupId: config?.groupId ?? "", itemId: config?.itemId ?? "", conditionFunctionId: config?.conditionFunctionId ?? "" },
    delivery: config?.delivery === TriggerDelivery.AT_LEAST_ONCE ? "at_least_once" : "at_most_once",
    stats,
    lag: Number(wire.lag),
    deadLetters: Number(wire.deadLetters),
  };
}
