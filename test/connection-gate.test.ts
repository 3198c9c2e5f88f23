// Who may connect, and how refusals are logged: counted, once a minute.
import { describe, expect, it } from "vitest";
import { ConnectionGate } from "../c2s/connection-gate.js";
import type { Logger } from "../lib/log.js";

/** A logger that keeps what was logged at warn. */
function recording() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) } as unknown as Logger;
  return { log, lines };
}

const T = 1_000_000;

describe("ConnectionGate", () => {
  it("caps the unauthenticated connections of one address, and lets one in again when another leaves", () => {
    const { log } = recording();
    const gate = new ConnectionGate(100, 2, log, T);
    expect([gate.enter("10.0.0.1", 0), gate.enter("10.0.0.1", 1), gate.enter("10.0.0.1", 2)]).toEqual([null, null, "policy-violation"]);
    expect(gate.enter("10.0.0.2", 2)).toBeNull();
    gate.leave("10.0.0.1");
    expect(gate.enter("10.0.0.1", 3)).toBeNull();
  });

  it("refuses everyone once the sockets reach max_connections", () => {
    const { log } = recording();
    const gate = new ConnectionGate(5, 2, log, T);
    expect(gate.enter("10.0.0.3", 5)).toBe("resource-constraint");
  });

  it("has no per-address limit at 0", () => {
    const { log } = recording();
    const gate = new ConnectionGate(1_000, 0, log, T);
    for (let i = 0; i < 500; i++) expect(gate.enter("10.0.0.1", i)).toBeNull();
  });

  it("logs refusals once a minute with their counts, not a line each", () => {
    const { log, lines } = recording();
    const gate = new ConnectionGate(10, 1, log, T);
    gate.enter("10.0.0.1", 0);
    for (let i = 0; i < 700; i++) gate.enter("10.0.0.1", 1);
    for (let i = 0; i < 3; i++) gate.enter("10.0.0.2", 10);
    gate.report(T + 59_999);
    expect(lines).toHaveLength(0);
    gate.report(T + 60_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.obj).toMatchObject({ refused: 703, serverFull: 3, perAddress: 700, addresses: { "10.0.0.1": 700, "10.0.0.2": 3 } });
    // A quiet minute logs nothing.
    gate.report(T + 120_000);
    expect(lines).toHaveLength(1);
  });
});
