import { describe, expect, it } from "vitest";
import { Delivery } from "../src/core/delivery.js";
import { DeliveryPump, type FrameSink } from "../src/core/delivery-pump.js";
import { FlushScheduler } from "../src/core/flush-scheduler.js";
import { Subscription } from "../src/core/subscription.js";

/** A transport that records what it is given; every frame counts 10 bytes. */
class FakeSink implements FrameSink<string> {
  room = 1000;
  buffered = 0;
  full = false;
  framed: string[] = [];
  writes: string[][] = [];
  drain: (() => void) | undefined;

  frame(delivery: Delivery, source: string): number {
    this.framed.push(`${source}:${delivery.offset}`);
    return 10;
  }

  write(): boolean {
    this.writes.push(this.framed);
    this.framed = [];
    return !this.full;
  }

  onDrain(listener: () => void): void {
    this.drain = listener;
  }

  offDrain(listener: () => void): void {
    if (this.drain === listener) this.drain = undefined;
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function subscription(pump: DeliveryPump<string>, offsets: number[]): Subscription {
  const target = { streamName: "s", groupId: "g", itemId: undefined };
  const sub = new Subscription(target, { maxMessages: 1000, maxBytes: 1 << 30 }, pump.onReadable);
  sub.start(
    offsets.map((offset) => new Delivery({ kind: "heartbeat", offset })),
    0,
  );
  return sub;
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe("the delivery pump", () => {
  it("writes what arrived in one turn in one write, in order", async () => {
    const sink = new FakeSink();
    const pump = new DeliveryPump(sink, new FlushScheduler());
    const a = subscription(pump, [1, 2, 3]);
    pump.add(a, "a");
    expect(sink.writes).toEqual([]);
    await turn();
    expect(sink.writes).toEqual([["a:1", "a:2", "a:3"]]);
    await turn();
    expect(sink.writes).toHaveLength(1);
  });

  it("takes round-robin, takePerRound at a time, so one busy subscription does not starve another", async () => {
    const sink = new FakeSink();
    const pump = new DeliveryPump(sink, new FlushScheduler(), { takePerRound: 2 });
    pump.add(subscription(pump, range(1, 5)), "a");
    pump.add(subscription(pump, [101, 102]), "b");
    await turn();
    expect(sink.writes).toEqual([["a:1", "a:2", "b:101", "b:102", "a:3", "a:4", "a:5"]]);
  });

  it("frames no more than the sink's room per flush, and comes back next turn for the rest", async () => {
    const sink = new FakeSink();
    sink.room = 25;
    const pump = new DeliveryPump(sink, new FlushScheduler());
    pump.add(subscription(pump, range(1, 7)), "a");
    await turn();
    expect(sink.writes).toEqual([["a:1", "a:2", "a:3"]]);
    await turn();
    expect(sink.writes.at(-1)).toEqual(["a:4", "a:5", "a:6"]);
    await turn();
    expect(sink.writes.at(-1)).toEqual(["a:7"]);
  });

  it("takes nothing while the sink is full, and resumes on drain", async () => {
    const sink = new FakeSink();
    sink.room = 10;
    sink.full = true;
    const pump = new DeliveryPump(sink, new FlushScheduler());
    const a = subscription(pump, [1, 2]);
    pump.add(a, "a");
    await turn();
    expect(sink.writes).toEqual([["a:1"]]);
    a.heartbeat(3);
    await turn();
    await turn();
    expect(sink.writes).toHaveLength(1);
    expect(a.pending).toBe(2);
    sink.full = false;
    sink.room = 1000;
    sink.drain!();
    await turn();
    expect(sink.writes.at(-1)).toEqual(["a:2", "a:3"]);
  });

  it("stops pumping a removed subscription, and everything once closed", async () => {
    const sink = new FakeSink();
    const pump = new DeliveryPump(sink, new FlushScheduler());
    const a = subscription(pump, [1]);
    const b = subscription(pump, [2]);
    pump.add(a, "a");
    pump.add(b, "b");
    pump.remove(a);
    await turn();
    expect(sink.writes).toEqual([["b:2"]]);
    pump.close();
    expect(sink.drain).toBeUndefined();
    b.heartbeat(5);
    pump.add(subscription(pump, [9]), "c");
    await turn();
    expect(sink.writes).toHaveLength(1);
  });

  it("shares one scheduler timer between pumps: each flushes once per turn", async () => {
    const scheduler = new FlushScheduler();
    const sinks = [new FakeSink(), new FakeSink()];
    const pumps = sinks.map((sink) => new DeliveryPump(sink, scheduler));
    const subs = pumps.map((pump, i) => {
      const sub = subscription(pump, [i]);
      pump.add(sub, `p${i}`);
      return sub;
    });
    for (const sub of subs) for (let n = 10; n < 13; n++) sub.heartbeat(n);
    await turn();
    expect(sinks.map((sink) => sink.writes)).toEqual([[["p0:0", "p0:10", "p0:11", "p0:12"]], [["p1:1", "p1:10", "p1:11", "p1:12"]]]);
  });
});
