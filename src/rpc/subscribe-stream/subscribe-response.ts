import { create } from "@bufbuild/protobuf";
import type { SubscriptionMessage } from "../../core/delivery.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../../gen/iii/stream/v1/stream_pb.js";
import { CHANGE_TYPES, itemToProto, valueToProto } from "../proto-convert.js";

/** A core subscription message as the public `SubscribeResponse`. */
export function toSubscribeResponse(message: SubscriptionMessage): SubscribeResponse {
  switch (message.kind) {
    case "snapshot":
      return create(SubscribeResponseSchema, {
        message: { case: "snapshot", value: { items: message.items.map(itemToProto), offset: BigInt(message.offset), more: message.more } },
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
            expired: message.expired === true,
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
