import http from "node:http";
import http2 from "node:http2";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ErrorCode } from "../src/index.js";
import { HostAllowList, hostsNotice, hostsProblem } from "../src/access/hosts.js";
import { runCli, spawnServer } from "./support/process.js";
import { startServer, type RunningServer } from "./support/server.js";

/*
 * DNS rebinding: a page on rebind.attacker.test whose name later resolves to 127.0.0.1
 * is same-origin with the server to the browser, which then sends Host (and Origin)
 * rebind.attacker.test:PORT. The server must answer only for the names it is meant to.
 */

interface Answer {
  status: number;
  body: string;
}

const SET_PATH = "/iii.stream.v1.StreamService/Set";
const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";

/** A Connect streaming request body: one uncompressed JSON message in its envelope. */
function envelope(message: object): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(5);
  header.writeUInt32BE(json.length, 1);
  return Buffer.concat([header, json]);
}

/**
 * One HTTP/1.1 request with the given Host (and an Origin of the same name, as a
 * rebound page sends); resolves with the status and the first bytes of the body, then
 * drops the connection (a Subscribe would stream forever).
 */
function h1(url: string, host: string, method: string, path: string, body?: Buffer, contentType?: string): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const request = http.request({
      hostname,
      port,
      method,
      path,
      agent: false,
      headers: { host, origin: `http://${host}`, ...(contentType ? { "content-type": contentType } : {}) },
    });
    request.on("response", (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        // The first message is enough to know the call was served.
        if (response.statusCode === 200 && path === SUBSCRIBE_PATH) {
          resolve({ status: 200, body: text });
          request.destroy();
        }
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      response.on("error", () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on("error", reject);
    request.setTimeout(5000, () => request.destroy(new Error(`no answer in 5 s for ${method} ${path} (Host ${host})`)));
    request.end(body);
  });
}

