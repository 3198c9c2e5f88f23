// Module storage (key-value entries and archives) on MySQL/MariaDB: the
// part of MysqlStore that modules declare, kept apart so the driver stays
// readable. It runs through the driver's own retrying query functions.
import type mysql from "mysql2/promise";
import * as shared from "./module-data-sql.js";
import type { ArchiveFilter, ArchivePage, ArchiveQuery, KvQuota, ModuleDataStore, NewArchiveItem } from "./store.js";

type Row = Record<string, unknown>;

/** What MysqlStore lends: its queries, retried once on a lost connection and reporting outages. */
export interface MysqlQueries {
  rows(sql: string, params?: unknown[]): Promise<Row[]>;
  run(sql: string, params?: unknown[]): Promise<mysql.ResultSetHeader>;
  transaction<T>(work: (c: mysql.PoolConnection) => Promise<T>): Promise<T>;
  /** A write whose row needs the account, naming the account when it is missing. */
  runFor(user: string, sql: string, params: unknown[]): Promise<mysql.ResultSetHeader>;
}

/** Rows per INSERT of a bulk append: 10,000 items are 10 statements, each well under max_allowed_packet for short messages. */
const APPEND_CHUNK = 1000;

/** JIDs are stored as bytes (VARBINARY): they come back as Buffers. */
export function text(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

export class MysqlModuleData implements ModuleDataStore {
  /** Per user, the end of the last append made: the next one starts after it. */
  private readonly appending = new Map<string, Promise<void>>();

  constructor(private readonly q: MysqlQueries) {}

  async getKv(user: string, store: string, key: string): Promise<string | null> {
    const [r] = await this.q.rows(`SELECT item_value FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`, [user, store, key]);
    return r ? text(r.item_value) : null;
  }

  async putKv(user: string, store: string, key: string, value: string, quota?: KvQuota): Promise<boolean> {
    shared.checkKv(store, key, value);
    const bytes = shared.kvBytes(key, value);
    const put = `INSERT INTO module_kv (user, store_name, item_key, item_value, bytes) VALUES (?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE item_value = VALUES(item_value), bytes = VALUES(bytes)`;
    if (!quota) {
      await this.q.runFor(user, put, [user, store, key, value, bytes]);
      return true;
    }
    return this.q.transaction(async (c) => {
      // Locking the account's row makes two writes for one user count one after the other.
      const [account] = await c.execute(`SELECT 1 FROM accounts WHERE user = ? FOR UPDATE`, [user]);
      if ((account as Row[]).length === 0) throw new Error(`no such account: ${user}`);
      const [usage] = await c.execute(`SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM module_kv WHERE user = ? AND store_name = ?`, [user, store]);
      const [held] = await c.execute(`SELECT bytes FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`, [user, store, key]);
      const used = (usage as Row[])[0]!;
      const old = (held as Row[])[0]?.bytes;
      if (!shared.kvFits({ keys: Number(used.n), bytes: Number(used.b) }, old === undefined ? undefined : Number(old), bytes, quota)) return false;
      await c.execute(put, [user, store, key, value, bytes]);
      return true;
    });
  }

  async deleteKv(user: string, store: string, key: string): Promise<boolean> {
    return (await this.q.run(`DELETE FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`, [user, store, key])).affectedRows === 1;
  }

  async listKvKeys(user: string, store: string): Promise<string[]> {
    return (await this.q.rows(`SELECT item_key FROM module_kv WHERE user = ? AND store_name = ? ORDER BY item_key`, [user, store])).map((r) => text(r.item_key));
  }

  async kvUsage(user: string, store: string): Promise<KvQuota> {
    const [r] = await this.q.rows(`SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM module_kv WHERE user = ? AND store_name = ?`, [user, store]);
    return { keys: Number(r!.n), bytes: Number(r!.b) };
  }

  async clearKv(user: string, store: string): Promise<number> {
    return (await this.q.run(`DELETE FROM module_kv WHERE user = ? AND store_name = ?`, [user, store])).affectedRows;
  }

  async listKv(user: string): Promise<{ store: string; key: string; value: string }[]> {
    const rows = await this.q.rows(`SELECT store_name, item_key, item_value FROM module_kv WHERE user = ? ORDER BY store_name, item_key`, [user]);
    return rows.map((r) => ({ store: text(r.store_name), key: text(r.item_key), value: text(r.item_value) }));
  }

  /**
   * Appends items; one user's appends are committed in the order they were
   * made. Each is a transaction on a pool connection of its own, and two
   * running side by side could commit, and take their seq, in either order.
   */
  appendArchive(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]> {
    // A tail never rejects: the next append runs however this one ends.
    const mine = (this.appending.get(user) ?? Promise.resolve()).then(() => this.appendNow(user, archive, items));
    const settled = (): void => {
      if (this.appending.get(user) === tail) this.appending.delete(user);
    };
    const tail: Promise<void> = mine.then(settled, settled);
    this.appending.set(user, tail);
    return mine;
  }

  private async appendNow(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]> {
    const rows = shared.archiveRows(archive, items);
    if (rows.length === 0) return [];
    const insert = async (c: mysql.PoolConnection) => {
      for (let i = 0; i < rows.length; i += APPEND_CHUNK) {
        const chunk = rows.slice(i, i + APPEND_CHUNK);
        // A held id keeps its row: the update is a no-op.
        await c.query(
          `INSERT INTO module_archive (user, archive_name, item_id, stamp, with_jid, with_hash, xml) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?, ?)").join(", ")}
           ON DUPLICATE KEY UPDATE seq = seq`,
          chunk.flatMap((r) => [user, archive, r.id, r.stamp, r.with, r.hash, r.xml]),
        );
      }
    };
    try {
      await this.q.transaction(insert);
    } catch (err) {
      if ((err as { code?: string } | null)?.code === "ER_NO_REFERENCED_ROW_2") throw new Error(`no such account: ${user}`, { cause: err });
      throw err;
    }
    return rows.map((r) => r.id);
  }

  async queryArchive(user: string, archive: string, query: ArchiveQuery): Promise<ArchivePage | null> {
    shared.checkLimit(query.limit);
    const anchor = async (id: string | true | undefined): Promise<shared.Anchor | undefined | null> => {
      if (typeof id !== "string") return undefined;
      const [r] = await this.q.rows(shared.ANCHOR_SQL, [user, archive, id]);
      return r ? { stamp: Number(r.stamp), seq: Number(r.seq) } : null;
    };
    const after = await anchor(query.after);
    const before = await anchor(query.before);
    if (after === null || before === null) return null;
    const { sql, params, backward } = shared.pageSql(user, archive, query, after, before);
    return shared.page((await this.q.rows(sql, params)) as unknown as shared.ArchiveRow[], query.limit, backward);
  }

  async countArchive(user: string, archive: string, filter?: ArchiveFilter): Promise<number> {
    const { where, params } = shared.archiveWhere(user, archive, filter);
    const [r] = await this.q.rows(`SELECT COUNT(*) AS n FROM module_archive WHERE ${where}`, params);
    return Number(r!.n);
  }

  async deleteArchive(user: string, archive: string, before?: Date): Promise<number> {
    shared.checkStoreName(archive);
    const r =
      before === undefined
        ? await this.q.run(`DELETE FROM module_archive WHERE user = ? AND archive_name = ?`, [user, archive])
        : await this.q.run(`DELETE FROM module_archive WHERE user = ? AND archive_name = ? AND stamp < ?`, [user, archive, before.getTime()]);
    return r.affectedRows;
  }

  async trimArchive(user: string, archive: string, keep: number): Promise<number> {
    shared.checkStoreName(archive);
    const boundary = shared.trimBoundarySql(keep);
    return this.q.transaction(async (c) => {
      const [rows] = await c.execute(boundary, [user, archive]);
      const b = (rows as Row[])[0];
      if (!b) return 0;
      const [r] = await c.execute(shared.TRIM_SQL, [user, archive, Number(b.stamp), Number(b.stamp), Number(b.seq)]);
      return (r as mysql.ResultSetHeader).affectedRows;
    });
  }

  async listArchives(user: string): Promise<string[]> {
    return (await this.q.rows(`SELECT DISTINCT archive_name FROM module_archive WHERE user = ? ORDER BY archive_name`, [user])).map((r) => text(r.archive_name));
  }
}
