// `xfarm status`'s table (cli/farm-commands.ts): the STATE column for front ends, the
// router rows from every router's reply, drain progress, and figures an older process does not send.
import { describe, expect, it } from "vitest";
import { c2sState, drainProgress, formatStatus } from "../cli/farm-commands.js";
import type { ProcessLoad, StatusEntry } from "../lib/link/control.js";

const NOW = 1_000_000_000;

const entry = (info: Record<string, unknown>, connections: number | null, load: Partial<ProcessLoad> = {}): StatusEntry => ({
  name: "c2s-1",
  role: "c2s",
  peer: "127.0.0.1:40000",
  info: { host: "a.example", port: 5222, tlsPort: 5223, weight: 1, capacity: 100, started: 0, ...info },
  load: connections === null ? null : { sessions: connections, connections, lag: 1, ...load },
  linkedAt: 0,
  queued: 0,
});

const figures = { pid: 4242, host: "box-1", rss: 84 * 2 ** 20, cpu: 0.37, heap: 20 * 2 ** 20, started: NOW - 90_000 };

const routerRow = (name: string, active: boolean): StatusEntry => ({
  name,
  role: "router",
  peer: "127.0.0.1:5270",
  info: { active },
  load: { sessions: 0, connections: 3, lag: 2, ...figures, pid: 100 },
  linkedAt: NOW - 90_000,
  queued: 0,
});

/** The cells of the table's line that starts with `name`. */
const cells = (out: string, name: string) => out.split("\n").find((l) => l.startsWith(`${name} `))?.split(/ {2,}/);

describe("xfarm status", () => {
  it("tells active, full, no-sm, draining and drained front ends apart", () => {
    expect(c2sState(entry({}, 3))).toBe("active");
    expect(c2sState(entry({ full: true }, 3))).toBe("full");
    expect(c2sState(entry({ noSm: true }, 0))).toBe("no-sm");
    expect(c2sState(entry({ draining: true, drainRate: 50 }, 3))).toBe("draining");
    // Not reported yet (restarted): not known to be empty.
    expect(c2sState(entry({ draining: true }, null))).toBe("draining");
    expect(c2sState(entry({ draining: true, full: true }, 0))).toBe("drained");
    // The last report was made before the drain began (it has no drainStarted): its count says nothing of the drain.
    expect(c2sState(entry({ draining: true }, 0, figures))).toBe("draining");
    expect(c2sState(entry({ draining: true }, 0, { ...figures, drainStarted: NOW - 1_000, drainMoved: 0 }))).toBe("drained");
  });

  it("prints each router's row, then the active router's processes with their figures", () => {
    const sm: StatusEntry = { name: "sm-1", role: "sm", peer: "10.0.0.7:39512", info: { started: NOW - 60_000 }, load: { sessions: 5, connections: 0, lag: 3, ...figures, pid: 4300 }, linkedAt: 0, queued: 0 };
    const out = formatStatus(
      [
        { address: "127.0.0.1:5270", answer: { op: "status", router: "router-1", active: true, self: routerRow("router-1", true), entries: [sm, entry({}, 7, figures)] } },
        { address: "127.0.0.1:5271", answer: { op: "status", router: "router-2", active: false, self: routerRow("router-2", false), entries: [] } },
      ],
      NOW,
    );
    expect(out.split("\n")[0]).toMatch(/^NAME +ROLE +HOST +PID +STATE +SESSIONS +CONNS +RSS +CPU +LAG +UPTIME$/);
    expect(cells(out, "router-1")).toEqual(["router-1", "router", "box-1", "100", "active", "-", "3", "84M", "37%", "2ms", "90s"]);
    expect(cells(out, "router-2")).toEqual(["router-2", "router", "box-1", "100", "passive", "-", "3", "84M", "37%", "2ms", "90s"]);
    expect(cells(out, "c2s-1")).toEqual(["c2s-1", "c2s", "box-1", "4242", "active", "7", "7", "84M", "37%", "1ms", "90s"]);
    // An sm holds sessions, not connections.
    expect(cells(out, "sm-1")).toEqual(["sm-1", "sm", "box-1", "4300", "active", "5", "-", "84M", "37%", "3ms", "90s"]);
  });

  it("shows '-' for what an older process or router does not report, and its link's host without the ephemeral port", () => {
    const sm: StatusEntry = { name: "sm-1", role: "sm", peer: "10.0.0.7:39512", info: { started: NOW - 60_000 }, load: null, linkedAt: 0, queued: 0 };
    const out = formatStatus([{ address: "127.0.0.1:5270", answer: { op: "status", router: "router-1", entries: [sm, entry({ started: NOW - 5_000 }, 2)] } }], NOW);
    expect(cells(out, "router-1")).toEqual(["router-1", "router", "-", "-", "active", "-", "-", "-", "-", "-", "-"]);
    expect(cells(out, "c2s-1")).toEqual(["c2s-1", "c2s", "127.0.0.1", "-", "active", "2", "2", "-", "-", "1ms", "5s"]);
    expect(cells(out, "sm-1")).toEqual(["sm-1", "sm", "10.0.0.7", "-", "active", "-", "-", "-", "-", "-", "60s"]);
  });

  it("marks an unreachable router and says why; with no active router it shows no farm table", () => {
    const out = formatStatus(
      [
        { address: "127.0.0.1:5270", error: "connection refused (no router listens there)" },
        { address: "127.0.0.1:5271", answer: { op: "status", router: "router-2", active: false, self: routerRow("router-2", false), entries: [] } },
      ],
      NOW,
    );
    expect(cells(out, "127.0.0.1:5270")?.slice(0, 2)).toEqual(["127.0.0.1:5270", "router"]);
    expect(cells(out, "127.0.0.1:5270")?.[4]).toBe("unreachable");
    expect(out).toMatch(/^router at 127\.0\.0\.1:5270: connection refused/m);
    expect(out).toMatch(/^no router answers as active/m);
  });

  it("prints a drain's progress: connections left, clients moved, the pace seen and an ETA", () => {
    const draining = entry({ draining: true, drainRate: 50 }, 120, { drainStarted: NOW - 8_000, drainMoved: 320 });
    expect(drainProgress(draining, NOW)).toBe("c2s-1 draining at 50/s: 120 connections left, 320 moved in 8s (40/s), ETA 3s");
    // From a front end that does not say what it moved: the ordered rate gives the ETA.
    expect(drainProgress(entry({ draining: true, drainRate: 10 }, 25), NOW)).toBe("c2s-1 draining at 10/s: 25 connections left, ETA 3s");
    expect(drainProgress(entry({ draining: true }, 0, { drainStarted: NOW - 9_000, drainMoved: 400 }), NOW)).toBe("c2s-1 drained: no connection left, 400 moved in 9s");
    expect(drainProgress(entry({ draining: true, drainRate: 50 }, null), NOW)).toBe("c2s-1 draining at 50/s: no load report yet");
    expect(drainProgress(entry({ draining: true, drainRate: 50 }, 0, figures), NOW)).toBe("c2s-1 draining at 50/s: no load report since the drain began");
    const out = formatStatus([{ address: "127.0.0.1:5270", answer: { op: "status", router: "router-1", active: true, entries: [draining] } }], NOW);
    expect(cells(out, "c2s-1")?.[4]).toBe("draining");
    expect(out).toMatch(/^c2s-1 draining at 50\/s: 120 connections left, 320 moved in 8s \(40\/s\), ETA 3s$/m);
  });
});
