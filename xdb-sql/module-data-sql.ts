// The statements and checks of module storage (key-value entries and
// archives, schema v6) that both SQL drivers run: the same text, with `?`
// placeholders, so that SQLite and MySQL page an archive alike.
import { createHash, randomBytes } from "node:crypto";
import { checkLength, type ArchiveFilter, type ArchiveItem, type ArchiveQuery, type KvQuota, type NewArchiveItem } from "./store.js";

export const ARCHIVE_COLUMNS = "item_id, stamp, with_jid, xml";

/** An archive's item ordering key: where a page starts or ends. */
export interface Anchor {
  stamp: number;
  seq: number;
}

/** 48 bits of the JID's SHA-256: a safe integer in both drivers, for the `with` index. */
export function withHash(jid: string): number {
  return createHash("sha256").update(jid).digest().readUIntBE(0, 6);
}

/** 96 random bits: XEP-0313 wants an archive's ids unpredictable as well as unique. */
export function newArchiveId(): string {
  return randomBytes(12).toString("base64url");
}

export function checkStoreName(name: string): void {
  if (!name) throw new RangeError("a module store must be named");
  checkLength("moduleStore", name);
}

export function checkKv(store: string, key: string, value?: string): void {
  checkStoreName(store);
  checkLength("kvKey", key);
  if (value !== undefined) checkLength("kvValue", value);
}

/** What an entry costs against a quota. */
export function kvBytes(key: string, value: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(value);
}

/** Whether writing `bytes` under a key (held before with `old` bytes, or new) keeps the store within the quota, or does not grow it. */
export function kvFits(used: KvQuota, old: number | undefined, bytes: number, quota: KvQuota): boolean {
  if (old !== undefined && bytes <= old) return true;
  const keys = used.keys + (old === undefined ? 1 : 0);
  return keys <= quota.keys && used.bytes - (old ?? 0) + bytes <= quota.bytes;
}

/** The items checked, each with its id (given, or new) and the `with` index value. */
export function archiveRows(archive: string, items: readonly NewArchiveItem[]): { id: string; stamp: number; with: string; hash: number; xml: string }[] {
  checkStoreName(archive);
  return items.map((i) => {
    const id = i.id ?? newArchiveId();
    if (!id) throw new RangeError("an archive item's id may not be empty");
    checkLength("archiveId", id);
    checkLength("jid", i.with);
    checkLength("archiveXml", i.xml);
    const stamp = i.stamp.getTime();
    if (!Number.isSafeInteger(stamp)) throw new RangeError("bad archive item stamp");
    return { id, stamp, with: i.with, hash: withHash(i.with), xml: i.xml };
  });
}

export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`bad page size ${limit}`);
}

/** The WHERE clause that selects a user's archive items passing a filter. */
export function archiveWhere(user: string, archive: string, f: ArchiveFilter = {}): { where: string; params: unknown[] } {
  checkStoreName(archive);
  let where = "user = ? AND archive_name = ?";
  const params: unknown[] = [user, archive];
  if (f.with !== undefined) {
    where += " AND with_hash = ? AND with_jid = ?";
    params.push(withHash(f.with), f.with);
  }
  if (f.start !== undefined) {
    where += " AND stamp >= ?";
    params.push(f.start.getTime());
  }
  if (f.end !== undefined) {
    where += " AND stamp <= ?";
    params.push(f.end.getTime());
  }
  return { where, params };
}

export const ANCHOR_SQL = "SELECT stamp, seq FROM module_archive WHERE user = ? AND archive_name = ? AND item_id = ?";

/**
 * The statement for one page, given the anchors its ids named: `limit + 1`
 * rows, so that the last tells whether the page is complete. The bound on an
 * anchor is written as a range on stamp and a filter on ties, which both
 * SQLite and MariaDB answer with a range scan of the (…, stamp, seq) index,
 * in its order.
 */
export function pageSql(
  user: string,
  archive: string,
  q: ArchiveQuery,
  after: Anchor | undefined,
  before: Anchor | undefined,
): { sql: string; params: unknown[]; backward: boolean } {
  checkLimit(q.limit);
  let { where, params } = archiveWhere(user, archive, q);
  if (after) {
    where += " AND stamp >= ? AND (stamp > ? OR seq > ?)";
    params = [...params, after.stamp, after.stamp, after.seq];
  }
  if (before) {
    where += " AND stamp <= ? AND (stamp < ? OR seq < ?)";
    params = [...params, before.stamp, before.stamp, before.seq];
  }
  const backward = q.before !== undefined && q.after === undefined && !q.forward;
  const dir = backward ? "DESC" : "ASC";
  // The limit is a checked integer in the text: MySQL 8 refuses LIMIT placeholders in prepared statements.
  const sql = `SELECT ${ARCHIVE_COLUMNS} FROM module_archive WHERE ${where} ORDER BY stamp ${dir}, seq ${dir} LIMIT ${q.limit + 1}`;
  return { sql, params, backward };
}

/** The newest item of a user's archive that a cap of `keep` drops (the rest older), if any. */
export function trimBoundarySql(keep: number): string {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError(`bad archive cap ${keep}`);
  return `SELECT stamp, seq FROM module_archive WHERE user = ? AND archive_name = ? ORDER BY stamp DESC, seq DESC LIMIT 1 OFFSET ${keep}`;
}

/** Deletes a user's items at or before an anchor (the boundary above). */
export const TRIM_SQL = "DELETE FROM module_archive WHERE user = ? AND archive_name = ? AND stamp <= ? AND (stamp < ? OR seq <= ?)";

export interface ArchiveRow {
  item_id: unknown;
  stamp: unknown;
  with_jid: unknown;
  xml: unknown;
}

/** Byte columns come back as Buffers from MySQL. */
function text(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

export function archiveItem(r: ArchiveRow): ArchiveItem {
  return { id: text(r.item_id), stamp: new Date(Number(r.stamp)), with: text(r.with_jid), xml: text(r.xml) };
}

/** A page from the rows of pageSql. */
export function page(rows: ArchiveRow[], limit: number, backward: boolean): { items: ArchiveItem[]; complete: boolean } {
  const items = rows.slice(0, limit).map(archiveItem);
  return { items: backward ? items.reverse() : items, complete: rows.length <= limit };
}
