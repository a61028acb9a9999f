import http2 from "node:http2";
import { once } from "node:events";
import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { SetRequestSchema } from "../../../gen/iii/stream/v1/stream_pb.js";
import { ITEMS_PER_GROUP, STREAM_NAME, writeData, type Writer } from "./transport.js";

const SET_PATH = "/iii.stream.v1.StreamService/Set";

/**
 * iii-stream's writer: Set over Connect, binary, on one HTTP/2 connection. Like the
 * Subscribe client it speaks the wire format itself (encode the request, send it, wait
 * for a 200 and the end of the answer) instead of going through connect-node's client,
 * which costs the load generator about 0.7 ms of CPU per call on this kind of machine:
 * at 1,000 writes/s that is most of a core, and its queueing would be measured as the
 * server's acknowledgement latency.
 */
export async function openConnectWriter(url: string): Promise<Writer> {
  const session = http2.connect(url);
  session.on("error", () => undefined);
  await once(session, "connect");
  return {
    write: (groupId, i) =>
      new Promise<void>((resolve, reject) => {
        const body = toBinary(
          SetRequestSchema,
          create(SetRequestSchema, { streamName: STREAM_NAME, groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: fromJson(ValueSchema, writeData(i)) }),
        );
        const stream = session.request({
          ":method": "POST",
          ":path": SET_PATH,
          "content-type": "application/proto",
          "connect-protocol-version": "1",
          "content-length": String(body.length),
        });
        let status = 0;
        const answer: Buffer[] = [];
        stream.on("response", (headers) => (status = Number(headers[":status"])));
        stream.on("data", (chunk: Buffer) => answer.push(chunk));
        stream.on("end", () => (status === 200 ? resolve() : reject(new Error(`Set answered HTTP ${status}: ${Buffer.concat(answer).toString()}`))));
        stream.on("error", reject);
        stream.end(body);
      }),
    close: () => session.destroy(),
  };
}
