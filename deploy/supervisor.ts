// `xfarm start`: a whole farm on one box — router, sms and c2s processes —
// each a child process restarted when it dies; SIGINT/SIGTERM stops them all,
// SIGHUP makes the front ends reload their certificate.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify } from "smol-toml";
import { TlsCredentials } from "../lib/tls-credentials.js";
import { ADMIN_NAME } from "../lib/link/admin-link.js";
import { routerAddresses, secretsFile, type Config } from "../lib/config.js";
import { createLogger, type Logger } from "../lib/log.js";
import { openStore } from "../xdb-sql/open-store.js";

const CLI = fileURLToPath(new URL("../cli/xfarm.js", import.meta.url));
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A child that ran this long is healthy again: its next restart is quick. */
const HEALTHY_AFTER_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

interface ChildSpec {
  name: string;
  role: "router" | "sm" | "c2s";
  env: Record<string, string>;
}

export function farmChildren(config: Config): ChildSpec[] {
  const specs: ChildSpec[] = [];
  if (config.start.router_count === 1) specs.push({ name: config.router.name, role: "router", env: {} });
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
          XFARM_CONSOLE_PORT: config.console.port ? String(config.console.port + i) : "0",
        },
      });
    }
  }
  if (config.start.sm_count === 1) specs.push({ name: config.sm.name, role: "sm", env: {} });
  else for (let i = 1; i <= config.start.sm_count; i++) specs.push({ name: `sm-${i}`, role: "sm", env: { XFARM_SM_NAME: `sm-${i}` } });
  for (let i = 0; i < config.start.c2s_count; i++) {
    const step = i * config.start.port_step;
    specs.push({
      name: `c2s-${i + 1}`,
      role: "c2s",
      env: {
        XFARM_C2S_NAME: `c2s-${i + 1}`,
        XFARM_C2S_PORT: String(config.c2s.port + step),
        XFARM_C2S_TLS_PORT: config.c2s.tls_port ? String(config.c2s.tls_port + step) : "0",
      },
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

export async function runFarm(config: Config, configFile: string | null, env: Record<string, string>): Promise<void> {
  let extraEnv = env;
  const log = createLogger("supervisor", config.log_level);
  fs.mkdirSync(config.data_dir, { recursive: true });
  const specs = farmChildren(config);
  // Routers of a pair link to each other with their own secrets; a lone router needs none.
  const linking = specs.filter((s) => s.role !== "router" || config.start.router_count > 1).map((s) => s.name);
  ensureSecrets(config, [...linking, ADMIN_NAME], log);
  if (config.start.router_count > 1) {
    extraEnv = { ...extraEnv, XFARM_ROUTER_ADDRESSES: routerAddresses(config).join(",") };
  }
  // Done once here so the children never race to create them.
  await TlsCredentials.load(config, log);
  await (await openStore(config.db)).close();

  let stopping = false;
  const running = new Map<string, ChildProcess>();
  const start = (spec: ChildSpec, failures: number) => {
    const args = [CLI, spec.role, ...(configFile ? ["--config", configFile] : [])];
    const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...extraEnv, ...spec.env } });
    const startedAt = Date.now();
    running.set(spec.name, child);
    log.info({ child: spec.name, childPid: child.pid }, "started");
    child.on("exit", (code, signal) => {
      running.delete(spec.name);
      if (stopping) return;
      const healthy = Date.now() - startedAt > HEALTHY_AFTER_MS;
      const n = healthy ? 0 : failures + 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.max(0, n - 1));
      log.error({ child: spec.name, code, signal, restartInMs: delay }, "child exited; restarting");
      setTimeout(() => !stopping && start(spec, n), delay);
    });
  };
  for (const spec of specs) start(spec, 0);

  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping the farm");
    const killer = setTimeout(() => [...running.values()].forEach((c) => c.kill("SIGKILL")), STOP_TIMEOUT_MS);
    // Front ends first, so clients get a clean stream end and the sm sends their unavailable presence.
    for (const role of ["c2s", "sm", "router"] as const) {
      const children = specs.filter((s) => s.role === role).map((s) => running.get(s.name)).filter((c) => c !== undefined);
      for (const c of children) c.kill("SIGTERM");
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once("exit", r)))));
    }
    clearTimeout(killer);
    log.info("farm stopped");
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", () => {
    if (stopping) return;
    const c2s = specs.filter((s) => s.role === "c2s").map((s) => running.get(s.name)).filter((c) => c !== undefined);
    log.info({ children: c2s.length }, "SIGHUP: the front ends reload their certificate");
    for (const c of c2s) c.kill("SIGHUP");
  });
}
