/**
 * A client that resets its TCP connection (RST) before its first bytes, or in the middle
 * of the HTTP/2 preface, while the server is still deciding which protocol it speaks:
 * the server drops that connection and serves on. (Before, the socket had no error
 * listener in that phase and the reset was an uncaught exception.)
 */
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";

let running: RunningServer;

beforeAll(async () => {
  running = await startServer();
});

afterAll(async () => {
  await running?.stop();
});

async function resetAfter(bytes: string): Promise<void> {
  const socket = net.connect(Number(new URL(running.url).port), "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  if (bytes) socket.write(bytes);
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
}

it("survives connections reset before their first bytes or within the HTTP/2 preface", async () => {
  for (let i = 0; i < 5; i++) {
    await resetAfter("");
    await resetAfter("PRI * HTTP/2.0\r\n");
  }
  const reply = await running.client().listGroups({ streamName: "s" });
  expect(reply.groups).toEqual([]);
});
