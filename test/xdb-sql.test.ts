// The SQLite driver against real files in a temp directory, the way the sm,
// the c2s processes and the CLI use it: several connections on one file.
import { describe, it, expect, beforeEach, afterEach } from "vitest";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { SqliteStore } from "../xdb-sql/sqlite-store.js";
import { openStore, describeStore, parseStoreUrl } from "../xdb-sql/open-store.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, checkMigrations } from "../xdb-sql/migrations.js";
import type { Credentials } from "../lib/sasl/scram-credentials.js";
import type { RosterItem, Store } from "../xdb-sql/store.js";
import { rosterItem } from "./harness/roster-item.js";

let dir: string;
let opened: Store[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-xdb-sql-"));
  opened = [];
});

afterEach(async () => {
  for (const s of opened) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function track<T extends Store>(s: T): T {
  opened.push(s);
  return s;
}

async function fresh(name = "xfarm.db"): Promise<SqliteStore> {
  const s = track(new SqliteStore(path.join(dir, name)));
  await s.migrate();
  return s;
}

function creds(iterations = 4096): Credentials {
  return {
    "SHA-1": {
      salt: crypto.randomBytes(16),
      iterations,
      storedKey: crypto.randomBytes(20),
      serverKey: crypto.randomBytes(20),
    },
    "SHA-256": {
      salt: crypto.randomBytes(16),
      iterations: iterations * 2,
      storedKey: crypto.randomBytes(32),
      serverKey: crypto.randomBytes(32),
    },
  };
}

const item = rosterItem;

/** A second, raw connection, as another tool would open the file. */
function raw(file: string): Database.Database {
  return new Database(file);
}

describe("schema migrations", () => {
  it("numbers migrations 1..n and rejects gaps", () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(
      Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
    );
    expect(() => checkMigrations([{ version: 2, description: "x", sqlite: ["SELECT 1"], mysql: ["SELECT 1"] }])).toThrow(
      /expected 1/,
    );
    expect(() => checkMigrations([{ version: 1, description: "x", sqlite: ["SELECT 1"], mysql: [] }])).toThrow(
      /no MySQL statements/,
    );
  });

  it("migrates an empty database, creating the missing directory", async () => {
    const file = path.join(dir, "a", "b", "xfarm.db");
    const s = track(new SqliteStore(file));
    expect(await s.schemaVersion()).toEqual({ current: 0, latest: LATEST_SCHEMA_VERSION });
    await s.migrate();
    expect(await s.schemaVersion()).toEqual({
      current: LATEST_SCHEMA_VERSION,
      latest: LATEST_SCHEMA_VERSION,
    });
    expect(fs.statSync(file).isFile()).toBe(true);

    const db = raw(file);
    try {
      const names = db
        .prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name`)
        .pluck()
        .all();
      expect(names).toEqual(
        expect.arrayContaining(["accounts", "offline", "offline_user_bytes", "roster", "schema_version"]),
      );
      // No password may ever be stored, under any name.
      for (const table of ["accounts", "roster", "offline"]) {
        const cols = db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[];
        expect(cols.length).toBeGreaterThan(0);
        expect(cols.filter((c) => /pass|pwd/i.test(c))).toEqual([]);
      }
      expect(db.prepare(`SELECT version FROM schema_version ORDER BY version`).pluck().all()).toEqual(
        MIGRATIONS.map((m) => m.version),
      );
    } finally {
      db.close();
    }
  });

  it("re-migrates idempotently, keeping data, from the same and another connection", async () => {
    const file = path.join(dir, "xfarm.db");
    const a = await fresh();
    expect(await a.createAccount("alice@example.com", creds())).toBe(true);
    await a.migrate();
    const b = track(new SqliteStore(file));
    await b.migrate();
    expect(await b.accountExists("alice@example.com")).toBe(true);
    const db = raw(file);
    try {
      expect(db.prepare(`SELECT COUNT(*) FROM schema_version`).pluck().get()).toBe(LATEST_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it("creates accounts in bulk in one transaction, skipping existing ones", async () => {
    const s = await fresh();
    await s.createAccount("u1@example.com", creds());
    const created = await s.createAccounts(
      Array.from({ length: 500 }, (_, i) => ({ user: `u${i + 1}@example.com`, credentials: creds() })),
    );
    expect(created).toBe(499);
    expect((await s.listAccounts("example.com")).length).toBe(500);
    expect(await s.getCredentials("u500@example.com")).not.toBeNull();
  });

  it("refuses a database whose schema is newer than this code", async () => {
    const file = path.join(dir, "xfarm.db");
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    await s.close();

    const future = LATEST_SCHEMA_VERSION + 4;
    const db = raw(file);
    db.prepare(`INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'future', 0)`).run(
      future,
    );
    db.close();

    const message =
      `database schema version ${future} is newer than this xfarm knows ` +
      `(${LATEST_SCHEMA_VERSION}); upgrade xfarm`;
    await expect(openStore(`sqlite:${file}`)).rejects.toThrow(message);

    const again = track(new SqliteStore(file));
    expect(await again.schemaVersion()).toEqual({ current: future, latest: LATEST_SCHEMA_VERSION });
    await expect(again.migrate()).rejects.toThrow(message);
    // Nor may data be read or written through an unknown schema.
    await expect(again.accountExists("alice@example.com")).rejects.toThrow(message);
  });

  it("refuses to use a database that was never migrated", async () => {
    const s = track(new SqliteStore(path.join(dir, "xfarm.db")));
    await expect(s.accountExists("alice@example.com")).rejects.toThrow(/older than this xfarm needs.*migrate/);
  });
});

describe("openStore and describeStore", () => {
  it("opens sqlite:, sqlite:// and bare paths with durable, shared-file settings", async () => {
    const urls = [
      `sqlite:${path.join(dir, "one.db")}`,
      `sqlite://${path.join(dir, "two.db")}`,
      path.join(dir, "three", "three.db"),
    ];
    for (const url of urls) {
      const s = track(await openStore(url));
      expect(s.kind).toBe("sqlite");
      expect(s).toBeInstanceOf(SqliteStore);
      expect(await s.schemaVersion()).toEqual({
        current: LATEST_SCHEMA_VERSION,
        latest: LATEST_SCHEMA_VERSION,
      });
      expect((s as SqliteStore).pragmas()).toEqual({
        journalMode: "wal",
        synchronous: 2, // FULL
        busyTimeout: 5000,
        foreignKeys: true,
      });
    }
    for (const f of ["one.db", "two.db", path.join("three", "three.db")]) {
      expect(fs.existsSync(path.join(dir, f))).toBe(true);
    }
  });

  it("resolves relative paths and keeps :memory:", () => {
    expect(parseStoreUrl("sqlite:data/x.db")).toEqual({ kind: "sqlite", file: path.resolve("data/x.db") });
    expect(parseStoreUrl("sqlite://data/x.db")).toEqual({ kind: "sqlite", file: path.resolve("data/x.db") });
    expect(parseStoreUrl("sqlite:///var/lib/x.db")).toEqual({ kind: "sqlite", file: "/var/lib/x.db" });
    expect(parseStoreUrl("sqlite::memory:")).toEqual({ kind: "sqlite", file: ":memory:" });
    expect(() => parseStoreUrl("sqlite:")).toThrow(/no SQLite file path/);
    expect(() => parseStoreUrl("  ")).toThrow(/empty/);
  });

  it("parses MySQL URLs and rejects unknown schemes, without echoing secrets", async () => {
    expect(parseStoreUrl("mysql://xfarm:hunter2@db:3307/xfarm?pool=4")).toEqual({
      kind: "mysql",
      options: { host: "db", port: 3307, user: "xfarm", password: "hunter2", database: "xfarm", poolSize: 4 },
    });
    expect(parseStoreUrl("mariadb://root@localhost/farm?socket=/run/mysqld/mysqld.sock")).toEqual({
      kind: "mysql",
      options: { socketPath: "/run/mysqld/mysqld.sock", user: "root", password: undefined, database: "farm", poolSize: 10 },
    });
    expect(() => parseStoreUrl("mysql://u@h/")).toThrow(/names no database/);
    expect(() => parseStoreUrl("mysql://u@h/db?pool=0")).toThrow(/pool must be a positive integer/);
    const err = await openStore("postgres://u:hunter2@h/db").catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/unsupported store URL scheme "postgres:"/);
    expect((err as Error).message).not.toContain("hunter2");
  });

  it("describes a store without its password", () => {
    const d = describeStore("mysql://xfarm:hunter2@db.internal:3306/xfarm?ssl=true&password=s3cret");
    expect(d).not.toContain("hunter2");
    expect(d).not.toContain("s3cret");
    expect(d).toContain("xfarm@db.internal:3306/xfarm");
    expect(d).toContain("ssl=true");
    expect(describeStore("sqlite:rel/x.db")).toBe(`sqlite:${path.resolve("rel/x.db")}`);
    expect(describeStore(path.join(dir, "x.db"))).toBe(`sqlite:${path.join(dir, "x.db")}`);
    expect(describeStore("ftp://u:hunter2@h/")).not.toContain("hunter2");
  });
});

