// `npm run soak` in small: the soak tool (sim/soak.ts, compiled) run for a
// short while against its own real farm, as `npm run soak -- --minutes 30`
// runs it for the figures. Its verdict must be clean (every honest user in,
// every honest message delivered, no restart, memory back near its start)
// and every kind of attack must have been made.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { SoakReport } from "../sim/soak-report.js";
import { runNode } from "./sim-expect.js";

const SOAK = fileURLToPath(new URL("../dist/sim/soak.js", import.meta.url));

describe("the soak (npm run soak)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-soak-test-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("runs clean beside every kind of attack, and says so in its table and its JSON", async () => {
    const out = path.join(dir, "soak.json");
    // The settling ends once memory is back near its start (at most a minute): no guess at how long the sm's GC takes.
    const r = await runNode(SOAK, ["--minutes", "0.3", "--users", "40", "--settle", "60", "--until-near", "--out", out]);
    const report = JSON.parse(fs.readFileSync(out, "utf8")) as SoakReport;
    expect(report.verdict, r.stdout + r.stderr).toEqual({ clean: true, reasons: [] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^verdict: clean$/m);
    expect(report.honest).toMatchObject({ users: 40, logged_in: 40, msgs_missing: 0, sync_complete: true });
    expect(report.honest.msgs_sent).toBeGreaterThan(0);
    expect(report.honest.relogins.ok).toBeGreaterThan(0);
    for (const [kind, k] of Object.entries(report.attacks.by_kind)) expect(k.made, kind).toBeGreaterThan(0);
    expect(report.processes.map((p) => p.name)).toEqual(["supervisor", "router-1", "sm-1", "c2s-1", "c2s-2"]);
    expect(report.series.some((row) => row.phase === "attack")).toBe(true);
  }, 240_000);
});
