import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { bufCurl } from "./support/buf-curl.js";
import { runCli, spawnServer, type ServerProcess } from "./support/process.js";
import { startServer, type RunningServer } from "./support/server.js";
import { eventOf, join as joinMessage, openSocket, wsUrl } from "./support/ws-client.js";

const dir = mkdtempSync(join(tmpdir(), "iii-stream-tls-"));

/** A self-signed certificate for localhost and 127.0.0.1, made by openssl as an operator would. */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return { cert, key };
}

const files = selfSigned("server");
const other = selfSigned("other");
const ca = readFileSync(files.cert);

let running: RunningServer;
const processes: ServerProcess[] = [];
beforeAll(async () => {
  running = await startServer({ tls: { cert: readFileSync(files.cert), key: readFileSync(files.key) } });
});
afterAll(async () => {
  for (const p of processes) p.child.kill("SIGKILL");
  await running.stop();
});

const value = (json: unknown) => fromJson(ValueSchema, json as never);

const transports: [string, () => Transport][] = [
  ["Connect over HTTP/2", () => createConnectTransport({ baseUrl: running.url, httpVersion: "2", nodeOptions: { ca } })],
  ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: running.url, httpVersion: "1.1", nodeOptions: { ca } })],
  ["gRPC", () => createGrpcTransport({ baseUrl: running.url, nodeOptions: { ca } })],
  ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: running.url, httpVersion: "1.1", nodeOptions: { ca } })],
];

