// The SASL exchange of one connection (RFC 6120 §6): <auth/>, <response/>,
// <abort/> driven through c2s/sasl/* against the store's keys, under the
// login throttle, with at most MAX_SASL_ATTEMPTS failures. Made at the
// client's first SASL element and dropped once it authenticated, so a bound
// session holds none.
import { parseJid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { saslLocalpart } from "../lib/sasl/saslprep.js";
import { completeCredentials, type Credentials } from "../lib/sasl/scram-credentials.js";
import type { Element } from "ltx";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import type { LoginAccount } from "../xdb-sql/store.js";
import { addressKey } from "./client-address.js";
import type { ConnectionHost } from "./connection-host.js";
import type { Throttled } from "./read-throttle.js";
import { parsePlain } from "./sasl/plain.js";
import { plainVoucher, type PlainProof } from "./sasl/plain-cache.js";
import { SaslError, ScramServer } from "./sasl/scram-server.js";
import { NS_SASL, saslFailure } from "./stream-writer.js";

const MAX_SASL_ATTEMPTS = 3;

/** What the exchange needs of its connection. */
export interface SaslParty extends Throttled {
  readonly ip: string;
  /** The domain the stream header named. */
  readonly domain: string;
  readonly secure: boolean;
  readonly closed: boolean;
  readonly log: Logger;
  write(data: string): void;
  streamError(condition: string, text?: string): void;
  /** While held, a guess waits for the login throttle and the socket is not read; released, resumeReading() reads it again. */
  holdForLogin(held: boolean): void;
  /** Authenticated as `user`; `voucher` (PLAIN) proves the password to a front end a redirect names. */
  authenticated(user: string, mech: string, additional?: Buffer, proof?: PlainProof, voucher?: Buffer): void;
}

export type SaslHost = Pick<ConnectionHost<Throttled>, "config" | "store" | "plain" | "throttle" | "counters">;

export class SaslExchange {
  private scram: ScramServer | null = null;
  private failures = 0;
  /** The mechanism of the exchange under way, for the metrics ("none" before an <auth/>). */
  private mechanism = "none";
  private named: { name: string; domain: string; jid: string | null } | null = null;
  /** The account the SCRAM exchange under way read: its disabled flag is checked once the proof is in. */
  private scramAccount: LoginAccount | null = null;

  constructor(
    private readonly ctx: SaslHost,
    private readonly party: SaslParty,
  ) {}

  /** One SASL element; failures are answered here, whatever their cause. */
  async handle(el: Element): Promise<void> {
    try {
      if (el.name === "auth") await this.auth(el);
      else if (el.name === "response" && this.scram) await this.response(el);
      else if (el.name === "abort") {
        this.scram = null;
        this.fail("aborted");
      } else throw new SaslError("malformed-request", `unexpected <${el.name}/>`);
    } catch (err) {
      if (!(err instanceof SaslError)) {
        // A database outage is logged once by the store; anything else here is a bug.
        if (!(err instanceof StoreUnavailableError)) this.party.log.error({ err }, "SASL failed internally");
        this.scram = null;
        this.party.write(saslFailure("temporary-auth-failure"));
        return;
      }
      this.scram = null;
      this.fail(err.condition, err.message);
    }
  }

  private async auth(el: Element): Promise<void> {
    const party = this.party;
    const config = this.ctx.config;
    if (this.scram) throw new SaslError("malformed-request", "an exchange is already under way");
    if (config.require_tls && !party.secure) {
      throw new SaslError("encryption-required", "use STARTTLS before authenticating");
    }
    const mech = el.attrs.mechanism as string | undefined;
    // Counted under its own name only when it is one offered: a client's string is no label.
    this.mechanism = mech === "PLAIN" || mech === "SCRAM-SHA-1" || mech === "SCRAM-SHA-256" ? mech : "other";
    const initial = decodeSaslData(el.getText());
    switch (mech) {
      case "PLAIN": {
        if (!plainAllowed(config, party.secure)) throw new SaslError("encryption-required", "PLAIN needs an encrypted stream");
        const { authzid, authcid, password } = parsePlain(initial);
        const user = this.userJid(authcid);
        if (!(await this.throttled(user))) return;
        const account = user ? await this.ctx.store.getLoginAccount(user) : null;
        // An unknown account is checked too, against fake keys: it takes as long as a wrong password.
        const checked = await this.ctx.plain.checkAccount(user ?? authcid, password, account?.credentials ?? null, config.scram_iterations);
        this.ctx.counters.plainCheck(checked?.proof ?? "wrong");
        if (!checked) {
          this.loginFailed(user);
          throw new SaslError("not-authorized", "wrong username or password");
        }
        checkAuthzid(authzid, user!);
        refuseDisabled(account!);
        await this.completeKeys(user!, password, account!.credentials);
        // Kept until the restarted stream's header, in case the balancer sends the client on.
        const voucher = plainVoucher(user!, password, checked.keys, checked.hash);
        return this.succeeded(user!, "PLAIN", undefined, checked.proof, voucher);
      }
      case "SCRAM-SHA-1":
      case "SCRAM-SHA-256": {
        const hash = mech === "SCRAM-SHA-1" ? "SHA-1" : "SHA-256";
        const scram = new ScramServer(hash, async (name) => {
          const user = this.userJid(name);
          const account = user ? await this.ctx.store.getLoginAccount(user) : null;
          this.scramAccount = account;
          if (account && !account.credentials[hash]) {
            party.log.info({ user, mechanism: mech }, "account has no keys for this hash (imported); PLAIN or xfarm user passwd adds them");
          }
          return account?.credentials[hash] ?? null;
        }, { fakeIterations: config.scram_iterations, accountOf: (name) => this.userJid(name) ?? name });
        this.scram = scram;
        const challenge = await scram.start(initial);
        if (this.scram === scram) party.write(`<challenge xmlns='${NS_SASL}'>${challenge.toString("base64")}</challenge>`);
        return;
      }
      default:
        throw new SaslError("invalid-mechanism", `mechanism ${mech ?? "(none)"} is not offered`);
    }
  }

  /**
   * An imported account may hold keys for one SCRAM hash only: the password
   * a PLAIN login proved gives it the other. A failure here only delays that.
   */
  private async completeKeys(user: string, password: string, creds: Credentials): Promise<void> {
    try {
      const complete = await completeCredentials(password, creds);
      if (complete && (await this.ctx.store.setCredentials(user, complete))) {
        this.party.log.info({ user }, "added the missing SCRAM keys");
      }
    } catch (err) {
      this.party.log.warn({ err, user }, "could not add the missing SCRAM keys");
    }
  }

  private async response(el: Element): Promise<void> {
    const scram = this.scram!;
    const account = this.userJid(scram.username!);
    if (!(await this.throttled(account))) return;
    let final: Buffer;
    try {
      final = await scram.finish(decodeSaslData(el.getText()));
    } catch (err) {
      if (err instanceof SaslError && err.condition === "not-authorized") this.loginFailed(account);
      throw err;
    }
    if (this.scram !== scram) return;
    const user = this.userJid(scram.username!)!;
    checkAuthzid(scram.authzid ?? "", user);
    // A proof that checked out came from keys the lookup read, so the account is there.
    refuseDisabled(this.scramAccount!);
    this.scram = null;
    this.scramAccount = null;
    this.succeeded(user, `SCRAM-${scram.hash}`, final);
  }

  /** The account a SASL username names; an exchange asks up to four times for the same name, so the last answer is kept. */
  private userJid(username: string): string | null {
    const domain = this.party.domain;
    if (username === this.named?.name && domain === this.named.domain) return this.named.jid;
    const local = saslLocalpart(username);
    const jid = local === null ? null : `${local}@${domain}`;
    this.named = { name: username, domain, jid };
    return jid;
  }

  /**
   * Holds a password guess on `account` (null: no such account can exist)
   * for as long as the login throttle says; false if the connection went
   * meanwhile. The socket is not read while the guess is held, so nothing
   * the client sends piles up.
   */
  private async throttled(account: string | null): Promise<boolean> {
    const party = this.party;
    const turn = this.ctx.throttle.turn(party, addressKey(party.ip), account, Date.now());
    if (turn === true) return true;
    party.holdForLogin(true);
    const go = await turn;
    party.holdForLogin(false);
    if (!go || party.closed) return false;
    party.resumeReading();
    return true;
  }

  private loginFailed(account: string | null): void {
    this.ctx.throttle.failed(addressKey(this.party.ip), account, Date.now());
  }

  private succeeded(user: string, mech: string, additional?: Buffer, proof?: PlainProof, voucher?: Buffer): void {
    if (this.party.closed) return;
    this.ctx.throttle.succeeded(addressKey(this.party.ip), user, Date.now());
    this.ctx.counters.login(mech);
    this.party.authenticated(user, mech, additional, proof, voucher);
  }

  /** `text` is for the log alone. */
  private fail(condition: string, text?: string): void {
    this.failures++;
    this.ctx.counters.authFailure(this.mechanism);
    this.party.log.info({ condition, text }, "authentication failed");
    this.party.write(saslFailure(condition));
    if (this.failures >= MAX_SASL_ATTEMPTS) this.party.streamError("policy-violation", "too many failed authentication attempts");
  }
}

/** PLAIN sends the password itself: only inside TLS, unless the admin allowed it in the clear. */
export function plainAllowed(config: SaslHost["config"], secure: boolean): boolean {
  return secure || config.allow_unencrypted_plain_auth;
}

function checkAuthzid(authzid: string, user: string): void {
  if (!authzid) return;
  const jid = parseJid(authzid);
  if (!jid) throw new SaslError("invalid-authzid", "malformed authzid");
  if (jid.full !== user) throw new SaslError("invalid-authzid", "you may only authorize as yourself");
}

function decodeSaslData(text: string): Buffer {
  const t = text.trim();
  if (t === "" || t === "=") return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new SaslError("incorrect-encoding", "invalid base64");
  return Buffer.from(t, "base64");
}

/** An account an admin disabled (the console) proved its password, and is still refused (RFC 6120 §6.5.1). */
function refuseDisabled(account: LoginAccount): void {
  if (account.disabled) throw new SaslError("account-disabled", "the account is disabled");
}
