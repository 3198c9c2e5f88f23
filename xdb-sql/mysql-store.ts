// The production driver: MySQL or MariaDB through mysql2. Every process of a
// farm shares the one database; each holds a small pool (the store must not
// cost a descriptor per user). Prepared statements only; a change spanning
// rows runs in a transaction; a write resolves only once committed.
import mysql from "mysql2/promise";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, SCHEMA_VERSION_TABLE, newerSchemaError } from "./migrations.js";
import { credentialParams, credentialsOf, rosterItem, rosterParams, type AccountRow, type RosterRow } from "./rows.js";
import { StoreUnavailableError, isConnectionError, isMysqlForeignKeyError } from "./store-errors.js";
import { MysqlModuleData, text, type MysqlQueries } from "./mysql-module-data.js";
import { MysqlOffline } from "./mysql-offline.js";
import { MysqlPep } from "./mysql-pep.js";
import { checkLease, checkLength, type ArchiveFilter, type ArchivePage, type ArchiveQuery, type KvQuota, type NewArchiveItem, type Lease, type LoginAccount, type OfflineMessage, type OfflinePage, type OfflineQuota, type PepItem, type PepNode, type PrivateKey, type RosterItem, type Store } from "./store.js";
import type { Credentials } from "../lib/sasl/scram-credentials.js";

export interface MysqlOptions {
  host?: string;
  port?: number;
  socketPath?: string;
  user: string;
  password?: string;
  database: string;
  /** Connections this process keeps at most. */
  poolSize: number;
}

/** Pause before the one retry of work whose connection was lost. */
const RETRY_DELAY_MS = 100;
/** How long a process waits for another's schema migration. */
const MIGRATION_LOCK_SECONDS = 60;
const ROSTER_COLUMNS = "contact, name, subscription, ask_out, pending_in, visible, groups_json";
const ACCOUNT_COLUMNS =
  "sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key, sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key";

/** The database's clock in ms since the epoch, whatever the session's time zone; the same throughout one statement. */
const NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

type Row = Record<string, unknown>;

export class MysqlStore implements Store {
  readonly kind = "mysql";
  onAvailability?: (available: boolean, err?: unknown) => void;
  private readonly pool: mysql.Pool;
  private available = true;
  private readonly queries: MysqlQueries = {
    rows: (sql, params) => this.rows(sql, params),
    run: (sql, params) => this.run(sql, params),
    transaction: (work) => this.transaction(work),
    runFor: (user, sql, params) => this.runFor(user, sql, params),
  };
  /** The table families kept in files of their own. */
  private readonly m = new MysqlModuleData(this.queries);
  private readonly offline = new MysqlOffline(this.queries);
  private readonly pep = new MysqlPep(this.queries);

  constructor(opts: MysqlOptions) {
    this.pool = mysql.createPool({
      host: opts.host,
      port: opts.port,
      socketPath: opts.socketPath,
      user: opts.user,
      password: opts.password,
      database: opts.database,
      connectionLimit: opts.poolSize,
      charset: "utf8mb4_bin",
      supportBigNumbers: true,
      // Timestamps are BIGINT milliseconds: numbers, not strings.
      bigNumberStrings: false,
      // A query while the server is away fails fast rather than hanging.
      connectTimeout: 3_000,
    });
  }

