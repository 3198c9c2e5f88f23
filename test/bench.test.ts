// `xfarm bench --compare` end to end, shrunk: xfarm, Debian's Prosody and
// ejabberd started from the anchors' configs, each measured by the
// simulator, one table printed. The figures themselves are timings and are
// not judged here (npm run bench is where they are read); what is checked is
// that every server was really measured: every login succeeded, every
// message arrived, memory was read.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { benchTable, mallocText, type BenchReport, type TargetReport } from "../bench/bench.js";
import { plateauOfStarted, type TsungIdle } from "../bench/bench-tsung.js";
import { findJemalloc } from "../lib/malloc.js";
import { CLI } from "../sim/local-farm.js";
import type { CpuMicros } from "../sim/process-tree.js";
import { runCommand } from "../sim/run-command.js";

/** The team's anchors, beside the checkout in a working copy (not necessarily in CI's clone). */
const SHARED_ANCHORS = path.resolve(import.meta.dirname, "../../shared/anchors");
const BUNDLED = path.resolve(import.meta.dirname, "../bench/anchors");
/** SHA-256 of each bundled anchor file: the configs the figures of docs/bench.md were measured with. */
const ANCHOR_SHA256: Record<string, string> = {
  "ejabberd.yml": "94d802b702a02ac6caa798cafaffcf146831638a66ac7974e7c20ee7c4e2948e",
  "ejabberdctl.cfg": "b00b1e7b221aa4e5b716413a5e4b3ed9ea10b8730cee43b46532891ca641aa27",
  inetrc: "3741f177e7d85013a555118b1d54ea2c6422b9580bd9bd58ac4d18a421463865",
  "prosody.cfg.lua": "18440909cca438b57298ebdaa778d12dda0202c55a782ea536be4ef3215ac867",
};
const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const NEEDS = ["/usr/bin/prosody", "/usr/sbin/ejabberdctl", "/usr/bin/erl"];

/** CPU µs per unit: for the server, and for xfarm by process, each farm process named. */
function expectCpu(server: string, cpu: CpuMicros | null, what: string): void {
  expect(cpu, `${server} ${what}`).not.toBeNull();
  expect(cpu!.total, `${server} ${what}`).toBeGreaterThan(0);
  // The kernel's share, read from stime beside utime, is part of the whole (a short step's may round to 0 ticks).
  expect(cpu!.system, `${server} ${what}`).toBeGreaterThanOrEqual(0);
  expect(cpu!.system, `${server} ${what}`).toBeLessThanOrEqual(cpu!.total);
  if (server === "xfarm") expect(Object.keys(cpu!.by).sort(), what).toEqual(expect.arrayContaining(["c2s-1", "c2s-2", "router-1", "sm-1"]));
}

const run = (args: string[]) => runCommand(process.execPath, [CLI, ...args]);

