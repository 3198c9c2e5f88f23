// Inbound iqs for a full JID go to that session as they are. When the
// resource is gone, the core answers a get/set with service-unavailable and
// drops a result or error (RFC 6121 §8.5.3.2.1).
import { defineModule, type ModuleApi } from "./module-api.js";

export const modIq = defineModule({ name: "iq", doc: "Inbound iqs for a full JID go to that session (RFC 6121 §8.5.3).", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  api.hook("iq/full", (event) => {
    const session = api.sessions.get(event.to);
    if (!session) return false;
    api.deliver(event.work, session, event.stanza, event.raw);
    return true;
  });
}
