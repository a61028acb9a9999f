import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { StreamService, UpdateOpSchema, type Item } from "../../../gen/iii/stream/v1/stream_pb.js";
import type { JsonValue } from "../../core/json.js";
import { UsageError } from "./exit-codes.js";

/**
 * The calls the client commands make, in one place so that the commands do not depend on how
 * they reach the server.
 */

/** Where the server is and how to be let in. */
export interface Connection {
  url: string;
  apiKey?: string;
}

export interface ItemRecord {
  itemId: string;
  data: JsonValue;
  revision: number;
  updatedAtMs: number;
}

export interface StreamInfoRecord {
  stream: string;
  groups: string[];
  groupCount: number;
}

export interface UpdateSkip {
  opIndex: number;
  code: string;
  message: string;
}

export type StreamApi = ReturnType<typeof openStreamApi>;

/** A 64-bit count from the wire as a number (offsets and revisions stay far below 2^53). */
const count = (value: bigint): number => Number(value);
const json = (value: Value | undefined): JsonValue | undefined => (value === undefined ? undefined : (toJson(ValueSchema, value) as JsonValue));
const value = (data: JsonValue): Value => fromJson(ValueSchema, data);

function record(item: Item): ItemRecord {
  return { itemId: item.itemId, data: json(item.data) ?? null, revision: count(item.revision), updatedAtMs: count(item.updatedAtMs) };
}

export function openStreamApi(connection: Connection) {
  const withKey: Interceptor = (next) => (request) => {
    if (connection.apiKey !== undefined) request.header.set("authorization", `Bearer ${connection.apiKey}`);
    return next(request);
  };
  // HTTP/1.1: a one-shot command needs no multiplexing, and its sockets close with it.
  const transport = createConnectTransport({ baseUrl: connection.url, httpVersion: "1.1", useBinaryFormat: true, interceptors: [withKey] });
  const client = createClient(StreamService, transport);
  const names = (stream: string, group: string) => ({ streamName: stream, groupId: group });
  const revision = (ifRevision: number | undefined) => (ifRevision === undefined ? {} : { ifRevision: BigInt(ifRevision) });

  return {
    async set(stream: string, group: string, item: string, data: JsonValue, ifRevision?: number) {
      const reply = await client.set({ ...names(stream, group), itemId: item, data: value(data), ...revision(ifRevision) });
      return { revision: count(reply.revision), offset: count(reply.offset), oldValue: json(reply.oldValue), newValue: json(reply.newValue) };
    },

    async get(stream: string, group: string, item: string): Promise<ItemRecord | undefined> {
      const reply = await client.get({ ...names(stream, group), itemId: item });
      return reply.item === undefined ? undefined : record(reply.item);
    },

    /** `ops` in the Protobuf JSON form of UpdateOp, as the Connect JSON API takes them. */
    async update(stream: string, group: string, item: string, ops: JsonValue[], ifRevision?: number) {
      const decoded = ops.map((op, index) => {
        try {
          return fromJson(UpdateOpSchema, op);
        } catch (error) {
          throw new UsageError(`operation ${index} of OPS_JSON: ${(error as Error).message}`);
        }
      });
      const reply = await client.update({ ...names(stream, group), itemId: item, ops: decoded, ...revision(ifRevision) });
      const errors: UpdateSkip[] = reply.errors.map((error) => ({ opIndex: error.opIndex, code: error.code, message: error.message }));
      return { revision: count(reply.revision), offset: count(reply.offset), oldValue: json(reply.oldValue), newValue: json(reply.newValue), errors };
    },

    async delete(stream: string, group: string, item: string, ifRevision?: number) {
      const reply = await client.delete({ ...names(stream, group), itemId: item, ...revision(ifRevision) });
      return { offset: count(reply.offset), oldValue: json(reply.oldValue) };
    },

    async send(stream: string, group: string, type: string, data: JsonValue, item?: string): Promise<void> {
      await client.send({ ...names(stream, group), type, data: value(data), ...(item === undefined ? {} : { itemId: item }) });
    },

    /** Every item of the group, page after page. */
    async *list(stream: string, group: string): AsyncGenerator<ItemRecord[]> {
      let pageToken = "";
      do {
        const page = await client.list({ ...names(stream, group), pageToken });
        yield page.items.map(record);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    },

    async *listGroups(stream: string): AsyncGenerator<string[]> {
      let pageToken = "";
      do {
        const page = await client.listGroups({ streamName: stream, pageToken });
        yield page.groups;
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    },

    async *listStreams(): AsyncGenerator<StreamInfoRecord[]> {
      let pageToken = "";
      do {
        const page = await client.listAll({ pageToken });
        yield page.streams.map((info) => ({ stream: info.streamName, groups: info.groups, groupCount: info.groupCount }));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    },
  };
}

/**
 * A failed call's status code in the snake case of the gRPC names (`not_found`), and its
 * message without the code Connect puts in front; undefined for an error that is no call's.
 */
export function callFailure(error: unknown): { code: string; message: string } | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return { code: Code[error.code].replace(/(?<=[a-z])(?=[A-Z])/g, "_").toLowerCase(), message: error.rawMessage };
}
