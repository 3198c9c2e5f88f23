// XEP-0049 jabber:iq:private: a user stores XML elements for itself, one per
// qualified name (legacy bookmarks, client preferences). Nobody else, not
// even with a subscription, may read or write them.
import { Element, parse } from "ltx";
import { STORE_LIMITS, type PrivateKey } from "../xdb-sql/store.js";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import { iqResult, standalone } from "./stanza.js";
import type { Condition } from "../lib/stanza-error.js";

const NS = "jabber:iq:private";

export const modPrivate = defineModule({ name: "private", doc: "Private XML storage (XEP-0049).", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  // Advertised where Prosody and ejabberd advertise it, so clients that look before they store find it.
  api.addFeature(NS);
  api.addFeature(NS, "account");
  // Hooked on bare, which a self iq falls through to: the handler tells the two apart.
  api.hook(`iq-get/bare/${NS}:query`, async (event) => {
    const user = await owner(api, event);
    if (!user) return true;
    const children = event.stanza.getChild("query", NS)!.getChildElements();
    if (children.length !== 1) return fail(api, event, "bad-request", "a get names exactly one element");
    const key = keyOf(children[0]!);
    const refused = refusal(key);
    if (refused) return fail(api, event, ...refused);
    const xml = await api.store.getPrivate(user, key);
    const query = new Element("query", { xmlns: NS });
    query.cnode(xml === null ? new Element(key.name, { xmlns: key.namespace }) : parseStored(api, xml, key, user));
    await api.reply(event, iqResult(event.stanza, query));
    return true;
  });

  api.hook(`iq-set/bare/${NS}:query`, async (event) => {
    const user = await owner(api, event);
    if (!user) return true;
    const children = event.stanza.getChild("query", NS)!.getChildElements();
    if (children.length === 0) return fail(api, event, "bad-request", "a set holds at least one element");
    // Every element is checked before any is stored.
    const elements = children.map((child) => ({ key: keyOf(child), xml: standalone(child).toString() }));
    for (const { key, xml } of elements) {
      const refused = refusal(key);
      if (refused) return fail(api, event, ...refused);
      if (Buffer.byteLength(xml) > api.limits.privateItemBytes) {
        return fail(api, event, "not-acceptable", `an element may hold at most ${api.limits.privateItemBytes} bytes`);
      }
    }
    // What the account would hold once the set replaced what it names.
    const sizes = new Map((await api.store.privateSizes(user)).map(({ key, bytes }) => [nameOf(key), bytes]));
    for (const { key, xml } of elements) sizes.set(nameOf(key), Buffer.byteLength(xml));
    if ([...sizes.values()].reduce((a, b) => a + b, 0) > api.limits.privateBytes) {
      return fail(api, event, "policy-violation", `private storage holds at most ${api.limits.privateBytes} bytes per account`);
    }
    for (const { key, xml } of elements) await api.store.setPrivate(user, key, xml);
    await api.reply(event, iqResult(event.stanza));
    return true;
  });
}

/** The user, when the iq is the user's own; else answers forbidden (as Prosody and ejabberd do) and returns null. */
async function owner(api: ModuleApi, event: StanzaEvent): Promise<string | null> {
  const user = event.to.bare;
  if (event.from.bare === user) return user;
  await api.error(event, "forbidden", "private storage is only for the user itself");
  return null;
}

function keyOf(el: Element): PrivateKey {
  return { namespace: el.getNS() ?? "", name: el.getName() };
}

/** A key as one string, in Clark notation: an XML name holds no "}", so none is ambiguous. */
function nameOf(key: PrivateKey): string {
  return `{${key.namespace}}${key.name}`;
}

/** Why an element may not be stored or asked for, if it may not. */
function refusal(key: PrivateKey): [Condition, string] | null {
  // §3: the namespaces of the protocol itself are refused (the child inherits jabber:iq:private if it declares none).
  if (key.namespace.startsWith("jabber:")) return ["not-acceptable", "jabber:* namespaces are not stored"];
  if (!key.namespace) return ["bad-request", "the element needs a namespace"];
  if (Buffer.byteLength(key.namespace) > STORE_LIMITS.privateNamespace || Buffer.byteLength(key.name) > STORE_LIMITS.privateName) {
    return ["not-acceptable", "namespace or name too long"];
  }
  return null;
}

function parseStored(api: ModuleApi, xml: string, key: PrivateKey, user: string): Element {
  try {
    return parse(xml);
  } catch (err) {
    api.log.warn({ err, user, namespace: key.namespace }, "unparsable private element answered as empty");
    return new Element(key.name, { xmlns: key.namespace });
  }
}

async function fail(api: ModuleApi, event: StanzaEvent, condition: Condition, text: string): Promise<true> {
  await api.error(event, condition, text);
  return true;
}
