// XEP-0163 PEP: every account is a pubsub service (XEP-0060) at its bare
// JID, with one publisher, its owner. Nodes are auto-created at the first
// publish (config from publish-options), items kept in the store (unless
// the node says persist_items false), and notifications sent to the
// owner's resources and to the contacts that asked for them in their
// entity capabilities (sm/pep-caps.ts), as far as each node's access model
// allows (sm/pep-config.ts). Node discovery is sm/pep-disco.ts.
import { randomUUID } from "node:crypto";
import { Element, clone, parse } from "ltx";
import type { Jid } from "../lib/jid.js";
import { STORE_LIMITS, type PepItem, type Subscription } from "../xdb-sql/store.js";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Work } from "./origin.js";
import { trackInterest } from "./pep-caps.js";
import { hookPepDisco } from "./pep-disco.js";
import { NS_RSM, fitWindow, pageRequest, pageWindow, resultSet, type ItemSize, type Window } from "./pep-paging.js";
import {
  DEFAULT_CONFIG,
  NS_ERRORS,
  NS_EVENT,
  NS_OWNER,
  NS_PUBSUB,
  accessModel,
  configForm,
  formFields,
  knownFields,
  mayAccess,
  maxItems,
  meetPreconditions,
  overCap,
  persistsItems,
  sendsLastItem,
  type NodeConfig,
} from "./pep-config.js";
import { FrameTooLargeError, iqResult, standalone } from "./stanza.js";
import { errorReply, type Condition } from "../lib/stanza-error.js";

/** What Prosody's mod_pep advertises on the account (XEP-0163 §6.1). */
const FEATURES = [
  "access-open",
  "access-presence",
  "access-roster",
  "access-whitelist",
  "auto-create",
  "config-node",
  // max_items "max" (XEP-0060 §16.4.3), which XEP-0402 clients (Gajim, Converse, Monal) look for.
  "config-node-max",
  "create-nodes",
  "delete-nodes",
  "item-ids",
  "multi-items",
  "persistent-items",
  "publish",
  "publish-options",
  "retract",
  "retrieve-items",
  "rsm",
];

/** The XEP-0060 feature each unsupported request belongs to, for its <unsupported/> error. */
const UNSUPPORTED = new Map([
  ["affiliations", "retrieve-affiliations"],
  ["subscriptions", "retrieve-subscriptions"],
  ["subscribe", "subscribe"],
  ["unsubscribe", "subscribe"],
  ["options", "subscription-options"],
  ["default", "retrieve-default"],
  ["purge", "purge-nodes"],
]);

const NS_DELAY = "urn:xmpp:delay";

type Action = (event: StanzaEvent, owner: string, action: Element) => Promise<true>;

