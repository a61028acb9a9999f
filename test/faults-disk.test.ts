import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";
import { json, plain } from "./support/subscribe-view.js";

/*
 * The file adapter's disk failing under a running server (the real CLI): a full disk (a
 * small tmpfs) and a filesystem the kernel turns read-only on an error (ext4 on a loop
 * device with errors=remount-ro, its error triggered through /sys). Writes fail with
 * UNAVAILABLE, nothing acknowledged is lost, reads go on, and the data is all there after
 * the disk is fixed.
 *
 * These need mount (root with CAP_SYS_ADMIN; the loop device for the second). Where mount
 * is not permitted they are skipped with a message saying so, also under CI=true: CI
 * runners are often unprivileged containers, and the rest of the suite must run there.
 * Set III_STREAM_REQUIRE_MOUNT_FAULTS=1 to make a missing permission a failure instead.
 *
 * A plain `mount -o remount,ro` (or a read-only bind mount) cannot be used for the second:
 * the kernel refuses it with EBUSY while the server holds its store open for writing, so
 * an operator cannot do that to a running server; an I/O error can, and that is simulated.
 */

const root = mkdtempSync(join(tmpdir(), "iii-stream-disk-faults-"));
const cleanups: Array<() => void> = [];

afterAll(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  rmSync(root, { recursive: true, force: true });
});

