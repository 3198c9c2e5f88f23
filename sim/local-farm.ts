// Starts a real farm (`xfarm start`, the compiled CLI) on free loopback ports
// in a temporary directory, and stops it; for tests and benchmarks. Its state
// is asked of its router over an admin link (`xfarm status --json`); its JSON
// log lines are kept, for tests whose subject is what the farm logs.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { adminRequest } from "../lib/link/admin-link.js";
import { loadConfig } from "../lib/config.js";
import type { ControlMessage, StatusEntry } from "../lib/link/control.js";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { openStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";
import { freePortBase } from "./free-ports.js";
import { PausableProxy } from "./pausable-proxy.js";
import { runCommand, type CommandResult } from "./run-command.js";

export const CLI = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../dist/cli/xfarm.js" : "../cli/xfarm.js", import.meta.url));

export type RouterStatus = Extract<ControlMessage, { op: "status" }>;

/** How often Farm.until asks again. */
const POLL_MS = 200;

/** A /proc file of a process, or "" once it is gone. */
function procFile(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return "";
  }
}

/** The PIDs whose parent is `parent` (field 4 of /proc/PID/stat, after the command in parentheses). */
function childrenOf(parent: number): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      const stat = procFile(pid, "stat");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent;
    });
}

export interface FarmOptions {
  c2sCount?: number;
  /** 2: an active/passive router pair, router-1 and router-2. */
  routerCount?: number;
  smCount?: number;
  /**
   * Extra keys for the [c2s] table, e.g. { require_tls: false }. Every client
   * of a local farm comes from one loopback address, so there is no limit of
   * connections per address unless one is given here.
   */
  c2s?: Record<string, string | number | boolean>;
  sm?: Record<string, string | number | boolean>;
  /** [sm.modules.NAME] tables: a module's settings (README's module table), by module name. */
  modules?: Record<string, Record<string, string | number | boolean | string[]>>;
  /** The store URL; by default the embedded SQLite file under the farm's data_dir. */
  db?: string;
  /** XEP-0114 components: domain → secret (the router listens on componentPort). */
  components?: Record<string, string>;
  /** PEM files to use; by default the farm generates a self-signed pair. */
  tls?: { cert: string; key: string };
  logLevel?: string;
  /** With routerCount 2: each router reaches its peer through a proxy the caller can pause (Farm.peerProxies). */
  peerProxies?: boolean;
  /** The admin web console's admins (bare JIDs): the console is on, on Farm.consolePort (router-2's on the next); off when not given. */
  consoleAdmins?: string[];
  /** Extra keys for the [start] table (the supervisor's: alert_webhook, unready_restart_after, …). */
  start?: Record<string, string | number | boolean>;
  /** The [secrets] table: link secrets of processes started outside the supervisor (it makes its children's). */
  secrets?: Record<string, string>;
  /** The base of every port, for a farm on another farm's ports (Farm.routerPort); by default free ones. */
  basePort?: number;
}

/** Offsets from a farm's base port of its metrics ports: the routers', the first c2s's (then every c2s port step); the sms' follow the c2s ports. */
const METRICS_ROUTER = 8;
const METRICS_C2S = 12;
/** A farm's c2s ports are 10 apart. */
const C2S_STEP = 10;
const smMetricsOffset = (c2sCount: number) => 10 + c2sCount * C2S_STEP;

export interface LogLine {
  proc: string;
  msg: string;
  /** By name: "info", "warn", "fatal", … */
  level: string;
  [k: string]: unknown;
}

export class Farm {
  readonly lines: LogLine[] = [];
  private proc: ChildProcess | null = null;
  /** The supervisor's exit code, once its output pipes are closed (launch). */
  private drained: Promise<number | null> | null = null;
  private waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  /** The proxies on the router pair's peer links (FarmOptions.peerProxies): pausing both partitions the pair. */
  peerProxies: PausableProxy[] = [];
  /** Where router-1 serves the admin console (FarmOptions.consoleAdmins); 0: off. */
  consolePort = 0;

