import http from "node:http";
import http2 from "node:http2";
import fc from "fast-check";
import { fromBinary, fromJsonString, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { binaryRequest, frame, frameDamage, fuzz, FUZZ_SEED, fuzzTimeoutMs, inputsTried, jsonRequest } from "./support/fuzz-inputs.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, plain } from "./support/subscribe-view.js";

/*
 * Random and damaged requests in every protocol the port speaks, against a real server:
 * each must get a well-formed answer (a valid response message, or an error whose code
 * blames the request), the server must stay up, and a group nobody fuzzes must hold
 * exactly what it held before. `FUZZ_RUNS` sets the runs per property (npm run fuzz runs
 * many); a failure prints the seed that replays it.
 */

const RUNS = 300;
const TIMEOUT_MS = fuzzTimeoutMs(RUNS);
/** A request with no complete answer within this long counts as a hang. */
const ANSWER_WITHIN_MS = Number(process.env.FUZZ_ANSWER_MS) || 10_000;

/** Codes that say the request was at fault. INTERNAL, UNKNOWN, UNAVAILABLE or DATA_LOSS would be the server's. */
const CLIENT_CODES = new Set([
  "invalid_argument",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "unauthenticated",
]);
const GRPC_CLIENT_CODES = new Set([0, 3, 5, 6, 7, 8, 9, 10, 11, 12, 16]);

const path = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;
const streaming = (method: DescMethod) => method.methodKind === "server_streaming";
/** Structured requests only for StreamService: a well-formed RegisterFunction would make the server call random local ports. */
const structured = (method: DescMethod) => method.parent.typeName === StreamService.typeName;

let running: RunningServer;
let session: http2.ClientHttp2Session;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const canary = { streamName: `canary-${Math.random().toString(36).slice(2)}`, groupId: "c" };
let canaryBefore: unknown;

async function canaryContents(): Promise<unknown> {
  const list = await running.client().list({ ...canary });
  return list.items.map((item) => ({ id: item.itemId, data: plain(item.data), revision: item.revision }));
}

beforeAll(async () => {
  // A valid Subscribe with nothing to replay says nothing until its first heartbeat: a short one ends the wait.
  running = await startServer({ heartbeatMs: 100 });
  const client = running.client();
  for (const itemId of ["a", "b", "c"]) await client.set({ ...canary, itemId, data: json({ itemId, n: [1, "two", null] }) });
  await client.update({ ...canary, itemId: "a", ops: [{ op: { case: "increment", value: { path: ["counter"], by: 5n } } }] });
  canaryBefore = await canaryContents();
  session = http2.connect(running.url);
  session.on("error", () => undefined);
});

afterAll(async () => {
  console.log(`fuzz-rpc: seed ${FUZZ_SEED}, inputs ${JSON.stringify(Object.fromEntries(inputsTried))}, answers ${JSON.stringify(outcomes)}`);
  session?.close();
  agent.destroy();
  await running?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** We stopped reading after the first whole message of a stream that had not ended. */
  cut: boolean;
}

/** The first whole length-prefixed frames of `body`. */
function frames(body: Buffer): Array<{ flags: number; payload: Buffer }> {
  const out = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) break;
    out.push({ flags: body[at], payload: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** Sends one request; for a stream, stops at its first whole frame (a valid Subscribe never ends by itself). */
function exchange(httpVersion: 1 | 2, target: string, headers: Record<string, string>, body: Buffer, isStream: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS);
    let stop: () => void = () => undefined;
    let answer: Omit<Answer, "body" | "cut"> = { status: 0, headers: {}, trailers: {} };
    const finish = (error?: Error, cut = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (cut || error) stop();
      if (error) reject(error);
      else resolve({ ...answer, body: Buffer.concat(chunks), cut });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      if (isStream && answer.status === 200 && frames(Buffer.concat(chunks)).length > 0) finish(undefined, true);
    };
    if (httpVersion === 1) {
      const url = new URL(target, running.url);
      const req = http.request(url, { method: "POST", headers: { ...headers, "content-length": String(body.length) }, agent });
      stop = () => req.destroy();
      req.on("response", (res) => {
        answer = { status: res.statusCode ?? 0, headers: res.headers, trailers: {} };
        res.on("data", onData);
        res.on("end", () => {
          answer.trailers = res.trailers;
          finish();
        });
        res.on("error", (error) => finish(error));
      });
      req.on("error", (error) => finish(error));
      req.end(body);
    } else {
      const stream = session.request({ ":method": "POST", ":path": target, ...headers });
      stop = () => stream.close(http2.constants.NGHTTP2_CANCEL);
      stream.on("response", (responseHeaders) => {
        answer = { status: Number(responseHeaders[":status"]), headers: responseHeaders, trailers: {} };
      });
      stream.on("trailers", (trailers) => (answer.trailers = trailers));
      stream.on("data", onData);
      stream.on("end", () => finish());
      stream.on("error", (error) => finish(error));
      stream.end(body);
    }
  });
}

function decode(schema: DescMessage, payload: Buffer, isJson: boolean): void {
  if (isJson) fromJsonString(schema, payload.toString("utf8"));
  else fromBinary(schema, payload);
}

function expectConnectError(text: string, what: string): void {
  let error: { code?: unknown; message?: unknown };
  try {
    error = JSON.parse(text) as typeof error;
  } catch {
    throw new Error(`${what}: the error body is not JSON: ${text.slice(0, 200)}`);
  }
  expect(CLIENT_CODES, `${what}: ${text.slice(0, 300)}`).toContain(error.code);
  if (error.message !== undefined) expect(typeof error.message).toBe("string");
}

/** A Connect answer: a response message (or stream of them), or an error that blames the request. */
function expectConnectAnswer(method: DescMethod, isJson: boolean, answer: Answer): void {
  const what = `${method.name} (HTTP ${answer.status})`;
  tally(answer.status === 200 ? "ok" : "error");
  if (!streaming(method)) {
    if (answer.status === 200) return decode(method.output, answer.body, isJson);
    expect(answer.headers["content-type"], what).toMatch(/^application\/json/);
    return expectConnectError(answer.body.toString(), what);
  }
  if (answer.status !== 200) {
    expect(answer.headers["content-type"], what).toMatch(/^application\/json/);
    return expectConnectError(answer.body.toString(), what);
  }
  const got = frames(answer.body);
  expect(got.length, `${what}: no whole frame`).toBeGreaterThan(0);
  for (const { flags, payload } of got) {
    if (flags === 0) decode(method.output, payload, isJson);
    else {
      expect(flags, what).toBe(2);
      const end = JSON.parse(payload.toString()) as { error?: { code: string } };
      if (end.error) expectConnectError(JSON.stringify(end.error), what);
    }
  }
}

/** A gRPC or gRPC-Web answer: messages and a status in trailers (or in the headers, trailers-only). */
function expectGrpcAnswer(method: DescMethod, web: boolean, answer: Answer): void {
  const what = `${method.name} (HTTP ${answer.status})`;
  expect(answer.status, what).toBe(200);
  let status = answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];
  let message = answer.trailers["grpc-message"] ?? answer.headers["grpc-message"];
  const got = frames(answer.body);
  for (const { flags, payload } of got) {
    if (flags === 0) decode(method.output, payload, false);
    else if (web && flags === 0x80) {
      const lines = payload.toString().split("\r\n");
      status = lines.find((line) => line.startsWith("grpc-status:"))?.slice(12).trim();
      message = lines.find((line) => line.startsWith("grpc-message:"))?.slice(13).trim();
    } else throw new Error(`${what}: a frame with flags ${flags}`);
  }
  tally(answer.cut || Number(status) === 0 ? "ok" : "error");
  if (answer.cut) return;
  expect(status, `${what}: no grpc-status`).toBeDefined();
  expect(GRPC_CLIENT_CODES, `${what}: grpc-status ${String(status)} ${decodeURIComponent(String(message))}`).toContain(Number(status));
  if (Number(status) === 0 && !streaming(method)) expect(got.filter((f) => f.flags === 0), what).toHaveLength(1);
}

