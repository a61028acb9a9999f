/**
 * The client library's live views against real servers behind a proxy that cuts,
 * resets and silently stalls connections at random moments while writers run: over
 * every transport, once the writers stop, each view equals List, and every change was
 * applied once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamClient, type StreamClient, type TransportName } from "../src/client/node.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { ViewRecorder, expectConverged, startWriters } from "./support/client-views.js";
import { startServer, type RunningServer } from "./support/server.js";

const HEARTBEAT_MS = 100;
let running: RunningServer;
let writer: StreamClient;

beforeAll(async () => {
  // Small snapshot chunks: a reconnect mid-snapshot, between chunks, happens too.
  running = await startServer({ heartbeatMs: HEARTBEAT_MS, webSocket: { pingIntervalMs: HEARTBEAT_MS }, snapshotChunkBytes: 256 });
  writer = createStreamClient({ baseUrl: running.url });
});

afterAll(async () => {
  writer?.close();
  await running?.stop();
});

describe.each<TransportName>(["connect", "grpc", "grpc-web", "websocket"])("live views over %s", (transport) => {
  it("many views of one client share one connection, and come back on one after a reset", async () => {
    const proxy = await FaultProxy.start(Number(new URL(running.url).port));
    // A generous watchdog: here only the reset may end a connection, not a loaded machine's pause.
    const client = createStreamClient({ baseUrl: proxy.url, transport, heartbeatIntervalMs: 5000, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    try {
      const stream = `herd-${transport}`;
      const views = Array.from({ length: 20 }, (_, g) => client.watchGroup(stream, `g${g}`));
      await Promise.all(views.map((view) => view.ready()));
      // One connection for twenty views (a second one when a race with the session's start
      // makes the client open another), never one per view.
      const before = proxy.accepted;
      expect(before).toBeLessThanOrEqual(2);
      let lost = 0;
      for (const view of views) view.on("status", (status) => (lost += status === "reconnecting" ? 1 : 0));
      proxy.reset();
      await expect.poll(() => lost).toBe(views.length);
      for (let g = 0; g < 20; g++) await writer.set(stream, `g${g}`, "after", g);
      for (const view of views) await expectConverged(view, writer);
      // Every view lost its stream, and they came back together, not one connection each.
      expect(proxy.accepted - before).toBeLessThanOrEqual(2);
    } finally {
      client.close();
      await proxy.close();
    }
  });


  it("equal List after writers stop, through cuts, resets and stalls, with each change applied once", async () => {
    const proxy = await FaultProxy.start(new URL(running.url).port as unknown as number);
    const client = createStreamClient({
      baseUrl: proxy.url,
      transport,
      heartbeatIntervalMs: HEARTBEAT_MS,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    try {
      const stream = `faults-${transport}`;
      const groups = ["g0", "g1", "g2"];
      for (const group of groups) await writer.set(stream, group, "seed", { seeded: true });
      const views = groups.map((group) => new ViewRecorder(client.watchGroup(stream, group)));
      const itemView = new ViewRecorder(client.watchItem(stream, "g0", "w0-0"));
      await Promise.all([...views, itemView].map((recorder) => recorder.view.ready()));

      const writers = startWriters(writer, stream, groups, 4);
      proxy.chaos(40, 250);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      proxy.calm();
      await writers.stop();

      for (const recorder of views) await expectConverged(recorder.view, writer);
      const item = await writer.get(stream, "g0", "w0-0");
      await expect.poll(() => itemView.view.items.get("w0-0")?.revision, { timeout: 10_000 }).toBe(item?.revision);
      expect(itemView.view.items.get("w0-0")?.data).toEqual(item?.data);
      for (const recorder of [...views, itemView]) expect(recorder.problems).toEqual([]);
      // The faults happened, and the views lived through them with changes to show.
      expect(proxy.faults.cut + proxy.faults.reset + proxy.faults.blackhole).toBeGreaterThan(2);
      expect(views.reduce((sum, recorder) => sum + recorder.changes, 0)).toBeGreaterThan(10);
    } finally {
      client.close();
      await proxy.close();
    }
  });
});
