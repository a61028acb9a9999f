import { describe, expect, it } from "vitest";
import { FLUSHES_PER_TURN, FlushScheduler, SLICE_MS } from "../src/core/flush-scheduler.js";

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A target that records the turn it was flushed in, and queues itself again `again` times. */
function target(scheduler: FlushScheduler, log: string[], name: string, again = 0, work = () => undefined as void) {
  const self = {
    flush(): void {
      log.push(name);
      work();
      if (again-- > 0) scheduler.add(self);
    },
  };
  return self;
}

describe("the flush scheduler", () => {
  it("flushes at most FLUSHES_PER_TURN targets per turn, in the order they were queued", async () => {
    const scheduler = new FlushScheduler();
    const log: string[] = [];
    const count = FLUSHES_PER_TURN * 2 + 1;
    for (let i = 0; i < count; i++) scheduler.add(target(scheduler, log, `t${i}`));
    const perTurn: number[] = [];
    while (log.length < count) {
      const before = log.length;
      await turn();
      perTurn.push(log.length - before);
    }
    expect(perTurn).toEqual([FLUSHES_PER_TURN, FLUSHES_PER_TURN, 1]);
    expect(log).toEqual(Array.from({ length: count }, (_, i) => `t${i}`));
  });

  it("puts a target that queues itself again behind the others, and flushes it once per turn", async () => {
    const scheduler = new FlushScheduler();
    const log: string[] = [];
    scheduler.add(target(scheduler, log, "busy", 2));
    scheduler.add(target(scheduler, log, "a"));
    scheduler.add(target(scheduler, log, "b"));
    await turn();
    expect(log).toEqual(["busy", "a", "b"]);
    await turn();
    await turn();
    expect(log).toEqual(["busy", "a", "b", "busy", "busy"]);
  });

  it("leaves the rest for the next turn once a turn's flushes took SLICE_MS", async () => {
    const scheduler = new FlushScheduler();
    const log: string[] = [];
    const slow = () => {
      const until = performance.now() + SLICE_MS;
      while (performance.now() < until);
    };
    scheduler.add(target(scheduler, log, "slow", 0, slow));
    scheduler.add(target(scheduler, log, "next"));
    await turn();
    expect(log).toEqual(["slow"]);
    await turn();
    expect(log).toEqual(["slow", "next"]);
  });
});
