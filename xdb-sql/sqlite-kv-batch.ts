// Module key-value writes on SQLite gathered into one transaction per
// event-loop turn. With synchronous = FULL each commit is a WAL fsync that
// blocks the sm's thread, and mod-last writes one entry at every logout: one
// commit per logout was nearly half of an sm's time in a login storm. A put
// still resolves only once its entry is committed, so nothing is answered
// earlier than before; it waits at most until the end of the current turn
// (setImmediate). A lazy put (mod-last's logout time: a crash only leaves it
// older) waits up to LAZY_MS for company instead, so that steady logouts
// too share their commits. Each put runs in a savepoint of its own, so one
// refused by its quota or failing (its account deleted meanwhile) leaves the
// others be.
import type Database from "better-sqlite3";
import type { KvQuota } from "./store.js";

/** How long a lazy put waits for others to share its commit. */
const LAZY_MS = 1000;

export interface KvPut {
  user: string;
  store: string;
  key: string;
  value: string;
  bytes: number;
  quota?: KvQuota;
}

interface Pending extends KvPut {
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

export class SqliteKvBatch {
  private pending: Pending[] = [];
  private soon: NodeJS.Immediate | null = null;
  private later: NodeJS.Timeout | null = null;
  private readonly commit: Database.Transaction<(batch: Pending[]) => { written?: boolean; err?: unknown }[]>;

  constructor(
    db: Database.Database,
    /** Writes one entry in the open transaction: false when its quota refuses it. */
    putOne: (put: KvPut) => boolean,
    /** Names the account when a write fails for want of it. */
    withAccount: <T>(user: string, write: () => T) => T,
  ) {
    const savepoint = db.transaction(putOne);
    this.commit = db.transaction((batch: Pending[]) =>
      batch.map((p) => {
        try {
          return { written: withAccount(p.user, () => savepoint(p)) };
        } catch (err) {
          return { err };
        }
      }),
    );
  }

  /** Resolves once the entry is committed (false: refused by its quota), with whatever else was put in this turn (`lazy`: within LAZY_MS). */
  put(entry: KvPut, lazy = false): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...entry, resolve, reject });
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
    let results: { written?: boolean; err?: unknown }[];
    try {
      results = this.commit.immediate(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r.err === undefined) p.resolve(r.written!);
      else p.reject(r.err);
    });
  }
}
