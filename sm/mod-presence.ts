// RFC 6121 §3 and §4: presence broadcast, probes, directed presence, and the
// subscription state machines of Appendix A, with a roster push for every
// change the user can see.
import { Element } from "ltx";
import { bareOf } from "../lib/jid.js";
import type { RosterItem } from "../xdb-sql/store.js";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";
import { rosterFull, rosterHasRoom } from "./roster-quota.js";
import { priorityOf, readdress } from "./stanza.js";
import { blankItem, hasFrom, hasTo, isBlank, subscription } from "./subscription.js";

type SubscriptionType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";
const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>([
  "subscribe",
  "subscribed",
  "unsubscribe",
  "unsubscribed",
]);

export const modPresence = defineModule({ name: "presence", doc: "Presence broadcast, probes, directed presence and subscriptions (RFC 6121 §3, §4).", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  /**
   * The JIDs a session sent directed available presence to, in full form,
   * which must hear of its unavailability (RFC 6121 §4.6): kept in the
   * session's state, so that a session rebuilt on another sm still tells them.
   */
  const directedTo = api.sessionState<string[]>();

  /** Stores an item's new state (dropping records left with nothing) and pushes what the user sees. */
  async function save(work: Work, user: string, old: RosterItem | null, next: RosterItem): Promise<void> {
    if (old && sameState(old, next)) return;
    if (isBlank(next) && !next.visible) {
      if (old) await api.store.deleteRosterItem(user, next.contact);
    } else {
      await api.store.putRosterItem(user, next);
    }
    if (next.visible) await api.fire("roster-changed", { user, contact: next.contact, item: next, work });
  }

  /** Each available resource's presence to a JID, or unavailable from each. */
  async function presenceOf(work: Work, user: string, to: string, unavailable = false): Promise<void> {
    for (const session of api.sessions.available(user)) {
      await api.send(
        work,
        unavailable ? presence({ type: "unavailable", from: session.jid.full, to }) : readdress(session.presence!, { to }),
      );
    }
  }

  // ---- outbound: what a user's session sends

  api.hook("pre-presence/self", async (event) => {
    const session = event.origin;
    // Addressed to the user's own bare JID: processed as inbound presence.
    if (!session || event.stanza.attrs.to) return false;
    const type: string | undefined = event.stanza.attrs.type;
    if (type !== undefined && type !== "unavailable") return true; // other types mean nothing without a 'to'
    // §4.2.2: the sending resource is one of the user's available resources, implicitly subscribed
    // to its own presence. Prosody and ejabberd reflect every broadcast to it first, updates and
    // unavailable too. A client whose TCP stack holds its next request until this one is
    // acknowledged (Nagle) waits for it.
    api.deliver(event.work, session, event.stanza, event.raw);
    if (type === undefined) await available(session, event);
    else await unavailable(event.work, session, event.stanza, event.raw);
    return true;
  });

  /** §4.2 initial presence and §4.4 updates. */
  async function available(session: Session, event: StanzaEvent): Promise<void> {
    const { work } = event;
    const initial = !session.isAvailable;
    session.presence = event.stanza;
    session.priority = priorityOf(event.stanza);
    const roster = await api.store.getRoster(session.user);
    for (const item of roster) {
      if (hasFrom(item.subscription)) await api.send(work, readdress(event.stanza, { to: item.contact }));
    }
    const others = api.sessions.available(session.user).filter((s) => s !== session);
    for (const other of others) api.deliver(work, other, event.stanza, event.raw);
    if (!initial) return;
    // Probes from the full JID, so that the answers reach this resource only.
    for (const item of roster) {
      if (hasTo(item.subscription)) {
        await api.send(work, presence({ type: "probe", from: session.jid.full, to: item.contact }));
      }
    }
    for (const other of others) api.deliver(work, session, other.presence!);
    // §3.1.3: requests that waited for the user to come online.
    for (const item of roster) {
      if (item.pendingIn) api.deliver(work, session, presence({ type: "subscribe", from: item.contact, to: session.user }));
    }
    await api.fire("session-available", { session, work });
  }

  /** §4.5: to subscribers and the user's other resources if the session was available, and to directed recipients. */
  async function unavailable(work: Work, session: Session, stanza: Element, raw?: Buffer): Promise<void> {
    const wasAvailable = session.isAvailable;
    session.presence = null;
    const targets = new Set<string>();
    if (wasAvailable) {
      for (const item of await api.store.getRoster(session.user)) {
        if (hasFrom(item.subscription)) targets.add(item.contact);
      }
    }
    for (const to of directedTo.get(session) ?? []) if (!targets.has(bareOf(to) ?? to)) targets.add(to);
    directedTo.set(session, undefined);
    for (const to of targets) await api.send(work, readdress(stanza, { to }));
    if (wasAvailable) {
      for (const other of api.sessions.available(session.user)) api.deliver(work, other, stanza, raw);
    }
  }

  /** §4.6 directed presence is tracked; subscription stanzas run the outbound state machine. */
  const directed = async (event: StanzaEvent): Promise<boolean> => {
    const type: string | undefined = event.stanza.attrs.type;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      await outboundSubscription(event, type as SubscriptionType);
      return true;
    }
    const session = event.origin;
    const to = event.to.full;
    const directed = (session && directedTo.get(session)) ?? [];
    if (type === undefined && session && !directed.includes(to)) {
      // Each target is remembered for the session's life (§4.6.3): their number is bounded, and so are their bytes.
      if (directed.length >= api.limits.directedPresences || !directedTo.set(session, [...directed, to])) {
        await api.error(event, "policy-violation", `presence may be directed to at most ${api.limits.directedPresences} JIDs at once`);
        return true;
      }
    }
    if (type === "unavailable" && session && directed.includes(to)) directedTo.set(session, directed.filter((j) => j !== to));
    return false; // routed as it is
  };
  api.hook("pre-presence/bare", directed);
  api.hook("pre-presence/full", directed);

  /** Appendix A.2; stamped with bare JIDs (§3.1.2), routed unless nothing is pending to approve. */
  async function outboundSubscription(event: StanzaEvent, type: SubscriptionType): Promise<void> {
    const user = event.from.bare;
    const contact = event.to.bare;
    const stamped = readdress(event.stanza, { from: user, to: contact });
    const { work } = event;
    const old = await api.store.getRosterItem(user, contact);
    const cur = old ?? blankItem(contact);
    const sub = cur.subscription;
    switch (type) {
      case "subscribe":
        if (!old && !(await rosterHasRoom(api, user))) {
          await api.error(event, "policy-violation", rosterFull(api));
          return;
        }
        await save(work, user, old, { ...cur, askOut: cur.askOut || !hasTo(sub), visible: true });
        await api.send(work, stamped);
        return;
      case "subscribed":
        if (!cur.pendingIn) return; // no pre-approval (§3.4): nothing to route
        await save(work, user, old, {
          ...cur,
          pendingIn: false,
          subscription: subscription(hasTo(sub), true),
          visible: true,
        });
        await api.send(work, stamped);
        await presenceOf(work, user, contact); // §3.1.5
        return;
      case "unsubscribe":
        await save(work, user, old, { ...cur, askOut: false, subscription: subscription(false, hasFrom(sub)) });
        await api.send(work, stamped);
        return;
      case "unsubscribed":
        await save(work, user, old, { ...cur, pendingIn: false, subscription: subscription(hasTo(sub), false) });
        await api.send(work, stamped);
        if (hasFrom(sub)) await presenceOf(work, user, contact, true); // §3.2.2
        return;
    }
  }

  // ---- inbound: what arrives for a user

  const inbound = async (event: StanzaEvent): Promise<boolean> => {
    const type: string | undefined = event.stanza.attrs.type;
    if (type === "probe") {
      await probe(event);
    } else if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      await inboundSubscription(event, type as SubscriptionType);
    } else if (event.to.resource) {
      const session = api.sessions.get(event.to);
      if (session) api.deliver(event.work, session, event.stanza, event.raw);
    } else {
      for (const session of api.sessions.available(event.to.bare)) api.deliver(event.work, session, event.stanza, event.raw);
    }
    return true;
  };
  api.hook("presence/bare", inbound);
  api.hook("presence/full", inbound);

  /** Appendix A.3; subscription stanzas to a full JID count as to the bare JID (§3.1.3). */
  async function inboundSubscription(event: StanzaEvent, type: SubscriptionType): Promise<void> {
    const user = event.to.bare;
    const contact = event.from.bare;
    const { work } = event;
    const answer = (answerType: string): Promise<void> =>
      api.send(work, presence({ type: answerType, from: user, to: contact }));
    if (!(await api.userExists(user))) {
      if (type === "subscribe") await answer("unsubscribed"); // RFC 6121 §8.5.1
      return;
    }
    const old = await api.store.getRosterItem(user, contact);
    const cur = old ?? blankItem(contact);
    const sub = cur.subscription;
    let next: RosterItem;
    switch (type) {
      case "subscribe":
        if (hasFrom(sub)) {
          // Already approved: answered for the user, with the presence an approval brings (§3.1.5).
          await answer("subscribed");
          return presenceOf(work, user, contact);
        }
        if (cur.pendingIn) return; // already waiting for the user
        if (!old && !(await rosterHasRoom(api, user))) {
          // Kept from the requester as an error, not dropped: it may ask again once there is room.
          api.log.info({ user, contact }, "subscription request refused: roster full");
          return api.error(event, "resource-constraint", "the contact's roster is full");
        }
        next = { ...cur, pendingIn: true };
        break;
      case "subscribed":
        if (!cur.askOut || hasTo(sub)) return; // answers no request of the user's
        next = { ...cur, askOut: false, subscription: subscription(true, hasFrom(sub)) };
        break;
      case "unsubscribe":
        if (!cur.pendingIn && !hasFrom(sub)) return;
        next = { ...cur, pendingIn: false, subscription: subscription(hasTo(sub), false) };
        break;
      case "unsubscribed":
        if (!cur.askOut && !hasTo(sub)) return;
        next = { ...cur, askOut: false, subscription: subscription(false, hasFrom(sub)) };
        break;
    }
    await save(work, user, old, next);
    // With no resource available, a request stays pending and is delivered at initial presence.
    for (const session of api.sessions.available(user)) api.deliver(work, session, event.stanza, event.raw);
    if (type === "unsubscribe" && hasFrom(sub)) await presenceOf(work, user, contact, true); // §3.3.3
  }

  /** §4.3.2: presence only for a subscriber; the last known state when no resource is available. */
  async function probe(event: StanzaEvent): Promise<void> {
    const user = event.to.bare;
    const prober = event.from.bare;
    const { work } = event;
    const item = (await api.userExists(user)) ? await api.store.getRosterItem(user, prober) : null;
    if (!item || !hasFrom(item.subscription)) {
      await api.send(work, presence({ type: "unsubscribed", from: user, to: prober }));
      return;
    }
    const to = event.from.full;
    if (api.sessions.available(user).length === 0) {
      await api.send(work, presence({ type: "unavailable", from: user, to }));
    } else {
      await presenceOf(work, user, to);
    }
  }

  api.hook("session-ended", async ({ session, work }) => {
    await unavailable(work, session, presence({ type: "unavailable", from: session.jid.full }));
  });
}

function presence(attrs: Record<string, string>): Element {
  return new Element("presence", attrs);
}

function sameState(a: RosterItem, b: RosterItem): boolean {
  return (
    a.subscription === b.subscription && a.askOut === b.askOut && a.pendingIn === b.pendingIn && a.visible === b.visible
  );
}
