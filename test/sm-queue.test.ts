// The sm's per-user queue (sm/queue.ts): each key's jobs in order, keys
// beside each other, a key's bound refused and reported drained, and keys
// without jobs kept in its table a while and swept out together, without
// changing what it answers.
import { describe, expect, it } from "vitest";
import { KeyedQueue } from "../sm/queue.js";

/** A job that waits for its release. */
function gate(): { job: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { job: () => opened, open };
}

describe("the sm's keyed queue", () => {
  it("runs each key's jobs in order and keys beside each other", async () => {
    const q = new KeyedQueue(() => {});
    const ran: string[] = [];
    const first = gate();
    void q.run("a", async () => {
      await first.job();
      ran.push("a1");
    });
    void q.run("a", async () => void ran.push("a2"));
    await q.run("b", async () => void ran.push("b1"));
    expect(ran).toEqual(["b1"]);
    first.open();
    await q.idle();
    expect(ran).toEqual(["b1", "a1", "a2"]);
  });

  it("refuses offers over a key's bound, and says when the key drained after refusing", async () => {
    const told: [string, number, boolean][] = [];
    const q = new KeyedQueue(() => {}, { jobs: 2, bytes: 100 }, (key, refused, drained) => told.push([key, refused, drained]));
    const g = gate();
    expect(q.offer("a", 10, g.job)).not.toBeNull();
    expect(q.offer("a", 10, async () => {})).not.toBeNull();
    expect(q.offer("a", 10, async () => {})).toBeNull();
    // An idle key takes a job of any size: the bound is on what waits.
    expect(q.offer("b", 101, async () => {})).not.toBeNull();
    expect(q.offer("a", 10, async () => {})).toBeNull();
    expect(q.load("a")).toEqual({ jobs: 2, bytes: 20 });
    g.open();
    await q.idle();
    expect(told).toEqual([["a", 1, false], ["a", 2, true]]);
    expect(q.load("a")).toEqual({ jobs: 0, bytes: 0 });
    // Drained: it takes offers again, and its count of refusals starts anew.
    expect(q.offer("a", 10, async () => {})).not.toBeNull();
    await q.idle();
  });

  it("keeps answering the same once thousands of keys have run and were swept", async () => {
    const errors: string[] = [];
    const q = new KeyedQueue((_err, key) => errors.push(key));
    const held = gate();
    void q.run("held", held.job);
    for (let i = 0; i < 10_000; i++) void q.run(`k${i}`, async () => (i % 2500 === 0 ? Promise.reject(new Error("x")) : undefined));
    await Promise.all([q.run("k1", async () => {}), q.run("k9999", async () => {})]);
    expect(errors).toEqual(["k0", "k2500", "k5000", "k7500"]);
    expect([q.load("k5"), q.load("held")]).toEqual([{ jobs: 0, bytes: 0 }, { jobs: 1, bytes: 0 }]);
    let idle = false;
    const waiting = q.idle().then(() => (idle = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(false);
    held.open();
    await waiting;
    expect(q.load("held")).toEqual({ jobs: 0, bytes: 0 });
  });
});
