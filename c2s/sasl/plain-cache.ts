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
//
// A front end that redirects a client it checked also vouches for the
// password to the target (docs/protocol.md §1.6), so the client's second
// PLAIN there costs no second PBKDF2. The voucher is an HMAC keyed by the
// account's ServerKey, which the target reads from the store as the sender
// did: the link's bytes alone let nobody test a guess. Whoever also holds
// the store could test guesses against a voucher at one HMAC each; they
// could read every stanza on the link as well.
//
// The sm keeps each PLAIN session's voucher too (protocol §2.8). When a
// front end is lost (a crash), the sm sends its sessions' vouchers to the
// others, so that a reconnect storm of its PLAIN clients costs the front
// ends that take them an HMAC each, not a PBKDF2. The same argument holds:
// a voucher proves one password against one account's stored keys, and
// only to whoever reads those keys from the store.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { expire, remember } from "../../lib/bounded-map.js";
import { fakeKeys } from "./fake-keys.js";
import { verifyPassword, type Credentials, type ScramHash, type ScramKeys } from "../../lib/sasl/scram-credentials.js";

/** Accounts remembered at most; the oldest go first. */
const MAX_ENTRIES = 20_000;
/** How long a verification is remembered. */
const TTL_MS = 60 * 60 * 1000;
/** How long a voucher waits for its client: as long as a front end expects a redirected client. */
export const VOUCHER_TTL_MS = 30_000;
/**
 * How long a lost front end's vouchers wait for their clients: long enough
 * for clients that back off for a minute or more before they reconnect.
 */
export const LOST_VOUCHER_TTL_MS = 120_000;
/** Vouchers of each kind held at most, the oldest going first: two lost front ends' sessions at the default capacity. */
const MAX_VOUCHERS = 40_000;

/** How a PLAIN password was found right: a PBKDF2 run, this front end's memory, or a peer's voucher. */
export type PlainProof = "pbkdf2" | "remembered" | "vouched";

/** What a front end sends with a client it redirects after a PLAIN login: proof of the password, for that account's keys only. */
export function plainVoucher(user: string, password: string, keys: ScramKeys, hash: ScramHash): Buffer {
  return createHmac("sha256", keys.serverKey).update(`xfarm PLAIN voucher\0${user}\0${hash}\0`).update(password, "utf8").digest();
}

/** A peer's proof of a password, as a one-byte string (below), and until when it counts. */
interface Voucher {
  voucher: string;
  until: number;
}

export class PlainVerifier {
  private readonly key = randomBytes(32);
  /**
   * Tag and expiry by account, oldest first (a Map keeps insertion order).
   * The tag's bytes (and a voucher's) are kept as a one-byte string: a Buffer of its own costs
   * some 200 bytes an entry, and a slice of Buffer's shared pool keeps a
   * whole 8 KB slab alive.
   */
  private readonly verified = new Map<string, { tag: string; until: number }>();
  /** Vouchers from peers for clients they redirected here, by account, oldest first. */
  private readonly vouchers = new Map<string, Voucher>();
  /** Vouchers from the sm for a lost front end's clients (§2.8): a map of their own, as they live longer. */
  private readonly lostVouchers = new Map<string, Voucher>();

  constructor(
    private readonly maxEntries = MAX_ENTRIES,
    private readonly ttlMs = TTL_MS,
    /** The PBKDF2 check a miss runs (a counting one in tests). */
    private readonly check: typeof verifyPassword = verifyPassword,
    private readonly maxVouchers = MAX_VOUCHERS,
  ) {}

  /** Vouchers waiting for their clients now. */
  vouchersHeld(now = Date.now()): number {
    expire(this.vouchers, now);
    expire(this.lostVouchers, now);
    return this.vouchers.size + this.lostVouchers.size;
  }

  /**
   * Checks a PLAIN login: `creds` are the stored credentials of `user`, null
   * when there is no such account. An unknown account is checked against
   * fake keys of the cost real ones have (`iterations`), so its failure takes
   * as long as a wrong password's and timing does not tell who has an account.
   */
  async checkAccount(
    user: string,
    password: string,
    creds: Credentials | null,
    iterations: number,
  ): Promise<{ proof: PlainProof; keys: ScramKeys; hash: ScramHash } | null> {
    const hash: ScramHash = creds && !creds["SHA-256"] ? "SHA-1" : "SHA-256";
    const stored = creds?.[hash];
    const proof = await this.verify(user, password, stored ?? fakeKeys(hash, user, { iterations }), hash);
    return proof && stored ? { proof, keys: stored, hash } : null;
  }

  /** How `password` was found to match `keys`, the stored keys of `user` for `hash`; null when it does not. */
  async verify(user: string, password: string, keys: ScramKeys, hash: ScramHash, now = Date.now()): Promise<PlainProof | null> {
    expire(this.verified, now);
    expire(this.vouchers, now);
    expire(this.lostVouchers, now);
    const tag = this.tag(user, password, keys, hash);
    const known = this.verified.get(user);
    if (known && known.until > now && timingSafeEqual(Buffer.from(known.tag, "latin1"), tag)) return "remembered";
    let proof: PlainProof = "vouched";
    if (!this.vouchedFor(user, password, keys, hash, now)) {
      if (!(await this.check(password, keys, hash))) return null;
      proof = "pbkdf2";
    }
    this.vouchers.delete(user);
    this.lostVouchers.delete(user);
    remember(this.verified, user, { tag: tag.toString("latin1"), until: now + this.ttlMs }, this.maxEntries);
    return proof;
  }

  /** A peer redirected `user` here after checking its PLAIN password (plainVoucher()). */
  accept(user: string, voucher: Buffer, now = Date.now()): void {
    this.keep(this.vouchers, user, voucher, now + VOUCHER_TTL_MS, now);
  }

  /** The sm tells of a lost front end's session of `user`, whose PLAIN password that front end checked (§2.8). */
  acceptLost(user: string, voucher: Buffer, now = Date.now()): void {
    this.keep(this.lostVouchers, user, voucher, now + LOST_VOUCHER_TTL_MS, now);
  }

  private keep(map: Map<string, Voucher>, user: string, voucher: Buffer, until: number, now: number): void {
    if (voucher.length !== 32) return;
    expire(map, now);
    remember(map, user, { voucher: voucher.toString("latin1"), until }, this.maxVouchers);
  }

  /** Whether a live voucher for `user` matches this password. */
  private vouchedFor(user: string, password: string, keys: ScramKeys, hash: ScramHash, now: number): boolean {
    let expected: Buffer | null = null;
    for (const map of [this.vouchers, this.lostVouchers]) {
      const v = map.get(user);
      if (!v || v.until <= now) continue;
      expected ??= plainVoucher(user, password, keys, hash);
      if (timingSafeEqual(Buffer.from(v.voucher, "latin1"), expected)) return true;
    }
    return false;
  }

  private tag(user: string, password: string, keys: ScramKeys, hash: ScramHash): Buffer {
    // NUL separates the fields: no JID, hash name, number or base64 holds one.
    return createHmac("sha256", this.key)
      .update(`${user}\0${hash}\0${keys.iterations}\0${keys.salt.toString("base64")}\0${keys.storedKey.toString("base64")}\0`)
      .update(password, "utf8")
      .digest();
  }
}
