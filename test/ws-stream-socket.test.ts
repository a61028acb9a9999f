import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

let running: RunningServer;
const sockets: TestSocket[] = [];
const leaves: JsonObject[] = [];
const joins: JsonObject[] = [];

beforeAll(async () => {
  running = await startServer({
    functions: {
      authFunction: "auth",
      triggers: [
        { type: "stream:join", functionId: "gate", config: { streamName: "guarded" } },
        { type: "stream:leave", functionId: "left", config: { streamName: "guarded" } },
      ],
    },
  });
  // The handshake's query parameters and cookies reach the auth function, as browsers cannot set headers.
  running.server.registerFunction("auth", (request) => {
    const { query_params: query, headers } = request as { query_params: Record<string, string[]>; headers: Record<string, string> };
    if (query.token?.[0] === "bad") return { unauthorized: true };
    return { context: { user: query.user?.[0] ?? null, cookie: headers.cookie ?? null } };
  });
  running.server.registerFunction("gate", (payload) => {
    joins.push(payload as JsonObject);
    return { unauthorized: (payload as JsonObject).group_id === "closed" };
  });
  running.server.registerFunction("left", (payload) => {
    leaves.push(payload as JsonObject);
  });
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function connect(path = "/", options = {}): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, path), options);
  sockets.push(socket);
  return socket;
}

const set = (groupId: string, itemId: string, data: JsonValue, streamName = "chat") =>
  running.client().set({ streamName, groupId, itemId, data: fromJson(ValueSchema, data) });

