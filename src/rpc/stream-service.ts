import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { BatchWriteRequest, StreamEngine } from "../core/engine.js";
import { invalidArgument } from "../core/errors.js";
import {
  BatchResponseSchema,
  BatchResultSchema,
  type BatchWrite,
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
        const result = await engine.set(req, data, countFromProto("if_revision", req.ifRevision), { ttlMs: ttlFromProto(req.ttlMs), requestId: req.requestId });
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
        const result = await engine.delete(req, countFromProto("if_revision", req.ifRevision), { requestId: req.requestId });
        return create(DeleteResponseSchema, { oldValue: valueToProto(result.oldValue), offset: BigInt(result.offset) });
      }),

    update: (req) =>
      guard(async () => {
        const result = await engine.update(req, updateOpsFromProto(req.ops), countFromProto("if_revision", req.ifRevision), {
          ttlMs: ttlFromProto(req.ttlMs),
          requestId: req.requestId,
        });
        return create(UpdateResponseSchema, {
          oldValue: valueToProto(result.oldValue),
          newValue: valueToProto(result.newValue),
          errors: result.errors.map((e) => create(UpdateErrorSchema, e)),
          revision: BigInt(result.revision),
          offset: BigInt(result.offset),
        });
      }),

    batch: (req) =>
      guard(async () => {
        const writes = req.writes.map(batchWriteFromProto);
        const result = await engine.batch(req.streamName, req.groupId, writes, { requestId: req.requestId });
        return create(BatchResponseSchema, {
          results: result.results.map((entry) =>
            create(BatchResultSchema, {
              oldValue: valueToProto(entry.oldValue),
              newValue: valueToProto(entry.newValue),
              revision: BigInt(entry.revision),
              offset: BigInt(entry.offset),
              errors: entry.errors.map((e) => create(UpdateErrorSchema, e)),
            }),
          ),
          firstOffset: BigInt(result.firstOffset),
          lastOffset: BigInt(result.lastOffset),
        });
      }),

    send: (req) =>
      guard(async () => {
        const data = valueFromProto("data", req.data, false);
        await engine.send(req, req.type, data, { requestId: req.requestId });
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

function batchWriteFromProto(write: BatchWrite, index: number): BatchWriteRequest {
  const at = `writes[${index}]`;
  const base = { itemId: write.itemId, ifRevision: countFromProto(`${at}.if_revision`, write.ifRevision), ttlMs: ttlFromProto(write.ttlMs) };
  switch (write.write.case) {
    case "set":
      return { ...base, set: valueFromProto(`${at}.set`, write.write.value, true) };
    case "update":
      return { ...base, update: updateOpsFromProto(write.write.value.ops) };
    case "delete":
      if (!write.write.value) throw invalidArgument(`${at}.delete must be true when it is the write's operation`);
      return { ...base, delete: true };
    default:
      throw invalidArgument(`${at} has no operation: set one of set, update and delete`);
  }
}
