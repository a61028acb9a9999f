import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { FunctionsRuntime, TriggerLoad } from "../functions/functions-runtime.js";
import type { PendingCall } from "../core/outbox.js";
import { streamTriggerPayload } from "../functions/trigger-payloads.js";
import { valueToProto } from "./proto-convert.js";
import type { FunctionKind as CoreFunctionKind } from "../functions/types.js";
import type { TriggerConfig as CoreTriggerConfig } from "../core/registrations.js";
import {
  FunctionInfoSchema,
  FunctionKind,
  ListFunctionsResponseSchema,
  DeadLetterSchema,
  ListDeadLettersResponseSchema,
  ReplayTriggerResponseSchema,
  RetryDeadLettersResponseSchema,
  TriggerDelivery,
  type DeadLetter,
  ListTriggersResponseSchema,
  RegisterFunctionResponseSchema,
  RegisterTriggerResponseSchema,
  TriggerSchema,
  TriggerService,
  UnregisterFunctionResponseSchema,
  UnregisterTriggerResponseSchema,
  type Trigger,
  type TriggerConfig,
} from "../../gen/iii/stream/v1/triggers_pb.js";
import { guard } from "./connect-errors.js";

const FUNCTION_KINDS: Record<CoreFunctionKind, FunctionKind> = {
  "in-process": FunctionKind.IN_PROCESS,
  remote: FunctionKind.REMOTE,
  worker: FunctionKind.WORKER,
};

/** Registration of functions and triggers over Connect, gRPC and gRPC-Web. */
export function triggerService(runtime: FunctionsRuntime): ServiceImpl<typeof TriggerService> {
  return {
    registerFunction: (req) =>
      guard(async () => {
        await runtime.registerRemoteFunction({ functionId: req.functionId, url: req.url });
        return create(RegisterFunctionResponseSchema);
      }),

    unregisterFunction: (req) =>
      guard(async () => create(UnregisterFunctionResponseSchema, { found: await runtime.unregisterFunction(req.functionId) })),

    listFunctions: () =>
      guard(async () =>
        create(ListFunctionsResponseSchema, {
          functions: runtime.listFunctions().map((f) =>
            create(FunctionInfoSchema, { functionId: f.functionId, kind: FUNCTION_KINDS[f.kind], url: f.url ?? "" }),
          ),
        }),
      ),

    registerTrigger: (req) =>
      guard(async () => {
        const triggerId = await runtime.registerTrigger({
          triggerId: req.triggerId,
          type: req.type,
          functionId: req.functionId,
          config: configFromProto(req.config),
        });
        return create(RegisterTriggerResponseSchema, { triggerId });
      }),

    unregisterTrigger: (req) =>
      guard(async () => create(UnregisterTriggerResponseSchema, { found: await runtime.unregisterTrigger(req.triggerId) })),

    listTriggers: () =>
      guard(async () => create(ListTriggersResponseSchema, { triggers: (await runtime.listTriggerLoads()).map(triggerToProto) })),

    listDeadLetters: (req) =>
      guard(async () => {
        const page = await runtime.listDeadLetters(req.triggerId, req.pageSize, req.pageToken);
        return create(ListDeadLettersResponseSchema, { deadLetters: page.deadLetters.map(deadLetterToProto), nextPageToken: page.nextPageToken });
      }),

    retryDeadLetters: (req) =>
      guard(async () => create(RetryDeadLettersResponseSchema, { retried: await runtime.retryDeadLetters(req.triggerId, req.deliveryIds) })),

    replayTrigger: (req) =>
      guard(async () =>
        create(ReplayTriggerResponseSchema, { scheduled: await runtime.replayTrigger(req.triggerId, req.groupId, Number(req.fromOffset)) }),
      ),
  };
}

const DELIVERIES: Record<TriggerDelivery, CoreTriggerConfig["delivery"]> = {
  [TriggerDelivery.UNSPECIFIED]: undefined,
  [TriggerDelivery.AT_MOST_ONCE]: "at_most_once",
  [TriggerDelivery.AT_LEAST_ONCE]: "at_least_once",
};

function deadLetterToProto(call: PendingCall): DeadLetter {
  const { change } = call;
  return create(DeadLetterSchema, {
    deliveryId: call.deliveryId,
    triggerId: call.triggerId,
    streamName: change.streamName,
    groupId: change.groupId,
    itemId: change.itemId,
    offset: BigInt(change.offset),
    attempts: call.attempts,
    lastError: call.lastError,
    payload: valueToProto({ ...streamTriggerPayload(change), delivery_id: call.deliveryId }),
  });
}

function configFromProto(config: TriggerConfig | undefined): CoreTriggerConfig {
  return {
    streamName: config?.streamName,
    groupId: config?.groupId,
    itemId: config?.itemId,
    conditionFunctionId: config?.conditionFunctionId,
    // An unknown enum number stays a number, which checkTrigger refuses with a clear message.
    delivery: config === undefined ? undefined : config.delivery in DELIVERIES ? DELIVERIES[config.delivery] : (String(config.delivery) as "at_most_once"),
    maxAttempts: config?.maxAttempts,
    retryInitialMs: config?.retryInitialMs,
    retryMaxMs: config?.retryMaxMs,
  };
}

function triggerToProto(trigger: TriggerLoad): Trigger {
  const { stats, config } = trigger;
  return create(TriggerSchema, {
    triggerId: trigger.triggerId,
    type: trigger.type,
    functionId: trigger.functionId,
    config: {
      streamName: config.streamName ?? "",
      groupId: config.groupId ?? "",
      itemId: config.itemId ?? "",
      conditionFunctionId: config.conditionFunctionId ?? "",
      delivery: config.delivery === "at_least_once" ? TriggerDelivery.AT_LEAST_ONCE : TriggerDelivery.AT_MOST_ONCE,
      maxAttempts: config.maxAttempts ?? 0,
      retryInitialMs: config.retryInitialMs ?? 0,
      retryMaxMs: config.retryMaxMs ?? 0,
    },
    lag: BigInt(trigger.lag),
    deadLetters: BigInt(trigger.deadLetters),
    stats: {
      calls: BigInt(stats.calls),
      failures: BigInt(stats.failures),
      timeouts: BigInt(stats.timeouts),
      skipped: BigInt(stats.skipped),
      dropped: BigInt(stats.dropped),
    },
  });
}
