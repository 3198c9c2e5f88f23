// What the simulator tests share: running the compiled `xfarm sim` (or the
// soak), and what the results of a clean run must show, whatever the server.
import { expect } from "vitest";
import { CLI } from "../sim/local-farm.js";
import { runCommand, type CommandResult } from "../sim/run-command.js";
import type { SimResults } from "../sim/results.js";
import { HISTOGRAMS } from "../sim/stats.js";

/** Runs a compiled entry point (the CLI, the soak) with `args`; resolves with its exit code and output. */
export function runNode(script: string, args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, [script, ...args]);
}

export const runCli = (args: string[]) => runNode(CLI, args);

/** What every clean run must show, whatever the server. */
export function expectCleanRun(r: SimResults, users: number, messages: number): void {
  const t = r.totals;
  expect(r.ended_by).toBe("done");
  expect(r.planned_users).toBe(users);
  expect(t.errors_by_kind).toEqual({});
  expect(t.errors).toBe(0);
  expect(t.arrived).toBe(users);
  expect(t.logged_in).toBe(users);
  expect(t.login_failed).toBe(0);
  expect(t.dropped).toBe(0);
  expect(t.cut).toBe(0);
  expect(t.closed).toBe(users);
  expect(t.rosters).toBe(users);
  expect(t.msgs_sent).toBe(messages);
  expect(t.msgs_received).toBe(t.msgs_sent);
  expect(t.msgs_received_delayed).toBe(0);
  expect(t.msgs_missing).toBe(0);
  expect(t.msgs_no_target).toBe(0);
  expect(t.peak_sessions).toBeGreaterThan(0);
  expect(t.peak_sessions).toBeLessThanOrEqual(users);
  // Every sync point saw every user, and the second one every message delivered.
  expect(r.syncs.map((s) => [s.complete, s.reached, s.missed])).toEqual([
    [true, users, 0],
    [true, users, 0],
  ]);
  expect(r.latency_ms.login.count).toBe(users);
  expect(r.latency_ms.roster.count).toBe(users);
  expect(r.latency_ms.message.count).toBe(messages);
  expect(r.latency_ms.connect.count).toBe(t.connections);
  for (const name of HISTOGRAMS) {
    const p = r.latency_ms[name];
    // A relogin only follows a lost session.
    if ((name === "tls" && r.scenario.server.security === "none") || (name === "relogin" && t.relogins + t.resumed === 0)) {
      expect(p.count).toBe(0);
      continue;
    }
    expect(p.count, name).toBeGreaterThan(0);
    expect(p.min, name).toBeGreaterThan(0);
    expect(p.p50, name).toBeLessThanOrEqual(p.p90);
    expect(p.p90, name).toBeLessThanOrEqual(p.p99);
    expect(p.p99, name).toBeLessThanOrEqual(p["p99.9"]);
    expect(p["p99.9"], name).toBeLessThanOrEqual(p.max);
    expect(r.histograms[name], name).toBeTruthy();
  }
  // The time series adds up to the totals.
  const sum = (k: "logins" | "msgs_received" | "connections") => r.series.reduce((a, row) => a + row[k], 0);
  expect(r.series.length).toBeGreaterThan(0);
  expect(sum("logins")).toBe(users);
  expect(sum("msgs_received")).toBe(messages);
  expect(sum("connections")).toBe(t.connections);
  expect(r.series.at(-1)!.sessions).toBe(0);
}