describe("accounts", () => {
  it("creates, refuses duplicates, reads, updates, deletes", async () => {
    const s = await fresh();
    const first = creds();
    expect(await s.accountExists("alice@example.com")).toBe(false);
    expect(await s.getCredentials("alice@example.com")).toBeNull();

    expect(await s.createAccount("alice@example.com", first)).toBe(true);
    expect(await s.accountExists("alice@example.com")).toBe(true);
    // A duplicate leaves the original keys untouched.
    expect(await s.createAccount("alice@example.com", creds())).toBe(false);
    expect(await s.getCredentials("alice@example.com")).toEqual(first);

    const second = creds(8192);
    expect(await s.setCredentials("alice@example.com", second)).toBe(true);
    expect(await s.getCredentials("alice@example.com")).toEqual(second);
    expect(await s.setCredentials("nobody@example.com", second)).toBe(false);
    expect(await s.accountExists("nobody@example.com")).toBe(false);

    expect(await s.deleteAccount("alice@example.com")).toBe(true);
    expect(await s.accountExists("alice@example.com")).toBe(false);
    expect(await s.getCredentials("alice@example.com")).toBeNull();
    expect(await s.deleteAccount("alice@example.com")).toBe(false);
  });

  it("lists all accounts or one domain's, sorted, matching the domain exactly", async () => {
    const s = await fresh();
    for (const u of [
      "zed@example.com",
      "alice@example.com",
      "bob@example.org",
      "carol@sub.example.com",
      "dave@xexample.com",
      "erin@example.com.evil",
    ]) {
      expect(await s.createAccount(u, creds())).toBe(true);
    }
    expect(await s.listAccounts()).toEqual([
      "alice@example.com",
      "bob@example.org",
      "carol@sub.example.com",
      "dave@xexample.com",
      "erin@example.com.evil",
      "zed@example.com",
    ]);
    expect(await s.listAccounts("example.com")).toEqual(["alice@example.com", "zed@example.com"]);
    expect(await s.listAccounts("example.org")).toEqual(["bob@example.org"]);
    expect(await s.listAccounts("nowhere.test")).toEqual([]);
    // LIKE wildcards in the argument are literal.
    expect(await s.listAccounts("%")).toEqual([]);
    expect(await s.listAccounts("exampl_.com")).toEqual([]);
  });

  it("round-trips credential bytes exactly, including views into larger buffers", async () => {
    const s = await fresh();
    const big = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff));
    const c: Credentials = {
      "SHA-1": {
        salt: Buffer.from([0x00, 0xff, 0x00, 0x80, 0x7f]),
        iterations: 4096,
        storedKey: big.subarray(3, 23), // byteOffset 3: only these 20 bytes may be stored
        serverKey: Buffer.alloc(20, 0),
      },
      "SHA-256": {
        salt: crypto.randomBytes(24),
        iterations: 600000,
        storedKey: Buffer.alloc(32, 0xff),
        serverKey: big.subarray(32, 64),
      },
    };
    await s.createAccount("alice@example.com", c);
    const got = await s.getCredentials("alice@example.com");
    expect(got).not.toBeNull();
    for (const hash of ["SHA-1", "SHA-256"] as const) {
      const want = c[hash]!;
      const have = got![hash]!;
      expect(have.iterations).toBe(want.iterations);
      for (const k of ["salt", "storedKey", "serverKey"] as const) {
        expect(Buffer.isBuffer(have[k])).toBe(true);
        expect(have[k].length).toBe(want[k].length);
        expect(have[k].equals(want[k])).toBe(true);
      }
    }
  });

  it("rejects credentials with a bad iteration count", async () => {
    const s = await fresh();
    const c = creds();
    c["SHA-256"]!.iterations = 0;
    await expect(s.createAccount("alice@example.com", c)).rejects.toThrow(/iteration count/);
    expect(await s.accountExists("alice@example.com")).toBe(false);
  });
});

