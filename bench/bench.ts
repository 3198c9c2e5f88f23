// `npm run bench` / `xfarm bench`: xfarm, and with --compare Debian's
// Prosody and ejabberd, measured by the bundled simulator with the same
// scenarios in one run: memory per idle session (plain and STARTTLS),
// logins per second before p99 passes 100 ms (PLAIN and SCRAM-SHA-1 in the
// clear, SCRAM-SHA-256 after STARTTLS), and chat messages per second
// between 1,000 users before p99 passes 50 ms, each rate with the CPU µs it
// cost per login or message, per server process; for the farm, the
// reconnect storm after a c2s is killed (bench-storm.ts); and where Tsung is
// installed, the anchors' own Tsung runs of each server (bench-tsung.ts).
// Prints one side-by-side table and writes every step to a JSON file.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { knee, measureChat, measureIdle, measureLogin, ramp, type ChatStep, type IdleFigure, type LoginStep, type StepEnv } from "./bench-steps.js";
import { EjabberdTarget, LIKE_THE_ANCHORS, makeCert, ProsodyTarget, XfarmTarget, type BenchTarget, type FarmModules, type TargetName } from "./bench-targets.js";
import { measureStorm, type StormFigure } from "./bench-storm.js";
import { measureTsung, type TsungFigures, type TsungOptions, type TsungStep } from "./bench-tsung.js";
import { allocatorOf, type Allocator } from "../lib/malloc.js";
import { expandSources } from "../sim/loopback.js";
import { processName, processTree, type CpuMicros } from "../sim/process-tree.js";
import type { Mechanism, Security } from "../sim/scenario.js";

export const MEASUREMENTS = ["idle", "login", "chat", "storm"] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

/** A login ramp: how the users connect and authenticate; `name` keys TargetReport.login. */
export interface LoginKind {
  name: string;
  security: Security;
  mechanism: Mechanism;
}

/** PLAIN and SCRAM-SHA-1 in the clear, as the anchors measured; STARTTLS with SCRAM-SHA-256, as real clients log in. */
export const LOGIN_KINDS: readonly LoginKind[] = [
  { name: "PLAIN", security: "none", mechanism: "PLAIN" },
  { name: "SCRAM-SHA-1", security: "none", mechanism: "SCRAM-SHA-1" },
  { name: "STARTTLS SCRAM-SHA-256", security: "starttls", mechanism: "SCRAM-SHA-256" },
];

export interface BenchOptions {
  targets: TargetName[];
  only: Measurement[];
  /** Idle sessions to hold (single-process servers hold at most 19,000). */
  sessions: number;
  /** Seconds idle sessions are held after the last login (RSS sampled from the 3rd on). */
  idleHold: number;
  /** Which idle measurements: plain TCP, STARTTLS or both. */
  idleSecurity: ("none" | "starttls")[];
  /** c2s processes of the measured farm (each holds 19,000 sessions at most). */
  c2s: number;
  /** The measured farm archives messages (XEP-0313), as it ships; otherwise MAM is off, as in the anchors. */
  mam: boolean;
  /** How idle sessions authenticate (PLAIN, as the anchors did). */
  idleMechanism: Mechanism;
  /** Idle sessions say XEP-0352 <inactive/> after their roster. */
  idleInactive: boolean;
  loginRates: number[];
  loginSeconds: number;
  chatRates: number[];
  chatSeconds: number;
  chatUsers: number;
  /** Reconnect storm: sessions held over the farm's c2s before one is killed. */
  stormSessions: number;
  /** Reconnect storm: each client waits a random 0 … this many seconds before reconnecting. */
  stormDelay: number;
  /** Reconnect storm: seconds the sessions stay after the kill (the time they have to come back). */
  stormHold: number;
  /** The Tsung column (bench-tsung.ts): run.sh's folder and the runs to take; null: off. */
  tsung: TsungOptions | null;
  /** The folder with the anchors' prosody.cfg.lua and ejabberd.yml. */
  anchors: string;
  out: string;
  workers: number;
  sources: string;
  /** Print each simulator run's progress lines. */
  verbose: boolean;
}

