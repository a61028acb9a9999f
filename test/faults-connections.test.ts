import http2 from "node:http2";
import net from "node:net";
import { toBinary, create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SubscribeRequestSchema } from "../gen/iii/stream/v1/stream_pb.js";
import { RecordingLog } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, plain } from "./support/subscribe-view.js";

/*
 * Clients that misuse connections, against a real server: HTTP/2 streams opened and reset
 * in a loop, thousands of connections that never send a byte, and hundreds of slowloris
 * clients at once (one of each is in server-timeouts.test.ts). None leaves anything
 * behind, and other clients are served meanwhile.
 */

const FIRST_BYTES_TIMEOUT_MS = 1500;
let running: RunningServer;

beforeAll(async () => {
  running = await startServer({ log: new RecordingLog("warn"), heartbeatMs: 60_000, connections: { firstBytesTimeoutMs: FIRST_BYTES_TIMEOUT_MS } });
});

afterAll(async () => {
  await running?.stop();
});

function grpcFrame(payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

async function servedMeanwhile(label: string): Promise<void> {
  const client = running.client("connect-json-h1");
  await client.set({ streamName: "faults", groupId: "g", itemId: label, data: json(label) });
  expect(plain((await client.get({ streamName: "faults", groupId: "g", itemId: label })).item?.data)).toBe(label);
}

describe("HTTP/2 streams opened and reset in a loop", () => {
  it("1,000 Subscribe streams reset before, at and after their first answer leave no subscription behind", async () => {
    await running.client().set({ streamName: "faults", groupId: "reset", itemId: "a", data: json(1) });
    const body = grpcFrame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: "faults", groupId: "reset" })));
    let session: http2.ClientHttp2Session | undefined;
    let sessions = 0;
    const counts = { beforeAnswer: 0, atHeaders: 0, afterMessage: 0 };
    for (let i = 0; i < 1000; i++) {
      if (!session || session.closed || session.destroyed) {
        // The server may end a session that resets too much (GOAWAY); a client reconnects.
        session = http2.connect(running.url);
        session.on("error", () => undefined);
        sessions++;
      }
      const stream = session.request({ ":method": "POST", ":path": "/iii.stream.v1.StreamService/Subscribe", "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      stream.end(body);
      const reset = () => stream.close(http2.constants.NGHTTP2_CANCEL);
      if (i % 3 === 0) {
        reset();
        counts.beforeAnswer++;
      } else {
        await new Promise<void>((resolve) => {
          const done = () => {
            reset();
            resolve();
          };
          if (i % 3 === 1) stream.once("response", () => ((counts.atHeaders++), done()));
          else stream.once("data", () => ((counts.afterMessage++), done()));
          stream.once("close", () => resolve());
        });
      }
    }
    session?.close();
    console.log(`faults-connections: 1000 resets over ${sessions} sessions, ${JSON.stringify(counts)}`);
    await expect.poll(() => running.server.stats().subscriptions, { timeout: 10_000 }).toBe(0);
    await servedMeanwhile("after-resets");
  });
});

describe("thousands of idle connections", () => {
  it("2,000 connections that never send a byte: others are served meanwhile, and the idle ones are closed by the first-bytes timeout", async () => {
    const port = Number(new URL(running.url).port);
    const idle = await Promise.all(
      Array.from(
        { length: 2000 },
        () =>
          new Promise<{ socket: net.Socket; closed: Promise<void> }>((resolve, reject) => {
            const socket = net.connect({ port, host: "127.0.0.1" });
            const closed = new Promise<void>((done) => socket.once("close", () => done()));
            socket.once("connect", () => resolve({ socket, closed }));
            socket.once("error", reject);
          }),
      ),
    );
    try {
      await servedMeanwhile("among-idle");
      await Promise.all(idle.map((connection) => connection.closed));
      await expect.poll(() => running.server.connectionStats().open, { timeout: 10_000 }).toBeLessThanOrEqual(1);
      await servedMeanwhile("after-idle");
    } finally {
      for (const { socket } of idle) socket.destroy();
    }
  });
});

describe("many slowloris clients at once", () => {
  it("200 dribbling headers and 200 dribbling bodies: others are served meanwhile, and every one is closed by its timeout", async () => {
    const slow = await startServer({ log: new RecordingLog("warn"), connections: { headersTimeoutMs: 1000, requestTimeoutMs: 1500 } });
    const port = Number(new URL(slow.url).port);
    const timers: NodeJS.Timeout[] = [];
    try {
      const open = (start: string, dribble: string) =>
        new Promise<{ closed: Promise<string> }>((resolve, reject) => {
          const socket = net.connect({ port, host: "127.0.0.1" });
          let received = "";
          socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
          socket.once("error", reject);
          socket.once("connect", () => {
            socket.write(start);
            let at = 0;
            // One byte every 100 ms: each stays under any per-read timeout, never completing.
            const timer = setInterval(() => !socket.destroyed && socket.write(dribble[at++ % dribble.length]), 100);
            timers.push(timer);
            resolve({ closed: new Promise((done) => socket.once("close", () => (clearInterval(timer), done(received)))) });
          });
        });
      const headers = Array.from({ length: 200 }, () => open("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: aaaaaaaa\r\n"));
      const body = `POST /iii.stream.v1.StreamService/Get HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`;
      const bodies = Array.from({ length: 200 }, () => open(body, " "));
      const connections = await Promise.all([...headers, ...bodies]);

      const client = slow.client("connect-json-h1");
      await client.set({ streamName: "faults", groupId: "g", itemId: "among-slowloris", data: json(1) });
      expect((await client.get({ streamName: "faults", groupId: "g", itemId: "among-slowloris" })).item?.revision).toBe(1n);

      const answers = await Promise.all(connections.map((connection) => connection.closed));
      expect(answers.filter((text) => text.startsWith("HTTP/1.1 408 ")).length).toBe(400);
    } finally {
      for (const timer of timers) clearInterval(timer);
      await slow.stop();
    }
  });
});
