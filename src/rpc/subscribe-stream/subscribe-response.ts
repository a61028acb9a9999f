import { create } from "@bufbuild/protobuf";
import type { SubscriptionMessage } from "../../core/delivery.js";
import type { ItemChange } from "../../core/model.js";
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
          value: { ...changeHeader(message), data: valueToProto(message.data) },
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

/** A change's fields other than its value, shared by whole changes and deltas. */
export function changeHeader(change: ItemChange) {
  return {
    type: CHANGE_TYPES[change.type],
    itemId: change.itemId,
    revision: BigInt(change.revision),
    offset: BigInt(change.offset),
    timestampMs: BigInt(change.timestampMs),
    expired: change.expired === true,
  };
}
