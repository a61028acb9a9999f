import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";

/**
 * HTTP/1.1 pipelining as an amplifier: one connection writes many `List` requests of a
 * large group and never reads the answers. The server must serve them one at a time,
 * each only once the client has taken the previous one, so what it holds for that
 * connection stays about one response, and other clients are served as usual.
 */
const ITEMS = 10;
const ITEM_BYTES = 100_000;
const PIPELINED = 200;

let running: RunningServer;

beforeAll(async () => {
  running = await startServer();
  const client = running.client("connect-binary-h2");
  for (let i = 0; i < ITEMS; i++) {
    await client.set({ streamName: "big", groupId: "g", itemId: `i${i}`, data: json("x".repeat(ITEM_BYTES)) });
  }
});

afterAll(async () => {
  await running?.stop();
});

function rssBytes(): number {
  return process.memoryUsage().rss;
}

describe("pipelined requests that are never read", () => {
  it("hold the server to about one response, and others are served promptly", async () => {
    const { port } = new URL(running.url);
    const body = '{"streamName":"big","groupId":"g"}';
    const request = `POST /iii.stream.v1.StreamService/List HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    global.gc?.();
    const before = rssBytes();
    const socket = net.connect(Number(port), "127.0.0.1");
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    // Never read: the kernel's buffers fill, then the server's.
    socket.pause();
    socket.write(request.repeat(PIPELINED));

    const other = running.client("connect-json-h1");
    let slowest = 0;
    let peakBuffered = 0;
    let peakRss = before;
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const start = performance.now();
      await other.get({ streamName: "big", groupId: "g", itemId: "i0" });
      slowest = Math.max(slowest, performance.now() - start);
      peakBuffered = Math.max(peakBuffered, running.server.connectionStats().bufferedBytes);
      peakRss = Math.max(peakRss, rssBytes());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const response = ITEMS * ITEM_BYTES;
    console.log(
      `pipelined ${PIPELINED} Lists of ${(response / 1e6).toFixed(1)} MB: peak buffered ${(peakBuffered / 1e6).toFixed(1)} MB, ` +
        `RSS +${((peakRss - before) / 2 ** 20).toFixed(0)} MiB, slowest other Get ${slowest.toFixed(0)} ms`,
    );
    socket.destroy();
    // One response in the socket (what the kernel did not take), not hundreds.
    expect(peakBuffered).toBeLessThan(3 * response);
    expect(peakRss - before).toBeLessThan(100 * 2 ** 20);
    expect(slowest).toBeLessThan(1000);
  });
});
