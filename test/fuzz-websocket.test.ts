import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingLog, type JsonObject } from "../src/index.js";
import { fuzz, FUZZ_SEED, fuzzTimeoutMs, inputsTried, names, streamSocketFrame, workerMessage } from "./support/fuzz-inputs.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, plain } from "./support/subscribe-view.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

/*
 * Random and damaged frames on both WebSocket protocols, against a real server: the
 * socket stays open and usable after them (none of these inputs is a reason to close
 * it), every server message is well-formed, the server stays up, and a group nobody
 * fuzzes holds exactly what it held before. Run counts and seeds as in fuzz-rpc.
 */

const RUNS = 300;
const TIMEOUT_MS = fuzzTimeoutMs(RUNS);

let running: RunningServer;
const logged = new RecordingLog("warn");
const canary = { streamName: `canary-${Math.random().toString(36).slice(2)}`, groupId: "c" };
const CANARY_ITEMS = { a: { n: 1 }, b: ["x", null, 2.5] };

beforeAll(async () => {
  // Workers' mistakes the server can only log (a bad function id, say): kept, not printed.
  running = await startServer({ log: logged });
  const client = running.client();
  for (const [itemId, data] of Object.entries(CANARY_ITEMS)) await client.set({ ...canary, itemId, data: json(data) });
});

afterAll(async () => {
  console.log(`fuzz-websocket: seed ${FUZZ_SEED}, inputs ${JSON.stringify(Object.fromEntries(inputsTried))}, ${logged.records.length} warnings logged`);
  await running?.stop();
});

function send(socket: TestSocket, frame: string | Uint8Array): void {
  if (typeof frame === "string") socket.ws.send(frame);
  else socket.ws.send(frame, { binary: true });
}

/** A stream-socket message: the reference's wrapper around an event. */
function expectWrapper(message: JsonObject): void {
  expect(message.type, JSON.stringify(message)).toBe("stream");
  expect(typeof message.streamName).toBe("string");
  expect(typeof message.groupId).toBe("string");
  const event = message.event as JsonObject | undefined;
  expect(typeof event?.type, JSON.stringify(message)).toBe("string");
  if (event?.type === "error") {
    expect(typeof event.code).toBe("string");
    expect(typeof event.message).toBe("string");
  }
}

/** Codes a stream function's error may carry for a bad input; STREAM_*_ERROR would be an unexpected failure inside. */
const WORKER_ERROR_CODES = new Set([
  "deserialization_error",
  "invalid_argument",
  "not_found",
  "failed_precondition",
  "resource_exhausted",
  "permission_denied",
  "forbidden",
  "function_not_found",
  "trigger_type_not_found",
  "deadline_exceeded",
]);
const WORKER_SERVER_TYPES = new Set(["workerregistered", "invocationresult", "functionregistrationresult", "triggerregistrationresult", "pong", "invokefunction"]);

function expectWorkerMessage(message: JsonObject): void {
  const text = JSON.stringify(message).slice(0, 400);
  expect(WORKER_SERVER_TYPES, text).toContain(message.type);
  const error = message.error as JsonObject | undefined;
  if (error !== undefined) {
    expect(WORKER_ERROR_CODES, text).toContain(error.code);
    expect(typeof error.message, text).toBe("string");
  }
}

describe("fuzzed WebSocket frames leave the socket usable and change nothing they should not", () => {
  it("stream socket: joins, leaves, JSON, text and bytes", async () => {
    const input = fc.tuple(
      fc.oneof(fc.constant("/"), fc.tuple(names, names).map(([s, g]) => `/stream/${segment(s)}/${segment(g)}`)),
      fc.array(streamSocketFrame, { minLength: 1, maxLength: 5 }),
    );
    await fuzz(
      "stream socket",
      input,
      async ([path, frames]) => {
        let socket: TestSocket;
        try {
          socket = await openSocket(wsUrl(running.url, path));
        } catch (error) {
          // A path with an invalid name is refused with 400, one with an empty segment is no endpoint (404); both say why.
          expect((error as Error).message).toMatch(/^handshake refused: 40[04]$/);
          return;
        }
        try {
          for (const frame of frames) send(socket, frame);
          // The probe joins the canary: its sync proves the socket still works and the canary is intact.
          socket.send(join("probe", canary.streamName, canary.groupId));
          const sync = await Promise.race([
            socket.next(eventOf("probe", "sync")),
            socket.closed.then((closed) => {
              throw new Error(`the socket was closed (${closed.code} ${closed.reason})`);
            }),
          ]);
          // A sync carries the values (the reference's shape), in item order.
          expect((sync.event as JsonObject).data).toEqual(Object.values(CANARY_ITEMS));
          for (const message of socket.messages) expectWrapper(message);
        } finally {
          await socket.close();
        }
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("worker protocol: known and unknown messages with odd fields", async () => {
    await fuzz(
      "worker protocol",
      fc.array(workerMessage, { minLength: 1, maxLength: 6 }),
      async (messages) => {
        const socket = await openSocket(wsUrl(running.url, "/worker"));
        try {
          for (const message of messages) send(socket, message);
          socket.send({ type: "invokefunction", invocation_id: "probe", function_id: "stream::get", data: { ...snake(canary), item_id: "a" } });
          const answer = await Promise.race([
            socket.next((m) => m.type === "invocationresult" && m.invocation_id === "probe"),
            socket.closed.then((closed) => {
              throw new Error(`the socket was closed (${closed.code} ${closed.reason})`);
            }),
          ]);
          expect(answer.result).toEqual(CANARY_ITEMS.a);
          for (const message of socket.messages) expectWorkerMessage(message);
        } finally {
          await socket.close();
        }
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("afterwards the server answers, the canary group is unchanged and nothing is left behind", async () => {
    const list = await running.client().list({ ...canary });
    expect(Object.fromEntries(list.items.map((item) => [item.itemId, plain(item.data)]))).toEqual(CANARY_ITEMS);
    expect(list.items.map((item) => item.revision)).toEqual([1n, 1n]);
    await expect.poll(() => running.server.stats(), { timeout: 10_000 }).toMatchObject({ subscriptions: 0, webSockets: 0, triggers: 0 });
  });
});

function snake(target: { streamName: string; groupId: string }): JsonObject {
  return { stream_name: target.streamName, group_id: target.groupId };
}

/** A name as a URL path segment (an unpaired surrogate cannot be percent-encoded; a client could not send one). */
function segment(name: string): string {
  return encodeURIComponent(name.toWellFormed());
}
