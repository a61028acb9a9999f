import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { ChangeType, StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { json, op, value } from "./conformance/proto-values.js";
import { SubscriptionReader } from "./conformance/subscription-reader.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { transportFor } from "./support/server.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-resume-"));
const running = new Set<ServerProcess>();

afterAll(() => {
  for (const server of running) server.child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

async function start(args: string[]): Promise<{ server: ServerProcess; client: Client<typeof StreamService> }> {
  const server = await spawnServer(["--port", "0", ...args]);
  running.add(server);
  void server.exited.then(() => running.delete(server));
  return { server, client: createClient(StreamService, transportFor(server.url, "grpc")) };
}

async function stop(server: ServerProcess, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
  server.child.kill(signal);
  const code = await server.exited;
  expect(code).toBe(signal === "SIGTERM" ? 0 : "SIGKILL");
}

function changeSummary(change: { type: ChangeType; itemId: string; revision: bigint; offset: bigint; data?: unknown }) {
  return [ChangeType[change.type], change.itemId, Number(change.revision), Number(change.offset), json(change.data as never)];
}

describe("resuming a subscription across a server restart", () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`delivers exactly the changes missed while away, after a ${signal} restart`, async () => {
      const dataDir = join(root, signal);
      const key = { streamName: "resume", groupId: "g" };
      let { server, client } = await start(["--data-dir", dataDir]);
      await client.set({ ...key, itemId: "a", data: value({ n: 1 }) });
      await client.set({ ...key, itemId: "b", data: value("b") });

      const first = new SubscriptionReader(client, key);
      let seen: bigint;
      try {
        expect((await first.expectNext("snapshot")).offset).toBe(2n);
        await client.set({ ...key, itemId: "c", data: value("c") });
        seen = (await first.expectNext("change")).offset;
        expect(seen).toBe(3n);
      } finally {
        first.close();
      }

      // Missed while away: an update, a delete, a create, and an event (never stored).
      await client.update({ ...key, itemId: "a", ops: [op.increment(["n"], 5)] });
      await client.delete({ ...key, itemId: "b" });
      await client.set({ ...key, itemId: "d", data: value(["d"]) });
      await client.send({ ...key, type: "ping", data: value(null) });
      await stop(server, signal);

      ({ server, client } = await start(["--data-dir", dataDir]));
      const resumed = new SubscriptionReader(client, { ...key, fromOffset: seen });
      const onlyA = new SubscriptionReader(client, { ...key, itemId: "a", fromOffset: seen });
      try {
        const missed = [await resumed.expectNext("change"), await resumed.expectNext("change"), await resumed.expectNext("change")];
        expect(missed.map(changeSummary)).toStrictEqual([
          ["UPDATE", "a", 2, 4, { n: 6 }],
          ["DELETE", "b", 1, 5, "b"],
          ["CREATE", "d", 1, 6, ["d"]],
        ]);
        expect(changeSummary(await onlyA.expectNext("change"))).toStrictEqual(["UPDATE", "a", 2, 4, { n: 6 }]);

        // Live changes follow, with offsets that carry on from before the restart.
        await client.set({ ...key, itemId: "a", data: value("live") });
        expect(changeSummary(await resumed.expectNext("change"))).toStrictEqual(["UPDATE", "a", 3, 7, "live"]);
        expect(changeSummary(await onlyA.expectNext("change"))).toStrictEqual(["UPDATE", "a", 3, 7, "live"]);
      } finally {
        resumed.close();
        onlyA.close();
      }
      await stop(server, "SIGTERM");
    });
  }

  it("keeps only the configured history: an older offset gets a snapshot after the restart", async () => {
    const dataDir = join(root, "trimmed");
    const config = join(root, "history.yaml");
    writeFileSync(config, "history_limit: 2\n");
    const key = { streamName: "resume", groupId: "trim" };
    let { server, client } = await start(["--data-dir", dataDir, "--config", config]);
    for (let i = 1; i <= 5; i++) await client.set({ ...key, itemId: "x", data: value(i) });
    await stop(server, "SIGKILL");

    ({ server, client } = await start(["--data-dir", dataDir, "--config", config]));
    const tooOld = new SubscriptionReader(client, { ...key, fromOffset: 2n });
    const retained = new SubscriptionReader(client, { ...key, fromOffset: 3n });
    try {
      const snapshot = await tooOld.expectNext("snapshot");
      expect([Number(snapshot.offset), snapshot.items.map((item) => json(item.data))]).toStrictEqual([5, [5]]);
      expect([Number((await retained.expectNext("change")).offset), Number((await retained.expectNext("change")).offset)]).toStrictEqual([4, 5]);
    } finally {
      tooOld.close();
      retained.close();
    }
    await stop(server, "SIGTERM");
  });
});
