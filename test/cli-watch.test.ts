import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamClient, type StreamClient } from "../src/client/node.js";
import { MemoryItemStore } from "../src/index.js";
import { BIN, startWatch, type WatchProcess } from "./support/cli-client.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { startServer, type RunningServer } from "./support/server.js";

const HISTORY_LIMIT = 3;
let running: RunningServer;
let client: StreamClient;
const watches = new Set<WatchProcess>();
const servers = new Set<ServerProcess>();
const dataRoot = mkdtempSync(join(tmpdir(), "iii-stream-cli-watch-"));

beforeAll(async () => {
  running = await startServer({ backend: { items: new MemoryItemStore({ historyLimit: HISTORY_LIMIT }) } });
  client = createStreamClient({ baseUrl: running.url });
});
afterAll(async () => {
  for (const watch of watches) watch.child.kill("SIGKILL");
  for (const server of servers) server.child.kill("SIGKILL");
  client?.close();
  await running?.stop();
  rmSync(dataRoot, { recursive: true, force: true });
});

function watch(args: string[], env?: NodeJS.ProcessEnv): WatchProcess {
  const started = startWatch(args, env);
  watches.add(started);
  void started.exited.then(() => watches.delete(started));
  return started;
}

/** Ends a watch the way a person or a supervisor would; it exits 0. */
async function stop(started: WatchProcess, signal: "SIGINT" | "SIGTERM" = "SIGINT"): Promise<void> {
  started.child.kill(signal);
  expect(await started.exited).toBe(0);
}

describe("iii-stream watch", () => {
  it("prints the state, then every change and event as JSON lines, each with its offset", async () => {
    await client.set("w", "g1", "a", { n: 1 });
    await client.set("w", "g1", "b", "two");
    const started = watch(["w", "g1", "--url", running.url]);
    await started.untilLines(2);
    expect(started.lines).toEqual([
      { kind: "item", itemId: "a", data: { n: 1 }, revision: 1, updatedAtMs: expect.any(Number), offset: 2 },
      { kind: "item", itemId: "b", data: "two", revision: 1, updatedAtMs: expect.any(Number), offset: 2 },
    ]);

    await client.update("w", "g1", "a", [{ type: "increment", path: ["n"], by: 2 }]);
    await client.send("w", "g1", "ping", { at: 1 });
    await client.delete("w", "g1", "b");
    await client.set("w", "g1", "c", [3]);
    await started.untilLines(6);
    expect(started.lines.slice(2)).toEqual([
      { kind: "change", type: "update", itemId: "a", data: { n: 3 }, revision: 2, offset: 3, timestampMs: expect.any(Number) },
      { kind: "event", type: "ping", data: { at: 1 }, offset: 3, timestampMs: expect.any(Number) },
      { kind: "change", type: "delete", itemId: "b", data: "two", revision: 1, offset: 4, timestampMs: expect.any(Number) },
      { kind: "change", type: "create", itemId: "c", data: [3], revision: 1, offset: 5, timestampMs: expect.any(Number) },
    ]);
    await stop(started, "SIGTERM");
    // Not a terminal: nothing on standard error.
    expect(started.stderr()).toBe("");
  });

  it("watches one item", async () => {
    await client.set("w", "g2", "a", 1);
    await client.set("w", "g2", "b", 1);
    const started = watch(["w", "g2", "b", "--url", running.url]);
    await started.untilLines(1);
    await client.set("w", "g2", "a", 2);
    await client.set("w", "g2", "b", 2);
    await started.untilLines(2);
    expect(started.lines).toMatchObject([
      { kind: "item", itemId: "b", data: 1, offset: 2 },
      { kind: "change", type: "update", itemId: "b", data: 2, offset: 4 },
    ]);
    await stop(started);
  });

  it("--from-offset prints only the changes after it; when history no longer has them, a reset and the whole state", async () => {
    for (let n = 1; n <= 5; n++) await client.set("w", "g3", `i${n % 2}`, n);
    const resumed = watch(["w", "g3", "--from-offset", "3", "--url", running.url]);
    await resumed.untilLines(2);
    expect(resumed.lines).toMatchObject([
      { kind: "change", type: "update", itemId: "i0", data: 4, offset: 4 },
      { kind: "change", type: "update", itemId: "i1", data: 5, offset: 5 },
    ]);
    await stop(resumed);

    // The server keeps the last 3 changes: offset 1 is too far back.
    const reset = watch(["w", "g3", "--from-offset", "1", "--url", running.url]);
    await reset.untilLines(3);
    expect(reset.lines).toEqual([
      { kind: "reset", reason: "history", message: expect.any(String), offset: 5, previousOffset: 1 },
      { kind: "item", itemId: "i1", data: 5, revision: 3, updatedAtMs: expect.any(Number), offset: 5 },
      { kind: "item", itemId: "i0", data: 4, revision: 2, updatedAtMs: expect.any(Number), offset: 5 },
    ]);
    await stop(reset);
  });

  it("ends with exit 6 when the server wants an API key it was not given, and 2 for a bad name", async () => {
    const keyed = await startServer({ apiKeys: ["watch-key-0123456789"] });
    try {
      const refused = watch(["w", "g", "--url", keyed.url]);
      expect(await refused.exited).toBe(6);
      expect(refused.stderr()).toContain("unauthenticated");
      const allowed = watch(["w", "g", "--url", keyed.url], { III_STREAM_API_KEY: "watch-key-0123456789" });
      const keyedClient = createStreamClient({ baseUrl: keyed.url, apiKey: "watch-key-0123456789" });
      await keyedClient.set("w", "g", "a", 1);
      keyedClient.close();
      await allowed.untilLines(1);
      expect(allowed.lines[0]).toMatchObject({ itemId: "a", data: 1 });
      await stop(allowed);
    } finally {
      await keyed.stop();
    }
    const badName = watch(["w", "n".repeat(300), "--url", running.url]);
    expect(await badName.exited).toBe(2);
    expect(badName.stderr()).toContain("invalid_argument");
  });

  it("shows a status line on a terminal", async (context) => {
    if (spawnSync("script", ["--version"]).status !== 0) context.skip();
    await client.set("w", "tty", "a", 1);
    // script(1) gives the watch a pseudo-terminal; the shell says the watch's PID first.
    const command = `echo PID $$; exec ${process.execPath} ${BIN} watch w tty --url ${running.url}`;
    const script = spawn("script", ["-qec", command, "/dev/null"], { stdio: ["ignore", "pipe", "inherit"] });
    let screen = "";
    const live = new Promise<void>((resolve) =>
      script.stdout.on("data", (chunk: Buffer) => {
        screen += chunk.toString();
        if (screen.includes("live: w/tty at offset 1")) resolve();
      }),
    );
    const exited = new Promise((resolve) => script.once("close", resolve));
    await live;
    process.kill(Number(/PID (\d+)/.exec(screen)![1]), "SIGINT");
    expect(await exited).toBe(0);
    expect(screen).toContain('{"kind":"item","itemId":"a","data":1');
    // The status is redrawn in place, and erased before the watch ends.
    expect(screen).toContain("\r\x1b[Klive: w/tty at offset 1");
    expect(screen.trimEnd().endsWith("\r\x1b[K")).toBe(true);
  });
});

