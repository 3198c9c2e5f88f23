// XEP-0012 last activity: asked of the server, the seconds since this sm
// started (its uptime, as Prosody's mod_uptime answers); asked of an
// account by the user or a contact who may see the user's presence, 0 while
// one of its resources is available, else the seconds since its last
// available resource left, with the status it left with (XEP-0012 §4, as
// Prosody's mod_lastactivity keeps it, in the module's own storage).
import { Element } from "ltx";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Session } from "./sessions.js";
import { iqResult } from "./stanza.js";
import { hasFrom } from "./subscription.js";

const NS = "jabber:iq:last";

/** What the module stores per account when its last session ends. */
interface Logout {
  /** When, in ms since the epoch. */
  at: number;
  status: string;
}

export const modLast = defineModule({
  name: "last",
  doc: "XEP-0012 last activity: the server's uptime, and how long ago an account was last online, for those who may see its presence.",
  enabled: true,
  options: {},
  setup,
});

function setup(api: ModuleApi): void {
  const started = Date.now();
  // Lazy: a logout's time shares its commit with the others of the next second, instead of an fsync each.
  const logouts = api.storage.kv("last", { lazy: true });
  /** Logouts whose put is not committed yet, by account: what a query answers meanwhile, and the put. */
  const unsaved = new Map<string, { logout: Logout; saved: Promise<unknown> }>();
  api.addFeature(NS);

  api.hook(`iq-get/host/${NS}:query`, (event) => answer(api, event, Date.now() - started));

  // A self query falls through to bare.
  api.hook(`iq-get/bare/${NS}:query`, async (event) => {
    const user = event.to.bare;
    if (!(await api.userExists(user))) return false; // service-unavailable (RFC 6121 §8.5.1)
    if (event.from.bare !== user) {
      const item = await api.store.getRosterItem(user, event.from.bare);
      if (!item || !hasFrom(item.subscription)) {
        await api.error(event, "forbidden");
        return true;
      }
    }
    if (api.sessions.available(user).length > 0) return answer(api, event, 0);
    const stored = unsaved.has(user) ? null : await logouts.get(user, "logout");
    const logout = unsaved.get(user)?.logout ?? (stored === null ? null : (JSON.parse(stored) as Logout));
    // Never left while the module was on: nothing to tell.
    if (logout === null) return false;
    return answer(api, event, Date.now() - logout.at, logout.status);
  });

  /** The user's last available resource leaves: when, and with what status, is kept for the contacts to ask. */
  function left(session: Session, status: string): void {
    if (!session.isAvailable || api.sessions.available(session.user).some((s) => s !== session)) return;
    const { user } = session;
    const logout: Logout = { at: Date.now(), status };
    // Not awaited, nor worth failing the stanza or the session's end for: the time told is only older.
    const saved = logouts
      .put(user, "logout", JSON.stringify(logout))
      .catch((err: unknown) => session.log.warn({ err }, "last logout not stored"))
      .finally(() => {
        if (unsaved.get(user)?.logout === logout) unsaved.delete(user);
      });
    unsaved.set(user, { logout, saved });
  }
  // Both before mod-presence, which marks the session unavailable; in the user's turn, so a query after them finds it.
  api.hook(
    "pre-presence/self",
    async (event) => {
      const { origin, stanza } = event;
      if (origin && !stanza.attrs.to && stanza.attrs.type === "unavailable") left(origin, stanza.getChildText("status") ?? "");
      return false;
    },
    10,
  );
  api.hook("session-ended", ({ session }) => left(session, ""), 10);
  // Committed before the account's data goes, which would refuse it.
  api.hook("account-deleted", async ({ user }) => {
    await unsaved.get(user)?.saved;
    return false;
  });
}

async function answer(api: ModuleApi, event: StanzaEvent, ms: number, status = ""): Promise<true> {
  const query = new Element("query", { xmlns: NS, seconds: String(Math.max(0, Math.floor(ms / 1000))) });
  if (status) query.t(status);
  await api.reply(event, iqResult(event.stanza, query));
  return true;
}
