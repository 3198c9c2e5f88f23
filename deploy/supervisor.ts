// `xfarm start`: a whole farm on one box — router, sms and c2s processes —
// each a child process restarted when it dies or stays unready (its /readyz),
// given up on when it fails the same way at start-up three times running;
// alerts go to a webhook. SIGINT/SIGTERM stops them all, SIGHUP makes the
// front ends reload their certificate. docs/metrics.md.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify } from "smol-toml";
import { TlsCredentials } from "../lib/tls-credentials.js";
import { ADMIN_NAME } from "../lib/link/admin-link.js";
import { routerAddresses, secretsFile, type Config } from "../lib/config.js";
import { createLogger, type Logger } from "../lib/log.js";
import { mallocEnv } from "../lib/malloc.js";
import { EX_CONFIG } from "../lib/process-lifecycle.js";
import { openStoreAtStart } from "../xdb-sql/open-store.js";
import { Alerts } from "./alerts.js";
import { askReady, reachableHost, type Readiness, type Unready } from "./child-health.js";

const CLI = fileURLToPath(new URL("../cli/xfarm.js", import.meta.url));
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A child that ran this long is healthy again: its next restart is quick. */
const HEALTHY_AFTER_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** How often each child's /readyz is asked. */
const READY_POLL_MS = 2_000;
/** Start-up failures in a row, naming the same config key, after which a child is given up on. */
const GIVE_UP_AFTER = 3;

interface ChildSpec {
  name: string;
  role: "router" | "sm" | "c2s";
  env: Record<string, string>;
  /** Where it serves /metrics and /readyz; 0: nowhere, then running is all the supervisor knows. */
  metricsPort: number;
}

/** A metrics port stepped for the n-th process of a role, as the other ports are; 0 stays 0 (none). */
function metricsPort(base: number, offset: number): number {
  return base === 0 ? 0 : base + offset;
}

export function farmChildren(config: Config): ChildSpec[] {
  const m = config.metrics;
  const specs: ChildSpec[] = [];
  if (config.start.router_count === 1) specs.push({ name: config.router.name, role: "router", env: {}, metricsPort: m.router_port });
  else {
    // An active/passive pair on this box: router-1 on router.port, router-2 on the next.
    const port = (i: number) => config.router.port + i;
    const peers = config.start.router_peers;
    if (peers.length !== 0 && peers.length !== 2) throw new Error("config start.router_peers must name two addresses, or none");
    for (const i of [0, 1]) {
      specs.push({
        name: `router-${i + 1}`,
        role: "router",
        env: {
          XFARM_ROUTER_NAME: `router-${i + 1}`,
          XFARM_ROUTER_PORT: String(port(i)),
          XFARM_ROUTER_PEER: peers[i] ?? `127.0.0.1:${port(1 - i)}`,
          XFARM_ROUTER_COMPONENT_PORT: config.router.component_port ? String(config.router.component_port + i) : "0",
          XFARM_METRICS_ROUTER_PORT: String(metricsPort(m.router_port, i)),
          XFARM_CONSOLE_PORT: config.console.port ? String(config.console.port + i) : "0",
        },
        metricsPort: metricsPort(m.router_port, i),
      });
    }
  }
  if (config.start.sm_count === 1) specs.push({ name: config.sm.name, role: "sm", env: {}, metricsPort: m.sm_port });
  else {
    for (let i = 1; i <= config.start.sm_count; i++) {
      const port = metricsPort(m.sm_port, i - 1);
      specs.push({ name: `sm-${i}`, role: "sm", env: { XFARM_SM_NAME: `sm-${i}`, XFARM_METRICS_SM_PORT: String(port) }, metricsPort: port });
    }
  }
  for (let i = 0; i < config.start.c2s_count; i++) {
    const step = i * config.start.port_step;
    specs.push({
      name: `c2s-${i + 1}`,
      role: "c2s",
      env: {
        XFARM_C2S_NAME: `c2s-${i + 1}`,
        XFARM_C2S_PORT: String(config.c2s.port + step),
        XFARM_C2S_TLS_PORT: config.c2s.tls_port ? String(config.c2s.tls_port + step) : "0",
        XFARM_METRICS_C2S_PORT: String(metricsPort(m.c2s_port, step)),
      },
      metricsPort: metricsPort(m.c2s_port, step),
    });
  }
  return specs;
}

/** Generates a link secret for every component that has none, kept in <data_dir>/secrets.toml. */
function ensureSecrets(config: Config, names: string[], log: Logger): void {
  const missing = names.filter((n) => !config.secrets.get(n));
  if (missing.length === 0) return;
  const file = secretsFile(config.data_dir);
  const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const added: Record<string, string> = {};
  for (const n of missing) added[n] = randomBytes(24).toString("base64url");
  fs.writeFileSync(file, existing + stringify(added) + "\n", { mode: 0o600 });
  for (const [n, secret] of Object.entries(added)) config.secrets.set(n, secret);
  log.info({ file, components: missing }, "generated link secrets");
}

