// PEP nodes and items (XEP-0163) on MySQL/MariaDB: the part of MysqlStore
// that keeps them, kept apart so the driver stays readable.
import type mysql from "mysql2/promise";
import { text, type MysqlQueries } from "./mysql-module-data.js";
import { pepConfig } from "./rows.js";
import { isMysqlForeignKeyError } from "./store-errors.js";
import { checkLength, type PepItem, type PepNode } from "./store.js";

type Row = Record<string, unknown>;

export class MysqlPep {
  constructor(private readonly q: MysqlQueries) {}

  async listNodes(user: string): Promise<PepNode[]> {
    const rows = await this.q.rows(`SELECT node, config_json FROM pep_nodes WHERE user = ? ORDER BY node`, [user]);
    return rows.map((r) => ({ node: text(r.node), config: pepConfig(String(r.config_json)) }));
  }

  async getNode(user: string, node: string): Promise<PepNode | null> {
    const [r] = await this.q.rows(`SELECT node, config_json FROM pep_nodes WHERE user = ? AND node = ?`, [user, node]);
    return r ? { node: text(r.node), config: pepConfig(String(r.config_json)) } : null;
  }

  async putNode(user: string, node: PepNode): Promise<void> {
    checkLength("pepNode", node.node);
    await this.q.runFor(
      user,
      `INSERT INTO pep_nodes (user, node, config_json) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE config_json = VALUES(config_json)`,
      [user, node.node, JSON.stringify(node.config)],
    );
  }

  async deleteNode(user: string, node: string): Promise<boolean> {
    return this.q.transaction(async (c) => {
      await c.execute(`DELETE FROM pep_items WHERE user = ? AND node = ?`, [user, node]);
      const [r] = await c.execute(`DELETE FROM pep_nodes WHERE user = ? AND node = ?`, [user, node]);
      return (r as mysql.ResultSetHeader).affectedRows === 1;
    });
  }

  async publish(user: string, node: string, item: PepItem, maxItems: number): Promise<string[]> {
    checkLength("pepItemId", item.id);
    if (!Number.isSafeInteger(maxItems) || maxItems < 1) throw new RangeError(`bad max_items ${maxItems}`);
    try {
      return await this.q.transaction(async (c) => {
        await c.execute(`DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`, [user, node, item.id]);
        await c.execute(`INSERT INTO pep_items (user, node, item_id, xml, published_at) VALUES (?, ?, ?, ?, ?)`, [
          user,
          node,
          item.id,
          item.xml,
          item.published.getTime(),
        ]);
        // The offset is a checked integer in the text: MySQL 8 refuses LIMIT
        // placeholders in prepared statements.
        const [rows] = await c.execute(
          `SELECT item_id FROM pep_items WHERE user = ? AND node = ? ORDER BY seq DESC LIMIT 18446744073709551615 OFFSET ${maxItems}`,
          [user, node],
        );
        const gone = (rows as Row[]).map((r) => text(r.item_id));
        for (const id of gone) await c.execute(`DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`, [user, node, id]);
        return gone;
      });
    } catch (err) {
      if (isMysqlForeignKeyError(err)) throw new Error(`no PEP node ${node} for ${user}`, { cause: err });
      throw err;
    }
  }

  async items(user: string, node: string, select: { last?: number; ids?: string[] } = {}): Promise<PepItem[]> {
    const columns = `SELECT item_id, xml, published_at FROM pep_items WHERE user = ? AND node = ?`;
    let rows: Row[];
    if (select.ids) {
      const ids = [...new Set(select.ids)];
      rows = ids.length === 0 ? [] : await this.q.rows(`${columns} AND item_id IN (${ids.map(() => "?").join(", ")}) ORDER BY seq`, [user, node, ...ids]);
    } else if (select.last !== undefined) {
      if (!Number.isSafeInteger(select.last) || select.last < 0) throw new RangeError(`bad item count ${select.last}`);
      rows = (await this.q.rows(`${columns} ORDER BY seq DESC LIMIT ${select.last}`, [user, node])).reverse();
    } else {
      rows = await this.q.rows(`${columns} ORDER BY seq`, [user, node]);
    }
    return rows.map((r) => ({ id: text(r.item_id), xml: String(r.xml), published: new Date(Number(r.published_at)) }));
  }

  async itemSizes(user: string, node: string): Promise<{ id: string; bytes: number }[]> {
    const rows = await this.q.rows(`SELECT item_id, LENGTH(xml) AS bytes FROM pep_items WHERE user = ? AND node = ? ORDER BY seq`, [user, node]);
    return rows.map((r) => ({ id: text(r.item_id), bytes: Number(r.bytes) }));
  }

  async retract(user: string, node: string, id: string): Promise<boolean> {
    const r = await this.q.run(`DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`, [user, node, id]);
    return r.affectedRows === 1;
  }
}
