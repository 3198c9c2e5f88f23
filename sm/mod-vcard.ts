// XEP-0054 vcard-temp: anyone may read a user's vCard (an empty one when
// none is stored, as Prosody answers); only the user sets it.
import { Element, parse } from "ltx";
import { defineModule, type ModuleApi } from "./module-api.js";
import { iqResult, standalone } from "./stanza.js";

const NS = "vcard-temp";
/**
 * The largest vCard stored, in UTF-8 bytes of its XML: room for a PHOTO of
 * about 90 KiB (base64), far more than the avatars clients make (XEP-0153
 * asks for a few KiB), and half of the default c2s.max_stanza_size.
 */
export const MAX_VCARD_BYTES = 128 * 1024;

export const modVcard = defineModule({ name: "vcard", doc: "vcard-temp (XEP-0054): each account's vCard.", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  api.addFeature(NS);

  // From anyone, and from the user itself without a 'to' (self falls through to bare).
  api.hook(`iq-get/bare/${NS}:vCard`, async (event) => {
    const user = event.to.bare;
    if (event.from.bare !== user && !(await api.userExists(user))) return false; // service-unavailable
    const xml = await api.store.getVcard(user);
    await api.reply(event, iqResult(event.stanza, xml === null ? empty() : parseStored(xml, user)));
    return true;
  });

  api.hook(`iq-set/bare/${NS}:vCard`, async (event) => {
    const user = event.to.bare;
    if (event.from.bare !== user) {
      if (!(await api.userExists(user))) return false;
      await api.error(event, "forbidden", "only the user sets its vCard");
      return true;
    }
    const vcard = standalone(event.stanza.getChild("vCard", NS)!);
    const xml = vcard.toString();
    if (Buffer.byteLength(xml) > MAX_VCARD_BYTES) {
      await api.error(event, "not-acceptable", `a vCard holds at most ${MAX_VCARD_BYTES} bytes`);
      return true;
    }
    await api.store.setVcard(user, vcard.getChildElements().length === 0 ? null : xml);
    await api.reply(event, iqResult(event.stanza));
    return true;
  });

  /** A stored vCard as an element; an unreadable one (never stored by this module) reads as empty. */
  function parseStored(xml: string, user: string): Element {
    try {
      return parse(xml);
    } catch (err) {
      api.log.warn({ err, user }, "unparsable stored vCard answered as empty");
      return empty();
    }
  }
}

function empty(): Element {
  return new Element("vCard", { xmlns: NS });
}
