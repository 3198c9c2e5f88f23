// The console's charts: rates taken from the front ends' cumulative load
// counters (router/console/console-history.ts), a restarted front end's
// counters starting again from 0, and an hour of samples kept.
import { describe, expect, it } from "vitest";
import type { ProcessLoad, StatusEntry } from "../lib/link/control.js";
import { ConsoleHistory, SAMPLES, SAMPLE_MS } from "../router/console/console-history.js";

const entry = (name: string, role: string, load: ProcessLoad | null): StatusEntry => ({
  name,
  role,
  peer: "127.0.0.1:1",
  info: {},
  load,
  linkedAt: 0,
  queued: 0,
});
const c2s = (name: string, sessions: number, logins?: number, messages?: number) => entry(name, "c2s", { sessions, connections: sessions, lag: 0, logins, messages });

describe("the console's history", () => {
  it("sums sessions and turns cumulative counters into rates a second", () => {
    const h = new ConsoleHistory();
    const t0 = 1_000_000_000_000;
    h.sample([c2s("c2s-1", 2, 10, 100), c2s("c2s-2", 1, 5, 50), entry("sm-1", "sm", null)], t0);
    h.sample([c2s("c2s-1", 4, 20, 150), c2s("c2s-2", 3, 15, 100)], t0 + 5_000);
    expect(h.get()).toEqual({ t: [t0 / 1000, t0 / 1000 + 5], sessions: [3, 7], logins: [0, 4], messages: [0, 20] });
  });

  it("counts a restarted front end's counters from 0, and one without counters as 0", () => {
    const h = new ConsoleHistory();
    h.sample([c2s("c2s-1", 1, 100, 1000), c2s("c2s-2", 1)], 0);
    h.sample([c2s("c2s-1", 1, 10, 20), c2s("c2s-2", 1)], 10_000);
    expect(h.get().logins.at(-1)).toBe(1);
    expect(h.get().messages.at(-1)).toBe(2);
  });

  it("keeps the last hour of samples", () => {
    const h = new ConsoleHistory();
    for (let i = 0; i < SAMPLES + 10; i++) h.sample([c2s("c2s-1", i)], i * SAMPLE_MS);
    expect(h.get().t).toHaveLength(SAMPLES);
    expect(h.get().sessions[0]).toBe(10);
  });
});
