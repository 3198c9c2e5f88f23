// Module storage (key-value entries and archives) on SQLite: the part of
// SqliteStore that modules declare, kept apart so the driver stays readable.
import type Database from "better-sqlite3";
import * as shared from "./module-data-sql.js";
import { SqliteTurnBatch } from "./sqlite-turn-batch.js";
import type { ArchiveFilter, ArchivePage, ArchiveQuery, KvQuota, ModuleDataStore, NewArchiveItem } from "./store.js";
import { withSqliteAccount } from "./store-errors.js";

interface KvPut {
  user: string;
  store: string;
  key: string;
  value: string;
  bytes: number;
  quota?: KvQuota;
}

interface ArchiveAppend {
  user: string;
  archive: string;
  rows: ReturnType<typeof shared.archiveRows>;
}

function prepareAll(db: Database.Database) {
  return {
    getKv: db.prepare<[string, string, string], string>(`SELECT item_value FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`).pluck(),
    kvBytesOf: db.prepare<[string, string, string], number>(`SELECT bytes FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`).pluck(),
    putKv: db.prepare<[string, string, string, string, number]>(
      `INSERT INTO module_kv (user, store_name, item_key, item_value, bytes) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user, store_name, item_key) DO UPDATE SET item_value = excluded.item_value, bytes = excluded.bytes`,
    ),
    deleteKv: db.prepare<[string, string, string]>(`DELETE FROM module_kv WHERE user = ? AND store_name = ? AND item_key = ?`),
    listKvKeys: db.prepare<[string, string], string>(`SELECT item_key FROM module_kv WHERE user = ? AND store_name = ? ORDER BY item_key`).pluck(),
    kvUsage: db.prepare<[string, string], { n: number; bytes: number }>(`SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM module_kv WHERE user = ? AND store_name = ?`),
    clearKv: db.prepare<[string, string]>(`DELETE FROM module_kv WHERE user = ? AND store_name = ?`),
    listKv: db.prepare<[string], { store_name: string; item_key: string; item_value: string }>(
      `SELECT store_name, item_key, item_value FROM module_kv WHERE user = ? ORDER BY store_name, item_key`,
    ),
    append: db.prepare<[string, string, string, number, string, number, string]>(
      `INSERT INTO module_archive (user, archive_name, item_id, stamp, with_jid, with_hash, xml) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user, archive_name, item_id) DO NOTHING`,
    ),
    anchor: db.prepare<[string, string, string], shared.Anchor>(shared.ANCHOR_SQL),
    deleteArchive: db.prepare<[string, string]>(`DELETE FROM module_archive WHERE user = ? AND archive_name = ?`),
    deleteArchiveBefore: db.prepare<[string, string, number]>(`DELETE FROM module_archive WHERE user = ? AND archive_name = ? AND stamp < ?`),
    trim: db.prepare<[string, string, number, number, number]>(shared.TRIM_SQL),
    listArchives: db.prepare<[string], string>(`SELECT DISTINCT archive_name FROM module_archive WHERE user = ? ORDER BY archive_name`).pluck(),
  };
}

export class SqliteModuleData implements ModuleDataStore {
  private readonly s: ReturnType<typeof prepareAll>;
  /** Key-value puts of one turn share one commit (sqlite-turn-batch.ts). */
  private readonly puts: SqliteTurnBatch<KvPut, boolean>;

  constructor(private readonly db: Database.Database) {
    this.s = prepareAll(db);
    this.puts = new SqliteTurnBatch(db, (p: KvPut) => this.putOne(p));
  }

  async getKv(user: string, store: string, key: string): Promise<string | null> {
    return this.s.getKv.get(user, store, key) ?? null;
  }

  async putKv(user: string, store: string, key: string, value: string, quota?: KvQuota, lazy = false): Promise<boolean> {
    shared.checkKv(store, key, value);
    return this.puts.write({ user, store, key, value, bytes: shared.kvBytes(key, value), quota }, lazy);
  }

  /** Commits the writes waiting for the end of this turn now: before the database closes. */
  flush(): void {
    this.puts.flush();
  }

  private putOne({ user, store, key, value, bytes, quota }: KvPut): boolean {
    const s = this.s;
    if (quota && !shared.kvFits(this.usage(user, store), s.kvBytesOf.get(user, store, key), bytes, quota)) return false;
    s.putKv.run(user, store, key, value, bytes);
    return true;
  }

  async deleteKv(user: string, store: string, key: string): Promise<boolean> {
    return this.s.deleteKv.run(user, store, key).changes === 1;
  }

  async listKvKeys(user: string, store: string): Promise<string[]> {
    return this.s.listKvKeys.all(user, store);
  }

  async kvUsage(user: string, store: string): Promise<KvQuota> {
    return this.usage(user, store);
  }

  private usage(user: string, store: string): KvQuota {
    const r = this.s.kvUsage.get(user, store)!;
    return { keys: r.n, bytes: r.bytes };
  }

  async clearKv(user: string, store: string): Promise<number> {
    return this.s.clearKv.run(user, store).changes;
  }

  async listKv(user: string): Promise<{ store: string; key: string; value: string }[]> {
    return this.s.listKv.all(user).map((r) => ({ store: r.store_name, key: r.item_key, value: r.item_value }));
  }

  async appendArchive(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]> {
    const rows = shared.archiveRows(archive, items);
    withSqliteAccount(user, () => this.db.transaction(() => this.appendOne({ user, archive, rows })).immediate());
    return rows.map((r) => r.id);
  }

  private appendOne({ user, archive, rows }: ArchiveAppend): void {
    for (const r of rows) this.s.append.run(user, archive, r.id, r.stamp, r.with, r.hash, r.xml);
  }

  async queryArchive(user: string, archive: string, q: ArchiveQuery): Promise<ArchivePage | null> {
    shared.checkLimit(q.limit);
    const anchor = (id: string | true | undefined): shared.Anchor | undefined | null =>
      typeof id === "string" ? (this.s.anchor.get(user, archive, id) ?? null) : undefined;
    const after = anchor(q.after);
    const before = anchor(q.before);
    if (after === null || before === null) return null;
    const { sql, params, backward } = shared.pageSql(user, archive, q, after, before);
    return shared.page(this.db.prepare<unknown[], shared.ArchiveRow>(sql).all(...params), q.limit, backward);
  }

  async countArchive(user: string, archive: string, filter?: ArchiveFilter): Promise<number> {
    const { where, params } = shared.archiveWhere(user, archive, filter);
    return this.db.prepare<unknown[], number>(`SELECT COUNT(*) FROM module_archive WHERE ${where}`).pluck().get(...params)!;
  }

  async deleteArchive(user: string, archive: string, before?: Date): Promise<number> {
    shared.checkStoreName(archive);
    if (before === undefined) return this.s.deleteArchive.run(user, archive).changes;
    return this.s.deleteArchiveBefore.run(user, archive, before.getTime()).changes;
  }

  async trimArchive(user: string, archive: string, keep: number): Promise<number> {
    shared.checkStoreName(archive);
    const boundary = this.db.prepare<[string, string], shared.Anchor>(shared.trimBoundarySql(keep));
    const s = this.s;
    return this.db
      .transaction(() => {
        const b = boundary.get(user, archive);
        return b ? s.trim.run(user, archive, b.stamp, b.stamp, b.seq).changes : 0;
      })
      .immediate();
  }

  async listArchives(user: string): Promise<string[]> {
    return this.s.listArchives.all(user);
  }
}