function sh(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** Unmounts for good (a lazy unmount only when busy), which also frees a loop device. */
function unmount(mountPoint: string): void {
  if (!sh("umount", [mountPoint]).ok) sh("umount", ["-l", mountPoint]);
}

/** Whether this process may mount (tried for real on a scratch directory). */
const mountable = (() => {
  if (process.platform !== "linux") return "not Linux";
  const probe = join(root, "probe");
  mkdirSync(probe);
  const tried = sh("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
  if (!tried.ok) return `mount is not permitted here (${tried.output.trim()})`;
  sh("umount", [probe]);
  return undefined;
})();
if (mountable && process.env.III_STREAM_REQUIRE_MOUNT_FAULTS === "1") throw new Error(`III_STREAM_REQUIRE_MOUNT_FAULTS=1, but ${mountable}`);
if (mountable) console.log(`faults-disk: skipped: ${mountable}`);

const servers = new Set<ServerProcess>();
cleanups.push(() => {
  for (const server of servers) server.child.kill("SIGKILL");
});

async function start(dataDir: string): Promise<{ server: ServerProcess; client: Client<typeof StreamService> }> {
  const server = await spawnServer(["--port", "0", "--data-dir", dataDir]);
  servers.add(server);
  return { server, client: createClient(StreamService, transportFor(server.url, "connect-binary-h2")) };
}

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill("SIGTERM");
  await server.exited;
  servers.delete(server);
}

const target = (itemId: string) => ({ streamName: "disk", groupId: "g", itemId });

/** Writes item `i` with a value of `bytes`; the acknowledged ones go into `acked`. */
async function write(client: Client<typeof StreamService>, i: number, bytes: number, acked: Map<string, string>): Promise<ConnectError | undefined> {
  const itemId = `i${i}`;
  const text = `${i}:`.padEnd(bytes, "x");
  try {
    await client.set({ ...target(itemId), data: json(text) });
    acked.set(itemId, text);
    return undefined;
  } catch (error) {
    return ConnectError.from(error);
  }
}

async function expectAll(client: Client<typeof StreamService>, acked: Map<string, string>): Promise<void> {
  let missing = 0;
  for (const [itemId, text] of acked) {
    const reply = await client.get(target(itemId));
    if (plain(reply.item?.data) !== text) missing++;
  }
  expect(missing, `acknowledged writes missing out of ${acked.size}`).toBe(0);
}

describe.skipIf(mountable !== undefined)("a disk fault under a running server", () => {
  it("a full disk: writes fail with UNAVAILABLE, nothing acknowledged is lost, writes resume when space is freed, a restart keeps all", async () => {
    const mountPoint = join(root, "full");
    mkdirSync(mountPoint);
    expect(sh("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint]).ok).toBe(true);
    cleanups.push(() => unmount(mountPoint));
    const dataDir = join(mountPoint, "data");
    const acked = new Map<string, string>();
    let { server, client } = await start(dataDir);

    const failures: ConnectError[] = [];
    let i = 0;
    while (failures.length < 5 && i < 400) {
      const failure = await write(client, i++, 32 * 1024, acked);
      if (failure) failures.push(failure);
    }
    expect(failures.length, "the disk never filled").toBe(5);
    for (const failure of failures) expect([Code[failure.code], failure.message]).toEqual(["Unavailable", expect.any(String)]);
    // Reads still work while the disk is full.
    await expectAll(client, acked);

    expect(sh("mount", ["-o", "remount,size=64m", mountPoint]).ok).toBe(true);
    let resumed: ConnectError | undefined = new ConnectError("not tried");
    for (let attempt = 0; attempt < 50 && resumed; attempt++) {
      resumed = await write(client, i++, 32 * 1024, acked);
      if (resumed) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(resumed, "writes did not resume after space was freed").toBeUndefined();
    console.log(`faults-disk: full disk after ${acked.size - 1} acknowledged 32 KiB writes; ${failures.length} refused: ${failures[0].message}`);
    await expectAll(client, acked);

    await stop(server);
    ({ server, client } = await start(dataDir));
    await expectAll(client, acked);
    await stop(server);
  });

  it("a filesystem turned read-only by an I/O error: writes fail with UNAVAILABLE, reads go on, everything acknowledged is there after the repair", async (context) => {
    const image = join(root, "ext4.img");
    const mountPoint = join(root, "ext4");
    mkdirSync(mountPoint);
    expect(sh("truncate", ["-s", "32M", image]).ok).toBe(true);
    const formatted = sh("mkfs.ext4", ["-q", "-F", image]);
    const mounted = formatted.ok && sh("mount", ["-o", "loop,errors=remount-ro", image, mountPoint]);
    if (!mounted || !mounted.ok) {
      context.skip(`no ext4 loop mount here (${formatted.output}${mounted ? mounted.output : ""})`);
      return;
    }
    cleanups.push(() => unmount(mountPoint));
    const device = sh("findmnt", ["-n", "-o", "SOURCE", mountPoint]).output.trim().split("/").pop()!;
    const dataDir = join(mountPoint, "data");
    const acked = new Map<string, string>();
    let { server, client } = await start(dataDir);
    let i = 0;
    for (; i < 50; i++) expect(await write(client, i, 1024, acked)).toBeUndefined();

    // What the kernel does on a metadata error with errors=remount-ro.
    expect(sh("sh", ["-c", `echo 1 > /sys/fs/ext4/${device}/trigger_fs_error`]).ok).toBe(true);
    const failures: ConnectError[] = [];
    for (let n = 0; n < 10; n++) {
      const failure = await write(client, i++, 1024, acked);
      if (failure) failures.push(failure);
    }
    expect(failures.length, "writes went on on a read-only filesystem").toBeGreaterThan(0);
    for (const failure of failures) expect(Code[failure.code]).toBe("Unavailable");
    console.log(`faults-disk: read-only after ${acked.size} acknowledged writes; ${failures.length} of 10 refused: ${failures[0].message}`);
    await expectAll(client, acked);

    // The repair an operator makes: stop, unmount, check, mount again, start.
    await stop(server);
    expect(sh("umount", [mountPoint]).ok).toBe(true);
    sh("e2fsck", ["-f", "-y", image]);
    expect(sh("mount", ["-o", "loop", image, mountPoint]).ok).toBe(true);
    ({ server, client } = await start(dataDir));
    await expectAll(client, acked);
    expect(await write(client, i++, 1024, acked)).toBeUndefined();
    await stop(server);
  });
});
