// Offline messages on MySQL/MariaDB: the part of MysqlStore that keeps
// XEP-0160's stored messages, kept apart so the driver stays readable.
import type mysql from "mysql2/promise";
import type { MysqlQueries } from "./mysql-module-data.js";
import { checkLength, pageLength, type OfflineMessage, type OfflinePage, type OfflineQuota } from "./store.js";

type Row = Record<string, unknown>;

/**
 * A message whose (user, origin) is already held is not inserted again; the
 * statement then reports that message's id as its insert id (LAST_INSERT_ID(expr)),
 * so one statement both stores and finds, whatever stores race with it.
 */
const INSERT_OFFLINE =
  `INSERT INTO offline (user, xml, stored_at, bytes, origin) VALUES (?, ?, ?, ?, ?) ` +
  `ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)`;

export class MysqlOffline {
  constructor(private readonly q: MysqlQueries) {}

  async store(user: string, xml: string, stored: Date = new Date(), origin?: string): Promise<number> {
    if (origin !== undefined) checkLength("origin", origin);
    return (await this.q.runFor(user, INSERT_OFFLINE, [user, xml, stored.getTime(), Buffer.byteLength(xml), origin ?? null])).insertId;
  }

  async storeWithin(user: string, xml: string, quota: OfflineQuota, origin?: string): Promise<number | null> {
    if (origin !== undefined) checkLength("origin", origin);
    const bytes = Buffer.byteLength(xml);
    return this.q.transaction(async (c) => {
      // Locking the account's row makes two stores for one user count one after the other.
      const [account] = await c.execute(`SELECT 1 FROM accounts WHERE user = ? FOR UPDATE`, [user]);
      if ((account as Row[]).length === 0) throw new Error(`no such account: ${user}`);
      if (origin !== undefined) {
        const [held] = await c.execute(`SELECT id FROM offline WHERE user = ? AND origin = ?`, [user, origin]);
        const id = (held as Row[])[0]?.id;
        if (id !== undefined) return Number(id);
      }
      const [usage] = await c.execute(`SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM offline WHERE user = ?`, [user]);
      const used = (usage as Row[])[0]!;
      if (Number(used.n) + 1 > quota.messages || Number(used.b) + bytes > quota.bytes) return null;
      const [r] = await c.execute(INSERT_OFFLINE, [user, xml, Date.now(), bytes, origin ?? null]);
      return (r as mysql.ResultSetHeader).insertId;
    });
  }

  async load(user: string, page?: OfflinePage): Promise<OfflineMessage[]> {
    const columns = `SELECT id, xml, stored_at FROM offline WHERE user = ?`;
    let rows: Row[];
    if (page) {
      if (!Number.isSafeInteger(page.limit) || page.limit < 1) throw new RangeError(`bad page size ${page.limit}`);
      // The limit is a checked integer in the text: MySQL 8 refuses LIMIT placeholders in prepared statements.
      const sizes = await this.q.rows(`SELECT id, bytes FROM offline WHERE user = ? ORDER BY id LIMIT ${page.limit}`, [user]);
      const n = pageLength(sizes.map((r) => Number(r.bytes)), page);
      rows = n === 0 ? [] : await this.q.rows(`${columns} AND id <= ? ORDER BY id`, [user, sizes[n - 1]!.id]);
    } else rows = await this.q.rows(`${columns} ORDER BY id`, [user]);
    return rows.map((r) => ({ id: Number(r.id), xml: String(r.xml), stored: new Date(Number(r.stored_at)) }));
  }

  async delete(user: string, ids: number[]): Promise<void> {
    for (const id of ids) if (!Number.isSafeInteger(id)) throw new TypeError(`bad offline message id ${String(id)}`);
    if (ids.length === 0) return;
    // The user condition is what keeps one account from deleting another's mail.
    await this.q.transaction(async (c) => {
      for (const id of ids) await c.execute(`DELETE FROM offline WHERE user = ? AND id = ?`, [user, id]);
    });
  }

  async count(user: string): Promise<number> {
    const [r] = await this.q.rows(`SELECT COUNT(*) AS n FROM offline WHERE user = ?`, [user]);
    return Number(r?.n ?? 0);
  }
}
