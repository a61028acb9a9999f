import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createStreamServer, MemoryItemStore, type StreamServerOptions } from "../src/index.js";
import { MemoryRegistrationStore } from "../src/adapters/memory/memory-registration-store.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { runCli, spawnServer } from "./support/process.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { RecordingLog } from "../src/index.js";

const KEY = "test-key-0123456789";

/** An HTTP server that records the path of every request it gets and answers `{}`. */
interface Target {
  url: string;
  port: number;
  paths: string[];
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    paths,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function triggerClient(running: RunningServer, key?: string): Client<typeof TriggerService> {
  const transport = transportFor(running.url, "connect-json-h1");
  const client = createClient(TriggerService, transport);
  if (key === undefined) return client;
  const headers = { authorization: `Bearer ${key}` };
  return new Proxy(client, {
    get: (target, name) => (request: unknown) =>
      (target[name as keyof typeof target] as (r: unknown, o: unknown) => Promise<unknown>)(request, { headers }),
  });
}

async function failure(promise: Promise<unknown>): Promise<{ code: Code | undefined; message: string }> {
  try {
    await promise;
    return { code: undefined, message: "" };
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, message: connectError.rawMessage };
  }
}

let target: Target;

beforeAll(async () => {
  target = await startTarget();
});

afterAll(async () => {
  await target.close();
});

describe("a remote function's URL", () => {
  let running: RunningServer;
  let client: Client<typeof TriggerService>;

  beforeAll(async () => {
    running = await startServer();
    client = triggerClient(running);
  });

  afterEach(() => {
    target.paths.length = 0;
  });

  afterAll(async () => {
    await running.stop();
  });

  it("cannot aim the call at another path with a trailing '?'", async () => {
    // Before: stored as is; the call went to POST /admin/delete with the invoke path as its query.
    const refused = await failure(client.registerFunction({ functionId: "aim", url: `${target.url}/admin/delete?` }));
    expect(refused).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(/query/) });
    expect((await client.listFunctions({})).functions.map((f) => f.functionId)).not.toContain("aim");
    await expect(running.server.invoke("aim", {})).rejects.toMatchObject({ code: "not_found" });
    expect(target.paths).toEqual([]);
  });

  it.each([
    ["a query", "/x?a=1", /query/],
    ["an empty query", "/x?", /query/],
    ["a fragment", "/x#frag", /fragment/],
    ["an empty fragment", "/x#", /fragment/],
  ])("refuses %s", async (_what, suffix, message) => {
    const refused = await failure(client.registerFunction({ functionId: "bad", url: `${target.url}${suffix}` }));
    expect(refused).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(message) });
    expect((await client.listFunctions({})).functions).toEqual([]);
  });

  it.each([
    ["credentials", `http://user:secret@127.0.0.1:9/`, /credentials/],
    ["a user name", `http://user@127.0.0.1:9/`, /credentials/],
    ["another scheme", "ftp://127.0.0.1/", /http or https/],
    ["a javascript: URL", "javascript:alert(1)", /http or https/],
    ["a relative URL", "/iii", /absolute URL/],
    ["no URL", "", /absolute URL/],
  ])("refuses %s", async (_what, url, message) => {
    const refused = await failure(client.registerFunction({ functionId: "bad", url }));
    expect(refused).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(message) });
    expect(refused.message).not.toContain("secret");
    expect((await client.listFunctions({})).functions).toEqual([]);
  });

  it("is normalised and the call path is joined to it", async () => {
    await client.registerFunction({ functionId: "joined", url: `http://LOCALHOST:${target.port}/api/../base//` });
    const listed = (await client.listFunctions({})).functions.find((f) => f.functionId === "joined");
    expect(listed?.url).toBe(`http://localhost:${target.port}/base`);
    await running.server.invoke("joined", { n: 1 });
    expect(target.paths).toEqual(["/base/iii.stream.v1.FunctionService/Invoke"]);
    await client.unregisterFunction({ functionId: "joined" });
  });
});

