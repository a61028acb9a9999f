/**
 * Live views of the client library across what ends every connection at once: a
 * file-adapter server killed with SIGKILL mid-writes and restarted on its data (the
 * built binary, on a fixed port), and a switch between two server instances on one
 * Redis. Over every transport, once the writers stop, each view equals List and every
 * change was applied once, in order.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { connectRedisBackend } from "../src/index.js";
import { createStreamClient, type StreamClient, type TransportName } from "../src/client/node.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { ViewRecorder, expectConverged, startWriters } from "./support/client-views.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { REDIS_URL, deleteKeys, uniquePrefix } from "./support/redis.js";
import { startServer } from "./support/server.js";
import { freePort } from "./support/shell.js";

const TRANSPORTS: TransportName[] = ["connect", "grpc", "grpc-web", "websocket"];
const HEARTBEAT_MS = 200;
const dir = mkdtempSync(join(tmpdir(), "iii-stream-client-restarts-"));
const keyPrefix = uniquePrefix("client-switch");

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteKeys(keyPrefix);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function watchers(baseUrl: string): StreamClient[] {
  return TRANSPORTS.map((transport) =>
    createStreamClient({ baseUrl, transport, heartbeatIntervalMs: HEARTBEAT_MS, reconnect: { initialDelayMs: 20, maxDelayMs: 300 } }),
  );
}

it("views over every transport converge across SIGKILL and restart of a file-adapter server", async () => {
  const port = await freePort();
  const config = join(dir, "config.yaml");
  writeFileSync(config, `heartbeat_ms: ${HEARTBEAT_MS}\n`);
  const args = ["--port", String(port), "--data-dir", join(dir, "data"), "--config", config];
  let server: ServerProcess = await spawnServer(args);
  const baseUrl = `http://127.0.0.1:${port}`;
  const writer = createStreamClient({ baseUrl });
  const clients = watchers(baseUrl);
  try {
    const groups = ["g0", "g1"];
    for (const group of groups) await writer.set("restart", group, "seed", 0);
    const recorders = clients.flatMap((client) => groups.map((group) => new ViewRecorder(client.watchGroup("restart", group))));
    await Promise.all(recorders.map((recorder) => recorder.view.ready()));
    const writers = startWriters(writer, "restart", groups, 3);
    {
      await sleep(300 + Math.random() * 300);
      server.child.kill("SIGKILL");
      await server.exited;
      await expect.poll(() => recorders.every((recorder) => recorder.view.status === "reconnecting")).toBe(true);
      await sleep(200); // writers fail meanwhile
      server = await spawnServer(args);
    }
    await sleep(300);
    await writers.stop();
    expect(writers.writes).toBeGreaterThan(5);
    for (const recorder of recorders) await expectConverged(recorder.view, writer);
    for (const recorder of recorders) expect(recorder.problems).toEqual([]);
  } finally {
    for (const client of clients) client.close();
    writer.close();
    server.child.kill("SIGKILL");
    await server.exited;
  }
});

it("views over every transport converge across a switch between two instances on one Redis", async () => {
  const start = async () =>
    startServer({ backend: await connectRedisBackend({ url: REDIS_URL, keyPrefix }), heartbeatMs: HEARTBEAT_MS, webSocket: { pingIntervalMs: HEARTBEAT_MS } });
  const a = await start();
  const b = await start();
  const proxy = await FaultProxy.start(Number(new URL(a.url).port));
  const writeA = createStreamClient({ baseUrl: a.url });
  const writeB = createStreamClient({ baseUrl: b.url });
  const clients = watchers(proxy.url);
  let aStopped = false;
  try {
    const groups = ["g0", "g1"];
    for (const group of groups) await writeA.set("switch", group, "seed", 0);
    const recorders = clients.flatMap((client) => groups.map((group) => new ViewRecorder(client.watchGroup("switch", group))));
    await Promise.all(recorders.map((recorder) => recorder.view.ready()));
    const writers = [startWriters(writeA, "switch", groups, 2), startWriters(writeB, "switch", groups, 2)];
    await sleep(400);
    // The load balancer sends new connections to B, and A goes away mid-writes.
    proxy.retarget(Number(new URL(b.url).port));
    proxy.reset();
    await a.stop();
    aStopped = true;
    await sleep(400);
    await Promise.all(writers.map((running) => running.stop()));
    for (const recorder of recorders) await expectConverged(recorder.view, writeB);
    for (const recorder of recorders) expect(recorder.problems).toEqual([]);
    expect(recorders.reduce((sum, recorder) => sum + recorder.changes, 0)).toBeGreaterThan(20);
  } finally {
    for (const client of clients) client.close();
    writeA.close();
    writeB.close();
    await proxy.close();
    if (!aStopped) await a.stop();
    await b.stop();
  }
});