export interface TargetReport {
  name: TargetName;
  version: string;
  /** The SASL mechanisms the server offers (a login kind of another is n/a). */
  offers: Mechanism[];
  idle: IdleFigure[];
  /** By LoginKind.name; a kind the server does not offer is missing (the table says n/a). */
  login: Record<string, LoginStep[]>;
  chat: ChatStep[];
  /** Null where not measured, and for a server of one process (no other front end). */
  storm: StormFigure | null;
  /** Tsung's figures for this server (null: the Tsung column is off). */
  tsung: TsungFigures | null;
  /** Why a measurement could not be taken. */
  failures: string[];
  /** The C allocator each of its processes ran with, by process name (null: no server of it was started). */
  malloc: Record<string, Allocator> | null;
}

export interface BenchReport {
  format: "xfarm-bench/1";
  started: string;
  finished: string;
  command: string;
  machine: { cpus: number; cpu_model: string; memory_gb: number; kernel: string; node: string; open_files: number | null };
  options: BenchOptions;
  targets: TargetReport[];
}

/** The password every benchmark account shares (see StepEnv.password). */
const PASSWORD = "bench-pw";
/** What xfarm needs to take PLAIN in the clear, as the anchors' servers do. */
const XFARM_PLAIN_IN_CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };

/** The measured farm's sm modules: as it ships with --mam, else like the anchors. */
function farmModules(opts: BenchOptions): FarmModules {
  return opts.mam ? {} : LIKE_THE_ANCHORS;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} bench: ${line}\n`);
}

function machine(): BenchReport["machine"] {
  let openFiles: number | null = null;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    openFiles = m ? Number(m[1]) : null;
  } catch {
    // not Linux
  }
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? "unknown",
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    open_files: openFiles,
  };
}

export async function runBench(opts: BenchOptions, command: string): Promise<BenchReport> {
  for (const name of opts.targets) {
    if (name !== "xfarm" && !fs.existsSync(path.join(opts.anchors, name === "prosody" ? "prosody.cfg.lua" : "ejabberd.yml"))) {
      throw new Error(`${name}: no anchors config in ${opts.anchors} (--anchors DIR)`);
    }
  }
  const started = new Date().toISOString();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-bench-"));
  const cert = await makeCert(work);
  const env: StepEnv = {
    password: PASSWORD,
    sources: expandSources([opts.sources]),
    workers: opts.workers,
    // A rewritten progress line on a terminal; in a log, each run's lines only with --verbose.
    progress: opts.verbose ? "lines" : process.stderr.isTTY ? "tty" : "none",
  };
  const reports: TargetReport[] = [];
  try {
    for (const name of opts.targets) {
      const make = (): BenchTarget =>
        name === "xfarm" ? new XfarmTarget(cert, XFARM_PLAIN_IN_CLEAR, opts.c2s, farmModules(opts)) : name === "prosody" ? new ProsodyTarget(opts.anchors, cert) : new EjabberdTarget(opts.anchors, cert);
      const first = make();
      reports.push(await measureTarget(make, first, name, opts, env));
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const report: BenchReport = { format: "xfarm-bench/1", started, finished: new Date().toISOString(), command, machine: machine(), options: opts, targets: reports };
  fs.writeFileSync(opts.out, JSON.stringify(report, null, 2) + "\n");
  return report;
}

/** The allocator of every process of a server's tree, by name (`xfarm start` preloads jemalloc into its front ends only). */
function mallocByProcess(root: number): Record<string, Allocator> {
  const out: Record<string, Allocator> = {};
  for (const pid of processTree(root)) {
    const allocator = allocatorOf(pid);
    if (allocator !== null) out[processName(pid)] = allocator;
  }
  return out;
}

/** "jemalloc", or where a server's processes differ, "jemalloc (c2s-1, sm-1), system (supervisor)". */
export function mallocText(malloc: Record<string, Allocator>): string {
  const by = new Map<Allocator, string[]>();
  for (const [name, allocator] of Object.entries(malloc)) by.set(allocator, [...(by.get(allocator) ?? []), name]);
  if (by.size <= 1) return [...by.keys()][0] ?? "?";
  return [...by].map(([allocator, names]) => `${allocator} (${names.join(", ")})`).join(", ");
}

/** Starts a fresh server, makes its accounts, runs `body`, stops it whatever happens. */
async function withServer<T>(make: () => BenchTarget, accounts: number, body: (t: BenchTarget) => Promise<T>): Promise<T> {
  const t = make();
  try {
    await t.start();
    const t0 = Date.now();
    await t.createAccounts(accounts, PASSWORD);
    log(`${t.name} ${t.version} on 127.0.0.1:${t.ports.join(",")}: ${accounts} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return await body(t);
  } finally {
    await t.stop();
  }
}

