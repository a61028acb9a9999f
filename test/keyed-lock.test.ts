import { describe, expect, it } from "vitest";
import { KeyedLock } from "../src/core/keyed-lock.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("KeyedLock.runReleasable", () => {
  it("starts the key's next task once the first releases, before the first settles", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    let finishFirst!: () => void;
    const first = lock.runReleasable("k", async (release) => {
      order.push("first started");
      release();
      await new Promise<void>((resolve) => (finishFirst = resolve));
      order.push("first settled");
    });
    const second = lock.run("k", async () => void order.push("second started"));
    await second;
    expect(order).toStrictEqual(["first started", "second started"]);
    finishFirst();
    await first;
    expect(order).toStrictEqual(["first started", "second started", "first settled"]);
    await lock.idle();
  });

  it("releases the key when the task settles without releasing, also when it fails", async () => {
    const lock = new KeyedLock();
    let finish!: (error: Error) => void;
    const first = lock.runReleasable("k", () => new Promise<void>((_resolve, reject) => (finish = reject)));
    let secondStarted = false;
    const second = lock.run("k", async () => void (secondStarted = true));
    await tick();
    expect(secondStarted).toBe(false);
    finish(new Error("refused"));
    await expect(first).rejects.toThrow("refused");
    await second;
    expect(secondStarted).toBe(true);
  });

  it("keeps tasks of other keys apart", async () => {
    const lock = new KeyedLock();
    let finish!: () => void;
    const held = lock.runReleasable("a", () => new Promise<void>((resolve) => (finish = resolve)));
    await lock.run("b", async () => undefined);
    finish();
    await held;
  });
});