describe("rosters", () => {
  it("puts, gets, updates and deletes items, per user", async () => {
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    await s.createAccount("bob@example.com", creds());

    const carol = item("carol@example.org", {
      name: "Carol",
      subscription: "both",
      groups: ["Friends", "Wörk ✓", ""],
    });
    await s.putRosterItem("alice@example.com", item("zoe@example.net", { askOut: true }));
    await s.putRosterItem("alice@example.com", carol);
    await s.putRosterItem("bob@example.com", item("carol@example.org", { subscription: "to" }));

    expect(await s.getRosterItem("alice@example.com", "carol@example.org")).toEqual(carol);
    expect(await s.getRosterItem("alice@example.com", "nobody@example.org")).toBeNull();
    expect((await s.getRoster("alice@example.com")).map((i) => i.contact)).toEqual([
      "carol@example.org",
      "zoe@example.net",
    ]);
    expect(await s.getRoster("bob@example.com")).toEqual([item("carol@example.org", { subscription: "to" })]);

    // An update replaces every field of the one row.
    const updated = item("carol@example.org", {
      name: null,
      subscription: "from",
      askOut: true,
      pendingIn: true,
      groups: [],
    });
    await s.putRosterItem("alice@example.com", updated);
    expect(await s.getRosterItem("alice@example.com", "carol@example.org")).toEqual(updated);
    expect(await s.getRoster("alice@example.com")).toHaveLength(2);
    // Bob's item with the same contact is untouched.
    expect((await s.getRosterItem("bob@example.com", "carol@example.org"))?.subscription).toBe("to");

    await s.deleteRosterItem("alice@example.com", "carol@example.org");
    expect(await s.getRosterItem("alice@example.com", "carol@example.org")).toBeNull();
    expect((await s.getRoster("alice@example.com")).map((i) => i.contact)).toEqual(["zoe@example.net"]);
    expect(await s.getRosterItem("bob@example.com", "carol@example.org")).not.toBeNull();
  });

  it("keeps invisible pending-in records, flagged, and can make them visible", async () => {
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    const pending = item("stranger@example.org", { pendingIn: true, visible: false });
    await s.putRosterItem("alice@example.com", pending);
    await s.putRosterItem("alice@example.com", item("bob@example.com", { subscription: "both" }));

    const roster = await s.getRoster("alice@example.com");
    expect(roster).toHaveLength(2);
    expect(roster.find((i) => i.contact === "stranger@example.org")).toEqual(pending);
    expect(roster.filter((i) => i.visible).map((i) => i.contact)).toEqual(["bob@example.com"]);

    await s.putRosterItem("alice@example.com", { ...pending, visible: true, groups: ["New"] });
    expect(await s.getRosterItem("alice@example.com", "stranger@example.org")).toEqual({
      ...pending,
      visible: true,
      groups: ["New"],
    });
  });

  it("refuses roster items for a missing account and bad subscriptions", async () => {
    const s = await fresh();
    await expect(s.putRosterItem("ghost@example.com", item("bob@example.com"))).rejects.toThrow(
      "no such account: ghost@example.com",
    );
    await s.createAccount("alice@example.com", creds());
    const bad = { ...item("bob@example.com"), subscription: "maybe" } as unknown as RosterItem;
    await expect(s.putRosterItem("alice@example.com", bad)).rejects.toThrow(/subscription/);
    expect(await s.getRoster("alice@example.com")).toEqual([]);
  });
});

