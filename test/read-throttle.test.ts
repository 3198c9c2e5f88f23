// The per-client rate limit (c2s/read-throttle.ts) on a fake clock: a client
// over its rate is paused until its buckets are back to zero, resumed by the
// shared timer, cut off only after staying over for the cutoff, and an idle
// client holds no bucket.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ReadThrottle, type Throttled } from "../c2s/read-throttle.js";

class Client implements Throttled {
  paused = false;
  cut = false;
  readonly events: string[] = [];
  pauseReading(): void {
    this.paused = true;
    this.events.push("pause");
  }
  resumeReading(): void {
    this.paused = false;
    this.events.push("resume");
  }
  overRate(): void {
    this.cut = true;
    this.events.push("cut");
  }
}

describe("ReadThrottle", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  // 1,000 bytes and 10 elements a second, bursts of 2 s, cut after 5 s over.
  const make = () => new ReadThrottle<Client>({ bytesPerSecond: 1000, stanzasPerSecond: 10, burstSeconds: 2, cutoffSeconds: 5 }, () => Date.now());

  it("lets a burst through, then pauses the client until its bucket is back to zero", () => {
    const t = make();
    const c = new Client();
    t.charge(c, 2000, 0);
    expect(c.paused).toBe(false);
    t.charge(c, 500, 0);
    expect(c.events).toEqual(["pause"]);
    expect(t.pausedCount).toBe(1);
    // 500 bytes over at 1,000 a second: read again after half a second, not before.
    vi.advanceTimersByTime(400);
    expect(c.paused).toBe(true);
    vi.advanceTimersByTime(150);
    expect(c.events).toEqual(["pause", "resume"]);
    expect(t.pausedCount).toBe(0);
    t.close();
  });

  it("counts elements as well as bytes", () => {
    const t = make();
    const c = new Client();
    for (let i = 0; i < 20; i++) t.charge(c, 0, 1);
    expect(c.paused).toBe(false);
    t.charge(c, 0, 1);
    expect(c.paused).toBe(true);
    vi.advanceTimersByTime(150);
    expect(c.paused).toBe(false);
    t.close();
  });

  it("cuts off a client that stays over its rate past the cutoff, and only then", () => {
    const t = make();
    const c = new Client();
    // Sends 1,500 bytes every half second it is read: three times its rate, slowed each time.
    for (let s = 0; s < 40 && !c.cut; s++) {
      if (!c.paused) t.charge(c, 1500, 0);
      vi.advanceTimersByTime(500);
    }
    expect(c.cut).toBe(true);
    // Slowed many times before: over the rate for more than 5 s.
    expect(c.events.filter((e) => e === "pause").length).toBeGreaterThan(3);
    expect(t.holds(c)).toBe(false);
    t.close();
  });

  it("forgives a client whose bucket filled up again: slowed now and then is not cut off", () => {
    const t = make();
    const c = new Client();
    t.charge(c, 2500, 0);
    vi.advanceTimersByTime(600);
    expect(c.paused).toBe(false);
    // Quiet long enough to fill up (and be swept): the next burst starts afresh.
    vi.advanceTimersByTime(3000);
    t.sweep();
    // Each burst a little over, each followed by quiet that fills the bucket: over for 21 s in all, never 5 s straight.
    for (let i = 0; i < 10; i++) {
      t.charge(c, 2100, 0);
      vi.advanceTimersByTime(2100);
    }
    expect(c.cut).toBe(false);
    expect(c.events.filter((e) => e === "pause").length).toBe(11);
    t.close();
  });
});