  /** The `xfarm start` supervisor's PID; every farm process descends from it. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly routerPort: number,
    /** c2s i (0-based): STARTTLS port and direct TLS port. */
    readonly c2sPorts: { port: number; tlsPort: number }[],
    readonly smCount = 1,
    /** Where XEP-0114 components connect. */
    readonly componentPort = 0,
    readonly db?: string,
    readonly routerCount = 1,
  ) {}

  static async create(opts: FarmOptions = {}): Promise<Farm> {
    const count = opts.c2sCount ?? 2;
    const smCount = opts.smCount ?? 1;
    const step = C2S_STEP;
    // base: router(s) (+1 for a second), +3/+4: XEP-0114 components, +6/+7: the admin consoles, +8/+9: the routers'
    // metrics, +10…: each c2s's STARTTLS, direct TLS and metrics ports, then the sms' metrics ports.
    const smMetrics = smMetricsOffset(count);
    const offsets = [0, 1, 3, 4, ...(opts.consoleAdmins ? [6, 7] : []), METRICS_ROUTER, METRICS_ROUTER + 1, ...Array.from({ length: smCount }, (_, i) => smMetrics + i)];
    for (let i = 0; i < count; i++) offsets.push(10 + i * step, 11 + i * step, METRICS_C2S + i * step);
    const base = opts.basePort ?? (await freePortBase(offsets));
    const dir = fs.mkdtempSync(path.join(process.env.XFARM_FARM_TMPDIR || os.tmpdir(), "xfarm-test-"));
    // router-1's peer link goes through the first proxy, to router-2; router-2's through the second.
    const proxies = opts.peerProxies ? await Promise.all([1, 0].map((i) => PausableProxy.listen({ host: "127.0.0.1", port: base + i }))) : [];
    const table = (t: Record<string, string | number | boolean | string[]> | undefined) =>
      Object.entries(t ?? {}).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join("\n");
    const config = `domains = ["localhost"]
data_dir = ${JSON.stringify(path.join(dir, "data"))}
log_level = "${opts.logLevel ?? "debug"}"
${opts.db ? `db = ${JSON.stringify(opts.db)}` : ""}

[router]
port = ${base}
addresses = ["127.0.0.1:${base}"]
component_port = ${base + 3}

[console]
port = ${opts.consoleAdmins ? base + 6 : 0}
admins = ${JSON.stringify(opts.consoleAdmins ?? [])}

${opts.components ? `[components]\n${table(opts.components)}` : "# no [components] table, as in a plain `npm start`"}

[sm]
${table(opts.sm)}
${Object.entries(opts.modules ?? {}).map(([name, settings]) => `[sm.modules.${name}]\n${table(settings)}\n`).join("")}
[c2s]
${table({ host: "127.0.0.1", port: base + 10, tls_port: base + 11, auth_timeout: 5, max_unauthenticated_per_address: 0, ...(opts.tls ? { tls_cert: opts.tls.cert, tls_key: opts.tls.key } : {}), ...opts.c2s })}

[metrics]
router_port = ${base + METRICS_ROUTER}
sm_port = ${base + smMetrics}
c2s_port = ${base + METRICS_C2S}

[start]
c2s_count = ${count}
router_count = ${opts.routerCount ?? 1}
router_peers = ${JSON.stringify(proxies.map((p) => `127.0.0.1:${p.port}`))}
sm_count = ${smCount}
port_step = ${step}
${table(opts.start)}
${opts.secrets ? `\n[secrets]\n${table(opts.secrets)}` : ""}
`;
    const configFile = path.join(dir, "xfarm.toml");
    fs.writeFileSync(configFile, config);
    const ports = Array.from({ length: count }, (_, i) => ({ port: base + 10 + i * step, tlsPort: base + 11 + i * step }));
    const farm = new Farm(dir, configFile, base, ports, smCount, base + 3, opts.db, opts.routerCount ?? 1);
    farm.peerProxies = proxies;
    if (opts.consoleAdmins) farm.consolePort = base + 6;
    return farm;
  }

  /** Starts `xfarm start` and waits until every c2s and the sm are linked. */
  async start(): Promise<void> {
    this.launch();
    await this.waitLinked();
  }

  /** Starts `xfarm start` without waiting for anything (a farm expected to fail). */
  launch(): void {
    const proc = spawn(process.execPath, [CLI, "start", "--config", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const logFile = fs.createWriteStream(path.join(this.dir, "farm.log"));
    // "close", not "exit": the pipes may still hold lines when the supervisor has exited.
    this.drained = new Promise((resolve) =>
      proc.once("close", (code) => {
        logFile.end();
        resolve(code);
      }),
    );
    let buf = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      logFile.write(chunk);
      buf += chunk.toString("utf8");
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.onLine(JSON.parse(text) as LogLine);
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.on("data", (chunk: Buffer) => logFile.write(chunk));
  }

  /** Resolves with the supervisor's exit code once it has exited and every line it wrote is in `lines`. */
  exited(): Promise<number | null> {
    return this.drained!;
  }

  /** Where process `name` (router-1, sm-2, c2s-1, …) serves /metrics, /healthz and /readyz. */
  metricsUrl(name: string, path: "/metrics" | "/healthz" | "/readyz"): string {
    const [role, n] = name.split("-") as [string, string];
    const i = Number(n) - 1;
    // A c2s's metrics port is its STARTTLS port's offset (10) + 2.
    const port =
      role === "router" ? this.routerPort + METRICS_ROUTER + i : role === "sm" ? this.routerPort + smMetricsOffset(this.c2sPorts.length) + i : this.c2sPorts[i]!.port + METRICS_C2S - 10;
    return `http://127.0.0.1:${port}${path}`;
  }

  /** The routers' admin addresses: router-1's, and router-2's of a pair. */
  get routerAddresses(): string[] {
    return Array.from({ length: this.routerCount }, (_, i) => `127.0.0.1:${this.routerPort + i}`);
  }

  /** `xfarm status --json`: the answer of the active router among `addresses` (of a passive one when none is active). */
  async routerStatus(addresses = this.routerAddresses): Promise<RouterStatus> {
    return adminRequest(loadConfig(this.configFile, {}), { op: "status-request" }, "status", 2_000, addresses);
  }

  /** The processes linked to the active router, as `xfarm status --json` lists them. */
  async status(): Promise<StatusEntry[]> {
    return (await this.routerStatus()).entries;
  }

  /** Asks `read` again and again until `test` holds of its answer; resolves with that answer. */
  async until<T>(what: string, read: () => T | Promise<T>, test: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      // A read that fails (no router listening yet, say) is asked again.
      const last = await Promise.resolve().then(read).then((v) => ({ v }), (err: Error) => ({ err: err.message }));
      if ("v" in last && test(last.v)) return last.v;
      if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last)} (see ${this.dir}/farm.log)`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Asks the router for the status until `test` holds of it; resolves with that status. */
  untilStatus(test: (entries: StatusEntry[]) => boolean, timeoutMs = 20_000): Promise<StatusEntry[]> {
    return this.until("status", () => this.status(), test, timeoutMs);
  }

  /** Opens the farm's database beside the farm, reads it with `read`, and closes it. */
  async readStore<T>(read: (store: Store) => Promise<T>): Promise<T> {
    const store = await openStore(this.storeUrl);
    try {
      return await read(store);
    } finally {
      await store.close();
    }
  }

  /** Messages for `user` in offline storage, as the database has them. */
  offlineCount(user: string): Promise<number> {
    return this.readStore((s) => s.countOffline(user));
  }

  /** Waits until the database holds at least `count` offline messages for `user`. */
  async waitOffline(user: string, count = 1, timeoutMs = 15_000): Promise<void> {
    await this.until(`${count} offline for ${user}`, () => this.offlineCount(user), (n) => n >= count, timeoutMs);
  }

  /** Waits until child `name` runs again under another PID than `pid` (the supervisor restarted it). */
  async waitRestarted(name: string, pid: number, timeoutMs = 15_000): Promise<number> {
    return this.until(`${name} restarted`, () => this.childPid(name), (p) => p !== pid, timeoutMs);
  }

  /** Waits until every sm and every c2s (or those named) is linked to the router, each since `sinceMs` (ms since the epoch), and the front ends take clients. */
  async waitLinked(sinceMs = 0, names = [...Array.from({ length: this.smCount }, (_, i) => `sm-${i + 1}`), ...this.c2sPorts.map((_, i) => `c2s-${i + 1}`)]): Promise<void> {
    // With an sm linked, every front end has opened its ports once it has heard of it (its info says so).
    const open = (entries: StatusEntry[]) => !entries.some((e) => e.role === "sm") || entries.every((e) => e.role !== "c2s" || !e.info.noSm);
    await this.untilStatus((entries) => names.every((n) => entries.some((e) => e.name === n && e.linkedAt >= sinceMs)) && open(entries), 30_000);
  }

  /** Waits until front end `name` reports its load, having heard the load of `peers` other front ends (whom it may redirect to). */
  async waitReporting(name: string, peers: number, timeoutMs = 20_000): Promise<void> {
    await this.untilStatus((entries) => entries.some((e) => e.name === name && (e.load?.peers ?? 0) >= peers), timeoutMs);
  }

  private onLine(line: LogLine): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first log line (from index `since` on) that passes `test`. */
  waitFor(test: (l: LogLine) => boolean, timeoutMs = 10_000, since = 0): Promise<LogLine> {
    const seen = this.lines.slice(since).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms (see ${this.dir}/farm.log)`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Runs the CLI against this farm's config; resolves with its output. */
  cli(...args: string[]): Promise<CommandResult> {
    return runCommand(process.execPath, [CLI, ...args, "--config", this.configFile]);
  }

  /** The farm's store, as openStore takes it. */
  get storeUrl(): string {
    return this.db ?? `sqlite:${path.join(this.dir, "data", "xfarm.db")}`;
  }

  async addUser(jid: string, password: string): Promise<void> {
    const r = await this.cli("user", "add", jid, password);
    if (r.code !== 0) throw new Error(`user add failed: ${r.stderr}`);
  }

  /** Creates each account (bare JID → password) in one transaction, straight in the store: no CLI process each. */
  async addAccounts(passwords: Record<string, string>, iterations?: number): Promise<void> {
    const store = await openStore(this.storeUrl);
    try {
      const accounts = await Promise.all(Object.entries(passwords).map(async ([user, password]) => ({ user, credentials: await deriveCredentials(password, iterations) })));
      await store.createAccounts(accounts);
    } finally {
      await store.close();
    }
  }

  /** Creates `${prefix}1…${prefix}N@localhost` in one transaction, straight in the store (load tests). */
  async addUsers(prefix: string, count: number, password: string, iterations?: number): Promise<void> {
    const store = await openStore(this.storeUrl);
    try {
      // One derivation shared by all: a load test, not a real salt policy.
      const credentials = await deriveCredentials(password, iterations);
      await store.createAccounts(Array.from({ length: count }, (_, i) => ({ user: `${prefix}${i + 1}@localhost`, credentials })));
    } finally {
      await store.close();
    }
  }

  /**
   * The PID of the farm's child `name` (c2s-1, sm-1, router-1, …) running now, as the kernel
   * has it: a child of the supervisor titled `xfarm NAME` once started, or, before it takes its
   * title, whose role (its command) and name (the XFARM_*_NAME its environment gives it, else
   * its role's default "-1") match.
   */
  childPid(name: string): number {
    const pid = this.runningPid(name);
    if (pid === null) throw new Error(`${name} is not running`);
    return pid;
  }

  /** childPid, or null while that child is not running (between its death and its restart). */
  runningPid(name: string): number | null {
    for (const pid of childrenOf(this.pid!)) {
      const cmd = procFile(pid, "cmdline").split("\0");
      if (cmd[0]!.startsWith("xfarm ")) {
        if (cmd[0]!.slice("xfarm ".length).trim() === name) return pid;
        continue;
      }
      const env = procFile(pid, "environ").split("\0");
      const cli = cmd.findIndex((a) => path.basename(a) === "xfarm.js");
      const role = cli < 0 ? undefined : cmd[cli + 1];
      if (!role) continue;
      const given = env.find((v) => v.startsWith(`XFARM_${role.toUpperCase()}_NAME=`))?.split("=")[1];
      if ((given ?? `${role}-1`) === name) return pid;
    }
    return null;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGINT");
      await exited;
    }
    await Promise.all(this.peerProxies.map((p) => p.close()));
  }

  cleanup(): void {
    if (!process.env.XFARM_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
