// Turns the configured store URL into a ready Store: the one place that knows
// which URL means which driver.
//
//   sqlite:<path>, sqlite://<path>, or a bare path  → SqliteStore
//   mysql://user:pass@host:port/db, mariadb://…     → MysqlStore (mysql2)
//
// SQLite paths are taken literally (no percent-decoding) and resolved against
// the working directory; "sqlite::memory:" gives a private in-memory database.
import fs from "node:fs";
import path from "node:path";
import { StartupFailure } from "../lib/process-lifecycle.js";
import type { MysqlOptions } from "./mysql-store.js";
import { SqliteStore } from "./sqlite-store.js";
import type { Logger } from "../lib/log.js";
import type { Store } from "./store.js";

export type StoreTarget =
  | { kind: "sqlite"; file: string }
  | { kind: "mysql"; options: MysqlOptions };

/** Connections each process keeps to MySQL unless the URL says `?pool=N`. */
export const DEFAULT_POOL_SIZE = 10;

// Two or more characters, so a Windows drive letter ("C:\…") stays a path.
const SCHEME = /^([a-z][a-z0-9+.-]+):/i;

/** Parses a store URL without opening anything; throws on an unusable one. */
export function parseStoreUrl(url: string): StoreTarget {
  const text = url.trim();
  if (!text) throw new Error("store URL is empty");
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: "sqlite", file: sqliteFile(text) };
  if (scheme === "sqlite") {
    const rest = text.slice("sqlite:".length);
    return { kind: "sqlite", file: sqliteFile(rest.startsWith("//") ? rest.slice(2) : rest) };
  }
  if (scheme === "mysql" || scheme === "mariadb") return { kind: "mysql", options: mysqlOptions(text) };
  // Only the scheme is echoed: the rest may hold a password.
  throw new Error(`unsupported store URL scheme "${scheme}:" (use sqlite:<path> or mysql://…)`);
}

/** mysql://user:password@host:port/database?pool=N, or ?socket=/path for a local socket. */
function mysqlOptions(text: string): MysqlOptions {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error("unparsable mysql:// store URL (expected mysql://user:password@host:port/database)");
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database) throw new Error("the mysql:// store URL names no database (mysql://user:password@host/database)");
  const pool = Number(u.searchParams.get("pool") ?? DEFAULT_POOL_SIZE);
  if (!Number.isInteger(pool) || pool < 1) throw new Error("the mysql:// store URL's pool must be a positive integer");
  const socket = u.searchParams.get("socket");
  return {
    ...(socket ? { socketPath: socket } : { host: u.hostname || "localhost", port: u.port ? Number(u.port) : 3306 }),
    user: decodeURIComponent(u.username || "root"),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database,
    poolSize: pool,
  };
}

function sqliteFile(p: string): string {
  if (!p) throw new Error("store URL has no SQLite file path");
  return p === ":memory:" ? p : path.resolve(p);
}

/** Logs a database outage once when it starts and once when it ends; returns whether it is reachable now (for /readyz). */
export function watchStore(store: Store, log: Logger): () => boolean {
  let reachable = true;
  store.onAvailability = (available, err) => {
    reachable = available;
    if (available) log.warn({ store: store.kind }, "database reachable again");
    else log.error({ store: store.kind, err: (err as Error)?.message }, "database unreachable: what needs it is answered resource-constraint until it is back");
  };
  return () => reachable;
}

/** openStore for a process starting: a database it cannot open stops it, naming the `db` key (a StartupFailure). */
export async function openStoreAtStart(url: string): Promise<Store> {
  try {
    return await openStore(url);
  } catch (err) {
    throw new StartupFailure("db", `cannot open the database ${describeStore(url)}: ${(err as Error).message}`);
  }
}

/**
 * `existing`: a SQLite file must be there already. A tool run in the wrong directory must not make an
 * empty database that no farm reads; the processes and `xfarm start` create it.
 */
export interface StoreOpening {
  existing?: boolean;
}

/** A store for the URL, its schema untouched (for `xfarm db status` and `migrate`). */
export async function connectStore(url: string, opts: StoreOpening = {}): Promise<Store> {
  const target = parseStoreUrl(url);
  if (opts.existing && target.kind === "sqlite" && target.file !== ":memory:" && !fs.existsSync(target.file)) {
    throw new Error(`no database at ${target.file}: a farm makes its database when it first starts (--config or --db names another)`);
  }
  if (target.kind === "sqlite") return new SqliteStore(target.file);
  // mysql2 loads only for a MySQL store: every process and CLI command opens a store, most of them SQLite.
  const { MysqlStore } = await import("./mysql-store.js");
  return new MysqlStore(target.options);
}

/** Opens the store a URL names, with its schema brought up to date. */
export async function openStore(url: string, opts: StoreOpening = {}): Promise<Store> {
  const store = await connectStore(url, opts);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

// Query parameters that may carry a secret, redacted in descriptions.
const SECRET_PARAM = /pass|pwd|secret|token|key/i;

/** A description of the store URL that is safe to log: never a password. */
export function describeStore(url: string): string {
  let target: StoreTarget;
  try {
    target = parseStoreUrl(url);
  } catch {
    return "unusable store URL";
  }
  if (target.kind === "sqlite") return `sqlite:${target.file}`;
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    // Do not echo a URL we cannot take apart: we could not strip its password.
    return "mysql (unparsable URL)";
  }
  if (u.password) u.password = "";
  for (const name of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) u.searchParams.set(name, "***");
  }
  return u.toString();
}
