import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { PROJECT_ROOT, runCli, spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";

const running: ServerProcess[] = [];
afterAll(() => {
  for (const server of running) server.child.kill("SIGKILL");
});

const dir = mkdtempSync(join(tmpdir(), "iii-stream-cli-"));
function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await spawnServer(args, env);
  running.push(server);
  return server;
}

describe("command line", () => {
  it("documents every flag and environment variable in --help", async () => {
    const run = runCli(["--help"]);
    expect(await run.exited).toBe(0);
    for (const word of ["--port", "--host", "--adapter", "--config", "III_STREAM_PORT", "III_STREAM_HOST"]) {
      expect(run.output()).toContain(word);
    }
  });

  it.each(["--version", "-v"])("prints the package's version for %s and exits 0", async (flag) => {
    const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string };
    const run = runCli([flag]);
    expect(await run.exited).toBe(0);
    expect(run.output()).toBe(`${version}\n`);
  });

  it("rejects an unknown flag with the usage text", async () => {
    const run = runCli(["--prot", "1"]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain("--prot");
    expect(run.output()).toContain("Usage:");
  });

  it("names the unknown key of an invalid config and exits non-zero", async () => {
    const run = runCli(["--config", configFile("unknown.yaml", "port: 0\nprot: 5\n")]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/prot/);
  });

  it("names the key with a wrong type", async () => {
    const run = runCli(["--config", configFile("type.json", JSON.stringify({ port: "high" }))]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/port/);
  });

  it("rejects an unknown adapter name inside the config", async () => {
    const run = runCli(["--config", configFile("adapter.yaml", "adapter:\n  name: postgres\n")]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/adapter/);
  });

  it("says which address is in use", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const run = runCli(["--port", String(port), "--adapter", "memory"]);
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain(`127.0.0.1:${port}`);
      expect(run.output()).toContain("already in use");
    } finally {
      blocker.close();
    }
  });

  const plainFile = join(mkdtempSync(join(tmpdir(), "iii-stream-cli-")), "a-file");
  writeFileSync(plainFile, "not a directory");
  it.each([
    ["/proc/nope", "ENOENT"],
    ["/proc/nope/deeper", "ENOENT"],
    [join(plainFile, "data"), "exists and is not a directory"],
  ])("refuses an unusable data directory (%s) at start with exit 1 and the reason", async (dataDir, reason) => {
    // Node's recursive mkdir spun forever on /proc paths: the start must end, and say why.
    const run = runCli(["--port", "0", "--data-dir", dataDir]);
    const killer = setTimeout(() => run.child.kill("SIGKILL"), 20_000);
    try {
      expect(await run.exited).toBe(1);
    } finally {
      clearTimeout(killer);
    }
    expect(run.output()).toContain(`cannot create the data directory ${dataDir}`);
    expect(run.output()).toContain(reason);
  });

  /** Starts the server the way a user would; resolves with the child and the URL it listens on. */
  async function startAs(how: string): Promise<{ child: ChildProcess; url: string; exited: Promise<unknown> }> {
    const args = ["--port", "0", "--adapter", "memory"];
    const [command, commandArgs] =
      how === "npm start" ? ["npm", ["start", "--silent", "--", ...args]] : how === "the bin" ? [process.execPath, ["bin/iii-stream.mjs", ...args]] : [process.execPath, ["dist/src/cli/cli.js", ...args]];
    const child = spawn(command, commandArgs, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${how} did not start:\n${output}`)), 20_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on (http:\/\/\S+) \(/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    });
    return { child, url, exited };
  }

  async function refusesConnections(url: string): Promise<boolean> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = net.connect(Number(port), hostname);
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
  }

  it.each(["npm start", "the bin", "node on the built entry"].flatMap((how) => (["SIGTERM", "SIGINT"] as const).map((signal) => [how, signal] as const)))(
    "stops when %s gets %s at the PID that was started",
    async (how, signal) => {
      const { child, url, exited } = await startAs(how);
      child.kill(signal);
      await exited;
      // npm exits at once: the server it started must be gone too, its port free.
      const deadline = Date.now() + 10_000;
      while (!(await refusesConnections(url)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await refusesConnections(url)).toBe(true);
    },
  );

  it("reads a reference-style YAML config with environment placeholders", async () => {
    const path = configFile(
      "reference.yaml",
      "port: ${III_TEST_PORT:0}\nhost: 127.0.0.1\nadapter:\n  name: kv\n  config:\n    store_method: in_memory\n",
    );
    const server = await start(["--config", path], { III_TEST_PORT: "0" });
    const client = createClient(StreamService, transportFor(server.url, "connect-json-h1"));
    const reply = await client.listAll({});
    expect(reply.count).toBe(0);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  });

  it("names the reference's kv settings it accepts but ignores, once, and still starts", async () => {
    const path = configFile(
      "kv-tuning.yaml",
      "port: 0\nadapter:\n  name: kv\n  config:\n    store_method: in_memory\n    save_interval_ms: 5000\n    channel_size: 256\n",
    );
    const server = await start(["--config", path]);
    server.child.kill("SIGTERM");
    // Read once the process has exited, when both of its output pipes are drained.
    expect(await server.exited).toBe(0);
    const lines = server.output().split("\n").filter((line) => line.includes("ignored:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("adapter.config.save_interval_ms");
    expect(lines[0]).toContain("adapter.config.channel_size");

    const plain = await start(["--config", configFile("kv-plain.yaml", "port: 0\nadapter:\n  name: kv\n")]);
    plain.child.kill("SIGTERM");
    expect(await plain.exited).toBe(0);
    expect(plain.output()).not.toContain("ignored:");
  });

  it("lets the environment override the config and flags override both", async () => {
    const path = configFile("port.yaml", "port: 1\n");
    const server = await start(["--config", path, "--adapter", "memory"], { III_STREAM_PORT: "0" });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:1$/);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  });

  it("on SIGTERM ends open subscriptions with UNAVAILABLE and exits 0", async () => {
    const server = await start(["--port", "0", "--adapter", "memory"]);
    const client = createClient(StreamService, transportFor(server.url, "grpc"));
    const stream = client.subscribe({ streamName: "s", groupId: "g" })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.message.case).toBe("snapshot");
    const ended = stream.next().then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    const started = Date.now();
    server.child.kill("SIGTERM");
    const error = await ended;
    expect(error?.code).toBe(Code.Unavailable);
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