/** Answers by kind, printed at the end: a fuzzer that only ever hears errors tests little. */
const outcomes = { ok: 0, error: 0 };
const tally = (kind: keyof typeof outcomes) => outcomes[kind]++;

/** Mostly StreamService: TriggerService's requests are random bytes only (see `structured`). */
const methods = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...StreamService.methods) },
  { weight: 1, arbitrary: fc.constantFrom(...TriggerService.methods) },
);

/** A JSON body for `method`: its request with odd values, any JSON, or text that is not JSON. */
function jsonBody(method: DescMethod): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: structured(method) ? 5 : 0, arbitrary: jsonRequest(method.name).map((request) => JSON.stringify(request)) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.constantFrom("", "{", '{"streamName":', "[]", "null", '{"streamName":"s"}{}', "\ufeff{}") },
  );
}

function binaryBody(method: DescMethod): fc.Arbitrary<Uint8Array> {
  return structured(method) ? binaryRequest(method.name, method.input) : fc.uint8Array({ maxLength: 200 });
}

/** Zero to two frames of a binary request, each possibly with wrong flags or length. */
function framedBody(method: DescMethod): fc.Arbitrary<Buffer> {
  const one = fc.tuple(binaryBody(method), frameDamage).map(([payload, how]) => frame(payload, how));
  return fc.oneof({ weight: 6, arbitrary: one }, { weight: 1, arbitrary: fc.array(one, { maxLength: 2 }).map((all) => Buffer.concat(all)) });
}