export const modPep = defineModule({ name: "pep", doc: "Personal eventing (XEP-0163): each account's PEP nodes, notifications filtered by entity capabilities.", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  api.addIdentity({ category: "pubsub", type: "pep" }, "account");
  for (const feature of FEATURES) api.addFeature(`${NS_PUBSUB}#${feature}`, "account");
  let notes = 0;
  const interest = trackInterest(api, sendLastItems);
  hookPepDisco(api, allowed);

  /** Answers with an error, and a pubsub#errors condition if given; handled. */
  async function fail(event: StanzaEvent, condition: Condition, app?: string, attrs?: Record<string, string>): Promise<true> {
    const appCondition = app ? new Element(app, { xmlns: NS_ERRORS, ...attrs }) : undefined;
    await api.reply(event, errorReply(event.stanza, condition, { app: appCondition }));
    return true;
  }

  /** Answers a request that would pass a limit, saying which; handled. */
  async function refuse(event: StanzaEvent, condition: Condition, text: string, app?: string): Promise<true> {
    const appCondition = app ? new Element(app, { xmlns: NS_ERRORS }) : undefined;
    await api.reply(event, errorReply(event.stanza, condition, { text, app: appCondition }));
    return true;
  }

  /** Whether the owner may have one more node (sm.max_pep_nodes). */
  async function roomForNode(owner: string): Promise<boolean> {
    return (await api.store.listPepNodes(owner)).length < api.limits.pepNodes;
  }

  const tooManyNodes = (): string => `at most ${api.limits.pepNodes} PEP nodes per account`;

  /** The request's single action element (beside publish-options, a create's configure or a result set request), or an error answered. */
  async function actionOf(event: StanzaEvent, ns: string): Promise<Element | null> {
    const pubsub = event.stanza.getChild("pubsub", ns)!;
    const beside = (c: Element): boolean => c.name === "publish-options" || c.name === "configure" || (c.name === "set" && c.getNS() === NS_RSM);
    const actions = pubsub.getChildElements().filter((c) => ns === NS_OWNER || !beside(c));
    if (actions.length !== 1) {
      await fail(event, "bad-request");
      return null;
    }
    const action = actions[0]!;
    if (!action.attrs.node) {
      const feature = UNSUPPORTED.get(action.name);
      if (feature) await fail(event, "feature-not-implemented", "unsupported", { feature });
      else await fail(event, "bad-request", "nodeid-required");
      return null;
    }
    if (Buffer.byteLength(action.attrs.node) > STORE_LIMITS.pepNode) {
      await fail(event, "not-acceptable");
      return null;
    }
    return action;
  }

  /** Hooked on bare, which a self iq falls through to. An account that does not exist: not handled (service-unavailable). */
  const handler =
    (ns: string, actions: Record<string, Action>, ownerOnly: boolean) =>
    async (event: StanzaEvent): Promise<boolean> => {
      const owner = event.to.bare;
      const isOwner = event.from.bare === owner;
      if (!isOwner && !(await api.userExists(owner))) return false;
      const action = await actionOf(event, ns);
      if (!action) return true;
      if (!Object.hasOwn(actions, action.name)) {
        return fail(event, "feature-not-implemented", "unsupported", { feature: UNSUPPORTED.get(action.name) ?? action.name });
      }
      if (ownerOnly && !isOwner) return fail(event, "forbidden");
      return actions[action.name]!(event, owner, action);
    };

  api.hook(`iq-set/bare/${NS_PUBSUB}:pubsub`, handler(NS_PUBSUB, { publish, retract, create }, true));
  api.hook(`iq-get/bare/${NS_PUBSUB}:pubsub`, handler(NS_PUBSUB, { items }, false));
  api.hook(`iq-set/bare/${NS_OWNER}:pubsub`, handler(NS_OWNER, { delete: deleteNode, configure }, true));
  api.hook(`iq-get/bare/${NS_OWNER}:pubsub`, handler(NS_OWNER, { configure: configureForm }, true));

  /** XEP-0060 §7.1, with auto-create and publish-options (§7.1.5). */
  async function publish(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const published = el.getChildren("item");
    if (published.length !== 1) return fail(event, "bad-request", published.length === 0 ? "item-required" : "invalid-payload");
    const payloads = published[0]!.getChildElements();
    if (payloads.length !== 1) return fail(event, "bad-request", payloads.length === 0 ? "payload-required" : "invalid-payload");
    const id: string = published[0]!.attrs.id || randomUUID();
    if (Buffer.byteLength(id) > STORE_LIMITS.pepItemId) return fail(event, "not-acceptable");
    const payload = standalone(payloads[0]!);
    const xml = payload.toString();
    // XEP-0060 §7.1.3.4.
    if (Buffer.byteLength(xml) > api.limits.pepItemBytes) {
      return refuse(event, "not-acceptable", `items may hold at most ${api.limits.pepItemBytes} bytes`, "payload-too-big");
    }
    let options: NodeConfig = {};
    const publishOptions = event.stanza.getChild("pubsub", NS_PUBSUB)!.getChild("publish-options");
    if (publishOptions?.getChildElements().length) {
      const fields = formFields(publishOptions.getChildElements()[0]);
      if (!fields) return fail(event, "bad-request", "invalid-options");
      // More items than any node here keeps is a precondition no node meets (XEP-0060 §7.1.5); "max" is what they keep.
      if (overCap(fields, api.limits.pepItems)) return fail(event, "conflict", "precondition-not-met");
      const known = knownFields(fields, api.limits.pepItems);
      if (typeof known === "string") return fail(event, "bad-request", "invalid-options");
      options = known;
    }
    const existing = await api.store.getPepNode(owner, node);
    const config = existing ? meetPreconditions(existing.config, options, api.limits.pepItems) : { ...DEFAULT_CONFIG, ...options };
    if (!config) return fail(event, "conflict", "precondition-not-met");
    if (!existing && !(await roomForNode(owner))) return refuse(event, "policy-violation", tooManyNodes());
    if (config !== existing?.config) await api.store.putPepNode(owner, { node, config });
    // Not persisted: notified only, as Prosody does; nothing is kept, not even the last item.
    if (persistsItems(config)) await api.store.publishPepItem(owner, node, { id, xml, published: new Date() }, maxItems(config, api.limits.pepItems));
    const result = new Element("pubsub", { xmlns: NS_PUBSUB });
    result.c("publish", { node }).c("item", { id });
    await api.reply(event, iqResult(event.stanza, result));
    await notify(event.work, owner, node, config, itemsElement(node, [{ id, payload }]));
    return true;
  }

  /** XEP-0060 §7.2; notifies the retraction when asked to (notify='true' or '1'). */
  async function retract(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const ids = el.getChildren("item").map((i) => i.attrs.id as string | undefined);
    if (ids.length === 0 || ids.some((id) => !id)) return fail(event, "bad-request", "item-required");
    const found = await api.store.getPepNode(owner, node);
    if (!found) return fail(event, "item-not-found");
    // Nothing is kept to retract from a node that does not persist: the retraction is only notified, as Prosody does.
    const gone: string[] = [];
    if (!persistsItems(found.config)) gone.push(...(ids as string[]));
    else for (const id of ids as string[]) if (await api.store.retractPepItem(owner, node, id)) gone.push(id);
    if (gone.length === 0) return fail(event, "item-not-found");
    await api.reply(event, iqResult(event.stanza));
    if (el.attrs.notify === "true" || el.attrs.notify === "1") {
      const items = new Element("items", { node });
      for (const id of gone) items.c("retract", { id });
      await notify(event.work, owner, node, found.config, items);
    }
    return true;
  }

  /** XEP-0060 §8.1, with a node name and an optional configure form. */
  async function create(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const form = event.stanza.getChild("pubsub", NS_PUBSUB)!.getChild("configure")?.getChildElements()[0];
    const known = knownFields(formFields(form) ?? {}, api.limits.pepItems);
    if (typeof known === "string") return fail(event, "not-acceptable");
    if (await api.store.getPepNode(owner, node)) return fail(event, "conflict");
    if (!(await roomForNode(owner))) return refuse(event, "policy-violation", tooManyNodes());
    await api.store.putPepNode(owner, { node, config: { ...DEFAULT_CONFIG, ...known } });
    await api.reply(event, iqResult(event.stanza));
    return true;
  }

  /**
   * XEP-0060 §6.5: all items, the newest max_items, those asked by id, or a
   * page (XEP-0059); for whom the access model allows; cut to what one
   * stanza holds (sm/pep-paging.ts).
   */
  async function items(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const max: string | undefined = el.attrs.max_items;
    if (max !== undefined && !/^[1-9]\d*$/.test(max)) return fail(event, "bad-request");
    const rsm = event.stanza.getChild("pubsub", NS_PUBSUB)!.getChild("set", NS_RSM);
    const page = rsm ? pageRequest(rsm) : null;
    if (rsm && !page) return fail(event, "bad-request");
    const found = await api.store.getPepNode(owner, node);
    if (!found) return fail(event, "item-not-found");
    if (!(await allowed(owner, event.from.bare, found.config))) return fail(event, "forbidden");
    // XEP-0060 §6.5.9.3, as Prosody answers for such a node.
    if (!persistsItems(found.config)) return fail(event, "feature-not-implemented", "unsupported", { feature: "persistent-items" });
    const ids = new Set(el.getChildren("item").flatMap((i) => (i.attrs.id ? [i.attrs.id as string] : [])));
    let set = await api.store.pepItemSizes(owner, node);
    if (ids.size > 0) set = set.filter((i) => ids.has(i.id));
    else if (max !== undefined) set = set.slice(-Number(max));
    const asked = ids.size > 0 ? { start: 0, end: set.length, keepNewest: false } : pageWindow(set, page);
    if (!asked) return fail(event, "item-not-found");
    const answer = (window: Window, stored: PepItem[]): Element => {
      const result = new Element("pubsub", { xmlns: NS_PUBSUB });
      result.cnode(itemsElement(node, stored.map(payloadOf)));
      if (page || window.start > asked.start || window.end < asked.end) result.cnode(resultSet(set, window));
      return iqResult(event.stanza, result);
    };
    const limit = api.limits.stanzaBytes;
    const envelope = Buffer.byteLength(answer({ ...asked, end: asked.start }, []).toString()) + 2 * STORE_LIMITS.pepItemId;
    const cost = (item: ItemSize): number => item.bytes + Buffer.byteLength(new Element("item", { id: item.id }).toString());
    let window = fitWindow(set, asked, limit - envelope, cost);
    let stored = await api.store.getPepItems(owner, node, { ids: set.slice(window.start, window.end).map((i) => i.id) });
    let reply = answer(window, stored);
    // The sizes are as stored; the items as sent may differ a little.
    while (window.end > window.start && Buffer.byteLength(reply.toString()) > limit) {
      window = asked.keepNewest ? { ...window, start: window.start + 1 } : { ...window, end: window.end - 1 };
      stored = asked.keepNewest ? stored.slice(1) : stored.slice(0, -1);
      reply = answer(window, stored);
    }
    if (window.end === window.start && asked.end > asked.start) {
      api.log.warn({ owner, node, bytes: set[asked.keepNewest ? asked.end - 1 : asked.start]!.bytes, limit }, "PEP item too large to send");
      return refuse(event, "resource-constraint", `an item of this node is larger than this server sends at once (${limit} bytes)`);
    }
    if (window.end - window.start < asked.end - asked.start) {
      api.log.info({ owner, node, sent: window.end - window.start, asked: asked.end - asked.start }, "PEP items cut to what one stanza holds");
    }
    await api.reply(event, reply);
    return true;
  }

  /** XEP-0060 §8.4, notified with <delete/> to those who could see the node. */
  async function deleteNode(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const found = await api.store.getPepNode(owner, node);
    if (!found || !(await api.store.deletePepNode(owner, node))) return fail(event, "item-not-found");
    await api.reply(event, iqResult(event.stanza));
    await notify(event.work, owner, node, found.config, new Element("delete", { node }));
    return true;
  }

  /** XEP-0060 §8.2: the configuration form. */
  async function configureForm(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const found = await api.store.getPepNode(owner, el.attrs.node);
    if (!found) return fail(event, "item-not-found");
    const result = new Element("pubsub", { xmlns: NS_OWNER });
    result.c("configure", { node: found.node }).cnode(configForm(found.config));
    await api.reply(event, iqResult(event.stanza, result));
    return true;
  }

  /** XEP-0060 §8.2.4, best effort: the fields this module knows are kept, the others ignored. */
  async function configure(event: StanzaEvent, owner: string, el: Element): Promise<true> {
    const node: string = el.attrs.node;
    const found = await api.store.getPepNode(owner, node);
    if (!found) return fail(event, "item-not-found");
    const form = el.getChildElements()[0];
    if (form?.attrs.type === "cancel") {
      await api.reply(event, iqResult(event.stanza));
      return true;
    }
    const fields = formFields(form);
    if (!fields) return fail(event, "bad-request");
    const known = knownFields(fields, api.limits.pepItems);
    if (typeof known === "string") return fail(event, "not-acceptable");
    const config = { ...found.config, ...known };
    await api.store.putPepNode(owner, { node, config });
    // A lower max_items takes effect now, not at the next publish; persist_items false drops them all.
    const stored = await api.store.pepItemSizes(owner, node);
    const keep = persistsItems(config) ? maxItems(config, api.limits.pepItems) : 0;
    for (const item of stored.slice(0, Math.max(0, stored.length - keep))) {
      await api.store.retractPepItem(owner, node, item.id);
    }
    await api.reply(event, iqResult(event.stanza));
    return true;
  }

  /** Whether `asker` may see a node; `roster` (the owner's, by contact) saves a lookup each. */
  async function allowed(owner: string, asker: string, config: NodeConfig, roster?: Map<string, Subscription>): Promise<boolean> {
    const model = accessModel(config);
    if (asker === owner || (model !== "presence" && model !== "roster")) return mayAccess(config, asker === owner, undefined);
    const subscription = roster ? roster.get(asker) : (await api.store.getRosterItem(owner, asker))?.subscription;
    return mayAccess(config, false, subscription);
  }

  /** Sends an event (XEP-0060 §7.1.2.1, §8.4.2) to everyone interested and allowed. */
  async function notify(work: Work, owner: string, node: string, config: NodeConfig, content: Element): Promise<void> {
    const audience = interest.audience(owner, node);
    const needsRoster = audience.some((jid) => jid.bare !== owner) && ["presence", "roster"].includes(accessModel(config));
    const roster = needsRoster ? new Map((await api.store.getRoster(owner)).map((i) => [i.contact, i.subscription])) : undefined;
    for (const jid of audience) {
      if (await allowed(owner, jid.bare, config, roster)) await api.send(work, eventMessage(owner, jid.full, content));
    }
  }

  /** XEP-0163 §6.2: a resource newly wanting nodes gets their last item, where it may see them. */
  async function sendLastItems(work: Work, owner: string, jid: Jid, wanted: string[]): Promise<void> {
    const nodes = (await api.store.listPepNodes(owner)).filter((n) => wanted.includes(n.node) && sendsLastItem(n.config));
    for (const { node, config } of nodes) {
      if (!(await allowed(owner, jid.bare, config))) continue;
      const [last] = await api.store.getPepItems(owner, node, { last: 1 });
      if (!last) continue;
      const message = eventMessage(owner, jid.full, itemsElement(node, [payloadOf(last)]));
      // XEP-0203: an old item, stamped with when it was published, as ejabberd and Prosody do.
      message.c("delay", { xmlns: NS_DELAY, from: owner, stamp: last.published.toISOString() });
      try {
        await api.send(work, message);
      } catch (err) {
        // An item stored larger than the sm sends (an import): the presence that asked is no error of its sender's.
        if (!(err instanceof FrameTooLargeError)) throw err;
        api.log.warn({ owner, node, id: last.id, bytes: err.bytes }, "last PEP item too large to send; not sent");
      }
    }
  }

  function eventMessage(owner: string, to: string, content: Element): Element {
    const message = new Element("message", { type: "headline", from: owner, to, id: `pep-${++notes}` });
    message.c("event", { xmlns: NS_EVENT }).cnode(clone(content));
    return message;
  }

  function payloadOf(item: PepItem): { id: string; payload: Element | null } {
    try {
      return { id: item.id, payload: parse(item.xml) };
    } catch (err) {
      api.log.warn({ err, id: item.id }, "unparsable PEP item sent without its payload");
      return { id: item.id, payload: null };
    }
  }
}

/** <items node><item id>payload</item>…</items>, as in results and events. */
function itemsElement(node: string, items: { id: string; payload: Element | null }[]): Element {
  const el = new Element("items", { node });
  for (const { id, payload } of items) {
    const item = el.c("item", { id });
    if (payload) item.cnode(payload);
  }
  return el;
}
