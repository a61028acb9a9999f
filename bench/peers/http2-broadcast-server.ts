/**
 * The limit for Subscribe: a bare `node:http2` server that speaks just enough of the
 * Connect wire format for the suite's Subscribe subscribers and Set writer. A Subscribe
 * stream gets an empty snapshot, then every change of its group; a Set is encoded once
 * as a `SubscribeResponse` frame and that one buffer is written to every stream of the
 * group with `Http2Stream.write`, the cheapest write Node's HTTP/2 offers, then answered
 * with an empty `SetResponse`. It stores nothing and checks nothing: what is left is
 * the cost of Node's HTTP/2 per message, which iii-stream's Subscribe cannot go below.
 *
 *   node --import tsx bench/peers/http2-broadcast-server.ts [--port N]
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ChangeType,
  SetRequestSchema,
  SetResponseSchema,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeResponse,
} from "../../gen/iii/stream/v1/stream_pb.js";
import { envelope } from "../../src/rpc/subscribe-stream/envelope.js";
import { announceListening, portArgument } from "./listen-line.js";

const SERVICE = "/iii.stream.v1.StreamService/";
/** Connect streaming envelope: 1 flag byte, 4 length bytes. */
const ENVELOPE_HEADER = 5;
const EMPTY_SET_RESPONSE = toBinary(SetResponseSchema, create(SetResponseSchema));

const groups = new Map<string, Set<http2.ServerHttp2Stream>>();
const offsets = new Map<string, bigint>();

/** A data message (flags 0) in the streaming envelope. */
function frameOf(response: SubscribeResponse): Buffer {
  return envelope(0, toBinary(SubscribeResponseSchema, response));
}

function subscribe(stream: http2.ServerHttp2Stream, body: Buffer): void {
  const { groupId } = fromBinary(SubscribeRequestSchema, body.subarray(ENVELOPE_HEADER));
  let members = groups.get(groupId);
  if (!members) groups.set(groupId, (members = new Set()));
  members.add(stream);
  stream.once("close", () => members.delete(stream));
  stream.respond({ ":status": 200, "content-type": "application/connect+proto" });
  const offset = offsets.get(groupId) ?? 0n;
  stream.write(frameOf(create(SubscribeResponseSchema, { message: { case: "snapshot", value: { items: [], offset } } })));
}

function set(stream: http2.ServerHttp2Stream, body: Buffer): void {
  const request = fromBinary(SetRequestSchema, body);
  const offset = (offsets.get(request.groupId) ?? 0n) + 1n;
  offsets.set(request.groupId, offset);
  const frame = frameOf(
    create(SubscribeResponseSchema, {
      message: {
        case: "change",
        value: { type: ChangeType.UPDATE, itemId: request.itemId, data: request.data, revision: offset, offset, timestampMs: BigInt(Date.now()) },
      },
    }),
  );
  for (const member of groups.get(request.groupId) ?? []) member.write(frame);
  stream.respond({ ":status": 200, "content-type": "application/proto" });
  stream.end(EMPTY_SET_RESPONSE);
}

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  const chunks: Buffer[] = [];
  stream.on("error", () => undefined);
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.once("end", () => {
    const path = headers[":path"];
    if (path === `${SERVICE}Subscribe`) subscribe(stream, Buffer.concat(chunks));
    else if (path === `${SERVICE}Set`) set(stream, Buffer.concat(chunks));
    else {
      stream.respond({ ":status": 404 });
      stream.end();
    }
  });
});

server.listen(portArgument(), "127.0.0.1", () => announceListening(server, "http2"));