  /**
   * Runs database work, retrying once when the connection was lost (a pooled
   * connection that outlived a server restart); while the server is down,
   * rejects with StoreUnavailableError and reports the outage once.
   */
  private async attempt<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await work().catch(async (err: unknown) => {
        if (!isConnectionError(err)) throw err;
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
        return work();
      });
      if (!this.available) {
        this.available = true;
        this.onAvailability?.(true);
      }
      return result;
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      if (this.available) {
        this.available = false;
        this.onAvailability?.(false, err);
      }
      throw new StoreUnavailableError(err);
    }
  }

  private rows(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.attempt(async () => (await this.pool.execute(sql, params as never[]))[0] as Row[]);
  }

  private run(sql: string, params: unknown[] = []): Promise<mysql.ResultSetHeader> {
    return this.attempt(async () => (await this.pool.execute(sql, params as never[]))[0] as mysql.ResultSetHeader);
  }

  private transaction<T>(work: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
    return this.attempt(() => this.transactionOnce(work));
  }

  private async transactionOnce<T>(work: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
    const c = await this.pool.getConnection();
    try {
      await c.beginTransaction();
      const result = await work(c);
      await c.commit();
      return result;
    } catch (err) {
      await c.rollback().catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  private async readVersion(c: mysql.Connection | mysql.Pool = this.pool): Promise<number> {
    const [rows] = await c.query(`SELECT MAX(version) AS v FROM schema_version`);
    const v = (rows as Row[])[0]?.v;
    return v === null || v === undefined ? 0 : Number(v);
  }

  async migrate(): Promise<void> {
    // MySQL commits DDL at once, so a migration cannot be one transaction; a
    // named lock keeps two processes from migrating the same database at once.
    const c = await this.pool.getConnection();
    try {
      const [locked] = await c.query(`SELECT GET_LOCK('xfarm_migrate', ?) AS ok`, [MIGRATION_LOCK_SECONDS]);
      if (Number((locked as Row[])[0]?.ok) !== 1) throw new Error("another process holds the migration lock");
      try {
        await c.query(SCHEMA_VERSION_TABLE.mysql);
        const current = await this.readVersion(c);
        if (current > LATEST_SCHEMA_VERSION) throw newerSchemaError(current);
        for (const m of MIGRATIONS.slice(current)) {
          for (const sql of m.mysql) await c.query(sql);
          await c.execute(`INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)`, [
            m.version,
            m.description,
            Date.now(),
          ]);
        }
      } finally {
        await c.query(`SELECT RELEASE_LOCK('xfarm_migrate')`);
      }
    } finally {
      c.release();
    }
  }

  async schemaVersion(): Promise<{ current: number; latest: number }> {
    const [tables] = await this.pool.query(`SHOW TABLES LIKE 'schema_version'`);
    const current = (tables as Row[]).length === 0 ? 0 : await this.readVersion();
    return { current, latest: LATEST_SCHEMA_VERSION };
  }

  async createAccount(user: string, credentials: Credentials): Promise<boolean> {
    checkLength("jid", user);
    const r = await this.run(
      `INSERT IGNORE INTO accounts (user, ${ACCOUNT_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [user, ...credentialParams(credentials), Date.now()],
    );
    return r.affectedRows === 1;
  }

  async createAccounts(accounts: { user: string; credentials: Credentials }[]): Promise<number> {
    for (const a of accounts) checkLength("jid", a.user);
    const now = Date.now();
    return this.transaction(async (c) => {
      let created = 0;
      for (const a of accounts) {
        const [r] = await c.execute(
          `INSERT IGNORE INTO accounts (user, ${ACCOUNT_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [a.user, ...credentialParams(a.credentials), now],
        );
        created += (r as mysql.ResultSetHeader).affectedRows;
      }
      return created;
    });
  }

  async setCredentials(user: string, credentials: Credentials): Promise<boolean> {
    const r = await this.run(
      `UPDATE accounts SET sha1_salt = ?, sha1_iterations = ?, sha1_stored_key = ?, sha1_server_key = ?,
         sha256_salt = ?, sha256_iterations = ?, sha256_stored_key = ?, sha256_server_key = ? WHERE user = ?`,
      [...credentialParams(credentials), user],
    );
    return r.affectedRows === 1;
  }

  async getCredentials(user: string): Promise<Credentials | null> {
    const [r] = await this.rows(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE user = ?`, [user]);
    return r ? credentialsOf(r as unknown as AccountRow) : null;
  }

  async deleteAccount(user: string): Promise<boolean> {
    return this.transaction(async (c) => {
      for (const table of ["offline", "roster", "vcard", "private_xml", "pep_items", "pep_nodes", "module_kv", "module_archive"]) {
        await c.execute(`DELETE FROM ${table} WHERE user = ?`, [user]);
      }
      const [r] = await c.execute(`DELETE FROM accounts WHERE user = ?`, [user]);
      return (r as mysql.ResultSetHeader).affectedRows === 1;
    });
  }

  async accountExists(user: string): Promise<boolean> {
    return (await this.rows(`SELECT 1 FROM accounts WHERE user = ?`, [user])).length > 0;
  }

  async renameAccount(from: string, to: string): Promise<boolean> {
    return this.transaction(async (c) => {
      // Locks both names; parents before children and back, so every foreign key holds throughout.
      const [taken] = await c.execute(`SELECT 1 FROM accounts WHERE user = ? FOR UPDATE`, [to]);
      if ((taken as Row[]).length > 0) return false;
      const [copied] = await c.execute(
        `INSERT INTO accounts (user, ${ACCOUNT_COLUMNS}, created_at, disabled) SELECT ?, ${ACCOUNT_COLUMNS}, created_at, disabled FROM accounts WHERE user = ?`,
        [to, from],
      );
      if ((copied as mysql.ResultSetHeader).affectedRows !== 1) return false;
      await c.execute(`INSERT INTO pep_nodes (user, node, config_json) SELECT ?, node, config_json FROM pep_nodes WHERE user = ?`, [to, from]);
      for (const table of ["roster", "offline", "vcard", "private_xml", "pep_items", "module_kv", "module_archive"]) {
        await c.execute(`UPDATE ${table} SET user = ? WHERE user = ?`, [to, from]);
      }
      await c.execute(`DELETE FROM pep_nodes WHERE user = ?`, [from]);
      await c.execute(`DELETE FROM accounts WHERE user = ?`, [from]);
      return true;
    });
  }

  async setAccountDisabled(user: string, disabled: boolean): Promise<boolean> {
    const r = await this.run(`UPDATE accounts SET disabled = ? WHERE user = ?`, [disabled ? 1 : 0, user]);
    // MySQL counts changed rows: an account already so set changes none.
    return r.affectedRows === 1 || this.accountExists(user);
  }

  async getLoginAccount(user: string): Promise<LoginAccount | null> {
    const [r] = await this.rows(`SELECT ${ACCOUNT_COLUMNS}, disabled FROM accounts WHERE user = ?`, [user]);
    return r ? { credentials: credentialsOf(r as unknown as AccountRow), disabled: Number(r.disabled) === 1 } : null;
  }

  async listDisabledAccounts(domain?: string): Promise<string[]> {
    const pattern = domain === undefined ? "%" : "%@" + domain.replace(/[\\%_]/g, "\\$&");
    const rows = await this.rows(`SELECT user FROM accounts WHERE disabled = 1 AND user LIKE ? ESCAPE '\\\\' ORDER BY user`, [pattern]);
    return rows.map((r) => text(r.user));
  }

  async listAccounts(domain?: string): Promise<string[]> {
    const rows =
      domain === undefined
        ? await this.rows(`SELECT user FROM accounts ORDER BY user`)
        : // A localpart cannot contain "@": the suffix names exactly that domain.
          await this.rows(`SELECT user FROM accounts WHERE user LIKE ? ESCAPE '\\\\' ORDER BY user`, [
            "%@" + domain.replace(/[\\%_]/g, "\\$&"),
          ]);
    return rows.map((r) => text(r.user));
  }

  async getRoster(user: string): Promise<RosterItem[]> {
    const rows = await this.rows(`SELECT ${ROSTER_COLUMNS} FROM roster WHERE user = ? ORDER BY contact`, [user]);
    return rows.map((r) => rosterItem(rosterRow(r)));
  }

  async getRosterItem(user: string, contact: string): Promise<RosterItem | null> {
    const [r] = await this.rows(`SELECT ${ROSTER_COLUMNS} FROM roster WHERE user = ? AND contact = ?`, [user, contact]);
    return r ? rosterItem(rosterRow(r)) : null;
  }

  async putRosterItem(user: string, item: RosterItem): Promise<void> {
    checkLength("jid", item.contact);
    await this.runFor(
      user,
      `INSERT INTO roster (user, ${ROSTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE name = VALUES(name), subscription = VALUES(subscription), ask_out = VALUES(ask_out),
         pending_in = VALUES(pending_in), visible = VALUES(visible), groups_json = VALUES(groups_json)`,
      rosterParams(user, item),
    );
  }

  async deleteRosterItem(user: string, contact: string): Promise<void> {
    await this.run(`DELETE FROM roster WHERE user = ? AND contact = ?`, [user, contact]);
  }

  async countRoster(user: string): Promise<number> {
    const [r] = await this.rows(`SELECT COUNT(*) AS n FROM roster WHERE user = ?`, [user]);
    return Number(r?.n ?? 0);
  }

  async listRosterContacts(): Promise<string[]> {
    return (await this.rows(`SELECT DISTINCT contact FROM roster ORDER BY contact`)).map((r) => text(r.contact));
  }

  async renameRosterContact(from: string, to: string): Promise<{ renamed: number; kept: string[] }> {
    return this.transaction(async (c) => {
      const usersWith = async (contact: string) =>
        ((await c.execute(`SELECT user FROM roster WHERE contact = ? FOR UPDATE`, [contact]))[0] as Row[]).map((r) => text(r.user));
      const holding = new Set(await usersWith(to));
      const kept: string[] = [];
      let renamed = 0;
      for (const user of await usersWith(from)) {
        if (holding.has(user)) kept.push(user);
        else {
          const [r] = await c.execute(`UPDATE roster SET contact = ? WHERE user = ? AND contact = ?`, [to, user, from]);
          renamed += (r as mysql.ResultSetHeader).affectedRows;
        }
      }
      return { renamed, kept };
    });
  }

  storeOffline(user: string, xml: string, stored: Date = new Date(), origin?: string): Promise<number> {
    return this.offline.store(user, xml, stored, origin);
  }
  storeOfflineWithin(user: string, xml: string, quota: OfflineQuota, origin?: string): Promise<number | null> {
    return this.offline.storeWithin(user, xml, quota, origin);
  }
  loadOffline(user: string, page?: OfflinePage): Promise<OfflineMessage[]> {
    return this.offline.load(user, page);
  }
  deleteOffline(user: string, ids: number[]): Promise<void> {
    return this.offline.delete(user, ids);
  }
  countOffline(user: string): Promise<number> {
    return this.offline.count(user);
  }

  async getVcard(user: string): Promise<string | null> {
    const [r] = await this.rows(`SELECT xml FROM vcard WHERE user = ?`, [user]);
    return r ? String(r.xml) : null;
  }

  async setVcard(user: string, xml: string | null): Promise<void> {
    if (xml === null) await this.run(`DELETE FROM vcard WHERE user = ?`, [user]);
    else await this.runFor(user, `INSERT INTO vcard (user, xml) VALUES (?, ?) ON DUPLICATE KEY UPDATE xml = VALUES(xml)`, [user, xml]);
  }

  async getPrivate(user: string, key: PrivateKey): Promise<string | null> {
    const [r] = await this.rows(`SELECT xml FROM private_xml WHERE user = ? AND namespace = ? AND name = ?`, [
      user,
      key.namespace,
      key.name,
    ]);
    return r ? String(r.xml) : null;
  }

  async setPrivate(user: string, key: PrivateKey, xml: string | null): Promise<void> {
    checkLength("privateNamespace", key.namespace);
    checkLength("privateName", key.name);
    if (xml === null) {
      await this.run(`DELETE FROM private_xml WHERE user = ? AND namespace = ? AND name = ?`, [user, key.namespace, key.name]);
    } else {
      await this.runFor(
        user,
        `INSERT INTO private_xml (user, namespace, name, xml) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE xml = VALUES(xml)`,
        [user, key.namespace, key.name, xml],
      );
    }
  }

  async listPrivate(user: string): Promise<{ key: PrivateKey; xml: string }[]> {
    const rows = await this.rows(`SELECT namespace, name, xml FROM private_xml WHERE user = ? ORDER BY namespace, name`, [user]);
    return rows.map((r) => ({ key: { namespace: text(r.namespace), name: text(r.name) }, xml: String(r.xml) }));
  }

  async privateSizes(user: string): Promise<{ key: PrivateKey; bytes: number }[]> {
    // LENGTH counts bytes, CHAR_LENGTH characters.
    const rows = await this.rows(`SELECT namespace, name, LENGTH(xml) AS bytes FROM private_xml WHERE user = ? ORDER BY namespace, name`, [user]);
    return rows.map((r) => ({ key: { namespace: text(r.namespace), name: text(r.name) }, bytes: Number(r.bytes) }));
  }

  listPepNodes(user: string): Promise<PepNode[]> {
    return this.pep.listNodes(user);
  }
  getPepNode(user: string, node: string): Promise<PepNode | null> {
    return this.pep.getNode(user, node);
  }
  putPepNode(user: string, node: PepNode): Promise<void> {
    return this.pep.putNode(user, node);
  }
  deletePepNode(user: string, node: string): Promise<boolean> {
    return this.pep.deleteNode(user, node);
  }
  publishPepItem(user: string, node: string, item: PepItem, maxItems: number): Promise<string[]> {
    return this.pep.publish(user, node, item, maxItems);
  }
  getPepItems(user: string, node: string, select: { last?: number; ids?: string[] } = {}): Promise<PepItem[]> {
    return this.pep.items(user, node, select);
  }
  pepItemSizes(user: string, node: string): Promise<{ id: string; bytes: number }[]> {
    return this.pep.itemSizes(user, node);
  }
  retractPepItem(user: string, node: string, id: string): Promise<boolean> {
    return this.pep.retract(user, node, id);
  }

  async acquireLease(holder: string, ttlMs: number): Promise<Lease> {
    checkLease(holder, ttlMs);
    await this.run(`UPDATE router_lease SET holder = ?, expires_at = ${NOW_MS} + ? WHERE id = 1 AND (holder = ? OR expires_at <= ${NOW_MS})`, [holder, ttlMs, holder]);
    // Read apart from the update: a lease taken by the update stays this holder's until it expires.
    const [r] = await this.rows(`SELECT holder, expires_at - ${NOW_MS} AS remaining FROM router_lease WHERE id = 1`);
    return { holder: text(r!.holder), remainingMs: Number(r!.remaining) };
  }

  async releaseLease(holder: string): Promise<void> {
    await this.run(`UPDATE router_lease SET expires_at = 0 WHERE id = 1 AND holder = ?`, [holder]);
  }

  getKv(user: string, store: string, key: string): Promise<string | null> {
    return this.m.getKv(user, store, key);
  }
  putKv(user: string, store: string, key: string, value: string, quota?: KvQuota): Promise<boolean> {
    return this.m.putKv(user, store, key, value, quota);
  }
  deleteKv(user: string, store: string, key: string): Promise<boolean> {
    return this.m.deleteKv(user, store, key);
  }
  listKvKeys(user: string, store: string): Promise<string[]> {
    return this.m.listKvKeys(user, store);
  }
  kvUsage(user: string, store: string): Promise<KvQuota> {
    return this.m.kvUsage(user, store);
  }
  clearKv(user: string, store: string): Promise<number> {
    return this.m.clearKv(user, store);
  }
  listKv(user: string): Promise<{ store: string; key: string; value: string }[]> {
    return this.m.listKv(user);
  }
  appendArchive(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]> {
    return this.m.appendArchive(user, archive, items);
  }
  queryArchive(user: string, archive: string, query: ArchiveQuery): Promise<ArchivePage | null> {
    return this.m.queryArchive(user, archive, query);
  }
  countArchive(user: string, archive: string, filter?: ArchiveFilter): Promise<number> {
    return this.m.countArchive(user, archive, filter);
  }
  deleteArchive(user: string, archive: string, before?: Date): Promise<number> {
    return this.m.deleteArchive(user, archive, before);
  }
  trimArchive(user: string, archive: string, keep: number): Promise<number> {
    return this.m.trimArchive(user, archive, keep);
  }
  listArchives(user: string): Promise<string[]> {
    return this.m.listArchives(user);
  }

  /** A write whose row needs the account, naming the account when it is missing. */
  private async runFor(user: string, sql: string, params: unknown[]): Promise<mysql.ResultSetHeader> {
    try {
      return await this.run(sql, params);
    } catch (err) {
      if (isMysqlForeignKeyError(err)) throw new Error(`no such account: ${user}`, { cause: err });
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function rosterRow(r: Row): RosterRow {
  return {
    contact: text(r.contact),
    name: r.name === null ? null : String(r.name),
    subscription: String(r.subscription),
    ask_out: Number(r.ask_out),
    pending_in: Number(r.pending_in),
    visible: Number(r.visible),
    groups_json: String(r.groups_json),
  };
}
