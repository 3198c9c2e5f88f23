// PEP (XEP-0163, on the subset of XEP-0060 it uses) through an in-process
// sm over a real SQLite store: publish, retrieval under each access model,
// retract, delete, configuration, publish-options, and notifications to the
// resources whose entity capabilities (XEP-0115) ask for them, learned with
// disco#info queries the sm sends the clients.
import path from "node:path";
import { parse, type Element } from "ltx";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { rendezvousOwner } from "../lib/link/member.js";
import { capsVer } from "../sm/pep-caps.js";
import { openStore } from "../xdb-sql/open-store.js";
import { Farm } from "./harness/farm.js";
import { rosterItem } from "./harness/roster-item.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";
import {
  ALICE,
  CLIENT_NODE,
  ERRORS,
  EVENT,
  INFO,
  MOOD,
  OWNER,
  PUBSUB,
  TUNE,
  answerCaps,
  ask,
  capsOf,
  capsPresence,
  contacts,
  discoInfo,
  drain,
  events,
  itemsOf,
  mood,
  onlineWithCaps,
  publishXml,
  pubsubError,
  settle,
} from "./harness/pep.js";
import { DOMAIN, Harness, conditionOf } from "./sm-harness.js";

describe("XEP-0115 verification strings", () => {
  it("are computed as in the XEP's examples", () => {
    // XEP-0115 §5.2 and §5.3.
    const simple = parse(
      `<query xmlns='${INFO}'><identity category='client' name='Exodus 0.9.1' type='pc'/>` +
        `<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>` +
        `<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>`,
    );
    expect(capsVer(simple)).toBe("QgayPKawpkPSDYmwT/WM94uAlu0=");
    const complex = parse(
      `<query xmlns='${INFO}'>` +
        `<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>` +
        `<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>` +
        `<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>` +
        `<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>` +
        `<x xmlns='jabber:x:data' type='result'>` +
        `<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>` +
        `<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>` +
        `<field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field>` +
        `<field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field>` +
        `</x></query>`,
    );
    expect(capsVer(complex)).toBe("q07IKJEyjvHSyhy//CH0CxmKi8w=");
  });
});

