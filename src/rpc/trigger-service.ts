import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { FunctionsRuntime, TriggerInfo } from "../functions/functions-runtime.js";
import type { FunctionKind as CoreFunctionKind } from "../functions/types.js";
import type { TriggerConfig as CoreTriggerConfig } from "../core/registrations.js";
import {
  FunctionInfoSchema,
  FunctionKind,
  ListFunctionsResponseSchema,
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
      guard(async () => create(ListTriggersResponseSchema, { triggers: runtime.listTriggers().map(triggerToProto) })),
  };
}

function configFromProto(config: TriggerConfig | undefined): CoreTriggerConfig {
  return {
    streamName: config?.streamName,
    groupId: config?.groupId,
    itemId: config?.itemId,
    conditionFunctionId: config?.conditionFunctionId,
  };
}

function triggerToProto(trigger: TriggerInfo): Trigger {
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
    },
    stats: {
      calls: BigInt(stats.calls),
      failures: BigInt(stats.failures),
      timeouts: BigInt(stats.timeouts),
      skipped: BigInt(stats.skipped),
      dropped: BigInt(stats.dropped),
    },
  });
}
