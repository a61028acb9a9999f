/**
 * With API keys configured, reading needs a key too: Subscribe (every protocol), the
 * stream socket and the worker protocol's reads and stream triggers. A keyless client
 * got every later write through a stream trigger, and flooded the operator's
 * ListFunctions with its functions. An accepting auth function or `publicReads` opens
 * reads again; without keys nothing changes.
 */
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { CloseCode } from "../src/ws/close-codes.js";
import { startServer, transportFor, type RunningServer, type TransportKind } from "./support/server.js";
import { json, StreamCursor } from "./support/subscribe-view.js";
import { openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";
import { silentLog } from "../src/index.js";

const KEY = "keyed-reads-key-0123456789";
const BEARER = { authorization: `Bearer ${KEY}` };

const servers: RunningServer[] = [];
const sockets: TestSocket[] = [];
let keyed: RunningServer;
let publicReads: RunningServer;
let withAuth: RunningServer;
let open: RunningServer;

beforeAll(async () => {
  const quiet = { log: silentLog, shutdownGraceMs: 200 };
  keyed = await startServer({ ...quiet, apiKeys: [KEY] });
  publicReads = await startServer({ ...quiet, apiKeys: [KEY], publicReads: true });
  withAuth = await startServer({
    ...quiet,
    apiKeys: [KEY],
    functions: { authFunction: "auth", handlers: { auth: () => ({ context: { who: "anyone" } }) } },
  });
  open = await startServer(quiet);
  servers.push(keyed, publicReads, withAuth, open);
  for (const running of servers) {
    await running.client().set({ streamName: "secrets", groupId: "g", itemId: "card", data: json({ card: "4111" }) }, { headers: BEARER });
  }
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

function subscriber(running: RunningServer, kind: TransportKind, headers?: Record<string, string>): Client<typeof StreamService> {
  const transport = transportFor(running.url, kind);
  const client = createClient(StreamService, transport);
  if (!headers) return client;
  return {
    ...client,
    subscribe: (request, options) => client.subscribe(request, { ...options, headers }),
  } as Client<typeof StreamService>;
}

async function firstMessageOrError(client: Client<typeof StreamService>): Promise<"snapshot" | ConnectError> {
  const cursor = new StreamCursor(client, { streamName: "secrets", groupId: "g" });
  try {
    await cursor.next();
    return "snapshot";
  } catch (error) {
    return ConnectError.from(error);
  } finally {
    cursor.close();
  }
}

async function worker(running: RunningServer, headers: Record<string, string> = {}): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, "/worker"), { headers });
  sockets.push(socket);
  await socket.next((m) => m.type === "workerregistered");
  return socket;
}

async function invoke(socket: TestSocket, functionId: string, data: JsonObject): Promise<JsonObject> {
  const id = `call-${socket.messages.length}-${Math.random()}`;
  const from = socket.messages.length;
  socket.send({ type: "invokefunction", invocation_id: id, function_id: functionId, data });
  return socket.next((m) => m.type === "invocationresult" && m.invocation_id === id, 5000, from);
}

async function registerStreamTrigger(socket: TestSocket, id: string): Promise<JsonObject> {
  const from = socket.messages.length;
  socket.send({ type: "registertrigger", id, trigger_type: "stream", function_id: "spy", config: { stream_name: "secrets" } });
  return socket.next((m) => m.type === "triggerregistrationresult" && m.id === id, 5000, from);
}

async function streamSocketOutcome(running: RunningServer, headers: Record<string, string> = {}): Promise<"data" | number> {
  const socket = await openSocket(wsUrl(running.url, "/stream/secrets/g"), { headers });
  sockets.push(socket);
  const data = socket.next((m) => m.subscriptionId !== undefined, 3000).then(() => "data" as const);
  const closed = socket.closed.then((c) => c.code);
  const outcome = await Promise.race([data, closed]);
  return outcome;
}

