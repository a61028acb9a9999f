import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { chooseAdapter } from "../src/cli/config-to-options.js";
import { FileStore } from "../src/index.js";
import { ConfigError } from "../src/cli/config.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { json, value } from "./conformance/proto-values.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-persist-"));
const running = new Set<ServerProcess>();

afterAll(() => {
  for (const server of running) server.child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/** Starts the real binary in `cwd` (default: the project, as `npm start` runs it). */
async function startIn(cwd: string | undefined, args: string[]): Promise<{ server: ServerProcess; client: Client<typeof StreamService> }> {
  const server = await spawnServer(["--port", "0", ...args], {}, 20_000, cwd);
  running.add(server);
  void server.exited.then(() => running.delete(server));
  return { server, client: createClient(StreamService, transportFor(server.url, "grpc")) };
}

async function stop(server: ServerProcess, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  server.child.kill(signal);
  expect(await server.exited).toBe(signal === "SIGTERM" ? 0 : "SIGKILL");
}

async function listed(client: Client<typeof StreamService>, groupId: string) {
  const { items } = await client.list({ streamName: "s", groupId });
  return items.map((item) => [item.itemId, json(item.data), Number(item.revision)]);
}

describe("the default store", () => {
  it("is the file adapter in ./data: stop, start again, and everything is there", async () => {
    const clone = join(root, "clone");
    mkdirSync(clone);
    let { server, client } = await startIn(clone, []);
    expect(server.output()).toContain(`(adapter: file, data: ${join(clone, "data")})`);
    const key = (groupId: string, itemId: string) => ({ streamName: "s", groupId, itemId });
    for (const id of ["c", "a", "b"]) await client.set({ ...key("g", id), data: value({ id }) });
    await client.set({ ...key("g", "a"), data: value("a2") });
    await client.delete(key("g", "c"));
    await client.set({ ...key("g", "c"), data: value("c again") });
    await client.set({ ...key("gone", "x"), data: value(1) });
    await client.delete(key("gone", "x"));
    await client.set({ ...key("other", "y"), data: value(true) });
    await stop(server);

    ({ server, client } = await startIn(clone, []));
    // Insertion order survives: an overwrite keeps its place, delete + re-create moves to the end.
    expect(await listed(client, "g")).toStrictEqual([
      ["a", "a2", 2],
      ["b", { id: "b" }, 1],
      ["c", "c again", 1],
    ]);
    expect((await client.listGroups({ streamName: "s" })).groups).toStrictEqual(["g", "other"]);
    // The emptied group left only its offset behind: it goes on from 2, never repeats 1 or 2.
    expect(Number((await client.set({ ...key("gone", "x"), data: value(2) })).offset)).toBe(3);
    expect(Number((await client.set({ ...key("g", "d"), data: value(null) })).offset)).toBe(7);
    await stop(server);
  });

  it("--adapter memory writes no data directory", async () => {
    const clone = join(root, "memory");
    mkdirSync(clone);
    const { server, client } = await startIn(clone, ["--adapter", "memory"]);
    expect(server.output()).toContain("(adapter: memory)");
    await client.set({ streamName: "s", groupId: "g", itemId: "i", data: value(1) });
    await stop(server);
    expect(existsSync(join(clone, "data"))).toBe(false);
  });

  it("in relaxed mode (--sync-interval-ms) a killed process loses nothing either", async () => {
    const dataDir = join(root, "relaxed");
    let { server, client } = await startIn(undefined, ["--data-dir", dataDir, "--sync-interval-ms", "1000"]);
    for (let i = 0; i < 20; i++) await client.set({ streamName: "s", groupId: "g", itemId: `i${i}`, data: value(i) });
    await stop(server, "SIGKILL");
    ({ server, client } = await startIn(undefined, ["--data-dir", dataDir]));
    expect((await listed(client, "g")).length).toBe(20);
    await stop(server);
  });
});

describe("choosing the store from a config file", () => {
  it("a reference kv config with store_method file_based uses the file adapter in file_path", async () => {
    const dataDir = join(root, "kv-store");
    const config = join(root, "kv.yaml");
    writeFileSync(config, `adapter:\n  name: kv\n  config:\n    store_method: file_based\n    file_path: ${dataDir}\n    save_interval_ms: 5000\n`);
    let { server, client } = await startIn(undefined, ["--config", config]);
    expect(server.output()).toContain(`(adapter: file, data: ${dataDir})`);
    await client.set({ streamName: "s", groupId: "g", itemId: "kept", data: value("yes") });
    await stop(server, "SIGKILL");

    ({ server, client } = await startIn(undefined, ["--config", config]));
    expect(await listed(client, "g")).toStrictEqual([["kept", "yes", 1]]);
    await stop(server);
  });

  it("maps each adapter setting; flags win over the config file", () => {
    expect(chooseAdapter(undefined, undefined)).toStrictEqual({ name: "file", dataDir: "data" });
    expect(chooseAdapter(undefined, { name: "kv", config: { store_method: "in_memory" } })).toStrictEqual({ name: "memory" });
    expect(chooseAdapter(undefined, { name: "kv" })).toStrictEqual({ name: "memory" });
    expect(chooseAdapter(undefined, { name: "kv", config: { store_method: "file_based", file_path: "/kv" } })).toStrictEqual({
      name: "file",
      dataDir: "/kv",
    });
    expect(chooseAdapter(undefined, { name: "file", config: { file_path: "/f", sync_interval_ms: 200 } })).toStrictEqual({
      name: "file",
      dataDir: "/f",
      syncIntervalMs: 200,
    });
    expect(chooseAdapter("file", { name: "file", config: { file_path: "/f" } }, { dataDir: "/flag", syncIntervalMs: 5 })).toStrictEqual({
      name: "file",
      dataDir: "/flag",
      syncIntervalMs: 5,
    });
    expect(chooseAdapter("memory", { name: "file" })).toStrictEqual({ name: "memory" });
    expect(() => chooseAdapter("memory", undefined, { dataDir: "/x" })).toThrow(ConfigError);
    expect(() => chooseAdapter("disk", undefined)).toThrow(/unknown adapter "disk"/);
  });
});

describe("registrations in the store", () => {
  it("keeps remote functions and triggers across a reopen, and announces each change", async () => {
    const dataDir = join(root, "registrations");
    let adapter = FileStore.open({ dataDir });
    let changes = 0;
    adapter.registrations.onChange(() => changes++);
    await adapter.registrations.saveFunction({ functionId: "f", url: "http://127.0.0.1:9000" });
    await adapter.registrations.saveFunction({ functionId: "gone", url: "http://127.0.0.1:9001" });
    await adapter.registrations.saveTrigger({ triggerId: "t", type: "stream", functionId: "f", config: { streamName: "s" } });
    expect(await adapter.registrations.deleteFunction("gone")).toBe(true);
    expect(await adapter.registrations.deleteTrigger("never")).toBe(false);
    expect(changes).toBe(4);
    await adapter.close();

    adapter = FileStore.open({ dataDir });
    try {
      expect(await adapter.registrations.load()).toStrictEqual({
        functions: [{ functionId: "f", url: "http://127.0.0.1:9000" }],
        triggers: [{ triggerId: "t", type: "stream", functionId: "f", config: { streamName: "s" } }],
      });
    } finally {
      await adapter.close();
    }
  });
});