describe("offline messages", () => {
  it("stores, loads oldest first, counts, and deletes only the owner's ids", async () => {
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    await s.createAccount("bob@example.com", creds());

    const before = Date.now();
    const xml = [
      `<message from="bob@example.com/x" to="alice@example.com" id="1"><body>one</body></message>`,
      `<message from="carol@example.org/y" to="alice@example.com" id="2"><body>twø &amp; 💬</body></message>`,
      `<message from="bob@example.com/x" to="alice@example.com" id="3"><body>three</body></message>`,
    ];
    const ids: number[] = [];
    for (const x of xml) {
      ids.push(await s.storeOffline("alice@example.com", x));
      // Interleave Bob's mail so ids are not contiguous per user.
      await s.storeOffline("bob@example.com", `<message to="bob@example.com"><body>${x.length}</body></message>`);
    }
    const after = Date.now();
    expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);

    const msgs = await s.loadOffline("alice@example.com");
    expect(msgs.map((m) => m.id)).toEqual(ids);
    expect(msgs.map((m) => m.xml)).toEqual(xml);
    for (const m of msgs) {
      expect(m.stored).toBeInstanceOf(Date);
      expect(m.stored.getTime()).toBeGreaterThanOrEqual(before);
      expect(m.stored.getTime()).toBeLessThanOrEqual(after);
    }
    expect(await s.countOffline("alice@example.com")).toBe(3);
    expect(await s.countOffline("bob@example.com")).toBe(3);
    expect(await s.countOffline("nobody@example.com")).toBe(0);
    expect(await s.loadOffline("nobody@example.com")).toEqual([]);

    // Bob cannot delete Alice's messages, even naming their ids.
    await s.deleteOffline("bob@example.com", ids);
    expect(await s.countOffline("alice@example.com")).toBe(3);
    expect(await s.countOffline("bob@example.com")).toBe(3);

    await s.deleteOffline("alice@example.com", [ids[0]!, ids[2]!, 999999]);
    expect((await s.loadOffline("alice@example.com")).map((m) => m.xml)).toEqual([xml[1]]);
    await s.deleteOffline("alice@example.com", []);
    expect(await s.countOffline("alice@example.com")).toBe(1);
    expect(await s.countOffline("bob@example.com")).toBe(3);
  });

  it("never reuses an id, even after the newest message is deleted", async () => {
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    await s.storeOffline("alice@example.com", "<message/>");
    const last = await s.storeOffline("alice@example.com", "<message id='b'/>");
    await s.deleteOffline("alice@example.com", [last]);
    expect(await s.storeOffline("alice@example.com", "<message id='c'/>")).toBeGreaterThan(last);
  });

  it("refuses mail for a missing account and malformed ids", async () => {
    const s = await fresh();
    await expect(s.storeOffline("ghost@example.com", "<message/>")).rejects.toThrow(
      "no such account: ghost@example.com",
    );
    await s.createAccount("alice@example.com", creds());
    const id = await s.storeOffline("alice@example.com", "<message/>");
    await expect(s.deleteOffline("alice@example.com", [id, 1.5])).rejects.toThrow(/bad offline message id/);
    // Nothing was deleted: the ids are checked before any delete.
    expect(await s.countOffline("alice@example.com")).toBe(1);
  });
});