describe("fuzzed requests get well-formed answers and change nothing they should not", () => {
  it("Connect JSON, HTTP/1.1 and HTTP/2", async () => {
    const input = methods.chain((method) => fc.tuple(fc.constant(method), jsonBody(method), fc.constantFrom<1 | 2>(1, 2)));
    await fuzz(
      "Connect JSON",
      input,
      async ([method, text, httpVersion]) => {
        const isStream = streaming(method);
        const body = isStream ? frame(Buffer.from(text), { flags: 0, lengthDelta: 0, cut: false }) : Buffer.from(text);
        const contentType = isStream ? "application/connect+json" : "application/json";
        const answer = await exchange(httpVersion, path(method), { "content-type": contentType, "connect-protocol-version": "1" }, body, isStream);
        expectConnectAnswer(method, true, answer);
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("Connect binary, HTTP/1.1 and HTTP/2", async () => {
    const input = methods.chain((method) =>
      fc.tuple(fc.constant(method), binaryBody(method), frameDamage, fc.constantFrom<1 | 2>(1, 2)),
    );
    await fuzz(
      "Connect binary",
      input,
      async ([method, payload, how, httpVersion]) => {
        const isStream = streaming(method);
        const body = isStream ? frame(payload, how) : Buffer.from(payload);
        const contentType = isStream ? "application/connect+proto" : "application/proto";
        const answer = await exchange(httpVersion, path(method), { "content-type": contentType, "connect-protocol-version": "1" }, body, isStream);
        expectConnectAnswer(method, false, answer);
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("gRPC frames", async () => {
    const input = methods.chain((method) => fc.tuple(fc.constant(method), framedBody(method)));
    await fuzz(
      "gRPC",
      input,
      async ([method, body]) => {
        const answer = await exchange(2, path(method), { "content-type": "application/grpc", te: "trailers" }, body, streaming(method));
        expectGrpcAnswer(method, false, answer);
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("gRPC-Web frames, HTTP/1.1 and HTTP/2", async () => {
    const input = methods.chain((method) => fc.tuple(fc.constant(method), framedBody(method), fc.constantFrom<1 | 2>(1, 2)));
    await fuzz(
      "gRPC-Web",
      input,
      async ([method, body, httpVersion]) => {
        const answer = await exchange(httpVersion, path(method), { "content-type": "application/grpc-web+proto" }, body, streaming(method));
        expectGrpcAnswer(method, true, answer);
      },
      RUNS,
    );
  }, TIMEOUT_MS);

  it("afterwards the server answers, the canary group is unchanged and no subscription is left behind", async () => {
    expect(await canaryContents()).toEqual(canaryBefore);
    const health = await fetch(`${running.url}/healthz`);
    expect(health.status).toBe(200);
    await expect.poll(() => running.server.stats().subscriptions, { timeout: 10_000 }).toBe(0);
  });
});
