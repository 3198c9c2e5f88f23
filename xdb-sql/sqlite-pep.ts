// PEP nodes and items (XEP-0163) on SQLite: the part of SqliteStore that
// keeps them, kept apart so the driver stays readable.
import type Database from "better-sqlite3";
import { pepConfig, type PepItemRow } from "./rows.js";
import { checkLength, type PepItem, type PepNode } from "./store.js";
import { firstRows, rowsAfter } from "./sqlite-row-window.js";
import { isSqliteForeignKeyError, withSqliteAccount } from "./store-errors.js";

function prepareAll(db: Database.Database) {
  return {
    listPepNodes: db.prepare<[string], { node: string; config_json: string }>(
      `SELECT node, config_json FROM pep_nodes WHERE user = ? ORDER BY node`,
    ),
    getPepNode: db.prepare<[string, string], { node: string; config_json: string }>(
      `SELECT node, config_json FROM pep_nodes WHERE user = ? AND node = ?`,
    ),
    putPepNode: db.prepare<[string, string, string]>(
      `INSERT INTO pep_nodes (user, node, config_json) VALUES (?, ?, ?)
       ON CONFLICT (user, node) DO UPDATE SET config_json = excluded.config_json`,
    ),
    deletePepNode: db.prepare<[string, string]>(`DELETE FROM pep_nodes WHERE user = ? AND node = ?`),
    deletePepItemsOf: db.prepare<[string, string]>(`DELETE FROM pep_items WHERE user = ? AND node = ?`),
    insertPepItem: db.prepare<[string, string, string, string, number]>(
      `INSERT INTO pep_items (user, node, item_id, xml, published_at) VALUES (?, ?, ?, ?, ?)`,
    ),
    deletePepItem: db.prepare<[string, string, string]>(`DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`),
    pepItems: db.prepare<[string, string], PepItemRow>(
      `SELECT item_id, xml, published_at FROM pep_items WHERE user = ? AND node = ? ORDER BY seq`,
    ),
    pepItem: db.prepare<[string, string, string], PepItemRow & { seq: number }>(
      `SELECT seq, item_id, xml, published_at FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`,
    ),
    pepItemSizes: db.prepare<[string, string], { item_id: string; bytes: number }>(
      `SELECT item_id, LENGTH(CAST(xml AS BLOB)) AS bytes FROM pep_items WHERE user = ? AND node = ? ORDER BY seq`,
    ),
    // Newest first, for firstRows() and rowsAfter(): no bound LIMIT or OFFSET (sqlite-row-window.ts).
    pepItemsNewest: db.prepare<[string, string], PepItemRow>(
      `SELECT item_id, xml, published_at FROM pep_items WHERE user = ? AND node = ? ORDER BY seq DESC`,
    ),
    pepItemIdsNewest: db.prepare<[string, string], string>(`SELECT item_id FROM pep_items WHERE user = ? AND node = ? ORDER BY seq DESC`).pluck(),
  };
}

function pepItem(r: PepItemRow): PepItem {
  return { id: r.item_id, xml: r.xml, published: new Date(r.published_at) };
}

export class SqlitePep {
  private readonly s: ReturnType<typeof prepareAll>;

  constructor(private readonly db: Database.Database) {
    this.s = prepareAll(db);
  }

  listNodes(user: string): PepNode[] {
    return this.s.listPepNodes.all(user).map((r) => ({ node: r.node, config: pepConfig(r.config_json) }));
  }

  getNode(user: string, node: string): PepNode | null {
    const r = this.s.getPepNode.get(user, node);
    return r ? { node: r.node, config: pepConfig(r.config_json) } : null;
  }

  putNode(user: string, node: PepNode): void {
    checkLength("pepNode", node.node);
    withSqliteAccount(user, () => this.s.putPepNode.run(user, node.node, JSON.stringify(node.config)));
  }

  deleteNode(user: string, node: string): boolean {
    const s = this.s;
    return this.db
      .transaction(() => {
        s.deletePepItemsOf.run(user, node);
        return s.deletePepNode.run(user, node).changes === 1;
      })
      .immediate();
  }

  publish(user: string, node: string, item: PepItem, maxItems: number): string[] {
    checkLength("pepItemId", item.id);
    if (!Number.isSafeInteger(maxItems) || maxItems < 1) throw new RangeError(`bad max_items ${maxItems}`);
    const s = this.s;
    try {
      return this.db
        .transaction(() => {
          s.deletePepItem.run(user, node, item.id);
          s.insertPepItem.run(user, node, item.id, item.xml, item.published.getTime());
          const gone = rowsAfter(s.pepItemIdsNewest.iterate(user, node), maxItems);
          for (const id of gone) s.deletePepItem.run(user, node, id);
          return gone;
        })
        .immediate();
    } catch (err) {
      if (isSqliteForeignKeyError(err)) throw new Error(`no PEP node ${node} for ${user}`, { cause: err });
      throw err;
    }
  }

  items(user: string, node: string, select: { last?: number; ids?: string[] } = {}): PepItem[] {
    let rows: PepItemRow[];
    if (select.ids) {
      const found = [...new Set(select.ids)].flatMap((id) => this.s.pepItem.get(user, node, id) ?? []);
      rows = found.sort((a, b) => a.seq - b.seq);
    } else if (select.last !== undefined) {
      rows = firstRows(this.s.pepItemsNewest.iterate(user, node), select.last).reverse();
    } else {
      rows = this.s.pepItems.all(user, node);
    }
    return rows.map(pepItem);
  }

  itemSizes(user: string, node: string): { id: string; bytes: number }[] {
    return this.s.pepItemSizes.all(user, node).map((r) => ({ id: r.item_id, bytes: r.bytes }));
  }

  retract(user: string, node: string, id: string): boolean {
    return this.s.deletePepItem.run(user, node, id).changes === 1;
  }
}
