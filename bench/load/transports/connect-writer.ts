import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { StreamService } from "../../../gen/iii/stream/v1/stream_pb.js";
import { ITEMS_PER_GROUP, STREAM_NAME, writeData, type Writer } from "./transport.js";

/** iii-stream's writer: Set over Connect, binary, on one HTTP/2 connection. */
export async function openConnectWriter(url: string): Promise<Writer> {
  const sessionManager = new Http2SessionManager(url);
  const client = createClient(StreamService, createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true, sessionManager }));
  return {
    write: async (groupId, i) => {
      await client.set({ streamName: STREAM_NAME, groupId, itemId: `item-${i % ITEMS_PER_GROUP}`, data: fromJson(ValueSchema, writeData(i)) });
    },
    close: () => sessionManager.abort(),
  };
}
