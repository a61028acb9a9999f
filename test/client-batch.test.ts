/** The client library's `batch` and `requestId` against a real server. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, StreamError, createStreamClient, type StreamClient } from "../src/client/node.js";
import { startServer, type RunningServer } from "./support/server.js";

let running: RunningServer;
let client: StreamClient;

beforeAll(async () => {
  running = await startServer();
  client = createStreamClient({ baseUrl: running.url });
});

afterAll(async () => {
  client?.close();
  await running?.stop();
});

describe("batch", () => {
  it("writes set, update and delete in order, with plain JSON results", async () => {
    await client.set("batch", "g", "old", "gone soon");
    const result = await client.batch("batch", "g", [
      { itemId: "a", set: { n: 1 } },
      { itemId: "a", update: [{ type: "increment", path: ["n"], by: 2 }, { type: "increment", path: ["missing", "x"], by: 1 }], ifRevision: 1 },
      { itemId: "old", delete: true },
    ]);
    expect(result).toEqual({
      results: [
        { newValue: { n: 1 }, errors: [], revision: 1, offset: 2 },
        { oldValue: { n: 1 }, newValue: { n: 3, missing: { x: 1 } }, errors: [], revision: 2, offset: 3 },
        { oldValue: "gone soon", errors: [], revision: 0, offset: 4 },
      ],
      firstOffset: 2,
      lastOffset: 4,
    });
  });

  it("fails as a whole with failed_precondition naming the write, and refuses a write without an operation", async () => {
    const failed = await client.batch("batch-fail", "g", [{ itemId: "a", set: 1 }, { itemId: "b", set: 2, ifRevision: 3 }]).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StreamError);
    expect([(failed as StreamError).code, (failed as StreamError).message]).toEqual([ErrorCode.FailedPrecondition, expect.stringMatching(/^writes\[1\]: /)]);
    expect(await client.get("batch-fail", "g", "a")).toBeUndefined();
    await expect(client.batch("batch-fail", "g", [{ itemId: "a" } as never])).rejects.toThrow(/writes\[0\] must have one of/);
  });

  it("requestId makes every write retryable: the retry gets the first answer", async () => {
    const first = await client.update("retry", "g", "counter", [{ type: "increment", path: ["n"], by: 1 }], { requestId: "u-1" });
    expect(await client.update("retry", "g", "counter", [{ type: "increment", path: ["n"], by: 1 }], { requestId: "u-1" })).toEqual(first);
    const batch = [{ itemId: "x", set: 1 }, { itemId: "y", set: 2 }];
    const batched = await client.batch("retry", "g", batch, { requestId: "b-1" });
    expect(await client.batch("retry", "g", batch, { requestId: "b-1" })).toEqual(batched);
    const set = await client.set("retry", "g", "s", "v", { requestId: "s-1" });
    expect(await client.set("retry", "g", "s", "v", { requestId: "s-1" })).toEqual(set);
    await client.send("retry", "g", "ping", null, { requestId: "p-1" });
    await client.send("retry", "g", "ping", null, { requestId: "p-1" });
    const removed = await client.delete("retry", "g", "s", { requestId: "d-1" });
    expect(await client.delete("retry", "g", "s", { requestId: "d-1" })).toEqual(removed);
    expect(await client.get("retry", "g", "counter")).toMatchObject({ data: { n: 1 }, revision: 1 });
  });
});
