// Offline messages on SQLite: the part of SqliteStore that keeps XEP-0160's
// stored messages, kept apart so the driver stays readable.
import type Database from "better-sqlite3";
import type { OfflineRow } from "./rows.js";
import { checkLength, pageLength, type OfflineMessage, type OfflinePage, type OfflineQuota } from "./store.js";
import { firstRows } from "./sqlite-row-window.js";
import { withSqliteAccount } from "./store-errors.js";

function prepareAll(db: Database.Database) {
  return {
    storeOffline: db.prepare<[string, string, number, number, string | null]>(
      `INSERT INTO offline (user, xml, stored_at, bytes, origin) VALUES (?, ?, ?, ?, ?)`,
    ),
    offlineByOrigin: db
      .prepare<[string, string], number>(`SELECT id FROM offline WHERE user = ? AND origin = ?`)
      .pluck(),
    offlineUsage: db.prepare<[string], { messages: number; bytes: number }>(
      `SELECT COUNT(*) AS messages, COALESCE(SUM(bytes), 0) AS bytes FROM offline WHERE user = ?`,
    ),
    loadOffline: db.prepare<[string], OfflineRow>(
      `SELECT id, xml, stored_at FROM offline WHERE user = ? ORDER BY id`,
    ),
    // Read a page at a time with firstRows(): no bound LIMIT (sqlite-row-window.ts).
    offlineSizes: db.prepare<[string], { id: number; bytes: number }>(`SELECT id, bytes FROM offline WHERE user = ? ORDER BY id`),
    loadOfflineUpTo: db.prepare<[string, number], OfflineRow>(
      `SELECT id, xml, stored_at FROM offline WHERE user = ? AND id <= ? ORDER BY id`,
    ),
    // The user condition is what keeps one account from deleting another's mail.
    deleteOfflineOne: db.prepare<[string, number]>(`DELETE FROM offline WHERE user = ? AND id = ?`),
    countOffline: db.prepare<[string], number>(`SELECT COUNT(*) FROM offline WHERE user = ?`).pluck(),
  };
}

export class SqliteOffline {
  private readonly s: ReturnType<typeof prepareAll>;

  constructor(private readonly db: Database.Database) {
    this.s = prepareAll(db);
  }

  /**
   * Looking the origin up first is race-free: the IMMEDIATE transaction holds
   * the database's one write lock from the look-up to the commit, against
   * every other process too. The unique index is the lookup's, and a guard.
   */
  insert(user: string, xml: string, stored: Date, origin: string | undefined, quota: null): number;
  insert(user: string, xml: string, stored: Date, origin: string | undefined, quota: OfflineQuota): number | null;
  insert(user: string, xml: string, stored: Date, origin: string | undefined, quota: OfflineQuota | null): number | null {
    if (origin !== undefined) checkLength("origin", origin);
    const s = this.s;
    const bytes = Buffer.byteLength(xml);
    return withSqliteAccount(user, () =>
      this.db
        .transaction(() => {
          const held = origin === undefined ? undefined : s.offlineByOrigin.get(user, origin);
          if (held !== undefined) return held;
          if (quota) {
            const used = s.offlineUsage.get(user)!;
            if (used.messages + 1 > quota.messages || used.bytes + bytes > quota.bytes) return null;
          }
          return Number(s.storeOffline.run(user, xml, stored.getTime(), bytes, origin ?? null).lastInsertRowid);
        })
        .immediate(),
    );
  }

  load(user: string, page?: OfflinePage): OfflineMessage[] {
    let rows: OfflineRow[];
    if (page) {
      if (!Number.isSafeInteger(page.limit) || page.limit < 1) throw new RangeError(`bad page size ${page.limit}`);
      const sizes = firstRows(this.s.offlineSizes.iterate(user), page.limit);
      const n = pageLength(sizes.map((r) => r.bytes), page);
      rows = n === 0 ? [] : this.s.loadOfflineUpTo.all(user, sizes[n - 1]!.id);
    } else rows = this.s.loadOffline.all(user);
    return rows.map((r) => ({ id: r.id, xml: r.xml, stored: new Date(r.stored_at) }));
  }

  delete(user: string, ids: number[]): void {
    for (const id of ids) {
      if (!Number.isSafeInteger(id)) throw new TypeError(`bad offline message id ${String(id)}`);
    }
    if (ids.length === 0) return;
    const s = this.s;
    this.db
      .transaction(() => {
        for (const id of ids) s.deleteOfflineOne.run(user, id);
      })
      .immediate();
  }

  count(user: string): number {
    return this.s.countOffline.get(user) ?? 0;
  }
}
