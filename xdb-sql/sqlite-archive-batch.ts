// Archive appends on SQLite gathered into one transaction per event-loop turn.
// With synchronous = FULL each commit is a WAL fsync, and MAM appends two rows
// per chat message (the sender's copy and the recipient's): one commit per
// append was most of an sm's CPU in chat. An append still resolves only once
// its rows are committed, so nothing is acknowledged earlier than before; it
// waits at most until the end of the current turn (setImmediate).
import type Database from "better-sqlite3";
import type { archiveRows } from "./module-data-sql.js";

type Row = ReturnType<typeof archiveRows>[number];

interface Pending {
  user: string;
  archive: string;
  rows: readonly Row[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SqliteArchiveBatch {
  private pending: Pending[] = [];

  constructor(
    private readonly db: Database.Database,
    private readonly insert: Database.Statement<[string, string, string, number, string, number, string]>,
    /** Names the account when a write fails for want of it. */
    private readonly withAccount: <T>(user: string, write: () => T) => T,
  ) {}

  /** Resolves once `rows` are committed, with whatever else was appended in this turn. */
  append(user: string, archive: string, rows: readonly Row[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ user, archive, rows, resolve, reject });
    });
  }

  /** Commits what is waiting (the store calls it before it closes, too). */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    if (batch.length > 1) {
      try {
        this.write(batch);
        for (const p of batch) p.resolve();
        return;
      } catch {
        // One failing append (its account deleted meanwhile, say) must not fail the others: each alone, as an unbatched append would.
      }
    }
    for (const p of batch) {
      try {
        this.withAccount(p.user, () => this.write([p]));
        p.resolve();
      } catch (err) {
        p.reject(err);
      }
    }
  }

  private write(batch: readonly Pending[]): void {
    this.db
      .transaction(() => {
        for (const p of batch) for (const r of p.rows) this.insert.run(p.user, p.archive, r.id, r.stamp, r.with, r.hash, r.xml);
      })
      .immediate();
  }
}
