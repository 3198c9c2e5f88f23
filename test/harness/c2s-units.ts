// Front ends run standalone, as systemd runs xfarm-c2s@NAME on each box of
// deploy/five-boxes: one `xfarm c2s` process per name, its own environment
// (XFARM_C2S_NAME, ports), the farm's shared config. A loopback HTTP
// endpoint stands in for `systemctl` so that command templates
// (deploy/rolling-upgrade.sh --stop/--start/--upgrade) can drive them:
// `curl -fsS http://127.0.0.1:PORT/stop/{name}` returns once the process has
// exited, as `systemctl stop` does; /start returns once it is spawned; /upgrade
// records the upgrade and fails if the process still runs.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { CLI } from "../../sim/local-farm.js";

/** systemd's TimeoutStopSec in deploy/systemd/xfarm-c2s@.service: SIGKILL after it. */
const STOP_TIMEOUT_MS = 15_000;

export interface UnitEvent {
  name: string;
  op: "start" | "stop" | "upgrade";
  /** The PID started or stopped. */
  pid?: number;
}

export class C2sUnits {
  readonly events: UnitEvent[] = [];
  private readonly procs = new Map<string, ChildProcess>();
  private server: http.Server | null = null;
  private url = "";

  constructor(
    private readonly configFile: string,
    private readonly dir: string,
    /** Each front end's client ports. */
    private readonly ports: Record<string, { port: number; tlsPort: number }>,
  ) {}

  get names(): string[] {
    return Object.keys(this.ports);
  }

  pid(name: string): number | undefined {
    return this.procs.get(name)?.pid;
  }

  start(name: string): number {
    const p = this.ports[name];
    if (!p) throw new Error(`no unit ${name}`);
    if (this.procs.has(name)) throw new Error(`${name} already runs`);
    const log = fs.openSync(path.join(this.dir, `${name}.log`), "a");
    const child = spawn(process.execPath, [CLI, "c2s"], {
      env: { ...process.env, XFARM_CONFIG: this.configFile, XFARM_C2S_NAME: name, XFARM_C2S_PORT: String(p.port), XFARM_C2S_TLS_PORT: String(p.tlsPort) },
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    this.procs.set(name, child);
    child.once("exit", () => {
      if (this.procs.get(name) === child) this.procs.delete(name);
    });
    this.events.push({ name, op: "start", pid: child.pid });
    return child.pid!;
  }

  /** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; resolves once the process has exited. */
  async stop(name: string): Promise<void> {
    const child = this.procs.get(name);
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.events.push({ name, op: "stop", pid: child.pid });
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(killer);
  }

  /** The "systemctl" endpoint; returns its base URL. */
  async listen(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const m = /^\/(start|stop|upgrade)\/([\w-]+)$/.exec(req.url ?? "");
      const answer = (code: number, text: string) => res.writeHead(code, { "content-type": "text/plain" }).end(text + "\n");
      if (!m || !this.ports[m[2]!]) return answer(404, "no such unit");
      const [, op, name] = m as unknown as [string, UnitEvent["op"], string];
      if (op === "upgrade") {
        if (this.procs.has(name)) return answer(409, `${name} still runs`);
        this.events.push({ name, op });
        return answer(200, `${name} upgraded`);
      }
      if (op === "start") {
        try {
          return answer(200, `${name} started, pid ${this.start(name)}`);
        } catch (err) {
          return answer(409, (err as Error).message);
        }
      }
      this.stop(name).then(() => answer(200, `${name} stopped`));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** A command template for deploy/rolling-upgrade.sh. */
  command(op: UnitEvent["op"]): string {
    return `curl -fsS ${this.url}/${op}/{name}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.names.map((n) => this.stop(n)));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
