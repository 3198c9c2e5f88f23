// The three measurements of `npm run bench`, each one simulator run against
// a started server, as ../shared/anchors/run.sh takes them with Tsung:
//
// - idle: N users log in at 250/s and stay; once every one is in (a sync
//   point), they stay 30 s and the server's RSS (every process of it) is
//   sampled over the last 10 s; KB per session = (median of those samples −
//   RSS before the run) / held.
// - login: users arrive at R/s for a window and close after the roster
//   reply; the achieved rate, p50/p99 login latency and server CPU, in all
//   and in µs per login for each server process.
// - chat: 1,000 users log in, wait for each other, then send stamped
//   100-byte messages to random online users at R/s in all; delivered
//   share, p50/p99 delivery latency, CPU µs per message delivered.
//
// A ramp runs one rate after another until a step fails its criterion.
import { cpuMicrosPer, cpuPercent, median, TreeSampler, type CpuMicros } from "../sim/process-tree.js";
import type { BenchTarget } from "./bench-targets.js";
import { runSim, type RunOptions } from "../sim/runner.js";
import type { SimResults } from "../sim/results.js";
import { defaultScenario, finish, type Action, type Mechanism, type Scenario, type Security } from "../sim/scenario.js";

export interface StepEnv {
  /** One password for every account: the simulator's SCRAM cache then hits (as real clients' stored keys do). */
  password: string;
  /** Loopback source addresses, so tens of thousands of short logins do not run out of ephemeral ports. */
  sources: string[];
  workers: number;
  progress: RunOptions["progress"];
}

export const IDLE_RATE = 250;
const SETTLE_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function scenario(target: BenchTarget, env: StepEnv, s: {
  security: Security;
  mechanism: Mechanism;
  users: number;
  /** The first account's number (default 1). */
  first?: number;
  rate: number;
  seconds: number;
  actions: Action[];
  duration: number;
  poisson?: boolean;
}): Scenario {
  const sc = defaultScenario();
  sc.server = { ...sc.server, host: "127.0.0.1", ports: [...target.ports], domain: target.domain, security: s.security, mechanism: s.mechanism, sources: env.sources };
  sc.users = { ...sc.users, count: s.users, first: s.first ?? 1, name: "user%d", password: env.password };
  sc.arrival = [{ rate: s.rate, duration: s.seconds }];
  sc.session = { ...sc.session, keepalive: 0, login_timeout: 60 };
  sc.actions = s.actions;
  sc.run = { ...sc.run, duration: s.duration, workers: env.workers, interarrival: s.poisson ? "poisson" : "uniform" };
  return finish(sc);
}

export interface IdleFigure {
  security: Security;
  /** The sessions said XEP-0352 <inactive/> after their roster. */
  inactive: boolean;
  mechanism: Mechanism;
  asked: number;
  held: number;
  base_rss_mb: number;
  rss_mb: number;
  /** null: no session was held, nothing to divide by. */
  kb_per_session: number | null;
  processes: number;
  login_p50_ms: number;
  login_p99_ms: number;
  errors: number;
  errors_by_kind: Record<string, number>;
}

/** Seconds at the end of an idle hold whose RSS samples make the figure. */
const IDLE_TAIL_S = 10;

/**
 * `hold`: seconds the sessions stay after the last login; RSS is sampled over
 * its last IDLE_TAIL_S seconds (from the 3rd on at the earliest). `inactive`: each says XEP-0352 <inactive/> after its roster, so
 * that the figure includes what client state indication costs the server.
 */