describe("deleteAccount", () => {
  it("removes the account's roster and offline rows, and only those", async () => {
    const file = path.join(dir, "xfarm.db");
    const s = await fresh();
    await s.createAccount("alice@example.com", creds());
    await s.createAccount("bob@example.com", creds());
    await s.putRosterItem("alice@example.com", item("bob@example.com", { subscription: "both" }));
    await s.putRosterItem("alice@example.com", item("x@example.org", { pendingIn: true, visible: false }));
    await s.putRosterItem("bob@example.com", item("alice@example.com", { subscription: "both" }));
    await s.storeOffline("alice@example.com", "<message id='a1'/>");
    await s.storeOffline("alice@example.com", "<message id='a2'/>");
    await s.storeOffline("bob@example.com", "<message id='b1'/>");

    expect(await s.deleteAccount("alice@example.com")).toBe(true);

    const db = raw(file);
    try {
      const count = (table: string, user: string) =>
        db.prepare(`SELECT COUNT(*) FROM ${table} WHERE user = ?`).pluck().get(user);
      expect(count("roster", "alice@example.com")).toBe(0);
      expect(count("offline", "alice@example.com")).toBe(0);
      expect(count("accounts", "alice@example.com")).toBe(0);
      expect(count("roster", "bob@example.com")).toBe(1);
      expect(count("offline", "bob@example.com")).toBe(1);
    } finally {
      db.close();
    }

    // A recreated account starts empty.
    await s.createAccount("alice@example.com", creds());
    expect(await s.getRoster("alice@example.com")).toEqual([]);
    expect(await s.loadOffline("alice@example.com")).toEqual([]);
    expect(await s.getRoster("bob@example.com")).toHaveLength(1);
  });
});

