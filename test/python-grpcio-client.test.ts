import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryItemStore, type ItemStore } from "../src/index.js";
import { PROJECT_ROOT } from "./support/process.js";
import { startServer, type RunningServer } from "./support/server.js";

/**
 * A gRPC client outside the Connect world, with its default limits: Debian's
 * python3-grpcio, whose channel refuses any message over 4 MB. A 20,000-item group of
 * 1 KB items is about 21 MB, so it can read the group only through List pages and a
 * snapshot in chunks. The script is test/python/page-and-snapshot.py.
 */

const SCRIPT = join(PROJECT_ROOT, "test/python/page-and-snapshot.py");
const STREAM = "python";
const GROUP = "big";
const ITEMS = 20_000;
/** Each item's value is a string of this many characters: with its id and metadata, about 1 KB encoded. */
const TEXT_CHARS = 1_000;
/** The server's default List page size (ListRequest.page_size 0). */
const DEFAULT_PAGE_SIZE = 1_000;
/** The server's snapshot chunk size: the encoded items of one Snapshot message, at most. */
const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/**
 * Bytes a chunk's message may have beyond the chunk size: the SubscribeResponse and Snapshot
 * envelopes, and each item's tag and length should the server count only the items themselves.
 */
const SNAPSHOT_FRAMING_BYTES = 1024;
/** gRPC's default receive limit, which the Python channel keeps. */
const GRPC_DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/**
 * The first Python that imports grpc and google.protobuf. Debian installs python3-grpcio
 * for /usr/bin/python3, which need not be the `python3` first on PATH (pyenv, a venv).
 */
function findPython(): string | undefined {
  const candidates = [process.env.PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string => !!c);
  return candidates.find(
    (python) => spawnSync(python, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" }).status === 0,
  );
}

const python = findPython();
/** CI installs python3-grpcio (.ci/run), so there a missing one is a failure, not a skip. */
const required = process.env.CI === "true";
const skip = python === undefined && !required;
if (skip) {
  console.warn(
    "python-grpcio-client.test.ts skipped: no python3 imports grpc and google.protobuf " +
      "(install Debian's python3-grpcio, or set PYTHON to an interpreter that has grpcio and protobuf)",
  );
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the script to completion. Asynchronous: the server answering it lives in this process. */
function runPython(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(python!, [SCRIPT, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Creates the group's items through the store port, a thousand at a time: what the
 * Python client reads is the point, and 20,000 Sets over the network would take most
 * of the test's time. Returns their ids in insertion (offset) order.
 */
async function fillGroup(store: ItemStore): Promise<{ ids: string[]; lastOffset: bigint }> {
  const created: { id: string; offset: number }[] = [];
  for (let start = 0; start < ITEMS; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, ITEMS - start) }, (_, i) => `item-${String(start + i).padStart(5, "0")}`);
    const results = await Promise.all(
      ids.map((id) =>
        store.commit({ streamName: STREAM, groupId: GROUP, itemId: id, expectedRevision: 0, value: id.padEnd(TEXT_CHARS, "."), timestampMs: Date.now() }),
      ),
    );
    results.forEach((result, i) => {
      if (!result.ok) throw new Error(`could not create ${ids[i]}`);
      created.push({ id: ids[i], offset: result.change.offset });
    });
  }
  created.sort((a, b) => a.offset - b.offset);
  return { ids: created.map((c) => c.id), lastOffset: BigInt(created[created.length - 1]!.offset) };
}

describe.skipIf(skip)("a Python grpcio client with default limits", () => {
  let running: RunningServer | undefined;
  let dir: string | undefined;
  let descriptors: string;
  let expectedIds: string;
  let lastOffset: bigint;

  beforeAll(async () => {
    if (python === undefined) {
      throw new Error("CI=true but no python3 imports grpc: .ci/run installs Debian's python3-grpcio");
    }
    dir = await mkdtemp(join(tmpdir(), "iii-stream-python-"));
    // What a client in any language starts from: the descriptor set of the proto module.
    descriptors = join(dir, "descriptors.binpb");
    await promisify(execFile)("npx", ["buf", "build", "--as-file-descriptor-set", "-o", descriptors], {
      cwd: PROJECT_ROOT,
    });
    const store = new MemoryItemStore();
    running = await startServer({ backend: { items: store } });
    const filled = await fillGroup(store);
    lastOffset = filled.lastOffset;
    expectedIds = join(dir, "expected-ids.txt");
    await writeFile(expectedIds, filled.ids.join("\n") + "\n");
  }, 300_000);

  afterAll(async () => {
    await running?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("builds the messages from the descriptor set buf writes", async () => {
    const run = await runPython(["--dry-run", descriptors]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ dryRun: true });
  });

  it("pages through the group, reads its chunked snapshot and gets INVALID_ARGUMENT for bad pages", async () => {
    const target = new URL(running!.url).host;
    const run = await runPython([target, descriptors, STREAM, GROUP, expectedIds]);
    // The script checked the ids itself (each once, in insertion order); its stderr says what failed.
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split("\n").pop()!) as {
      items: number;
      pages: number;
      pageItems: number[];
      listTextChars: number;
      chunks: number;
      snapshotOffset: number;
      snapshotTextChars: number;
      badInputs: Record<string, string>;
      largestPageBytes: number;
      largestChunkBytes: number;
    };
    expect(summary.items).toBe(ITEMS);

    // Full pages of the default size; the last may be followed by no empty one at all.
    const fullPages = ITEMS / DEFAULT_PAGE_SIZE;
    expect(summary.pageItems.slice(0, fullPages)).toEqual(Array(fullPages).fill(DEFAULT_PAGE_SIZE));
    expect(summary.pageItems.slice(fullPages).every((n) => n === 0)).toBe(true);
    expect(summary.pages).toBeLessThanOrEqual(fullPages + 1);
    expect(summary.listTextChars).toBe(ITEMS * TEXT_CHARS);
    expect(summary.largestPageBytes).toBeLessThan(GRPC_DEFAULT_MAX_RECEIVE_BYTES);

    // The whole group, about 21 MB, in chunks of at most the chunk size, all at the group's offset.
    expect(summary.snapshotOffset).toBe(Number(lastOffset));
    expect(summary.snapshotTextChars).toBe(ITEMS * TEXT_CHARS);
    expect(summary.largestChunkBytes).toBeLessThanOrEqual(SNAPSHOT_CHUNK_BYTES + SNAPSHOT_FRAMING_BYTES);
    expect(summary.chunks).toBeGreaterThanOrEqual(Math.ceil((ITEMS * TEXT_CHARS) / SNAPSHOT_CHUNK_BYTES));

    expect(summary.badInputs).toEqual({
      "page_token garbage": "INVALID_ARGUMENT",
      "page_size -1": "INVALID_ARGUMENT",
    });
  });
});
