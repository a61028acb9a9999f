import { toBinary, toJsonString } from "@bufbuild/protobuf";
import { Delivery, type SubscriptionMessage } from "../../core/delivery.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../../gen/iii/stream/v1/stream_pb.js";
import { envelope, textEnvelope } from "./envelope.js";
import { toSubscribeResponse } from "./subscribe-response.js";

/*
 * A data message is enveloped the same way in gRPC, gRPC-Web and Connect (flags 0), so
 * the complete frame depends on the serialization alone: every subscriber of a message
 * shares one binary frame and one JSON frame, whatever protocol it speaks.
 */
const RESPONSE = Delivery.format<SubscribeResponse>("subscribe-response", toSubscribeResponse);
const BINARY_FRAME = Delivery.format<Buffer>("subscribe-frame+proto", binaryFrame);
const JSON_FRAME = Delivery.format<Buffer>("subscribe-frame+json", jsonFrame);

/** The enveloped `SubscribeResponse` of a delivery, encoded on first use and then shared. */
export function deliveryFrame(delivery: Delivery, binary: boolean): Buffer {
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
