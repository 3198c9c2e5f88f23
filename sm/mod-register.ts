// XEP-0077 in-band registration, for an account that is logged in: a client
// reads its registration (§3.2), changes its password (§3.3) or removes its
// account (§3.2), as Prosody's mod_user_account_management and ejabberd's
// mod_register answer it. Addressed to the account itself (no 'to') or, as
// the XEP's examples and slixmpp's xep_0077 do, to its server's domain.
// Registering a new account before login is the c2s's (c2s/registration.ts).
import { Element } from "ltx";
import { localpart } from "../lib/jid.js";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import type { StanzaEvent } from "./hooks.js";
import { PASSWORD_CHANGED, defineModule, type ModuleApi, type OptionSpecs, type OptionsOf } from "./module-api.js";
import type { Session } from "./sessions.js";
import { iqResult } from "./stanza.js";

const NS = "jabber:iq:register";

const OPTIONS = {
  allow_remove: {
    type: "boolean",
    default: true,
    doc: "Whether a logged-in user may remove their own account (XEP-0077's remove), as in Prosody; false answers not-allowed and leaves removal to `xfarm user del`.",
  },
} satisfies OptionSpecs;

type Options = OptionsOf<typeof OPTIONS>;

export const modRegister = defineModule({
  name: "register",
  doc: "XEP-0077 for a logged-in account: the registration read, password change (the account's other sessions end with reset) and account removal.",
  enabled: true,
  options: OPTIONS,
  setup,
});

function setup(api: ModuleApi, options: Options): void {
  api.addFeature(NS);
  for (const target of ["self", "host"] as const) {
    api.hook(`iq-get/${target}/${NS}:query`, (event) => withSession(event, (session) => registration(api, event, session)));
    api.hook(`iq-set/${target}/${NS}:query`, (event) => withSession(event, (session) => change(api, options, event, session)));
  }
}

/**
 * Runs `handle` for an iq a local session sent to its own account or to its
 * own server's domain (as a bare JID). Anything else is left unhandled, and
 * so answered service-unavailable: nothing here serves another account,
 * another domain, or a sender that is not logged in here.
 */
async function withSession(event: StanzaEvent, handle: (session: Session) => Promise<void>): Promise<boolean> {
  const session = event.origin;
  if (!session) return false;
  if (!event.to.local && (event.to.resource || event.to.domain !== session.jid.domain)) return false;
  await handle(session);
  return true;
}

/** §3.2: the account is registered, under this username; the password is what may be set. */
async function registration(api: ModuleApi, event: StanzaEvent, session: Session): Promise<void> {
  const query = new Element("query", { xmlns: NS });
  query.c("registered");
  query.c("username").t(session.jid.local);
  query.c("password");
  await api.reply(event, iqResult(event.stanza, query));
}

async function change(api: ModuleApi, options: Options, event: StanzaEvent, session: Session): Promise<void> {
  const query = event.stanza.getChild("query", NS)!;
  if (query.getChild("remove")) {
    // §3.2: <remove/> stands alone.
    if (query.getChildElements().length !== 1) return api.error(event, "bad-request", "remove stands alone");
    return remove(api, options, event, session);
  }
  const username = query.getChildText("username");
  const password = query.getChildText("password");
  if (username === null || password === null) return api.error(event, "bad-request", "a username and a password are needed");
  // §3.3: only the account's own password; Prosody and ejabberd answer others bad-request.
  if (localpart(username) !== session.jid.local) return api.error(event, "bad-request", "the username is not this account's");
  let credentials;
  try {
    // Checked as `xfarm user passwd` checks it: SASLprep (RFC 4013), and not empty.
    credentials = await deriveCredentials(password, api.scramIterations);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return api.error(event, "not-acceptable", err.message);
  }
  if (!(await api.store.setCredentials(session.user, credentials))) return api.error(event, "item-not-found");
  session.log.info("password changed by the user");
  await api.reply(event, iqResult(event.stanza));
  // As Prosody does (user-password-changed): the account's other sessions logged
  // in with the old password and must log in again; this one stays.
  await api.endSessions(event.work, session.user, PASSWORD_CHANGED, session);
}

/** §3.2: the result goes to the client, then the account goes as `xfarm user del` deletes it, this session with it. */
async function remove(api: ModuleApi, options: Options, event: StanzaEvent, session: Session): Promise<void> {
  if (!options.allow_remove) return api.error(event, "not-allowed", "accounts are removed by the admin here");
  await api.reply(event, iqResult(event.stanza));
  session.log.info("account removed by the user");
  try {
    await api.deleteAccount(event.work, session.user);
  } catch (err) {
    // The sessions have ended already; the store failed: the account stays, for the admin to delete.
    session.log.error({ err }, "removing the account failed");
  }
}
