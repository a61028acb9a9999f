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
  /** Flushes turn by turn until `done`; what each turn flushed. */
  async function turns(log: string[], done: () => boolean): Promise<string[][]> {
    const perTurn: string[][] = [];
    while (!done()) {
      const before = log.length;
      await turn();
      perTurn.push(log.slice(before));
    }
    return perTurn;
  }

  // SLICE_MS may end a turn sooner on a loaded machine (the process descheduled mid-turn), never later.
  it("flushes at most FLUSHES_PER_TURN targets per turn, in the order they were queued", async () => {
    const scheduler = new FlushScheduler();
    const log: string[] = [];
    const count = FLUSHES_PER_TURN * 2 + 1;
    for (let i = 0; i < count; i++) scheduler.add(target(scheduler, log, `t${i}`));
    const perTurn = await turns(log, () => log.length === count);
    expect(perTurn.length).toBeGreaterThanOrEqual(3);
    expect(perTurn.filter((flushed) => flushed.length > FLUSHES_PER_TURN)).toEqual([]);
    expect(log).toEqual(Array.from({ length: count }, (_, i) => `t${i}`));
  });

  it("puts a target that queues itself again behind the others, and flushes it once per turn", async () => {
    const scheduler = new FlushScheduler();
    const log: string[] = [];
    scheduler.add(target(scheduler, log, "busy", 2));
    scheduler.add(target(scheduler, log, "a"));
    scheduler.add(target(scheduler, log, "b"));
    const perTurn = await turns(log, () => log.length === 5);
    expect(log).toEqual(["busy", "a", "b", "busy", "busy"]);
    expect(perTurn.filter((flushed) => flushed.filter((name) => name === "busy").length > 1)).toEqual([]);
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