async function measureTarget(make: () => BenchTarget, first: BenchTarget, name: TargetName, opts: BenchOptions, env: StepEnv): Promise<TargetReport> {
  const report: TargetReport = { name, version: first.version, offers: [...first.mechanisms], idle: [], login: {}, chat: [], storm: null, tsung: null, failures: [], malloc: null };
  const serve = <T>(accounts: number, body: (t: BenchTarget) => Promise<T>): Promise<T> =>
    withServer(make, accounts, (t) => {
      if (report.malloc === null) {
        report.malloc = mallocByProcess(t.pid);
        log(`${name} malloc: ${mallocText(report.malloc)}`);
      }
      return body(t);
    });
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      report.failures.push(`${what}: ${(err as Error).message}`);
      log(`${name} ${what} failed: ${(err as Error).message}`);
    }
  };
  if (opts.only.includes("idle")) {
    for (const security of opts.idleSecurity) {
      await attempt(`idle ${security}`, () =>
        serve(opts.sessions, async (t) => {
          const n = Math.min(opts.sessions, t.maxSessions);
          log(`${name} idle ${security}: ${n} sessions`);
          const f = await measureIdle(t, env, n, security, opts.idleHold, opts.idleMechanism, opts.idleInactive);
          report.idle.push(f);
          log(`${name} idle ${security}: ${f.held} held, ${f.kb_per_session ?? "-"} KB/session (RSS ${f.base_rss_mb} → ${f.rss_mb} MB), login p99 ${f.login_p99_ms} ms, errors ${f.errors}`);
        }),
      );
    }
  }
  const settle = () => new Promise<void>((r) => setTimeout(r, 3000));
  if (opts.only.includes("login")) {
    // Every step of a ramp logs in accounts of its own (measureLogin).
    const accounts = opts.loginRates.reduce((a, r) => a + r, 0) * opts.loginSeconds;
    await attempt("login", () =>
      serve(accounts, async (t) => {
        for (const kind of LOGIN_KINDS) {
          if (!report.offers.includes(kind.mechanism)) continue;
          let first = 1;
          report.login[kind.name] = await ramp(
            opts.loginRates,
            async (rate) => {
              const s = await measureLogin(t, env, rate, opts.loginSeconds, kind.security, kind.mechanism, first);
              first += rate * opts.loginSeconds;
              log(`${name} login ${kind.name} ${rate}/s: ${s.achieved}/s, p50 ${s.p50_ms} / p99 ${s.p99_ms} ms, failed ${s.failed}, cpu ${s.server_cpu_pct} %, µs/login ${s.cpu_us ? cpuText(s.cpu_us) : "-"}${s.passed ? "" : " (past the knee)"}`);
              return s;
            },
            settle,
          );
          await settle();
        }
      }),
    );
  }
  if (opts.only.includes("chat")) {
    await attempt("chat", () =>
      serve(opts.chatUsers, async (t) => {
        report.chat = await ramp(
          opts.chatRates,
          async (rate) => {
            const s = await measureChat(t, env, rate, opts.chatUsers, opts.chatSeconds);
            log(`${name} chat ${rate}/s: ${s.achieved}/s received, ${s.delivered_pct} % delivered, p50 ${s.p50_ms} / p99 ${s.p99_ms} ms, cpu ${s.server_cpu_pct} %, µs/msg ${s.cpu_us ? cpuText(s.cpu_us) : "-"}${s.passed ? "" : " (past the knee)"}`);
            return s;
          },
          settle,
        );
      }),
    );
  }
  if (opts.only.includes("storm") && name === "xfarm") {
    await attempt("storm", () =>
      serve(opts.stormSessions, async (t) => {
        const n = Math.min(opts.stormSessions, t.maxSessions);
        log(`${name} storm: ${n} sessions, then a c2s killed; clients back after 0 … ${opts.stormDelay} s`);
        const f = await measureStorm(t as XfarmTarget, env, n, opts.stormDelay, opts.stormHold);
        report.storm = f;
        log(`${name} storm: ${f.held} held, ${f.killed} killed (${f.killed_sockets} sockets), ${f.back} of ${f.lost} back${f.all_back_s === null ? "" : ` in ${f.all_back_s} s`}, p50 ${f.relogin_p50_ms} / p99 ${f.relogin_p99_ms} ms, failed ${f.failed}, µs/client back ${f.cpu_us ? cpuText(f.cpu_us) : "-"}`);
      }),
    );
  }
  if (opts.tsung) {
    // Last: run.sh starts its own server, after ours has stopped.
    log(`${name}: Tsung runs (run.sh in ${opts.tsung.dir})`);
    report.tsung = await measureTsung(name, opts.tsung, opts.only, farmModules(opts));
    report.failures.push(...report.tsung.failures);
  }
  return report;
}

