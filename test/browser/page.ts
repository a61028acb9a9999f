/**
 * The browser page of the browser test, bundled by esbuild when the test starts. It
 * watches the group `chat/room` twice: (a) over the stream socket with the browser's
 * own WebSocket, (b) with Subscribe through connect-web; each change it sees becomes
 * a line of text the test reads.
 */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";

/** The few DOM APIs the page uses: the project's type-check has no DOM library (and must not, for Node code). */
declare const location: { search: string };
declare const document: {
  createElement(tag: "li"): { textContent: string | null };
  getElementById(id: string): { append(child: unknown): void } | null;
};

const server = new URLSearchParams(location.search).get("server")!;

function show(listId: string, line: string): void {
  const item = document.createElement("li");
  item.textContent = line;
  document.getElementById(listId)!.append(item);
}

function watchStreamSocket(): void {
  const socket = new WebSocket(`${server.replace(/^http/, "ws")}/`);
  socket.onopen = () => socket.send(JSON.stringify({ type: "join", data: { subscriptionId: "page", streamName: "chat", groupId: "room" } }));
  socket.onmessage = (message) => {
    const wrapper = JSON.parse(message.data as string);
    show("socket", `${wrapper.event.type} ${wrapper.id} ${JSON.stringify(wrapper.event.data)} @${wrapper.offset}`);
  };
  socket.onclose = (event) => show("socket", `closed ${event.code}`);
}

async function watchSubscribe(): Promise<void> {
  const client = createClient(StreamService, createConnectTransport({ baseUrl: server }));
  try {
    for await (const response of client.subscribe({ streamName: "chat", groupId: "room" })) {
      const message = response.message;
      if (message.case === "snapshot") show("subscribe", `snapshot ${message.value.items.length} @${message.value.offset}`);
      else if (message.case === "change") show("subscribe", `change ${message.value.itemId} ${JSON.stringify(message.value.data && toJson(ValueSchema, message.value.data))} @${message.value.offset}`);
    }
  } catch (error) {
    show("subscribe", `failed ${String(error)}`);
  }
}

watchStreamSocket();
void watchSubscribe();
