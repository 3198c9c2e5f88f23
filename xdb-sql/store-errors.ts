// The error a store raises when its database cannot be reached, so that
// callers answer "try later" (resource-constraint) instead of treating it
// as a bug, and log an outage once rather than per stanza.

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`database unreachable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "StoreUnavailableError";
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_SERVER_SHUTDOWN",
  "ER_CON_COUNT_ERROR",
  "ENOENT", // a local socket that is gone
]);

/** True for an error that means "the database is not there", not "this query is wrong". */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; fatal?: boolean } | null;
  return !!e && ((e.code !== undefined && CONNECTION_CODES.has(e.code)) || e.fatal === true);
}

/** A row that needs another (its account, its PEP node) that is not there, on SQLite. */
export function isSqliteForeignKeyError(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/** Runs a SQLite write that needs `user`'s account row: one that fails for want of it names the account. */
export function withSqliteAccount<T>(user: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (isSqliteForeignKeyError(err)) throw new Error(`no such account: ${user}`, { cause: err });
    throw err;
  }
}

/** The same on MySQL/MariaDB. */
export function isMysqlForeignKeyError(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "ER_NO_REFERENCED_ROW_2";
}
