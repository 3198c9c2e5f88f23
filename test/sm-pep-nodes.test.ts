// PEP (XEP-0163) node options and discovery through an in-process sm:
// pubsub#persist_items false (notified, never stored), pubsub#max_items
// "max" (XEP-0060 §16.4.3: the service's most, sm.max_pep_items), an
// account's nodes in disco#items under their access models (XEP-0060 §5.2),
// a node's disco#info and items (§5.3, §5.5), and the XEP-0203 delay stamp
// on a last item sent when a contact comes online.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import {
  ALICE,
  EVENT,
  INFO,
  MOOD,
  OWNER,
  PUBSUB,
  ask,
  contacts,
  events,
  itemsOf,
  mood,
  onlineWithCaps,
  publishXml,
  pubsubError,
} from "./harness/pep.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const ITEMS = "http://jabber.org/protocol/disco#items";
const DELAY = "urn:xmpp:delay";
const BOB = `bob@${DOMAIN}`;

const configureXml = (node: string, fields: Record<string, string>): string =>
  `<iq type='set' id='cfg'><pubsub xmlns='${OWNER}'><configure node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
  `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>` +
  Object.entries(fields)
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join("") +
  `</x></configure></pubsub></iq>`;

const itemsXml = (node: string) => `<iq type='get' id='items' to='${ALICE}'><pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub></iq>`;

/** The nodes (or, for a node, the item names) a disco#items answer lists. */
async function discoItems(client: Client, node?: string): Promise<{ answer: Element; listed: string[] }> {
  const attr = node === undefined ? "" : ` node='${node}'`;
  const answer = await ask(client, `<iq type='get' id='di' to='${ALICE}'><query xmlns='${ITEMS}'${attr}/></iq>`);
  const items = answer.getChild("query", ITEMS)?.getChildren("item") ?? [];
  return { answer, listed: items.map((i) => (node === undefined ? i.attrs.node : i.attrs.name) as string) };
}

describe("sm PEP node options and discovery", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("notifies the items and retractions of a persist_items false node without storing them, and answers a retrieval as Prosody does", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await onlineWithCaps(h, bob, [`${MOOD}+notify`]);
    const published = await ask(alice, publishXml(MOOD, mood("happy"), "m1", { "pubsub#persist_items": "false" }));
    expect(published.attrs.type).toBe("result");
    expect((await h.store.getPepNode(ALICE, MOOD))!.config["pubsub#persist_items"]).toBe("false");
    expect(await h.store.getPepItems(ALICE, MOOD)).toEqual([]);
    const [note] = events(bob.received(), MOOD);
    expect(note!.getChild("event", EVENT)!.getChild("items")!.getChild("item")!.attrs.id).toBe("m1");

    // XEP-0060 §6.5.9.3: nothing kept to retrieve.
    const retrieval = await ask(bob, itemsXml(MOOD));
    expect(conditionOf(retrieval)).toBe("feature-not-implemented");
    expect(pubsubError(retrieval)).toBe("unsupported");
    expect(retrieval.getChild("error")!.getChild("unsupported")!.attrs.feature).toBe("persistent-items");

    // A retraction is only notified, nothing being kept (as Prosody does).
    const retract = `<iq type='set' id='r'><pubsub xmlns='${PUBSUB}'><retract node='${MOOD}' notify='true'><item id='m1'/></retract></pubsub></iq>`;
    expect((await ask(alice, retract)).attrs.type).toBe("result");
    const [retracted] = events(bob.received(), MOOD);
    expect(retracted!.getChild("event", EVENT)!.getChild("items")!.getChild("retract")!.attrs.id).toBe("m1");

    // No last item for a resource that comes online interested: there is none.
    const later = await h.connect(`${BOB}/later`);
    expect(events(await onlineWithCaps(h, later, [`${MOOD}+notify`]), MOOD)).toEqual([]);
  });

  it("drops a node's stored items when it is configured not to persist them", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    expect((await ask(alice, configureXml(MOOD, { "pubsub#persist_items": "0" }))).attrs.type).toBe("result");
    expect(await h.store.getPepItems(ALICE, MOOD)).toEqual([]);
    expect((await ask(alice, publishXml(MOOD, mood("sad"), "m2"))).attrs.type).toBe("result");
    expect(await h.store.getPepItems(ALICE, MOOD)).toEqual([]);
  });

  it('takes max_items "max" as sm.max_pep_items, and refuses more than that as a precondition not met', async () => {
    h = await Harness.create(["alice"], { limits: { pepItems: 3 } });
    const alice = await h.connect(`${ALICE}/a`);
    const node = "urn:xmpp:bookmarks:1";
    for (const id of ["a", "b", "c", "d"]) {
      expect((await ask(alice, publishXml(node, `<x xmlns='urn:example'/>`, id, { "pubsub#max_items": "max" }))).attrs.type).toBe("result");
    }
    expect((await h.store.getPepItems(ALICE, node)).map((i) => i.id)).toEqual(["b", "c", "d"]);
    const form = await ask(alice, `<iq type='get' id='f'><pubsub xmlns='${OWNER}'><configure node='${node}'/></pubsub></iq>`);
    const field = form.getChild("pubsub", OWNER)!.getChild("configure")!.getChild("x")!.getChildren("field").find((f) => f.attrs.var === "pubsub#max_items");
    expect(field!.getChildText("value")).toBe("max");

    // More than the service keeps: no node could meet it (XEP-0060 §7.1.5), on a new node as on this one.
    for (const target of [node, "urn:example:new"]) {
      const over = await ask(alice, publishXml(target, `<x xmlns='urn:example'/>`, "e", { "pubsub#max_items": "4" }));
      expect(conditionOf(over)).toBe("conflict");
      expect(pubsubError(over)).toBe("precondition-not-met");
    }
    expect(await h.store.getPepNode(ALICE, "urn:example:new")).toBeNull();
    // The owner's configure form is refused as before.
    expect(conditionOf(await ask(alice, configureXml(node, { "pubsub#max_items": "4" })))).toBe("not-acceptable");
    expect((await ask(alice, configureXml(node, { "pubsub#max_items": "max" }))).attrs.type).toBe("result");
  });

  it("lists an account's nodes in disco#items to whom each node's access model allows", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"]);
    const { alice, bob } = await contacts(h);
    for (const [node, access] of [
      ["urn:example:presence", "presence"],
      ["urn:example:roster", "roster"],
      ["urn:example:open", "open"],
      ["urn:example:whitelist", "whitelist"],
    ] as const) {
      await ask(alice, publishXml(node, `<x xmlns='${node}'/>`, "i1", { "pubsub#access_model": access, "pubsub#max_items": "2" }));
    }
    await ask(alice, publishXml("urn:example:open", `<x xmlns='urn:example:open'/>`, "i2"));
    expect((await discoItems(alice)).listed.sort()).toEqual(["urn:example:open", "urn:example:presence", "urn:example:roster", "urn:example:whitelist"]);
    const ofBob = await discoItems(bob);
    expect(ofBob.answer.getChild("query", ITEMS)!.getChildren("item").every((i) => i.attrs.jid === ALICE)).toBe(true);
    expect(ofBob.listed.sort()).toEqual(["urn:example:open", "urn:example:presence", "urn:example:roster"]);
    // A stranger sees the open node only.
    const carol = await h.connect(`carol@${DOMAIN}/c`);
    expect((await discoItems(carol)).listed).toEqual(["urn:example:open"]);

    // A node's items, named by id (XEP-0060 §5.5), and its identity (§5.3).
    expect((await discoItems(carol, "urn:example:open")).listed).toEqual(["i1", "i2"]);
    const info = await ask(carol, `<iq type='get' id='ni' to='${ALICE}'><query xmlns='${INFO}' node='urn:example:open'/></iq>`);
    const query = info.getChild("query", INFO)!;
    expect(query.attrs.node).toBe("urn:example:open");
    expect(query.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`)).toEqual(["pubsub/leaf"]);
    expect(query.getChildren("feature").map((f) => f.attrs.var)).toContain(PUBSUB);
    // A node the asker may not see is as one that does not exist; for a stranger, as the account it cannot see.
    expect(conditionOf(await ask(bob, `<iq type='get' id='w' to='${ALICE}'><query xmlns='${INFO}' node='urn:example:whitelist'/></iq>`))).toBe("item-not-found");
    expect(conditionOf((await discoItems(bob, "urn:example:whitelist")).answer)).toBe("item-not-found");
    expect(conditionOf((await discoItems(carol, "urn:example:presence")).answer)).toBe("service-unavailable");

    // Without an open node, a stranger learns nothing of the account, as before.
    await ask(alice, `<iq type='set' id='del'><pubsub xmlns='${OWNER}'><delete node='urn:example:open'/></pubsub></iq>`);
    expect(conditionOf((await discoItems(carol)).answer)).toBe("service-unavailable");
    // The owner with no nodes at all gets an empty list.
    const dave = await h.connect(`dave@${DOMAIN}/d`);
    const own = await ask(dave, `<iq type='get' id='di' to='dave@${DOMAIN}'><query xmlns='${ITEMS}'/></iq>`);
    expect(own.attrs.type).toBe("result");
    expect(own.getChild("query", ITEMS)!.getChildren("item")).toEqual([]);
  });

  it("stamps the last item sent to a contact coming online with when it was published (XEP-0203)", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    const [stored] = await h.store.getPepItems(ALICE, MOOD);
    const [last] = events(await onlineWithCaps(h, bob, [`${MOOD}+notify`]), MOOD);
    const delay = last!.getChild("delay", DELAY)!;
    expect(delay.attrs).toEqual({ xmlns: DELAY, from: ALICE, stamp: stored!.published.toISOString() });
    // A live notification carries none.
    await ask(alice, publishXml(MOOD, mood("sad"), "m2"));
    const [live] = events(bob.received(), MOOD);
    expect(live!.getChild("delay", DELAY)).toBeUndefined();
    expect(itemsOf(await ask(bob, itemsXml(MOOD))).map((i) => i.attrs.id)).toEqual(["m2"]);
  });
});
