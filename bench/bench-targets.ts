// The servers `npm run bench` measures: xfarm (two c2s by default, a router
// and an sm, as `xfarm start` runs them), and with --compare Debian's Prosody and
// ejabberd, each started from the anchors' own configs
// (../shared/anchors/) with only the port, paths and node name changed, so
// the figures line up with the anchors' Tsung runs. All listen on 127.0.0.1
// and share one RSA-2048 certificate.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { generate } from "selfsigned";
import { configDefaults } from "../lib/config.js";
import { writeProsodyAccounts } from "../sim/accounts.js";
import { isRunning, processTree } from "../sim/process-tree.js";
import { freePortBase } from "../sim/free-ports.js";
import { Farm } from "../sim/local-farm.js";
import { portOpen } from "../sim/port-open.js";
import type { Mechanism } from "../sim/scenario.js";

const EVERY_MECHANISM: readonly Mechanism[] = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];

export type TargetName = "xfarm" | "prosody" | "ejabberd";

export interface BenchTarget {
  readonly name: TargetName;
  readonly version: string;
  /** Where clients connect: every front end of a farm (as its SRV records would list them), one port otherwise. */
  readonly ports: readonly number[];
  readonly domain: string;
  /** The SASL mechanisms it offers, of those the simulator speaks. */
  readonly mechanisms: readonly Mechanism[];
  /**
   * Sessions the server can hold here: a single process is bounded by the
   * open-file limit (20,000 on this machine, less its own files).
   */
  readonly maxSessions: number;
  /** The root of the server's process tree, once started. */
  readonly pid: number;
  start(): Promise<void>;
  /** Accounts user1 … userN, all with one password. */
  createAccounts(count: number, password: string): Promise<void>;
  stop(): Promise<void>;
}

export const DOMAIN = "localhost";
/** What one process may hold on this machine: 20,000 files, less headroom for its own. */
const ONE_PROCESS_SESSIONS = 19_000;

export interface CertFiles {
  key: string;
  cert: string;
  /** Key and certificate in one file (ejabberd's certfiles). */
  pem: string;
}

export async function makeCert(dir: string): Promise<CertFiles> {
  const pems = await generate([{ name: "commonName", value: DOMAIN }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2 as const, value: DOMAIN }] }],
  } as Parameters<typeof generate>[1]);
  const files = { key: path.join(dir, "localhost.key"), cert: path.join(dir, "localhost.crt"), pem: path.join(dir, "localhost.pem") };
  fs.writeFileSync(files.key, pems.private, { mode: 0o644 });
  fs.writeFileSync(files.cert, pems.cert);
  fs.writeFileSync(files.pem, pems.private + pems.cert, { mode: 0o644 });
  return files;
}

function packageVersion(pkg: string): string {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", pkg], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "unknown";
}

async function waitPort(port: number, seconds: number, alive: () => boolean, what: string): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    if (await portOpen(port)) return;
    if (!alive()) throw new Error(`${what} exited before listening on ${port}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${seconds} s`);
}

/**
 * SIGTERM to a process tree, SIGKILL to what is left after `graceMs`. The
 * tree is taken once, first: a child whose parent exits is adopted by init
 * and would drop out of a fresh look while still running.
 */
async function stopTree(root: number, graceMs: number): Promise<void> {
  const pids = processTree(root);
  const alive = () => pids.filter(isRunning);
  const signalAll = (sig: NodeJS.Signals) => {
    for (const pid of alive()) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
    }
  };
  signalAll("SIGTERM");
  const until = Date.now() + graceMs;
  while (Date.now() < until && alive().length) await new Promise((r) => setTimeout(r, 200));
  signalAll("SIGKILL");
}

/**
 * The sm modules the measured farm runs with beside the anchors: MAM off,
 * since neither anchor archives (Prosody's modules_disabled has mam and
 * carbons; ejabberd's module list has no mod_mam), and archiving is most of
 * an sm's CPU per message. `xfarm bench --mam` measures the farm as it ships.
 */
export const LIKE_THE_ANCHORS: FarmModules = { mam: { enabled: false } };

/** [sm.modules.NAME] tables for a measured farm (sim/local-farm.ts). */
export type FarmModules = Record<string, Record<string, boolean>>;

export class XfarmTarget implements BenchTarget {
  readonly name = "xfarm";
  readonly domain = DOMAIN;
  readonly mechanisms = EVERY_MECHANISM;
  readonly version: string;
  private farm: Farm | null = null;

