// The Store contract, run against both drivers: SQLite (a temporary file)
// and MySQL/MariaDB (a private Debian mariadbd on a loopback port).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveCredentials, verifyPassword } from "../lib/sasl/scram-credentials.js";
import { LATEST_SCHEMA_VERSION } from "../xdb-sql/migrations.js";
import { openStore } from "../xdb-sql/open-store.js";
import type { Credentials, Store } from "../xdb-sql/store.js";
import { MariaDb } from "./harness/mariadb.js";
import { rosterItem } from "./harness/roster-item.js";

interface Backend {
  name: string;
  /** A fresh, empty database's URL. */
  fresh(): Promise<string>;
  /** Sets the recorded schema version by hand, as a newer xfarm would have. */
  bumpVersion(url: string, version: number): Promise<void>;
}

let mariadb: MariaDb | null = null;
let dbs = 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-contract-"));

const backends: Backend[] = [
  {
    name: "sqlite",
    fresh: async () => `sqlite:${path.join(tmp, `db${++dbs}.sqlite`)}`,
    bumpVersion: async (url, version) => {
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(url.slice("sqlite:".length));
      db.prepare(`INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'future', 0)`).run(version);
      db.close();
    },
  },
  {
    name: "mysql",
    fresh: async () => mariadb!.createDatabase(`xfarm_contract_${++dbs}`),
    bumpVersion: async (url, version) => {
      const name = new URL(url).pathname.slice(1);
      await mariadb!.query(name, `INSERT INTO schema_version (version, description, applied_at) VALUES (${version}, 'future', 0)`);
    },
  },
];

let creds: Credentials;
const item = rosterItem;

beforeAll(async () => {
  creds = await deriveCredentials("s3cret ünïcode", 64);
  mariadb = await MariaDb.start();
}, 60_000);

afterAll(async () => {
  await mariadb?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.each(backends)("the $name store", (backend) => {
  const open = async () => openStore(await backend.fresh());

  it("migrates an empty database, idempotently, from two processes' worth of connections", async () => {
    const url = await backend.fresh();
    const [a, b] = await Promise.all([openStore(url), openStore(url)]);
    expect(await a.schemaVersion()).toEqual({ current: LATEST_SCHEMA_VERSION, latest: LATEST_SCHEMA_VERSION });
    await a.migrate();
    expect(await a.createAccount("alice@example.com", creds)).toBe(true);
    expect(await b.accountExists("alice@example.com")).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it("refuses a database whose schema is newer than this code", async () => {
    const url = await backend.fresh();
    await (await openStore(url)).close();
    await backend.bumpVersion(url, LATEST_SCHEMA_VERSION + 1);
    await expect(openStore(url)).rejects.toThrow(`database schema version ${LATEST_SCHEMA_VERSION + 1} is newer than this xfarm knows`);
  });

  it("keeps accounts as SCRAM keys, exactly, and lists them by domain", async () => {
    const s: Store = await open();
    expect(await s.createAccount("alice@example.com", creds)).toBe(true);
    expect(await s.createAccount("alice@example.com", creds)).toBe(false);
    const got = (await s.getCredentials("alice@example.com"))!;
    expect(got["SHA-256"].storedKey.equals(creds["SHA-256"].storedKey)).toBe(true);
    expect(got["SHA-1"].salt.equals(creds["SHA-1"].salt)).toBe(true);
    expect(await verifyPassword("s3cret ünïcode", got["SHA-256"], "SHA-256")).toBe(true);
    expect(await s.createAccounts([{ user: "bob@example.org", credentials: creds }, { user: "alice@example.com", credentials: creds }])).toBe(1);
    expect(await s.listAccounts()).toEqual(["alice@example.com", "bob@example.org"]);
    expect(await s.listAccounts("example.org")).toEqual(["bob@example.org"]);
    expect(await s.setCredentials("alice@example.com", await deriveCredentials("new", 64))).toBe(true);
    expect(await s.setCredentials("nobody@example.com", creds)).toBe(false);
    expect(await s.getCredentials("nobody@example.com")).toBeNull();
    await s.close();
  });

  it("stores roster items with their states and groups, in utf8mb4", async () => {
    const s = await open();
    await s.createAccount("alice@example.com", creds);
    await s.putRosterItem("alice@example.com", item("bob@example.com", { name: "Bob 🐝", subscription: "to", askOut: true, groups: ["Friends", "Équipe"] }));
    await s.putRosterItem("alice@example.com", item("carol@example.com", { pendingIn: true, visible: false }));
    await s.putRosterItem("alice@example.com", item("bob@example.com", { name: "Bobby", subscription: "both", groups: ["Friends"] }));
    expect(await s.getRoster("alice@example.com")).toEqual([
      item("bob@example.com", { name: "Bobby", subscription: "both", groups: ["Friends"] }),
      item("carol@example.com", { pendingIn: true, visible: false }),
    ]);
    await s.deleteRosterItem("alice@example.com", "carol@example.com");
    expect(await s.getRosterItem("alice@example.com", "carol@example.com")).toBeNull();
    await expect(s.putRosterItem("ghost@example.com", item("x@example.com"))).rejects.toThrow(/no such account/);
    await s.close();
  });

  it("keeps offline messages in order, per user, until deleted", async () => {
    const s = await open();
    await s.createAccount("alice@example.com", creds);
    await s.createAccount("bob@example.com", creds);
    const a1 = await s.storeOffline("alice@example.com", "<message id='1'><body>héllo 🐝</body></message>");
    const a2 = await s.storeOffline("alice@example.com", "<message id='2'/>");
    const b1 = await s.storeOffline("bob@example.com", "<message id='b'/>");
    const loaded = await s.loadOffline("alice@example.com");
    expect(loaded.map((m) => m.xml)).toEqual(["<message id='1'><body>héllo 🐝</body></message>", "<message id='2'/>"]);
    expect(loaded[0]!.stored.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // bob's id in alice's delete does nothing.
    await s.deleteOffline("alice@example.com", [a1, b1]);
    expect((await s.loadOffline("alice@example.com")).map((m) => m.id)).toEqual([a2]);
    expect(await s.countOffline("bob@example.com")).toBe(1);
    expect(await s.deleteAccount("bob@example.com")).toBe(true);
    expect(await s.countOffline("bob@example.com")).toBe(0);
    await expect(s.storeOffline("bob@example.com", "<message/>")).rejects.toThrow(/no such account/);
    await s.close();
  });
});
