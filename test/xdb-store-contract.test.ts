// The Store contract, run against both drivers: SQLite (a temporary file)
// and MySQL/MariaDB (a private Debian mariadbd on a loopback port).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveCredentials, verifyPassword } from "../lib/sasl/scram-credentials.js";
import { normalizeStoredJids } from "../xdb-sql/jid-migration.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE } from "../xdb-sql/migrations.js";
import { openStore } from "../xdb-sql/open-store.js";
import { ANCHOR_SQL, TRIM_SQL, archiveWhere, pageSql, trimBoundarySql } from "../xdb-sql/module-data-sql.js";
import type { ArchivePage, Store } from "../xdb-sql/store.js";
import { MariaDb } from "../sim/mariadb.js";
import { rosterItem } from "./harness/roster-item.js";

interface Backend {
  name: string;
  /** A fresh, empty database's URL. */
  fresh(): Promise<string>;
  /** Sets the recorded schema version by hand, as a newer xfarm would have. */
  bumpVersion(url: string, version: number): Promise<void>;
  /** Runs SQL statements on the database directly, bypassing the store. */
  exec(url: string, statements: readonly string[]): Promise<void>;
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
    exec: async (url, statements) => {
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(url.slice("sqlite:".length));
      // As xfarm's own connections have it, so a migration that ignored it would show.
      db.pragma("foreign_keys = ON");
      for (const sql of statements) db.exec(sql);
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
    exec: async (url, statements) => {
      for (const sql of statements) await mariadb!.query(new URL(url).pathname.slice(1), sql);
    },
  },
];