/** A child and what the supervisor knows of it. */
interface Child {
  spec: ChildSpec;
  proc: ChildProcess | null;
  startedAt: number;
  /** Quick exits in a row, for the backoff. */
  failures: number;
  /** The start-up failure its current process reported over IPC, if any. */
  reported: { key: string; message: string } | null;
  /** Start-up failures in a row naming the same key. */
  streak: { key: string; count: number } | null;
  /** Since when it has been unready, or down (exited, or not ready yet); null while ready. */
  unreadySince: number | null;
  downSince: number | null;
  downAlerted: boolean;
  ready: boolean;
  /** Why the supervisor itself stopped it, for the restart's log line and alert. */
  stoppedFor: string | null;
  /** Its last answer when unready, for the logs and alerts. */
  lastUnready: Unready | null;
  gaveUp: boolean;
}

export async function runFarm(config: Config, configFile: string | null, env: Record<string, string>): Promise<void> {
  let extraEnv = env;
  const log = createLogger("supervisor", config.log_level, config.log_format);
  fs.mkdirSync(config.data_dir, { recursive: true });
  const specs = farmChildren(config);
  // Only the front ends: jemalloc saves on their TLS clients, and costs an
  // sm or a router 12-15 MB more at rest for nothing measured (docs/bench.md).
  const { env: c2sEnv, allocator } = mallocEnv(config.start.malloc, process.env);
  log.info({ malloc: allocator, choice: config.start.malloc }, "allocator of the front ends chosen");
  // Routers of a pair link to each other with their own secrets; a lone router needs none.
  const linking = specs.filter((s) => s.role !== "router" || config.start.router_count > 1).map((s) => s.name);
  ensureSecrets(config, [...linking, ADMIN_NAME], log);
  if (config.start.router_count > 1) {
    extraEnv = { ...extraEnv, XFARM_ROUTER_ADDRESSES: routerAddresses(config).join(",") };
  }
  // Done once here so the children never race to create them.
  await TlsCredentials.load(config, log);
  await (await openStoreAtStart(config.db)).close();

  const alerts = new Alerts(config.start.alert_webhook, log);
  const healthHost = reachableHost(config.metrics.host);
  const unreadyMs = config.start.unready_restart_after * 1000;
  const downMs = config.start.alert_down_after * 1000;
  let stopping = false;
  const children: Child[] = specs.map((spec) => ({
    spec,
    proc: null,
    startedAt: 0,
    failures: 0,
    reported: null,
    streak: null,
    unreadySince: null,
    downSince: Date.now(),
    downAlerted: false,
    ready: false,
    stoppedFor: null,
    lastUnready: null,
    gaveUp: false,
  }));

  const start = (child: Child) => {
    const spec = child.spec;
    const args = [CLI, spec.role, ...(configFile ? ["--config", configFile] : [])];
    // The IPC slot carries a start-up failure's key (lib/process-lifecycle.ts, failStartup).
    const proc = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...(spec.role === "c2s" ? c2sEnv : process.env), ...extraEnv, ...spec.env } });
    child.proc = proc;
    child.startedAt = Date.now();
    child.reported = null;
    child.stoppedFor = null;
    child.unreadySince = Date.now();
    // Without a metrics port, running is all that is known: it counts as ready.
    child.ready = spec.metricsPort === 0;
    if (child.ready) child.downSince = null;
    log.info({ child: spec.name, childPid: proc.pid }, "started");
    proc.on("message", (msg: { type?: unknown; key?: unknown; message?: unknown }) => {
      if (msg?.type === "startup-failure" && typeof msg.key === "string") child.reported = { key: msg.key, message: String(msg.message ?? "") };
    });
    proc.on("exit", (code, signal) => exited(child, proc, code, signal));
  };

  const exited = (child: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (child.proc !== proc) return;
    child.proc = null;
    child.ready = false;
    child.downSince ??= Date.now();
    if (stopping) return;
    const name = child.spec.name;
    if (code === EX_CONFIG) {
      const key = child.reported?.key ?? "(none named)";
      const message = child.reported?.message ?? "exited with code 78 without saying why";
      child.streak = child.streak?.key === key ? { key, count: child.streak.count + 1 } : { key, count: 1 };
      if (child.streak.count >= GIVE_UP_AFTER) return giveUp(child, key, message);
    } else child.streak = null;
    const healthy = Date.now() - child.startedAt > HEALTHY_AFTER_MS;
    child.failures = healthy ? 0 : child.failures + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.max(0, child.failures - 1));
    const reason = child.stoppedFor ?? (code === EX_CONFIG ? `failed at start-up (${child.reported?.key ?? "no key"}): ${child.reported?.message ?? ""}` : signal ? `killed by ${signal}` : `exited with code ${code}`);
    log.error({ child: name, code, signal, reason, restartInMs: delay }, "child exited; restarting");
    alerts.send({ event: "restarted", child: name, role: child.spec.role, reason });
    setTimeout(() => !stopping && start(child), delay);
  };

  const giveUp = (child: Child, key: string, message: string) => {
    child.gaveUp = true;
    const name = child.spec.name;
    log.error({ child: name, key, reason: message, failures: GIVE_UP_AFTER }, `giving up on ${name}: it failed at start-up ${GIVE_UP_AFTER} times in a row on ${key} (${message}); fix that key and start it again`);
    alerts.send({ event: "gave-up", child: name, role: child.spec.role, reason: message, key });
    // The farm serves without a front end or an sm of several, but not without every one of a role.
    const lost = (["router", "sm", "c2s"] as const).find((role) => children.filter((c) => c.spec.role === role).every((c) => c.gaveUp));
    if (lost) {
      log.fatal({ role: lost }, `every ${lost} process was given up on: the farm cannot serve; stopping it`);
      void stop("SIGTERM", EX_CONFIG);
    }
  };

  /** Asks every running child with a metrics port whether it is ready; restarts one unready too long, alerts on one down too long. */
  const poll = async () => {
    const now = Date.now();
    const answers = await Promise.all(
      children.map((c): Promise<Readiness | null> => (c.proc?.pid && c.spec.metricsPort && !c.stoppedFor ? askReady(healthHost, c.spec.metricsPort, c.proc.pid) : Promise.resolve(null))),
    );
    if (stopping) return;
    children.forEach((c, i) => {
      const answer = answers[i];
      if (answer === null || answer === undefined || !c.proc) return;
      if (answer.ready) {
        if (!c.ready) log.info({ child: c.spec.name }, "ready");
        c.ready = true;
        c.unreadySince = null;
        c.downSince = null;
        c.downAlerted = false;
        c.streak = null;
        return;
      }
      if (c.ready) log.warn({ child: c.spec.name, cause: answer.cause, reason: answer.reason }, "not ready");
      c.ready = false;
      c.unreadySince ??= now;
      c.downSince ??= now;
      c.lastUnready = answer;
    });
    const routerReady = children.some((c) => c.spec.role === "router" && c.ready);
    for (const c of children) {
      if (c.gaveUp) continue;
      if (c.downSince !== null && !c.downAlerted && downMs > 0 && now - c.downSince > downMs) {
        c.downAlerted = true;
        const reason = c.proc ? `not ready for ${Math.round((now - c.downSince) / 1000)} s: ${c.lastUnready?.reason ?? "no answer yet"}` : `not running for ${Math.round((now - c.downSince) / 1000)} s`;
        log.error({ child: c.spec.name, reason }, "child down");
        alerts.send({ event: "down", child: c.spec.name, role: c.spec.role, reason });
      }
      if (!restartable(c, routerReady, now)) continue;
      const reason = `not ready for ${Math.round((now - c.unreadySince!) / 1000)} s: ${c.lastUnready?.reason}`;
      log.warn({ child: c.spec.name, reason }, "restarting an unready child");
      c.stoppedFor = reason;
      const proc = c.proc!;
      // One that answers is stopped cleanly, its clients told; a hung one would not run its handler.
      if (c.lastUnready?.cause === "unresponsive") proc.kill("SIGKILL");
      else {
        proc.kill("SIGTERM");
        setTimeout(() => c.proc === proc && proc.kill("SIGKILL"), STOP_TIMEOUT_MS).unref();
      }
    }
  };
  /**
   * Unready for longer than start.unready_restart_after, and a restart may
   * help: not a router (its readiness waits on its peer or the database),
   * not waiting for the database, and not waiting for a router that is
   * itself not ready; a hung child (no answer) always qualifies.
   */
  const restartable = (c: Child, routerReady: boolean, now: number): boolean => {
    if (unreadyMs === 0 || !c.proc || c.ready || c.stoppedFor || c.unreadySince === null || now - c.unreadySince < unreadyMs) return false;
    const cause = c.lastUnready?.cause;
    if (cause === "unresponsive") return true;
    return c.spec.role !== "router" && cause !== "store" && routerReady;
  };
  const poller = setInterval(() => void poll(), READY_POLL_MS);
  for (const child of children) start(child);

  const stop = async (signal: NodeJS.Signals, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    clearInterval(poller);
    log.info({ signal }, "stopping the farm");
    const running = () => children.map((c) => c.proc).filter((p) => p !== null);
    const killer = setTimeout(() => running().forEach((p) => p.kill("SIGKILL")), STOP_TIMEOUT_MS);
    // Front ends first, so clients get a clean stream end and the sm sends their unavailable presence.
    for (const role of ["c2s", "sm", "router"] as const) {
      const procs = children.filter((c) => c.spec.role === role).map((c) => c.proc).filter((p) => p !== null);
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once("exit", r)))));
    }
    clearTimeout(killer);
    await alerts.flush();
    log.info("farm stopped");
    process.exit(exitCode);
  };
  process.on("SIGINT", (s) => void stop(s));
  process.on("SIGTERM", (s) => void stop(s));
  process.on("SIGHUP", () => {
    if (stopping) return;
    const c2s = children.filter((c) => c.spec.role === "c2s").map((c) => c.proc).filter((p) => p !== null);
    log.info({ children: c2s.length }, "SIGHUP: the front ends reload their certificate");
    for (const p of c2s) p.kill("SIGHUP");
  });
}
