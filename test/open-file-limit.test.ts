import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { RecordingLog } from "../src/index.js";
import { defaultMaxConnections } from "../src/server/connection-limits.js";
import { openFileLimitWarning } from "../src/server/open-file-limit.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { value } from "./conformance/proto-values.js";
import { PROJECT_ROOT } from "./support/process.js";
import { startServer, transportFor } from "./support/server.js";

/*
 * A low limit on open files is a predictable failure: the server says so at start, with
 * the command that raises the limit, and says so again when the descriptors in use
 * approach it, while it keeps serving the connections it has. The real server runs under
 * `prlimit --nofile=N:N` (Linux; skipped where there is no prlimit or /proc).
 */

const canLimit = process.platform === "linux" && spawnSync("prlimit", ["--version"]).status === 0;
const root = mkdtempSync(join(tmpdir(), "iii-stream-nofile-"));
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

interface Limited {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** The built CLI under a soft and hard open-file limit of `files`, on the memory adapter. */
async function startLimited(files: number, config: Record<string, unknown> = {}): Promise<Limited> {
  const configFile = join(root, `config-${files}-${children.size}.json`);
  writeFileSync(configFile, JSON.stringify({ adapter: { name: "memory" }, ...config }));
  const bin = join(PROJECT_ROOT, "bin/iii-stream.mjs");
  const child = spawn("prlimit", [`--nofile=${files}:${files}`, process.execPath, bin, "--port", "0", "--config", configFile, "--log-format", "json"], {
    cwd: PROJECT_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let text = "";
  child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 20 s:\n${text}`)), 20_000);
    const check = () => {
      const match = /listening on (http:\/\/[^\s"(]+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", check);
    void exited.then(() => reject(new Error(`exited before listening:\n${text}`)));
  });
  return {
    url,
    output: () => text,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      children.delete(child);
    },
  };
}

function connectRaw(url: string): Promise<net.Socket> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ port: Number(port), host: "127.0.0.1" });
    socket.on("error", () => undefined);
    // Connected as far as the kernel is concerned: at the limit, the server has not accepted it yet.
    socket.once("connect", () => resolve(socket));
  });
}

describe("the open-file limit at start", () => {
  it("says nothing when the connection cap fits, and names the limit and how to raise it when it does not", () => {
    expect(openFileLimitWarning(10_000, 10_000, 20_000)).toBeUndefined();
    expect(openFileLimitWarning(10_000, 10_000, undefined)).toBeUndefined();
    expect(openFileLimitWarning(500, 10_000, 1024)).toBeUndefined();
    const tooMany = openFileLimitWarning(1000, 10_000, 256);
    expect(tooMany).toMatch(/soft limit on open files is 256, below the 1250 that max_connections \(1000\) needs/);
    expect(tooMany).toContain("ulimit -n 1250");
    expect(tooMany).toContain("LimitNOFILE=1250");
    expect(tooMany).toContain("--ulimit nofile=1250:1250");
    // The default cap is 80% of the limit: it fits, but the operator learns it is lower than 10,000.
    expect(defaultMaxConnections(1024)).toBe(819);
    expect(defaultMaxConnections(undefined)).toBe(10_000);
    expect(openFileLimitWarning(819, 10_000, 1024)).toMatch(/accepts at most 819 connections instead of 10000; raise the limit to at least 12500/);
  });

  it.skipIf(!canLimit)("the server started under a low limit warns with the command that raises it", async () => {
    const server = await startLimited(256);
    try {
      expect(server.output()).toContain("the soft limit on open files is 256, so the server accepts at most 204 connections");
      expect(server.output()).toContain("ulimit -n 12500");
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!canLimit)("running out of descriptors", () => {
  it("is logged once per burst while open connections are still served, and new ones are served once descriptors free", async () => {
    const server = await startLimited(200, { max_connections: 1000, first_bytes_timeout_ms: 60_000 });
    const flood: net.Socket[] = [];
    try {
      expect(server.output()).toContain("below the 1250 that max_connections (1000) needs");
      // A client connected before the descriptors run out.
      const client = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
      await client.set({ streamName: "s", groupId: "g", itemId: "before", data: value(1) });

      // More connections than the process may open: the last ones wait in the kernel's backlog.
      for (let i = 0; i < 230; i++) flood.push(await connectRaw(server.url));
      await expect.poll(() => server.output(), { timeout: 10_000 }).toMatch(/of the 200 files this process may open are in use/);
      const warnings = server.output().match(/files this process may open are in use/g) ?? [];
      expect(warnings).toHaveLength(1);

      // The connection it has is still served, reads and writes.
      const reply = await client.set({ streamName: "s", groupId: "g", itemId: "during", data: value(2) });
      expect(reply.revision).toBe(1n);
      expect((await client.get({ streamName: "s", groupId: "g", itemId: "before" })).item?.revision).toBe(1n);

      for (const socket of flood) socket.destroy();
      // Once descriptors are free, a new client is served.
      const fresh = createClient(StreamService, transportFor(server.url, "connect-json-h1"));
      expect((await fresh.get({ streamName: "s", groupId: "g", itemId: "during" })).item?.revision).toBe(1n);
    } finally {
      for (const socket of flood) socket.destroy();
      await server.stop();
    }
  });
});

describe("the connection cap", () => {
  it("is logged once when reached, and again only after the count fell back", async () => {
    const log = new RecordingLog("warn");
    const running = await startServer({ log, connections: { maxConnections: 5 } });
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 9; i++) sockets.push(await connectRaw(running.url));
      await expect.poll(() => running.server.connectionStats().refused, { timeout: 5000 }).toBe(4);
      const capWarnings = () => log.records.filter((record) => record.message.includes("the most max_connections allows"));
      expect(capWarnings()).toHaveLength(1);
      expect(capWarnings()[0].message).toMatch(/^5 connections are open/);
      for (const socket of sockets.splice(0)) socket.destroy();
      await expect.poll(() => running.server.connectionStats().open).toBe(0);
      for (let i = 0; i < 6; i++) sockets.push(await connectRaw(running.url));
      await expect.poll(() => capWarnings(), { timeout: 5000 }).toHaveLength(2);
    } finally {
      for (const socket of sockets) socket.destroy();
      await running.stop();
    }
  });
});