export async function measureIdle(target: BenchTarget, env: StepEnv, n: number, security: Security, hold: number, mechanism: Mechanism, inactive = false): Promise<IdleFigure> {
  const sampler = new TreeSampler(target.pid);
  await sleep(SETTLE_MS);
  const base = median(sampler.samples.slice(-3).map((s) => s.rssKb));
  const fill = Math.ceil(n / IDLE_RATE);
  const sc = scenario(target, env, {
    security,
    mechanism,
    users: n,
    rate: IDLE_RATE,
    seconds: fill,
    poisson: true,
    actions: [
      { type: "presence" },
      { type: "roster" },
      ...(inactive ? [{ type: "inactive" } as const] : []),
      { type: "sync", timeout: 300 },
      { type: "think", seconds: hold + 5, random: false },
      { type: "close" },
    ],
    duration: fill + 300 + hold + 60,
  });
  const r = await runSim(sc, { progress: env.progress });
  sampler.stop();
  const released = r.syncs[0]?.released_s;
  const started = Date.parse(r.started);
  let held = 0;
  let rss = NaN;
  if (released !== null && released !== undefined) {
    // The hold's last IDLE_TAIL_S seconds (from the 3rd at the earliest), as run.sh takes the median of the
    // plateau's last 10 samples: the idle state a farm settles in (config idle_gc), not the login burst's wake.
    const to = released + hold;
    const from = Math.max(released + 3, to - IDLE_TAIL_S);
    const rows = r.series.filter((row) => row.t >= from && row.t <= to);
    const samples = sampler.between(started + from * 1000, started + to * 1000);
    if (rows.length && samples.length) {
      held = Math.round(median(rows.map((row) => row.sessions)));
      rss = median(samples.map((s) => s.rssKb));
    }
  }
  return {
    security,
    inactive,
    mechanism,
    asked: n,
    held,
    base_rss_mb: round(base / 1024, 1),
    rss_mb: round(rss / 1024, 1),
    kb_per_session: held > 0 && Number.isFinite(rss) ? round((rss - base) / held, 2) : null,
    processes: sampler.samples.at(-1)?.procs ?? 0,
    login_p50_ms: r.latency_ms.login.p50,
    login_p99_ms: r.latency_ms.login.p99,
    errors: r.totals.errors + r.totals.login_failed,
    errors_by_kind: r.totals.errors_by_kind,
  };
}

/** What every rate step reports besides its own counts. */
interface StepOutcome {
  p50_ms: number;
  p99_ms: number;
  /** The server's CPU over the step's window, % of one core (all its processes). */
  server_cpu_pct: number;
  /**
   * CPU µs (user + system) per login, or per message delivered, over the
   * step's window: the whole server (`total`, and of it the `system` time)
   * and each process by name (processName: c2s-1, sm-1, router-1, start;
   * beam.smp, lua…). Null when nothing was done in the window.
   */
  cpu_us: CpuMicros | null;
  errors_by_kind: Record<string, number>;
  /** Whether the server kept up: the step's own rule, below. */
  passed: boolean;
}

/** Passed: p99 ≤ 100 ms, ≥ 90 % of the offered rate achieved, ≤ 2 % failed. */
export interface LoginStep extends StepOutcome {
  security: Security;
  mechanism: Mechanism;
  offered: number;
  achieved: number;
  logins: number;
  failed: number;
}

export const LOGIN_P99_MS = 100;

/**
 * One login step: `rate` × `seconds` users from account number `first`. Each
 * step of a ramp takes accounts no earlier step used, so that every login is a
 * first one: a server that remembers a verified password (xfarm's PLAIN, for an
 * hour) gains nothing from an earlier step.
 */
export async function measureLogin(target: BenchTarget, env: StepEnv, rate: number, seconds: number, security: Security, mechanism: Mechanism, first: number): Promise<LoginStep> {
  const sampler = new TreeSampler(target.pid);
  const users = rate * seconds;
  const sc = scenario(target, env, {
    security,
    mechanism,
    users,
    first,
    rate,
    seconds,
    poisson: true,
    actions: [{ type: "presence" }, { type: "roster" }, { type: "close" }],
    duration: seconds + 90,
  });
  const r = await runSim(sc, { progress: env.progress });
  sampler.stop();
  const started = Date.parse(r.started);
  // Seconds 2 … `seconds` of the arrival window: the first second is ramp-up.
  const window = r.series.filter((row) => row.t >= 2 && row.t <= seconds);
  const achieved = window.length ? window.reduce((a, row) => a + row.logins, 0) / window.length : 0;
  const inWindow = sampler.spanning(started + 1000, started + seconds * 1000);
  const cpu = cpuPercent(inWindow);
  const failed = r.totals.login_failed;
  const p99 = r.latency_ms.login.p99;
  return {
    security,
    mechanism,
    offered: rate,
    achieved: round(achieved, 1),
    logins: r.totals.logged_in,
    failed,
    p50_ms: r.latency_ms.login.p50,
    p99_ms: p99,
    server_cpu_pct: round(cpu, 1),
    cpu_us: cpuMicrosPer(inWindow, achieved),
    errors_by_kind: r.totals.errors_by_kind,
    passed: r.totals.logged_in > 0 && p99 <= LOGIN_P99_MS && achieved >= 0.9 * rate && failed <= 0.02 * users,
  };
}

