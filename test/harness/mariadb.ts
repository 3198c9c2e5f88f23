// A private MariaDB server for tests: Debian's mariadbd on a loopback port
// with a temporary data directory, started once per test file and removed
// after. Under CI=true a missing server is an error, never a skip.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { freePortBase } from "../../sim/free-ports.js";

const MARIADBD = "/usr/sbin/mariadbd";
const INSTALL_DB = "/usr/bin/mariadb-install-db";

export class MariaDb {
  private constructor(
    private readonly proc: ChildProcess,
    readonly dir: string,
    readonly port: number,
  ) {}

  static available(): boolean {
    return fs.existsSync(MARIADBD) && fs.existsSync(INSTALL_DB);
  }

  static async start(): Promise<MariaDb> {
    if (!MariaDb.available()) throw new Error("MariaDB is not installed: apt-get install mariadb-server (.ci/run does)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-mariadb-"));
    const data = path.join(dir, "data");
    // mariadbd refuses to run as root unless told to; tests run as whoever runs them.
    const asUser = process.getuid?.() === 0 ? ["--user=root"] : [];
    const init = spawnSync(INSTALL_DB, ["--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", ...asUser], {
      encoding: "utf8",
    });
    if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr}`);
    const port = await freePortBase([0]);
    const proc = spawn(
      MARIADBD,
      [
        "--no-defaults",
        `--datadir=${data}`,
        `--socket=${path.join(dir, "mysqld.sock")}`,
        `--pid-file=${path.join(dir, "mysqld.pid")}`,
        "--bind-address=127.0.0.1",
        `--port=${port}`,
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-flush-log-at-trx-commit=1",
        ...asUser,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    const db = new MariaDb(proc, dir, port);
    const deadline = Date.now() + 30_000;
    while (!(await portOpen(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mariadbd did not start: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return db;
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
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
