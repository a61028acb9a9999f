import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { spawn, spawnSync } from "node:child_process";
import { PROJECT_ROOT, runCli, spawnServer, type ServerProcess } from "./support/process.js";
import { startRedisServer, type RedisServer } from "./support/redis.js";
import { transportFor } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";

const API_KEY = "key-that-must-never-be-logged-1";
const REDIS_PASSWORD = "redis-password-never-logged";

const running: ServerProcess[] = [];
let redis: RedisServer;
let failing: FunctionServer;
const dir = mkdtempSync(join(tmpdir(), "iii-stream-logs-"));

beforeAll(async () => {
  redis = await startRedisServer({ password: REDIS_PASSWORD });
  failing = await startPlainFunctionServer(() => {
    throw new Error("the backend broke");
  });
});
afterAll(async () => {
  for (const server of running) server.child.kill("SIGKILL");
  await Promise.all(running.map((server) => server.exited));
  await redis?.stop();
  await failing?.close();
});

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await spawnServer(["--port", "0", ...args], env);
  running.push(server);
  return server;
}

/** Every line of standard output, each of which must be one JSON object. */
function records(server: Pick<ServerProcess, "stdout">): Array<Record<string, unknown>> {
  return server
    .stdout()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill("SIGTERM");
  expect(await server.exited).toBe(0);
}

describe("logs of the command line", () => {
  it("are JSON lines on standard output, starting with one line of the effective configuration, secrets masked", async () => {
    const config = join(dir, "secrets.yaml");
    writeFileSync(config, `functions:\n  - function_id: audit\n    url: ${failing.url}\n`);
    const server = await start(
      ["--adapter", "redis", "--redis-url", `redis://default:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`, "--redis-prefix", "logs-cli:", "--config", config],
      { III_STREAM_API_KEYS: API_KEY },
    );
    await stop(server);
    const lines = records(server);
    const startLine = lines.find((line) => String(line.msg).includes("listening on"))!;
    expect(startLine).toMatchObject({
      level: "info",
      msg: `iii-stream listening on ${server.url} (adapter: redis, redis: redis://default:****@127.0.0.1:${redis.port}, prefix: logs-cli:)`,
      config: {
        adapter: "redis",
        port: Number(new URL(server.url).port),
        host: "127.0.0.1",
        api_keys: 1,
        allowed_function_hosts: "any host",
        functions: [{ function_id: "audit", url: failing.url }],
        redis_url: `redis://default:****@127.0.0.1:${redis.port}`,
        redis_prefix: "logs-cli:",
        log_level: "info",
        max_message_bytes: 1048576,
      },
    });
    expect(lines.at(-1)).toMatchObject({ level: "info", msg: "SIGTERM received, shutting down", signal: "SIGTERM" });
    expect(server.stdout()).not.toContain(API_KEY);
    expect(server.stdout()).not.toContain(REDIS_PASSWORD);
    // Nothing else writes anywhere.
    expect(server.stderr()).toBe("");
  });

  it("names a failed trigger call's trigger, function, stream and error in one error record", async () => {
    const server = await start(["--adapter", "memory"]);
    const triggers = createClient(TriggerService, transportFor(server.url, "connect-json-h1"));
    await triggers.registerFunction({ functionId: "audit", url: failing.url });
    await triggers.registerTrigger({ triggerId: "audit-orders", type: "stream", functionId: "audit", config: { streamName: "orders" } });
    await createClient(StreamService, transportFor(server.url, "connect-json-h1")).set({ streamName: "orders", groupId: "shop-1", itemId: "o1", data: json({ total: 5 }) });
    await expect.poll(() => records(server).filter((line) => line.level === "error"), { timeout: 15_000 }).toHaveLength(1);
    await stop(server);
    expect(records(server).find((line) => line.level === "error")).toMatchObject({
      msg: "trigger call failed",
      trigger_id: "audit-orders",
      trigger_type: "stream",
      function_id: "audit",
      stream: "orders",
      error: expect.stringContaining("the backend broke"),
    });
    expect(server.stderr()).toBe("");
  });

  // `script` (util-linux) runs the server on a pseudo-terminal, as a person starting it would.
  it.skipIf(spawnSync("script", ["--version"]).status !== 0)("are readable lines by default when standard output is a terminal", async () => {
    const command = `${JSON.stringify(process.execPath)} bin/iii-stream.mjs --port 0 --adapter memory`;
    const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd: PROJECT_ROOT, stdio: ["pipe", "pipe", "pipe"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      await expect.poll(() => output, { timeout: 15_000 }).toContain("listening on");
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    expect(output).toMatch(/INFO.*iii-stream listening on http:\/\/127\.0\.0\.1:\d+ \(adapter: memory\)/);
    expect(output.trimStart().startsWith("{")).toBe(false);
  });

  it("come in pino-pretty's readable form with --log-format pretty", async () => {
    const server = await start(["--adapter", "memory", "--log-format", "pretty"]);
    await stop(server);
    expect(server.stdout()).toMatch(/INFO.*iii-stream listening on/);
    expect(() => JSON.parse(server.stdout().split("\n")[0])).toThrow();
  });

  it.each([
    ["the config file", "warn", {}],
    ["the environment over the config file", "debug", { III_STREAM_LOG_LEVEL: "warn" }],
  ])("take the level from %s", async (_how, fileLevel, env) => {
    // The reference's kv settings that have no effect here make a warning before the start.
    const config = join(dir, `level-${fileLevel}.yaml`);
    writeFileSync(config, `log_level: ${fileLevel}\nadapter:\n  name: kv\n  config:\n    store_method: in_memory\n    channel_size: 8\n`);
    const run = runCli(["--port", "0", "--config", config], env);
    running.push({ ...run, url: "" });
    await expect.poll(() => run.stdout(), { timeout: 15_000 }).toContain("ignored");
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    // At warn, neither the start line nor the shutdown line (both info).
    expect(records(run)).toEqual([expect.objectContaining({ level: "warn", settings: ["adapter.config.channel_size"] })]);
    expect(run.stderr()).toBe("");
  });

  it("take the level from the flag over the environment", async () => {
    const server = await start(["--adapter", "memory", "--log-level", "info"], { III_STREAM_LOG_LEVEL: "error" });
    await stop(server);
    expect(records(server).map((line) => line.level)).toEqual(["info", "info"]);
  });

  it.each([
    [["--log-level", "loud"], {}, /--log-level must be one of fatal, error, warn, info, debug, trace, got "loud"/],
    [["--log-format", "xml"], {}, /--log-format must be one of json, pretty, got "xml"/],
    [[], { III_STREAM_LOG_LEVEL: "verbose" }, /III_STREAM_LOG_LEVEL must be one of/],
    [[], { III_STREAM_LOG_FORMAT: "text" }, /III_STREAM_LOG_FORMAT must be one of json, pretty/],
  ])("refuses %j %j with exit 2, naming the setting", async (args, env, message) => {
    const run = runCli(["--adapter", "memory", "--port", "0", ...args], env);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(message);
    expect(run.stdout()).toBe("");
  });

  it("refuses a log_level in the config file that is not a level", async () => {
    const config = join(dir, "bad-level.yaml");
    writeFileSync(config, "log_level: verbose\n");
    const run = runCli(["--adapter", "memory", "--port", "0", "--config", config]);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/log_level/);
  });
});