/** Passed: p99 ≤ 50 ms and ≥ 98 % delivered. */
export interface ChatStep extends StepOutcome {
  offered: number;
  users: number;
  sent: number;
  received: number;
  /** received / sent, %. */
  delivered_pct: number;
  /** Messages received per second over the chat window. */
  achieved: number;
}

export const CHAT_P99_MS = 50;
const CHAT_LOGIN_RATE = 250;

export async function measureChat(target: BenchTarget, env: StepEnv, rate: number, users: number, seconds: number): Promise<ChatStep> {
  const sampler = new TreeSampler(target.pid);
  const fill = Math.ceil(users / CHAT_LOGIN_RATE);
  const sc = scenario(target, env, {
    security: "none",
    mechanism: "PLAIN",
    users,
    rate: CHAT_LOGIN_RATE,
    seconds: fill,
    actions: [
      { type: "presence" },
      { type: "roster" },
      { type: "sync", timeout: 120 },
      { type: "chat", to: "online", rate: 0, total_rate: rate, duration: seconds, count: 0, size: 100 },
      { type: "sync", timeout: 30 },
      { type: "close" },
    ],
    duration: fill + 120 + seconds + 60,
  });
  const r: SimResults = await runSim(sc, { progress: env.progress });
  sampler.stop();
  const started = Date.parse(r.started);
  const chatFrom = r.syncs[0]?.released_s ?? 0;
  const chatTo = chatFrom + seconds;
  const inWindow = sampler.spanning(started + chatFrom * 1000, started + chatTo * 1000);
  const cpu = cpuPercent(inWindow);
  const sent = r.totals.msgs_sent;
  const received = r.totals.msgs_received;
  const delivered = sent ? (received / sent) * 100 : 0;
  const p99 = r.latency_ms.message.p99;
  return {
    offered: rate,
    users,
    sent,
    received,
    delivered_pct: round(delivered, 2),
    achieved: round(received / seconds, 1),
    p50_ms: r.latency_ms.message.p50,
    p99_ms: p99,
    server_cpu_pct: round(cpu, 1),
    cpu_us: chatMicros(sampler, started, r, chatTo),
    errors_by_kind: r.totals.errors_by_kind,
    passed: sent > 0 && delivered >= 98 && p99 <= CHAT_P99_MS,
  };
}

/**
 * CPU µs per message delivered: the server's CPU from the chat's start until
 * every message had arrived (the second sync point; the window's end if it
 * never did) over the messages received, so that a step past the knee, whose
 * messages arrive after the window, is charged for them all.
 */
function chatMicros(sampler: TreeSampler, started: number, r: SimResults, chatTo: number): ChatStep["cpu_us"] {
  const from = r.syncs[0]?.released_s ?? 0;
  const to = Math.max(chatTo, r.syncs[1]?.released_s ?? chatTo);
  return cpuMicrosPer(sampler.spanning(started + from * 1000, started + to * 1000), r.totals.msgs_received / (to - from));
}

/** Runs `step` for each rate until one fails; returns every step run. */
export async function ramp<T extends { passed: boolean }>(rates: number[], step: (rate: number) => Promise<T>, between: () => Promise<void>): Promise<T[]> {
  const out: T[] = [];
  for (const rate of rates) {
    const s = await step(rate);
    out.push(s);
    if (!s.passed) break;
    await between();
  }
  return out;
}

/** The best step that passed (its achieved rate is the figure). */
export function knee<T extends { passed: boolean; achieved: number }>(steps: T[]): T | null {
  return steps.filter((s) => s.passed).sort((a, b) => b.achieved - a.achieved)[0] ?? null;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