describe("allowedFunctionHosts", () => {
  const servers: RunningServer[] = [];
  async function serverWith(options: StreamServerOptions): Promise<RunningServer> {
    const running = await startServer(options);
    servers.push(running);
    return running;
  }

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("defaults to loopback hosts when no API keys are set", async () => {
    const client = triggerClient(await serverWith({}));
    for (const url of [`http://localhost:${target.port}`, `http://127.0.0.2:${target.port}`, "http://[::1]:9"]) {
      expect(await failure(client.registerFunction({ functionId: "ok", url })), url).toEqual({ code: undefined, message: "" });
    }
    for (const url of ["http://10.0.0.5:8080", "https://example.com", "http://169.254.169.254/latest", "http://[::ffff:127.0.0.1]/"]) {
      const refused = await failure(client.registerFunction({ functionId: "internal", url }));
      expect(refused.code, url).toBe(Code.PermissionDenied);
      expect(refused.message).toMatch(/allowedFunctionHosts/);
      expect(refused.message).toMatch(/allowed_function_hosts/);
    }
    expect((await client.listFunctions({})).functions.map((f) => f.functionId)).toEqual(["ok"]);
  });

  it("defaults to any host when API keys are set", async () => {
    const client = triggerClient(await serverWith({ apiKeys: [KEY] }), KEY);
    await client.registerFunction({ functionId: "far", url: "https://functions.example.com/v1" });
    expect((await client.listFunctions({})).functions.map((f) => f.url)).toEqual(["https://functions.example.com/v1"]);
  });

  it("pins hosts, and host:port entries pin the port", async () => {
    const client = triggerClient(await serverWith({ apiKeys: [KEY], allowedFunctionHosts: ["fn.internal:9000", "Other.Example"] }), KEY);
    await client.registerFunction({ functionId: "a", url: "http://fn.internal:9000/a" });
    await client.registerFunction({ functionId: "b", url: "https://other.example/b" });
    await client.registerFunction({ functionId: "c", url: "http://other.example:8080/c" });
    for (const url of ["http://fn.internal:9001/a", "http://fn.internal/a", `http://127.0.0.1:${target.port}`]) {
      expect((await failure(client.registerFunction({ functionId: "x", url }))).code, url).toBe(Code.PermissionDenied);
    }
    expect((await client.listFunctions({})).functions.map((f) => f.functionId)).toEqual(["a", "b", "c"]);
  });

  it('"*" allows any host without keys', async () => {
    const client = triggerClient(await serverWith({ allowedFunctionHosts: ["*"] }));
    await client.registerFunction({ functionId: "far", url: "http://10.0.0.5:8080" });
    expect((await client.listFunctions({})).functions.map((f) => f.functionId)).toEqual(["far"]);
  });

  it("refuses a malformed entry at construction, naming the option", () => {
    expect(() => createStreamServer({ port: 0, allowedFunctionHosts: ["http://x.example/"] })).toThrow(/allowedFunctionHosts/);
  });
});

describe("functions declared at start (the config file's `functions`)", () => {
  it.each([
    ["a bad URL", { url: "http://127.0.0.1:9/x?" }, "invalid_argument", /query/],
    ["a host outside the list", { url: "http://10.0.0.5:8080" }, "permission_denied", /allowedFunctionHosts/],
  ])("refuses %s and stores none of them", async (_what, bad, code, message) => {
    const registrations = new MemoryRegistrationStore();
    const backend = { items: new MemoryItemStore(), registrations };
    const server = createStreamServer({
      port: 0,
      backend,
      functions: { remote: [{ functionId: "good", url: "http://127.0.0.1:9" }, { functionId: "bad", ...bad }] },
    });
    await expect(server.start()).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    expect((await registrations.load()).functions).toEqual([]);
    await server.stop().catch(() => undefined);
  });
});

describe("stored registrations that break the rules", () => {
  it("are neither called nor listed, and are logged once", async () => {
    const registrations = new MemoryRegistrationStore();
    await registrations.saveFunction({ functionId: "old", url: `${target.url}/admin/delete?` });
    await registrations.saveFunction({ functionId: "far", url: "http://10.0.0.5:9000" });
    await registrations.saveFunction({ functionId: "fine", url: target.url });
    const log = new RecordingLog();
    const running = await startServer({ backend: { items: new MemoryItemStore(), registrations }, log });
    try {
      const client = triggerClient(running);
      expect((await client.listFunctions({})).functions.map((f) => f.functionId)).toEqual(["fine"]);
      await expect(running.server.invoke("old", {})).rejects.toMatchObject({ code: "not_found" });
      expect(target.paths).toEqual([]);
      const refused = (id: string) => log.records.filter((r) => r.fields.function_id === id);
      expect(refused("old")).toEqual([expect.objectContaining({ level: "warn", fields: expect.objectContaining({ error: expect.stringMatching(/query/) }) })]);
      expect(refused("far")).toEqual([expect.objectContaining({ level: "warn", fields: expect.objectContaining({ error: expect.stringMatching(/allowedFunctionHosts/) }) })]);
    } finally {
      await running.stop();
    }
  });
});

describe("the config file (tests run dist/: build first)", () => {
  const dir = mkdtempSync(join(tmpdir(), "iii-stream-function-hosts-"));
  function configFile(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it("refuses to start with a declared function outside allowed_function_hosts, naming the key", async () => {
    const path = configFile("pinned.yaml", 'port: 0\nallowed_function_hosts: ["fn.internal"]\nfunctions:\n  - { function_id: f, url: "http://10.0.0.5:9000" }\n');
    const run = runCli(["--adapter", "memory", "--config", path]);
    expect(await run.exited).not.toBe(0);
    expect(run.output()).toMatch(/allowed_function_hosts/);
  });

  it("refuses a declared URL with a query, naming what is wrong", async () => {
    const path = configFile("query.yaml", 'port: 0\nfunctions:\n  - { function_id: f, url: "http://127.0.0.1:9000/x?" }\n');
    const run = runCli(["--adapter", "memory", "--config", path]);
    expect(await run.exited).not.toBe(0);
    expect(run.output()).toMatch(/query/);
  });

  it("passes allowed_function_hosts to the server", async () => {
    const path = configFile("any.yaml", 'port: 0\nallowed_function_hosts: ["*"]\nfunctions:\n  - { function_id: f, url: "http://10.0.0.5:9000" }\n');
    const server = await spawnServer(["--adapter", "memory", "--config", path]);
    try {
      const client = createClient(TriggerService, transportFor(server.url, "connect-json-h1"));
      expect((await client.listFunctions({})).functions.map((f) => f.url)).toEqual(["http://10.0.0.5:9000"]);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});
