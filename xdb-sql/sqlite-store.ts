// The embedded default driver: one SQLite file shared by the sm, every c2s
// process and the `xfarm user` CLI, each with its own connection.
//
// better-sqlite3 is synchronous; the methods are async only because the Store
// interface is (for MySQL). Each call finishes its work, commit included,
// before its promise resolves, and any SQLite error becomes a rejection.
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import {
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  SCHEMA_VERSION_TABLE,
  newerSchemaError,
} from "./migrations.js";
import { credentialParams, credentialsOf, type AccountRow, type CredentialParams } from "./rows.js";
import { SqliteModuleData } from "./sqlite-module-data.js";
import { SqliteOffline } from "./sqlite-offline.js";
import { SqlitePep } from "./sqlite-pep.js";
import { SqliteRoster } from "./sqlite-roster.js";
import { withSqliteAccount } from "./store-errors.js";
import { checkLease, checkLength, type ArchiveFilter, type ArchivePage, type ArchiveQuery, type KvQuota, type Lease, type LoginAccount, type NewArchiveItem, type OfflineMessage, type OfflinePage, type OfflineQuota, type PepItem, type PepNode, type PrivateKey, type RosterItem, type Store } from "./store.js";
import type { Credentials } from "../lib/sasl/scram-credentials.js";

/** How long a connection waits for another process's write lock. */
const BUSY_TIMEOUT_MS = 5000;
/** The database's clock in ms since the epoch (julianday counts days from noon, 4714 BC). */
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

function prepareAll(db: Database.Database) {
  const credentialColumns =
    "sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key, " +
    "sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key";
  return {
    // ON CONFLICT DO NOTHING rather than INSERT OR IGNORE: the latter would
    // also swallow NOT NULL and CHECK failures.
    createAccount: db.prepare<[string, ...CredentialParams, number]>(
      `INSERT INTO accounts (user, ${credentialColumns}, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user) DO NOTHING`,
    ),
    setCredentials: db.prepare<[...CredentialParams, string]>(
      `UPDATE accounts SET
         sha1_salt = ?, sha1_iterations = ?, sha1_stored_key = ?, sha1_server_key = ?,
         sha256_salt = ?, sha256_iterations = ?, sha256_stored_key = ?, sha256_server_key = ?
       WHERE user = ?`,
    ),
    getCredentials: db.prepare<[string], AccountRow>(
      `SELECT ${credentialColumns} FROM accounts WHERE user = ?`,
    ),
    accountExists: db.prepare<[string], number>(`SELECT 1 FROM accounts WHERE user = ?`).pluck(),
    listAccounts: db.prepare<[], string>(`SELECT user FROM accounts ORDER BY user`).pluck(),
    listAccountsIn: db
      .prepare<[string], string>(`SELECT user FROM accounts WHERE user LIKE ? ESCAPE '\\' ORDER BY user`)
      .pluck(),
    deleteAccount: db.prepare<[string]>(`DELETE FROM accounts WHERE user = ?`),
    setDisabled: db.prepare<[number, string]>(`UPDATE accounts SET disabled = ? WHERE user = ?`),
    getLoginAccount: db.prepare<[string], AccountRow & { disabled: number }>(
      `SELECT ${credentialColumns}, disabled FROM accounts WHERE user = ?`,
    ),
    listDisabled: db.prepare<[string], string>(`SELECT user FROM accounts WHERE disabled = 1 AND user LIKE ? ESCAPE '\\' ORDER BY user`).pluck(),

    deleteRoster: db.prepare<[string]>(`DELETE FROM roster WHERE user = ?`),
    copyAccount: db.prepare<[string, string]>(
      `INSERT INTO accounts (user, ${credentialColumns}, created_at, disabled)
       SELECT ?, ${credentialColumns}, created_at, disabled FROM accounts WHERE user = ?`,
    ),
    copyPepNodes: db.prepare<[string, string]>(`INSERT INTO pep_nodes (user, node, config_json) SELECT ?, node, config_json FROM pep_nodes WHERE user = ?`),
    moveRows: Object.fromEntries(
      ["roster", "offline", "vcard", "private_xml", "pep_items", "module_kv", "module_archive"].map((table) => [table, db.prepare<[string, string]>(`UPDATE ${table} SET user = ? WHERE user = ?`)]),
    ),

    deleteOfflineAll: db.prepare<[string]>(`DELETE FROM offline WHERE user = ?`),

    getVcard: db.prepare<[string], string>(`SELECT xml FROM vcard WHERE user = ?`).pluck(),
    putVcard: db.prepare<[string, string]>(
      `INSERT INTO vcard (user, xml) VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET xml = excluded.xml`,
    ),
    deleteVcard: db.prepare<[string]>(`DELETE FROM vcard WHERE user = ?`),

    getPrivate: db
      .prepare<[string, string, string], string>(`SELECT xml FROM private_xml WHERE user = ? AND namespace = ? AND name = ?`)
      .pluck(),
    putPrivate: db.prepare<[string, string, string, string]>(
      `INSERT INTO private_xml (user, namespace, name, xml) VALUES (?, ?, ?, ?)
       ON CONFLICT (user, namespace, name) DO UPDATE SET xml = excluded.xml`,
    ),
    deletePrivate: db.prepare<[string, string, string]>(`DELETE FROM private_xml WHERE user = ? AND namespace = ? AND name = ?`),
    listPrivate: db.prepare<[string], { namespace: string; name: string; xml: string }>(
      `SELECT namespace, name, xml FROM private_xml WHERE user = ? ORDER BY namespace, name`,
    ),
    deletePrivateAll: db.prepare<[string]>(`DELETE FROM private_xml WHERE user = ?`),
    // LENGTH of a BLOB counts bytes; of TEXT, characters.
    privateSizes: db.prepare<[string], { namespace: string; name: string; bytes: number }>(
      `SELECT namespace, name, LENGTH(CAST(xml AS BLOB)) AS bytes FROM private_xml WHERE user = ? ORDER BY namespace, name`,
    ),

    deletePepAll: db.prepare<[string]>(`DELETE FROM pep_nodes WHERE user = ?`),
    deletePepItemsAll: db.prepare<[string]>(`DELETE FROM pep_items WHERE user = ?`),
    deleteModuleData: ["module_kv", "module_archive"].map((table) => db.prepare<[string]>(`DELETE FROM ${table} WHERE user = ?`)),
    // julianday('now') is the same throughout one statement: the check and the new expiry agree.
    acquireLease: db.prepare<[string, number, string]>(
      `UPDATE router_lease SET holder = ?, expires_at = ${NOW_MS} + ?
       WHERE id = 1 AND (holder = ? OR expires_at <= ${NOW_MS})`,
    ),
    readLease: db.prepare<[], { holder: string; remaining: number }>(
      `SELECT holder, expires_at - ${NOW_MS} AS remaining FROM router_lease WHERE id = 1`,
    ),
    releaseLease: db.prepare<[string]>(`UPDATE router_lease SET expires_at = 0 WHERE id = 1 AND holder = ?`),
  };
}

