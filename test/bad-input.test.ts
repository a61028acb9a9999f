import { create, toBinary, type JsonObject } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "../src/index.js";
import { GetRequestSchema, SetRequestSchema, UpdateOpSchema, type StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { expectConnectError } from "./conformance/expect-error.js";
import { json, op, value } from "./conformance/proto-values.js";
import { SubscriptionReader } from "./conformance/subscription-reader.js";
import { ALL_TRANSPORTS, startServer, type RunningServer } from "./support/server.js";

const LIMIT = 1024 * 1024;
const SEED = { stream_name: "seed", group_id: "g", item_id: "i" };
const BIG = { stream_name: "seed", group_id: "big", item_id: "b" };
const BIG_VALUE = "x".repeat(700_000);

let running: RunningServer;
let client: Client<typeof StreamService>;
let baseline: unknown;

/** Everything a bad request could have changed. */
async function observableState() {
  const seed = (await client.get({ streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id })).item;
  const big = (await client.get({ streamName: BIG.stream_name, groupId: BIG.group_id, itemId: BIG.item_id })).item;
  const offsets = [];
  for (const groupId of [SEED.group_id, BIG.group_id]) {
    const reader = new SubscriptionReader(client, { streamName: SEED.stream_name, groupId });
    try {
      offsets.push((await reader.expectNext("snapshot")).offset);
    } finally {
      reader.close();
    }
  }
  return {
    all: (await client.listAll({})).streams.map((s) => [s.streamName, s.groups]),
    seed: [json(seed?.data), seed?.revision],
    big: [json(big?.data) === BIG_VALUE, big?.revision],
    offsets,
  };
}

beforeAll(async () => {
  running = await startServer();
  client = running.client("connect-binary-h2");
  await client.set({ streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id, data: value({ n: 1 }) });
  await client.set({ streamName: BIG.stream_name, groupId: BIG.group_id, itemId: BIG.item_id, data: value(BIG_VALUE) });
  baseline = await observableState();
  expect(baseline).toEqual({ all: [["seed", ["big", "g"]]], seed: [{ n: 1 }, 1n], big: [true, 1n], offsets: [1n, 1n] });
});

afterEach(async () => {
  expect(await observableState()).toEqual(baseline);
});

afterAll(async () => {
  await running?.stop();
});

async function post(method: string, body: string | Uint8Array, contentType = "application/json") {
  const response = await fetch(`${running.url}/iii.stream.v1.StreamService/${method}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as { code?: string; message?: string } };
}

async function expectJsonError(method: string, body: string | Uint8Array, code: string, message: RegExp) {
  const response = await post(method, body);
  expect(response.body?.code, response.body?.message).toBe(code);
  expect(response.body?.message).toMatch(message);
  expect(response.status).toBe(code === "resource_exhausted" ? 429 : 400);
}

/** The first message of a Subscribe over the Connect streaming JSON protocol, as a plain client sends it. */
async function subscribeJson(body: string): Promise<{ end: boolean; message: Record<string, unknown> }> {
  const payload = Buffer.from(body);
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), payload]);
  envelope.writeUInt32BE(payload.length, 1);
  const abort = new AbortController();
  try {
    const response = await fetch(`${running.url}/iii.stream.v1.StreamService/Subscribe`, {
      method: "POST",
      headers: { "content-type": "application/connect+json" },
      body: envelope,
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let buffered = Buffer.alloc(0);
    while (buffered.length < 5 || buffered.length < 5 + buffered.readUInt32BE(1)) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error("the stream ended inside an envelope");
      buffered = Buffer.concat([buffered, chunk.value]);
    }
    const length = buffered.readUInt32BE(1);
    return { end: (buffered[0] & 0b10) !== 0, message: JSON.parse(buffered.subarray(5, 5 + length).toString()) };
  } finally {
    abort.abort();
  }
}

function numberValue(number: number): Value {
  return create(ValueSchema, { kind: { case: "numberValue", value: number } });
}

function listValue(...values: Value[]): Value {
  return create(ValueSchema, { kind: { case: "listValue", value: { values } } });
}

/** `depth` levels of nested arrays around 1: depth 1 is `[1]`. */
function nestedArrays(depth: number): JsonValue {
  let nested: JsonValue = 1;
  for (let level = 0; level < depth; level++) nested = [nested];
  return nested;
}

describe("names", () => {
  const requests: Record<string, { body: Record<string, unknown>; fields: string[] }> = {
    Set: { body: { ...SEED, data: { n: 2 } }, fields: ["stream_name", "group_id", "item_id"] },
    Get: { body: SEED, fields: ["stream_name", "group_id", "item_id"] },
    Delete: { body: SEED, fields: ["stream_name", "group_id", "item_id"] },
    Update: { body: { ...SEED, ops: [{ increment: { path: ["n"], by: 1 } }] }, fields: ["stream_name", "group_id", "item_id"] },
    Send: { body: { ...SEED, type: "t", data: 1 }, fields: ["stream_name", "group_id", "item_id", "type"] },
    List: { body: { stream_name: SEED.stream_name, group_id: SEED.group_id }, fields: ["stream_name", "group_id"] },
    ListGroups: { body: { stream_name: SEED.stream_name }, fields: ["stream_name"] },
  };
  const tooLong: Array<[string, string]> = [
    ["257 ASCII bytes", "x".repeat(257)],
    ["257 bytes of 2-byte characters (129 UTF-16 units)", "é".repeat(128) + "x"],
    ["257 bytes of 4-byte characters", "😀".repeat(64) + "x"],
  ];

  it.each(Object.entries(requests))("%s: missing, null, empty or longer than 256 bytes is INVALID_ARGUMENT", async (method, request) => {
    for (const field of request.fields) {
      const { [field]: _omitted, ...missing } = request.body;
      // Send's item_id is optional: only an empty one is wrong.
      if (!(method === "Send" && field === "item_id")) {
        await expectJsonError(method, JSON.stringify(missing), "invalid_argument", new RegExp(`^${field} must not be empty$`));
        await expectJsonError(method, JSON.stringify({ ...missing, [field]: null }), "invalid_argument", /must not be empty/);
      }
      await expectJsonError(method, JSON.stringify({ ...missing, [field]: "" }), "invalid_argument", /must not be empty/);
      for (const [, name] of tooLong) {
        await expectJsonError(
          method,
          JSON.stringify({ ...missing, [field]: name }),
          "invalid_argument",
          new RegExp(`^${field} is 2\\d\\d bytes long; the limit is 256$`),
        );
      }
    }
  });

  it("Subscribe with a missing, empty or too long name is INVALID_ARGUMENT", async () => {
    const requests = [
      { streamName: "", groupId: "g" },
      { streamName: "s", groupId: "" },
      { streamName: "s", groupId: "g", itemId: "" },
      { streamName: "x".repeat(257), groupId: "g" },
      { streamName: "s", groupId: "é".repeat(129) },
    ];
    for (const request of requests) {
      const reader = new SubscriptionReader(client, request);
      try {
        await expectConnectError(reader.next(), Code.InvalidArgument, /must not be empty|the limit is 256/);
      } finally {
        reader.close();
      }
    }
  });

  it.each([
    ["256 ASCII bytes", "y".repeat(256)],
    ["128 two-byte characters", "é".repeat(128)],
    ["64 four-byte characters", "😀".repeat(64)],
  ])("a name of exactly 256 bytes (%s) is fine in every position", async (_label, name) => {
    for (const key of [
      { stream_name: name, group_id: "g", item_id: "i" },
      { stream_name: "n256", group_id: name, item_id: "i" },
      { stream_name: "n256", group_id: "g", item_id: name },
    ]) {
      expect((await post("Set", JSON.stringify({ ...key, data: "ok" }))).status).toBe(200);
      expect((await post("Get", JSON.stringify(key))).body).toMatchObject({ item: { itemId: key.item_id, data: "ok" } });
      expect((await post("ListGroups", JSON.stringify({ stream_name: key.stream_name }))).body).toEqual({ groups: [key.group_id] });
      expect((await post("Delete", JSON.stringify(key))).body).toMatchObject({ oldValue: "ok" });
    }
  });
});

describe("text that is not UTF-8", () => {
  // JSON.stringify writes a lone surrogate as the escape \udXXX, as a careless client would send it.
  const loneSurrogates: Array<[string, Record<string, unknown>, RegExp]> = [
    ["Set", { ...SEED, stream_name: "\ud800", data: 1 }, /stream_name.*UTF8/],
    ["Set", { ...SEED, group_id: "a\udc00b", data: 1 }, /group_id.*UTF8/],
    ["Set", { ...SEED, item_id: "\udfff", data: 1 }, /item_id.*UTF8/],
    ["Set", { ...SEED, data: "\ud800" }, /^data contains a string that is not valid UTF-8$/],
    ["Set", { ...SEED, data: { "\udbff": 1 } }, /^data contains a key that is not valid UTF-8$/],
    ["Set", { ...SEED, data: [["ok", { deep: "x\ud800y" }]] }, /^data contains a string that is not valid UTF-8$/],
    ["Update", { ...SEED, ops: [{ set: { path: ["n"], value: "\ud800" } }] }, /updated value contains a string/],
    ["Update", { ...SEED, ops: [{ set: { path: ["\ud800"], value: 1 } }] }, /SetOp\.path.*UTF8/],
    ["Update", { ...SEED, ops: [{ merge: { value: { "\ud800": 1 } } }] }, /updated value contains a key/],
    ["Update", { ...SEED, ops: [{ append: { path: ["l"], value: ["\udc00"] } }] }, /updated value contains a string/],
    ["Send", { ...SEED, type: "\ud800", data: 1 }, /type.*UTF8/],
    ["Send", { ...SEED, type: "t", data: { a: "\ud800" } }, /^data contains a string that is not valid UTF-8$/],
  ];

  it.each(loneSurrogates)("a lone surrogate in JSON (%s %j) is INVALID_ARGUMENT", async (method, body, message) => {
    await expectJsonError(method, JSON.stringify(body), "invalid_argument", message);
  });

  it("invalid UTF-8 bytes in a JSON body are INVALID_ARGUMENT, never stored as U+FFFD", async () => {
    const withBadBytes = (before: string, after: string) =>
      Buffer.concat([Buffer.from(before), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from(after)]);
    await expectJsonError("Set", withBadBytes('{"stream_name":"bad', '","group_id":"g","item_id":"i","data":1}'), "invalid_argument", /utf-8/i);
    await expectJsonError("Set", withBadBytes('{"stream_name":"seed","group_id":"g","item_id":"i","data":"', '"}'), "invalid_argument", /utf-8/i);
  });

  it("invalid UTF-8 bytes in a binary string field are rejected by the protobuf decoder, never stored", async () => {
    const request = create(SetRequestSchema, { streamName: "AAAA", groupId: "g", itemId: "i", data: value("BBBB") });
    for (const marker of ["AAAA", "BBBB"]) {
      const bytes = Buffer.from(toBinary(SetRequestSchema, request));
      bytes.set([0xff, 0xfe, 0xc3, 0x28], bytes.indexOf(marker));
      const response = await post("Set", bytes, "application/proto");
      // Connect reports binary decode failures as INTERNAL (as gRPC does); either way nothing is stored.
      expect(["invalid_argument", "internal"]).toContain(response.body?.code);
      expect(response.body?.message).toMatch(/utf-8/i);
    }
  });
});

describe("malformed requests", () => {
  it("Set without data, or with a Value that holds nothing, is INVALID_ARGUMENT", async () => {
    await expectJsonError("Set", JSON.stringify(SEED), "invalid_argument", /^data is required$/);
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    await expectConnectError(client.set(key), Code.InvalidArgument, /^data is required$/);
    await expectConnectError(client.set({ ...key, data: create(ValueSchema) }), Code.InvalidArgument, /^data is not a JSON value/);
  });

  const wrongTypes: Array<[string, Record<string, unknown>, RegExp]> = [
    ["Set", { ...SEED, stream_name: 5, data: 1 }, /stream_name.*expected string/],
    ["Set", { ...SEED, item_id: ["i"], data: 1 }, /item_id.*expected string/],
    ["Set", { ...SEED, data: 1, if_revision: "abc" }, /if_revision/],
    ["Set", { ...SEED, data: 1, if_revision: -1 }, /if_revision/],
    ["Set", { ...SEED, data: 1, if_revision: 1.5 }, /if_revision/],
    ["Update", { ...SEED, ops: "x" }, /ops.*expected Array/],
    ["Update", { ...SEED, ops: { increment: { path: ["n"], by: 1 } } }, /ops.*expected Array/],
    ["Update", { ...SEED, ops: [5] }, /UpdateOp/],
    ["Update", { ...SEED, ops: [{ increment: { path: ["n"], by: "abc" } }] }, /IncrementOp\.by/],
    ["Update", { ...SEED, ops: [{ increment: { path: ["n"], by: 1.5 } }] }, /IncrementOp\.by/],
    ["Update", { ...SEED, ops: [{ increment: { path: "n", by: 1 } }] }, /IncrementOp\.path.*expected Array/],
    ["Update", { ...SEED, ops: [{ merge: { value: [1] } }] }, /Struct/],
    ["Update", { ...SEED, ops: [{ set: { path: ["n"], value: 2 }, remove: { path: ["n"] } }] }, /oneof set multiple times/],
    ["Send", { ...SEED, type: 7 }, /type.*expected string/],
    ["ListGroups", { stream_name: {} }, /stream_name.*expected string/],
    // A misspelt field must not turn a conditional write into an unconditional one.
    ["Set", { ...SEED, data: 2, if_revison: 1 }, /if_revison.*unknown/],
    ["Update", { ...SEED, ops: [{ increment: { path: ["n"], by: 1, bye: 2 } }] }, /bye.*unknown/],
    ["List", { stream_name: "seed", group_id: "g", page_sise: 1 }, /page_sise.*unknown/],
  ];

  it.each(wrongTypes)("a wrong JSON type (%s %j) is INVALID_ARGUMENT naming the field", async (method, body, message) => {
    await expectJsonError(method, JSON.stringify(body), "invalid_argument", message);
  });

  it.each([["{"], ["[]"], ["null"], [""], ['"text"'], [`{"stream_name":"seed","stream_name":"other"}`]])(
    "a body that is not a JSON object (%j) is INVALID_ARGUMENT",
    async (body) => {
      await expectJsonError("Set", body, "invalid_argument", /cannot decode message iii\.stream\.v1\.SetRequest/);
    },
  );

  it("a body in a format the server does not speak is 415, saying what is accepted", async () => {
    const response = await fetch(`${running.url}/iii.stream.v1.StreamService/Set`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ ...SEED, data: 2 }),
    });
    expect(response.status).toBe(415);
    expect(await response.text()).toContain("it accepts application/json, application/proto");
  });

  it("NaN and ±Infinity in a binary Value are INVALID_ARGUMENT wherever they appear", async () => {
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const data of [numberValue(bad), listValue(numberValue(1), listValue(numberValue(bad)))]) {
        await expectConnectError(client.set({ ...key, data }), Code.InvalidArgument, /NaN or Infinity/);
        await expectConnectError(client.send({ ...key, type: "t", data }), Code.InvalidArgument, /NaN or Infinity/);
        const set = create(UpdateOpSchema, { op: { case: "set", value: { path: ["n"], value: data } } });
        const append = create(UpdateOpSchema, { op: { case: "append", value: { path: ["l"], value: data } } });
        await expectConnectError(client.update({ ...key, ops: [set] }), Code.InvalidArgument, /NaN or Infinity/);
        await expectConnectError(client.update({ ...key, ops: [append] }), Code.InvalidArgument, /NaN or Infinity/);
      }
      // A Struct travels as a JSON object in this library, so its numbers reach the server unchecked.
      const merge = op.merge([], { ok: 1, nested: { bad } } as unknown as JsonObject);
      await expectConnectError(client.update({ ...key, ops: [merge] }), Code.InvalidArgument, /NaN or infinite/);
    }
  });

  it("a JSON number beyond 2^53 arrives rounded, as the README says: such values travel as strings", async () => {
    const key = { stream_name: "numbers", group_id: "g", item_id: "big" };
    const set = await post("Set", `{"stream_name":"numbers","group_id":"g","item_id":"big","data":{"n":9007199254740993,"s":"9007199254740993"}}`);
    expect(set.status).toBe(200);
    expect((await post("Get", JSON.stringify(key))).body).toMatchObject({ item: { data: { n: 9007199254740992, s: "9007199254740993" } } });
    await post("Delete", JSON.stringify(key));
  });

  it("an unknown JSON field in a Subscribe is INVALID_ARGUMENT naming it; binary requests skip unknown fields, as protobuf does", async () => {
    const answer = await subscribeJson('{"stream_name":"seed","group_id":"g","from_ofset":1}');
    expect(answer.end).toBe(true);
    expect(answer.message.error).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/from_ofset.*unknown/) });
    // A GetRequest with an extra field 15 (varint 1) after its known fields.
    const known = toBinary(GetRequestSchema, create(GetRequestSchema, { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id }));
    const response = await fetch(`${running.url}/iii.stream.v1.StreamService/Get`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: Buffer.concat([Buffer.from(known), Buffer.from([0x78, 0x01])]),
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  });

  it("an op that names no operation rejects the whole Update", async () => {
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    await expectConnectError(client.update({ ...key, ops: [op.none()] }), Code.InvalidArgument, /^ops\[0\] names no operation/);
    await expectConnectError(
      client.update({ ...key, ops: [op.increment(["n"], 1), op.none()] }),
      Code.InvalidArgument,
      /^ops\[1\] names no operation \(expected one of set, merge, increment, decrement, append, remove\)$/,
    );
    await expectJsonError("Update", JSON.stringify({ ...SEED, ops: [{}] }), "invalid_argument", /ops\[0\] names no operation/);
    await expectJsonError(
      "Update",
      JSON.stringify({ ...SEED, ops: [{ increment: { path: ["n"], by: 1 } }, { frobnicate: { path: ["n"] } }] }),
      "invalid_argument",
      // An operation the server does not know is an unknown JSON field, named as such.
      /frobnicate.*unknown/,
    );
  });
});

describe("limits", () => {
  it("a request over 1 MiB is RESOURCE_EXHAUSTED naming the limit, in every encoding", async () => {
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    const huge = "z".repeat(LIMIT + 1000);
    const limit = new RegExp(`${LIMIT}`);
    // Fresh clients: Node charges the unread rest of a rejected HTTP/2 body to the
    // session's memory, so a shared session would be spent for later tests.
    await expectConnectError(running.client("connect-binary-h2").set({ ...key, data: value(huge) }), Code.ResourceExhausted, limit);
    await expectConnectError(running.client("grpc").set({ ...key, data: value(huge) }), Code.ResourceExhausted, limit);
    await expectConnectError(running.client("grpc-web").send({ ...key, type: "t", data: value(huge) }), Code.ResourceExhausted, limit);
    await expectConnectError(
      running.client("connect-json-h2").update({ ...key, ops: [op.set(["n"], huge)] }),
      Code.ResourceExhausted,
      limit,
    );
    await expectJsonError("Set", JSON.stringify({ ...SEED, data: huge }), "resource_exhausted", limit);
  });

  it.each(ALL_TRANSPORTS)("after an oversized request over %s, the same client's next request works", async (kind) => {
    const oneClient = running.client(kind);
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    await expectConnectError(oneClient.set({ ...key, data: value("z".repeat(LIMIT + 1000)) }), Code.ResourceExhausted);
    expect(json((await oneClient.get(key)).item?.data)).toEqual({ n: 1 });
  });

  it("an Update whose result would exceed the value limit is RESOURCE_EXHAUSTED naming the limit", async () => {
    const key = { streamName: BIG.stream_name, groupId: BIG.group_id, itemId: BIG.item_id };
    await expectConnectError(
      client.update({ ...key, ops: [op.append([], "y".repeat(400_000))] }),
      Code.ResourceExhausted,
      new RegExp(`^the updated value is \\d+ bytes of JSON; the limit is ${LIMIT}$`),
    );
  });

  it("values nested deeper than 32 levels are INVALID_ARGUMENT; 32 levels are fine", async () => {
    const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };
    const tooDeep = /nested deeper than 32 levels/;
    await expectConnectError(client.set({ ...key, data: value(nestedArrays(33)) }), Code.InvalidArgument, tooDeep);
    await expectJsonError("Set", JSON.stringify({ ...SEED, data: nestedArrays(40) }), "invalid_argument", tooDeep);
    // Within each op's limits, but the combined value is one level too deep.
    await expectConnectError(
      client.update({ ...key, ops: [op.set(["n"], nestedArrays(32))] }),
      Code.InvalidArgument,
      /^the updated value contains arrays or objects nested deeper than 32 levels$/,
    );
    await expectJsonError("Set", JSON.stringify({ ...SEED, data: nestedArrays(150) }), "invalid_argument", /recursion/);

    const fine = { streamName: "deep-ok", groupId: "g", itemId: "deep" };
    expect(json((await client.set({ ...fine, data: value(nestedArrays(32)) })).newValue)).toEqual(nestedArrays(32));
    for (const kind of ["grpc", "connect-json-h1"] as const) {
      expect(json((await running.client(kind).get(fine)).item?.data)).toEqual(nestedArrays(32));
    }
    await client.delete(fine);
  });
});

describe("offsets and revisions out of range", () => {
  const key = { streamName: SEED.stream_name, groupId: SEED.group_id, itemId: SEED.item_id };

  it("an if_revision beyond 2^53-1 is INVALID_ARGUMENT; 2^53-1 itself is a plain mismatch", async () => {
    for (const ifRevision of [2n ** 53n, 2n ** 64n - 1n]) {
      await expectConnectError(client.set({ ...key, data: value(2), ifRevision }), Code.InvalidArgument, /^if_revision is out of range$/);
      await expectConnectError(client.update({ ...key, ops: [op.set([], 2)], ifRevision }), Code.InvalidArgument, /if_revision/);
      await expectConnectError(client.delete({ ...key, ifRevision }), Code.InvalidArgument, /if_revision/);
    }
    await expectConnectError(
      client.set({ ...key, data: value(2), ifRevision: 2n ** 53n - 1n }),
      Code.FailedPrecondition,
      /revision mismatch/,
    );
  });

  it("a negative, non-numeric or huge from_offset is INVALID_ARGUMENT", async () => {
    for (const fromOffset of ['"-5"', "-1", '"abc"', "1.5", "true"]) {
      const answer = await subscribeJson(`{"stream_name":"seed","group_id":"g","from_offset":${fromOffset}}`);
      expect(answer.end).toBe(true);
      expect(answer.message.error).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/from_offset/) });
    }
    for (const fromOffset of ['"9007199254740992"', '"18446744073709551615"']) {
      const answer = await subscribeJson(`{"stream_name":"seed","group_id":"g","from_offset":${fromOffset}}`);
      expect(answer.message.error).toEqual({ code: "invalid_argument", message: "from_offset is out of range" });
    }
    const reader = new SubscriptionReader(client, { streamName: "seed", groupId: "g", fromOffset: 2n ** 64n - 1n });
    try {
      await expectConnectError(reader.next(), Code.InvalidArgument, /^from_offset is out of range$/);
    } finally {
      reader.close();
    }
  });

  it("a from_offset ahead of the group falls back to a snapshot", async () => {
    const answer = await subscribeJson('{"stream_name":"seed","group_id":"g","from_offset":"9007199254740991"}');
    expect(answer).toMatchObject({ end: false, message: { snapshot: { items: [{ itemId: "i", data: { n: 1 } }] } } });
    // proto3 JSON leaves out default values only, so the offset is present.
    expect((answer.message.snapshot as { offset: string }).offset).toBe("1");
  });
});
