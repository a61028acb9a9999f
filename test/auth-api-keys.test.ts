import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { openAccessWarning } from "../src/access/access-warning.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { eventually, startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { startServer, transportFor, type RunningServer, type TransportKind } from "./support/server.js";
import { json } from "./support/subscribe-view.js";

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

describe("api keys", () => {
  let running: RunningServer;
  beforeAll(async () => {
    running = await startServer({ apiKeys: ["key-one-0123456789", "key-two-0123456789"] });
  });
  afterAll(() => running.stop());

  it.each(["connect-json-h1", "grpc", "grpc-web"] as TransportKind[])(
    "guard every unary StreamService call and every TriggerService call over %s",
    async (kind) => {
      const stream = createClient(StreamService, transportFor(running.url, kind));
      const triggers = createClient(TriggerService, transportFor(running.url, kind));
      const key = { streamName: "keys", groupId: "g", itemId: kind };
      // Thunks, so that each call starts only when the test awaits it.
      const calls = (options?: { headers: Record<string, string> }): Array<() => Promise<unknown>> => [
        () => stream.set({ ...key, data: json(1) }, options),
        () => stream.get(key, options),
        () => stream.list(key, options),
        () => stream.listGroups(key, options),
        () => stream.listAll({}, options),
        () => stream.update({ ...key, ops: [] }, options),
        () => stream.send({ ...key, type: "t", data: json(null) }, options),
        () => stream.delete(key, options),
        () => triggers.listTriggers({}, options),
        () => triggers.listFunctions({}, options),
        () => triggers.registerTrigger({ type: "stream", functionId: "f", config: { streamName: "never-written" } }, options),
      ];
      for (const call of calls()) expect(await codeOf(call())).toBe(Code.Unauthenticated);
      for (const call of calls(bearer("key-one-0123456789x"))) expect(await codeOf(call())).toBe(Code.Unauthenticated);
      for (const call of calls({ headers: { authorization: "key-one-0123456789" } })) expect(await codeOf(call())).toBe(Code.Unauthenticated);
      for (const call of calls(bearer("key-two-0123456789"))) expect(await codeOf(call())).toBeUndefined();
    },
  );

  it("guard Subscribe too (reads need a key; see access-keyed-reads), and leave health checks open", async () => {
    const client = createClient(StreamService, transportFor(running.url, "connect-binary-h2"));
    const keyless = async () => {
      for await (const message of client.subscribe({ streamName: "keys", groupId: "g" })) return message;
    };
    expect(await codeOf(keyless())).toBe(Code.Unauthenticated);
    const controller = new AbortController();
    for await (const message of client.subscribe({ streamName: "keys", groupId: "g" }, { signal: controller.signal, ...bearer("key-one-0123456789") })) {
      expect(message.message.case).toBe("snapshot");
      break;
    }
    controller.abort();
    const health = createClient(Health, transportFor(running.url, "grpc"));
    expect(await codeOf(health.check({}))).toBeUndefined();
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });

  it("a warning names what is open when listening beyond loopback", () => {
    expect(openAccessWarning("127.0.0.1", [], undefined)).toBeUndefined();
    expect(openAccessWarning("::1", [], undefined)).toBeUndefined();
    expect(openAccessWarning("0.0.0.0", ["k"], "auth")).toBeUndefined();
    const open = openAccessWarning("0.0.0.0", [], undefined)!;
    expect(open).toMatch(/WARNING.*0\.0\.0\.0/);
    expect(open).toMatch(/api_keys/);
    expect(open).toMatch(/auth_function/);
    expect(openAccessWarning("10.0.0.5", ["k"], undefined)).not.toMatch(/api_keys/);
  });
});

describe("the command line", () => {
  let remote: FunctionServer;
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    remote = await startPlainFunctionServer((id, payload) =>
      id === "auth" ? { context: { who: (payload as { headers: Record<string, string> }).headers["x-user"] ?? null } } : null,
    );
  });
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    await remote.close();
  });

  it("reads api keys from the environment, and functions, triggers and auth_function from the config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iii-stream-functions-"));
    const config = join(dir, "config.yaml");
    writeFileSync(
      config,
      [
        "auth_function: auth",
        "auth_timeout_ms: 2000",
        "function_timeout_ms: 2000",
        "functions:",
        `  - { function_id: auth, url: "${remote.url}" }`,
        `  - { function_id: audit, url: "${remote.url}" }`,
        "triggers:",
        "  - { type: stream, function_id: audit, config: { stream_name: orders } }",
        "  - { trigger_id: on-join, type: 'stream:join', function_id: audit }",
      ].join("\n"),
    );
    server = await spawnServer(["--adapter", "memory", "--port", "0", "--config", config], {
      III_STREAM_API_KEYS: " first-key-0123456789 , second-key-0123456789,",
    });
    const stream = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
    expect(await codeOf(stream.set({ streamName: "orders", groupId: "g", itemId: "o1", data: json(1) }))).toBe(Code.Unauthenticated);
    await stream.set({ streamName: "orders", groupId: "g", itemId: "o1", data: json(1) }, bearer("second-key-0123456789"));
    await eventually(() => expect(remote.calls.filter((c) => c.functionId === "audit")).toHaveLength(1));

    const controller = new AbortController();
    const subscription = stream.subscribe({ streamName: "orders", groupId: "g" }, { signal: controller.signal, headers: { "x-user": "ann" } });
    for await (const message of subscription) {
      expect(message.message.case).toBe("snapshot");
      break;
    }
    controller.abort();
    const joined = remote.calls.filter((c) => c.functionId === "audit").map((c) => c.payload as JsonObject);
    expect(joined.at(-1)).toMatchObject({ stream_name: "orders", group_id: "g", context: { who: "ann" } });
  });
});