type Statements = ReturnType<typeof prepareAll>;

interface Parts {
  modules: SqliteModuleData;
  offline: SqliteOffline;
  pep: SqlitePep;
  roster: SqliteRoster;
}

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  /** Absolute path of the database file, or ":memory:". */
  readonly file: string;
  private readonly db: Database.Database;
  private statements: Statements | null = null;
  private partsPrepared: Parts | null = null;

  constructor(file: string) {
    this.file = file === ":memory:" ? file : path.resolve(file);
    if (this.file !== ":memory:") prepareFile(this.file);
    this.db = new Database(this.file);
    try {
      this.configure();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  private configure(): void {
    // busy_timeout first: switching to WAL needs a lock another process may hold.
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const mode = this.db.pragma("journal_mode = WAL", { simple: true });
    if (!this.db.memory && String(mode).toLowerCase() !== "wal") {
      // SQLite keeps the old mode when WAL is impossible (e.g. some network
      // file systems); sharing the file between processes is then unsafe.
      throw new Error(`${this.file}: SQLite could not enable WAL journal mode (got "${mode}")`);
    }
    // FULL: in WAL mode NORMAL may lose the last commits on power loss, and
    // callers acknowledge clients as soon as a write resolves.
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
  }

  /** The connection settings in effect, for startup logs and tests. */
  pragmas(): { journalMode: string; synchronous: number; busyTimeout: number; foreignKeys: boolean } {
    return {
      journalMode: String(this.db.pragma("journal_mode", { simple: true })),
      synchronous: Number(this.db.pragma("synchronous", { simple: true })),
      busyTimeout: Number(this.db.pragma("busy_timeout", { simple: true })),
      foreignKeys: Number(this.db.pragma("foreign_keys", { simple: true })) === 1,
    };
  }

  private readVersion(): number {
    const hasTable = this.db
      .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`)
      .get();
    if (!hasTable) return 0;
    const v = this.db.prepare(`SELECT MAX(version) FROM schema_version`).pluck().get();
    return typeof v === "number" ? v : 0;
  }

  /**
   * Statements are prepared once, on first use rather than in the constructor:
   * they cannot be prepared before migrate() has created the tables.
   */
  private get s(): Statements {
    if (this.statements) return this.statements;
    const current = this.readVersion();
    if (current > LATEST_SCHEMA_VERSION) throw newerSchemaError(current);
    if (current < LATEST_SCHEMA_VERSION) {
      throw new Error(
        `database schema version ${current} is older than this xfarm needs ` +
          `(${LATEST_SCHEMA_VERSION}); run migrate() first`,
      );
    }
    this.statements = prepareAll(this.db);
    return this.statements;
  }

  /** The table families kept in files of their own, prepared as the statements are: once the schema is current. */
  private get parts(): Parts {
    if (this.partsPrepared) return this.partsPrepared;
    void this.s;
    this.partsPrepared = {
      modules: new SqliteModuleData(this.db),
      offline: new SqliteOffline(this.db),
      pep: new SqlitePep(this.db),
      roster: new SqliteRoster(this.db),
    };
    return this.partsPrepared;
  }
  async migrate(): Promise<void> {
    const current = this.readVersion();
    if (current > LATEST_SCHEMA_VERSION) throw newerSchemaError(current);
    this.db.exec(SCHEMA_VERSION_TABLE.sqlite);
    const record = this.db.prepare<[number, string, number]>(
      `INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)`,
    );
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      // IMMEDIATE takes the write lock before reading the version, so two
      // processes starting together cannot both apply the same migration:
      // the second waits, then sees it done.
      // The pragma is a no-op inside a transaction, so it is set around it.
      if (m.sqliteRebuild) this.db.pragma("foreign_keys = OFF");
      try {
        this.db
          .transaction(() => {
            const now = this.readVersion();
            if (now > LATEST_SCHEMA_VERSION) throw newerSchemaError(now);
            if (now >= m.version) return;
            for (const sql of m.sqlite) this.db.exec(sql);
            if (m.sqliteRebuild && (this.db.pragma("foreign_key_check") as unknown[]).length > 0) {
              throw new Error(`migration ${m.version} left rows that break foreign keys`);
            }
            record.run(m.version, m.description, Date.now());
          })
          .immediate();
      } finally {
        if (m.sqliteRebuild) this.db.pragma("foreign_keys = ON");
      }
    }
  }

  async schemaVersion(): Promise<{ current: number; latest: number }> {
    return { current: this.readVersion(), latest: LATEST_SCHEMA_VERSION };
  }

  async createAccount(user: string, credentials: Credentials): Promise<boolean> {
    checkLength("jid", user);
    const params = credentialParams(credentials);
    return this.s.createAccount.run(user, ...params, Date.now()).changes === 1;
  }

  async createAccounts(accounts: { user: string; credentials: Credentials }[]): Promise<number> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        let created = 0;
        for (const a of accounts) checkLength("jid", a.user);
        for (const a of accounts) created += this.s.createAccount.run(a.user, ...credentialParams(a.credentials), now).changes;
        return created;
      })
      .immediate();
  }

  async setCredentials(user: string, credentials: Credentials): Promise<boolean> {
    return this.s.setCredentials.run(...credentialParams(credentials), user).changes === 1;
  }

  async getCredentials(user: string): Promise<Credentials | null> {
    const r = this.s.getCredentials.get(user);
    return r ? credentialsOf(r) : null;
  }

  async deleteAccount(user: string): Promise<boolean> {
    const s = this.s;
    // Explicit child deletes, not only the ON DELETE CASCADE: the outcome must
    // not depend on the foreign_keys pragma of whoever holds the file.
    return this.db
      .transaction(() => {
        s.deleteOfflineAll.run(user);
        s.deleteRoster.run(user);
        s.deleteVcard.run(user);
        s.deletePrivateAll.run(user);
        s.deletePepItemsAll.run(user);
        s.deletePepAll.run(user);
        for (const del of s.deleteModuleData) del.run(user);
        return s.deleteAccount.run(user).changes === 1;
      })
      .immediate();
  }

  async accountExists(user: string): Promise<boolean> {
    return this.s.accountExists.get(user) !== undefined;
  }

  async renameAccount(from: string, to: string): Promise<boolean> {
    const s = this.s;
    // Parents before children and back, so every foreign key holds throughout.
    return this.db
      .transaction(() => {
        if (s.accountExists.get(to) !== undefined || s.copyAccount.run(to, from).changes !== 1) return false;
        s.copyPepNodes.run(to, from);
        for (const move of Object.values(s.moveRows)) move.run(to, from);
        s.deletePepAll.run(from);
        s.deleteAccount.run(from);
        return true;
      })
      .immediate();
  }

  async setAccountDisabled(user: string, disabled: boolean): Promise<boolean> {
    return this.s.setDisabled.run(disabled ? 1 : 0, user).changes === 1;
  }

  async getLoginAccount(user: string): Promise<LoginAccount | null> {
    const r = this.s.getLoginAccount.get(user);
    return r ? { credentials: credentialsOf(r), disabled: r.disabled === 1 } : null;
  }

  async listDisabledAccounts(domain?: string): Promise<string[]> {
    return this.s.listDisabled.all(domain === undefined ? "%" : "%@" + domain.replace(/[\\%_]/g, "\\$&"));
  }

  async listAccounts(domain?: string): Promise<string[]> {
    if (domain === undefined) return this.s.listAccounts.all();
    // A localpart cannot contain "@", so "%@domain" matches exactly that
    // domain; LIKE wildcards in the argument are escaped.
    const pattern = "%@" + domain.replace(/[\\%_]/g, "\\$&");
    return this.s.listAccountsIn.all(pattern);
  }

  async getRoster(user: string): Promise<RosterItem[]> {
    return this.parts.roster.all(user);
  }
  async getRosterItem(user: string, contact: string): Promise<RosterItem | null> {
    return this.parts.roster.item(user, contact);
  }
  async putRosterItem(user: string, item: RosterItem): Promise<void> {
    this.parts.roster.put(user, item);
  }
  async deleteRosterItem(user: string, contact: string): Promise<void> {
    this.parts.roster.delete(user, contact);
  }
  async countRoster(user: string): Promise<number> {
    return this.parts.roster.count(user);
  }
  async listRosterContacts(): Promise<string[]> {
    return this.parts.roster.contacts();
  }
  async renameRosterContact(from: string, to: string): Promise<{ renamed: number; kept: string[] }> {
    return this.parts.roster.renameContact(from, to);
  }

  async storeOffline(user: string, xml: string, stored: Date = new Date(), origin?: string): Promise<number> {
    return this.parts.offline.insert(user, xml, stored, origin, null);
  }
  async storeOfflineWithin(user: string, xml: string, quota: OfflineQuota, origin?: string): Promise<number | null> {
    return this.parts.offline.insert(user, xml, new Date(), origin, quota);
  }
  async loadOffline(user: string, page?: OfflinePage): Promise<OfflineMessage[]> {
    return this.parts.offline.load(user, page);
  }
  async deleteOffline(user: string, ids: number[]): Promise<void> {
    this.parts.offline.delete(user, ids);
  }
  async countOffline(user: string): Promise<number> {
    return this.parts.offline.count(user);
  }

  async getVcard(user: string): Promise<string | null> {
    return this.s.getVcard.get(user) ?? null;
  }

  async setVcard(user: string, xml: string | null): Promise<void> {
    if (xml === null) this.s.deleteVcard.run(user);
    else withSqliteAccount(user, () => this.s.putVcard.run(user, xml));
  }

  async getPrivate(user: string, key: PrivateKey): Promise<string | null> {
    return this.s.getPrivate.get(user, key.namespace, key.name) ?? null;
  }

  async setPrivate(user: string, key: PrivateKey, xml: string | null): Promise<void> {
    checkLength("privateNamespace", key.namespace);
    checkLength("privateName", key.name);
    if (xml === null) this.s.deletePrivate.run(user, key.namespace, key.name);
    else withSqliteAccount(user, () => this.s.putPrivate.run(user, key.namespace, key.name, xml));
  }

  async listPrivate(user: string): Promise<{ key: PrivateKey; xml: string }[]> {
    return this.s.listPrivate.all(user).map((r) => ({ key: { namespace: r.namespace, name: r.name }, xml: r.xml }));
  }

  async privateSizes(user: string): Promise<{ key: PrivateKey; bytes: number }[]> {
    return this.s.privateSizes.all(user).map((r) => ({ key: { namespace: r.namespace, name: r.name }, bytes: r.bytes }));
  }

  async listPepNodes(user: string): Promise<PepNode[]> {
    return this.parts.pep.listNodes(user);
  }
  async getPepNode(user: string, node: string): Promise<PepNode | null> {
    return this.parts.pep.getNode(user, node);
  }
  async putPepNode(user: string, node: PepNode): Promise<void> {
    this.parts.pep.putNode(user, node);
  }
  async deletePepNode(user: string, node: string): Promise<boolean> {
    return this.parts.pep.deleteNode(user, node);
  }
  async publishPepItem(user: string, node: string, item: PepItem, maxItems: number): Promise<string[]> {
    return this.parts.pep.publish(user, node, item, maxItems);
  }
  async getPepItems(user: string, node: string, select: { last?: number; ids?: string[] } = {}): Promise<PepItem[]> {
    return this.parts.pep.items(user, node, select);
  }
  async pepItemSizes(user: string, node: string): Promise<{ id: string; bytes: number }[]> {
    return this.parts.pep.itemSizes(user, node);
  }
  async retractPepItem(user: string, node: string, id: string): Promise<boolean> {
    return this.parts.pep.retract(user, node, id);
  }

  async acquireLease(holder: string, ttlMs: number): Promise<Lease> {
    checkLease(holder, ttlMs);
    const s = this.s;
    const r = this.db
      .transaction(() => {
        s.acquireLease.run(holder, ttlMs, holder);
        return s.readLease.get()!;
      })
      .immediate();
    return { holder: r.holder, remainingMs: r.remaining };
  }

  async releaseLease(holder: string): Promise<void> {
    this.s.releaseLease.run(holder);
  }

  async getKv(user: string, store: string, key: string): Promise<string | null> {
    return this.parts.modules.getKv(user, store, key);
  }
  async putKv(user: string, store: string, key: string, value: string, quota?: KvQuota, lazy?: boolean): Promise<boolean> {
    return this.parts.modules.putKv(user, store, key, value, quota, lazy);
  }
  async deleteKv(user: string, store: string, key: string): Promise<boolean> {
    return this.parts.modules.deleteKv(user, store, key);
  }
  async listKvKeys(user: string, store: string): Promise<string[]> {
    return this.parts.modules.listKvKeys(user, store);
  }
  async kvUsage(user: string, store: string): Promise<KvQuota> {
    return this.parts.modules.kvUsage(user, store);
  }
  async clearKv(user: string, store: string): Promise<number> {
    return this.parts.modules.clearKv(user, store);
  }
  async listKv(user: string): Promise<{ store: string; key: string; value: string }[]> {
    return this.parts.modules.listKv(user);
  }
  async appendArchive(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]> {
    return this.parts.modules.appendArchive(user, archive, items);
  }
  async queryArchive(user: string, archive: string, query: ArchiveQuery): Promise<ArchivePage | null> {
    return this.parts.modules.queryArchive(user, archive, query);
  }
  async countArchive(user: string, archive: string, filter?: ArchiveFilter): Promise<number> {
    return this.parts.modules.countArchive(user, archive, filter);
  }
  async deleteArchive(user: string, archive: string, before?: Date): Promise<number> {
    return this.parts.modules.deleteArchive(user, archive, before);
  }
  async trimArchive(user: string, archive: string, keep: number): Promise<number> {
    return this.parts.modules.trimArchive(user, archive, keep);
  }
  async listArchives(user: string): Promise<string[]> {
    return this.parts.modules.listArchives(user);
  }

  /** Runs a write whose row needs the account, naming the account when it is missing. */

  async close(): Promise<void> {
    if (this.db.open) this.partsPrepared?.modules.flush();
    if (this.db.open) this.db.close();
  }
}

/**
 * Creates the directory and an empty file if missing, both private: the file
 * holds SCRAM keys, which allow an offline dictionary attack on passwords.
 * SQLite gives the -wal and -shm files the database file's permissions.
 */
function prepareFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, "a", 0o600));
}
