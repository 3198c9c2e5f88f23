// The load report and status shapes (lib/link/control.ts, protocol §1.6, §1.7):
// what a process of an earlier version sends still fits, and the new figures are checked.
import { describe, expect, it } from "vitest";
import { parseControl } from "../lib/link/control.js";

const parse = (msg: unknown) => () => parseControl(Buffer.from(JSON.stringify(msg)));
const figures = { pid: 4242, host: "box-1", rss: 88_000_000, cpu: 0.37, heap: 20_000_000, started: 1_700_000_000_000, logins: 12, messages: 340 };

describe("load reports and status answers", () => {
  it("take a report with the process figures, and one of an earlier version without them", () => {
    expect(parse({ op: "load", sessions: 3, connections: 4, lag: 2, ...figures, drainStarted: 1_700_000_000_500, drainMoved: 9 })()).toMatchObject(figures);
    expect(parse({ op: "load", sessions: 3, connections: 4, lag: 2, throttled: 0, peers: 1 })()).toEqual({ op: "load", sessions: 3, connections: 4, lag: 2, throttled: 0, peers: 1 });
  });

  it("refuse figures of the wrong kind", () => {
    for (const bad of [{ cpu: -0.1 }, { cpu: "37%" }, { rss: 1.5 }, { pid: -1 }, { host: 7 }, { logins: -3 }]) {
      expect(parse({ op: "load", sessions: 3, connections: 4, lag: 2, ...bad }), JSON.stringify(bad)).toThrow(/wrong shape/);
    }
  });

  it("take a status with the router's own row, and one of an earlier router without it", () => {
    const self = { name: "router-1", role: "router", peer: "127.0.0.1:5270", info: { active: true }, load: { sessions: 0, connections: 2, lag: 1, ...figures }, linkedAt: 1, queued: 0 };
    expect(parse({ op: "status", router: "router-1", active: true, self, entries: [] })()).toMatchObject({ self });
    expect(parse({ op: "status", router: "router-1", entries: [] })()).toEqual({ op: "status", router: "router-1", entries: [] });
    expect(parse({ op: "status", router: "router-1", self: { name: "router-1" }, entries: [] })).toThrow(/wrong shape/);
  });
});
