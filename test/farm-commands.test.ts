// `xfarm status`'s STATE column for front ends (cli/farm-commands.ts).
import { describe, expect, it } from "vitest";
import { c2sState, formatStatus } from "../cli/farm-commands.js";
import type { StatusEntry } from "../lib/link/control.js";

const entry = (info: Record<string, unknown>, connections: number | null): StatusEntry => ({
  name: "c2s-1",
  role: "c2s",
  peer: "127.0.0.1:40000",
  info: { host: "a.example", port: 5222, tlsPort: 5223, weight: 1, capacity: 100, started: 0, ...info },
  load: connections === null ? null : { sessions: connections, connections, lag: 1 },
  linkedAt: 0,
  queued: 0,
});

describe("xfarm status", () => {
  it("tells active, full, draining and drained front ends apart", () => {
    expect(c2sState(entry({}, 3))).toBe("active");
    expect(c2sState(entry({ full: true }, 3))).toBe("full");
    expect(c2sState(entry({ draining: true, drainRate: 50 }, 3))).toBe("draining");
    // Not reported yet (restarted): not known to be empty.
    expect(c2sState(entry({ draining: true }, null))).toBe("draining");
    expect(c2sState(entry({ draining: true, full: true }, 0))).toBe("drained");
    expect(formatStatus("router-1", [entry({ draining: true }, 0)], 0)).toMatch(/^c2s-1 +c2s +a\.example:5222\/5223 +0 +0 +1ms +0s +drained$/m);
  });
});
