// PEP node discovery (XEP-0060 §5.2, §5.3, §5.5): an account's disco#items
// lists the nodes the asker may see under their access models, a node's
// disco#info says it is a leaf, and a node's disco#items names its items.
// Hooked above mod-disco: what is not answered here (no node the asker may
// see) falls through to it, which keeps hiding accounts from strangers.
import { Element } from "ltx";
import type { Subscription } from "../xdb-sql/store.js";
import type { StanzaEvent } from "./hooks.js";
import type { ModuleApi } from "./module-api.js";
import { NS_PUBSUB, type NodeConfig } from "./pep-config.js";
import { iqResult } from "./stanza.js";

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

/** Whether `asker` may see a node of `owner`'s; `roster` (the owner's, by contact) saves a lookup each. */
export type MaySee = (owner: string, asker: string, config: NodeConfig, roster?: Map<string, Subscription>) => Promise<boolean>;

export function hookPepDisco(api: ModuleApi, allowed: MaySee): void {
  /** The asker's subscription on the owner's roster, as a one-entry roster for `allowed`. */
  async function askerRoster(owner: string, asker: string): Promise<Map<string, Subscription>> {
    const item = asker === owner ? null : await api.store.getRosterItem(owner, asker);
    return new Map(item ? [[asker, item.subscription]] : []);
  }

  /** The named node if it exists and the asker may see it. */
  async function visibleNode(event: StanzaEvent, node: string): Promise<boolean> {
    const found = await api.store.getPepNode(event.to.bare, node);
    return found !== null && (await allowed(event.to.bare, event.from.bare, found.config));
  }

  async function answer(event: StanzaEvent, query: Element): Promise<true> {
    await api.reply(event, iqResult(event.stanza, query));
    return true;
  }

  api.hook(
    `iq-get/bare/${ITEMS}:query`,
    async (event) => {
      const owner = event.to.bare;
      const asker = event.from.bare;
      const node: string | undefined = event.stanza.getChild("query")!.attrs.node;
      const query = new Element("query", { xmlns: ITEMS });
      if (node !== undefined) {
        if (!(await visibleNode(event, node))) return false;
        query.attrs.node = node;
        for (const { id } of await api.store.pepItemSizes(owner, node)) query.c("item", { jid: owner, name: id });
        return answer(event, query);
      }
      const roster = await askerRoster(owner, asker);
      for (const { node: name, config } of await api.store.listPepNodes(owner)) {
        if (await allowed(owner, asker, config, roster)) query.c("item", { jid: owner, node: name });
      }
      // Nothing to show a stranger: mod-disco answers as for an account it hides.
      if (query.children.length === 0 && asker !== owner) return false;
      return answer(event, query);
    },
    10,
  );

  api.hook(
    `iq-get/bare/${INFO}:query`,
    async (event) => {
      const node: string | undefined = event.stanza.getChild("query")!.attrs.node;
      if (node === undefined || !(await visibleNode(event, node))) return false;
      const query = new Element("query", { xmlns: INFO, node });
      query.c("identity", { category: "pubsub", type: "leaf" });
      query.c("feature", { var: INFO });
      query.c("feature", { var: NS_PUBSUB });
      return answer(event, query);
    },
    10,
  );
}