let creds: Awaited<ReturnType<typeof deriveCredentials>>;
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
    expect(got["SHA-256"]!.storedKey.equals(creds["SHA-256"]!.storedKey)).toBe(true);
    expect(got["SHA-1"]!.salt.equals(creds["SHA-1"]!.salt)).toBe(true);
    expect(await verifyPassword("s3cret ünïcode", got["SHA-256"]!, "SHA-256")).toBe(true);
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
    // Every record counts, the invisible (pending) ones too.
    expect(await s.countRoster("alice@example.com")).toBe(2);
    await s.deleteRosterItem("alice@example.com", "carol@example.com");
    expect(await s.getRosterItem("alice@example.com", "carol@example.com")).toBeNull();
    expect(await s.countRoster("alice@example.com")).toBe(1);
    expect(await s.countRoster("nobody@example.com")).toBe(0);
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

  it("migrates a version-1 database forward and keeps its rows", async () => {
    const url = await backend.fresh();
    const dialect = backend.name === "sqlite" ? "sqlite" : "mysql";
    const key = (b: number) => `X'${Buffer.alloc(20, b).toString("hex")}'`;
    await backend.exec(url, [
      SCHEMA_VERSION_TABLE[dialect],
      ...MIGRATIONS[0]!.mysql.map((_, i) => MIGRATIONS[0]![dialect][i]!),
      `INSERT INTO schema_version (version, description, applied_at) VALUES (1, 'v1', 0)`,
      `INSERT INTO accounts VALUES ('old@example.com', ${key(1)}, 4096, ${key(2)}, ${key(3)}, ${key(4)}, 4096, ${key(5)}, ${key(6)}, 0)`,
      `INSERT INTO roster VALUES ('old@example.com', 'bob@example.com', 'Bob', 'both', 0, 0, 1, '["Friends"]')`,
      `INSERT INTO offline (user, xml, stored_at) VALUES ('old@example.com', '<message/>', 1000)`,
    ]);
    const s = await openStore(url);
    expect(await s.schemaVersion()).toEqual({ current: LATEST_SCHEMA_VERSION, latest: LATEST_SCHEMA_VERSION });
    const got = (await s.getCredentials("old@example.com"))!;
    expect(got["SHA-1"]!.storedKey).toEqual(Buffer.alloc(20, 2));
    expect(got["SHA-256"]!.serverKey).toEqual(Buffer.alloc(20, 6));
    // The rebuilt accounts table must not have cascaded into its children.
    expect(await s.getRoster("old@example.com")).toEqual([item("bob@example.com", { name: "Bob", subscription: "both", groups: ["Friends"] })]);
    expect((await s.loadOffline("old@example.com")).map((m) => m.stored.getTime())).toEqual([1000]);
    // The old message's size was counted in: 10 bytes, so one more of 10 fits a 20-byte quota, and no other.
    const quota = { messages: 10, bytes: 20 };
    expect(await s.storeOfflineWithin("old@example.com", "<message/>", quota)).not.toBeNull();
    expect(await s.storeOfflineWithin("old@example.com", "<message/>", quota)).toBeNull();
    // And the foreign keys still hold on the rebuilt table.
    await expect(s.storeOffline("ghost@example.com", "<message/>")).rejects.toThrow(/no such account/);
    await s.close();
  });

  it("migrates a version-3 database to offline messages stored once by origin, keeping its messages", async () => {
    const url = await backend.fresh();
    const dialect = backend.name === "sqlite" ? "sqlite" : "mysql";
    await backend.exec(url, [
      SCHEMA_VERSION_TABLE[dialect],
      ...MIGRATIONS.slice(0, 3).flatMap((m) => m[dialect]),
      `INSERT INTO schema_version (version, description, applied_at) VALUES (1, 'v1', 0), (2, 'v2', 0), (3, 'v3', 0)`,
      `INSERT INTO accounts (user, sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key, created_at) VALUES ('old@example.com', X'01', 4096, X'02', X'03', 0)`,
      `INSERT INTO offline (user, xml, stored_at, bytes) VALUES ('old@example.com', '<message/>', 1000, 10), ('old@example.com', '<message/>', 2000, 10)`,
    ]);
    const s = await openStore(url);
    expect(await s.schemaVersion()).toEqual({ current: LATEST_SCHEMA_VERSION, latest: LATEST_SCHEMA_VERSION });
    const u = "old@example.com";
    expect((await s.loadOffline(u)).map((m) => m.stored.getTime())).toEqual([1000, 2000]);
    // The two old messages hold no origin, and do not collide with each other or with a new one.
    const quota = { messages: 3, bytes: 1000 };
    const id = (await s.storeOfflineWithin(u, "<message id='r'/>", quota, "c2s-1/3fa9c1a/17/0"))!;
    expect(await s.storeOfflineWithin(u, "<message id='r'/>", quota, "c2s-1/3fa9c1a/17/0")).toBe(id);
    expect(await s.storeOffline(u, "<message/>")).toBeGreaterThan(id);
    expect(await s.countOffline(u)).toBe(4);
    await s.close();
  });

  it("stores an offline message once by its origin, full quota or racing stores alike", async () => {
    const s = await open();
    const [a, b] = ["alice@example.com", "bob@example.com"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    const quota = { messages: 3, bytes: 1 << 20 };
    const o = "c2s-1/3fa9c1a/17/0";

    // The same origin twice: one row, the same id, from either method.
    const first = (await s.storeOfflineWithin(a, "<message id='1'/>", quota, o))!;
    expect(first).toBeGreaterThan(0);
    expect(await s.storeOfflineWithin(a, "<message id='1'/>", quota, o)).toBe(first);
    expect(await s.storeOffline(a, "<message id='1'/>", new Date(), o)).toBe(first);
    expect(await s.countOffline(a)).toBe(1);
    // Different origins, or none: a row each.
    expect(await s.storeOfflineWithin(a, "<message id='2'/>", quota, "c2s-1/3fa9c1a/17/1")).toBeGreaterThan(first);
    expect(await s.storeOfflineWithin(a, "<message id='3'/>", quota)).not.toBeNull();
    expect(await s.countOffline(a)).toBe(3);
    // Quota full: a new message is refused, the one already held is not.
    expect(await s.storeOfflineWithin(a, "<message id='4'/>", quota, "c2s-2/77/1/0")).toBeNull();
    expect(await s.storeOfflineWithin(a, "<message id='4'/>", quota)).toBeNull();
    expect(await s.storeOfflineWithin(a, "<message id='1'/>", quota, o)).toBe(first);
    expect(await s.countOffline(a)).toBe(3);
    // An origin is per user: a stanza sent to two users is stored for each.
    expect(await s.storeOfflineWithin(b, "<message id='1'/>", quota, o)).not.toBe(first);
    // Once delivered and deleted, the message is no longer held: the origin stores again.
    await s.deleteOffline(a, [first]);
    expect(await s.storeOfflineWithin(a, "<message id='1'/>", quota, o)).toBeGreaterThan(first);

    // Stores of one origin racing, with and without the quota: one row, one id for all.
    const race = "c2s-2/0b1c/5/9";
    const ids = await Promise.all([
      ...Array.from({ length: 8 }, () => s.storeOfflineWithin(b, "<message id='race'/>", { messages: 100, bytes: 1 << 20 }, race)),
      ...Array.from({ length: 8 }, () => s.storeOffline(b, "<message id='race'/>", new Date(), race)),
    ]);
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toEqual(expect.any(Number));
    expect((await s.loadOffline(b)).map((m) => m.xml)).toEqual(["<message id='1'/>", "<message id='race'/>"]);

    await expect(s.storeOfflineWithin(a, "<m/>", quota, "x".repeat(301))).rejects.toThrow(RangeError);
    await expect(s.storeOffline(a, "<m/>", new Date(), "x".repeat(301))).rejects.toThrow(RangeError);
    await expect(s.storeOfflineWithin("ghost@example.com", "<m/>", quota, o)).rejects.toThrow(/no such account/);
    await expect(s.storeOffline("ghost@example.com", "<m/>", new Date(), o)).rejects.toThrow(/no such account/);
    await s.close();
  });

  it("keeps an imported account with one SCRAM hash, and refuses one with none", async () => {
    const s = await open();
    expect(await s.createAccount("imported@example.com", { "SHA-1": creds["SHA-1"]! })).toBe(true);
    const got = (await s.getCredentials("imported@example.com"))!;
    expect(Object.keys(got)).toEqual(["SHA-1"]);
    expect(got["SHA-1"]!.storedKey.equals(creds["SHA-1"]!.storedKey)).toBe(true);
    await expect(s.createAccount("empty@example.com", {})).rejects.toThrow(/no SCRAM keys/);
    expect(await s.setCredentials("imported@example.com", creds)).toBe(true);
    expect(Object.keys((await s.getCredentials("imported@example.com"))!).sort()).toEqual(["SHA-1", "SHA-256"]);
    await s.close();
  });

  it("stores a vCard and private XML per account, deleted with it", async () => {
    const s = await open();
    await s.createAccount("alice@example.com", creds);
    const vcard = "<vCard xmlns='vcard-temp'><FN>Alice 🐝</FN></vCard>";
    expect(await s.getVcard("alice@example.com")).toBeNull();
    await s.setVcard("alice@example.com", vcard);
    await s.setVcard("alice@example.com", vcard.replace("Alice", "Alice L."));
    expect(await s.getVcard("alice@example.com")).toBe(vcard.replace("Alice", "Alice L."));
    await expect(s.setVcard("ghost@example.com", vcard)).rejects.toThrow(/no such account/);

    const bookmarks = { namespace: "storage:bookmarks", name: "storage" };
    const prefs = { namespace: "urn:example:prefs", name: "prefs" };
    await s.setPrivate("alice@example.com", bookmarks, "<storage xmlns='storage:bookmarks'/>");
    await s.setPrivate("alice@example.com", prefs, "<prefs xmlns='urn:example:prefs'>1</prefs>");
    await s.setPrivate("alice@example.com", prefs, "<prefs xmlns='urn:example:prefs'>2</prefs>");
    expect(await s.getPrivate("alice@example.com", prefs)).toBe("<prefs xmlns='urn:example:prefs'>2</prefs>");
    expect(await s.getPrivate("alice@example.com", { namespace: "urn:example:prefs", name: "other" })).toBeNull();
    expect((await s.listPrivate("alice@example.com")).map((p) => p.key)).toEqual([bookmarks, prefs]);
    // Sizes in UTF-8 bytes, not characters.
    await s.setPrivate("alice@example.com", prefs, "<prefs xmlns='urn:example:prefs'>ü🐝</prefs>");
    expect(await s.privateSizes("alice@example.com")).toEqual([
      { key: bookmarks, bytes: Buffer.byteLength("<storage xmlns='storage:bookmarks'/>") },
      { key: prefs, bytes: Buffer.byteLength("<prefs xmlns='urn:example:prefs'>ü🐝</prefs>") },
    ]);
    await s.setPrivate("alice@example.com", bookmarks, null);
    expect(await s.getPrivate("alice@example.com", bookmarks)).toBeNull();
    await expect(s.setPrivate("alice@example.com", { namespace: "x".repeat(1025), name: "a" }, "<a/>")).rejects.toThrow(RangeError);

    expect(await s.deleteAccount("alice@example.com")).toBe(true);
    await s.createAccount("alice@example.com", creds);
    expect(await s.getVcard("alice@example.com")).toBeNull();
    expect(await s.listPrivate("alice@example.com")).toEqual([]);
    await s.close();
  });

  it("keeps PEP nodes with their newest items, in publication order", async () => {
    const s = await open();
    const u = "alice@example.com";
    await s.createAccount(u, creds);
    const node = "urn:example:status";
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
    const pub = (id: string, max = 2) => s.publishPepItem(u, node, { id, xml: `<status xmlns='urn:example'>${id}</status>`, published: at(id.length) }, max);
    await expect(pub("a")).rejects.toThrow(/no PEP node/);
    await s.putPepNode(u, { node, config: { "pubsub#access_model": "open", "pubsub#max_items": "2" } });
    expect(await pub("a")).toEqual([]);
    expect(await pub("bb")).toEqual([]);
    expect(await pub("ccc")).toEqual(["a"]);
    // Republishing an id replaces it and makes it the newest.
    expect(await pub("bb")).toEqual([]);
    expect((await s.getPepItems(u, node)).map((i) => i.id)).toEqual(["ccc", "bb"]);
    expect((await s.getPepItems(u, node, { last: 1 })).map((i) => i.xml)).toEqual(["<status xmlns='urn:example'>bb</status>"]);
    expect(await s.getPepItems(u, node, { ids: ["ccc", "zz"] })).toEqual([{ id: "ccc", xml: "<status xmlns='urn:example'>ccc</status>", published: at(3) }]);
    // Asked in any order, answered oldest first.
    expect((await s.getPepItems(u, node, { ids: ["bb", "ccc", "bb"] })).map((i) => i.id)).toEqual(["ccc", "bb"]);
    expect(await s.getPepItems(u, node, { ids: [] })).toEqual([]);
    expect(await s.retractPepItem(u, node, "ccc")).toBe(true);
    expect(await s.retractPepItem(u, node, "ccc")).toBe(false);
    // Sizes in UTF-8 bytes, oldest first.
    expect(await pub("dddd")).toEqual([]);
    await s.publishPepItem(u, node, { id: "é", xml: "<status xmlns='urn:example'>é🐝</status>", published: at(5) }, 3);
    expect(await s.pepItemSizes(u, node)).toEqual([
      { id: "bb", bytes: Buffer.byteLength("<status xmlns='urn:example'>bb</status>") },
      { id: "dddd", bytes: Buffer.byteLength("<status xmlns='urn:example'>dddd</status>") },
      { id: "é", bytes: Buffer.byteLength("<status xmlns='urn:example'>é🐝</status>") },
    ]);
    await s.retractPepItem(u, node, "dddd");
    await s.retractPepItem(u, node, "é");

    await s.putPepNode(u, { node: "http://jabber.org/protocol/nick", config: {} });
    await s.putPepNode(u, { node, config: { "pubsub#access_model": "presence" } });
    expect(await s.listPepNodes(u)).toEqual([
      { node: "http://jabber.org/protocol/nick", config: {} },
      { node, config: { "pubsub#access_model": "presence" } },
    ]);
    expect((await s.getPepItems(u, node)).map((i) => i.id)).toEqual(["bb"]);
    expect(await s.deletePepNode(u, node)).toBe(true);
    expect(await s.getPepNode(u, node)).toBeNull();
    expect(await s.getPepItems(u, node)).toEqual([]);
    await expect(s.putPepNode(u, { node: "n".repeat(1025), config: {} })).rejects.toThrow(RangeError);

    expect(await s.deleteAccount(u)).toBe(true);
    expect(await s.listPepNodes(u)).toEqual([]);
    await s.close();
  });

  it("holds a user to an offline quota, by count and by UTF-8 bytes, even under concurrent stores", async () => {
    const s = await open();
    for (const u of ["alice", "bob", "carol"]) await s.createAccount(`${u}@example.com`, creds);
    const byCount = { messages: 3, bytes: 1 << 20 };
    for (let i = 0; i < 3; i++) expect(await s.storeOfflineWithin("alice@example.com", `<m id='${i}'/>`, byCount)).toBeGreaterThan(0);
    expect(await s.storeOfflineWithin("alice@example.com", "<m/>", byCount)).toBeNull();
    expect(await s.countOffline("alice@example.com")).toBe(3);
    expect(await s.storeOfflineWithin("bob@example.com", "<m/>", byCount)).not.toBeNull();

    // 7 + 100 × 4 bytes, though 207 UTF-16 units: two fit 814 bytes exactly, and then nothing more.
    const bee = `<m>${"🐝".repeat(100)}</m>`;
    const byBytes = { messages: 100, bytes: 814 };
    expect(await s.storeOfflineWithin("carol@example.com", bee, byBytes)).not.toBeNull();
    expect(await s.storeOfflineWithin("carol@example.com", bee, byBytes)).not.toBeNull();
    expect(await s.storeOfflineWithin("carol@example.com", "<m></m>", byBytes)).toBeNull();
    expect(await s.countOffline("carol@example.com")).toBe(2);

    // Stores racing for the last places: exactly the quota is taken.
    const racing = await Promise.all(
      Array.from({ length: 12 }, (_, i) => s.storeOfflineWithin("bob@example.com", `<m id='r${i}'/>`, { messages: 6, bytes: 1 << 20 })),
    );
    expect(racing.filter((id) => id !== null)).toHaveLength(5);
    expect(await s.countOffline("bob@example.com")).toBe(6);
    await expect(s.storeOfflineWithin("ghost@example.com", "<m/>", byCount)).rejects.toThrow(/no such account/);
    await s.close();
  });

  it("loads the oldest offline messages a page at a time, bounded by count and bytes", async () => {
    const s = await open();
    const u = "alice@example.com";
    await s.createAccount(u, creds);
    expect(await s.loadOffline(u, { limit: 10, maxBytes: 100 })).toEqual([]);
    const sizes = [40, 40, 40, 300, 20];
    const ids: number[] = [];
    for (const [i, n] of sizes.entries()) ids.push(await s.storeOffline(u, `<m i='${i}'>${"x".repeat(n - 13)}</m>`));
    const page = async (limit: number, maxBytes?: number) => (await s.loadOffline(u, { limit, maxBytes })).map((m) => m.id);
    expect(await page(2)).toEqual(ids.slice(0, 2));
    expect(await page(10, 120)).toEqual(ids.slice(0, 3));
    expect(await page(10, 119)).toEqual(ids.slice(0, 2));
    // The first message comes whatever its size.
    await s.deleteOffline(u, ids.slice(0, 3));
    expect(await page(10, 100)).toEqual([ids[3]]);
    expect(await page(10, 320)).toEqual(ids.slice(3));
    await expect(s.loadOffline(u, { limit: 0 })).rejects.toThrow(RangeError);
    await s.close();
  });

  it("disables an account and enables it again, the flag kept through a rename", async () => {
    const s = await open();
    const [a, b] = ["alice@example.com", "bob@example.org"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    expect((await s.getLoginAccount(a))?.disabled).toBe(false);
    expect(await s.setAccountDisabled(a, true)).toBe(true);
    // Set twice: still the account's answer, though no row changed.
    expect(await s.setAccountDisabled(a, true)).toBe(true);
    expect((await s.getLoginAccount(a))?.disabled).toBe(true);
    expect((await s.getLoginAccount(b))?.disabled).toBe(false);
    expect(await s.listDisabledAccounts()).toEqual([a]);
    expect(await s.listDisabledAccounts("example.org")).toEqual([]);
    expect(await s.setAccountDisabled("nobody@example.com", true)).toBe(false);
    expect(await s.getLoginAccount("nobody@example.com")).toBeNull();
    expect(await s.renameAccount(a, "alicia@example.com")).toBe(true);
    expect((await s.getLoginAccount("alicia@example.com"))?.disabled).toBe(true);
    expect(await s.setAccountDisabled("alicia@example.com", false)).toBe(true);
    expect(await s.listDisabledAccounts()).toEqual([]);
    await s.close();
  });

  it("renames an account with all it holds, and a contact in every roster", async () => {
    const s = await open();
    const [a, b, c] = ["alice@example.com", "bob@example.com", "carol@example.com"];
    for (const u of [a, b, c]) await s.createAccount(u, creds);
    await s.putRosterItem(a, item(c, { subscription: "both", groups: ["Friends"] }));
    await s.putRosterItem(b, item(a, { subscription: "to" }));
    await s.putRosterItem(c, item(a, { subscription: "both" }));
    await s.putRosterItem(c, item("alicia@example.com"));
    await s.storeOffline(a, "<message id='1'/>");
    await s.setVcard(a, "<vCard xmlns='vcard-temp'/>");
    await s.setPrivate(a, { namespace: "urn:example", name: "q" }, "<q xmlns='urn:example'/>");
    await s.putPepNode(a, { node: "urn:example:status", config: { "pubsub#access_model": "open" } });
    await s.publishPepItem(a, "urn:example:status", { id: "i1", xml: "<status xmlns='urn:example'/>", published: new Date(0) }, 10);

    expect(await s.renameAccount(a, b)).toBe(false); // taken
    expect(await s.renameAccount("ghost@example.com", "new@example.com")).toBe(false);
    expect(await s.renameAccount(a, "alicia@example.com")).toBe(true);
    const n = "alicia@example.com";
    expect(await s.accountExists(a)).toBe(false);
    expect(await verifyPassword("s3cret ünïcode", (await s.getCredentials(n))!["SHA-256"]!, "SHA-256")).toBe(true);
    expect(await s.getRoster(n)).toEqual([item(c, { subscription: "both", groups: ["Friends"] })]);
    expect((await s.loadOffline(n)).map((m) => m.xml)).toEqual(["<message id='1'/>"]);
    expect(await s.getVcard(n)).toBe("<vCard xmlns='vcard-temp'/>");
    expect(await s.listPrivate(n)).toHaveLength(1);
    expect((await s.getPepItems(n, "urn:example:status")).map((i) => i.id)).toEqual(["i1"]);
    expect(await s.listPepNodes(a)).toEqual([]);

    expect(await s.listRosterContacts()).toEqual([a, n, c]);
    // carol's roster holds both names: hers keeps both, bob's is renamed.
    expect(await s.renameRosterContact(a, n)).toEqual({ renamed: 1, kept: [c] });
    expect(await s.getRosterItem(b, n)).toEqual(item(n, { subscription: "to" }));
    expect((await s.getRoster(c)).map((i) => i.contact)).toEqual([a, n]);
    expect(await s.deleteAccount(n)).toBe(true);
    await s.close();
  });

  it("brings stored JIDs to their RFC 7622 form, refusing to merge accounts that are one JID now", async () => {
    const s = await open();
    // As an xfarm that only lowercased could have stored them.
    const fullwidth = "ａlice@example.com"; // one JID with alice@example.com now
    const decomposed = "ju\u0308rgen@example.com"; // becomes jürgen@example.com, which is free
    const invalid = "king♚@example.com"; // no JID at all now
    for (const u of ["alice@example.com", fullwidth, decomposed, invalid, "bob@example.com"]) await s.createAccount(u, creds);
    await s.storeOffline(decomposed, "<message id='kept'/>");
    await s.putRosterItem("bob@example.com", item(decomposed, { subscription: "both" }));
    await s.putRosterItem("bob@example.com", item("ＣＡＲＯＬ@example.com"));
    await s.putRosterItem("bob@example.com", item("carol@example.com"));
    await s.putRosterItem("alice@example.com", item("Dave@Example.com"));
    await s.putRosterItem("alice@example.com", item("x\u200By@example.com"));

    const report = await normalizeStoredJids(s);
    expect(report.accountsRenamed).toEqual([[decomposed, "jürgen@example.com"]]);
    expect(report.refused).toHaveLength(2);
    expect(report.refused.find((r) => r.startsWith(invalid))).toMatch(/not a valid JID/);
    expect(report.refused.find((r) => r.includes(fullwidth))).toMatch(/alice@example.com, ａlice@example.com are one JID/);
    expect(report.contactsRenamed).toEqual(
      expect.arrayContaining([
        ["Dave@Example.com", "dave@example.com"],
        [decomposed, "jürgen@example.com"],
      ]),
    );
    expect(report.left).toEqual(
      expect.arrayContaining([expect.stringMatching(/x\u200By@example.com is not a valid JID/), expect.stringMatching(/bob@example.com hold both ＣＡＲＯＬ@example.com and carol@example.com/)]),
    );
    expect((await s.loadOffline("jürgen@example.com")).map((m) => m.xml)).toEqual(["<message id='kept'/>"]);
    expect((await s.getRoster("bob@example.com")).map((i) => i.contact).sort()).toEqual(["carol@example.com", "jürgen@example.com", "ＣＡＲＯＬ@example.com"]);
    // Nothing was merged: both accounts keep their keys, and the invalid one is still there.
    expect(await s.listAccounts()).toEqual(["alice@example.com", "bob@example.com", "jürgen@example.com", invalid, fullwidth].sort());

    // The admin renames one and runs it again: now it is clean, and stays so.
    expect(await s.renameAccount(fullwidth, "alice2@example.com")).toBe(true);
    await s.deleteAccount(invalid);
    const again = await normalizeStoredJids(s);
    expect(again.refused).toEqual([]);
    expect(again.accountsRenamed).toEqual([]);
    await s.close();
  });

  it("keeps an offline message's given storage time", async () => {
    const s = await open();
    await s.createAccount("alice@example.com", creds);
    const stored = new Date("2020-02-02T02:02:02.020Z");
    await s.storeOffline("alice@example.com", "<message/>", stored);
    expect((await s.loadOffline("alice@example.com"))[0]!.stored).toEqual(stored);
    await s.close();
  });

  it("holds the router pair's lease for one holder at a time, by the database's clock", async () => {
    const url = await backend.fresh();
    // Two processes' worth of connections, as the two routers have.
    const [a, b] = await Promise.all([openStore(url), openStore(url)]);
    const first = await a.acquireLease("router-1", 60_000);
    expect(first.holder).toBe("router-1");
    expect(first.remainingMs).toBeGreaterThan(50_000);
    expect(first.remainingMs).toBeLessThanOrEqual(60_000);
    // Held and unexpired: the other cannot take it, and is told who holds it.
    expect((await b.acquireLease("router-2", 60_000)).holder).toBe("router-1");
    expect((await a.acquireLease("router-1", 60_000)).holder).toBe("router-1");
    // Only the holder lets it go; then the other takes it at once.
    await b.releaseLease("router-2");
    expect((await b.acquireLease("router-2", 60_000)).holder).toBe("router-1");
    await a.releaseLease("router-1");
    expect((await b.acquireLease("router-2", 60_000)).holder).toBe("router-2");
    // An expired lease goes to whoever asks next, and its old holder learns so.
    await b.releaseLease("router-2");
    expect((await b.acquireLease("router-2", 1)).holder).toBe("router-2");
    let taken = await a.acquireLease("router-1", 60_000);
    for (let i = 0; taken.holder !== "router-1" && i < 1000; i++) taken = await a.acquireLease("router-1", 60_000);
    expect(taken.holder).toBe("router-1");
    const loser = await b.acquireLease("router-2", 60_000);
    expect(loser.holder).toBe("router-1");
    expect(loser.remainingMs).toBeGreaterThan(0);
    // Two asking at once for a free lease: one gets it, and both are told the same holder.
    await a.releaseLease("router-1");
    const [x, y] = await Promise.all([a.acquireLease("router-1", 60_000), b.acquireLease("router-2", 60_000)]);
    expect(x.holder).toBe(y.holder);
    expect(["router-1", "router-2"]).toContain(x.holder);
    await expect(a.acquireLease("", 1000)).rejects.toThrow(RangeError);
    await expect(a.acquireLease("router-1", 0)).rejects.toThrow(RangeError);
    await expect(a.acquireLease("r".repeat(256), 1000)).rejects.toThrow(RangeError);
    await Promise.all([a.close(), b.close()]);
  });
  it("keeps a module's key-value entries per user and store, within a quota", async () => {
    const s = await open();
    const [a, b] = ["alice@example.com", "bob@example.com"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    expect(await s.putKv(a, "blocking", "romeo@example.net", "")).toBe(true);
    expect(await s.putKv(a, "blocking", "mallory@example.org", "")).toBe(true);
    expect(await s.putKv(a, "last", "seen", JSON.stringify({ at: 1, status: "gone 🐝" }))).toBe(true);
    expect(await s.putKv(b, "blocking", "eve@example.com", "")).toBe(true);
    expect(await s.listKvKeys(a, "blocking")).toEqual(["mallory@example.org", "romeo@example.net"]);
    expect(JSON.parse((await s.getKv(a, "last", "seen"))!)).toEqual({ at: 1, status: "gone 🐝" });
    expect(await s.getKv(a, "last", "nothing")).toBeNull();
    expect(await s.getKv(b, "last", "seen")).toBeNull();
    // Replacing keeps one key; bytes are the key's and the value's, in UTF-8.
    expect(await s.putKv(a, "last", "seen", "🐝")).toBe(true);
    expect(await s.kvUsage(a, "last")).toEqual({ keys: 1, bytes: 4 + 4 });
    // A quota refuses what would grow the store past it, and allows what does not grow it.
    const quota = { keys: 2, bytes: 100 };
    expect(await s.putKv(a, "blocking", "third@example.com", "", quota)).toBe(false);
    expect(await s.putKv(a, "blocking", "romeo@example.net", "x".repeat(100), quota)).toBe(false);
    expect(await s.putKv(a, "blocking", "romeo@example.net", "x", quota)).toBe(true);
    expect(await s.putKv(a, "blocking", "romeo@example.net", "", quota)).toBe(true);
    expect(await s.listKvKeys(a, "blocking")).toEqual(["mallory@example.org", "romeo@example.net"]);
    expect(await s.deleteKv(a, "blocking", "romeo@example.net")).toBe(true);
    expect(await s.deleteKv(a, "blocking", "romeo@example.net")).toBe(false);
    expect(await s.listKv(a)).toEqual([
      { store: "blocking", key: "mallory@example.org", value: "" },
      { store: "last", key: "seen", value: "🐝" },
    ]);
    expect(await s.clearKv(a, "blocking")).toBe(1);
    expect(await s.listKvKeys(b, "blocking")).toEqual(["eve@example.com"]);
    await expect(s.putKv(a, "x".repeat(65), "k", "v")).rejects.toThrow(RangeError);
    await expect(s.putKv(a, "s", "k".repeat(1025), "v")).rejects.toThrow(RangeError);
    await expect(s.putKv(a, "", "k", "v")).rejects.toThrow(RangeError);
    await expect(s.putKv("ghost@example.com", "s", "k", "v")).rejects.toThrow(/no such account/);
    await expect(s.putKv("ghost@example.com", "s", "k", "v", quota)).rejects.toThrow(/no such account/);
    await s.close();
  });

  it("archives items per user in time order, paged and filtered as XEP-0313 asks", async () => {
    const s = await open();
    const [a, b] = ["alice@example.com", "bob@example.com"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n));
    // Appended out of time order, two in one second: the order is the stamp, then the append.
    const ids = await s.appendArchive(a, "mam", [
      { stamp: at(3), with: "bob@example.com", xml: "<message id='3'/>" },
      { stamp: at(1), with: "bob@example.com", xml: "<message id='1'/>" },
      { stamp: at(2), with: "carol@example.com", xml: "<message id='2a'>é</message>" },
      { id: "fixed", stamp: at(2), with: "bob@example.com", xml: "<message id='2b'/>" },
      { stamp: at(4), with: "carol@example.com", xml: "<message id='4'/>" },
    ]);
    expect(ids[3]).toBe("fixed");
    expect(new Set(ids).size).toBe(5);
    await s.appendArchive(b, "mam", [{ stamp: at(1), with: a, xml: "<message/>" }]);
    // An id already held is not added again.
    expect(await s.appendArchive(a, "mam", [{ id: "fixed", stamp: at(9), with: "x@example.com", xml: "<other/>" }])).toEqual(["fixed"]);
    const xmls = async (q: Parameters<Store["queryArchive"]>[2]) => {
      const p = (await s.queryArchive(a, "mam", q))!;
      return { xml: p.items.map((i) => i.xml), complete: p.complete };
    };
    const all = ["<message id='1'/>", "<message id='2a'>é</message>", "<message id='2b'/>", "<message id='3'/>", "<message id='4'/>"];
    expect(await xmls({ limit: 10 })).toEqual({ xml: all, complete: true });
    expect(await xmls({ limit: 2 })).toEqual({ xml: all.slice(0, 2), complete: false });
    const page1 = (await s.queryArchive(a, "mam", { limit: 2 }))!;
    expect(await xmls({ limit: 2, after: page1.items[1]!.id })).toEqual({ xml: all.slice(2, 4), complete: false });
    expect(await xmls({ limit: 2, after: ids[0] })).toEqual({ xml: all.slice(4), complete: true });
    // The last page, then the one before it.
    expect(await xmls({ limit: 2, before: true })).toEqual({ xml: all.slice(3), complete: false });
    expect(await xmls({ limit: 2, before: ids[0] })).toEqual({ xml: all.slice(1, 3), complete: false });
    expect(await xmls({ limit: 2, before: ids[1] })).toEqual({ xml: [], complete: true });
    expect(await xmls({ limit: 10, after: ids[1], before: ids[4] })).toEqual({ xml: all.slice(1, 4), complete: true });
    // Filters: with, start and end (inclusive), combined with paging.
    expect(await xmls({ limit: 10, with: "carol@example.com" })).toEqual({ xml: [all[1], all[4]], complete: true });
    expect(await xmls({ limit: 10, start: at(2), end: at(3) })).toEqual({ xml: all.slice(1, 4), complete: true });
    expect(await xmls({ limit: 1, with: "bob@example.com", start: at(2), before: true })).toEqual({ xml: [all[3]], complete: false });
    expect(await s.countArchive(a, "mam")).toBe(5);
    expect(await s.countArchive(a, "mam", { with: "bob@example.com", start: at(2) })).toBe(2);
    const item = (await s.queryArchive(a, "mam", { limit: 1, with: "carol@example.com" }))!.items[0]!;
    expect(item).toEqual({ id: ids[2], stamp: at(2), with: "carol@example.com", xml: "<message id='2a'>é</message>" });
    // An id the archive does not hold: XEP-0313's item-not-found.
    expect(await s.queryArchive(a, "mam", { limit: 1, after: "nope" })).toBeNull();
    expect(await s.queryArchive(b, "mam", { limit: 1, before: ids[0] })).toBeNull();
    expect(await s.queryArchive(a, "other", { limit: 5 })).toEqual({ items: [], complete: true });
    await s.appendArchive(a, "other", [{ stamp: at(1), with: b, xml: "<x/>" }]);
    expect(await s.listArchives(a)).toEqual(["mam", "other"]);
    await expect(s.queryArchive(a, "mam", { limit: 0 })).rejects.toThrow(RangeError);
    await expect(s.appendArchive(a, "mam", [{ id: "i".repeat(256), stamp: at(1), with: b, xml: "<x/>" }])).rejects.toThrow(RangeError);
    await expect(s.appendArchive("ghost@example.com", "mam", [{ stamp: at(1), with: b, xml: "<x/>" }])).rejects.toThrow(/no such account/);

    // Retention and a cap.
    expect(await s.deleteArchive(a, "mam", at(2))).toBe(1);
    expect(await s.trimArchive(a, "mam", 2)).toBe(2);
    expect(await xmls({ limit: 10 })).toEqual({ xml: all.slice(3), complete: true });
    expect(await s.trimArchive(a, "mam", 2)).toBe(0);
    expect(await s.deleteArchive(b, "mam", at(4))).toBe(1);
    expect(await s.countArchive(b, "mam")).toBe(0);
    expect(await s.deleteArchive(a, "mam")).toBe(2);
    expect(await s.listArchives(a)).toEqual(["other"]);
    await s.close();
  });

  it("keeps appends made together apart: one for a missing account fails alone, the others are stored", async () => {
    const url = await backend.fresh();
    const s = await openStore(url);
    const [a, b] = ["alice@example.com", "bob@example.com"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    // Made in one turn, as an sm archives the messages of one batch of frames;
    // alice's many appends, one stamp for all, must keep the order they were made in.
    const stamp = new Date();
    const entry = (xml: string) => ({ stamp, with: "carol@example.com", xml });
    const alices = ["<a1/>", "<a2/>", "<a3/>", "<a4/>", "<a5/>", "<a6/>"];
    const results = await Promise.allSettled([
      s.appendArchive(a, "mam", [entry(alices[0]!)]),
      s.appendArchive("ghost@example.com", "mam", [entry("<g/>")]),
      s.appendArchive(b, "mam", [entry("<b1/>"), entry("<b2/>")]),
      ...alices.slice(1).map((xml) => s.appendArchive(a, "mam", [entry(xml)])),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", ...alices.slice(1).map(() => "fulfilled")]);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/no such account/);
    expect((await s.queryArchive(a, "mam", { limit: 10 }))!.items.map((i) => i.xml)).toEqual(alices);
    expect((await s.queryArchive(b, "mam", { limit: 10 }))!.items.map((i) => i.xml)).toEqual(["<b1/>", "<b2/>"]);
    if (backend.name === "sqlite") {
      // Appended just before the store closes: committed first.
      const last = s.appendArchive(a, "mam", [entry("<a7/>")]);
      await s.close();
      await last;
      const again = await openStore(url);
      expect(await again.countArchive(a, "mam")).toBe(alices.length + 1);
      await again.close();
    } else await s.close();
  });

  it("takes module data along when an account is renamed, and away when it is deleted", async () => {
    const s = await open();
    const [a, b] = ["alice@example.com", "bob@example.com"];
    for (const u of [a, b]) await s.createAccount(u, creds);
    await s.putKv(a, "blocking", "romeo@example.net", "");
    const [id] = await s.appendArchive(a, "mam", [{ stamp: new Date(1000), with: b, xml: "<message/>" }]);
    expect(await s.renameAccount(a, "alicia@example.com")).toBe(true);
    expect(await s.listKv(a)).toEqual([]);
    expect(await s.listArchives(a)).toEqual([]);
    expect(await s.listKvKeys("alicia@example.com", "blocking")).toEqual(["romeo@example.net"]);
    expect((await s.queryArchive("alicia@example.com", "mam", { limit: 5 }))!.items.map((i) => i.id)).toEqual([id]);
    expect(await s.deleteAccount("alicia@example.com")).toBe(true);
    // A new account of the old name starts empty.
    await s.createAccount("alicia@example.com", creds);
    expect(await s.listKv("alicia@example.com")).toEqual([]);
    expect(await s.countArchive("alicia@example.com", "mam")).toBe(0);
    await s.close();
  });
});

describe.each(backends)("the $name store's archive over 10,000 items", (backend) => {
  const user = "alice@example.com";
  const total = 10_000;
  let url: string;
  let s: Store;

  beforeAll(async () => {
    url = await backend.fresh();
    s = await openStore(url);
    const others = Array.from({ length: 20 }, (_, i) => `user${i}@example.com`);
    await s.createAccounts([user, ...others].map((u) => ({ user: u, credentials: creds })));
    // Ten correspondents, two items a millisecond (ties the order must break), and other users' items beside them.
    const base = Date.UTC(2026, 0, 1);
    await s.appendArchive(
      user,
      "mam",
      Array.from({ length: total }, (_, i) => ({ stamp: new Date(base + Math.floor(i / 2)), with: `c${i % 10}@example.net`, xml: `<message id='${i}'/>` })),
    );
    for (const other of others) {
      await s.appendArchive(other, "mam", Array.from({ length: 1000 }, (_, i) => ({ stamp: new Date(base + i * 5), with: user, xml: "<message/>" })));
    }
    if (backend.name === "mysql") await mariadb!.query(new URL(url).pathname.slice(1), "ANALYZE TABLE module_archive");
  }, 120_000);

  afterAll(async () => {
    await s?.close();
  });

  const n = (xml: string) => Number(/id='(\d+)'/.exec(xml)![1]);

  it("pages through them all, forward and backward, with and without filters", async () => {
    const seen: number[] = [];
    let after: string | undefined;
    for (;;) {
      const p = (await s.queryArchive(user, "mam", { limit: 250, after }))!;
      seen.push(...p.items.map((i) => n(i.xml)));
      if (p.complete) break;
      after = p.items.at(-1)!.id;
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i));

    const back: number[] = [];
    let before: string | true = true;
    for (;;) {
      const p: ArchivePage = (await s.queryArchive(user, "mam", { limit: 333, before }))!;
      back.unshift(...p.items.map((i) => n(i.xml)));
      if (p.complete) break;
      before = p.items[0]!.id;
    }
    expect(back).toEqual(seen);

    const start = new Date(Date.UTC(2026, 0, 1) + 1000);
    const end = new Date(Date.UTC(2026, 0, 1) + 3999);
    const filter = { with: "c3@example.net", start, end };
    expect(await s.countArchive(user, "mam", filter)).toBe(600);
    const filtered: number[] = [];
    after = undefined;
    for (;;) {
      const p: ArchivePage = (await s.queryArchive(user, "mam", { ...filter, limit: 100, after }))!;
      filtered.push(...p.items.map((i) => n(i.xml)));
      if (p.complete) break;
      after = p.items.at(-1)!.id;
    }
    expect(filtered).toEqual(seen.filter((i) => i % 10 === 3 && i >= 2000 && i < 8000));
    expect(await s.countArchive(user, "mam")).toBe(total);
  }, 120_000);

  it("answers every archive query from a range of an index, in its order", async () => {
    const a = (await s.queryArchive(user, "mam", { limit: 1, after: undefined }))!.items[0]!.id;
    const anchor = { stamp: Date.UTC(2026, 0, 1) + 100, seq: 300 };
    const t = new Date(Date.UTC(2026, 0, 1) + 50);
    const shapes: { sql: string; params: unknown[] }[] = [
      pageSql(user, "mam", { limit: 50 }, undefined, undefined),
      pageSql(user, "mam", { limit: 50, after: a }, anchor, undefined),
      pageSql(user, "mam", { limit: 50, before: a }, undefined, anchor),
      pageSql(user, "mam", { limit: 50, before: true }, undefined, undefined),
      pageSql(user, "mam", { limit: 50, with: "c3@example.net", after: a }, anchor, undefined),
      pageSql(user, "mam", { limit: 50, with: "c3@example.net", start: t, end: new Date(t.getTime() + 999), before: true }, undefined, undefined),
      pageSql(user, "mam", { limit: 50, start: t, before: a }, undefined, anchor),
      (() => {
        const w = archiveWhere(user, "mam", { with: "c3@example.net", start: t });
        return { sql: `SELECT COUNT(*) FROM module_archive WHERE ${w.where}`, params: w.params };
      })(),
      { sql: ANCHOR_SQL, params: [user, "mam", a] },
      { sql: trimBoundarySql(5000), params: [user, "mam"] },
      { sql: TRIM_SQL, params: [user, "mam", anchor.stamp, anchor.stamp, anchor.seq] },
      { sql: "DELETE FROM module_archive WHERE user = ? AND archive_name = ? AND stamp < ?", params: [user, "mam", t.getTime()] },
    ];
    for (const { sql, params } of shapes) {
      const plan = await explain(backend.name, url, sql, params);
      expect({ sql, plan: plan.bad }).toEqual({ sql, plan: [] });
    }
  });
});

/**
 * The plan of one statement, and the steps in it that are not a range or
 * lookup of an index in the order asked: SQLite's EXPLAIN QUERY PLAN must
 * only SEARCH, never SCAN or sort in a temporary B-tree; MariaDB's EXPLAIN
 * must use a key by ref or range, without filesort or a temporary table.
 */
/** The archive's indices that start with the user: a user's query reads only that user's range. */
const USER_KEYS = new Set(["module_archive_time", "module_archive_with", "module_archive_id"]);

async function explain(kind: string, url: string, sql: string, params: unknown[]): Promise<{ bad: string[] }> {
  if (kind === "sqlite") {
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(url.slice("sqlite:".length), { readonly: true });
    try {
      const rows = db.prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(...params);
      return { bad: rows.map((r) => r.detail).filter((d) => !/^SEARCH module_archive USING (COVERING )?INDEX module_archive_(time|with|id) \(user=\? AND archive_name=\?/.test(d)) };
    } finally {
      db.close();
    }
  }
  const { format } = await import("mysql2");
  const rows = (await mariadb!.query(new URL(url).pathname.slice(1), `EXPLAIN ${format(sql, params as never[])}`)) as { type: string; key: string | null; Extra: string | null }[];
  return {
    bad: rows
      .filter((r) => !["ref", "range", "eq_ref", "const"].includes(r.type) || !USER_KEYS.has(r.key ?? "") || /filesort|temporary/i.test(r.Extra ?? ""))
      .map((r) => JSON.stringify(r)),
  };
}

describe("the mysql store's indices", () => {
  it("answers every query of a login and of a message from an index, never a table scan", async () => {
    const url = await mariadb!.createDatabase("xfarm_indices");
    const name = new URL(url).pathname.slice(1);
    const s = await openStore(url);
    // Enough rows that a scan would cost more than an index: the optimizer
    // scans tiny tables whatever indices they have.
    const users = Array.from({ length: 300 }, (_, i) => `user${i}@example.com`);
    await s.createAccounts(users.map((user) => ({ user, credentials: creds })));
    for (const [i, user] of users.entries()) {
      await s.putRosterItem(user, item(users[(i + 1) % users.length]!, { subscription: "both" }));
      await s.storeOffline(user, "<message/>");
      await s.putKv(user, "blocking", users[(i + 2) % users.length]!, "");
      await s.appendArchive(user, "mam", [{ stamp: new Date(), with: users[(i + 1) % users.length]!, xml: "<message/>" }]);
    }
    await s.putPepNode(users[0]!, { node: "n", config: {} });
    await mariadb!.query(name, "ANALYZE TABLE accounts, roster, offline, vcard, private_xml, pep_nodes, pep_items, module_kv, module_archive");
    // MariaDB logs every statement that reads without an index to mysql.slow_log.
    await mariadb!.query(name, "TRUNCATE mysql.slow_log");
    await mariadb!.query(name, "SET GLOBAL log_output = 'TABLE', long_query_time = 1000, log_queries_not_using_indexes = ON, slow_query_log = ON");
    try {
      const u = users[7]!;
      const contact = users[8]!;
      // A login: credentials, roster, offline messages; then a message, presence, vCard, private XML and PEP.
      await s.getCredentials(u);
      await s.getRoster(u);
      const offline = await s.loadOffline(u, { limit: 100, maxBytes: 512 * 1024 });
      await s.deleteOffline(u, offline.map((m) => m.id));
      await s.accountExists(contact);
      await s.getRosterItem(contact, u);
      await s.storeOfflineWithin(contact, "<message/>", { messages: 100, bytes: 1 << 20 });
      await s.storeOfflineWithin(contact, "<message/>", { messages: 100, bytes: 1 << 20 }, "c2s-1/3fa9c1a/17/0");
      await s.storeOffline(contact, "<message/>", new Date(), "c2s-1/3fa9c1a/17/0");
      await s.countOffline(contact);
      await s.getVcard(u);
      await s.getPrivate(u, { namespace: "storage:bookmarks", name: "storage" });
      await s.getPepNode(users[0]!, "n");
      await s.publishPepItem(users[0]!, "n", { id: "1", xml: "<x/>", published: new Date() }, 1);
      await s.getPepItems(users[0]!, "n", { last: 1 });
      await s.getPepItems(users[0]!, "n", { ids: ["1"] });
      await s.pepItemSizes(users[0]!, "n");
      await s.countRoster(u);
      await s.privateSizes(u);
      // Module storage: a blocking list, an archive's page, count and cap.
      await s.putKv(u, "blocking", contact, "", { keys: 100, bytes: 1 << 16 });
      await s.getKv(u, "blocking", contact);
      await s.listKvKeys(u, "blocking");
      await s.deleteKv(u, "blocking", contact);
      const [id] = await s.appendArchive(u, "mam", [{ stamp: new Date(), with: contact, xml: "<message/>" }]);
      await s.queryArchive(u, "mam", { limit: 50, with: contact, before: true });
      await s.queryArchive(u, "mam", { limit: 50, after: id });
      await s.countArchive(u, "mam", { with: contact });
      await s.trimArchive(u, "mam", 1000);
      await s.deleteArchive(u, "mam", new Date(0));
      const logged = (await mariadb!.query(name, "SELECT CONVERT(sql_text USING utf8mb4) AS q FROM mysql.slow_log WHERE db = DATABASE()")) as { q: string }[];
      expect(logged.map((r) => r.q)).toEqual([]);
    } finally {
      await mariadb!.query(name, "SET GLOBAL slow_query_log = OFF, log_queries_not_using_indexes = OFF");
      await s.close();
    }
  }, 60_000);
});
