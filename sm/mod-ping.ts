// XEP-0199: the server answers pings to itself and, for a client pinging
// without a 'to', on its account's behalf.
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import { iqResult } from "./stanza.js";

export const modPing = defineModule({ name: "ping", doc: "XEP-0199 ping: the server answers pings to itself.", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  api.addFeature("urn:xmpp:ping");
  const pong = async (event: StanzaEvent): Promise<boolean> => {
    await api.reply(event, iqResult(event.stanza));
    return true;
  };
  api.hook("iq-get/host/urn:xmpp:ping:ping", pong);
  api.hook("iq-get/self/urn:xmpp:ping:ping", pong);
}
