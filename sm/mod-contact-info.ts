// XEP-0157 contact addresses: whom to reach about the service (abuse,
// security, support…), as URIs in an XEP-0128 form on the server's
// disco#info, which clients and the XMPP network's crawlers read. Nothing is
// advertised until an admin sets an address.
import { Element } from "ltx";
import { defineModule, type ModuleApi, type OptionSpecs, type OptionsOf } from "./module-api.js";

const FORM_TYPE = "http://jabber.org/network/serverinfo";

/** XEP-0157 §5's fields, each a list of URIs: the option `KIND_addresses` fills the field `KIND-addresses`. */
const KINDS = ["abuse", "admin", "feedback", "sales", "security", "status", "support"] as const;

const OPTIONS = Object.fromEntries(
  KINDS.map((kind) => [
    `${kind}_addresses`,
    { type: "string[]", default: [] as string[], doc: `URIs to reach about ${kind === "admin" ? "the service's administration" : kind} (mailto:, xmpp:, https:…), listed as XEP-0157's ${kind}-addresses.` },
  ]),
) as { [K in (typeof KINDS)[number] as `${K}_addresses`]: { type: "string[]"; default: string[]; doc: string } } satisfies OptionSpecs;

export const modContactInfo = defineModule({
  name: "contact_info",
  doc: "XEP-0157 contact addresses on the server's disco#info; nothing is advertised until an address is set.",
  enabled: true,
  options: OPTIONS,
  setup,
});

/** An absolute URI: a scheme, then anything (RFC 3986 §3.1). */
const URI = /^[a-z][a-z0-9+.-]*:\S+$/i;

function setup(api: ModuleApi, options: OptionsOf<typeof OPTIONS>): void {
  const fields = KINDS.map((kind) => ({ kind, uris: options[`${kind}_addresses`] })).filter((f) => f.uris.length > 0);
  for (const { kind, uris } of fields) {
    const bad = uris.find((uri) => !URI.test(uri));
    if (bad !== undefined) throw new Error(`config sm.modules.contact_info.${kind}_addresses: "${bad}" is not a URI (e.g. mailto:abuse@example.org, xmpp:admin@example.org)`);
  }
  if (fields.length === 0) return;
  const form = new Element("x", { xmlns: "jabber:x:data", type: "result" });
  form.c("field", { var: "FORM_TYPE", type: "hidden" }).c("value").t(FORM_TYPE);
  for (const { kind, uris } of fields) {
    const field = form.c("field", { var: `${kind}-addresses`, type: "list-multi" });
    for (const uri of uris) field.c("value").t(uri);
  }
  api.addForm(form);
}
