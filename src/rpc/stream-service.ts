import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { StreamEngine } from "../core/engine.js";
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
  UpdateErrorSchema,
  UpdateResponseSchema,
} from "../../gen/iii/stream/v1/stream_pb.js";
import { guard, toConnectError } from "./connect-errors.js";
import { countFromProto, itemToProto, ttlFromProto, updateOpsFromProto, valueFromProto, valueToProto } from "./proto-convert.js";

/**
 * Every StreamService method but Subscribe, which the server serves itself
 * (rpc/subscribe-stream) and Connect only lists.
 */
export function streamService(engine: StreamEngine): Omit<ServiceImpl<typeof StreamService>, "subscribe"> {
  return {
    // The busiest call, so without guard's extra closure and await.
    set: async (req) => {
      try {
        const data = valueFromProto("data", req.data, true);
        const result = await engine.set(req, data, countFromProto("if_revision", req.ifRevision), { ttlMs: ttlFromProto(req.ttlMs) });
        return create(SetResponseSchema, {
          oldValue: valueToProto(result.oldValue),
          // The stored value is the request's, converted: sending the request's own
          // message back saves converting it again.
          newValue: req.data,
          revision: BigInt(result.revision),
          offset: BigInt(result.offset),
        });
      } catch (error) {
        throw toConnectError(error);
      }
    },

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
        const result = await engine.update(req, updateOpsFromProto(req.ops), countFromProto("if_revision", req.ifRevision), { ttlMs: ttlFromProto(req.ttlMs) });
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
        const page = await engine.list(req.streamName, req.groupId, req);
        return create(ListResponseSchema, { items: page.entries.map(itemToProto), nextPageToken: page.nextPageToken });
      }),

    listGroups: (req) =>
      guard(async () => {
        const page = await engine.listGroups(req.streamName, req);
        return create(ListGroupsResponseSchema, { groups: page.entries, nextPageToken: page.nextPageToken });
      }),

    listAll: (req) =>
      guard(async () => {
        const page = await engine.listAll(req);
        return create(ListAllResponseSchema, {
          streams: page.entries.map((s) => create(StreamInfoSchema, s)),
          count: page.entries.length,
          nextPageToken: page.nextPageToken,
        });
      }),
  };
}
