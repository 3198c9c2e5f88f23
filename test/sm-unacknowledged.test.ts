// What an sm keeps until acknowledged (sm/unacknowledged.ts) is sent again
// on the timer only once its receiver has been silent for RESEND_MS (5 s):
// a c2s or sm that keeps sending frames is working through its backlog and
// gets no copies; a FORWARD's receiver is the role address's owner now.
// Driven by the clock it is given, no sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SM_ADDRESS, type RoutePort } from "../lib/link/member.js";
import { Unacknowledged } from "../sm/unacknowledged.js";

/** One frame sent to `to` and waiting, on a port that records where frames go and gives every key to sm-2. */
function waiting(to = "c2s-1", key = ""): { u: Unacknowledged; sent: string[]; t0: number } {
  const sent: string[] = [];
  const port: RoutePort = { name: "sm-1", send: (dest) => (sent.push(dest), true), smOwnerOf: () => "sm-2" };
  const u = new Unacknowledged(port);
  u.send("w1", to, key, Buffer.from("x"), null);
  return { u, sent, t0: Date.now() };
}

describe("timed resends", () => {
  // The clock stands still: a frame is sent at exactly t0.
  beforeEach(() => vi.useFakeTimers({ toFake: ["Date"] }));
  afterEach(() => vi.useRealTimers());

  it("sends nothing again to a receiver heard from within 5 s, and again once it has been silent 5 s", () => {
    const { u, sent, t0 } = waiting();
    // c2s-1 keeps answering other things: alive and reading, so no copy however long w1 waits (within 30 s).
    for (let t = t0 + 1_000; t <= t0 + 10_000; t += 1_000) {
      u.heard("c2s-1", t);
      expect(u.resend(t)).toBe(0);
    }
    expect(u.resend(t0 + 14_999)).toBe(0);
    expect(u.resend(t0 + 15_000)).toBe(1);
    expect(sent).toEqual(["c2s-1", "c2s-1"]);
    expect(u.size).toBe(1);
  });

  it("sends again to a silent receiver after 5 s, as before (another process heard is not it); to a busy one after 30 s", () => {
    const silent = waiting();
    silent.u.heard("c2s-2", silent.t0 + 4_000);
    expect(silent.u.resend(silent.t0 + 4_999)).toBe(0);
    expect(silent.u.resend(silent.t0 + 5_000)).toBe(1);
    const busy = waiting();
    busy.u.heard("c2s-1", busy.t0 + 29_999);
    expect([busy.u.resend(busy.t0 + 29_999), busy.u.resend(busy.t0 + 30_000)]).toEqual([0, 1]);
  });

  it("judges a FORWARD by the sm that owns its key now", () => {
    const { u, t0 } = waiting(SM_ADDRESS, "u@example.com");
    u.heard("sm-2", t0 + 4_000);
    expect(u.resend(t0 + 6_000)).toBe(0);
    expect(u.resend(t0 + 9_000)).toBe(1);
  });

  it("leaves re-link resends alone: `which` sends what it picks at once, heard or not", () => {
    const { u, t0 } = waiting();
    u.heard("c2s-1", t0);
    expect(u.resend(t0, () => true)).toBe(1);
  });
});
