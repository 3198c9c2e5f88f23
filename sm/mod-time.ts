// XEP-0202 entity time: the server's clock in UTC and its time zone's offset,
// for clients that show a contact's or the server's local time and for
// those that check their own clock against the server's.
import { Element } from "ltx";
import { defineModule, type ModuleApi } from "./module-api.js";
import { iqResult } from "./stanza.js";

const NS = "urn:xmpp:time";

export const modTime = defineModule({ name: "time", doc: "XEP-0202 entity time: the server's clock and time zone offset.", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  api.addFeature(NS);
  api.hook(`iq-get/host/${NS}:time`, async (event) => {
    const now = new Date();
    const time = new Element("time", { xmlns: NS });
    time.c("tzo").t(zoneOffset(now));
    time.c("utc").t(now.toISOString());
    await api.reply(event, iqResult(event.stanza, time));
    return true;
  });
}

/** XEP-0082 TZD of this process's time zone at `at`: "+00:00" for UTC, "-05:00" for New York in winter. */
export function zoneOffset(at: Date): string {
  const minutes = -at.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${minutes < 0 ? "-" : "+"}${hh}:${mm}`;
}
