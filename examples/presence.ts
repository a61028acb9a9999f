/**
 * A presence counter built from `stream:join` / `stream:leave` triggers, and an audit
 * log written by a `stream` trigger. Run it with `npx tsx examples/presence.ts`.
 */
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
// In a program of its own: `from "iii-stream"`.
import { createStreamServer, type JsonObject, type JsonValue } from "../src/index.js";
import { ChangeType, StreamService } from "../gen/iii/stream/v1/stream_pb.js";

const server = createStreamServer({
  port: 0,
  functions: {
    // Every subscriber must authenticate; the context it gets is stamped into its join and leave.
    authFunction: "auth",
    triggers: [
      { type: "stream:join", functionId: "presence::join", config: { streamName: "chat" } },
      { type: "stream:leave", functionId: "presence::leave", config: { streamName: "chat" } },
      { type: "stream", functionId: "audit::log", config: { streamName: "chat" } },
    ],
  },
});
const { engine } = server;

// The bearer token names the user. A real app would verify it, and return
// {unauthorized: true} (or throw) to refuse the subscriber.
server.registerFunction("auth", (request) => {
  const token = (request as { headers: Record<string, string> }).headers.authorization?.replace(/^Bearer /, "");
  return token ? { context: { user: token } } : { unauthorized: true };
});

// Join runs before the subscriber gets any data; returning {unauthorized: true} would refuse it.
server.registerFunction("presence::join", async (payload) => {
  const { group_id, context } = payload as { group_id: string; context: { user: string } };
  await engine.update({ streamName: "presence", groupId: group_id, itemId: "online" }, [
    { type: "increment", path: ["count"], by: 1n },
    { type: "set", path: ["members", context.user], value: true },
  ]);
});

// Leave runs exactly once per accepted subscriber, however its subscription ends.
server.registerFunction("presence::leave", async (payload) => {
  const { group_id, context } = payload as { group_id: string; context: { user: string } };
  await engine.update({ streamName: "presence", groupId: group_id, itemId: "online" }, [
    { type: "decrement", path: ["count"], by: 1n },
    { type: "remove", path: ["members", context.user] },
  ]);
});

// Every change of a chat message is copied to the audit stream, keyed by its offset.
server.registerFunction("audit::log", async (payload) => {
  const { groupId, id, offset, timestamp, event } = payload as JsonObject & { groupId: string; offset: number };
  await engine.set({ streamName: "audit", groupId, itemId: String(offset).padStart(8, "0") }, { id, timestamp, event });
});

await server.start();
const client = createClient(StreamService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
const json = (value: JsonValue) => fromJson(ValueSchema, value);

/** Subscribes as `user` and keeps the subscription open until `leave` is called. */
async function join(user: string, groupId: string): Promise<{ leave: () => void }> {
  const controller = new AbortController();
  const messages = client.subscribe({ streamName: "chat", groupId }, { signal: controller.signal, headers: { authorization: `Bearer ${user}` } });
  const iterator = messages[Symbol.asyncIterator]();
  await iterator.next(); // the snapshot: by now the join handler has run
  void (async () => {
    try {
      while (!(await iterator.next()).done);
    } catch {
      // Cancelled by leave().
    }
  })();
  return { leave: () => controller.abort() };
}

/** Watches an item until `done` says so; returns its last value. */
async function watch(streamName: string, groupId: string, itemId: string, done: (value: JsonValue | undefined) => boolean) {
  const controller = new AbortController();
  let current: JsonValue | undefined;
  const options = { signal: controller.signal, headers: { authorization: "Bearer observer" } };
  for await (const { message } of client.subscribe({ streamName, groupId, itemId }, options)) {
    if (message.case === "snapshot") current = message.value.items[0] && toJson(ValueSchema, message.value.items[0].data!);
    if (message.case === "change") {
      current = message.value.type === ChangeType.DELETE ? undefined : toJson(ValueSchema, message.value.data!);
    }
    if (done(current)) break;
  }
  controller.abort();
  return current;
}

const alice = await join("alice", "room-1");
const bob = await join("bob", "room-1");
console.log("online:", JSON.stringify(await watch("presence", "room-1", "online", () => true)));

const refused = client.subscribe({ streamName: "chat", groupId: "room-1" });
await refused[Symbol.asyncIterator]().next().catch((error: Error) => console.log("without a token:", error.message));

await client.set({ streamName: "chat", groupId: "room-1", itemId: "m1", data: json({ from: "alice", text: "hello" }) });
bob.leave();
const online = (value: JsonValue | undefined) => (value as { count?: number } | undefined)?.count === 1;
console.log("after bob left:", JSON.stringify(await watch("presence", "room-1", "online", online)));

await watch("audit", "room-1", "00000001", (value) => value !== undefined);
const { items } = await client.list({ streamName: "audit", groupId: "room-1" });
for (const item of items) console.log("audit", item.itemId, JSON.stringify(toJson(ValueSchema, item.data!)));

alice.leave();
await server.stop();
