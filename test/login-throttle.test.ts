// The login throttle's arithmetic, on a clock of its own: who waits how
// long after how many failures, and what an attacker cannot make it do.
import { describe, expect, it } from "vitest";
import { LoginThrottle } from "../c2s/login-throttle.js";

const limits = { freeFailures: 3, delayMs: 1_000, maxDelayMs: 8_000, memoryMs: 60_000, maxEntries: 100 };
const T = 1_000_000;

function failTimes(t: LoginThrottle, n: number, address: string, account: string | null, now = T): void {
  for (let i = 0; i < n; i++) t.failed(address, account, now);
}

describe("LoginThrottle", () => {
  it("lets the free failures go, then doubles the delay up to the cap", () => {
    const t = new LoginThrottle({ ...limits, memoryMs: 3_600_000 });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      // A guess fails; the next one comes at once, from the same address.
      const now = T + i * 60_000;
      t.failed("10.0.0.1", null, now);
      delays.push(t.due("10.0.0.1", null, now) - now);
    }
    expect(delays).toEqual([0, 0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it("checks the guesses of one address in turn, a delay apart", () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 3, "10.0.0.1", null);
    // Three connections guess at once: each waits for the one before.
    expect([1, 2, 3].map(() => t.due("10.0.0.1", null, T))).toEqual([T + 1_000, T + 2_000, T + 3_000]);
    // Another address is not slowed at all.
    expect(t.due("10.0.0.2", null, T)).toBe(T);
  });

  it("delays guesses on an account from new addresses, never past the cap, and not from an address that logged in before", () => {
    const t = new LoginThrottle(limits);
    t.succeeded("10.0.0.9", "victim@x", T);
    // A botnet: many addresses, one failure each, so no address is slowed.
    for (let i = 0; i < 40; i++) t.failed(`10.1.0.${i}`, "victim@x", T);
    expect(t.due("10.1.0.99", "victim@x", T)).toBe(T + 8_000);
    // Not taken in turn: a second new address waits as long, not longer.
    expect(t.due("10.1.0.98", "victim@x", T)).toBe(T + 8_000);
    // The owner, from where they logged in before, is not delayed.
    expect(t.due("10.0.0.9", "victim@x", T)).toBe(T);
    // Another account is not touched.
    expect(t.due("10.1.0.99", "other@x", T)).toBe(T);
  });

  it("does not let a success wipe failures (a guesser's own account buys no free guesses)", () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 4, "10.0.0.1", "victim@x");
    t.succeeded("10.0.0.1", "mine@x", T);
    expect(t.due("10.0.0.1", "victim@x", T)).toBe(T + 2_000);
  });

  it("forgives an address and an account a while after their last failure", () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 6, "10.0.0.1", "victim@x");
    const later = T + limits.memoryMs;
    t.release(later);
    expect(t.due("10.0.0.1", "victim@x", later)).toBe(later);
  });

  it("remembers a bounded number of addresses and accounts, the oldest going first", () => {
    const t = new LoginThrottle({ ...limits, maxEntries: 2 });
    failTimes(t, 3, "10.0.0.1", "a@x");
    failTimes(t, 3, "10.0.0.2", "b@x");
    failTimes(t, 3, "10.0.0.3", "c@x");
    expect(t.due("10.0.0.1", "a@x", T)).toBe(T);
    expect(t.due("10.0.0.3", "c@x", T)).toBe(T + 1_000);
  });

  it("holds an attempt until release() passes its time, or drops it on cancel()", async () => {
    const t = new LoginThrottle(limits);
    const a = {};
    const b = {};
    const waitA = t.wait(a, T + 1_000);
    const waitB = t.wait(b, T + 5_000);
    expect(t.delayed).toBe(2);
    t.release(T + 999);
    expect(t.delayed).toBe(2);
    t.release(T + 1_000);
    expect(await waitA).toBe(true);
    t.cancel(b);
    expect(await waitB).toBe(false);
    expect(t.delayed).toBe(0);
  });
});
