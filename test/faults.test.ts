// The fault harness (`npm run faults`, sim/faults.ts; docs/failover.md) in
// small: tens of users, seconds of load, every fault once, through the
// compiled CLI. What is asserted:
// - the harness's own counting is exact: a baseline run delivers every
//   message once and drops no one, except the receipts its clients throw
//   away on purpose (--discard), which it must report lost;
// - for every fault the run completes, the faulted process (or database) is
//   back, and the counts add up (received + bounced + stored + lost = sent);
// - the guarantee of docs/failover.md, for every fault: no acknowledged
//   message lost, none delivered twice, no client of a surviving process
//   dropped; and nothing lost at all unless a front end with its clients'
//   unacknowledged stanzas was killed; and the XEP-0198 clients of a killed
//   front end all resume on another (protocol §2.6).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { FaultRow, FaultsReport } from "../sim/faults.js";
import { MariaDb } from "../sim/mariadb.js";
import { runCli } from "./sim-expect.js";

// A pause past the links' 6 s silence limit, so that the router cuts the stopped front end off, and
// past the router lease and election, so that the passive router takes over from the stopped one.
const SHORT = ["--users", "20", "--rate", "200", "--duration", "2", "--pause", "8"];

describe("the fault harness (npm run faults)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-faults-test-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function faults(name: string, args: string[]): Promise<{ report: FaultsReport; stdout: string }> {
    const out = path.join(dir, `${name}.json`);
    const r = await runCli(["faults", ...SHORT, ...args, "--json", out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return { report: JSON.parse(fs.readFileSync(out, "utf8")) as FaultsReport, stdout: r.stdout };
  }

  /** What every row must show today, whatever the fault did. */
  function expectAccounted(row: FaultRow): void {
    expect(row.sent, row.fault).toBeGreaterThan(0);
    expect(row.received + row.bounced + row.stored + row.lost, row.fault).toBe(row.sent);
    expect(row.lostAcked + row.lostUnacked, row.fault).toBe(row.lost);
    expect(row.strays, row.fault).toBe(0);
    expect(row.resumed, row.fault).toBeLessThanOrEqual(row.resumeTried);
  }

  it("counts a baseline exactly, and reports lost the receipts its clients threw away on purpose", async () => {
    const { report, stdout } = await faults("baseline", ["--faults", "none", "--discard", "3"]);
    const [row] = report.rows;
    expectAccounted(row!);
    expect(row).toMatchObject({ fault: "none", bounced: 0, stored: 0, offlineLeft: 0, finalLoginFailed: 0, lost: 3, duplicated: 0, droppedFaulted: 0, droppedOthers: 0, resumeTried: 0, recoverS: null, back: null });
    expect(row!.received).toBe(row!.sent - 3);
    expect(stdout).toMatch(/^\| none \(baseline\) \| /m);
  }, 60_000);

  /** The guarantee (docs/failover.md), for a fault that kills `killsFrontEnd` or not. */
  function expectGuarantee(row: FaultRow, killsFrontEnd: boolean): void {
    expect(row.lostAcked, row.fault).toBe(0);
    expect(row.duplicated, row.fault).toBe(0);
    expect(row.droppedOthers, row.fault).toBe(0);
    expect(row.finalLoginFailed, row.fault).toBe(0);
    if (!killsFrontEnd) expect({ lost: row.lost, droppedFaulted: row.droppedFaulted }, row.fault).toEqual({ lost: 0, droppedFaulted: 0 });
  }

  it("runs each process fault once: the process comes back, the counts add up, and the guarantee holds", async () => {
    const { report } = await faults("processes", ["--faults", "kill-sm,kill-router,stop-router,kill-c2s,stop-c2s,restart-sm"]);
    expect(report.rows.map((r) => r.fault)).toEqual(["kill-sm", "kill-router", "stop-router", "kill-c2s", "stop-c2s", "restart-sm"]);
    for (const row of report.rows) {
      expectAccounted(row);
      expect(row.back, row.fault).toBe(true);
      expect(row.recoverS, row.fault).toBeGreaterThanOrEqual(0);
      expectGuarantee(row, row.fault === "kill-c2s");
    }
    // A SIGKILLed front end's connections die with it: the harness must see its clients drop.
    const killed = report.rows.find((r) => r.fault === "kill-c2s")!;
    expect(killed.droppedFaulted).toBeGreaterThan(0);
    expect(killed.resumeTried).toBeGreaterThan(0);
    expect(killed.resumed).toBe(killed.resumeTried);
  }, 240_000);

  it("cuts the router pair's peer link past the election: never two routers active, and the guarantee holds", async () => {
    // 12 s: past the link's silence limit (6 to 8 s) and the election (3 s), so the passive router asks for the lease, and is refused.
    const { report } = await faults("partition", ["--faults", "partition-routers", "--pause", "12"]);
    const [row] = report.rows;
    expectAccounted(row!);
    expect(row!.back, "one router active throughout, every component linked after").toBe(true);
    expectGuarantee(row!, false);
  }, 90_000);

  // Skipped only outside CI, on a machine without MariaDB; under CI a missing one fails the test (MariaDb.start says so).
  it.skipIf(!MariaDb.available() && process.env.CI !== "true")("runs each database fault once with MariaDB: the run completes, the counts add up", async () => {
    const { report } = await faults("mariadb", ["--store", "mariadb", "--faults", "db-stop,db-pause"]);
    expect(report.rows.map((r) => r.fault)).toEqual(["db-stop", "db-pause"]);
    for (const row of report.rows) {
      expectAccounted(row);
      expect(row.back, row.fault).toBe(true);
      expectGuarantee(row, false);
    }
  }, 120_000);
});
