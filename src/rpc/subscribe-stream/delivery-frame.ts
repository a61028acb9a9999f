import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Delivery, type SubscriptionMessage } from "../../core/delivery.js";
import { MESSAGE_OVERHEAD_BYTES } from "../../core/encoded-size.js";
import { updateOpsToJson } from "../../core/update-ops-json.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../../gen/iii/stream/v1/stream_pb.js";
import { envelope, textEnvelope } from "./envelope.js";
import { changeHeader, toSubscribeResponse } from "./subscribe-response.js";
import { updateOpsToProto } from "../proto-convert.js";

/*
 * A data message is enveloped the same way in gRPC, gRPC-Web and Connect (flags 0), so
 * the complete frame depends on the serialization alone: every subscriber of a message
 * shares one binary frame and one JSON frame, whatever protocol it speaks.
 */
const RESPONSE = Delivery.format<SubscribeResponse>("subscribe-response", toSubscribeResponse);
const BINARY_FRAME = Delivery.format<Buffer>("subscribe-frame+proto", binaryFrame);
const JSON_FRAME = Delivery.format<Buffer>("subscribe-frame+json", jsonFrame);

/*
 * The same for subscribers that asked for deltas: an update made by ops goes out with the
 * ops instead of the value when they are smaller (null: it goes out whole, as the frames
 * above, which are then shared with everyone else).
 */
const DELTA_RESPONSE = Delivery.format<SubscribeResponse | null>("subscribe-response+delta", deltaResponse);
const DELTA_BINARY_FRAME = Delivery.format<Buffer>("subscribe-frame+proto+delta", (_message, delivery) => {
  const delta = delivery.encoded(DELTA_RESPONSE);
  return delta === null ? delivery.encoded(BINARY_FRAME) : envelope(0, toBinary(SubscribeResponseSchema, delta));
});
const DELTA_JSON_FRAME = Delivery.format<Buffer>("subscribe-frame+json+delta", (_message, delivery) => {
  const delta = delivery.encoded(DELTA_RESPONSE);
  return delta === null ? delivery.encoded(JSON_FRAME) : textEnvelope(0, toJsonString(SubscribeResponseSchema, delta));
});

/** The enveloped `SubscribeResponse` of a delivery, encoded on first use and then shared. */
export function deliveryFrame(delivery: Delivery, binary: boolean, deltas = false): Buffer {
  // Only an update made by ops can differ for a delta subscriber: everything else takes the common frame at once.
  if (deltas && delivery.message.kind === "change" && delivery.message.ops !== undefined) {
    return delivery.encoded(binary ? DELTA_BINARY_FRAME : DELTA_JSON_FRAME);
  }
  return delivery.encoded(binary ? BINARY_FRAME : JSON_FRAME);
}

function response(delivery: Delivery): SubscribeResponse {
  return delivery.encoded(RESPONSE);
}

function binaryFrame(_message: SubscriptionMessage, delivery: Delivery): Buffer {
  return envelope(0, toBinary(SubscribeResponseSchema, response(delivery)));
}

/** The proto3 JSON mapping, as Connect writes it (protobuf-es `toJsonString`, default options). */
function jsonFrame(_message: SubscriptionMessage, delivery: Delivery): Buffer {
  return textEnvelope(0, toJsonString(SubscribeResponseSchema, response(delivery)));
}

/**
 * The change with its ops and without its value, or null when the ops are not smaller.
 * Both sizes are the estimates of encoded-size.ts: the value's is the one the delivery
 * measured already for the subscriber queues, so a large value is not serialised again.
 */
function deltaResponse(message: SubscriptionMessage, delivery: Delivery): SubscribeResponse | null {
  if (message.kind !== "change" || message.type !== "update" || message.ops === undefined) return null;
  const opsBytes = JSON.stringify(updateOpsToJson(message.ops)).length;
  if (opsBytes + message.itemId.length + MESSAGE_OVERHEAD_BYTES >= delivery.size) return null;
  return create(SubscribeResponseSchema, { message: { case: "change", value: { ...changeHeader(message), ops: updateOpsToProto(message.ops) } } });
}
