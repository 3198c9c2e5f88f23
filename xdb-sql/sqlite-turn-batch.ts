// SQLite writes gathered into one transaction per event-loop turn. With
// synchronous = FULL each commit is a WAL fsync that blocks the thread:
// module key-value puts (mod-last writes one at every logout) took one
// commit each, nearly half of an sm's time in a login storm. A write still resolves only once it is committed, so nothing
// is answered earlier than before; it waits at most until the end of the
// current turn (setImmediate). A lazy write (mod-last's logout time: a crash
// only leaves it older) waits up to LAZY_MS for company instead, so that
// steady logouts too share their commits. Each write runs in a savepoint of
// its own, so one refused or failing (its account deleted meanwhile) leaves
// the others be.
import type Database from "better-sqlite3";
import { withSqliteAccount } from "./store-errors.js";

/** How long a lazy write waits for others to share its commit. */
const LAZY_MS = 1000;

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

type Outcome<R> = { ok: true; result: R } | { ok: false; err: unknown };

export class SqliteTurnBatch<T extends { user: string }, R> {
  private pending: Pending<T, R>[] = [];
  private soon: NodeJS.Immediate | null = null;
  private later: NodeJS.Timeout | null = null;
  private readonly commit: Database.Transaction<(batch: Pending<T, R>[]) => Outcome<R>[]>;

  constructor(
    db: Database.Database,
    /** Writes one item in the open transaction. */
    writeOne: (item: T) => R,
  ) {
    const savepoint = db.transaction(writeOne);
    this.commit = db.transaction((batch: Pending<T, R>[]) =>
      batch.map(({ item }): Outcome<R> => {
        try {
          return { ok: true, result: withSqliteAccount(item.user, () => savepoint(item)) };
        } catch (err) {
          return { ok: false, err };
        }
      }),
    );
  }

  /** Resolves once `item` is committed, with whatever else was written in this turn (`lazy`: within LAZY_MS). */
  write(item: T, lazy = false): Promise<R> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!lazy) this.soon ??= setImmediate(() => this.flush());
      else if (!this.soon) this.later ??= setTimeout(() => this.flush(), LAZY_MS).unref();
    });
  }

  /** Commits what is waiting (the store calls it before it closes, too). */
  flush(): void {
    if (this.soon) clearImmediate(this.soon);
    if (this.later) clearTimeout(this.later);
    this.soon = this.later = null;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let outcomes: Outcome<R>[];
    try {
      outcomes = this.commit.immediate(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.result);
      else p.reject(o.err);
    });
  }
}
