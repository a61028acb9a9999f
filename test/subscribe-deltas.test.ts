/**
 * Deltas (SubscribeRequest.deltas): an update made by ops (Update, or an update in a Batch) reaches a subscriber that asked
 * for them as the applied ops, which reproduce the full values exactly; on the memory and
 * file adapters through one real server, on Redis from a writer on one server to
 * subscribers on another, live and resumed from the history. Subscribers that did not
 * ask see no ops. The client library applies deltas and, when one does not fit its copy,
 * resumes without them instead of corrupting the view.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend, memoryBackend, openFileBackend, type JsonObject, type JsonValue, type StreamServerOptions } from "../src/index.js";
import { createStreamClient, type ViewItem } from "../src/client/node.js";
import { applyUpdateOps, type UpdateOp as CoreOp } from "../src/core/update-ops.js";
import { ChangeType, type StreamService, type SubscribeResponse, type UpdateOp } from "../gen/iii/stream/v1/stream_pb.js";
import { json, op, value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { StreamCursor, waitFor } from "./support/subscribe-view.js";

type Backend = NonNullable<StreamServerOptions["backend"]>;

const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-deltas-"));
const keyPrefix = uniquePrefix("deltas");
const RUNS = Number(process.env.DELTA_RUNS ?? 12);

/** A value that outweighs the ops, so that most updates go out as deltas. */
const PAD = "p".repeat(400);
const KEYS = ["a", "b", "n"] as const;
const PATHS: string[][] = [["a"], ["b"], ["n"], ["o", "x"], ["o", "n"], ["list"]];

const scalar = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null));
const small: fc.Arbitrary<JsonValue> = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(fc.constantFrom("x", "y", "n"), scalar, { maxKeys: 2 }));
const path = fc.constantFrom(...PATHS);
/** Every op kind, on paths where some apply and some fail (an increment of a string, a remove under a scalar). */
const anyOp: fc.Arbitrary<UpdateOp> = fc.oneof(
  fc.tuple(path, small).map(([p, v]) => op.set(p, v)),
  fc.tuple(fc.constantFrom<string[]>([], ["o"]), fc.dictionary(fc.constantFrom(...KEYS), scalar, { maxKeys: 2 })).map(([p, v]) => op.merge(p, v as JsonObject)),
  fc.tuple(path, fc.integer({ min: -50, max: 50 })).map(([p, by]) => op.increment(p, by)),
  fc.tuple(path, fc.integer({ min: -50, max: 50 })).map(([p, by]) => op.decrement(p, by)),
  fc.tuple(path, small).map(([p, v]) => op.append(p, v)),
  path.map((p) => op.remove(p)),
);
const initial = fc.record({ a: small, n: fc.integer({ min: 0, max: 10 }), o: fc.constant({ n: 1 }) });

/** What a delta subscriber does: a change with ops is applied to the value at revision - 1. */
function fromWire(ops: UpdateOp[]): CoreOp[] {
  return ops.map((o): CoreOp => {
    const { case: type, value } = o.op;
    switch (type) {
      case "set":
      case "append":
        return { type, path: value.path, value: json(value.value) ?? null };
      case "merge":
        return { type, path: value.path, value: value.value };
      case "increment":
      case "decrement":
        return { type, path: value.path, by: value.by };
      case "remove":
        return { type, path: value.path };
      default:
        throw new Error("an op without a case");
    }
  });
}

interface Replayed {
  /** The item's value after each change, by offset. */
  values: Map<number, JsonValue | undefined>;
  deltas: number;
  problems: string[];
}

