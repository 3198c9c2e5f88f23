// Starts a real farm (`xfarm start`, the compiled CLI) on free loopback ports
// in a temporary directory, and stops it; for tests and benchmarks. Its JSON
// log lines are kept, to wait for and assert on.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { openStore } from "../xdb-sql/open-store.js";
import { freePortBase } from "./free-ports.js";
import { PausableProxy } from "./pausable-proxy.js";

export const CLI = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../dist/lib/cli/xfarm.js" : "../lib/cli/xfarm.js", import.meta.url));

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
  /** The store URL; by default the embedded SQLite file under the farm's data_dir. */
  db?: string;
  /** XEP-0114 components: domain → secret (the router listens on componentPort). */
  components?: Record<string, string>;
  /** PEM files to use; by default the farm generates a self-signed pair. */
  tls?: { cert: string; key: string };
  logLevel?: string;
  /** With routerCount 2: each router reaches its peer through a proxy the caller can pause (Farm.peerProxies). */
  peerProxies?: boolean;
}

export interface LogLine {
  proc: string;
  msg: string;
  level: number;
  [k: string]: unknown;
}

export class Farm {
  readonly lines: LogLine[] = [];
  private proc: ChildProcess | null = null;
  private waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  /** The proxies on the router pair's peer links (FarmOptions.peerProxies): pausing both partitions the pair. */
  peerProxies: PausableProxy[] = [];

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
  ) {}

  static async create(opts: FarmOptions = {}): Promise<Farm> {
    const count = opts.c2sCount ?? 2;
    const step = 10;
    // base: router(s) (+1 for a second), +3/+4: XEP-0114 components, +10…: the c2s ports.
    const offsets = [0, 1, 3, 4];
    for (let i = 0; i < count; i++) offsets.push(10 + i * step, 11 + i * step);
    const base = await freePortBase(offsets);
    const dir = fs.mkdtempSync(path.join(process.env.XFARM_FARM_TMPDIR || os.tmpdir(), "xfarm-test-"));
    // router-1's peer link goes through the first proxy, to router-2; router-2's through the second.
    const proxies = opts.peerProxies ? await Promise.all([1, 0].map((i) => PausableProxy.listen({ host: "127.0.0.1", port: base + i }))) : [];
    const table = (t: Record<string, string | number | boolean> | undefined) =>
      Object.entries(t ?? {}).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`).join("\n");
    const config = `domains = ["localhost"]
data_dir = ${JSON.stringify(path.join(dir, "data"))}
log_level = "${opts.logLevel ?? "debug"}"
${opts.db ? `db = ${JSON.stringify(opts.db)}` : ""}

[router]
port = ${base}
addresses = ["127.0.0.1:${base}"]
component_port = ${base + 3}

${opts.components ? `[components]\n${table(opts.components)}` : "# no [components] table, as in a plain `npm start`"}

[sm]
${table(opts.sm)}

[c2s]
${table({ host: "127.0.0.1", port: base + 10, tls_port: base + 11, auth_timeout: 5, max_unauthenticated_per_address: 0, ...(opts.tls ? { tls_cert: opts.tls.cert, tls_key: opts.tls.key } : {}), ...opts.c2s })}

[start]
c2s_count = ${count}
router_count = ${opts.routerCount ?? 1}
router_peers = ${JSON.stringify(proxies.map((p) => `127.0.0.1:${p.port}`))}
sm_count = ${opts.smCount ?? 1}
port_step = ${step}
`;
    const configFile = path.join(dir, "xfarm.toml");
    fs.writeFileSync(configFile, config);
    const ports = Array.from({ length: count }, (_, i) => ({ port: base + 10 + i * step, tlsPort: base + 11 + i * step }));
    const farm = new Farm(dir, configFile, base, ports, opts.smCount ?? 1, base + 3, opts.db);
    farm.peerProxies = proxies;
    return farm;
  }

  /** Starts `xfarm start` and waits until every c2s and the sm are linked. */
  async start(): Promise<void> {
    const proc = spawn(process.execPath, [CLI, "start", "--config", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const logFile = fs.createWriteStream(path.join(this.dir, "farm.log"));
    proc.once("exit", () => logFile.end());
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
    await this.waitLinked();
  }

  /** Waits until the sm and every c2s are linked to the router. */
  async waitLinked(since = 0): Promise<void> {
    const names = [...Array.from({ length: this.smCount }, (_, i) => `sm-${i + 1}`), ...this.c2sPorts.map((_, i) => `c2s-${i + 1}`)];
    await Promise.all(names.map((n) => this.waitFor((l) => l.proc === n && l.msg === "linked to router", 20_000, since)));
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
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [CLI, ...args, "--config", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout!.on("data", (d) => (stdout += d));
      p.stderr!.on("data", (d) => (stderr += d));
      p.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** The farm's store, as openStore takes it. */
  get storeUrl(): string {
    return this.db ?? `sqlite:${path.join(this.dir, "data", "xfarm.db")}`;
  }

  async addUser(jid: string, password: string): Promise<void> {
    const r = await this.cli("user", "add", jid, password);
    if (r.code !== 0) throw new Error(`user add failed: ${r.stderr}`);
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

  /** PIDs of the farm's children, by component name, from the supervisor's log. */
  childPid(name: string): number {
    const started = this.lines.filter((l) => l.proc === "supervisor" && l.msg === "started" && l.child === name).at(-1);
    if (!started) throw new Error(`${name} was not started`);
    return started.childPid as number;
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
