// XEP-0077 in-band registration, before authentication, off unless
// c2s.registration is on: the stream feature, the form (an iq get) and the
// account created (an iq set) as `xfarm user add` creates one, at most
// c2s.registration_per_hour accounts an hour from one client address (by
// addressKey, on each front end). No CAPTCHA, no unregistering.
import { escapeXML, type Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { errorReplyXml, type Answered, type Condition } from "../lib/stanza-error.js";
import type { Config } from "../lib/config.js";
import type { Store } from "../xdb-sql/store.js";
import { addressKey } from "./client-address.js";

export const NS_REGISTER = "jabber:iq:register";
export const REGISTER_FEATURE = "<register xmlns='http://jabber.org/features/iq-register'/>";
const HOUR_MS = 3600 * 1000;
/** ejabberd's words for the same refusal. */
const TOO_QUICKLY = "Users are not allowed to register accounts so quickly";

/** What registration needs of its front end (ConnectionHost has it). */
export interface RegistrationHost {
  readonly config: Pick<Config["c2s"], "registration" | "allow_unencrypted_plain_auth" | "require_tls" | "scram_iterations">;
  readonly store: Pick<Store, "createAccount">;
  readonly registrations: Pick<RegistrationLimit, "take" | "giveBack">;
}

/** What registration needs of a connection that has not authenticated. */
export interface Registering {
  readonly ip: string;
  /** The domain the stream header named: accounts are made there. */
  readonly domain: string;
  readonly secure: boolean;
  readonly log: Logger;
  write(data: string): void;
}

/** Offered where PLAIN is (c2s/sasl-exchange.ts): inside TLS, or in the clear only where the admin allowed that. */
export function registrationOffered(config: RegistrationHost["config"], secure: boolean): boolean {
  if (!config.registration) return false;
  return secure || (config.allow_unencrypted_plain_auth && !config.require_tls);
}

/** An iq of XEP-0077's, which an unauthenticated client may send when registration is on. */
export function isRegistrationIq(config: RegistrationHost["config"], el: Element): boolean {
  return config.registration && el.name === "iq" && el.getChild("query", NS_REGISTER) !== undefined;
}

/** Answers a registration iq: the form, or the account made (or why not). */
export async function onRegistrationIq(ctx: RegistrationHost, c: Registering, iq: Element): Promise<void> {
  const id = escapeXML(iq.attrs.id ?? "");
  const answered: Answered = { name: "iq", attrs: { id: iq.attrs.id } };
  const fail = (condition: Condition, text?: string) => c.write(errorReplyXml(answered, condition, { text, by: c.domain }));
  // As Prosody answers it when encryption is required and the stream is not encrypted.
  if (!registrationOffered(ctx.config, c.secure)) return fail("policy-violation", "Encryption is required");
  const query = iq.getChild("query", NS_REGISTER)!;
  if (iq.attrs.type === "get") {
    return c.write(
      `<iq type='result' id='${id}'><query xmlns='${NS_REGISTER}'><instructions>Choose a username and password to register with this server.</instructions><username/><password/></query></iq>`,
    );
  }
  if (iq.attrs.type !== "set") return fail("bad-request");
  // Cancelling a registration is for an account that authenticated.
  if (query.getChild("remove")) return fail("not-authorized");
  const username = query.getChildText("username") ?? "";
  const password = query.getChildText("password") ?? "";
  // The username is a localpart as RFC 7622 prepares it, the account's JID as `xfarm user add` takes it.
  const jid = username.includes("@") || username.includes("/") ? null : parseJid(`${username}@${c.domain}`);
  if (!jid?.local || jid.domain !== c.domain) return fail("not-acceptable", "The requested username is invalid.");
  if (password === "") return fail("not-acceptable", "A password is required.");
  const address = addressKey(c.ip);
  const now = Date.now();
  if (!ctx.registrations.take(address, now)) {
    c.log.info({ user: jid.bare }, "registration refused: too many from this address");
    return fail("resource-constraint", TOO_QUICKLY);
  }
  let created: boolean;
  try {
    created = await ctx.store.createAccount(jid.bare, await deriveCredentials(password, ctx.config.scram_iterations));
  } catch (err) {
    ctx.registrations.giveBack(address, now);
    // SASLprep refused the password (deriveCredentials' RangeError): the client's to fix.
    if (err instanceof RangeError) return fail("not-acceptable", "The password contains characters that are not allowed.");
    c.log.error({ err, user: jid.bare }, "registration failed");
    return fail("internal-server-error");
  }
  if (!created) {
    ctx.registrations.giveBack(address, now);
    return fail("conflict", "The requested username already exists.");
  }
  c.log.info({ user: jid.bare }, "account registered");
  c.write(`<iq type='result' id='${id}'/>`);
}

/**
 * Accounts registered lately from each client address: a sliding window of
 * an hour. Bounded, the address seen least lately forgotten first, as the
 * login throttle's tables are.
 */
export class RegistrationLimit {
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly perHour: number,
    private readonly maxEntries: number,
  ) {}

  /** Counts a registration from `address` now, unless it has had its share within the hour. */
  take(address: string, now: number): boolean {
    const times = (this.recent.get(address) ?? []).filter((t) => now - t < HOUR_MS);
    this.recent.delete(address);
    if (times.length >= this.perHour) {
      this.recent.set(address, times);
      return false;
    }
    times.push(now);
    this.recent.set(address, times);
    for (const oldest of this.recent.keys()) {
      if (this.recent.size <= this.maxEntries) break;
      this.recent.delete(oldest);
    }
    return true;
  }

  /** A registration counted at `at` made no account (taken, or failed): it does not count. */
  giveBack(address: string, at: number): void {
    const times = this.recent.get(address);
    const i = times?.indexOf(at) ?? -1;
    if (i >= 0) times!.splice(i, 1);
  }
}
