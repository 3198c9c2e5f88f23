// XEP-0160: chat and normal messages for a user with no resource to take
// them are stored, and delivered at the user's next available presence with
// a XEP-0203 delay saying when the server got them.
import { parse } from "ltx";
import { bare, parseJid } from "../lib/jid.js";
import type { SmModule } from "./module-api.js";

export const modOffline: SmModule = (api) => {
  api.addFeature("msgoffline");

  // Committed before the handler returns: nothing else happens to the message.
  api.hook("message-offline", async (event) => {
    const user = bare(event.to);
    const id = await api.store.storeOffline(user, event.raw?.toString("utf8") ?? event.stanza.toString());
    api.log.debug({ user, id }, "stored offline");
    return true;
  });

  api.hook("session-available", async ({ session }) => {
    if (session.priority < 0) return; // such a resource never receives messages for the bare JID
    const messages = await api.store.loadOffline(session.user);
    if (messages.length === 0) return;
    const domain = parseJid(session.user)!.domain;
    for (const message of messages) {
      let stanza;
      try {
        stanza = parse(message.xml);
      } catch (err) {
        session.log.warn({ err, id: message.id }, "unparsable offline message discarded");
        continue;
      }
      stanza.c("delay", { xmlns: "urn:xmpp:delay", from: domain, stamp: message.stored.toISOString() });
      api.deliver(session, stanza);
    }
    await api.store.deleteOffline(session.user, messages.map((m) => m.id));
    session.log.debug({ count: messages.length }, "offline messages delivered");
  });
};
