// Who wants which PEP notifications (XEP-0163 §4.2, "filtered
// notifications"), learned as Prosody's mod_pep does: a contact's client
// (or one of the owner's own) announces XEP-0115 entity capabilities in its
// presence; the 'ver' names a disco#info feature list, asked of the client
// once and cached, whose "<node>+notify" features are the nodes it wants.
import { createHash } from "node:crypto";
import { Element } from "ltx";
import { parseJid, type Jid } from "../lib/jid.js";
import type { StanzaEvent } from "./hooks.js";
import type { ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";
import { IqRequestError } from "./stanza.js";
import { hasFrom } from "./subscription.js";

const NS_CAPS = "http://jabber.org/protocol/caps";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DATA = "jabber:x:data";
const NOTIFY = "+notify";
/** Feature lists kept, by their 'ver'; the least recently used goes first. */
export const MAX_CACHED_VERS = 1000;

/** One resource that announced capabilities to an owner. */
interface Recipient {
  readonly jid: Jid;
  /** The caps 'node', 'ver' and 'hash' it announced last. */
  node: string;
  ver: string;
  hash: string | undefined;
  /** The nodes it wants notifications of; null until its feature list is known. */
  nodes: ReadonlySet<string> | null;
  /** Brought back from the owner's session state: its interest is not new, and sends no last items. */
  restored?: boolean;
}

/** What the owner's sessions keep of each recipient (full JID → caps node, ver, hash or ""), so that it survives a move to another sm. */
type Kept = Record<string, [string, string, string]>;

export interface PepInterest {
  /**
   * The full JIDs that should hear of a node's news, before the access
   * model's say: the owner's available resources (unless their capabilities
   * say they do not want it: XEP-0163 §4.3.1 sends to them all, "subject to
   * notification filtering") and every other resource that asked for it.
   */
  audience(owner: string, node: string): Jid[];
}

/**
 * Hooks presence to track interest. `onNewInterest` runs, in the owner's
 * queue, when a resource first wants some of the owner's nodes (to send it
 * their last items, XEP-0163 §6.2).
 */
export function trackInterest(
  api: ModuleApi,
  onNewInterest: (work: Work, owner: string, jid: Jid, nodes: string[]) => Promise<void>,
): PepInterest {
  /** sha-1 'ver' → the nodes its feature list wants. A Map keeps insertion order: the oldest first. */
  const byVer = new Map<string, ReadonlySet<string>>();
  /** owner (bare JID) → full JID → what it announced. Only for owners with a session. */
  const recipients = new Map<string, Map<string, Recipient>>();
  /**
   * The same, in each of the owner's sessions' state: a session rebuilt on
   * another sm (a failover) brings its owner's audience along, where the
   * contacts, who announced their caps once, would not announce them again.
   */
  const kept = api.sessionState<Kept>();

  function keep(owner: string): void {
    const users = recipients.get(owner);
    const value: Kept | undefined = users && Object.fromEntries([...users].map(([full, r]) => [full, [r.node, r.ver, r.hash ?? ""]]));
    for (const session of api.sessions.of(owner)) kept.set(session, value);
  }

  /** A session of the owner was rebuilt here: the audience it kept, where not known here already. */
  function restore(work: Work, session: Session): void {
    const saved = kept.get(session);
    if (!saved) return;
    let users = recipients.get(session.user);
    if (!users) recipients.set(session.user, (users = new Map()));
    for (const [full, [node, ver, hash]] of Object.entries(saved)) {
      const jid = users.has(full) ? null : parseJid(full);
      if (!jid) continue;
      const r: Recipient = { jid, node, ver, hash: hash || undefined, nodes: (hash === "sha-1" && cached(ver)) || null, restored: true };
      users.set(full, r);
      if (!r.nodes) discover(work, session.user, jid, `${node}#${ver}`, ver, r.hash);
    }
    if (users.size === 0) recipients.delete(session.user);
  }

  function cached(ver: string): ReadonlySet<string> | undefined {
    const nodes = byVer.get(ver);
    if (nodes) {
      byVer.delete(ver);
      byVer.set(ver, nodes);
    }
    return nodes;
  }

  function remember(ver: string, nodes: ReadonlySet<string>): void {
    byVer.delete(ver);
    byVer.set(ver, nodes);
    if (byVer.size > MAX_CACHED_VERS) byVer.delete(byVer.keys().next().value!);
  }

  function forget(owner: string, test: (jid: Jid) => boolean): void {
    const users = recipients.get(owner);
    if (!users) return;
    const before = users.size;
    for (const [full, { jid }] of users) if (test(jid)) users.delete(full);
    if (users.size === 0) recipients.delete(owner);
    if (users.size !== before) keep(owner);
  }

  /** Presence from `from` (a full JID) reached `owner`, or was sent by the owner's own resource. */
  async function observe(work: Work, owner: string, from: Jid, presence: Element): Promise<void> {
    const type: string | undefined = presence.attrs.type;
    const contact = from.bare;
    if (type === "unavailable" || type === "error") return forget(owner, (jid) => jid.equals(from));
    // The contact cancelled its subscription to the owner's presence.
    if (type === "unsubscribe" && contact !== owner) return forget(owner, (jid) => jid.bare === contact);
    if (type !== undefined) return;
    // With no session the owner publishes nothing; its probes at login tell it all again.
    if (api.sessions.of(owner).length === 0) return;
    const caps = presence.getChild("c", NS_CAPS);
    // No caps: a client may leave them out when they did not change (XEP-0115 §8.4); what is known stays.
    const { node, ver, hash } = (caps?.attrs ?? {}) as { node?: string; ver?: string; hash?: string };
    if (!node || !ver) return;
    const current = recipients.get(owner)?.get(from.full);
    if (current?.ver === ver) return;
    // As Prosody: interest counts from the owner's resources and from contacts the owner shares presence with.
    if (contact !== owner) {
      const item = await api.store.getRosterItem(owner, contact);
      if (!item || !hasFrom(item.subscription)) return;
    }
    let users = recipients.get(owner);
    if (!users) recipients.set(owner, (users = new Map()));
    users.set(from.full, { jid: from, node, ver, hash, nodes: current?.nodes ?? null });
    keep(owner);
    const known = hash === "sha-1" ? cached(ver) : undefined;
    if (known) return update(work, owner, from, ver, known);
    discover(work, owner, from, `${node}#${ver}`, ver, hash);
  }

  /** Asks the resource for the feature list behind its 'ver', without holding up the owner's queue. */
  function discover(work: Work, owner: string, jid: Jid, capsNode: string, ver: string, hash: string | undefined): void {
    const iq = new Element("iq", { type: "get", from: owner, to: jid.full });
    iq.c("query", { xmlns: NS_DISCO_INFO, node: capsNode });
    api.request(work, iq).then(
      (answer) => {
        const query = answer.getChild("query", NS_DISCO_INFO);
        if (!query) return;
        const nodes = notifyNodes(query);
        // Cached under the 'ver' the answer really hashes to, so a client cannot teach a false one.
        if (hash === "sha-1") remember(capsVer(query), nodes);
        return api.run(owner, (inOwnersTurn) => update(inOwnersTurn, owner, jid, ver, nodes));
      },
      (err: unknown) => {
        const condition = err instanceof IqRequestError ? err.condition : String(err);
        api.log.debug({ owner, jid: jid.full, condition }, "caps disco#info failed");
      },
    );
  }

  /** The resource's wanted nodes are known: news of the newly wanted ones is sent. */
  async function update(work: Work, owner: string, jid: Jid, ver: string, nodes: ReadonlySet<string>): Promise<void> {
    const recipient = recipients.get(owner)?.get(jid.full);
    if (!recipient || recipient.ver !== ver) return; // gone, or announced other caps meanwhile
    const before = recipient.restored ? nodes : recipient.nodes;
    recipient.nodes = nodes;
    recipient.restored = false;
    const added = [...nodes].filter((n) => !before?.has(n));
    if (added.length > 0) await onNewInterest(work, owner, jid, added);
  }

  const inbound = async (event: StanzaEvent): Promise<false> => {
    // Subscription stanzas come from bare JIDs (RFC 6121 §3.1.2); of those only unsubscribe matters here.
    if (event.from.resource || event.stanza.attrs.type === "unsubscribe") {
      await observe(event.work, event.to.bare, event.from, event.stanza);
    }
    return false; // mod-presence goes on with it
  };
  // Above mod-presence, which handles these and ends the chain.
  api.hook("presence/bare", inbound, 10);
  api.hook("presence/full", inbound, 10);
  api.hook(
    "pre-presence/self",
    async (event) => {
      // Broadcast presence only: presence addressed to the own bare JID comes back as presence/bare.
      if (event.origin && !event.stanza.attrs.to) await observe(event.work, event.origin.user, event.origin.jid, event.stanza);
      return false;
    },
    10,
  );
  api.hook("session-rebuilt", ({ session, work }) => restore(work, session));
  api.hook("session-ended", ({ session }) => {
    if (api.sessions.of(session.user).length === 0) recipients.delete(session.user);
    else forget(session.user, (jid) => jid.equals(session.jid));
  });

  return {
    audience(owner, node) {
      const users = recipients.get(owner);
      const jids = api.sessions
        .available(owner)
        .filter((s) => users?.get(s.jid.full)?.nodes?.has(node) ?? true)
        .map((s) => s.jid);
      for (const recipient of users?.values() ?? []) {
        if (recipient.jid.bare !== owner && recipient.nodes?.has(node)) jids.push(recipient.jid);
      }
      return jids;
    },
  };
}

/** The nodes a disco#info feature list asks notifications of. */
function notifyNodes(query: Element): ReadonlySet<string> {
  const nodes = new Set<string>();
  for (const feature of query.getChildren("feature")) {
    const name: string = feature.attrs.var ?? "";
    if (name.endsWith(NOTIFY) && name.length > NOTIFY.length) nodes.add(name.slice(0, -NOTIFY.length));
  }
  return nodes;
}

/** XEP-0115 §5.1: the sha-1 verification string of a disco#info result. */
export function capsVer(query: Element): string {
  const sorted = (strings: string[]): string[] => strings.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const list = (strings: string[]): string => strings.map((s) => `${s}<`).join("");
  const identities = query
    .getChildren("identity")
    .map((i) => [i.attrs.category, i.attrs.type, i.attrs["xml:lang"], i.attrs.name].map((a: string | undefined) => a ?? "").join("/"));
  const features = query.getChildren("feature").map((f) => String(f.attrs.var ?? ""));
  const forms = query
    .getChildren("x", NS_DATA)
    .filter((x) => x.attrs.type === "result")
    .map((x) => {
      const fields = x.getChildren("field");
      const formType = fields.find((f) => f.attrs.var === "FORM_TYPE")?.getChildText("value") ?? "";
      const rest = fields
        .filter((f) => f.attrs.var !== "FORM_TYPE")
        .map((f) => ({ name: String(f.attrs.var ?? ""), values: sorted(f.getChildren("value").map((v) => v.getText())) }))
        .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
      return { formType, text: list([formType]) + rest.map((f) => list([f.name, ...f.values])).join("") };
    })
    .sort((a, b) => Buffer.compare(Buffer.from(a.formType), Buffer.from(b.formType)));
  const s = list(sorted(identities)) + list(sorted(features)) + forms.map((f) => f.text).join("");
  return createHash("sha1").update(s, "utf8").digest("base64");
}
