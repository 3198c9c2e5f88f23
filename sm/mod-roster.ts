// RFC 6121 §2: roster get, set and remove, and pushes to interested
// resources; versioning (§2.6) with a hash of the roster as its version.
import { createHash } from "node:crypto";
import { Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import type { RosterItem } from "../xdb-sql/store.js";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";
import { rosterFull, rosterHasRoom, tooLongToKeep } from "./roster-quota.js";
import { iqResult } from "./stanza.js";
import { hasFrom, hasTo } from "./subscription.js";

const NS = "jabber:iq:roster";
// §2.3.3 leaves the limit to the server; this matches a JID part's.
const MAX_TEXT = 1023;
const SUBSCRIPTIONS: ReadonlySet<string> = new Set(["none", "to", "from", "both", "remove"]);

export const modRoster = defineModule({ name: "roster", doc: "Rosters (RFC 6121 §2): get, set and pushes.", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  // Sessions that asked with a version, so their pushes carry one.
  const versioned = new WeakSet<Session>();
  let pushes = 0;

  api.hook(`iq-get/self/${NS}:query`, async (event) => {
    const session = event.origin;
    if (!session) return false;
    session.interested = true;
    const items = (await api.store.getRoster(session.user)).filter((i) => i.visible);
    const asked: string | undefined = event.stanza.getChild("query")!.attrs.ver;
    if (asked === undefined) {
      await api.reply(event, iqResult(event.stanza, queryOf(items)));
      return true;
    }
    versioned.add(session);
    const ver = versionOf(items);
    // §2.6.3: an up-to-date client gets an empty result, then pushes.
    await api.reply(event, iqResult(event.stanza, asked === ver ? undefined : queryOf(items, ver)));
    return true;
  });

  api.hook(`iq-set/self/${NS}:query`, async (event) => {
    const user = event.origin?.user;
    if (!user) return false;
    const items = event.stanza.getChild("query")!.getChildren("item");
    if (items.length !== 1) return fail(api, event, "bad-request", "a roster set holds exactly one item");
    const el = items[0]!;
    const jid = parseJid(el.attrs.jid ?? "");
    if (!jid) return fail(api, event, "jid-malformed", "the item's JID is not valid (RFC 7622)");
    if (jid.resource) return fail(api, event, "bad-request", "the item needs a bare JID");
    const contact = jid.bare;
    if (contact === user) return fail(api, event, "not-allowed", "the user's own JID is not a contact");
    const tooLong = tooLongToKeep(contact);
    if (tooLong) return fail(api, event, "not-acceptable", tooLong);
    const sub: string | undefined = el.attrs.subscription;
    if (sub !== undefined && !SUBSCRIPTIONS.has(sub)) return fail(api, event, "bad-request", "bad subscription");
    if (sub === "remove") return remove(api, event, user, contact);

    const name: string | null = el.attrs.name ?? null;
    const groups = el.getChildren("group").map((g) => g.getText());
    if ((name?.length ?? 0) > MAX_TEXT) return fail(api, event, "not-acceptable", "name too long");
    if (groups.some((g) => g.length === 0 || g.length > MAX_TEXT)) {
      return fail(api, event, "not-acceptable", "empty or too long group");
    }
    if (new Set(groups).size !== groups.length) return fail(api, event, "bad-request", "duplicate group");
    // The subscription state is the server's (§2.1.2.5); a set only names and groups.
    const old = await api.store.getRosterItem(user, contact);
    if (!old && !(await rosterHasRoom(api, user))) return fail(api, event, "policy-violation", rosterFull(api));
    const item: RosterItem = {
      contact,
      name,
      groups,
      subscription: old?.subscription ?? "none",
      askOut: old?.askOut ?? false,
      pendingIn: old?.pendingIn ?? false,
      visible: true,
    };
    await api.store.putRosterItem(user, item);
    await api.fire("roster-changed", { user, contact, item, work: event.work });
    await api.reply(event, iqResult(event.stanza));
    return true;
  });

  // An account that goes cancels every subscription as a removal of each item would, as ejabberd's and
  // Prosody's do: each contact's item for it is left with none, and no contact waits for its presence.
  api.hook("account-deleted", async ({ user, work }) => {
    for (const item of await api.store.getRoster(user)) await cancelSubscriptions(api, work, user, item);
  });

  api.hook("roster-changed", async ({ user, contact, item, work }) => {
    if (item && !item.visible) return;
    const targets = api.sessions.of(user).filter((s) => s.interested);
    if (targets.length === 0) return;
    const ver = targets.some((s) => versioned.has(s))
      ? versionOf((await api.store.getRoster(user)).filter((i) => i.visible))
      : undefined;
    for (const session of targets) {
      const push = new Element("iq", { type: "set", id: `push${++pushes}`, to: session.jid.full });
      push
        .c("query", { xmlns: NS, ver: versioned.has(session) ? ver : undefined })
        .cnode(item ? itemOf(item) : new Element("item", { jid: contact, subscription: "remove" }));
      api.deliver(work, session, push);
    }
  });
}

/** §2.5.2: the user's side of a subscription both ways, and of a request either way, is cancelled to the contact. */
async function cancelSubscriptions(api: ModuleApi, work: Work, user: string, item: RosterItem): Promise<void> {
  const presence = (type: string): Element => new Element("presence", { type, from: user, to: item.contact });
  if (hasTo(item.subscription) || item.askOut) await api.send(work, presence("unsubscribe"));
  if (hasFrom(item.subscription) || item.pendingIn) await api.send(work, presence("unsubscribed"));
}

/** §2.5: removal cancels both directions of the subscription. */
async function remove(api: ModuleApi, event: StanzaEvent, user: string, contact: string): Promise<boolean> {
  const item = await api.store.getRosterItem(user, contact);
  if (!item?.visible) return fail(api, event, "item-not-found");
  await api.store.deleteRosterItem(user, contact);
  await cancelSubscriptions(api, event.work, user, item);
  if (hasFrom(item.subscription)) {
    // The contact stops seeing the user (§3.2.2 for the unsubscribed sent on the user's behalf).
    for (const session of api.sessions.available(user)) {
      await api.send(event.work, new Element("presence", { type: "unavailable", from: session.jid.full, to: contact }));
    }
  }
  await api.fire("roster-changed", { user, contact, item: null, work: event.work });
  await api.reply(event, iqResult(event.stanza));
  return true;
}

async function fail(
  api: ModuleApi,
  event: StanzaEvent,
  condition: "bad-request" | "jid-malformed" | "not-acceptable" | "not-allowed" | "item-not-found" | "policy-violation",
  text?: string,
): Promise<boolean> {
  await api.error(event, condition, text);
  return true;
}

function itemOf(item: RosterItem): Element {
  const el = new Element("item", {
    jid: item.contact,
    name: item.name ?? undefined,
    subscription: item.subscription,
    ask: item.askOut ? "subscribe" : undefined,
  });
  for (const group of item.groups) el.c("group").t(group);
  return el;
}

function queryOf(items: RosterItem[], ver?: string): Element {
  const query = new Element("query", { xmlns: NS, ver });
  for (const item of items) query.cnode(itemOf(item));
  return query;
}

/** A version that changes exactly when what the client sees changes. */
function versionOf(items: RosterItem[]): string {
  const seen = [...items]
    .sort((a, b) => (a.contact < b.contact ? -1 : a.contact > b.contact ? 1 : 0))
    .map((i) => [i.contact, i.name, i.subscription, i.askOut, [...i.groups].sort()]);
  return createHash("sha256").update(JSON.stringify(seen)).digest("base64url").slice(0, 16);
}
