// The Tsung column of `xfarm bench --compare`: the same server measured from
// outside by Tsung 1.7 with the anchors' own scenarios, by driving the
// anchors' run.sh (../shared/anchors: it starts the server, runs Tsung,
// samples every process, and appends one JSON summary a run to
// /tmp/anchors/runs/summary.jsonl, which is read back here). xfarm runs as
// docs/bench.md's cross-check starts it: one c2s, PLAIN in the clear (Tsung
// does not follow <see-other-host/>); Prosody and ejabberd as run.sh starts
// them. Idle N, then a login ramp and a chat ramp, each stopped at its first
// failed step, as the simulator's ramps are.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CHAT_P99_MS, LOGIN_P99_MS, round } from "./bench-steps.js";
import type { FarmModules, TargetName } from "./bench-targets.js";
import { CLI, Farm } from "../sim/local-farm.js";
import { median, type CpuMicros } from "../sim/process-tree.js";

/** Where run.sh appends each run's summary (parse.py). */
const SUMMARIES = "/tmp/anchors/runs/summary.jsonl";
const PROGRESS_EVERY_MS = 30_000;

export interface TsungOptions {
  /** The folder holding run.sh. */
  dir: string;
  idle: number;
  loginRates: number[];
  msgRates: number[];
  /** run.sh's DUR (login window) and MSG_WINDOW, seconds. */
  loginSeconds: number;
  msgSeconds: number;
}

/** One run.sh measurement, from its summary; cpu_us as the simulator's steps give it (µs per login or per message). */
export interface TsungStep {
  offered: number;
  achieved: number;
  p50_ms: number | null;
  p99_ms: number | null;
  /** Messages: delivered / expected, %. */
  delivered_pct?: number;
  server_cpu_pct: number | null;
  cpu_us: CpuMicros | null;
  errors: number;
  passed: boolean;
}

export interface TsungFigures {
  /** Why nothing was measured (no tsung on PATH, no run.sh); null when it ran. */
  absent: string | null;
  idle: TsungIdle | null;
  login: TsungStep[];
  msg: TsungStep[];
  failures: string[];
}

/**
 * run.sh's idle figure is read on a plateau of at least 98 % of the asked
 * sessions. Tsung's launcher falls behind its arrival rate when both cores
 * are busy, and then logs in fewer by the arrival phase's end (18,135 of
 * 19,000 for xfarm, 18,723 for ejabberd in one run): the figure is then
 * read the same way on a plateau of 98 % of the sessions Tsung did log in
 * (`read_on` "started"). Each session stays longer after its login than
 * the arrival phase lasts (run.sh's hold: the phase's fill time and 40 s),
 * so all of them are held at once for a while. Without even that plateau
 * (sessions dropped), held and kb_per_session are null.
 */
export interface TsungIdle {
  asked: number;
  /** Sessions Tsung logged in. */
  started: number;
  held: number | null;
  kb_per_session: number | null;
  /** Whose 98 % the plateau was read on: the sessions asked (run.sh's own figure) or those Tsung logged in. */
  read_on: "asked" | "started" | null;
}

/**
 * run.sh's idle figure over the sessions Tsung logged in: the last ten of
 * its once-a-second samples (mon.tsv: time, CPU ticks, RSS KB, open files)
 * whose open files, over the base, reach 98 % of `started`; RSS over the
 * base per session held there, the median of each.
 */
export function plateauOfStarted(s: Summary, started: number): { held: number; kb: number } | null {
  if (!s.runDir || !(started > 0)) return null;
  const file = path.join(s.runDir, "mon.tsv");
  if (!fs.existsSync(file)) return null;
  const baseRss = Number(s.BASE_RSS_KB);
  const baseFds = Number(s.BASE_FDS);
  const samples = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((line) => line.split(/\s+/).map(Number))
    .filter((x) => x.length >= 4 && x.every(Number.isFinite));
  const tail = samples.filter((x) => x[3]! - baseFds >= 0.98 * started).slice(-10);
  if (!tail.length) return null;
  const held = median(tail.map((x) => x[3]!)) - baseFds;
  return { held, kb: round((median(tail.map((x) => x[2]!)) - baseRss) / held, 2) };
}

/** Why Tsung cannot run here, or null. */
export function tsungAbsent(dir: string): string | null {
  if (spawnSync("sh", ["-c", "command -v tsung"]).status !== 0) return "no tsung on PATH";
  if (!fs.existsSync(path.join(dir, "run.sh"))) return `no run.sh in ${dir}`;
  return null;
}

/** A run.sh summary, and the folder of its run (its samples). */
type Summary = Record<string, unknown> & { SERVER: string; SCENARIO: string; runDir?: string };