describe("with API keys configured, reads need a key", () => {
  it.each(["connect-json-h1", "connect-binary-h2", "grpc", "grpc-web"] as TransportKind[])(
    "refuses a keyless Subscribe over %s with UNAUTHENTICATED and subscribes nothing",
    async (kind) => {
      const outcome = await firstMessageOrError(subscriber(keyed, kind));
      expect(outcome).toBeInstanceOf(ConnectError);
      expect((outcome as ConnectError).code).toBe(Code.Unauthenticated);
      expect((outcome as ConnectError).rawMessage).toMatch(/API key/);
      expect(keyed.server.stats().subscriptions).toBe(0);
    },
  );

  it.each(["connect-json-h1", "grpc"] as TransportKind[])("serves Subscribe over %s with a key", async (kind) => {
    expect(await firstMessageOrError(subscriber(keyed, kind, BEARER))).toBe("snapshot");
  });

  it("closes a keyless stream socket with 4401 and serves one with a key", async () => {
    expect(await streamSocketOutcome(keyed)).toBe(CloseCode.Unauthenticated);
    expect(await streamSocketOutcome(keyed, BEARER)).toBe("data");
  });

  it("answers a keyless worker's reads with forbidden and registers none of its stream triggers", async () => {
    const before = keyed.server.stats().triggers;
    const socket = await worker(keyed);
    for (const functionId of ["stream::get", "stream::list", "stream::list_groups", "stream::list_all"]) {
      const reply = await invoke(socket, functionId, { stream_name: "secrets", group_id: "g", item_id: "card" });
      expect(reply.error, functionId).toMatchObject({ code: "forbidden" });
      expect(JSON.stringify(reply)).not.toContain("4111");
    }
    expect(await registerStreamTrigger(socket, "spy-trigger")).toMatchObject({ error: { code: "forbidden" } });
    expect(keyed.server.stats().triggers).toBe(before);
  });

  it("serves a keyed worker's reads and stream triggers", async () => {
    const socket = await worker(keyed, BEARER);
    const reply = await invoke(socket, "stream::list", { stream_name: "secrets", group_id: "g" });
    expect(reply.result).toEqual([{ card: "4111" }]);
    expect((await registerStreamTrigger(socket, "keyed-trigger")).error).toBeUndefined();
  });

  it("never lists a keyless worker's functions with the server's", async () => {
    const keyless = await worker(keyed);
    const trusted = await worker(keyed, BEARER);
    for (let i = 0; i < 20; i++) keyless.send({ type: "registerfunction", id: `flood::${i}` });
    trusted.send({ type: "registerfunction", id: "backend::work" });
    const triggers = createClient(TriggerService, transportFor(keyed.url, "connect-binary-h2"));
    let ids: string[] = [];
    for (let attempt = 0; attempt < 100 && !ids.includes("backend::work"); attempt++) {
      ids = (await triggers.listFunctions({}, { headers: BEARER })).functions.map((f) => f.functionId);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(ids).toContain("backend::work");
    expect(ids.filter((id) => id.includes("flood::"))).toEqual([]);
  });
});

describe("reads that the operator opens", () => {
  for (const [name, server] of [
    ["publicReads: true", () => publicReads],
    ["an accepting auth function", () => withAuth],
    ["no API keys", () => open],
  ] as const) {
    it(`lets a keyless client read with ${name}`, async () => {
      const running = server();
      expect(await firstMessageOrError(subscriber(running, "connect-json-h1"))).toBe("snapshot");
      expect(await firstMessageOrError(subscriber(running, "grpc"))).toBe("snapshot");
      expect(await streamSocketOutcome(running)).toBe("data");
      const socket = await worker(running);
      const reply = await invoke(socket, "stream::list", { stream_name: "secrets", group_id: "g" });
      expect(reply.result).toEqual([{ card: "4111" }]);
      expect((await registerStreamTrigger(socket, `t-${name}`)).error).toBeUndefined();
    });
  }
});