/** Reads the stream up to `lastOffset`, rebuilding the item from snapshots, whole changes and deltas. */
async function replay(cursor: StreamCursor, itemId: string, lastOffset: number, start: { value: JsonValue; revision: number; offset: number }): Promise<Replayed> {
  const values = new Map<number, JsonValue | undefined>();
  const problems: string[] = [];
  let deltas = 0;
  let current: JsonValue | undefined = start.value;
  let revision = start.revision;
  let offset = start.offset;
  while (offset < lastOffset) {
    const response: SubscribeResponse = await cursor.next();
    const message = response.message;
    if (message.case === "snapshot") {
      const item = message.value.items.find((entry) => entry.itemId === itemId);
      current = item ? json(item.data) : undefined;
      revision = item ? Number(item.revision) : 0;
      offset = Number(message.value.offset);
      continue;
    }
    if (message.case !== "change") continue;
    const change = message.value;
    offset = Number(change.offset);
    if (change.ops.length > 0) {
      deltas++;
      if (change.data !== undefined) problems.push(`offset ${offset}: a delta with data`);
      if (change.type !== ChangeType.UPDATE) problems.push(`offset ${offset}: ops on a change of type ${change.type}`);
      if (Number(change.revision) !== revision + 1) problems.push(`offset ${offset}: revision ${change.revision} after ${revision}`);
      const outcome = applyUpdateOps(current, fromWire(change.ops));
      if (outcome.errors.length > 0) problems.push(`offset ${offset}: ops that do not apply: ${JSON.stringify(outcome.errors)}`);
      current = outcome.value;
    } else {
      current = change.type === ChangeType.DELETE ? undefined : json(change.data);
    }
    revision = Number(change.revision);
    values.set(offset, current);
  }
  return { values, deltas, problems };
}

const BACKENDS: Array<[string, () => Promise<Backend>]> = [
  ["memory", async () => memoryBackend()],
  ["file", async () => openFileBackend({ dataDir })],
  ["redis", async () => connectRedisBackend({ url: REDIS_URL, keyPrefix })],
];

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await deleteKeys(keyPrefix);
});

