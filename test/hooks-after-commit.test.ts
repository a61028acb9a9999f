import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, connectRedisBackend, type EngineHooks, type GroupMessage, memoryBackend } from "../src/index.js";
import { op } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { RecordingLog } from "../src/index.js";

/** What a hook saw, reduced to what these tests compare. */
function brief(message: GroupMessage): string {
  return message.kind === "change" ? `${message.type} ${message.itemId} @${message.offset}` : `event ${message.type} @${message.offset}`;
}

const keyPrefix = uniquePrefix("hooks-after-commit");
const stores: Array<[string, () => Promise<Backend> | Backend]> = [
  ["memory", () => memoryBackend()],
  ["redis", () => connectRedisBackend({ url: REDIS_URL, keyPrefix })],
];

afterAll(() => deleteKeys(keyPrefix));

describe.each(stores)("afterCommit on the %s store", (_name, open) => {
  const streamName = uniqueNames("after-commit");
  const seen: string[] = [];
  const first: EngineHooks = { afterCommit: (message) => seen.push(`first ${brief(message)}`) };
  const broken: EngineHooks = {
    afterCommit: () => {
      throw new Error("this hook is broken on purpose");
    },
  };
  const last: EngineHooks = { afterCommit: (message) => seen.push(`last ${brief(message)}`) };
  let running: RunningServer;
  const log = new RecordingLog();

  beforeAll(async () => {
    running = await startServer({ backend: await open(), hooks: [first, broken, last], log });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("runs every hook of the list in order, once per change or event, before the write's reply", async () => {
    const s = streamName("order");
    const client = running.client();
    const expectSeen = (...lines: string[]) => {
      // Checked as soon as the reply is in: the hooks must have run before it was sent.
      expect(seen.splice(0)).toEqual(lines.flatMap((line) => [`first ${line}`, `last ${line}`]));
    };

    await client.set({ streamName: s, groupId: "g", itemId: "a", data: json({ n: 1 }) });
    expectSeen("create a @1");
    await client.update({ streamName: s, groupId: "g", itemId: "a", ops: [op.increment(["n"], 1)] });
    expectSeen("update a @2");
    await client.send({ streamName: s, groupId: "g", type: "ping", data: json(null) });
    expectSeen("event ping @2");
    await client.delete({ streamName: s, groupId: "g", itemId: "a" });
    expectSeen("delete a @3");
    // In process, without a network between: the write resolves only after its hooks ran.
    await running.server.engine.set({ streamName: s, groupId: "g", itemId: "b" }, 1);
    expectSeen("create b @4");
    // The broken hook's exception went to the log, saying which hook and which group.
    expect(log.find("afterCommit hook failed")).toHaveLength(5);
    expect(log.find("afterCommit hook failed")[0]).toMatchObject({
      level: "error",
      fields: { hook: "afterCommit", stream: s, group: "g", error: "this hook is broken on purpose" },
    });
  });

  it("does not run for a write that changes nothing or is refused", async () => {
    const s = streamName("nothing");
    const client = running.client();
    await client.delete({ streamName: s, groupId: "g", itemId: "absent" });
    await expect(client.set({ streamName: s, groupId: "g", itemId: "a", data: json(1), ifRevision: 5n })).rejects.toThrow(/revision mismatch/);
    expect(seen.splice(0)).toEqual([]);
  });
});