describe("the stream socket", () => {
  it("sends sync, then create, update, delete and event wrappers in the reference's shape, with offsets", async () => {
    await set("room-1", "m0", { text: "before" });
    const socket = await connect();
    socket.send(join("s1", "chat", "room-1"));
    const sync = await socket.next(eventOf("s1", "sync"));
    expect(Object.keys(sync)).toEqual(["type", "timestamp", "streamName", "groupId", "id", "event", "offset", "subscriptionId"]);
    expect(sync).toMatchObject({ type: "stream", streamName: "chat", groupId: "room-1", id: null, event: { type: "sync", data: [{ text: "before" }] }, offset: 1 });
    expect(typeof sync.timestamp).toBe("number");

    await set("room-1", "m1", { text: "hello" });
    await set("room-1", "m1", { text: "edited" });
    await running.client().delete({ streamName: "chat", groupId: "room-1", itemId: "m1" });
    await running.client().send({ streamName: "chat", groupId: "room-1", type: "typing", data: fromJson(ValueSchema, { who: "ann" }) });
    await running.client().send({ streamName: "chat", groupId: "room-1", type: "seen", itemId: "m0", data: fromJson(ValueSchema, true) });
    await socket.next((m) => (m.event as JsonObject).type === "event" && m.id === "m0");

    const live = socket.messages.slice(socket.messages.indexOf(sync) + 1);
    expect(Object.keys(live[0])).toEqual(["type", "timestamp", "streamName", "groupId", "id", "event", "offset", "revision", "subscriptionId"]);
    expect(live.map(({ id, event, offset, revision }) => ({ id, event, offset, revision }))).toEqual([
      { id: "m1", event: { type: "create", data: { text: "hello" } }, offset: 2, revision: 1 },
      { id: "m1", event: { type: "update", data: { text: "edited" } }, offset: 3, revision: 2 },
      { id: "m1", event: { type: "delete", data: { text: "edited" } }, offset: 4, revision: 2 },
      { id: null, event: { type: "event", event: { type: "typing", data: { who: "ann" } } }, offset: 4, revision: undefined },
      { id: "m0", event: { type: "event", event: { type: "seen", data: true } }, offset: 4, revision: undefined },
    ]);
  });

  it("serves item-level joins: a sync of the value (null when missing), then only that item", async () => {
    const socket = await connect();
    socket.send(join("item", "chat", "room-2", { id: "a" }));
    expect(await socket.next(eventOf("item", "sync"))).toMatchObject({ id: "a", event: { type: "sync", data: null }, offset: 0 });
    await set("room-2", "b", 1);
    await set("room-2", "a", 2);
    await running.client().send({ streamName: "chat", groupId: "room-2", type: "ping", data: fromJson(ValueSchema, null) });
    await running.client().send({ streamName: "chat", groupId: "room-2", type: "poke", itemId: "a", data: fromJson(ValueSchema, null) });
    await socket.next((m) => (m.event as JsonObject).type === "event");
    expect(socket.messages.slice(1).map((m) => [m.id, (m.event as JsonObject).type, m.offset])).toEqual([
      ["a", "create", 2],
      ["a", "event", 2],
    ]);
  });

  it("leaves no gap and no duplicate between sync and live changes under concurrent writes", async () => {
    const writes = 300;
    const writer = (async () => {
      for (let i = 0; i < writes; i++) await set("busy", `i${i % 7}`, i);
    })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const socket = await connect();
    socket.send(join("busy", "chat", "busy"));
    await writer;
    const last = await socket.next((m) => m.offset === writes, 10_000);
    const received = socket.messages.slice(0, socket.messages.indexOf(last) + 1);
    const [sync, ...changes] = received;
    expect((sync.event as JsonObject).type).toBe("sync");
    expect(changes.map((m) => m.offset)).toEqual(Array.from({ length: changes.length }, (_, i) => (sync.offset as number) + 1 + i));
  });

  it("resumes with fromOffset: exactly the missed changes, and no sync", async () => {
    const first = await connect();
    first.send(join("r", "chat", "resume"));
    await first.next(eventOf("r", "sync"));
    await set("resume", "x", 1);
    const seen = await first.next(eventOf("r", "create"));
    await first.close();
    await set("resume", "x", 2);
    await set("resume", "y", 3);

    const second = await connect();
    second.send(join("r", "chat", "resume", { fromOffset: seen.offset }));
    await second.next((m) => m.offset === 3);
    expect(second.messages.map((m) => [(m.event as JsonObject).type, m.id, m.offset])).toEqual([
      ["update", "x", 2],
      ["create", "y", 3],
    ]);
  });

  it("joins from the URL: /stream/{stream}/{group} and /stream/{stream}/{group}/{item}, with a server-picked id", async () => {
    await set("path room", "p1", "one");
    const group = await connect("/stream/chat/path%20room");
    const sync = await group.next((m) => (m.event as JsonObject).type === "sync");
    expect(sync).toMatchObject({ streamName: "chat", groupId: "path room", id: null, event: { data: ["one"] } });
    expect(typeof sync.subscriptionId).toBe("string");

    const item = await connect("/stream/chat/path%20room/p1/?fromOffset=1");
    await set("path room", "p1", "two");
    expect(await item.next(() => true)).toMatchObject({ id: "p1", event: { type: "update", data: "two" }, offset: 2 });
    // The same connection still takes join messages.
    item.send(join("more", "chat", "room-2"));
    await item.next(eventOf("more", "sync"));
    await expect(connect("/stream/chat")).rejects.toThrow("404");
  });

  it("stops after leave; a re-join with the same id replaces the subscription", async () => {
    const socket = await connect();
    socket.send(join("dup", "chat", "rejoin"));
    await socket.next(eventOf("dup", "sync"));
    socket.send(join("dup", "chat", "rejoin"));
    await socket.next(eventOf("dup", "sync"), 5000, 1);
    await set("rejoin", "k", 1);
    await socket.next(eventOf("dup", "create"));
    socket.send({ type: "leave", data: { subscriptionId: "dup", streamName: "chat", groupId: "rejoin" } });
    socket.send(join("marker", "chat", "room-2"));
    await socket.next(eventOf("marker", "sync"));
    await set("rejoin", "k", 2);
    socket.send({ type: "leave", data: { subscriptionId: "marker" } });
    socket.send(join("marker2", "chat", "room-2"));
    await socket.next(eventOf("marker2", "sync"));
    expect(socket.messages.filter((m) => m.subscriptionId === "dup").map((m) => (m.event as JsonObject).type)).toEqual(["sync", "sync", "create"]);
  });

  it("runs the auth function at the handshake and the join and leave triggers, with the context", async () => {
    const socket = await connect("/?user=ann&token=ok", { headers: { cookie: "session=s1" } });
    socket.send(join("open", "guarded", "lobby"));
    await socket.next(eventOf("open", "sync"));
    socket.send(join("shut", "guarded", "closed", { id: "x" }));
    const refused = await socket.next(eventOf("shut", "unauthorized"));
    expect(refused).toMatchObject({ type: "stream", streamName: "guarded", groupId: "closed", id: "x", event: { type: "unauthorized" } });
    expect(joins.map((j) => [j.subscription_id, j.group_id, j.context])).toEqual([
      ["open", "lobby", { user: "ann", cookie: "session=s1" }],
      ["shut", "closed", { user: "ann", cookie: "session=s1" }],
    ]);
    await socket.close();
    await expect.poll(() => leaves.map((l) => l.subscription_id)).toEqual(["open"]);

    const bad = await openSocket(wsUrl(running.url, "/?token=bad"));
    expect(await bad.closed).toEqual({ code: 4401, reason: "unauthenticated" });
  });

  it("answers a join it cannot serve with an error event and stays usable", async () => {
    const socket = await connect();
    socket.send(join("empty", "", "g"));
    expect(await socket.next(eventOf("empty", "error"))).toMatchObject({ event: { type: "error", code: "invalid_argument" } });
    socket.send(join("ok", "chat", "room-2"));
    await socket.next(eventOf("ok", "sync"));
  });
});