describe.each(BACKENDS)("deltas on the %s adapter", (name, backend) => {
  const streams = uniqueNames(`deltas-${name}`);
  let writerServer: RunningServer;
  /** On Redis a second server: the subscribers are on another instance than the writer. */
  let readerServer: RunningServer;
  let writer: Client<typeof StreamService>;
  let reader: Client<typeof StreamService>;
  let totalDeltas = 0;

  beforeAll(async () => {
    writerServer = await startServer({ backend: await backend() });
    readerServer = name === "redis" ? await startServer({ backend: await backend() }) : writerServer;
    writer = writerServer.client();
    reader = readerServer.client("connect-json-h2");
  });

  afterAll(async () => {
    if (readerServer !== writerServer) await readerServer?.stop();
    await writerServer?.stop();
  });

  it("deltas reproduce exactly the full values, live and resumed from the history", async () => {
    await fc.assert(
      fc.asyncProperty(initial, fc.array(fc.tuple(fc.array(anyOp, { minLength: 1, maxLength: 4 }), fc.constantFrom("update", "batch")), { minLength: 1, maxLength: 8 }), async (start, updates) => {
        const key = { streamName: streams("p"), groupId: "g", itemId: "doc" };
        const first = await writer.set({ ...key, data: value({ ...start, pad: PAD }) });
        const plain = new StreamCursor(reader, { streamName: key.streamName, groupId: key.groupId });
        const delta = new StreamCursor(reader, { streamName: key.streamName, groupId: key.groupId, deltas: true });
        const binaryDelta = new StreamCursor(readerServer.client("grpc"), { streamName: key.streamName, groupId: key.groupId, deltas: true });
        try {
          // Each stream's snapshot first: it is the base the first delta applies to.
          await Promise.all([plain.next(), delta.next(), binaryDelta.next()]);
          let last = Number(first.offset);
          for (const [ops, via] of updates) {
            if (via === "update") {
              const result = await writer.update({ ...key, ops });
              last = Math.max(last, Number(result.offset));
            } else {
              // Two updates of the item in one batch: two consecutive changes, the second made from the first.
              const update = { case: "update" as const, value: { ops } };
              const result = await writer.batch({ streamName: key.streamName, groupId: key.groupId, writes: [{ itemId: key.itemId, write: update }, { itemId: key.itemId, write: update }] });
              last = Math.max(last, Number(result.lastOffset));
            }
          }
          const base = { value: { ...start, pad: PAD } as JsonValue, revision: 1, offset: Number(first.offset) };
          const [full, viaJson, viaBinary] = await Promise.all([
            replay(plain, key.itemId, last, base),
            replay(delta, key.itemId, last, base),
            replay(binaryDelta, key.itemId, last, base),
          ]);
          expect(full.deltas).toBe(0);
          expect(viaJson.problems).toEqual([]);
          expect(viaBinary.problems).toEqual([]);
          expect(viaJson.values).toEqual(full.values);
          expect(viaBinary.values).toEqual(full.values);
          totalDeltas += viaJson.deltas;

          // A resume from the history (on Redis, the history another instance wrote) carries the same ops.
          if (last === base.offset) return;
          const resumed = new StreamCursor(reader, { ...key, itemId: undefined, fromOffset: first.offset, deltas: true });
          try {
            const fromHistory = await replay(resumed, key.itemId, last, base);
            expect(fromHistory.problems).toEqual([]);
            expect(fromHistory.deltas).toBe(viaJson.deltas);
            expect(fromHistory.values).toEqual(full.values);
          } finally {
            resumed.close();
          }
          const stored = await writer.get(key);
          expect(json(stored.item?.data)).toEqual(full.values.get(last) ?? base.value);
        } finally {
          plain.close();
          delta.close();
          binaryDelta.close();
        }
      }),
      { numRuns: RUNS },
    );
    // Not vacuous: with the padding, most applied updates went out as ops.
    expect(totalDeltas).toBeGreaterThan(RUNS);
  });

  it("sends the whole value when the ops are not smaller, and to subscribers that did not ask", async () => {
    const key = { streamName: streams("whole"), groupId: "g", itemId: "i" };
    await writer.set({ ...key, data: value({ n: 1 }) });
    const delta = new StreamCursor(reader, { streamName: key.streamName, groupId: "g", deltas: true });
    const plain = new StreamCursor(reader, { streamName: key.streamName, groupId: "g" });
    try {
      await Promise.all([delta.next(), plain.next()]);
      // Larger than the value it makes: the change carries the value.
      await writer.update({ ...key, ops: [op.set(["note"], "a fairly long text, longer than the item")] });
      const [viaDelta, viaPlain] = await Promise.all([delta.next(), plain.next()]);
      for (const response of [viaDelta, viaPlain]) {
        expect(response.message.case).toBe("change");
        const change = response.message.value as Extract<SubscribeResponse["message"], { case: "change" }>["value"];
        expect(change.ops).toEqual([]);
        expect(json(change.data)).toEqual({ n: 1, note: "a fairly long text, longer than the item" });
      }
    } finally {
      delta.close();
      plain.close();
    }
  });

  it("a client view applies the deltas and ends equal to the server's items", async () => {
    const stream = streams("view");
    const client = createStreamClient({ baseUrl: readerServer.url });
    const writes = createStreamClient({ baseUrl: writerServer.url });
    try {
      await writes.set(stream, "g", "a", { n: 0, pad: PAD, tags: [] });
      await writes.set(stream, "g", "b", { n: 0, pad: PAD });
      const view = client.watchGroup(stream, "g");
      const parsed = client.watchGroup(stream, "g", { parse: (value) => ({ wrapped: value }) });
      await Promise.all([view.ready(), parsed.ready()]);
      for (let i = 0; i < 20; i++) {
        await writes.update(stream, "g", i % 2 ? "a" : "b", [
          { type: "increment", path: ["n"], by: i },
          { type: "append", path: ["tags"], value: i },
          // Always fails (the padding is a string): left out of the delta.
          { type: "increment", path: ["pad"], by: 1 },
        ]);
      }
      await waitFor(() => view.offset === 22, "the view to take every change");
      const expected = new Map<string, JsonValue>();
      for (const id of ["a", "b"]) expected.set(id, (await writes.get(stream, "g", id))!.data);
      expect(new Map([...view.items].map(([id, item]) => [id, item.data]))).toEqual(expected);
      await waitFor(() => parsed.offset === 22, "the parsed view to take every change");
      expect(new Map([...parsed.items].map(([id, item]: [string, ViewItem<{ wrapped: JsonValue }>]) => [id, item.data.wrapped]))).toEqual(expected);
    } finally {
      client.close();
      writes.close();
    }
  });
});

