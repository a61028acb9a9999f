import { toBinary, toJsonString } from "@bufbuild/protobuf";
import type { Delivery, SubscriptionMessage } from "../../core/delivery.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../../gen/iii/stream/v1/stream_pb.js";
import { envelope, textEnvelope } from "./envelope.js";
import { toSubscribeResponse } from "./subscribe-response.js";

/*
 * A data message is enveloped the same way in gRPC, gRPC-Web and Connect (flags 0), so
 * the complete frame depends on the serialization alone: every subscriber of a message
 * shares one binary frame and one JSON frame, whatever protocol it speaks.
 */
const RESPONSE = "subscribe-response";
const BINARY_FRAME = "subscribe-frame+proto";
const JSON_FRAME = "subscribe-frame+json";

/** The enveloped `SubscribeResponse` of a delivery, encoded on first use and then shared. */
export function deliveryFrame(delivery: Delivery, binary: boolean): Buffer {
  return binary ? delivery.encoded(BINARY_FRAME, binaryFrame) : delivery.encoded(JSON_FRAME, jsonFrame);
}

function response(delivery: Delivery): SubscribeResponse {
  return delivery.encoded(RESPONSE, toSubscribeResponse);
}

function binaryFrame(_message: SubscriptionMessage, delivery: Delivery): Buffer {
  return envelope(0, toBinary(SubscribeResponseSchema, response(delivery)));
}

/** The proto3 JSON mapping, as Connect writes it (protobuf-es `toJsonString`, default options). */
function jsonFrame(_message: SubscriptionMessage, delivery: Delivery): Buffer {
  return textEnvelope(0, toJsonString(SubscribeResponseSchema, response(delivery)));
}
