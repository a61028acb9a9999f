import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Delivery, SubscriptionMessage } from "../core/delivery.js";
import type { StreamEngine } from "../core/stream-engine.js";
import {
  DeleteResponseSchema,
  GetResponseSchema,
  ListAllResponseSchema,
  ListGroupsResponseSchema,
  ListResponseSchema,
  SendResponseSchema,
  SetResponseSchema,
  StreamInfoSchema,
  StreamService,
  SubscribeResponseSchema,
  UpdateErrorSchema,
  UpdateResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/iii/stream/v1/stream_pb.js";
import { toConnectError } from "./connect-errors.js";
import { cutStreamIfStalled } from "./stalled-stream.js";
import { SUBSCRIBER_CONTEXT } from "./subscriber-auth-interceptor.js";
import { CHANGE_TYPES, countFromProto, itemToProto, updateOpsFromProto, valueFromProto, valueToProto } from "./proto-convert.js";

/** Reports a core error with its Connect code. */
async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toConnectError(error);
  }
}

export function streamService(engine: StreamEngine): ServiceImpl<typeof StreamService> {
  return {
    set: (req) =>
      guard(async () => {
        const data = valueFromProto("data", req.data, true);
        const result = await engine.set(req, data, countFromProto("if_revision", req.ifRevision));
        return create(SetResponseSchema, {
          oldValue: valueToProto(result.oldValue),
          newValue: valueToProto(result.newValue),
          revision: BigInt(result.revision),
          offset: BigInt(result.offset),
        });
      }),

    get: (req) =>
      guard(async () => {
        const item = await engine.get(req);
        return create(GetResponseSchema, { item: item && itemToProto(item) });
      }),

    delete: (req) =>
      guard(async () => {
        const result = await engine.delete(req, countFromProto("if_revision", req.ifRevision));
        return create(DeleteResponseSchema, { oldValue: valueToProto(result.oldValue), offset: BigInt(result.offset) });
      }),

    update: (req) =>
      guard(async () => {
        const result = await engine.update(req, updateOpsFromProto(req.ops), countFromProto("if_revision", req.ifRevision));
        return create(UpdateResponseSchema, {
          oldValue: valueToProto(result.oldValue),
          newValue: valueToProto(result.newValue),
          errors: result.errors.map((e) => create(UpdateErrorSchema, e)),
          revision: BigInt(result.revision),
          offset: BigInt(result.offset),
        });
      }),

    send: (req) =>
      guard(async () => {
        const data = valueFromProto("data", req.data, false);
        await engine.send(req, req.type, data);
        return create(SendResponseSchema);
      }),

    list: (req) =>
      guard(async () => {
        const items = await engine.list(req.streamName, req.groupId);
        return create(ListResponseSchema, { items: items.map(itemToProto) });
      }),

    listGroups: (req) =>
      guard(async () => create(ListGroupsResponseSchema, { groups: await engine.listGroups(req.streamName) })),

    listAll: () =>
      guard(async () => {
        const streams = await engine.listAll();
        return create(ListAllResponseSchema, {
          streams: streams.map((s) => create(StreamInfoSchema, s)),
          count: streams.length,
        });
      }),

    subscribe: (req, context) => subscribe(engine, req, context),
  };
}

async function* subscribe(
  engine: StreamEngine,
  req: SubscribeRequest,
  context: HandlerContext,
): AsyncGenerator<SubscribeResponse> {
  let subscription;
  try {
    subscription = await engine.subscribe(
      {
        streamName: req.streamName,
        groupId: req.groupId,
        itemId: req.itemId,
        fromOffset: countFromProto("from_offset", req.fromOffset),
      },
      // What the auth function said about this subscriber, for the join and leave triggers.
      { context: context.values.get(SUBSCRIBER_CONTEXT) },
    );
  } catch (error) {
    throw toConnectError(error);
  }
  // A client that goes away must release its subscription at once, even while
  // the generator waits for the next message.
  const release = () => subscription.end();
  context.signal.addEventListener("abort", release, { once: true });
  // A failure (e.g. the queue overflowed) reaches the client at the next pull; if no
  // pull comes because the client stopped reading, the stream is cut instead.
  let keepStream: (() => void) | undefined;
  subscription.onEnd((error) => {
    if (error) keepStream = cutStreamIfStalled(context, error);
  });
  try {
    for await (const delivery of subscription) yield encodeDelivery(delivery);
  } catch (error) {
    throw toConnectError(error);
  } finally {
    keepStream?.();
    context.signal.removeEventListener("abort", release);
    subscription.end();
  }
}

/** Built once per message and shared by every subscriber of the group. */
function encodeDelivery(delivery: Delivery): SubscribeResponse {
  return delivery.encoded("proto", toSubscribeResponse);
}

function toSubscribeResponse(message: SubscriptionMessage): SubscribeResponse {
  switch (message.kind) {
    case "snapshot":
      return create(SubscribeResponseSchema, {
        message: { case: "snapshot", value: { items: message.items.map(itemToProto), offset: BigInt(message.offset) } },
      });
    case "change":
      return create(SubscribeResponseSchema, {
        message: {
          case: "change",
          value: {
            type: CHANGE_TYPES[message.type],
            itemId: message.itemId,
            data: valueToProto(message.data),
            revision: BigInt(message.revision),
            offset: BigInt(message.offset),
            timestampMs: BigInt(message.timestampMs),
          },
        },
      });
    case "event":
      return create(SubscribeResponseSchema, {
        message: {
          case: "event",
          value: {
            type: message.type,
            itemId: message.itemId,
            data: valueToProto(message.data),
            offset: BigInt(message.offset),
            timestampMs: BigInt(message.timestampMs),
          },
        },
      });
    case "heartbeat":
      return create(SubscribeResponseSchema, { message: { case: "heartbeat", value: { offset: BigInt(message.offset) } } });
  }
}