/** The side-by-side table: one row a figure, one column a server. */
export function benchTable(r: BenchReport): string {
  const cols = r.targets;
  const rows: [string, (t: TargetReport) => string][] = [];
  for (const security of ["none", "starttls"] as const) {
    rows.push([
      `KB per idle session, ${security === "none" ? "plain" : "STARTTLS"}${r.options.idleInactive ? ", inactive (XEP-0352)" : ""}`,
      (t) => {
        const f = t.idle.find((i) => i.security === security);
        if (!f || f.kb_per_session === null) return "-";
        return `${f.kb_per_session.toFixed(1)} (${f.held}${f.held < f.asked ? ` of ${f.asked}` : ""} held)`;
      },
    ]);
  }
  for (const kind of LOGIN_KINDS) {
    const steps = (t: TargetReport) => t.login[kind.name];
    rows.push([`logins/s ${kind.name}, p99 ≤ 100 ms`, (t) => (steps(t) ? rampCell(steps(t)!, r.options.loginRates.length, (k) => `p99 ${ms(k.p99_ms)} ms`) : notOffered(t, kind))]);
    rows.push([`  CPU µs per login, at that rate`, (t) => (steps(t) ? cpuCell(steps(t)!) : notOffered(t, kind))]);
  }
  rows.push([
    `chat msgs/s, ${r.options.chatUsers} users, p99 ≤ 50 ms`,
    (t) => rampCell(t.chat, r.options.chatRates.length, (k) => `p50 ${ms(k.p50_ms)} / p99 ${ms(k.p99_ms)} ms`),
  ]);
  rows.push([`  CPU µs per message, at that rate`, (t) => cpuCell(t.chat)]);
  if (r.options.tsung) {
    const tsung = (t: TargetReport, cell: (f: TsungFigures) => string) => (!t.tsung ? "-" : t.tsung.absent ? t.tsung.absent : cell(t.tsung));
    const ts = r.options.tsung;
    rows.push([
      `Tsung: KB per idle session, plain, ${ts.idle}`,
      (t) => tsung(t, (f) => (!f.idle ? "-" : f.idle.kb_per_session === null ? `- (no plateau: ${f.idle.started} logged in)` : `${f.idle.kb_per_session.toFixed(1)} (${f.idle.held} held${f.idle.read_on === "started" ? `: Tsung logged in ${f.idle.started} of ${f.idle.asked}` : ""})`)),
    ]);
    rows.push([`Tsung: logins/s PLAIN, p99 ≤ 100 ms`, (t) => tsung(t, (f) => tsungRamp(f.login, ts.loginRates.length))]);
    rows.push([`  CPU µs per login, at that rate`, (t) => tsung(t, (f) => cpuCell(f.login))]);
    rows.push([`Tsung: chat msgs/s, p99 ≤ 50 ms`, (t) => tsung(t, (f) => tsungRamp(f.msg, ts.msgRates.length))]);
    rows.push([`  CPU µs per message, at that rate`, (t) => tsung(t, (f) => cpuCell(f.msg))]);
  }
  rows.push([`reconnect storm: s until all back, c2s killed`, (t) => (t.name !== "xfarm" ? "n/a" : t.storm ? stormCell(t.storm) : "-")]);
  const header = ["figure", ...cols.map((t) => `${t.name} ${t.version}`)];
  const body = rows.map(([label, cell]) => [label, ...cols.map(cell)]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
  const m = r.machine;
  out.push("", `${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GiB, Linux ${m.kernel}, Node ${m.node}, open files ${m.open_files ?? "?"}; the simulator shares the cores; xfarm ${r.options.mam ? "archives messages (MAM on, as it ships)" : "without MAM, as the anchors (--mam: with)"}.`);
  const mallocs = cols.filter((t) => t.malloc !== null).map((t) => `${t.name} ${mallocText(t.malloc!)}`);
  if (mallocs.length) out.push(`C allocator (malloc): ${mallocs.join("; ")}.`);
  for (const t of cols) for (const f of t.failures) out.push(`${t.name}: ${f}`);
  return out.join("\n") + "\n";
}

function tsungRamp(steps: TsungStep[], planned: number): string {
  return rampCell(
    steps.map((s) => ({ ...s, p99_ms: s.p99_ms ?? NaN })),
    planned,
    (k) => `p50 ${ms(k.p50_ms ?? NaN)} / p99 ${ms(k.p99_ms)} ms`,
  );
}

/** "12.3 s (9500 back, …)", or how many came back when not all did. */
function stormCell(f: StormFigure): string {
  const head = f.all_back_s === null ? `not all back: ${f.back} of ${f.lost}` : `${f.all_back_s} s (${f.back} of ${f.lost} back`;
  const cpu = f.cpu_us ? `; CPU ${f.cpu_us.total} µs a client back` : "";
  return `${head}${f.all_back_s === null ? " (" : ", "}p50 ${ms(f.relogin_p50_ms)} / p99 ${ms(f.relogin_p99_ms)} ms each, ${f.failed} failed; ${f.killed} held ${f.killed_sockets} sockets${cpu})`;
}

/** "-" where the kind was not measured, "n/a" where the server does not offer its mechanism. */
function notOffered(t: TargetReport, kind: LoginKind): string {
  return t.offers.includes(kind.mechanism) ? "-" : "n/a";
}

/**
 * Where CPU per unit goes, by role: c2s-1 and c2s-2 are "c2s", … (the JSON
 * has each process); a server of one process tree reads as its total. The
 * system time follows where it is known: beside the total, it tells the
 * kernel's share (system calls, loopback's network stack) from the code's.
 */
function cpuText(cpu: CpuMicros): string {
  const roles: Record<string, number> = {};
  for (const [name, us] of Object.entries(cpu.by)) {
    const role = name.replace(/-\d+$/, "");
    roles[role] = (roles[role] ?? 0) + us;
  }
  const parts = Object.entries(roles).filter(([, us]) => us > 0).sort((a, b) => b[1] - a[1]);
  const farm = Object.keys(cpu.by).some((n) => /^(c2s|sm|router)-\d+$/.test(n));
  const system = cpu.system === undefined ? "" : `; system ${cpu.system}`;
  return `${cpu.total}${farm ? ` = ${parts.map(([role, us]) => `${role} ${us}`).join(" + ")}` : ""}${system}`;
}

/** The CPU cost at the ramp's figure: the knee step's, or the first step's when none passed. */
function cpuCell<T extends { passed: boolean; achieved: number; offered: number; cpu_us: LoginStep["cpu_us"] }>(steps: T[]): string {
  const k = knee(steps) ?? steps[0];
  if (!k?.cpu_us) return "-";
  return `${cpuText(k.cpu_us)} (at ${k.offered}/s)`;
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/**
 * A ramp's figure: the best rate that passed, "≥" when every step passed
 * (the knee lies beyond the ramp), "<" the first rate when none did.
 */
function rampCell<T extends { passed: boolean; achieved: number; offered: number; p99_ms: number }>(steps: T[], planned: number, detail: (k: T) => string): string {
  if (!steps.length) return "-";
  const k = knee(steps);
  if (!k) return `< ${steps[0]!.offered} (p99 ${ms(steps[0]!.p99_ms)} ms)`;
  const open = steps.length === planned && steps.every((s) => s.passed) ? "≥ " : "";
  return `${open}${k.achieved.toFixed(0)} (${detail(k)})`;
}
