// XEP-0030: disco#info for the server and, on a user's behalf, for the
// user's account, with the identities and features every module added to
// each; the server's disco#items lists the XEP-0114 components linked under
// its domain (a MUC at muc.example.org for example.org), as Prosody and
// ejabberd list theirs, so that clients find them.
import { Element, parse } from "ltx";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type DiscoTarget, type ModuleApi, type OptionSpecs, type OptionsOf } from "./module-api.js";
import { iqResult } from "./stanza.js";
import { hasFrom } from "./subscription.js";

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

const OPTIONS = {
  name: { type: "string", default: "xfarm", doc: "The name of the server's identity in its disco#info, which clients show." },
} satisfies OptionSpecs;

export const modDisco = defineModule({ name: "disco", doc: "Service discovery (XEP-0030): the server's and each account's identities and features, and the linked components.", enabled: "core", options: OPTIONS, setup });

function setup(api: ModuleApi, options: OptionsOf<typeof OPTIONS>): void {
  api.addIdentity({ category: "server", type: "im", name: options.name });
  api.addFeature(INFO);
  api.addFeature(ITEMS);
  api.addIdentity({ category: "account", type: "registered" }, "account");
  api.addFeature(INFO, "account");

  const info = (on: DiscoTarget) => (query: Element) => {
    for (const identity of api.identities(on)) query.c("identity", { ...identity });
    for (const feature of api.features(on)) query.c("feature", { var: feature });
    // A copy each time: an element has one parent.
    for (const form of api.forms(on)) query.cnode(parse(form.toString()));
  };

  api.hook(`iq-get/host/${INFO}:query`, (event) => answer(api, event, INFO, info("server")));
  api.hook(`iq-get/host/${ITEMS}:query`, (event) => {
    const suffix = `.${event.to.domain}`;
    return answer(api, event, ITEMS, (query) => {
      for (const domain of api.components()) if (domain.endsWith(suffix)) query.c("item", { jid: domain });
    });
  });

  // Asked of an account: answered for the user itself and its subscribers,
  // as if it did not exist for anyone else.
  api.hook(`iq-get/bare/${INFO}:query`, async (event) => {
    if (!(await mayLook(api, event))) return false;
    return answer(api, event, INFO, info("account"));
  });
  api.hook(`iq-get/bare/${ITEMS}:query`, async (event) => (await mayLook(api, event)) && answer(api, event, ITEMS));
}

async function answer(api: ModuleApi, event: StanzaEvent, ns: string, fill?: (query: Element) => void): Promise<true> {
  // No nodes are served.
  if (event.stanza.getChild("query")!.attrs.node !== undefined) {
    await api.error(event, "item-not-found");
    return true;
  }
  const query = new Element("query", { xmlns: ns });
  fill?.(query);
  await api.reply(event, iqResult(event.stanza, query));
  return true;
}

async function mayLook(api: ModuleApi, event: StanzaEvent): Promise<boolean> {
  const user = event.to.bare;
  const asker = event.from.bare;
  if (asker === user) return true;
  if (!(await api.userExists(user))) return false;
  const item = await api.store.getRosterItem(user, asker);
  return item !== null && hasFrom(item.subscription);
}
