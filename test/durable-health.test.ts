import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILE_STORE_PROBE_INTERVAL_MS } from "../src/adapters/file/write-health.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { json, value } from "./conformance/proto-values.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";

/**
 * A real full disk: a small tmpfs mounted for this file alone, so that the server's
 * writes meet ENOSPC from the kernel, as on a production disk that filled up. Mounting
 * needs root (the tests run as root); where it is refused the file is skipped and says so.
 */
const root = mkdtempSync(join(tmpdir(), "iii-stream-health-"));
const disk = join(root, "disk");
mkdirSync(disk);
let mountRefused: string | undefined;
try {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", disk], { stdio: "pipe" });
} catch (error) {
  mountRefused = String((error as { stderr?: Buffer }).stderr ?? error).trim();
}

const dataDir = join(disk, "data");
const filler = join(disk, "filler");
let server: ServerProcess | undefined;

afterAll(async () => {
  if (server) {
    server.child.kill("SIGKILL");
    await server.exited;
  }
  if (mountRefused === undefined) execFileSync("umount", [disk]);
  rmSync(root, { recursive: true, force: true });
});

/** Writes until the filesystem refuses: from here on, every new block fails with ENOSPC. */
function fillDisk(): void {
  const fd = openSync(filler, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
  } finally {
    closeSync(fd);
  }
  // The last partial chunk may have fitted; the rest of the space is gone too.
  const tail = openSync(join(disk, "filler-tail"), "w");
  try {
    for (;;) writeSync(tail, chunk, 0, 512);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
  } finally {
    closeSync(tail);
  }
}

async function healthz(url: string): Promise<{ code: number; body: unknown }> {
  const response = await fetch(`${url}/healthz`);
  return { code: response.status, body: await response.json() };
}

async function grpcHealth(url: string): Promise<ServingStatus> {
  const health = createClient(Health, transportFor(url, "grpc"));
  return (await health.check({ service: "" })).status;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(mountRefused !== undefined)(`health on a full disk${mountRefused ? ` (skipped: mount refused: ${mountRefused})` : ""}`, () => {
  beforeAll(async () => {
    server = await spawnServer(["--port", "0", "--data-dir", dataDir]);
  });

  it("says unavailable while writes fail, changes nothing, and recovers once space is back", async () => {
    const url = server!.url;
    const client = createClient(StreamService, transportFor(url, "grpc"));
    const first = await client.set({ streamName: "s", groupId: "g", itemId: "kept", data: value({ n: 1 }) });
    expect(first.offset).toBe(1n);
    expect(await healthz(url)).toStrictEqual({ code: 200, body: { status: "ok", adapter: "file" } });
    expect(await grpcHealth(url)).toBe(ServingStatus.SERVING);

    fillDisk();
    // Values of 256 KiB need new pages in the log: the disk refuses them.
    const big = "x".repeat(256 * 1024);
    const failed: string[] = [];
    let lastOffset = first.offset;
    for (let i = 0; i < 20 && failed.length < 3; i++) {
      const itemId = `big${i}`;
      try {
        lastOffset = (await client.set({ streamName: "s", groupId: "g", itemId, data: value(big) })).offset;
      } catch (error) {
        expect(ConnectError.from(error).code, String(error)).toBe(Code.Unavailable);
        expect(ConnectError.from(error).rawMessage).toMatch(/full/);
        failed.push(itemId);
      }
    }
    expect(failed.length).toBe(3);

    expect(await healthz(url)).toStrictEqual({ code: 503, body: { status: "unavailable", adapter: "file" } });
    expect(await grpcHealth(url)).toBe(ServingStatus.NOT_SERVING);

    // The probe runs meanwhile and finds the disk still full: health does not flip back.
    await sleep(FILE_STORE_PROBE_INTERVAL_MS * 1.5);
    expect((await healthz(url)).code).toBe(503);
    expect(await grpcHealth(url)).toBe(ServingStatus.NOT_SERVING);

    // The failed writes left nothing behind.
    for (const itemId of failed) {
      expect((await client.get({ streamName: "s", groupId: "g", itemId })).item).toBeUndefined();
    }

    unlinkSync(filler);
    unlinkSync(join(disk, "filler-tail"));
    const freed = Date.now();
    while ((await healthz(url)).code !== 200) {
      expect(Date.now() - freed).toBeLessThan(FILE_STORE_PROBE_INTERVAL_MS + 1500);
      await sleep(50);
    }
    expect(await healthz(url)).toStrictEqual({ code: 200, body: { status: "ok", adapter: "file" } });
    expect(await grpcHealth(url)).toBe(ServingStatus.SERVING);
    // The operator was told once each way, naming the file; the probe left nothing behind.
    expect(server!.output().match(/health checks report unavailable/g)).toHaveLength(1);
    expect(server!.output()).toMatch(/iii-stream\.db failed: database or disk is full/);
    expect(server!.output()).toMatch(/the store can write again/);
    expect(readdirSync(dataDir).filter((name) => name.includes("probe"))).toStrictEqual([]);

    // The next write succeeds, with the offset right after the last acknowledged one:
    // the failed writes used none.
    const after = await client.set({ streamName: "s", groupId: "g", itemId: failed[0], data: value("now") });
    expect(after.revision).toBe(1n);
    expect(after.offset).toBe(lastOffset + 1n);

    // And after a restart the store holds exactly the acknowledged writes.
    const acknowledged = (await client.list({ streamName: "s", groupId: "g" })).items.map((item) => item.itemId);
    server!.child.kill("SIGTERM");
    expect(await server!.exited).toBe(0);
    server = await spawnServer(["--port", "0", "--data-dir", dataDir]);
    const restarted = createClient(StreamService, transportFor(server.url, "grpc"));
    const items = (await restarted.list({ streamName: "s", groupId: "g" })).items;
    expect(items.map((item) => item.itemId)).toStrictEqual(acknowledged);
    expect(items.filter((item) => failed.slice(1).includes(item.itemId))).toStrictEqual([]);
    expect(json(items.find((item) => item.itemId === failed[0])?.data)).toBe("now");
  });
});
