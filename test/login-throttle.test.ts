// The login throttle's arithmetic, on a clock of its own: who waits how
// long after how many failures, and what an attacker cannot make it do.
import { describe, expect, it } from "vitest";
import { LoginThrottle } from "../c2s/login-throttle.js";

const limits = { freeFailures: 3, delayMs: 1_000, maxDelayMs: 8_000, memoryMs: 60_000, maxEntries: 100 };
const T = 1_000_000;

function failTimes(t: LoginThrottle, n: number, address: string, account: string | null, now = T): void {
  for (let i = 0; i < n; i++) t.failed(address, account, now);
}

/**
 * Asks for a turn at `now`, then runs the sweep a second at a time: how
 * long the guess was held (0: not at all).
 */
async function heldFor(t: LoginThrottle, address: string, account: string | null, now: number, holder: object = {}): Promise<number> {
  const turn = t.turn(holder, address, account, now);
  if (turn === true) return 0;
  let released = false;
  void turn.then((go) => (released = go));
  for (let waited = 1_000; waited <= 60_000; waited += 1_000) {
    t.release(now + waited);
    await Promise.resolve();
    if (released) return waited;
  }
  throw new Error("never released");
}

describe("LoginThrottle", () => {
  it("lets the free failures go, then doubles the delay up to the cap", async () => {
    const t = new LoginThrottle({ ...limits, memoryMs: 3_600_000 });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      // A guess fails; the next one comes at once, from the same address.
      const now = T + i * 60_000;
      t.failed("10.0.0.1", null, now);
      delays.push(await heldFor(t, "10.0.0.1", null, now));
    }
    expect(delays).toEqual([0, 0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it("checks the guesses of one address in turn, a delay apart, and a dropped one takes no turn", async () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 3, "10.0.0.1", null);
    // Four connections guess at once; the second gives up while held.
    const order: string[] = [];
    const turns = ["a", "b", "c", "d"].map((name) => {
      const holder = { name };
      const turn = t.turn(holder, "10.0.0.1", null, T);
      expect(turn).not.toBe(true);
      void (turn as Promise<boolean>).then((go) => order.push(`${name}:${go}`));
      return holder;
    });
    t.cancel(turns[1]!);
    // Another address is not slowed at all.
    expect(t.turn({}, "10.0.0.2", null, T)).toBe(true);
    expect(t.delayed).toBe(3);
    for (let s = 1; s <= 4; s++) {
      t.release(T + s * 1_000);
      await Promise.resolve();
      order.push(`t+${s}`);
    }
    expect(order).toEqual(["b:false", "a:true", "t+1", "c:true", "t+2", "d:true", "t+3", "t+4"]);
  });

  it("delays guesses on an account from new addresses, never past the cap, and not from an address that logged in before", async () => {
    const t = new LoginThrottle(limits);
    t.succeeded("10.0.0.9", "victim@x", T);
    // A botnet: many addresses, one failure each, so no address is slowed.
    for (let i = 0; i < 40; i++) t.failed(`10.1.0.${i}`, "victim@x", T);
    // Two new addresses at once: not taken in turn, each waits the cap and no longer.
    const [first, second] = await Promise.all([heldFor(t, "10.1.0.99", "victim@x", T), heldFor(t, "10.1.0.98", "victim@x", T)]);
    expect([first, second]).toEqual([8_000, 8_000]);
    // The owner, from where they logged in before, is not delayed.
    expect(t.turn({}, "10.0.0.9", "victim@x", T)).toBe(true);
    // Another account is not touched.
    expect(t.turn({}, "10.1.0.97", "other@x", T)).toBe(true);
  });

  it("does not let a success wipe failures (a guesser's own account buys no free guesses)", async () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 4, "10.0.0.1", "victim@x");
    t.succeeded("10.0.0.1", "mine@x", T);
    expect(await heldFor(t, "10.0.0.1", "victim@x", T)).toBe(2_000);
  });

  it("forgives an address and an account a while after their last failure", () => {
    const t = new LoginThrottle(limits);
    failTimes(t, 6, "10.0.0.1", "victim@x");
    const later = T + limits.memoryMs;
    t.release(later);
    expect(t.turn({}, "10.0.0.1", "victim@x", later)).toBe(true);
  });

  it("remembers a bounded number of addresses and accounts, the oldest going first", () => {
    const t = new LoginThrottle({ ...limits, maxEntries: 2 });
    failTimes(t, 3, "10.0.0.1", "a@x");
    failTimes(t, 3, "10.0.0.2", "b@x");
    failTimes(t, 3, "10.0.0.3", "c@x");
    expect(t.turn({}, "10.0.0.1", "a@x", T)).toBe(true);
    expect(t.turn({}, "10.0.0.3", "c@x", T)).not.toBe(true);
  });
});