/** run.sh names its run folder in its first line: `[HHMMSS-SERVER-SCENARIO-ARG] tsung: …`. */
const RUN_ID = /^\[(\d{6}-[\w.-]+)\] tsung:/;

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} bench: tsung: ${line}\n`);
}

/** Runs `run.sh SERVER SCENARIO ARG`; returns the summary it appended, or throws. */
async function runSh(o: TsungOptions, server: string, scenario: string, arg: number, env: Record<string, string>): Promise<Summary> {
  const from = fs.existsSync(SUMMARIES) ? fs.statSync(SUMMARIES).size : 0;
  const t0 = Date.now();
  const proc = spawn("bash", [path.join(o.dir, "run.sh"), server, scenario, String(arg)], {
    cwd: o.dir,
    env: { ...process.env, DUR: String(o.loginSeconds), MSG_WINDOW: String(o.msgSeconds), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let tail = "";
  let runId: string | undefined;
  const onLine = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      tail = line;
      runId ??= RUN_ID.exec(line)?.[1];
      if (!line.startsWith("{")) log(line);
    }
  };
  proc.stdout.on("data", onLine);
  proc.stderr.on("data", onLine);
  const ticker = setInterval(() => log(`${server} ${scenario} ${arg}: ${Math.round((Date.now() - t0) / 1000)} s`), PROGRESS_EVERY_MS);
  const code = await new Promise<number | null>((resolve) => proc.on("exit", resolve));
  clearInterval(ticker);
  const added = fs.existsSync(SUMMARIES) ? fs.readFileSync(SUMMARIES, "utf8").slice(from).split("\n").filter(Boolean) : [];
  const mine = added.map((l) => JSON.parse(l) as Summary).filter((s) => s.SERVER === server && s.SCENARIO === scenario);
  if (!mine.length) throw new Error(`run.sh ${server} ${scenario} ${arg} exited ${code} without a summary: ${tail}`);
  return { ...mine.at(-1)!, ...(runId && { runDir: path.join(path.dirname(SUMMARIES), runId) }) };
}

interface Latency {
  n: number;
  p50: number | null;
  p99: number | null;
}

/** CPU µs per unit from a summary: the server's % of a core over the sustained window / units per second; per process by title. */
function cpuMicros(s: Summary, perSecond: number): TsungStep["cpu_us"] {
  const pct = s.server_cpu_pct as number | undefined;
  if (pct === undefined || !(perSecond > 0)) return null;
  const us = (p: number) => Math.round(((p / 100) * 1e6) / perSecond);
  const by: Record<string, number> = {};
  for (const [cmd, d] of Object.entries((s.procs ?? {}) as Record<string, { cpu_pct?: number }>)) {
    if (d.cpu_pct === undefined) continue;
    const name = cmd.startsWith("xfarm ") ? cmd.slice(6).split(" ")[0]! : cmd.split(" ")[0]!;
    by[name] = (by[name] ?? 0) + us(d.cpu_pct);
  }
  return { total: us(pct), by };
}

/**
 * run.sh's sustained rate averages Tsung's 10 s intervals that reach 80 % of
 * the best one, partial ones at the phase's ends included: here it reads 87-89 %
 * of the offered rate for a server far from its knee (xfarm at 200/s, p99
 * 67 ms; ejabberd at 400/s, p99 37 ms), so the simulator's 90 % would fail
 * every step. A server that falls behind shows in p99 and in errors.
 */
const TSUNG_ACHIEVED_SHARE = 0.8;
/** Errors (closed connections, timeouts) of all that Tsung started, at most. */
const TSUNG_ERROR_SHARE = 0.02;

function step(s: Summary, offered: number, achieved: number, lat: Latency, limitMs: number, delivered?: number): TsungStep {
  const errors = Object.values((s.errors ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  const started = lat.n + errors;
  return {
    offered,
    achieved,
    p50_ms: lat.p50,
    p99_ms: lat.p99,
    ...(delivered === undefined ? {} : { delivered_pct: round(delivered, 2) }),
    server_cpu_pct: (s.server_cpu_pct as number | undefined) ?? null,
    cpu_us: cpuMicros(s, achieved),
    errors,
    passed:
      lat.p99 !== null &&
      lat.p99 <= limitMs &&
      achieved >= TSUNG_ACHIEVED_SHARE * offered &&
      errors <= TSUNG_ERROR_SHARE * started &&
      (delivered === undefined || delivered >= 98),
  };
}

/** The run.sh environment for one server: xfarm as the cross-check starts it, on ports of its own. */
async function serverEnv(name: TargetName, modules: FarmModules): Promise<{ server: string; env: (first: boolean) => Record<string, string>; done: () => void }> {
  if (name !== "xfarm") return { server: name, env: () => ({}), done: () => {} };
  // A config of free ports and a data directory of its own; the farm itself is started by run.sh.
  const farm = await Farm.create({ c2sCount: 1, logLevel: "info", modules, c2s: { require_tls: false, allow_unencrypted_plain_auth: true, max_connections: 19_000 } });
  const node = JSON.stringify(process.execPath);
  const cli = `${node} ${JSON.stringify(CLI)}`;
  const cfg = JSON.stringify(farm.configFile);
  return {
    server: "farm",
    // Accounts once, in the first run: every run starts a fresh farm on the same store.
    env: (first) => ({
      FARM_DIR: path.resolve(path.dirname(CLI), "../.."),
      FARM_PORT: String(farm.c2sPorts[0]!.port),
      FARM_START: `${cli} start --config ${cfg}`,
      FARM_MKUSERS: first ? `${cli} sim --config ${cfg} --create-accounts --users $USERS --password 'pass%d'` : "",
    }),
    done: () => farm.cleanup(),
  };
}

/** `only`: the bench's --only; idle, login and chat pick Tsung's runs too. */
/** `modules`: the farm's sm modules, as the simulator's steps measure it. */
export async function measureTsung(name: TargetName, o: TsungOptions, only: readonly string[], modules: FarmModules): Promise<TsungFigures> {
  const f: TsungFigures = { absent: tsungAbsent(o.dir), idle: null, login: [], msg: [], failures: [] };
  if (f.absent) return f;
  const { server, env, done } = await serverEnv(name, modules);
  let first = true;
  const run = async (scenario: string, arg: number) => {
    const s = await runSh(o, server, scenario, arg, env(first));
    first = false;
    return s;
  };
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      f.failures.push(`tsung ${what}: ${(err as Error).message}`);
      log(`${name} ${what} failed: ${(err as Error).message}`);
    }
  };
  try {
    if (o.idle > 0 && only.includes("idle")) {
      await attempt(`idle ${o.idle}`, async () => {
        const s = await run("idle", o.idle);
        const started = (s.tr_login as Latency | undefined)?.n ?? 0;
        const held = (s.held_sessions as number | undefined) ?? null;
        const ofStarted = held === null ? plateauOfStarted(s, started) : null;
        f.idle = ofStarted
          ? { asked: o.idle, started, held: ofStarted.held, kb_per_session: ofStarted.kb, read_on: "started" }
          : { asked: o.idle, started, held, kb_per_session: (s.kb_per_session as number | undefined) ?? null, read_on: held === null ? null : "asked" };
        if (f.idle.held === null) {
          f.failures.push(`tsung idle ${o.idle}: no plateau of 98 % of the sessions (Tsung logged in ${started})`);
          log(`${name} idle ${o.idle}: no plateau, Tsung logged in ${started} of ${o.idle}`);
        } else {
          const short = f.idle.read_on === "started" ? ` (Tsung logged in no more than ${started} of ${o.idle}: read on those)` : "";
          log(`${name} idle ${o.idle}: ${f.idle.held} held of ${started} logged in, ${f.idle.kb_per_session ?? "-"} KB/session${short}`);
        }
      });
    }
    await attempt("login", async () => {
      if (!only.includes("login")) return;
      for (const rate of o.loginRates) {
        const s = await run("login", rate);
        const st = step(s, rate, (s.achieved_logins_per_s as number | undefined) ?? 0, s.tr_login as Latency, LOGIN_P99_MS);
        f.login.push(st);
        log(`${name} login ${rate}/s: ${st.achieved}/s, p99 ${st.p99_ms} ms, cpu µs/login ${st.cpu_us?.total ?? "-"}${st.passed ? "" : " (past the knee)"}`);
        if (!st.passed) break;
      }
    });
    await attempt("msg", async () => {
      if (!only.includes("chat")) return;
      for (const rate of o.msgRates) {
        const s = await run("msg", rate);
        const lat = s.xmpp_msg_latency as Latency;
        const expected = (s.msgs_sent_expected as number | undefined) ?? 0;
        const st = step(s, rate, (s.achieved_msgs_per_s as number | undefined) ?? 0, lat, CHAT_P99_MS, expected ? (lat.n / expected) * 100 : 0);
        f.msg.push(st);
        log(`${name} msg ${rate}/s: ${st.achieved}/s, ${st.delivered_pct} % delivered, p99 ${st.p99_ms} ms, cpu µs/msg ${st.cpu_us?.total ?? "-"}${st.passed ? "" : " (past the knee)"}`);
        if (!st.passed) break;
      }
    });
  } finally {
    done();
  }
  return f;
}