describe("several connections on one file", () => {
  it("each sees the other's committed writes", async () => {
    const file = path.join(dir, "shared.db");
    const sm = track(await openStore(`sqlite:${file}`));
    const c2s = track(await openStore(file));

    expect(await sm.createAccount("alice@example.com", creds())).toBe(true);
    expect(await c2s.accountExists("alice@example.com")).toBe(true);
    expect(await c2s.createAccount("alice@example.com", creds())).toBe(false);

    const c = creds(10000);
    await c2s.setCredentials("alice@example.com", c);
    expect(await sm.getCredentials("alice@example.com")).toEqual(c);

    await sm.putRosterItem("alice@example.com", item("bob@example.com", { askOut: true }));
    expect(await c2s.getRoster("alice@example.com")).toEqual([item("bob@example.com", { askOut: true })]);

    const id = await sm.storeOffline("alice@example.com", "<message id='m'/>");
    const loaded = await c2s.loadOffline("alice@example.com");
    expect(loaded.map((m) => [m.id, m.xml])).toEqual([[id, "<message id='m'/>"]]);
    await c2s.deleteOffline("alice@example.com", [id]);
    expect(await sm.countOffline("alice@example.com")).toBe(0);

    expect(await c2s.deleteAccount("alice@example.com")).toBe(true);
    expect(await sm.accountExists("alice@example.com")).toBe(false);
    expect(await sm.listAccounts()).toEqual([]);
  });

  it("waits for another process's write lock instead of failing with SQLITE_BUSY", async () => {
    const file = path.join(dir, "busy.db");
    const s = await fresh("busy.db");
    await s.createAccount("alice@example.com", creds());

    // Another thread with its own connection stands in for another process:
    // it takes the write lock, holds it ~300 ms, then commits its own write.
    const flags = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(
      `
      const { workerData } = require("node:worker_threads");
      const Database = require(workerData.mod);
      const db = new Database(workerData.file);
      db.exec("BEGIN IMMEDIATE");
      db.prepare("INSERT INTO offline (user, xml, stored_at) VALUES ('alice@example.com', '<message id=\\"w\\"/>', 0)").run();
      Atomics.store(workerData.flags, 0, 1);
      Atomics.notify(workerData.flags, 0);
      Atomics.wait(workerData.flags, 1, 0, 300);
      db.exec("COMMIT");
      db.close();
      `,
      {
        eval: true,
        workerData: { mod: createRequire(import.meta.url).resolve("better-sqlite3"), file, flags },
      },
    );
    const exited = new Promise<number>((resolve, reject) => {
      worker.once("exit", resolve);
      worker.once("error", reject);
    });
    expect(Atomics.wait(flags, 0, 0, 5000)).not.toBe("timed-out");

    const t0 = Date.now();
    const id = await s.storeOffline("alice@example.com", "<message id='main'/>");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(await exited).toBe(0);
    // Both writes landed, the worker's first since it held the lock first.
    expect((await s.loadOffline("alice@example.com")).map((m) => [m.id, m.xml])).toEqual([
      [id - 1, `<message id="w"/>`],
      [id, "<message id='main'/>"],
    ]);
  });
});