describe("xfarm bench --compare", () => {
  it("carries the anchors' server configs unchanged", () => {
    const files = fs.readdirSync(BUNDLED).sort();
    expect(files).toEqual(Object.keys(ANCHOR_SHA256).sort());
    for (const f of files) expect(sha256(path.join(BUNDLED, f)), f).toBe(ANCHOR_SHA256[f]);
    // And the team's own copies, where a working copy has them beside it (a clean clone has not).
    if (fs.existsSync(SHARED_ANCHORS)) for (const f of files) expect(sha256(path.join(SHARED_ANCHORS, f)), `../shared/anchors/${f}`).toBe(ANCHOR_SHA256[f]);
  });

  const missing = NEEDS.filter((f) => !fs.existsSync(f));
  if (missing.length && process.env.CI === "true") throw new Error(`bench test needs ${missing.join(", ")} (apt-get install prosody ejabberd; ../shared/anchors)`);

  // Skipped only outside CI, on a machine without Prosody or ejabberd (CI fails above instead).
  it.skipIf(missing.length > 0)("measures xfarm, Prosody and ejabberd with the same scenarios and prints one table", { timeout: 420_000 }, async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-bench-test-")), "bench.json");
    const r = await run([
      "bench", "--compare", "--out", out,
      "--sessions", "300", "--idle-hold", "4",
      "--login-rates", "40", "--login-seconds", "2",
      "--chat-rates", "100", "--chat-seconds", "2", "--chat-users", "40",
      "--only", "idle,login,chat", "--no-tsung",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(out, "utf8")) as BenchReport;
    expect(report.targets.map((t) => t.name)).toEqual(["xfarm", "prosody", "ejabberd"]);
    for (const t of report.targets) {
      expect(t.failures, t.name).toEqual([]);
      expect(t.idle.map((f) => f.security), t.name).toEqual(["none", "starttls"]);
      for (const f of t.idle) {
        expect(f.held, `${t.name} ${f.security}`).toBe(300);
        expect(f.errors, `${t.name} ${f.security}`).toBe(0);
        expect(f.kb_per_session, `${t.name} ${f.security}`).not.toBeNull();
      }
      // Prosody 0.12 offers no SCRAM-SHA-256: its STARTTLS ramp is not run.
      const kinds = t.name === "prosody" ? ["PLAIN", "SCRAM-SHA-1"] : ["PLAIN", "SCRAM-SHA-1", "STARTTLS SCRAM-SHA-256"];
      expect(Object.keys(t.login), t.name).toEqual(kinds);
      for (const kind of kinds) {
        const steps = t.login[kind]!;
        expect(steps.length, `${t.name} ${kind}`).toBeGreaterThan(0);
        // Every user logged in (PLAIN in the clear included: xfarm allows it for the bench).
        for (const s of steps) expect([s.logins > 0, s.failed], `${t.name} ${kind}`).toEqual([true, 0]);
        for (const s of steps) expectCpu(t.name, s.cpu_us, `${kind} ${s.offered}/s`);
      }
      expect(t.chat.length, t.name).toBeGreaterThan(0);
      for (const s of t.chat) {
        expect(s.sent, t.name).toBeGreaterThan(0);
        expect(s.received, t.name).toBe(s.sent);
        expectCpu(t.name, s.cpu_us, `chat ${s.offered}/s`);
      }
    }
    // Which malloc each server's processes ran with: xfarm's front ends on jemalloc where it is installed (start.malloc), the anchors on their own.
    const [xfarm, prosody, ejabberd] = report.targets;
    const c2s = findJemalloc() ? "jemalloc" : "system";
    expect(xfarm!.malloc).toEqual({ supervisor: "system", "router-1": "system", "sm-1": "system", "c2s-1": c2s, "c2s-2": c2s });
    for (const t of [prosody!, ejabberd!]) expect(new Set(Object.values(t.malloc ?? {})), t.name).toEqual(new Set(["system"]));
    const table = r.stdout;
    expect(table).toContain(`C allocator (malloc): xfarm ${mallocText(xfarm!.malloc!)}; prosody system; ejabberd system.`);
    expect(table).toMatch(/\| figure +\| xfarm [^|]+\| prosody [^|]+\| ejabberd [^|]+\|/);
    expect(table).toMatch(/\| logins\/s STARTTLS SCRAM-SHA-256[^\n]*\| n\/a +\|[^|\n]*\d[^|\n]*\|\n/);
    expect(table).toMatch(/\| reconnect storm[^\n]*\| - +\| n\/a +\| n\/a +\|/);
    for (const row of ["KB per idle session, plain", "KB per idle session, STARTTLS", "logins/s PLAIN", "logins/s SCRAM-SHA-1", "chat msgs/s, 40 users", "  CPU µs per message"]) {
      // A figure in every column (at 300 sessions a memory delta may even come out below zero: GC noise).
      const cell = "\\| (?:[<≥] )?-?\\d[^|]*";
      expect(table, row).toMatch(new RegExp(`\\| ${row}[^\\n]*${cell}${cell}${cell}\\|`));
    }
    // Each server's CPU a message, with its system time beside it.
    expect(table).toMatch(/\|   CPU µs per message[^|\n]*(\| [^|\n]*; system \d+[^|\n]*){3}\|/);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });

  it("takes the farm's reconnect storm, and says where Tsung is missing", { timeout: 180_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-bench-test-"));
    const out = path.join(dir, "bench.json");
    // An empty folder: no run.sh there, so the Tsung column says so, and nothing fails.
    const r = await run(["bench", "--out", out, "--only", "storm", "--storm-sessions", "200", "--c2s", "2", "--storm-delay", "1", "--storm-hold", "30", "--tsung", "--tsung-dir", dir]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(out, "utf8")) as BenchReport;
    const [t] = report.targets;
    expect(t!.failures).toEqual([]);
    const f = t!.storm!;
    expect(f.held).toBe(200);
    expect(f.killed).toMatch(/^c2s-[12]$/);
    // The killed c2s held about half the sessions; every one of them came back on the other.
    expect(f.lost).toBeGreaterThan(0);
    expect([f.back, f.failed]).toEqual([f.lost, 0]);
    expect(f.all_back_s).not.toBeNull();
    // What bringing them back cost the farm, by process (the killed one's next process too, in the total).
    expect(f.cpu_us!.total).toBeGreaterThan(0);
    const survivor = f.killed === "c2s-1" ? "c2s-2" : "c2s-1";
    expect(Object.keys(f.cpu_us!.by)).toEqual(expect.arrayContaining(["router-1", "sm-1", survivor]));
    expect(r.stdout).toMatch(/\| reconnect storm[^|]*\| [\d.]+ s \(\d+ of \d+ back[^|]*; CPU \d+ µs a client back\)/);
    expect(t!.tsung?.absent).toMatch(/^no (tsung on PATH|run\.sh in )/);
    expect(r.stdout).toMatch(/\| Tsung: logins\/s PLAIN[^|]*\| no (tsung on PATH|run\.sh in )/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("says when Tsung's idle run had no plateau to read, and when it was read on fewer sessions than asked", () => {
    // Tsung fell behind its arrival rate: for xfarm it logged in 18,135 of 19,000, every one held
    // at once, and the figure is read on those; for Prosody no plateau at all (sessions dropped).
    const target = (name: TargetReport["name"], idle: TsungIdle): TargetReport => ({
      name, version: "1", offers: [], idle: [], login: {}, chat: [], storm: null, failures: [], malloc: null,
      tsung: { absent: null, idle, login: [], msg: [], failures: [] },
    });
    const report = {
      machine: { cpus: 2, cpu_model: "cpu", memory_gb: 1, kernel: "k", node: "v20", open_files: 20000 },
      options: { idleInactive: false, loginRates: [400], chatRates: [8000], chatUsers: 1000, mam: false,
        tsung: { dir: "", idle: 19000, loginRates: [400], msgRates: [8000], loginSeconds: 20, msgSeconds: 30 } },
      targets: [
        target("xfarm", { asked: 19000, started: 18135, held: 18130, kb_per_session: 3.71, read_on: "started" }),
        target("prosody", { asked: 19000, started: 17822, held: null, kb_per_session: null, read_on: null }),
        target("ejabberd", { asked: 19000, started: 18729, held: 18729, kb_per_session: 48.31, read_on: "asked" }),
      ],
    } as unknown as BenchReport;
    const row = benchTable(report).split("\n").find((l) => l.startsWith("| Tsung: KB per idle session"));
    expect(row).toMatch(/\| 3\.7 \(18130 held: Tsung logged in 18135 of 19000\) +\| - \(no plateau: 17822 logged in\) +\| 48\.3 \(18729 held\) +\|$/);
  });
  it("reads the idle figure on the sessions Tsung logged in, from run.sh's once-a-second samples", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-tsung-run-"));
    // time, CPU ticks, RSS KB, open files: logins rise to 1,000 sessions, all held 15 s, then leave.
    const rows: number[][] = [];
    for (let t = 0; t < 10; t++) rows.push([t, t, 300_000 + t * 400, 100 + t * 100]);
    for (let t = 10; t < 25; t++) rows.push([t, t, t === 24 ? 305_000 : 304_000, 1_100]);
    for (let t = 25; t < 30; t++) rows.push([t, t, 304_000, 1_100 - (t - 24) * 150]);
    fs.writeFileSync(path.join(dir, "mon.tsv"), rows.map((r) => r.join("\t")).join("\n") + "\n");
    const summary = { SERVER: "farm", SCENARIO: "idle", BASE_RSS_KB: "300000", BASE_FDS: "100", runDir: dir };
    // The last ten samples at 98 % of 1,000 or more: RSS 304,000 KB at the median, 1,000 held.
    expect(plateauOfStarted(summary, 1_000)).toEqual({ held: 1_000, kb: 4 });
    expect(plateauOfStarted(summary, 2_000)).toBeNull();
    expect(plateauOfStarted({ ...summary, runDir: undefined }, 1_000)).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
