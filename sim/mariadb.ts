// A private MariaDB server for tests and the fault harness (sim/faults.ts):
// Debian's mariadbd on a loopback port with a temporary data directory,
// started once per test file (or harness run) and removed after. Under
// CI=true a missing server is an error, never a skip.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { freePortBase } from "./free-ports.js";
import { portOpen } from "./port-open.js";

const MARIADBD = "/usr/sbin/mariadbd";
const INSTALL_DB = "/usr/bin/mariadb-install-db";

export class MariaDb {
  private proc: ChildProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static available(): boolean {
    return fs.existsSync(MARIADBD) && fs.existsSync(INSTALL_DB);
  }

  static async start(): Promise<MariaDb> {
    if (!MariaDb.available()) throw new Error("MariaDB is not installed: apt-get install mariadb-server (.ci/run does)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-mariadb-"));
    fs.mkdirSync(path.join(dir, "tmp"));
    const init = spawnSync(
      INSTALL_DB,
      ["--no-defaults", `--datadir=${path.join(dir, "data")}`, `--tmpdir=${path.join(dir, "tmp")}`, "--auth-root-authentication-method=normal", "--skip-test-db", ...asUser()],
      { encoding: "utf8" },
    );
    if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr}`);
    const db = new MariaDb(dir, await freePortBase([0]));
    await db.resume();
    return db;
  }

  /** Stops the server, keeping its data: an outage. */
  async pause(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  }

  /** Starts the server (again) on the same port and data directory. */
  async resume(): Promise<void> {
    const proc = spawn(
      MARIADBD,
      [
        "--no-defaults",
        `--datadir=${path.join(this.dir, "data")}`,
        // Its own: a starting mariadbd deletes the temporary tables it finds in its tmpdir, another server's too.
        `--tmpdir=${path.join(this.dir, "tmp")}`,
        `--socket=${this.socket}`,
        `--pid-file=${path.join(this.dir, "mysqld.pid")}`,
        "--bind-address=127.0.0.1",
        `--port=${this.port}`,
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-flush-log-at-trx-commit=1",
        ...asUser(),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.proc = proc;
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 30_000;
    while (!(await portOpen(this.port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mariadbd did not start: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** mariadbd's PID while it runs (the harness SIGSTOPs it). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get socket(): string {
    return path.join(this.dir, "mysqld.sock");
  }

  /** A fresh, empty database, and the store URL that reaches it as root over the socket. */
  async createDatabase(name: string): Promise<string> {
    const c = await mysql.createConnection({ socketPath: this.socket, user: "root" });
    await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await c.end();
    return `mysql://root@localhost/${name}?socket=${encodeURIComponent(this.socket)}`;
  }

  /** Runs SQL as root in a database (tests that need to reach past the Store). */
  async query(database: string, sql: string): Promise<unknown> {
    const c = await mysql.createConnection({ socketPath: this.socket, user: "root", database });
    try {
      const [rows] = await c.query(sql);
      return rows;
    } finally {
      await c.end();
    }
  }

  async stop(): Promise<void> {
    await this.pause();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** mariadbd refuses to run as root unless told to; tests run as whoever runs them. */
function asUser(): string[] {
  return process.getuid?.() === 0 ? ["--user=root"] : [];
}
