// The admin console's logins: who may log in (an admin account of the farm,
// its password checked against its stored SCRAM keys), the session each
// login gets (a random cookie and a CSRF token, both expiring), and the
// throttle on failed attempts.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { parseJid } from "../../lib/jid.js";
import { randomHex } from "../../lib/random.js";
import { SALT_BYTES, hashSize, verifyPassword, type ScramHash, type ScramKeys } from "../../lib/sasl/scram-credentials.js";
import type { Store } from "../../xdb-sql/store.js";

/** A session ends this long after its last request. */
export const SESSION_IDLE_MS = 30 * 60_000;
/** And this long after its login, however busy. */
export const SESSION_MAX_MS = 12 * 3600_000;
/** Failed logins from one address, or on one account, allowed per window; more are refused until it passes. */
const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 15 * 60_000;
/** Addresses and accounts whose failures are remembered at most: a flood of strangers cannot grow the table without bound. */
const MAX_FAILURE_ENTRIES = 10_000;

export interface ConsoleSession {
  user: string;
  /** Sent back by the page in a header on every POST: a forged cross-site request cannot read it. */
  csrf: string;
  created: number;
  lastUsed: number;
}

export type LoginOutcome = { ok: true; id: string; session: ConsoleSession } | { ok: false; throttled: boolean };

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly store: Store,
    /** The bare JIDs of `[console] admins`. */
    private readonly admins: ReadonlySet<string>,
    private readonly iterations: number,
  ) {}

  /** The session of cookie value `id`, its idle time renewed; undefined when there is none or it expired. */
  get(id: string | undefined, now = Date.now()): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (now - s.lastUsed > SESSION_IDLE_MS || now - s.created > SESSION_MAX_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastUsed = now;
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  /** Whether `token` is the session's CSRF token. */
  static csrfMatches(session: ConsoleSession, token: string | undefined): boolean {
    if (!token) return false;
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * Checks an admin's login. Whatever fails (not an admin, no account, a
   * disabled one, a wrong password) costs one PBKDF2 and reads the same, so
   * the answer tells no one which accounts are admins.
   */
  async login(jidText: string, password: string, address: string, now = Date.now()): Promise<LoginOutcome> {
    this.sweep(now);
    const user = parseJid(jidText.trim())?.bare ?? null;
    const keys = [`ip:${address}`, ...(user ? [`user:${user}`] : [])];
    if (keys.some((k) => (this.failures.get(k)?.count ?? 0) >= MAX_FAILURES)) return { ok: false, throttled: true };
    const admin = user !== null && this.admins.has(user);
    const account = admin ? await this.store.getLoginAccount(user) : null;
    const creds = account?.credentials ?? null;
    const hash: ScramHash = creds?.["SHA-256"] ? "SHA-256" : "SHA-1";
    const stored = creds?.[hash] ?? this.decoy(hash);
    const matches = await verifyPassword(password, stored, hash);
    const ok = matches && account !== null && !account.disabled;
    if (!ok) {
      for (const k of keys) {
        const f = this.failures.get(k);
        if (f) f.count++;
        else if (this.failures.size < MAX_FAILURE_ENTRIES) this.failures.set(k, { count: 1, since: now });
      }
      return { ok: false, throttled: false };
    }
    for (const k of keys) this.failures.delete(k);
    const session: ConsoleSession = { user: user!, csrf: randomHex(32), created: now, lastUsed: now };
    const id = randomHex(32);
    this.sessions.set(id, session);
    return { ok: true, id, session };
  }

  /** Keys no password matches, at the farm's iteration count: a refused login takes as long as an admin's. */
  private decoy(hash: ScramHash): ScramKeys {
    return { salt: randomBytes(SALT_BYTES), iterations: this.iterations, storedKey: randomBytes(hashSize(hash)), serverKey: randomBytes(hashSize(hash)) };
  }

  private sweep(now: number): void {
    for (const [k, f] of this.failures) if (now - f.since > FAILURE_WINDOW_MS) this.failures.delete(k);
    for (const [id, s] of this.sessions) if (now - s.lastUsed > SESSION_IDLE_MS || now - s.created > SESSION_MAX_MS) this.sessions.delete(id);
  }
}