describe("sm PEP", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("advertises PEP on the account", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    const info = await ask(alice, `<iq type='get' id='d' to='${ALICE}'><query xmlns='${INFO}'/></iq>`);
    const query = info.getChild("query", INFO)!;
    const identities = query.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    expect(identities).toEqual(expect.arrayContaining(["account/registered", "pubsub/pep"]));
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    for (const f of ["publish", "publish-options", "auto-create", "access-presence", "retract", "retrieve-items", "delete-nodes", "config-node", "config-node-max", "persistent-items"]) {
      expect(features).toContain(`${PUBSUB}#${f}`);
    }
    // The server's own disco#info is not the account's.
    const server = await ask(alice, `<iq type='get' id='s' to='${DOMAIN}'><query xmlns='${INFO}'/></iq>`);
    expect(server.getChild("query", INFO)!.getChildren("identity").map((i) => i.attrs.category)).toEqual(["server"]);
  });

  it("publishes, auto-creating the node, and notifies the owner and an interested contact", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await bob.send(capsPresence([`${MOOD}+notify`]));
    const { asked } = await drain(h, bob, [`${MOOD}+notify`]);
    // Asked by alice's account (and by bob's own, for his PEP), with the caps node#ver.
    const fromAlice = asked.find((q) => q.attrs.from === ALICE)!;
    expect(fromAlice.attrs.to).toBe(bob.jid);
    expect(fromAlice.getChild("query", INFO)!.attrs.node).toBe(`${CLIENT_NODE}#${capsVer(discoInfo([`${MOOD}+notify`]))}`);
    alice.received();

    const aliceGot: Element[] = [];
    const result = await ask(alice, publishXml(MOOD, mood("happy"), "m1"), aliceGot);
    expect(result.attrs).toMatchObject({ type: "result", id: "pub", to: alice.jid });
    expect(result.getChild("pubsub", PUBSUB)!.getChild("publish")!.attrs.node).toBe(MOOD);
    expect(result.getChild("pubsub", PUBSUB)!.getChild("publish")!.getChild("item")!.attrs.id).toBe("m1");
    // Stored before the answer, with XEP-0163's defaults.
    expect((await h.store.getPepNode(ALICE, MOOD))!.config).toMatchObject({
      "pubsub#access_model": "presence",
      "pubsub#max_items": "1",
    });
    expect((await h.store.getPepItems(ALICE, MOOD)).map((i) => i.id)).toEqual(["m1"]);

    const [note, ...more] = events(bob.received(), MOOD);
    expect(more).toEqual([]);
    expect(note!.attrs).toMatchObject({ type: "headline", from: ALICE, to: bob.jid });
    const item = note!.getChild("event", EVENT)!.getChild("items")!.getChild("item")!;
    expect(item.attrs.id).toBe("m1");
    expect(item.getChild("mood", MOOD)!.getChild("happy")).toBeDefined();
    // alice's resource announced no caps: it gets every notification of her own nodes.
    expect(events(aliceGot, MOOD)).toHaveLength(1);

    // An item without an id gets one.
    const generated = await ask(alice, publishXml(MOOD, mood("sad")));
    const id = generated.getChild("pubsub", PUBSUB)!.getChild("publish")!.getChild("item")!.attrs.id;
    expect(id).toMatch(/.+/);
    const [second] = events(bob.received(), MOOD);
    expect(second!.getChild("event", EVENT)!.getChild("items")!.getChild("item")!.attrs.id).toBe(id);
  });

  it("notifies only contacts that asked for the node and share presence, and resources that did not refuse it", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"]);
    await h.mutual("alice", "bob");
    await h.mutual("alice", "carol");
    // alice sees dave's presence, dave does not see hers.
    await h.rosterItem("alice", "dave", { subscription: "to" });
    await h.rosterItem("dave", "alice", { subscription: "from" });
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    // alice's second resource wants tunes, not moods.
    const alice2 = await h.connect(`${ALICE}/tunes`);
    await onlineWithCaps(h, alice2, [`${TUNE}+notify`]);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await onlineWithCaps(h, bob, [`${MOOD}+notify`]);
    const carol = await h.connect(`carol@${DOMAIN}/c`);
    await onlineWithCaps(h, carol, [MOOD, `${TUNE}+notify`]);
    const dave = await h.connect(`dave@${DOMAIN}/d`);
    // Other software than bob's (a 'ver' not cached yet).
    const daveFeatures = [`${MOOD}+notify`, "urn:example:dave"];
    await dave.send(capsPresence(daveFeatures));
    const daveQueries = await drain(h, dave, daveFeatures);
    expect(daveQueries.asked.filter((q) => q.attrs.from === `dave@${DOMAIN}`)).toHaveLength(1);
    // dave's presence reached alice, but no query from her account: he may not see her events.
    expect(daveQueries.asked.filter((q) => q.attrs.from === ALICE)).toEqual([]);
    for (const c of [alice, alice2, bob, carol]) c.received();

    const aliceGot: Element[] = [];
    await ask(alice, publishXml(MOOD, mood("curious"), "c1"), aliceGot);
    expect(events(bob.received(), MOOD)).toHaveLength(1);
    expect(events(aliceGot, MOOD)).toHaveLength(1);
    expect(events(alice2.received(), MOOD)).toEqual([]);
    expect(events(carol.received(), MOOD)).toEqual([]);
    expect(events(dave.received(), MOOD)).toEqual([]);

    await ask(alice, publishXml(TUNE, `<tune xmlns='${TUNE}'><title>Song</title></tune>`, "t1"));
    expect(events(carol.received(), TUNE)).toHaveLength(1);
    expect(events(alice2.received(), TUNE)).toHaveLength(1);
    expect(events(bob.received(), TUNE)).toEqual([]);

    // Gone unavailable: interest forgotten.
    await bob.send("<presence type='unavailable'/>");
    const later: Element[] = [];
    await ask(alice, publishXml(MOOD, mood("bored"), "c2"), later);
    expect(events(bob.received(), MOOD)).toEqual([]);
    expect(events(later, MOOD)).toHaveLength(1);
  });

  it("learns nothing from a client that fails the disco#info query", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await bob.send(capsPresence([`${MOOD}+notify`]));
    const { asked } = await drain(h, bob, null);
    const query = asked.find((q) => q.attrs.from === ALICE)!;
    await bob.send(`<iq type='error' id='${query.attrs.id}' to='${ALICE}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    await settle(h);
    // Taken as the query's answer, not passed on to alice's resources.
    expect(alice.received().filter((s) => s.name === "iq")).toEqual([]);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    expect(events(bob.received(), MOOD)).toEqual([]);
  });

  it("takes a caps answer only from the JID asked, and only in time", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    await h.mutual("alice", "bob");
    await h.mutual("alice", "carol");
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    const carol = await h.connect(`carol@${DOMAIN}/c`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const wanted = [`${MOOD}+notify`];
    const answer = (query: Element) =>
      `<iq type='result' id='${query.attrs.id}' to='${ALICE}'>${discoInfo(wanted, query.getChild("query", INFO)!.attrs.node).toString()}</iq>`;

    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      await bob.send(capsPresence(wanted));
      const query = (await drain(h, bob, null)).asked.find((q) => q.attrs.from === ALICE)!;
      // Someone else answering with the right id is not taken for bob.
      await carol.send(answer(query));
      await settle(h);
      await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
      expect(events(bob.received(), MOOD)).toEqual([]);
      // Past the timeout, bob's own answer is too late.
      vi.advanceTimersByTime(10_001);
      await settle(h);
      await bob.send(answer(query));
      await settle(h);
      await ask(alice, publishXml(MOOD, mood("sad"), "m2"));
      expect(events(bob.received(), MOOD)).toEqual([]);
    } finally {
      vi.useRealTimers();
    }

    // New caps, answered in time: now bob wants moods, and gets the last one.
    const now = [`${MOOD}+notify`, `${TUNE}+notify`];
    await bob.send(capsPresence(now));
    const { asked, rest } = await drain(h, bob, now);
    expect(asked.filter((q) => q.attrs.from === ALICE)).toHaveLength(1);
    expect(events(rest, MOOD).map((m) => m.getChild("event", EVENT)!.getChild("items")!.getChild("item")!.attrs.id)).toEqual(["m2"]);
  });

  it("sends the last item to a contact that comes online interested, once, from the cache the second time", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    await h.mutual("alice", "bob");
    await h.mutual("alice", "carol");
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    await ask(alice, publishXml(MOOD, mood("happy"), "old"));
    await ask(alice, publishXml(MOOD, mood("excited"), "last"));
    await ask(alice, publishXml("urn:xmpp:bookmarks:1", "<conference xmlns='urn:xmpp:bookmarks:1'/>", "room@muc", {
      "pubsub#access_model": "presence",
      "pubsub#send_last_published_item": "never",
    }));
    const features = [`${MOOD}+notify`, "urn:xmpp:bookmarks:1+notify"];

    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await bob.send(capsPresence(features));
    const first = await drain(h, bob, features);
    expect(first.asked.filter((q) => q.attrs.from === ALICE)).toHaveLength(1);
    const [last, ...more] = events(first.rest, MOOD);
    expect(more).toEqual([]);
    expect(last!.attrs).toMatchObject({ type: "headline", from: ALICE, to: bob.jid });
    expect(last!.getChild("event", EVENT)!.getChild("items")!.getChild("item")!.attrs.id).toBe("last");
    expect(events(first.rest, "urn:xmpp:bookmarks:1")).toEqual([]);

    // A presence update with the same caps sends nothing again.
    await bob.send(capsPresence(features, "<show>away</show>"));
    const again = await drain(h, bob, features);
    expect(again.asked).toEqual([]);
    expect(events(again.rest, MOOD)).toEqual([]);

    // The same client software: known from the cache, no query.
    const carol = await h.connect(`carol@${DOMAIN}/c`);
    await carol.send(capsPresence(features));
    const cached = await drain(h, carol, null);
    expect(cached.asked.filter((q) => q.attrs.from === ALICE)).toEqual([]);
    expect(events(cached.rest, MOOD)).toHaveLength(1);
  });

  it("gives items to whom the access model allows", async () => {
    h = await Harness.create(["alice", "bob", "dave", "eve"]);
    await h.mutual("alice", "bob");
    await h.rosterItem("alice", "dave", { subscription: "to" });
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const dave = await h.connect(`dave@${DOMAIN}/d`);
    const eve = await h.connect(`eve@${DOMAIN}/e`);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    await ask(alice, publishXml("urn:xmpp:avatar:metadata", "<metadata xmlns='urn:xmpp:avatar:metadata'/>", "av1", { "pubsub#access_model": "open" }));
    await ask(alice, publishXml("urn:example:secret", "<secret xmlns='urn:example:secret'/>", "s1", { "pubsub#access_model": "whitelist" }));
    const get = (node: string, to = ` to='${ALICE}'`) =>
      `<iq type='get' id='items'${to}><pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub></iq>`;

    const own = await ask(alice, get(MOOD, ""));
    expect(itemsOf(own).map((i) => i.attrs.id)).toEqual(["m1"]);
    const byContact = await ask(bob, get(MOOD));
    expect(byContact.attrs).toMatchObject({ type: "result", from: ALICE, to: bob.jid });
    const [item] = itemsOf(byContact);
    expect(item!.attrs.id).toBe("m1");
    expect(item!.getChild("mood", MOOD)!.getChild("happy")).toBeDefined();
    for (const stranger of [dave, eve]) expect(conditionOf(await ask(stranger, get(MOOD)))).toBe("forbidden");

    for (const anyone of [alice, bob, dave, eve]) {
      const open = await ask(anyone, get("urn:xmpp:avatar:metadata"));
      expect(itemsOf(open).map((i) => i.attrs.id)).toEqual(["av1"]);
    }

    expect(itemsOf(await ask(alice, get("urn:example:secret"))).map((i) => i.attrs.id)).toEqual(["s1"]);
    expect(conditionOf(await ask(bob, get("urn:example:secret")))).toBe("forbidden");

    expect(conditionOf(await ask(bob, get("urn:example:none")))).toBe("item-not-found");
    expect(conditionOf(await ask(bob, get(MOOD, ` to='nobody@${DOMAIN}'`)))).toBe("service-unavailable");
    // Only the owner publishes.
    const forged = await ask(bob, publishXml(MOOD, mood("angry"), "x").replace("id='pub'", `id='pub' to='${ALICE}'`));
    expect(conditionOf(forged)).toBe("forbidden");
    expect((await h.store.getPepItems(ALICE, MOOD)).map((i) => i.id)).toEqual(["m1"]);
  });

  it("keeps max_items items, newest last, and serves max_items and ids asked for", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    const node = "urn:example:log";
    const entry = (n: number) => `<entry xmlns='${node}'>${n}</entry>`;
    for (let n = 1; n <= 5; n++) await ask(alice, publishXml(node, entry(n), `e${n}`, { "pubsub#max_items": "3" }));
    const all = await ask(alice, `<iq type='get' id='a'><pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub></iq>`);
    expect(itemsOf(all).map((i) => i.attrs.id)).toEqual(["e3", "e4", "e5"]);
    expect(itemsOf(all).map((i) => i.getChild("entry", node)!.getText())).toEqual(["3", "4", "5"]);
    const newest = await ask(alice, `<iq type='get' id='n'><pubsub xmlns='${PUBSUB}'><items node='${node}' max_items='2'/></pubsub></iq>`);
    expect(itemsOf(newest).map((i) => i.attrs.id)).toEqual(["e4", "e5"]);
    const byId = await ask(alice, `<iq type='get' id='i'><pubsub xmlns='${PUBSUB}'><items node='${node}'><item id='e3'/><item id='e1'/></items></pubsub></iq>`);
    expect(itemsOf(byId).map((i) => i.attrs.id)).toEqual(["e3"]);

    // Publishing an id again replaces that item.
    await ask(alice, publishXml(node, entry(33), "e3", { "pubsub#max_items": "3" }));
    const replaced = await ask(alice, `<iq type='get' id='r'><pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub></iq>`);
    expect(itemsOf(replaced).map((i) => i.attrs.id)).toEqual(["e4", "e5", "e3"]);

    // The default keeps one.
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    await ask(alice, publishXml(MOOD, mood("sad"), "m2"));
    expect((await h.store.getPepItems(ALICE, MOOD)).map((i) => i.id)).toEqual(["m2"]);
  });

  it("checks publish-options against an existing node: a conflict is precondition-not-met, max_items may grow", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    const node = "eu.siacs.conversations.axolotl.devicelist";
    const list = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>";
    expect((await ask(alice, publishXml(node, list, "current", { "pubsub#access_model": "open" }))).attrs.type).toBe("result");
    expect((await ask(alice, publishXml(node, list, "current", { "pubsub#access_model": "open" }))).attrs.type).toBe("result");

    const conflict = await ask(alice, publishXml(node, list, "current", { "pubsub#access_model": "presence" }));
    expect(conflict.attrs.type).toBe("error");
    expect(conditionOf(conflict)).toBe("conflict");
    expect(pubsubError(conflict)).toBe("precondition-not-met");
    expect((await h.store.getPepNode(ALICE, node))!.config["pubsub#access_model"]).toBe("open");

    const raised = await ask(alice, publishXml(node, list, "current", { "pubsub#max_items": "max" }));
    expect(raised.attrs.type).toBe("result");
    expect((await h.store.getPepNode(ALICE, node))!.config["pubsub#max_items"]).toBe("max");
    const lowered = await ask(alice, publishXml(node, list, "current", { "pubsub#max_items": "2" }));
    expect(pubsubError(lowered)).toBe("precondition-not-met");

    const invalid = await ask(alice, publishXml("urn:example:x", "<x xmlns='urn:example:x'/>", "1", { "pubsub#access_model": "everyone" }));
    expect(conditionOf(invalid)).toBe("bad-request");
    expect(await h.store.getPepNode(ALICE, "urn:example:x")).toBeNull();
  });

  it("reads a node config as an import stores it: raw form values, an access model it does not serve", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    // As Prosody exports it (XEP-0227): booleans as "1", every field it has.
    await h.store.putPepNode(ALICE, {
      node: MOOD,
      config: { "pubsub#persist_items": "1", "pubsub#access_model": "authorize", "pubsub#max_items": "10", "pubsub#title": "Mood" },
    });
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const same = await ask(alice, publishXml(MOOD, mood("happy"), "m1", { "pubsub#persist_items": "true", "pubsub#max_items": "10" }));
    expect(same.attrs.type).toBe("result");
    // "authorize" is served as whitelist: the owner only.
    const items = `<iq type='get' id='i' to='${ALICE}'><pubsub xmlns='${PUBSUB}'><items node='${MOOD}'/></pubsub></iq>`;
    expect(conditionOf(await ask(bob, items))).toBe("forbidden");
    const form = await ask(alice, `<iq type='get' id='c'><pubsub xmlns='${OWNER}'><configure node='${MOOD}'/></pubsub></iq>`);
    const fields = form.getChild("pubsub", OWNER)!.getChild("configure")!.getChild("x")!.getChildren("field");
    expect(Object.fromEntries(fields.map((f) => [f.attrs.var, f.getChildText("value")]))).toMatchObject({
      "pubsub#persist_items": "1",
      "pubsub#access_model": "whitelist",
      "pubsub#max_items": "10",
    });
    // What it does not act on stays as imported.
    expect((await h.store.getPepNode(ALICE, MOOD))!.config["pubsub#title"]).toBe("Mood");
  });

  it("retracts items, notifying the retraction when asked", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await onlineWithCaps(h, bob, [`${MOOD}+notify`]);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1", { "pubsub#max_items": "5" }));
    await ask(alice, publishXml(MOOD, mood("sad"), "m2", { "pubsub#max_items": "5" }));
    bob.received();
    const retract = (id: string, notify = "") =>
      `<iq type='set' id='r'><pubsub xmlns='${PUBSUB}'><retract node='${MOOD}'${notify}><item id='${id}'/></retract></pubsub></iq>`;

    expect((await ask(alice, retract("m1", " notify='true'"))).attrs.type).toBe("result");
    const [note] = events(bob.received(), MOOD);
    expect(note!.attrs).toMatchObject({ type: "headline", from: ALICE, to: bob.jid });
    expect(note!.getChild("event", EVENT)!.getChild("items")!.getChild("retract")!.attrs.id).toBe("m1");
    expect((await h.store.getPepItems(ALICE, MOOD)).map((i) => i.id)).toEqual(["m2"]);

    expect((await ask(alice, retract("m2"))).attrs.type).toBe("result");
    expect(events(bob.received(), MOOD)).toEqual([]);
    expect(await h.store.getPepItems(ALICE, MOOD)).toEqual([]);

    expect(conditionOf(await ask(alice, retract("m2")))).toBe("item-not-found");
    await ask(alice, publishXml(MOOD, mood("happy"), "m3"));
    const forged = await ask(bob, retract("m3").replace("id='r'", `id='r' to='${ALICE}'`));
    expect(conditionOf(forged)).toBe("forbidden");
    expect((await h.store.getPepItems(ALICE, MOOD)).map((i) => i.id)).toEqual(["m3"]);
  });

  it("deletes a node for its owner, notifying it", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await onlineWithCaps(h, bob, [`${MOOD}+notify`]);
    await ask(alice, publishXml(MOOD, mood("happy"), "m1"));
    bob.received();
    const del = (to = "") => `<iq type='set' id='del'${to}><pubsub xmlns='${OWNER}'><delete node='${MOOD}'/></pubsub></iq>`;

    expect(conditionOf(await ask(bob, del(` to='${ALICE}'`)))).toBe("forbidden");
    expect(await h.store.getPepNode(ALICE, MOOD)).not.toBeNull();

    expect((await ask(alice, del())).attrs.type).toBe("result");
    const [note] = bob.received().filter((s) => s.getChild("event", EVENT));
    expect(note!.attrs).toMatchObject({ type: "headline", from: ALICE, to: bob.jid });
    expect(note!.getChild("event", EVENT)!.getChild("delete")!.attrs.node).toBe(MOOD);
    expect(await h.store.getPepNode(ALICE, MOOD)).toBeNull();
    const items = await ask(bob, `<iq type='get' id='i' to='${ALICE}'><pubsub xmlns='${PUBSUB}'><items node='${MOOD}'/></pubsub></iq>`);
    expect(conditionOf(items)).toBe("item-not-found");
    expect(conditionOf(await ask(alice, del()))).toBe("item-not-found");
  });

  it("creates nodes, and answers what it does not support with feature-not-implemented", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    const set = (inner: string, ns = PUBSUB) => `<iq type='set' id='x'><pubsub xmlns='${ns}'>${inner}</pubsub></iq>`;
    const created = await ask(
      alice,
      set(`<create node='urn:example:made'/><configure><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='pubsub#access_model'><value>open</value></field></x></configure>`),
    );
    expect(created.attrs.type).toBe("result");
    expect((await h.store.getPepNode(ALICE, "urn:example:made"))!.config["pubsub#access_model"]).toBe("open");
    expect(conditionOf(await ask(alice, set("<create node='urn:example:made'/>")))).toBe("conflict");

    const subscribe = await ask(alice, set(`<subscribe node='${MOOD}' jid='${ALICE}'/>`));
    expect(conditionOf(subscribe)).toBe("feature-not-implemented");
    expect(subscribe.getChild("error")!.getChild("unsupported", ERRORS)!.attrs.feature).toBe("subscribe");
    for (const inner of ["<constructor node='n'/>", "<__proto__ node='n'/>", "<purge node='n'/>"]) {
      expect(conditionOf(await ask(alice, set(inner, inner.includes("purge") ? OWNER : PUBSUB)))).toBe("feature-not-implemented");
    }
    expect(pubsubError(await ask(alice, set("<publish><item/></publish>")))).toBe("nodeid-required");
    expect(pubsubError(await ask(alice, set(`<publish node='${MOOD}'><item id='1'/></publish>`)))).toBe("payload-required");
    // Fields it does not know are ignored, whatever their names.
    const oddNames = Object.fromEntries([["constructor", "x"], ["__proto__", "y"], ["pubsub#title", "Mood"]]);
    const odd = await ask(alice, publishXml(MOOD, mood("happy"), "1", oddNames));
    expect(odd.attrs.type).toBe("result");
    expect(Object.keys((await h.store.getPepNode(ALICE, MOOD))!.config).sort()).toEqual([
      "pubsub#access_model",
      "pubsub#max_items",
      "pubsub#persist_items",
      "pubsub#send_last_published_item",
    ]);
  });

  it("shows and changes a node's configuration", async () => {
    h = await Harness.create(["alice", "eve"]);
    const alice = await h.connect(`${ALICE}/a`);
    const eve = await h.connect(`eve@${DOMAIN}/e`);
    for (let n = 1; n <= 3; n++) await ask(alice, publishXml(MOOD, mood("happy"), `m${n}`, { "pubsub#max_items": "3" }));
    const form = async () => {
      const answer = await ask(alice, `<iq type='get' id='c'><pubsub xmlns='${OWNER}'><configure node='${MOOD}'/></pubsub></iq>`);
      const x = answer.getChild("pubsub", OWNER)!.getChild("configure")!.getChild("x", "jabber:x:data")!;
      return Object.fromEntries(x.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value")]));
    };
    expect(await form()).toMatchObject({
      FORM_TYPE: `${PUBSUB}#node_config`,
      "pubsub#access_model": "presence",
      "pubsub#max_items": "3",
    });
    const set = await ask(
      alice,
      `<iq type='set' id='s'><pubsub xmlns='${OWNER}'><configure node='${MOOD}'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>` +
        `<field var='pubsub#access_model'><value>open</value></field>` +
        `<field var='pubsub#max_items'><value>2</value></field>` +
        `</x></configure></pubsub></iq>`,
    );
    expect(set.attrs.type).toBe("result");
    expect(await form()).toMatchObject({ "pubsub#access_model": "open", "pubsub#max_items": "2" });
    // Now open, and trimmed to two.
    const items = await ask(eve, `<iq type='get' id='i' to='${ALICE}'><pubsub xmlns='${PUBSUB}'><items node='${MOOD}'/></pubsub></iq>`);
    expect(itemsOf(items).map((i) => i.attrs.id)).toEqual(["m2", "m3"]);
    const foreign = await ask(eve, `<iq type='get' id='c' to='${ALICE}'><pubsub xmlns='${OWNER}'><configure node='${MOOD}'/></pubsub></iq>`);
    expect(conditionOf(foreign)).toBe("forbidden");
  });
});