  constructor(
    private readonly cert: CertFiles,
    private readonly c2s: Record<string, string | number | boolean>,
    /** c2s processes: each holds up to the one-process limit. */
    private readonly c2sCount = 2,
    private readonly modules: FarmModules = LIKE_THE_ANCHORS,
  ) {
    const pkg = JSON.parse(fs.readFileSync(new URL(import.meta.url.endsWith(".ts") ? "../package.json" : "../../package.json", import.meta.url), "utf8")) as { version: string };
    const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8", cwd: path.dirname(new URL(import.meta.url).pathname) });
    this.version = `${pkg.version}${git.status === 0 ? ` (${git.stdout.trim()})` : ""}`;
  }

  get maxSessions(): number {
    return this.c2sCount * ONE_PROCESS_SESSIONS;
  }

  get ports(): number[] {
    return this.farm!.c2sPorts.map((p) => p.port);
  }

  get pid(): number {
    return this.farm!.pid!;
  }

  async start(): Promise<void> {
    this.farm = await Farm.create({
      c2sCount: this.c2sCount,
      logLevel: "info",
      modules: this.modules,
      tls: { cert: this.cert.cert, key: this.cert.key },
      // The shipped login window, not the test harness's 5 s: a login that waits for a loaded farm is a figure, not a failure.
      c2s: { max_connections: ONE_PROCESS_SESSIONS, auth_timeout: configDefaults().c2s.auth_timeout, ...this.c2s },
    });
    await this.farm.start();
  }

  async createAccounts(count: number, password: string): Promise<void> {
    await this.farm!.addUsers("user", count, password);
  }

  /** The farm's c2s processes running now, by name (c2s-1 …). */
  c2sPids(): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 1; i <= this.c2sCount; i++) {
      const pid = this.farm!.runningPid(`c2s-${i}`);
      if (pid !== null) out.set(`c2s-${i}`, pid);
    }
    return out;
  }

  async stop(): Promise<void> {
    if (!this.farm) return;
    await this.farm.stop();
    this.farm.cleanup();
    this.farm = null;
  }
}

