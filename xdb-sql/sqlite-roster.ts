// Rosters (RFC 6121) on SQLite: the part of SqliteStore that keeps them,
// kept apart so the driver stays readable.
import type Database from "better-sqlite3";
import { rosterItem, rosterParams, type RosterParams, type RosterRow } from "./rows.js";
import { checkLength, type RosterItem } from "./store.js";
import { withSqliteAccount } from "./store-errors.js";

const ROSTER_COLUMNS = "contact, name, subscription, ask_out, pending_in, visible, groups_json";

function prepareAll(db: Database.Database) {
  return {
    getRoster: db.prepare<[string], RosterRow>(
      `SELECT ${ROSTER_COLUMNS} FROM roster WHERE user = ? ORDER BY contact`,
    ),
    getRosterItem: db.prepare<[string, string], RosterRow>(
      `SELECT ${ROSTER_COLUMNS} FROM roster WHERE user = ? AND contact = ?`,
    ),
    putRosterItem: db.prepare<RosterParams>(
      `INSERT INTO roster (user, ${ROSTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user, contact) DO UPDATE SET
         name = excluded.name, subscription = excluded.subscription,
         ask_out = excluded.ask_out, pending_in = excluded.pending_in,
         visible = excluded.visible, groups_json = excluded.groups_json`,
    ),
    deleteRosterItem: db.prepare<[string, string]>(`DELETE FROM roster WHERE user = ? AND contact = ?`),
    countRoster: db.prepare<[string], number>(`SELECT COUNT(*) FROM roster WHERE user = ?`).pluck(),
    listRosterContacts: db.prepare<[], string>(`SELECT DISTINCT contact FROM roster ORDER BY contact`).pluck(),
    rosterUsersWith: db.prepare<[string], string>(`SELECT user FROM roster WHERE contact = ?`).pluck(),
    renameContact: db.prepare<[string, string, string]>(`UPDATE roster SET contact = ? WHERE user = ? AND contact = ?`),
  };
}

export class SqliteRoster {
  private readonly s: ReturnType<typeof prepareAll>;

  constructor(private readonly db: Database.Database) {
    this.s = prepareAll(db);
  }

  all(user: string): RosterItem[] {
    return this.s.getRoster.all(user).map(rosterItem);
  }

  item(user: string, contact: string): RosterItem | null {
    const row = this.s.getRosterItem.get(user, contact);
    return row ? rosterItem(row) : null;
  }

  put(user: string, item: RosterItem): void {
    checkLength("jid", item.contact);
    const params = rosterParams(user, item);
    withSqliteAccount(user, () => this.s.putRosterItem.run(...params));
  }

  delete(user: string, contact: string): void {
    this.s.deleteRosterItem.run(user, contact);
  }

  count(user: string): number {
    return this.s.countRoster.get(user) ?? 0;
  }

  contacts(): string[] {
    return this.s.listRosterContacts.all();
  }

  renameContact(from: string, to: string): { renamed: number; kept: string[] } {
    const s = this.s;
    return this.db
      .transaction(() => {
        const holding = new Set(s.rosterUsersWith.all(to));
        const kept: string[] = [];
        let renamed = 0;
        for (const user of s.rosterUsersWith.all(from)) {
          if (holding.has(user)) kept.push(user);
          else renamed += s.renameContact.run(to, user, from).changes;
        }
        return { renamed, kept };
      })
      .immediate();
  }
}