describe("iii-stream watch across server restarts", () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`prints every change exactly once while the server is stopped with ${signal} and started again`, async () => {
      const dataDir = join(dataRoot, signal);
      const start = async (port: string) => {
        const server = await spawnServer(["--port", port, "--data-dir", dataDir]);
        servers.add(server);
        void server.exited.then(() => servers.delete(server));
        return server;
      };
      let server = await start("0");
      const url = server.url;
      const port = new URL(url).port;
      const writer = createStreamClient({ baseUrl: url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
      try {
        await writer.set("r", "g", "seed", 0);
        const started = watch(["r", "g", "--url", url]);
        await started.untilLines(1);

        // Writes that were acknowledged; a write whose reply was lost to the kill may have
        // committed too, and then shows up as a change like any other.
        let acknowledged = 0;
        const write = async (n: number) => {
          for (;;) {
            try {
              await writer.set("r", "g", `k${n % 7}`, n);
              acknowledged++;
              return;
            } catch {
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
          }
        };
        for (let n = 1; n <= 20; n++) await write(n);
        for (let restart = 0; restart < 2; restart++) {
          const writing = (async () => {
            for (let n = 0; n < 10; n++) await write(100 * (restart + 1) + n);
          })();
          server.child.kill(signal);
          await server.exited;
          server = await start(port);
          await writing;
          for (let n = 10; n < 20; n++) await write(100 * (restart + 1) + n);
        }
        expect(acknowledged).toBe(60);

        // Every change the store holds, read back: the watch must have printed exactly these.
        const final = await writer.set("r", "g", "last", "end");
        const items = [];
        for await (const page of writer.list("r", "g")) items.push(...page);
        await started.untilLines(1 + final.offset - 1);
        await stop(started);

        // The seed's state line, then changes only: no reset, no state printed again.
        const changes = started.lines.slice(1);
        expect(started.lines[0]).toMatchObject({ kind: "item", itemId: "seed", offset: 1 });
        expect(changes.filter((line) => line.kind !== "change")).toEqual([]);
        // Offsets 2 .. final, each once, in order: nothing lost, nothing repeated.
        expect(changes.map((line) => line.offset)).toEqual(Array.from({ length: final.offset - 1 }, (_, index) => index + 2));
        // Replaying the lines gives the store's state.
        const replayed = new Map<string, unknown>();
        for (const line of started.lines) {
          if (line.kind === "change" && line.type === "delete") replayed.delete(line.itemId as string);
          else replayed.set(line.itemId as string, line.data);
        }
        expect([...replayed].sort()).toEqual(items.map((item) => [item.itemId, item.data]).sort());
      } finally {
        writer.close();
        server.child.kill("SIGKILL");
      }
    });
  }
});
