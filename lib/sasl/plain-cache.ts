// SASL PLAIN against stored SCRAM keys costs a PBKDF2 run (4096 iterations
// or more) per login, the most expensive step of a login by far; and most
// logins are clients coming back. So a front end remembers, per account,
// that a password was verified against the keys the store holds: the same
// password against the same keys needs no PBKDF2.
//
// Why it is sound:
// - Only a keyed tag is kept, HMAC-SHA-256 under a random key that lives in
//   this process alone, over the password and the stored keys it matched.
//   Never the password, nor anything that works elsewhere.
// - The keys are read from the store at every login, as without the cache,
//   and are part of the tag: a new password (`xfarm user passwd`, fresh
//   salt and keys) or a deleted account matches no tag, so nothing needs
//   invalidating.
// - A wrong password misses, runs PBKDF2 and fails as before, and removes
//   nothing: a hit only ever answers the question PBKDF2 would have answered.
// - Whoever can read this process's memory could test guesses at one HMAC
//   each against a remembered tag instead of a PBKDF2 run; but they could
//   as well read the passwords of PLAIN logins as they arrive. Entries
//   expire, and their number is bounded.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { ScramHash, ScramKeys } from "../../xdb-sql/store.js";
import { verifyPassword } from "./scram-credentials.js";

/** Accounts remembered at most; the oldest go first. */
const MAX_ENTRIES = 20_000;
/** How long a verification is remembered. */
const TTL_MS = 60 * 60 * 1000;

export class PlainVerifier {
  private readonly key = randomBytes(32);
  /** Tag and expiry by account, oldest first (a Map keeps insertion order). */
  private readonly verified = new Map<string, { tag: Buffer; until: number }>();

  constructor(
    private readonly maxEntries = MAX_ENTRIES,
    private readonly ttlMs = TTL_MS,
    /** The PBKDF2 check a miss runs (a counting one in tests). */
    private readonly check: typeof verifyPassword = verifyPassword,
  ) {}

  /** Whether `password` matches `keys`, the stored keys of `user` for `hash`. */
  async verify(user: string, password: string, keys: ScramKeys, hash: ScramHash, now = Date.now()): Promise<boolean> {
    // Oldest first, all with the same lifetime: the expired ones are at the front (the check below
    // still looks, should the clock have jumped).
    for (const [name, entry] of this.verified) {
      if (entry.until > now) break;
      this.verified.delete(name);
    }
    const tag = this.tag(user, password, keys, hash);
    const known = this.verified.get(user);
    if (known && known.until > now && timingSafeEqual(known.tag, tag)) return true;
    if (!(await this.check(password, keys, hash))) return false;
    this.verified.delete(user);
    this.verified.set(user, { tag, until: now + this.ttlMs });
    if (this.verified.size > this.maxEntries) this.verified.delete(this.verified.keys().next().value!);
    return true;
  }

  private tag(user: string, password: string, keys: ScramKeys, hash: ScramHash): Buffer {
    // NUL separates the fields: no JID, hash name, number or base64 holds one.
    return createHmac("sha256", this.key)
      .update(`${user}\0${hash}\0${keys.iterations}\0${keys.salt.toString("base64")}\0${keys.storedKey.toString("base64")}\0`)
      .update(password, "utf8")
      .digest();
  }
}
