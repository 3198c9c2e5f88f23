// Test accounts for a run, made in bulk: users.first … users.first +
// users.accounts - 1, named and with passwords from the scenario's patterns
// (Tsung's user%d / pass%d by default, as ../shared/anchors/mkusers.sh makes
// them for Prosody and ejabberd).
//
// - xfarm: straight into the store with createAccounts, thousands per
//   transaction. A password pattern without %d shares one derivation among
//   all accounts (fast); with %d each account gets its own keys, derived on
//   libuv's thread pool.
// - Prosody (internal_hashed, the harness's and Debian's default): the
//   account files written directly, as prosodyctl would leave them.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { deriveCredentials, deriveKeys, type Credentials } from "../lib/sasl/scram-credentials.js";
import { saslprepStored } from "../lib/sasl/saslprep.js";
import { openStore } from "../xdb-sql/open-store.js";
import { userName, type Scenario } from "./scenario.js";

export interface AccountRange {
  /** The name pattern, e.g. "user%d". */
  name: string;
  /** The password pattern, e.g. "pass%d" (or one password for all). */
  password: string;
  first: number;
  count: number;
}

export function accountRange(sc: Pick<Scenario, "users">): AccountRange {
  return { name: sc.users.name, password: sc.users.password, first: sc.users.first, count: sc.users.accounts };
}

const BATCH = 5000;
/** Derivations in flight at once (the thread pool runs 4 at a time by default). */
const PARALLEL = 64;

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/**
 * Creates the accounts in xfarm's store (`db`: a store URL); existing ones
 * are left as they are. Returns how many were new.
 */
export async function createXfarmAccounts(
  db: string,
  domain: string,
  range: AccountRange,
  opts: { iterations?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<number> {
  const store = await openStore(db);
  try {
    const shared = range.password.includes("%d") ? null : await deriveCredentials(range.password, opts.iterations);
    let created = 0;
    for (let start = 0; start < range.count; start += BATCH) {
      const numbers = Array.from({ length: Math.min(BATCH, range.count - start) }, (_, i) => range.first + start + i);
      const creds: Credentials[] = shared
        ? numbers.map(() => shared)
        : await mapLimit(numbers, PARALLEL, (n) => deriveCredentials(userName(range.password, n), opts.iterations));
      created += await store.createAccounts(numbers.map((n, i) => ({ user: `${userName(range.name, n)}@${domain}`.toLowerCase(), credentials: creds[i]! })));
      opts.onProgress?.(start + numbers.length, range.count);
    }
    return created;
  } finally {
    await store.close();
  }
}

/** Prosody's datamanager file name encoding: every non-alphanumeric byte as %xx. */
function prosodyEncode(s: string): string {
  return Array.from(Buffer.from(s, "utf8"))
    .map((b) => (/[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0")}`))
    .join("");
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/**
 * Writes Prosody account files (storage "internal") under `dataDir` for
 * `domain`: with `hashed` (authentication = "internal_hashed", the
 * default) SCRAM-SHA-1 keys as mod_auth_internal_hashed stores them, else
 * the plain password (internal_plain, as the anchors were measured).
 * Prosody reads an account's file at each login, so this works while it
 * runs. Returns how many files were written (existing ones are kept).
 */
export async function writeProsodyAccounts(
  dataDir: string,
  domain: string,
  range: AccountRange,
  opts: { hashed?: boolean; iterations?: number } = {},
): Promise<number> {
  const dir = path.join(dataDir, prosodyEncode(domain), "accounts");
  fs.mkdirSync(dir, { recursive: true });
  const hashed = opts.hashed ?? true;
  // Prosody 0.12's default_iteration_count.
  const iterations = opts.iterations ?? 10_000;
  const numbers = Array.from({ length: range.count }, (_, i) => range.first + i);
  const written = await mapLimit(numbers, PARALLEL, async (n) => {
    const file = path.join(dir, `${prosodyEncode(userName(range.name, n).toLowerCase())}.dat`);
    if (fs.existsSync(file)) return 0;
    const password = userName(range.password, n);
    let body: string;
    if (hashed) {
      // mod_auth_internal_hashed uses a UUID string as the salt bytes.
      const salt = randomUUID();
      const keys = await deriveKeys(saslprepStored(password), "SHA-1", Buffer.from(salt, "utf8"), iterations);
      body =
        `return {\n\t["iteration_count"] = ${iterations};\n\t["salt"] = ${luaString(salt)};\n` +
        `\t["stored_key"] = ${luaString(keys.storedKey.toString("hex"))};\n\t["server_key"] = ${luaString(keys.serverKey.toString("hex"))};\n};\n`;
    } else {
      body = `return {\n\t["password"] = ${luaString(password)};\n};\n`;
    }
    await fs.promises.writeFile(file, body);
    return 1;
  });
  return written.reduce<number>((a, b) => a + b, 0);
}
