import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { STORE_FILE_NAME, StoreOpenError } from "../src/adapters/file/open-store.js";
import { FileStore } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { value } from "./conformance/proto-values.js";
import { runCli, spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-store-errors-"));
const running = new Set<ServerProcess>();

afterAll(() => {
  for (const server of running) server.child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/** A data directory holding a real store with a few items, closed cleanly. */
async function storeWithItems(name: string): Promise<string> {
  const dataDir = join(root, name);
  const adapter = FileStore.open({ dataDir });
  for (let i = 0; i < 50; i++) {
    await adapter.commit({ streamName: "s", groupId: "g", itemId: `i${i}`, expectedRevision: 0, value: { i }, timestampMs: 1 });
  }
  await adapter.close();
  return dataDir;
}

/** Every file of the directory with its bytes, to show a failed start changed nothing. */
function contents(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

async function expectStartToFail(dataDir: string, message: RegExp): Promise<string> {
  const run = runCli(["--port", "0", "--data-dir", dataDir]);
  const code = await run.exited;
  expect(code, run.output()).toBe(1);
  expect(run.output()).toMatch(message);
  return run.output();
}

describe("one process per data directory", () => {
  it("a second server on the same directory fails at start and the first keeps working", async () => {
    const dataDir = join(root, "locked");
    const first = await spawnServer(["--port", "0", "--data-dir", dataDir]);
    running.add(first);
    try {
      const output = await expectStartToFail(dataDir, /another process is using the data directory/);
      expect(output).toContain(dataDir);
      const client = createClient(StreamService, transportFor(first.url, "grpc"));
      const reply = await client.set({ streamName: "s", groupId: "g", itemId: "i", data: value("still mine") });
      expect(reply.revision).toBe(1n);
    } finally {
      first.child.kill("SIGTERM");
      expect(await first.exited).toBe(0);
    }
  });

  it("the lock also holds within one process, and is released on close", async () => {
    const dataDir = join(root, "in-process");
    const first = FileStore.open({ dataDir });
    expect(() => FileStore.open({ dataDir })).toThrow(/another process is using the data directory/);
    await first.close();
    const again = FileStore.open({ dataDir });
    await again.close();
  });
});

describe("a damaged store fails the start, names the file and is left untouched", () => {
  it("random bytes over the whole database file", async () => {
    const dataDir = await storeWithItems("garbage");
    const file = join(dataDir, STORE_FILE_NAME);
    writeFileSync(file, randomBytes(readFileSync(file).length));
    const before = contents(dataDir);
    const output = await expectStartToFail(dataDir, /is damaged or not an iii-stream store/);
    expect(output).toContain(file);
    expect(contents(dataDir)).toStrictEqual(before);
  });

  it("random bytes over the header", async () => {
    const dataDir = await storeWithItems("header");
    const file = join(dataDir, STORE_FILE_NAME);
    const fd = openSync(file, "r+");
    writeSync(fd, randomBytes(100), 0, 100, 0);
    closeSync(fd);
    const before = contents(dataDir);
    expect(await expectStartToFail(dataDir, /is damaged or not an iii-stream store/)).toContain(file);
    expect(contents(dataDir)).toStrictEqual(before);
  });

  it("an SQLite database of another application", () => {
    const dataDir = join(root, "foreign");
    mkdirSync(dataDir);
    const foreign = new Database(join(dataDir, STORE_FILE_NAME));
    foreign.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
    foreign.close();
    const before = contents(dataDir);
    expect(() => FileStore.open({ dataDir })).toThrow(/of another application/);
    expect(contents(dataDir)).toStrictEqual(before);
  });

  it("a data directory that is a file", () => {
    const path = join(root, "not-a-directory");
    writeFileSync(path, "x");
    expect(() => FileStore.open({ dataDir: path })).toThrow(StoreOpenError);
    expect(() => FileStore.open({ dataDir: path })).toThrow(/cannot create the data directory/);
  });
});
