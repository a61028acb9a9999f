import { randomBytes } from "node:crypto";
import http from "node:http";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/index.js";
import { authPayload } from "../src/access/handshake.js";
import type { StreamService, SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { deferred, eventually } from "./support/function-server.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { silentLog } from "../src/index.js";

const authCalls: JsonObject[] = [];
const joins: JsonObject[] = [];
const leaves: JsonObject[] = [];
const releaseJoin = deferred();
let joinStarted = deferred();

/** The auth function: its behaviour is chosen by the `x-mode` header, its context carries the `x-tag` header. */
function auth(payload: JsonValue): Promise<JsonValue | undefined> | JsonValue | undefined {
  const request = payload as { headers: Record<string, string> };
  authCalls.push(payload as JsonObject);
  switch (request.headers["x-mode"]) {
    case "throw":
      throw new Error("bad token");
    case "hang":
      return new Promise(() => undefined);
    case "deny":
      return { unauthorized: true };
    case "odd":
      return "not an object";
    default:
      return { context: { tag: request.headers["x-tag"] ?? null } };
  }
}

/** The join handler: its behaviour is chosen by the subscribed group. */
async function join(payload: JsonValue): Promise<JsonValue | undefined> {
  const p = payload as JsonObject;
  joins.push(p);
  switch (p.group_id) {
    case "refuse":
      return { unauthorized: true };
    case "not-boolean":
      return { unauthorized: "yes" };
    case "throw":
      throw new Error("join broke");
    case "hang":
      return new Promise(() => undefined);
    case "slow":
      joinStarted.resolve();
      await releaseJoin.promise;
      return undefined;
    default:
      return undefined;
  }
}

let running: RunningServer;
let client: Client<typeof StreamService>;
const QUEUE_LIMIT = 8;

beforeAll(async () => {
  running = await startServer({
    queueLimits: { maxMessages: QUEUE_LIMIT },
    log: silentLog,
    functions: {
      authFunction: "auth",
      authTimeoutMs: 200,
      functionTimeoutMs: 300,
      handlers: { auth, join, leave: (p) => void leaves.push(p as JsonObject), "skip-all": () => false },
      triggers: [
        { triggerId: "join", type: "stream:join", functionId: "join", config: { streamName: "room" } },
        { triggerId: "leave", type: "stream:leave", functionId: "leave", config: { streamName: "room" } },
        // Filtered away or skipped by its condition: never refuses anything.
        { triggerId: "other-join", type: "stream:join", functionId: "refuse-all", config: { streamName: "elsewhere" } },
        {
          triggerId: "skipped-join",
          type: "stream:join",
          functionId: "refuse-all",
          config: { groupId: "open", conditionFunctionId: "skip-all" },
        },
      ],
    },
  });
  running.server.registerFunction("refuse-all", () => ({ unauthorized: true }));
  client = running.client("connect-binary-h2");
});
afterAll(async () => {
  releaseJoin.resolve();
  await running.stop();
});

interface Outcome {
  messages: SubscribeResponse[];
  code: Code | undefined;
}

/** Reads a subscription until it fails, ends, or has given `count` messages. */
async function read(stream: AsyncIterable<SubscribeResponse>, count = Infinity): Promise<Outcome> {
  const messages: SubscribeResponse[] = [];
  try {
    for await (const message of stream) {
      messages.push(message);
      if (messages.length >= count) break;
    }
    return { messages, code: undefined };
  } catch (error) {
    return { messages, code: ConnectError.from(error).code };
  }
}

function subscribe(groupId: string, headers: Record<string, string>, signal?: AbortSignal) {
  return client.subscribe({ streamName: "room", groupId }, { headers, signal: signal ?? AbortSignal.timeout(10_000) });
}

const byTag = (list: JsonObject[], tag: string) => list.filter((p) => (p.context as JsonObject | null)?.tag === tag);

describe("auth_function", () => {
  it("receives headers, path, query_params and addr as in the reference", async () => {
    const controller = new AbortController();
    const outcome = await read(subscribe("lobby", { "x-tag": "shape", "X-Custom": "Value" }, controller.signal), 1);
    controller.abort();
    expect(outcome.messages[0].message.case).toBe("snapshot");
    const payload = authCalls.find((p) => (p.headers as JsonObject)["x-tag"] === "shape")!;
    expect(payload.path).toBe("/iii.stream.v1.StreamService/Subscribe");
    expect(payload.query_params).toEqual({});
    expect(payload.addr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((payload.headers as JsonObject)["x-custom"]).toBe("Value");
    expect(Object.keys(payload.headers as JsonObject).every((name) => name === name.toLowerCase() && !name.startsWith(":"))).toBe(true);
  });

  it("splits query parameters like the reference: raw, on & and the first =", () => {
    const payload = authPayload({
      headers: [["A", "1"], ["a", "2"], ["bad", "caf\u00e9"]],
      url: "/socket?x=1&x=2&c=&d&=e&f=a=b&enc=%20",
      peer: { remoteAddress: "::1", remotePort: 5 },
    });
    expect(payload).toEqual({
      headers: { a: "2" },
      path: "/socket",
      query_params: { x: ["1", "2"], c: [""], d: [""], f: ["a=b"], enc: ["%20"] },
      addr: "[::1]:5",
    });
  });

  it("stamps its context into the join and leave payloads of the subscription", async () => {
    const controller = new AbortController();
    await read(subscribe("lobby", { "x-tag": "stamped" }, controller.signal), 1);
    controller.abort();
    await eventually(() => expect(byTag(leaves, "stamped")).toHaveLength(1));
    const [joined] = byTag(joins, "stamped");
    expect(joined).toEqual({
      subscription_id: expect.any(String),
      stream_name: "room",
      group_id: "lobby",
      id: null,
      context: { tag: "stamped" },
    });
    expect(byTag(leaves, "stamped")).toEqual([joined]);
  });

  it.each(["throw", "hang", "deny", "odd"])("refuses with UNAUTHENTICATED when it says %s, before any data flows", async (mode) => {
    await running.client().set({ streamName: "room", groupId: "secret", itemId: "i", data: json("hidden") });
    const tag = `auth-${mode}`;
    const outcome = await read(subscribe("secret", { "x-mode": mode, "x-tag": tag }));
    expect(outcome).toEqual({ messages: [], code: Code.Unauthenticated });
    expect(running.server.stats().subscriptions).toBe(0);
    expect(byTag(joins, tag)).toEqual([]);
    expect(byTag(leaves, tag)).toEqual([]);
  });
});

describe("stream:join", () => {
  it.each(["refuse", "throw", "hang"])("refuses with PERMISSION_DENIED when the handler says %s; nothing flows, no leave follows", async (groupId) => {
    await running.client().set({ streamName: "room", groupId, itemId: "i", data: json("hidden") });
    const tag = `join-${groupId}`;
    const outcome = await read(subscribe(groupId, { "x-tag": tag }));
    expect(outcome).toEqual({ messages: [], code: Code.PermissionDenied });
    expect(byTag(joins, tag)).toHaveLength(1);
    expect(running.server.stats().subscriptions).toBe(0);
    // A later accepted subscription's leave shows that the refused one got none.
    const controller = new AbortController();
    await read(subscribe("lobby", { "x-tag": `${tag}-after` }, controller.signal), 1);
    controller.abort();
    await eventually(() => expect(byTag(leaves, `${tag}-after`)).toHaveLength(1));
    expect(byTag(leaves, tag)).toEqual([]);
  });

  it("accepts a non-boolean `unauthorized`, and is not refused by triggers filtered away or skipped by their condition", async () => {
    for (const groupId of ["not-boolean", "open"]) {
      const controller = new AbortController();
      const outcome = await read(subscribe(groupId, { "x-tag": `accept-${groupId}` }, controller.signal), 1);
      controller.abort();
      expect(outcome.messages[0]?.message.case).toBe("snapshot");
    }
    const stats = running.server.functions.listTriggers().find((t) => t.triggerId === "skipped-join")!.stats;
    expect(stats).toMatchObject({ calls: 0, skipped: 1 });
  });
});

describe("stream:leave fires exactly once per accepted subscription", () => {
  it("when the client cancels", async () => {
    const controller = new AbortController();
    await read(subscribe("cancel", { "x-tag": "cancel" }, controller.signal), 1);
    controller.abort();
    await eventually(() => expect(byTag(leaves, "cancel")).toHaveLength(1));
    await eventually(() => expect(running.server.stats().subscriptions).toBe(0));
  });

  it("when the client cancels while its join handler still runs", async () => {
    joinStarted = deferred();
    const controller = new AbortController();
    const pending = read(subscribe("slow", { "x-tag": "cancel-during-join" }, controller.signal));
    await joinStarted.promise;
    controller.abort();
    expect((await pending).code).toBe(Code.Canceled);
    releaseJoin.resolve();
    await eventually(() => expect(byTag(leaves, "cancel-during-join")).toHaveLength(1));
    await eventually(() => expect(running.server.stats().subscriptions).toBe(0));
  });

  it("when the connection drops", async () => {
    // Connect's streaming JSON over HTTP/1.1 by hand, so that the socket can be cut.
    const body = Buffer.from(JSON.stringify({ streamName: "room", groupId: "drop" }));
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    envelope.writeUInt32BE(body.length, 1);
    await new Promise<void>((resolve, reject) => {
      const request = http.request(`${running.url}/iii.stream.v1.StreamService/Subscribe`, {
        method: "POST",
        headers: { "content-type": "application/connect+json", "x-tag": "drop" },
      });
      request.on("response", (response) => {
        response.once("data", () => {
          response.socket.destroy();
          resolve();
        });
      });
      request.on("error", reject);
      request.end(envelope);
    });
    await eventually(() => expect(byTag(leaves, "drop")).toHaveLength(1));
    await eventually(() => expect(running.server.stats().subscriptions).toBe(0));
  });

  it("when a slow consumer is ended", async () => {
    const stalled = subscribe("slow-consumer", { "x-tag": "slow-consumer" })[Symbol.asyncIterator]();
    expect((await stalled.next()).value?.message.case).toBe("snapshot");
    // Never read again; write incompressible values until the server gives up on it.
    const writer = running.client("connect-binary-h2");
    for (let i = 0; i < 2000 && byTag(leaves, "slow-consumer").length === 0; i++) {
      const data = json(randomBytes(24_000).toString("base64"));
      await writer.set({ streamName: "room", groupId: "slow-consumer", itemId: `i${i % 16}`, data });
    }
    expect(byTag(leaves, "slow-consumer")).toHaveLength(1);
    await stalled.return?.();
    await eventually(() => expect(running.server.stats().subscriptions).toBe(0));
    expect(byTag(leaves, "slow-consumer")).toHaveLength(1);
  });

  it("when the server shuts down, and never more than once for any subscription", async () => {
    const leftAtShutdown: JsonObject[] = [];
    const other = await startServer({
      functions: {
        handlers: { leave: (p) => void leftAtShutdown.push(p as JsonObject) },
        triggers: [{ type: "stream:leave", functionId: "leave" }],
      },
    });
    const outcome = read(other.client().subscribe({ streamName: "any", groupId: "g" }));
    await eventually(() => expect(other.server.stats().subscriptions).toBe(1));
    await other.stop();
    expect((await outcome).code).toBe(Code.Unavailable);
    expect(leftAtShutdown).toHaveLength(1);

    // Over this whole file: every accepted subscription left once, no refused one left.
    const ids = leaves.map((p) => p.subscription_id);
    expect(new Set(ids).size).toBe(ids.length);
    const accepted = new Set(joins.filter((p) => !["refuse", "throw", "hang"].includes(p.group_id as string)).map((p) => p.subscription_id));
    await eventually(() => expect(new Set(ids)).toEqual(accepted));
  });
});
