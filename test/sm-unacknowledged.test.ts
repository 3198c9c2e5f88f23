// What an sm keeps until acknowledged (sm/unacknowledged.ts) is sent again
// on the timer only once its receiver has been silent for RESEND_MS (5 s):
// a c2s or sm that keeps sending frames is working through its backlog and
// gets no copies; a FORWARD's receiver is the role address's owner now.
// Driven by the clock it is given, no sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SM_ADDRESS, type RoutePort } from "../lib/link/member.js";
import { Tally } from "../sm/origin.js";
import { Unacknowledged } from "../sm/unacknowledged.js";

/** One frame sent to `to` and waiting, on a port that records where frames go and gives every key to sm-2. */
function waiting(to = "c2s-1", key = ""): { u: Unacknowledged; sent: string[]; t0: number } {
  const sent: string[] = [];
  const port: RoutePort = { name: "sm-1", send: (dest) => (sent.push(dest), true), smOwnerOf: () => "sm-2" };
  const u = new Unacknowledged(port);
  if (to === SM_ADDRESS) u.forward("w1", key, Buffer.from("x"), null);
  else u.deliver(to, u.nextNum(to), "s1", "w1", key, Buffer.from("x"), null);
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

describe("what is kept", () => {
  const port: RoutePort = { name: "sm-1", send: () => true, smOwnerOf: () => "sm-2" };
  /** A work's tally, and whether it has ended. */
  const tally = (): Tally & { readonly ended: boolean } => {
    let ended = false;
    return Object.defineProperty(new Tally(() => void (ended = true)), "ended", { get: () => ended }) as Tally & { readonly ended: boolean };
  };

  /** Delivers `payload` to session `sid` of front end `c2s` under `origin`, answering its number. */
  const deliver = (u: Unacknowledged, c2s: string, sid: string, origin: string, payload: string, work: Tally | null = null): number => {
    const num = u.nextNum(c2s);
    expect(u.deliver(c2s, num, sid, origin, "u@d", Buffer.from(payload), work)).toBe(true);
    return num;
  };

  it("keeps each DELIVER under its front end's number for it, acknowledged by ranges of those numbers", () => {
    const u = new Unacknowledged(port);
    const work = tally();
    // A message's first delivery to two sessions has the same identity; each is numbered.
    const a1 = deliver(u, "c2s-1", "a", "c2s-1/x/3", "1", work);
    const b1 = deliver(u, "c2s-1", "b", "c2s-1/x/3", "2", work);
    const a2 = deliver(u, "c2s-2", "a", "c2s-1/x/3", "3", work);
    expect(b1).toBe(a1 + 1);
    expect(u.forward("c2s-1/x/3", "u@d", Buffer.from("4"), work)).toBe(true);
    work.release();
    expect(u.size).toBe(4);
    u.delivered("c2s-1", [b1, b1]);
    u.forwarded("c2s-1/x/3");
    // A number names a DELIVER to its own front end only, whatever the other's numbers.
    u.delivered("c2s-1", [a2 + 10, a2 + 20]);
    u.delivered("c2s-3", [a1, a1]);
    expect(u.size).toBe(2);
    // Taken (undeliverable): its caller releases what it held.
    const taken = u.takeDelivery("c2s-2", a2);
    expect(taken?.payload.toString()).toBe("3");
    taken?.tally?.release();
    expect(work.ended).toBe(false);
    u.delivered("c2s-1", [a1 - 3, a1]);
    expect(u.size).toBe(0);
    expect(work.ended).toBe(true);
  });

  it("takes a range wider than what waits, and acknowledgements by session and identity from a front end of an earlier version", () => {
    const u = new Unacknowledged(port);
    deliver(u, "c2s-1", "a", "o1", "1");
    deliver(u, "c2s-1", "a", "o2", "2");
    const b = deliver(u, "c2s-1", "b", "o1", "3");
    u.delivered("c2s-1", [0, b - 1]);
    expect(u.takeDelivers("c2s-1", () => true).map((w) => w.payload.toString())).toEqual(["3"]);
    deliver(u, "c2s-1", "a", "o1", "4");
    deliver(u, "c2s-1", "b", "o1", "5");
    u.deliveredAs("c2s-1", "b", "o1");
    u.deliveredAs("c2s-1", "b", "o2");
    expect(u.takeDelivers("c2s-1", () => true).map((w) => w.payload.toString())).toEqual(["4"]);
  });

  it("keeps a DELIVER sent again under its identity beside the first, each until its own acknowledgement", () => {
    const u = new Unacknowledged(port);
    const first = tally();
    const again = tally();
    const n1 = deliver(u, "c2s-1", "a", "o", "1", first);
    first.release();
    deliver(u, "c2s-1", "a", "o", "2", again);
    again.release();
    expect([first.ended, again.ended, u.size]).toEqual([false, false, 2]);
    u.delivered("c2s-1", [n1, n1]);
    expect([first.ended, again.ended, u.size]).toEqual([true, false, 1]);
  });

  it("replaces a FORWARD sent again under its identity, releasing what the first held", () => {
    const u = new Unacknowledged(port);
    const first = tally();
    const again = tally();
    u.forward("o", "u@d", Buffer.from("1"), first);
    first.release();
    u.forward("o", "u@d", Buffer.from("2"), again);
    again.release();
    expect([first.ended, again.ended, u.size]).toEqual([true, false, 1]);
  });

  it("hands over the DELIVERs of the sessions picked on one front end, and only those", () => {
    const u = new Unacknowledged(port);
    deliver(u, "c2s-1", "a", "o1", "1");
    deliver(u, "c2s-1", "a", "o2", "2");
    deliver(u, "c2s-1", "b", "o1", "3");
    deliver(u, "c2s-2", "a", "o1", "4");
    u.forward("o1", "u@d", Buffer.from("5"), null);
    expect(u.takeDelivers("c2s-1", (sid) => sid === "a").map((w) => w.payload.toString())).toEqual(["1", "2"]);
    expect(u.takeDelivers("c2s-3", () => true)).toEqual([]);
    expect(u.size).toBe(3);
  });
});
