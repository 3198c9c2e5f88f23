// The ring a front end's unacknowledged DELIVERs wait in, by number
// (sm/numbered-delivers.ts): numbers one more each, ranges acknowledged in
// any order, a ring that grows behind an old DELIVER still waiting and wraps
// around, and numbers given but never held passed over.
import { describe, expect, it } from "vitest";
import { NumberedDelivers } from "../sm/numbered-delivers.js";

/** Takes `n` numbers and holds each under a name made of its place. */
function filled(n: number, prefix = "d"): { ring: NumberedDelivers<string>; nums: number[] } {
  const ring = new NumberedDelivers<string>();
  const nums: number[] = [];
  for (let i = 0; i < n; i++) {
    const num = ring.take();
    ring.add(num, `${prefix}${i}`);
    nums.push(num);
  }
  return { ring, nums };
}

/** What `ring` holds under `num`, as its entries say. */
const held = (ring: NumberedDelivers<string>, num: number): string | undefined => new Map(ring.entries()).get(num);

describe("numbered DELIVERs of one front end", () => {
  it("numbers one more each, from the time its numbering began, and forgets each once", () => {
    const before = Date.now() * 1024;
    const { ring, nums } = filled(3);
    expect(nums[0]).toBeGreaterThanOrEqual(before);
    expect(nums).toEqual([nums[0], nums[0]! + 1, nums[0]! + 2]);
    expect([held(ring, nums[1]!), ring.remove(nums[1]!), ring.remove(nums[1]!), held(ring, nums[1]!)]).toEqual(["d1", "d1", undefined, undefined]);
    expect([held(ring, nums[0]! - 1), held(ring, nums[2]! + 1), ring.size]).toEqual([undefined, undefined, 2]);
  });

  it("takes ranges clamped to what may wait, in any order", () => {
    const { ring, nums } = filled(10);
    const got: string[] = [];
    ring.removeRange(nums[3]!, nums[5]!, (v) => got.push(v));
    ring.removeRange(0, nums[1]!, (v) => got.push(v));
    ring.removeRange(nums[8]!, Number.MAX_SAFE_INTEGER, (v) => got.push(v));
    ring.removeRange(nums[4]!, nums[4]!, (v) => got.push(v));
    expect(got).toEqual(["d3", "d4", "d5", "d0", "d1", "d8", "d9"]);
    expect([...ring.entries()]).toEqual([[nums[2], "d2"], [nums[6], "d6"], [nums[7], "d7"]]);
  });

  it("grows behind the oldest still waiting, wrapping around as it goes", () => {
    const { ring, nums } = filled(1, "old-");
    const got: string[] = [];
    // 1,000 more, each acknowledged but the first: the ring holds the first's place.
    for (let i = 0; i < 1000; i++) {
      const num = ring.take();
      ring.add(num, `n${i}`);
      ring.removeRange(num, num, (v) => got.push(v));
    }
    expect([got.length, ring.size, held(ring, nums[0]!)]).toEqual([1000, 1, "old-0"]);
    const next = ring.take();
    ring.add(next, "last");
    expect([...ring.entries()].map(([, v]) => v)).toEqual(["old-0", "last"]);
    // Once the first is acknowledged too, numbers go on where they were.
    expect(ring.remove(nums[0]!)).toBe("old-0");
    expect(ring.remove(next)).toBe("last");
    expect(ring.take()).toBe(next + 1);
    expect(ring.size).toBe(0);
  });

  it("passes over numbers given and never held, and holds one given before another was forgotten", () => {
    const ring = new NumberedDelivers<string>();
    for (let i = 0; i < 200; i++) ring.take();
    const held = ring.take();
    const late = ring.take();
    ring.add(held, "held");
    ring.remove(held);
    ring.add(late, "late");
    expect([...ring.entries()]).toEqual([[late, "late"]]);
  });
});
