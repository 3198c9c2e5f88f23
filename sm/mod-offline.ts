// XEP-0160: chat and normal messages for a user with no resource to take
// them are stored, within the user's quota, and delivered at the user's next
// available presence with a XEP-0203 delay saying when the server got them.
//
// Delivery is paced (protocol §2.4): one batch at a time, bounded by count
// and bytes, the next only once the c2s reports the previous one delivered
// (written to the socket, or acknowledged with XEP-0198); a message is
// deleted only then. However large the backlog, the sm holds one batch of it
// per user being served, and the client's socket at most one batch unread.
import { parse, type Element } from "ltx";
import type { StanzaEvent } from "./hooks.js";
import { messageBytes } from "./mod-message.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";

/** A batch: at most this many messages and this many bytes of XML, yet always at least one message. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 512 * 1024;

export const modOffline = defineModule({ name: "offline", doc: "Offline messages (XEP-0160), delivered in paced batches.", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  api.addFeature("msgoffline");
  /**
   * The store ids of the batch a session is being sent that the c2s has not
   * reported delivered yet. Weak: a session handed to another sm just goes.
   */
  const inFlight = new WeakMap<Session, number[]>();

  /**
   * Committed before it returns: nothing else happens to the message.
   * `origin` names the routed stanza (its identity, protocol §2.5): a
   * stanza resent after a failover is then stored once, not twice.
   */
  async function store(event: StanzaEvent, origin?: string): Promise<true> {
    const user = event.to.bare;
    const xml = messageBytes(event)?.toString("utf8") ?? event.stanza.toString();
    const quota = { messages: api.limits.offlineMessages, bytes: api.limits.offlineBytes };
    const id = await api.store.storeOfflineWithin(user, xml, quota, origin);
    if (id === null) {
      // XEP-0160 §2: the recipient's offline queue is full.
      api.log.debug({ user }, "offline storage full; message bounced");
      await api.error(event, "service-unavailable", "the recipient's offline storage is full");
      return true;
    }
    api.log.debug({ user, id }, "stored offline");
    return true;
  }
  api.hook("message-offline", (event) => store(event, api.deliveryId(event.work, `offline:${event.to.bare}`)));

  /** Whether a session takes messages for the bare JID: registered, available, priority not negative. */
  const takesMessages = (session: Session): boolean =>
    api.sessions.get(session.jid) === session && session.isAvailable && session.priority >= 0;

  /** Sends a session the oldest stored messages, one batch; none if it is gone or the backlog is empty. */
  async function sendBatch(work: Work, session: Session): Promise<void> {
    const domain = session.jid.domain;
    while (takesMessages(session)) {
      const page = await api.store.loadOffline(session.user, { limit: BATCH_MESSAGES, maxBytes: BATCH_BYTES });
      if (page.length === 0) return;
      const ready: { id: number; stanza: Element }[] = [];
      const broken: number[] = [];
      for (const message of page) {
        const stanza = parseStored(message.xml);
        if (!stanza) {
          broken.push(message.id);
          continue;
        }
        stanza.c("delay", { xmlns: "urn:xmpp:delay", from: domain, stamp: message.stored.toISOString() });
        ready.push({ id: message.id, stanza });
      }
      if (broken.length > 0) {
        session.log.warn({ ids: broken }, "unparsable offline messages discarded");
        await api.store.deleteOffline(session.user, broken);
      }
      if (ready.length === 0) continue;
      // What an outgoing filter dropped (XEP-0191: from a contact blocked since) is handled: deleted, never reported.
      const dropped = new Set(api.deliverStored(work, session, ready));
      const sent = ready.flatMap((m) => (dropped.has(m.id) ? [] : [m.id]));
      if (sent.length > 0) inFlight.set(session, sent);
      if (dropped.size > 0) await api.store.deleteOffline(session.user, [...dropped]);
      if (sent.length > 0) return;
    }
  }

  /** One resource at a time takes the backlog. */
  async function start(work: Work, session: Session): Promise<void> {
    if (api.sessions.of(session.user).some((s) => inFlight.has(s))) return;
    await sendBatch(work, session);
  }

  /** Goes on with the backlog: on this session while it takes messages, else on another resource that does. */
  async function goOn(work: Work, session: Session): Promise<void> {
    const next = takesMessages(session) ? session : api.sessions.available(session.user).find((s) => s.priority >= 0);
    if (next) await start(work, next);
  }

  api.hook("session-available", ({ session, work }) => start(work, session));
  // A session moved to this sm (its sm died, or another took the user) may have been in the middle of its backlog.
  api.hook("session-rebuilt", ({ session, work }) => start(work, session));

  api.hook("delivered", async ({ session, confirm, work }) => {
    const batch = inFlight.get(session);
    if (!batch) return;
    const done = batch.filter((id) => id <= confirm);
    if (done.length === 0) return;
    await api.store.deleteOffline(session.user, done);
    const rest = batch.filter((id) => id > confirm);
    if (rest.length > 0) return void inFlight.set(session, rest);
    inFlight.delete(session);
    await goOn(work, session);
  });

  api.hook("session-ended", async ({ session, work }) => {
    // What it was sent and did not confirm is still stored: another resource takes it from there.
    if (inFlight.delete(session)) await goOn(work, session);
  });
}

function parseStored(xml: string): Element | null {
  try {
    return parse(xml);
  } catch {
    return null;
  }
}
