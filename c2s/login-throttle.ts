// Failed logins slow down the next ones, per address and per account, with a
// delay that doubles at every failure past the free ones, up to a cap
// (docs/security.md, "Connections and logins"). A delay is a delay: the
// attempt is held, then checked as usual; nothing is refused.
//
// - Guesses from one address are checked one at a time, a delay apart, in
//   the order they came: many connections from there guess no faster than
//   one. A guess dropped while held (its connection went) takes no turn.
// - A guess on an account waits that account's delay, unless it comes from
//   an address that logged in to the account before. Those waits are not
//   taken in turn, so guessers elsewhere can push the owner's own login back
//   by the cap at most, and not at all from an address the owner used.
// - Failures are forgotten a while after the last one, and every table is
//   bounded (oldest first out): all of them grow with what clients send.
import { expire, remember } from "../lib/bounded-map.js";

export interface LoginThrottleLimits {
  /** Failures before any delay (typos). */
  freeFailures: number;
  /** The first delay; each further failure doubles it. */
  delayMs: number;
  maxDelayMs: number;
  /** How long after its last failure an address or account is forgiven. */
  memoryMs: number;
  /** Entries per table at most. */
  maxEntries: number;
}

/** How long a successful login vouches for its address on that account. */
const TRUSTED_MS = 30 * 24 * 3600 * 1000;

interface Failures {
  count: number;
  /** When the last one was. */
  last: number;
  /** When they are forgotten. */
  until: number;
  /** For an address: when its next guess may be checked. */
  next: number;
}

interface Held {
  address: string;
  /** The account's delay: not before then. */
  notBefore: number;
  go: (checked: boolean) => void;
}

export class LoginThrottle {
  private readonly addresses = new Map<string, Failures>();
  private readonly accounts = new Map<string, Failures>();
  /** "account\0address" of every successful login. */
  private readonly trusted = new Map<string, { until: number }>();
  /** Held attempts by whoever holds them (a connection), in the order they came. */
  private readonly held = new Map<object, Held>();
  /** How many held attempts each address has, so that a newcomer queues behind them. */
  private readonly queued = new Map<string, number>();

  constructor(private readonly limits: LoginThrottleLimits) {}

  /** Login attempts held now. */
  get delayed(): number {
    return this.held.size;
  }

  /**
   * Whether a password guess from `address` (its addressKey) on `account`
   * (null: a name no account can have) may be checked: true at once when
   * nothing holds it back; else a promise of true at the release() that lets
   * it go, or of false if cancel(holder) comes first.
   */
  turn(holder: object, address: string, account: string | null, now: number): true | Promise<boolean> {
    const notBefore = this.accountWait(address, account, now);
    if (notBefore <= now && !this.queued.has(address) && this.take(address, now)) return true;
    this.queued.set(address, (this.queued.get(address) ?? 0) + 1);
    return new Promise((go) => this.held.set(holder, { address, notBefore, go }));
  }

  /** The holder is gone: its attempt is dropped, and takes no turn. */
  cancel(holder: object): void {
    const h = this.held.get(holder);
    if (!h) return;
    this.unhold(holder, h);
    h.go(false);
  }

  /** Lets the attempts whose time has come go on, and forgets old failures; the c2s sweep calls it. */
  release(now: number): void {
    for (const [holder, h] of this.held) {
      if (h.notBefore > now || !this.take(h.address, now)) continue;
      this.unhold(holder, h);
      h.go(true);
    }
    expire(this.addresses, now);
    expire(this.accounts, now);
    expire(this.trusted, now);
  }

  failed(address: string, account: string | null, now: number): void {
    this.count(this.addresses, address, now);
    if (account !== null) this.count(this.accounts, account, now);
  }

  /** A login succeeded: the address is trusted for that account. Failures are not wiped: a guesser's own account must not buy it new free guesses. */
  succeeded(address: string, account: string, now: number): void {
    remember(this.trusted, `${account}\0${address}`, { until: now + TRUSTED_MS }, this.limits.maxEntries);
  }

  /** When the account's failures let a guess from `address` be checked. */
  private accountWait(address: string, account: string | null, now: number): number {
    const failures = account === null ? undefined : this.live(this.accounts, account, now);
    if (!failures || (this.trusted.get(`${account}\0${address}`)?.until ?? 0) > now) return now;
    return failures.last + this.delay(failures.count);
  }

  /** The address's turn, if it has come: the guess after this one waits a delay. */
  private take(address: string, now: number): boolean {
    const failures = this.live(this.addresses, address, now);
    if (!failures) return true;
    if (failures.next > now) return false;
    failures.next = now + this.delay(failures.count);
    return true;
  }

  private unhold(holder: object, h: Held): void {
    this.held.delete(holder);
    const n = this.queued.get(h.address)! - 1;
    if (n > 0) this.queued.set(h.address, n);
    else this.queued.delete(h.address);
  }

  /** The delay at `count` failures. */
  private delay(count: number): number {
    const over = count - this.limits.freeFailures;
    return over < 0 ? 0 : Math.min(this.limits.maxDelayMs, this.limits.delayMs * 2 ** over);
  }

  private live(map: Map<string, Failures>, key: string, now: number): Failures | undefined {
    const entry = map.get(key);
    return entry && entry.until > now ? entry : undefined;
  }

  private count(map: Map<string, Failures>, key: string, now: number): void {
    const entry = this.live(map, key, now) ?? { count: 0, last: 0, until: 0, next: 0 };
    entry.count++;
    entry.last = now;
    entry.until = now + this.limits.memoryMs;
    // The address's next guess waits a delay after this failure.
    entry.next = Math.max(entry.next, now + this.delay(entry.count));
    remember(map, key, entry, this.limits.maxEntries);
  }
}
