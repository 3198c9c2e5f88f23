// XEP-0191 blocking command: a user's blocklist, kept in the module's
// key-value store, and honoured both ways for messages, presence and iq.
//
// Where each rule runs, so that it holds across several sms:
// - from a blocked JID to the user: on the user's sm (stanza/bare|full, before
//   every other hook, so nothing is stored offline, copied or answered on the
//   user's behalf), and in the outgoing filter for what reaches a session
//   otherwise (offline messages stored before the block, pending requests);
// - from the user's clients to a blocked JID: refused on the user's sm (pre-*);
// - what the server sends on the user's behalf (presence broadcasts, probe
//   answers, PEP notifications: api.send, which skips the pre-* hooks): on
//   the recipient's sm, which may be another one, against the sender's list
//   read from the store that every sm shares.
import { Element } from "ltx";
import { parseJid, type Jid } from "../lib/jid.js";
import { errorReply } from "../lib/stanza-error.js";
import { STORE_LIMITS } from "../xdb-sql/store.js";
import { Blocklists, blocks, type Blocklist } from "./blocklists.js";
import type { StanzaEvent } from "./hooks.js";
import { messageType } from "./mod-message.js";
import { defineModule, type FilterVerdict, type ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";
import { iqResult, readdress } from "./stanza.js";
import { hasFrom, isBlank } from "./subscription.js";
import { answerable } from "./sm-context.js";

const NS = "urn:xmpp:blocking";
const NS_ERRORS = "urn:xmpp:blocking:errors";

/** Before the modules that act on a stanza: carbons' copies (10), presence, messages, iq payloads. */
const FIRST = 100;

export const modBlocking = defineModule({
  name: "blocking",
  doc: "XEP-0191 blocking command: a user's blocklist, honoured both ways for messages, presence and iq.",
  enabled: true,
  options: {
    max_items: { type: "integer", default: 1000, doc: "The most JIDs one user may block; a block past it is refused policy-violation." },
  },
  setup,
});

function setup(api: ModuleApi, options: { readonly max_items: number }): void {
  const kv = api.storage.kv("blocking", { quota: { keys: options.max_items, bytes: options.max_items * STORE_LIMITS.kvKey } });
  const lists = new Blocklists(kv);
  /** Whether a session asked for the blocklist, and so gets its pushes (§3.1): in its state, to survive a move to another sm. */
  const interested = api.sessionState<true>();
  api.addFeature(NS);

  api.hook(`iq-get/self/${NS}:blocklist`, async (event) => {
    const session = event.origin!;
    const blocklist = new Element("blocklist", { xmlns: NS });
    for (const jid of await lists.of(session.user)) blocklist.c("item", { jid });
    interested.set(session, true);
    await api.reply(event, iqResult(event.stanza, blocklist));
    return true;
  });
  api.hook(`iq-set/self/${NS}:block`, (event) => edit(event, "block"));
  api.hook(`iq-set/self/${NS}:unblock`, (event) => edit(event, "unblock"));

  /** §3.2, §3.3, §3.4: the whole request checked before anything is stored. */
  async function edit(event: StanzaEvent, action: "block" | "unblock"): Promise<true> {
    const user = event.from.bare;
    const jids: Jid[] = [];
    for (const item of event.stanza.getChild(action)!.getChildren("item")) {
      const jid = parseJid(item.attrs.jid ?? "");
      if (!jid) return refuse(event, "jid-malformed");
      if (Buffer.byteLength(jid.full) > STORE_LIMITS.kvKey) return refuse(event, "policy-violation", `a blocked JID may have at most ${STORE_LIMITS.kvKey} bytes`);
      jids.push(jid);
    }
    if (action === "block" && jids.length === 0) return refuse(event, "bad-request");
    const old = await lists.of(user);
    let changed: string[];
    if (action === "block") {
      changed = [...new Set(jids.map((j) => j.full))].filter((j) => !old.has(j));
      if (old.size + changed.length > options.max_items) return refuse(event, "policy-violation", `at most ${options.max_items} JIDs may be blocked`);
      for (const jid of changed) {
        // The count was checked; the store's quota also bounds the bytes.
        if (!(await kv.put(user, jid, ""))) return refuse(event, "policy-violation", `at most ${options.max_items} JIDs may be blocked`);
      }
    } else {
      // An unblock without items unblocks every JID (§3.4).
      changed = jids.length === 0 ? [...old] : jids.map((j) => j.full).filter((j) => old.has(j));
      for (const jid of changed) await kv.delete(user, jid);
    }
    const now = new Set(old);
    for (const jid of changed) {
      if (action === "block") now.add(jid);
      else now.delete(jid);
    }
    lists.changed(user, now);
    await api.reply(event, iqResult(event.stanza));
    push(event.work, user, action, jids);
    await rosterFor(event.work, user, changed, action, now);
    return true;
  }

  async function refuse(event: StanzaEvent, condition: "jid-malformed" | "bad-request" | "policy-violation", text?: string): Promise<true> {
    await api.error(event, condition, text);
    return true;
  }

  /** §3.3, §3.4: to each of the user's sessions that asked for the blocklist, the change as asked. */
  function push(work: Work, user: string, action: "block" | "unblock", jids: Jid[]): void {
    for (const session of api.sessions.of(user)) {
      if (interested.get(session) !== true) continue;
      const iq = new Element("iq", { type: "set", id: `blocklist-push-${Date.now().toString(36)}`, to: session.jid.full });
      const change = iq.c(action, { xmlns: NS });
      for (const jid of jids) change.c("item", { jid: jid.full });
      api.deliver(work, session, iq);
    }
  }

  /**
   * §3.3: contacts allowed to see the user's presence who are now blocked get
   * unavailable presence from each available resource; once unblocked, the
   * current presence again. A request for the user's presence from a contact
   * now blocked is forgotten, since the user could not refuse it any more
   * (both as Prosody does).
   */
  async function rosterFor(work: Work, user: string, changed: string[], action: "block" | "unblock", now: Blocklist): Promise<void> {
    if (changed.length === 0) return;
    const available = api.sessions.available(user);
    const items = new Set(changed);
    for (const item of await api.store.getRoster(user)) {
      const { contact, subscription } = item;
      const jid = parseJid(contact);
      if (!jid || (action === "unblock" && blocks(now, jid))) continue;
      if (action === "block" && item.pendingIn && blocks(items, jid)) {
        const rest = { ...item, pendingIn: false };
        if (isBlank(rest) && !rest.visible) await api.store.deleteRosterItem(user, contact);
        else await api.store.putRosterItem(user, rest);
      }
      if (!hasFrom(subscription) || available.length === 0) continue;
      // A full JID blocked or unblocked concerns that resource of the contact only.
      const targets = blocks(items, jid) ? [contact] : changed.filter((item) => parseJid(item)?.withoutResource().full === contact);
      for (const to of targets) {
        for (const session of available) {
          await api.send(work, action === "block" ? new Element("presence", { type: "unavailable", from: session.jid.full, to }) : readdress(session.presence!, { to }));
        }
      }
    }
  }

  // ---- what arrives for a user

  // The hooks run for every stanza: a list held in memory that lets it through answers at once, without a promise.
  const inbound = (event: StanzaEvent): boolean | Promise<boolean> => {
    const held = lists.cached(event.to.bare);
    if (event.from.bare === event.to.bare || (held && !blocks(held, event.from) && !onBehalf(event))) return false;
    return inboundChecked(event);
  };
  const inboundChecked = async (event: StanzaEvent): Promise<boolean> => {
    const user = event.to.bare;
    if (event.from.bare === user) return false;
    if (blocks(await lists.of(user), event.from)) {
      const verdict = refusal(event.stanza);
      if (verdict !== "drop") await api.error(event, verdict.bounce);
      return true;
    }
    // Sent on a blocking user's behalf, its clients' stanzas having been checked on their way out.
    if (onBehalf(event) && blocks(await lists.of(event.from.bare), event.to)) {
      api.log.debug({ from: event.from.full, to: event.to.full, name: event.stanza.name }, "stanza to a JID its sender blocks dropped");
      return true;
    }
    return false;
  };
  api.hook("stanza/bare", inbound, FIRST);
  api.hook("stanza/full", inbound, FIRST);

  /**
   * Whether a stanza may be one the server sent for a local user: presence
   * (broadcasts and probe answers come from the user's full JIDs), or
   * anything from the user's bare JID (PEP notifications). Unavailable
   * presence tells a blocked contact nothing it may not know (the block
   * sends it), and errors answer the contact's own stanzas.
   */
  function onBehalf(event: StanzaEvent): boolean {
    const { stanza, from } = event;
    if (!from.local || !api.domains.has(from.domain) || !answerable(stanza)) return false;
    if (stanza.name === "presence") return stanza.attrs.type !== "unavailable";
    return from.resource === "";
  }

  // Offline messages stored before the block, subscription requests delivered at login…
  // Errors and results pass: from a blocked JID they were dropped on their
  // way in, and those left are the server's answers to the user's own stanzas.
  api.filter((out) => {
    const list = lists.cached(out.session.user);
    if (!list || list.size === 0 || !answerable(out.stanza)) return undefined;
    const from = parseJid(out.stanza.attrs.from ?? "");
    if (!from || from.bare === out.session.user || !blocks(list, from)) return undefined;
    return refusal(out.stanza);
  }, FIRST);

  // ---- what the user's clients send (§3.2: not-acceptable, with the blocking error)

  const outbound = (event: StanzaEvent): boolean | Promise<boolean> => {
    const held = event.origin && lists.cached(event.origin.user);
    if (!event.origin || (held && !blocks(held, event.to))) return false;
    return outboundChecked(event);
  };
  const outboundChecked = async (event: StanzaEvent): Promise<boolean> => {
    const session = event.origin;
    if (!session || !blocks(lists.cached(session.user) ?? (await lists.of(session.user)), event.to)) return false;
    if (answerable(event.stanza)) {
      const blocked = new Element("blocked", { xmlns: NS_ERRORS });
      await api.reply(event, errorReply(event.stanza, "not-acceptable", { text: "You have blocked this JID", app: blocked }));
    }
    return true;
  };
  for (const kind of ["message", "presence", "iq"] as const) {
    for (const target of ["bare", "full", "host"] as const) api.hook(`pre-${kind}/${target}`, outbound, FIRST);
  }

  const hold = ({ session }: { session: Session }): Promise<void> => lists.hold(session.user);
  api.hook("session-started", hold, FIRST);
  api.hook("session-rebuilt", hold, FIRST);
  api.hook("session-ended", ({ session }) => {
    if (api.sessions.of(session.user).length === 0) lists.release(session.user);
  });
}

/**
 * §3.1 for a stanza from a blocked JID: an iq request and a chat or normal
 * message are answered service-unavailable; anything else (presence,
 * headlines, groupchat, results, errors) is dropped, as Prosody does.
 */
function refusal(stanza: Element): Exclude<FilterVerdict, undefined | "hold" | { stanza: Element }> {
  const type: string | undefined = stanza.attrs.type;
  if (stanza.name === "iq" && (type === "get" || type === "set")) return { bounce: "service-unavailable" };
  if (stanza.name === "message") {
    const kind = messageType(stanza);
    if (kind === "chat" || kind === "normal") return { bounce: "service-unavailable" };
  }
  return "drop";
}
