// Pooled random values: the right size, never handed out twice, across refills of the pool.
import { describe, expect, it } from "vitest";
import { randomBase64, randomHex } from "../lib/random.js";

describe("pooled random values", () => {
  it("have the asked length and do not repeat across pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const hex = randomHex(8);
      expect(hex).toMatch(/^[0-9a-f]{16}$/);
      seen.add(hex);
    }
    expect(seen.size).toBe(2_000);
    expect(Buffer.from(randomBase64(18), "base64")).toHaveLength(18);
    expect(() => randomHex(5_000)).toThrow(RangeError);
  });
});