describe("TLS", () => {
  it("serves https on the one port", () => {
    expect(running.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it.each(transports)("%s writes and reads", async (name, transport) => {
    const client = createClient(StreamService, transport());
    const itemId = name.replace(/\W+/g, "-");
    await client.set({ streamName: "tls", groupId: "g", itemId, data: value({ via: name }) });
    const got = await client.get({ streamName: "tls", groupId: "g", itemId });
    expect(got.item?.data).toEqual(value({ via: name }));
  });

  it("negotiates h2 and http/1.1 by ALPN", async () => {
    const negotiated = await Promise.all(
      [["h2", "http/1.1"], ["http/1.1"]].map(
        (ALPNProtocols) =>
          new Promise<string | false>((resolve, reject) => {
            const socket = tls.connect({ host: "127.0.0.1", port: running.server.port, ca, servername: "localhost", ALPNProtocols }, () => {
              resolve(socket.alpnProtocol ?? false);
              socket.end();
            });
            socket.on("error", reject);
          }),
      ),
    );
    expect(negotiated).toEqual(["h2", "http/1.1"]);
  });

  it("streams a Subscribe over gRPC", async () => {
    const client = createClient(StreamService, createGrpcTransport({ baseUrl: running.url, nodeOptions: { ca } }));
    const abort = new AbortController();
    const seen: string[] = [];
    const stream = client.subscribe({ streamName: "tls", groupId: "sub" }, { signal: abort.signal });
    for await (const message of stream) {
      seen.push(message.message.case ?? "");
      if (message.message.case === "snapshot") await client.set({ streamName: "tls", groupId: "sub", itemId: "a", data: value(1) });
      if (message.message.case === "change") break;
    }
    abort.abort();
    expect(seen).toEqual(["snapshot", "change"]);
  });

  it("serves the stream socket over wss://", async () => {
    const url = wsUrl(running.url, "/");
    expect(url).toMatch(/^wss:/);
    const socket = await openSocket(url, { ca });
    try {
      socket.send(joinMessage("w", "tls", "ws"));
      await socket.next(eventOf("w", "sync"));
      await createClient(StreamService, createGrpcTransport({ baseUrl: running.url, nodeOptions: { ca } })).set({
        streamName: "tls",
        groupId: "ws",
        itemId: "x",
        data: value({ over: "wss" }),
      });
      expect(await socket.next(eventOf("w", "create"))).toMatchObject({ id: "x", event: { data: { over: "wss" } } });
    } finally {
      await socket.close();
    }
  });

  it("answers buf curl over https, through reflection, with --cacert", async () => {
    const list = await bufCurl(["--list-methods", "--cacert", files.cert, running.url]);
    expect(list.stderr).toBe("");
    expect(list.stdout).toContain("iii.stream.v1.StreamService/Subscribe");
    for (const protocol of ["connect", "grpc", "grpcweb"]) {
      const get = await bufCurl([
        "--protocol", protocol, "--cacert", files.cert,
        "-d", JSON.stringify({ stream_name: "tls", group_id: "g", item_id: "gRPC" }),
        `${running.url}/iii.stream.v1.StreamService/Get`,
      ]);
      expect(get.stderr).toBe("");
      expect(JSON.parse(get.stdout)).toMatchObject({ item: { itemId: "gRPC", data: { via: "gRPC" } } });
    }
  });

  it("keeps serving after a client that does not trust the certificate and one that speaks cleartext", async () => {
    const untrusting = await new Promise<Error>((resolve) => {
      https.get(`${running.url}/healthz`, (res) => resolve(new Error(`answered ${res.statusCode}`))).on("error", resolve);
    });
    expect(untrusting.message).toMatch(/self-signed|certificate/i);
    const cleartext = await new Promise<string>((resolve) => {
      const socket = net.connect(running.server.port, "127.0.0.1", () => socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
      let received = "";
      socket.on("data", (chunk) => (received += chunk.toString("latin1")));
      socket.on("error", () => undefined);
      socket.on("close", () => resolve(received));
    });
    expect(cleartext).not.toContain("HTTP/1.1 200");
    const session = http2.connect(running.url, { ca });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = session.request({ ":path": "/healthz" });
        req.on("response", (headers) => resolve(headers[":status"]));
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
  });

  it("holds a connection that never finishes its handshake only for the first-bytes timeout", async () => {
    const limited = await startServer({
      tls: { cert: readFileSync(files.cert), key: readFileSync(files.key) },
      connections: { firstBytesTimeoutMs: 200 },
    });
    try {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = net.connect(limited.server.port, "127.0.0.1");
        socket.on("error", () => undefined);
        socket.on("close", () => resolve(true));
      });
      expect(closed).toBe(true);
      // The server counts the close when its side of the socket has closed too.
      await vi.waitFor(() => expect(limited.server.connectionStats().open).toBe(0));
    } finally {
      await limited.stop();
    }
  });
});

describe("TLS from the command line", () => {
  it("serves https with --tls-cert and --tls-key", async () => {
    const server = await spawnServer(["--adapter", "memory", "--port", "0", "--tls-cert", files.cert, "--tls-key", files.key]);
    processes.push(server);
    expect(server.url).toMatch(/^https:/);
    expect(server.output()).toContain('"tls":true');
    const client = createClient(StreamService, createConnectTransport({ baseUrl: server.url, httpVersion: "2", nodeOptions: { ca } }));
    await client.set({ streamName: "cli", groupId: "g", itemId: "a", data: value(1) });
    expect((await client.get({ streamName: "cli", groupId: "g", itemId: "a" })).item?.revision).toBe(1n);
  });

  it("takes tls_cert and tls_key from the config file", async () => {
    const config = join(dir, "tls.yaml");
    writeFileSync(config, `tls_cert: ${files.cert}\ntls_key: ${files.key}\n`);
    const server = await spawnServer(["--adapter", "memory", "--port", "0", "--config", config]);
    processes.push(server);
    expect(server.url).toMatch(/^https:/);
  });

  it.each([
    ["a certificate file that is missing", ["--tls-cert", join(dir, "missing.pem"), "--tls-key", files.key], 1, /cannot read the TLS certificate .*missing\.pem/],
    ["a key file that is missing", ["--tls-cert", files.cert, "--tls-key", join(dir, "nokey.pem")], 1, /cannot read the TLS key .*nokey\.pem/],
    ["a key of another certificate", ["--tls-cert", files.cert, "--tls-key", other.key], 1, /TLS key is not the key of the certificate/],
    ["a file that is no PEM", ["--tls-cert", join(dir, "tls.yaml"), "--tls-key", files.key], 1, /TLS certificate or key is not usable/],
    ["a certificate without a key", ["--tls-cert", files.cert], 2, /--tls-cert \(tls_cert\) and --tls-key \(tls_key\) go together/],
  ])("refuses %s at start", async (_, args, code, message) => {
    const run = runCli(["--adapter", "memory", "--port", "0", ...args]);
    expect(await run.exited).toBe(code);
    expect(run.output()).toMatch(message);
    expect(run.output()).not.toContain("listening");
  });
});
