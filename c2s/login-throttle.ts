// Failed logins slow down the next ones, per address and per account, with a
// delay that doubles at every failure past the free ones, up to a cap
// (docs/security.md, "Connections and logins"). A delay is a delay: the
// attempt is held, then checked as usual; nothing is refused.
//
// - Guesses from one address are checked one at a time, a delay apart: many
//   connections from there guess no faster than one.
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

export class LoginThrottle {
  private readonly addresses = new Map<string, Failures>();
  private readonly accounts = new Map<string, Failures>();
  /** "account\0address" of every successful login. */
  private readonly trusted = new Map<string, { until: number }>();
  /** Held attempts, by whoever holds them (a connection), with their time. */
  private readonly held = new Map<object, { due: number; go: (checked: boolean) => void }>();

  constructor(private readonly limits: LoginThrottleLimits) {}

  /** Login attempts held now. */
  get delayed(): number {
    return this.held.size;
  }

  /**
   * When a guess from `address` (its addressKey) on `account` may be
   * checked (`account` null: a name no account can have): a delay after
   * the last failure, and for an address after its previous guess too;
   * takes that address's turn.
   */
  due(address: string, account: string | null, now: number): number {
    let due = now;
    const byAddress = this.live(this.addresses, address, now);
    if (byAddress) {
      due = Math.max(now, byAddress.next);
      // The guess after this one, from another connection, waits its turn.
      byAddress.next = due + this.delay(byAddress.count);
    }
    const byAccount = account === null ? undefined : this.live(this.accounts, account, now);
    if (byAccount && !this.isTrusted(account!, address, now)) due = Math.max(due, byAccount.last + this.delay(byAccount.count));
    return due;
  }

  /**
   * Resolves true once `due` has passed (at the release() after it), or
   * false if cancel(holder) came first.
   */
  wait(holder: object, due: number): Promise<boolean> {
    return new Promise((go) => this.held.set(holder, { due, go }));
  }

  /** The holder is gone: its attempt is dropped. */
  cancel(holder: object): void {
    this.held.get(holder)?.go(false);
    this.held.delete(holder);
  }

  /** Lets the attempts whose time has come go on, and forgets old failures; the c2s sweep calls it. */
  release(now: number): void {
    for (const [holder, h] of this.held) {
      if (h.due > now) continue;
      this.held.delete(holder);
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

  /** The delay at `count` failures. */
  private delay(count: number): number {
    const over = count - this.limits.freeFailures;
    return over < 0 ? 0 : Math.min(this.limits.maxDelayMs, this.limits.delayMs * 2 ** over);
  }

  private live(map: Map<string, Failures>, key: string, now: number): Failures | undefined {
    const entry = map.get(key);
    return entry && entry.until > now ? entry : undefined;
  }

  private isTrusted(account: string, address: string, now: number): boolean {
    return (this.trusted.get(`${account}\0${address}`)?.until ?? 0) > now;
  }

  private count(map: Map<string, Failures>, key: string, now: number): void {
    const entry = this.live(map, key, now) ?? { count: 0, last: 0, until: 0, next: 0 };
    entry.count++;
    entry.last = now;
    entry.until = now + this.limits.memoryMs;
    entry.next = Math.max(entry.next, now + this.delay(entry.count));
    remember(map, key, entry, this.limits.maxEntries);
  }
}