/** Rewrites one line of an anchors config, and fails loudly if the line moved. */
function rewrite(text: string, from: string | RegExp, to: string, file: string): string {
  const out = text.replace(from instanceof RegExp ? new RegExp(from.source, "g") : new RegExp(escapeRegExp(from), "g"), to);
  if (out === text) throw new Error(`${file}: "${String(from)}" not found; the anchors config changed, update bench/bench-targets.ts`);
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A server of the anchors (one process tree, one client port, a directory of its own), started from their config. */
abstract class AnchorTarget {
  readonly domain = DOMAIN;
  readonly maxSessions = ONE_PROCESS_SESSIONS;
  protected port = 0;
  protected proc: ChildProcess | null = null;
  protected dir = "";

  constructor(
    protected readonly anchors: string,
    protected readonly cert: CertFiles,
  ) {}

  get ports(): number[] {
    return [this.port];
  }

  get pid(): number {
    return this.proc!.pid!;
  }

  /** Runs the server in its directory, its console output in console.log there. */
  protected spawnServer(command: string, args: string[]): ChildProcess {
    this.proc = spawn(command, args, { cwd: this.dir, stdio: ["ignore", "ignore", fs.openSync(path.join(this.dir, "console.log"), "a")] });
    return this.proc;
  }
}

/** Prosody 0.12 from anchors/prosody.cfg.lua: epoll, backlog 1024, internal_plain. */
export class ProsodyTarget extends AnchorTarget implements BenchTarget {
  readonly name = "prosody";
  readonly version = packageVersion("prosody");
  /** Prosody 0.12 has no SCRAM-SHA-256 (0.13 adds it). */
  readonly mechanisms: readonly Mechanism[] = ["PLAIN", "SCRAM-SHA-1"];

  async start(): Promise<void> {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-bench-prosody-"));
    this.port = await freePortBase([0]);
    const file = path.join(this.anchors, "prosody.cfg.lua");
    let cfg = fs.readFileSync(file, "utf8");
    cfg = rewrite(cfg, "/tmp/anchors/prosody", this.dir, file);
    cfg = rewrite(cfg, "/tmp/anchors/certs/localhost.key", this.cert.key, file);
    cfg = rewrite(cfg, "/tmp/anchors/certs/localhost.crt", this.cert.cert, file);
    cfg = rewrite(cfg, "/tmp/anchors/certs", path.dirname(this.cert.cert), file);
    cfg = rewrite(cfg, /c2s_ports = \{ 15222 \}/, `c2s_ports = { ${this.port} }`, file);
    fs.mkdirSync(path.join(this.dir, "data"));
    const config = path.join(this.dir, "prosody.cfg.lua");
    fs.writeFileSync(config, cfg);
    const proc = this.spawnServer("prosody", ["--config", config]);
    await waitPort(this.port, 30, () => proc.exitCode === null, "prosody");
  }

  async createAccounts(count: number, password: string): Promise<void> {
    // Plain passwords, as the anchors' internal_plain keeps them.
    await writeProsodyAccounts(path.join(this.dir, "data"), DOMAIN, { name: "user%d", password, first: 1, count }, { hashed: false });
  }

  async stop(): Promise<void> {
    if (this.proc?.pid) await stopTree(this.proc.pid, 10_000);
    this.proc = null;
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** ejabberd 23.01 from anchors/ejabberd.yml: mnesia, plain passwords, backlog 1024. */
export class EjabberdTarget extends AnchorTarget implements BenchTarget {
  readonly name = "ejabberd";
  readonly version = packageVersion("ejabberd");
  readonly mechanisms = EVERY_MECHANISM;
  /** Our own Erlang node name, so an anchors run beside us cannot clash. */
  private readonly node = "xfarmbench@localhost";
  private epmdBefore = false;

  private ctlArgs(): string[] {
    const d = this.dir;
    return ["-c", path.join(d, "ejabberdctl.cfg"), "--config-dir", d, "--config", path.join(d, "ejabberd.yml"), "--spool", path.join(d, "spool"), "--logs", path.join(d, "logs")];
  }

  async start(): Promise<void> {
    this.epmdBefore = spawnSync("pgrep", ["-x", "epmd"]).status === 0;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-bench-ejabberd-"));
    this.port = await freePortBase([0]);
    fs.mkdirSync(path.join(this.dir, "spool"));
    fs.mkdirSync(path.join(this.dir, "logs"));
    const yml = path.join(this.anchors, "ejabberd.yml");
    let cfg = fs.readFileSync(yml, "utf8");
    cfg = rewrite(cfg, /port: 25222/, `port: ${this.port}`, yml);
    cfg = rewrite(cfg, "/tmp/anchors/certs/localhost.pem", this.cert.pem, yml);
    fs.writeFileSync(path.join(this.dir, "ejabberd.yml"), cfg);
    const ctl = path.join(this.anchors, "ejabberdctl.cfg");
    let ctlCfg = fs.readFileSync(ctl, "utf8");
    ctlCfg = rewrite(ctlCfg, "anchors@localhost", this.node, ctl);
    ctlCfg = rewrite(ctlCfg, "/tmp/anchors/ejabberd", this.dir, ctl);
    fs.writeFileSync(path.join(this.dir, "ejabberdctl.cfg"), ctlCfg);
    fs.copyFileSync(path.join(this.anchors, "inetrc"), path.join(this.dir, "inetrc"));
    const proc = this.spawnServer("ejabberdctl", [...this.ctlArgs(), "foreground"]);
    await waitPort(this.port, 60, () => proc.exitCode === null, "ejabberd");
    // The listener opens before every module has started.
    await new Promise((r) => setTimeout(r, 2000));
  }

  /** Registers the accounts over Erlang RPC, eight at a time, as the anchors' mkusers.sh does. */
  async createAccounts(count: number, password: string): Promise<void> {
    const cookie = fs.readFileSync("/var/lib/ejabberd/.erlang.cookie", "utf8").trim();
    const pw = password.replace(/[\\"]/g, "");
    const script = `Node = '${this.node}', N = ${count}, P = <<"${pw}">>,
      Reg = fun(I) -> rpc:call(Node, ejabberd_auth, try_register, [<<"user", (integer_to_binary(I))/binary>>, <<"localhost">>, P]) end,
      Parent = self(), W = 8,
      [spawn(fun() -> [Reg(I) || I <- lists:seq(K, N, W)], Parent ! done end) || K <- lists:seq(1, W)],
      [receive done -> ok end || _ <- lists:seq(1, W)],
      io:format("~p~n", [rpc:call(Node, ejabberd_auth, count_users, [<<"localhost">>])]), halt().`;
    const r = spawnSync("erl", ["-sname", `xfarmbenchusers${process.pid}`, "-setcookie", cookie, "-hidden", "-noshell", "-eval", script], { encoding: "utf8" });
    const made = Number(r.stdout.trim().split("\n").at(-1));
    if (r.status !== 0 || !(made >= count)) throw new Error(`ejabberd account creation failed: ${r.stdout}${r.stderr}`);
  }

  async stop(): Promise<void> {
    if (this.proc?.pid) {
      spawnSync("ejabberdctl", [...this.ctlArgs(), "stop"], { timeout: 30_000 });
      await stopTree(this.proc.pid, 20_000);
    }
    this.proc = null;
    // epmd was started by ejabberd's VM: stop it only if it was not running before.
    if (!this.epmdBefore) spawnSync("pkill", ["-x", "epmd"]);
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
