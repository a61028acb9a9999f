import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";

let running: RunningServer;

beforeAll(async () => {
  running = await startServer();
});

afterAll(async () => {
  await running?.stop();
});

/** Sends raw bytes on a new connection and returns everything the server answered before closing. */
function exchange(request: string): Promise<string> {
  const { port, hostname } = new URL(running.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(request));
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.setTimeout(5000, () => socket.destroy(new Error("no answer in 5 s")));
  });
}

describe("an HTTP/1.0 call without a Host header", () => {
  it.each(["Get", "Set"])("to %s is a bad request, and the server carries on", async (method) => {
    const body = "{}";
    const answer = await exchange(
      `POST /iii.stream.v1.StreamService/${method} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    expect(answer).toMatch(/^HTTP\/1\.[01] 400 /);
    expect(answer).toContain("bad request");
    // The process is still serving.
    await expect(running.client("connect-json-h1").listAll({})).resolves.toBeDefined();
  });
});