/** One HTTP/2 request with the given :authority (and Origin). */
function h2(url: string, authority: string, method: string, path: string, body?: Buffer, contentType?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({
      ":method": method,
      ":path": path,
      ":authority": authority,
      origin: `http://${authority}`,
      ...(contentType ? { "content-type": contentType } : {}),
    });
    let status = 0;
    let text = "";
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
    stream.on("end", () => {
      session.close();
      resolve({ status, body: text });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

/** A WebSocket handshake on `path` with the given Host and Origin: the HTTP status of its answer. */
function handshake(url: string, host: string, path: string): Promise<Answer> {
  const wsUrl = url.replace(/^http/, "ws") + path;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers: { host }, origin: `http://${host}` });
    ws.on("open", () => {
      ws.close();
      resolve({ status: 101, body: "" });
    });
    ws.on("unexpected-response", (_request, response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    ws.on("error", reject);
  });
}

const setBody = (itemId: string) => Buffer.from(JSON.stringify({ streamName: "rebind", groupId: "g", itemId, data: { card: "4111" } }));
const subscribeBody = envelope({ streamName: "rebind", groupId: "g" });

/** Every kind of entry point, each with the given Host; the statuses in order. */
async function statuses(url: string, host: string, itemId: string): Promise<Record<string, Answer>> {
  return {
    connectSet: await h1(url, host, "POST", SET_PATH, setBody(itemId), "application/json"),
    subscribe: await h1(url, host, "POST", SUBSCRIBE_PATH, subscribeBody, "application/connect+json"),
    healthz: await h1(url, host, "GET", "/healthz"),
    h2Set: await h2(url, host, "POST", SET_PATH, setBody(`${itemId}-h2`), "application/json"),
    h2Healthz: await h2(url, host, "GET", "/healthz"),
    webSocket: await handshake(url, host, "/"),
    worker: await handshake(url, host, "/worker"),
  };
}

describe("the Host check against DNS rebinding, default allow-list", () => {
  let running: RunningServer;
  let port: string;
  beforeAll(async () => {
    // A browser page may open the WebSocket from its own origin: the origin check must not be what refuses.
    running = await startServer({ allowedOrigins: ["*"] });
    port = new URL(running.url).port;
  });
  afterAll(() => running.stop());

  it("refuses Connect, Subscribe, /healthz and WebSocket handshakes for another host with 421, and writes nothing", async () => {
    const answers = await statuses(running.url, `rebind.attacker.test:${port}`, "attacker");
    for (const [entry, answer] of Object.entries(answers)) {
      expect(answer.status, entry).toBe(421);
      if (entry !== "webSocket" && entry !== "worker") {
        expect(answer.body, entry).toContain('"rebind.attacker.test"');
        expect(answer.body, entry).toContain("allowed_hosts");
        expect(answer.body, entry).toContain("allowedHosts");
      }
    }
    expect(await running.server.engine.get({ streamName: "rebind", groupId: "g", itemId: "attacker" })).toBeUndefined();
    expect(await running.server.engine.get({ streamName: "rebind", groupId: "g", itemId: "attacker-h2" })).toBeUndefined();
  });

  it.each(["127.0.0.1", "localhost", "LOCALHOST", "127.0.0.2", "localhost."])("serves them all for %s:PORT", async (name) => {
    const answers = await statuses(running.url, `${name}:${port}`, `ok-${name}`);
    expect(answers.connectSet.status).toBe(200);
    expect(answers.subscribe.status).toBe(200);
    expect(answers.subscribe.body).toContain("snapshot");
    expect(answers.healthz.status).toBe(200);
    expect(answers.h2Set.status).toBe(200);
    expect(answers.h2Healthz.status).toBe(200);
    expect(answers.webSocket.status).toBe(101);
    expect(answers.worker.status).toBe(101);
  });

  it("serves a Host without a port, and [::1]", async () => {
    expect((await h1(running.url, "127.0.0.1", "GET", "/healthz")).status).toBe(200);
    expect((await h1(running.url, `[::1]:${port}`, "GET", "/healthz")).status).toBe(200);
  });

  it("refuses a Host that only looks like a loopback one", async () => {
    for (const host of [`127.0.0.1.rebind.attacker.test:${port}`, `localhost.attacker.test:${port}`, `evil@127.0.0.1:${port}`, `127.0.0.1:${port}@evil`]) {
      expect((await h1(running.url, host, "GET", "/healthz")).status, host).toBe(421);
    }
  });

  it("keeps serving HTTP/1.0 without Host as before (not a browser): /healthz answers", async () => {
    const { hostname, port: p } = new URL(running.url);
    const net = await import("node:net");
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(p), hostname, () => socket.write("GET /healthz HTTP/1.0\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.[01] 200 /);
  });
});

describe("a configured allow-list", () => {
  it("allows a configured name besides the loopback ones, and nothing else", async () => {
    const running = await startServer({ allowedHosts: ["Stream.Example.Test"] });
    try {
      const port = new URL(running.url).port;
      const answers = await statuses(running.url, `stream.example.test:${port}`, "configured");
      for (const [entry, answer] of Object.entries(answers)) expect(answer.status, entry).not.toBe(421);
      expect((await h1(running.url, `127.0.0.1:${port}`, "GET", "/healthz")).status).toBe(200);
      expect((await h1(running.url, `rebind.attacker.test:${port}`, "GET", "/healthz")).status).toBe(421);
    } finally {
      await running.stop();
    }
  });

  it('"*" allows every host', async () => {
    const running = await startServer({ allowedHosts: ["*"] });
    try {
      const port = new URL(running.url).port;
      const answers = await statuses(running.url, `rebind.attacker.test:${port}`, "star");
      for (const [entry, answer] of Object.entries(answers)) expect(answer.status, entry).not.toBe(421);
    } finally {
      await running.stop();
    }
  });

  it("refuses an entry that is not a host name or address, by position", async () => {
    for (const bad of ["http://example.com", "example.com:8080", "", "a/b", "exa mple.com"]) {
      let error: unknown;
      try {
        await startServer({ allowedHosts: ["fine.example", bad] });
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toMatchObject({ code: ErrorCode.InvalidArgument, message: expect.stringContaining("allowedHosts[1]") });
    }
  });
});

describe("the allow-list itself", () => {
  it("adds the address the server listens on unless it is a wildcard", () => {
    expect(new HostAllowList([], "10.1.2.3").allows("10.1.2.3:3112")).toBe(true);
    expect(new HostAllowList([], "stream.internal").allows("stream.internal")).toBe(true);
    expect(new HostAllowList([], "::1").allows("[::1]:1")).toBe(true);
    expect(new HostAllowList([], "fd00::5").allows("[fd00::5]:1")).toBe(true);
    expect(new HostAllowList([], "0.0.0.0").allows("0.0.0.0:1")).toBe(false);
    expect(new HostAllowList([], "::").allows("[::]:1")).toBe(false);
    expect(new HostAllowList([], "0.0.0.0").allows("10.1.2.3:1")).toBe(false);
    expect(new HostAllowList([], "0.0.0.0").allows("localhost:1")).toBe(true);
  });

  it("treats a missing Host as not a browser's request", () => {
    expect(new HostAllowList([], "127.0.0.1").allows(undefined)).toBe(true);
  });

  it("says at start when a wildcard listener answers only loopback names", () => {
    expect(hostsNotice("0.0.0.0", [])).toMatch(/allowed_hosts/);
    expect(hostsNotice("::", [])).toMatch(/allowed_hosts/);
    expect(hostsNotice("0.0.0.0", ["stream.example.test"])).toBeUndefined();
    expect(hostsNotice("127.0.0.1", [])).toBeUndefined();
  });

  it("names what is wrong with an entry", () => {
    expect(hostsProblem("*")).toBeUndefined();
    expect(hostsProblem("[::1]")).toBeUndefined();
    expect(hostsProblem("::1")).toBeUndefined();
    expect(hostsProblem("example.com:80")).toMatch(/port/);
  });
});

describe("the command line", () => {
  it("reads allowed_hosts from the config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iii-stream-hosts-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, "allowed_hosts: [stream.example.test]\n");
    const server = await spawnServer(["--adapter", "memory", "--port", "0", "--config", config]);
    try {
      const port = new URL(server.url).port;
      expect((await h1(server.url, `stream.example.test:${port}`, "GET", "/healthz")).status).toBe(200);
      expect((await h1(server.url, `rebind.attacker.test:${port}`, "GET", "/healthz")).status).toBe(421);
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it("refuses a bad allowed_hosts entry by name and exits 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iii-stream-hosts-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, "allowed_hosts: ['https://stream.example.test']\n");
    const run = runCli(["--adapter", "memory", "--port", "0", "--config", config]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/allowed_hosts\.0/);
  });
});