describe("a delta that does not fit the client's copy", () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer({ backend: memoryBackend() });
  });

  afterAll(async () => {
    await running?.stop();
  });

  it("a view started from an offset, which lacks the items that did not change, and one with deltas: false ask for none", async () => {
    const client = createStreamClient({ baseUrl: running.url });
    try {
      await client.set("partial", "g", "old", { n: 1, pad: PAD });
      const { offset } = await client.set("partial", "g", "marker", { n: 0 });
      const views = [client.watchGroup("partial", "g", { fromOffset: offset }), client.watchGroup("partial", "g", { deltas: false })];
      const statuses = views.map((view) => {
        const seen: string[] = [];
        view.on("status", (status) => seen.push(status));
        return seen;
      });
      await Promise.all(views.map((view) => view.ready()));
      // A delta of "old" would not fit the first view's copy (it has no "old") and make it resume.
      await client.update("partial", "g", "old", [{ type: "increment", path: ["n"], by: 1 }]);
      await waitFor(() => views.every((view) => view.offset === offset + 1), "both views to take the update");
      for (const view of views) expect(view.items.get("old")).toMatchObject({ data: { n: 2, pad: PAD }, revision: 2 });
      expect(statuses).toEqual([["live"], ["live"]]);
    } finally {
      client.close();
    }
  });

  it("resumes without deltas and gets the whole value, instead of corrupting the view", async () => {
    const client = createStreamClient({ baseUrl: running.url });
    try {
      await client.set("mismatch", "g", "doc", { n: 1, pad: PAD });
      await client.set("mismatch", "g", "other", { n: 1 });
      const view = client.watchGroup("mismatch", "g");
      const resets: string[] = [];
      view.on("reset", (reset) => resets.push(reset.reason));
      const statuses: string[] = [];
      view.on("status", (status) => statuses.push(status));
      await view.ready();
      await client.update("mismatch", "g", "doc", [{ type: "increment", path: ["n"], by: 1 }]);
      await waitFor(() => view.offset === 3, "the first delta");
      expect(view.items.get("doc")?.data).toEqual({ n: 2, pad: PAD });

      expect(statuses).toEqual(["live"]);
      // The copy drifts from the server's (as a bug would make it): the revision chain no longer holds.
      const items = view.items as Map<string, ViewItem>;
      items.set("doc", { ...items.get("doc")!, revision: 7, data: { n: 100, pad: PAD } });
      await client.update("mismatch", "g", "doc", [{ type: "increment", path: ["n"], by: 1 }]);
      await waitFor(() => view.offset === 4, "the change after the mismatch");
      expect(view.items.get("doc")).toMatchObject({ data: { n: 3, pad: PAD }, revision: 3 });
      // The delta was refused and the stream resumed from the view's offset: no snapshot, so no reset.
      expect(statuses).toEqual(["live", "reconnecting", "live"]);
      expect(resets).toEqual([]);
      expect(view.items.get("other")?.data).toEqual({ n: 1 });

      // Deltas again on the stream after the resume.
      await client.update("mismatch", "g", "doc", [{ type: "increment", path: ["n"], by: 1 }]);
      await waitFor(() => view.offset === 5, "a delta after the resume");
      expect(view.items.get("doc")).toMatchObject({ data: { n: 4, pad: PAD }, revision: 4 });
    } finally {
      client.close();
    }
  });
});