describe("PEP on a real farm with xmpp.js clients, owner and contact on different sms", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  // Users that rendezvous hashing puts on each sm.
  const names = Array.from({ length: 40 }, (_, i) => `p${i + 1}`);
  const onSm = (sm: string, skip = 0) => names.filter((n) => rendezvousOwner(["sm-1", "sm-2"], `${n}@localhost`) === sm)[skip]!;
  const owner = onSm("sm-1");
  const contact = onSm("sm-2");
  const later = onSm("sm-2", 1);
  const ownerJid = `${owner}@localhost`;
  const features = [`${MOOD}+notify`];

  const login = async (username: string, c2s: number, answerDisco: boolean) => {
    const c = await connectClient({ port: farm.c2sPorts[c2s]!.port, username, password: "pw", resource: "r" });
    clients.push(c);
    if (answerDisco) answerCaps(c, features);
    return c;
  };
  const publish = (c: TestClient, id: string, m: string) =>
    c.xmpp.iqCaller.set(xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: MOOD }, xml("item", { id }, xml("mood", { xmlns: MOOD }, xml(m))))));
  const isEvent = (id: string) => (s: Element) =>
    s.is("message") && s.attrs.from === ownerJid && s.getChild("event", EVENT)?.getChild("items")?.getChild("item")?.attrs.id === id;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, smCount: 2 });
    await farm.start();
    await farm.addUsers("p", 40, "pw", 64);
    const store = await openStore(`sqlite:${path.join(farm.dir, "data", "xfarm.db")}`);
    try {
      for (const c of [contact, later]) {
        await store.putRosterItem(ownerJid, rosterItem(`${c}@localhost`, { subscription: "both" }));
        await store.putRosterItem(`${c}@localhost`, rosterItem(ownerJid, { subscription: "both" }));
      }
    } finally {
      await store.close();
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("sends the last item to a contact that comes online with +notify, then each new item", async () => {
    const alice = await login(owner, 0, false);
    await alice.xmpp.send(xml("presence"));
    const published = await publish(alice, "first", "happy");
    expect(published.getChild("publish")?.getChild("item")?.attrs.id).toBe("first");

    const bob = await login(contact, 1, true);
    await bob.xmpp.send(xml("presence", {}, capsOf(features)));
    // alice's sm (sm-1) asked bob's client (on sm-2) for its features, and sent the last item.
    const last = await bob.next(isEvent("first"));
    expect(last.attrs).toMatchObject({ type: "headline", to: `${contact}@localhost/r` });
    expect(last.getChild("event", EVENT)!.getChild("items")!.getChild("item")!.getChild("mood", MOOD)!.getChild("happy")).toBeTruthy();

    await publish(alice, "second", "excited");
    await bob.next(isEvent("second"));
    await alice.next(isEvent("second"));

    const items = await bob.xmpp.iqCaller.get(xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: MOOD })), ownerJid);
    expect(items.getChild("items")!.getChildren("item").map((i: Element) => i.attrs.id)).toEqual(["second"]);

    // Another client of the same software: its features come from the sm's cache.
    const carol = await login(later, 0, false);
    await carol.xmpp.send(xml("presence", {}, capsOf(features)));
    await carol.next(isEvent("second"));
  });
});
