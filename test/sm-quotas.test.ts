// What one account may store and grow in the sm (sm/limits.ts), each limit
// at its edge: roster items (a user's own additions, and requests from
// strangers), private XML, PEP nodes, items and item size, directed
// presence targets, the stanzas waiting for one account, and an answer
// too large for a link frame.
import { parse, type Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { rosterItem } from "./harness/roster-item.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const ROSTER = "jabber:iq:roster";
const PRIVATE = "jabber:iq:private";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const OWNER = `${PUBSUB}#owner`;
const ERRORS = `${PUBSUB}#errors`;
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const ALICE = `alice@${DOMAIN}`;

/** Sends an iq and returns its one answer. */
async function ask(client: Client, xml: string): Promise<Element> {
  const answers = (await client.request(xml)).filter((s) => s.name === "iq" && (s.attrs.type === "result" || s.attrs.type === "error"));
  expect(answers).toHaveLength(1);
  return answers[0]!;
}

function textOf(error: Element): string | undefined {
  return error.getChild("error")?.getChildText("text", STANZAS) ?? undefined;
}

const rosterSet = (jid: string, name = "") =>
  `<iq type='set' id='add'><query xmlns='${ROSTER}'><item jid='${jid}'${name ? ` name='${name}'` : ""}/></query></iq>`;
const privateSet = (inner: string) => `<iq type='set' id='p'><query xmlns='${PRIVATE}'>${inner}</query></iq>`;
const publish = (node: string, id: string, payload = `<note xmlns='urn:example:note'>${id}</note>`) =>
  `<iq type='set' id='pub'><pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${id}'>${payload}</item></publish></pubsub></iq>`;
const configure = (node: string, maxItems: string) =>
  `<iq type='set' id='cfg'><pubsub xmlns='${OWNER}'><configure node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
  `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>` +
  `<field var='pubsub#max_items'><value>${maxItems}</value></field></x></configure></pubsub></iq>`;

describe("sm quotas", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("refuses a new roster item at sm.max_roster_items with policy-violation, and still changes and removes items", async () => {
    h = await Harness.create(["alice"], { limits: { rosterItems: 3 } });
    const alice = await h.connect(`${ALICE}/a`);
    for (const c of ["b", "c", "d"]) expect((await ask(alice, rosterSet(`${c}@${DOMAIN}`))).attrs.type).toBe("result");
    const full = await ask(alice, rosterSet(`e@${DOMAIN}`));
    expect(full.attrs).toMatchObject({ type: "error", id: "add" });
    expect(conditionOf(full)).toBe("policy-violation");
    expect(full.getChild("error")!.attrs.type).toBe("modify");
    expect(textOf(full)).toBe("the roster is full (at most 3 items)");
    expect(await h.store.getRosterItem(ALICE, `e@${DOMAIN}`)).toBeNull();
    // An item already there is no new item.
    expect((await ask(alice, rosterSet(`b@${DOMAIN}`, "Bea"))).attrs.type).toBe("result");
    expect((await ask(alice, `<iq type='set' id='rm'><query xmlns='${ROSTER}'><item jid='c@${DOMAIN}' subscription='remove'/></query></iq>`)).attrs.type).toBe("result");
    expect((await ask(alice, rosterSet(`e@${DOMAIN}`))).attrs.type).toBe("result");
    expect(await h.store.countRoster(ALICE)).toBe(3);
  });

  it("counts pending requests: at the limit a stranger's request is answered resource-constraint and the user's own policy-violation", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"], { limits: { rosterItems: 2 } });
    await h.rosterItem("alice", "bob", { subscription: "both" });
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    const carol = await h.connect(`carol@${DOMAIN}/c`);
    const dave = await h.connect(`dave@${DOMAIN}/d`);
    await dave.online(); // the error comes back to dave's bare JID, for his available resources

    await carol.send(`<presence type='subscribe' to='${ALICE}'/>`);
    expect(alice.received().map((s) => [s.name, s.attrs.type, s.attrs.from])).toEqual([["presence", "subscribe", `carol@${DOMAIN}`]]);
    expect((await h.store.getRosterItem(ALICE, `carol@${DOMAIN}`))!.pendingIn).toBe(true);
    carol.received();

    // A third record would pass the limit: dave is told, alice sees nothing, nothing is stored.
    await dave.send(`<presence type='subscribe' to='${ALICE}'/>`);
    const [bounce, ...rest] = dave.received().filter((s) => s.name === "presence");
    expect(rest).toEqual([]);
    expect(bounce!.attrs).toMatchObject({ type: "error", from: ALICE });
    expect(conditionOf(bounce!)).toBe("resource-constraint");
    expect(textOf(bounce!)).toBe("the contact's roster is full");
    expect(alice.received()).toEqual([]);
    expect(await h.store.getRosterItem(ALICE, `dave@${DOMAIN}`)).toBeNull();

    // Asking carol back grows nothing: her record is there.
    await alice.send(`<presence type='subscribed' to='carol@${DOMAIN}'/>`);
    expect((await h.store.getRosterItem(ALICE, `carol@${DOMAIN}`))!.subscription).toBe("from");
    alice.received();
    // A request of alice's own to a new contact is refused to her and goes nowhere.
    await alice.send(`<presence type='subscribe' to='dave@${DOMAIN}'/>`);
    const [own] = alice.received();
    expect(own!.attrs).toMatchObject({ type: "error", from: `dave@${DOMAIN}` });
    expect(conditionOf(own!)).toBe("policy-violation");
    expect(dave.received()).toEqual([]);
  });

  it("answers a roster too large for a link frame with resource-constraint, never sending the frame", async () => {
    h = await Harness.create(["alice"], { maxFrame: 96 * 1024 });
    for (let i = 0; i < 2000; i++) await h.store.putRosterItem(ALICE, rosterItem(`contact-${i}@${DOMAIN}`, { name: `Contact number ${i}` }));
    const alice = await h.connect(`${ALICE}/a`);
    const answer = await ask(alice, `<iq type='get' id='r'><query xmlns='${ROSTER}'/></iq>`);
    expect(answer.attrs).toMatchObject({ type: "error", id: "r" });
    expect(conditionOf(answer)).toBe("resource-constraint");
    expect(textOf(answer)).toMatch(/^the answer \(\d+ bytes\) is larger than this server sends at once \(32768 bytes\)$/);
    expect(h.port.refused).toHaveLength(1);
    expect(h.port.refused[0]).toBeGreaterThan(96 * 1024);
    // The session goes on.
    expect((await ask(alice, `<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type).toBe("result");
  });

  it("bounds private XML by element and by account", async () => {
    h = await Harness.create(["alice"], { limits: { privateItemBytes: 1000, privateBytes: 2500 } });
    const alice = await h.connect(`${ALICE}/a`);
    const element = (ns: string, bytes: number) => {
      const head = `<data xmlns='${ns}'>`;
      return `${head}${"x".repeat(bytes - head.length - "</data>".length)}</data>`;
    };
    const big = await ask(alice, privateSet(element("urn:example:a", 1001)));
    expect(conditionOf(big)).toBe("not-acceptable");
    expect(textOf(big)).toBe("an element may hold at most 1000 bytes");
    for (const ns of ["urn:example:a", "urn:example:b"]) expect((await ask(alice, privateSet(element(ns, 1000)))).attrs.type).toBe("result");
    const over = await ask(alice, privateSet(element("urn:example:c", 600)));
    expect(conditionOf(over)).toBe("policy-violation");
    expect(textOf(over)).toBe("private storage holds at most 2500 bytes per account");
    // Nothing of a refused set is stored, even what would have fitted.
    const both = await ask(alice, privateSet(element("urn:example:d", 100) + element("urn:example:c", 600)));
    expect(conditionOf(both)).toBe("policy-violation");
    expect((await h.store.listPrivate(ALICE)).map((p) => p.key.namespace)).toEqual(["urn:example:a", "urn:example:b"]);
    // Replacing an element counts its new size, not both.
    expect((await ask(alice, privateSet(element("urn:example:a", 500) + element("urn:example:c", 900)))).attrs.type).toBe("result");
    expect((await h.store.privateSizes(ALICE)).map((p) => p.bytes)).toEqual([500, 1000, 900]);
  });

  it("bounds PEP item size, nodes per account and items per node", async () => {
    h = await Harness.create(["alice"], { limits: { pepItemBytes: 1000, pepNodes: 2, pepItems: 3 } });
    const alice = await h.connect(`${ALICE}/a`);
    const big = await ask(alice, publish("n1", "big", `<note xmlns='urn:example:note'>${"x".repeat(1000)}</note>`));
    expect(conditionOf(big)).toBe("not-acceptable");
    expect(big.getChild("error")!.getChildElements().find((c) => c.attrs.xmlns === ERRORS)?.name).toBe("payload-too-big");
    expect(await h.store.listPepNodes(ALICE)).toEqual([]);

    for (const node of ["n1", "n2"]) expect((await ask(alice, publish(node, "i1"))).attrs.type).toBe("result");
    const third = await ask(alice, publish("n3", "i1"));
    expect(conditionOf(third)).toBe("policy-violation");
    expect(textOf(third)).toBe("at most 2 PEP nodes per account");
    const created = await ask(alice, `<iq type='set' id='c'><pubsub xmlns='${PUBSUB}'><create node='n3'/></pubsub></iq>`);
    expect(conditionOf(created)).toBe("policy-violation");
    expect((await h.store.listPepNodes(ALICE)).map((n) => n.node)).toEqual(["n1", "n2"]);

    // max_items may not pass sm.max_pep_items; "max" means it.
    expect(conditionOf(await ask(alice, configure("n1", "4")))).toBe("not-acceptable");
    expect((await ask(alice, configure("n1", "max"))).attrs.type).toBe("result");
    for (const id of ["i2", "i3", "i4", "i5"]) expect((await ask(alice, publish("n1", id))).attrs.type).toBe("result");
    expect((await h.store.getPepItems(ALICE, "n1")).map((i) => i.id)).toEqual(["i3", "i4", "i5"]);
  });

  it("refuses directed presence to more JIDs than sm.max_directed_presences, and forgets those sent unavailable", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { directedPresences: 2 } });
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await alice.send(`<presence to='bob@${DOMAIN}/b'/>`);
    await alice.send(`<presence to='bob@${DOMAIN}/other'/>`);
    await alice.send(`<presence to='bob@${DOMAIN}/b'/>`); // the same target again
    expect(bob.received().map((p) => p.attrs.type)).toEqual([undefined, undefined]);
    await alice.send(`<presence to='bob@${DOMAIN}/third'/>`);
    const [refused] = alice.received();
    expect(refused!.attrs).toMatchObject({ type: "error", from: `bob@${DOMAIN}/third` });
    expect(conditionOf(refused!)).toBe("policy-violation");
    expect(textOf(refused!)).toBe("presence may be directed to at most 2 JIDs at once");

    await alice.send(`<presence type='unavailable' to='bob@${DOMAIN}/other'/>`);
    await alice.send(`<presence to='bob@${DOMAIN}/third'/>`);
    expect(alice.received()).toEqual([]);
    bob.received();
    // At its end, the session's unavailable presence goes to the targets it still has.
    await alice.end();
    expect(bob.received().map((p) => [p.attrs.type, p.attrs.to])).toEqual([["unavailable", bob.jid]]);
  });

  it("bounds the stanzas waiting for one account, answering the rest resource-constraint, while another account's flow on", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { queueStanzas: 5 } });
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const ping = (client: Client, id: string) =>
      encodeSessionPayload(SessionOp.Stanza, { sid: client.sid }, `<iq type='get' id='${id}' from='${client.jid}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    // One burst, as a link delivers many frames in one read: nothing runs before all are offered.
    for (let i = 0; i < 20; i++) {
      h.sm.onRoute("c2s-1", ALICE, ping(alice, `a${i}`));
      if (i % 5 === 0) h.sm.onRoute("c2s-1", `bob@${DOMAIN}`, ping(bob, `b${i}`));
    }
    await h.sm.idle();
    const answers = alice.received().map((s) => [s.attrs.id, s.attrs.type, conditionOf(s)]);
    expect(answers.filter(([, type]) => type === "result").map(([id]) => id)).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    const refused = answers.filter(([, type]) => type === "error");
    expect(refused).toHaveLength(15);
    expect(refused.every(([, , condition]) => condition === "resource-constraint")).toBe(true);
    expect(bob.received().map((s) => [s.attrs.id, s.attrs.type])).toEqual([["b0", "result"], ["b5", "result"], ["b10", "result"], ["b15", "result"]]);
    // Drained: the account takes stanzas again.
    expect((await ask(alice, `<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>`)).attrs.type).toBe("result");
  });

  it("bounds the bytes waiting for one account, and answers a peer sm's stanza through the sender's sm", async () => {
    h = await Harness.create(["alice"], { limits: { queueBytes: 3000 } });
    h.port.owner = (key) => (key.startsWith("remote@") ? "sm-2" : "sm-1");
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    alice.received();
    const message = (i: number) =>
      `<message type='chat' id='m${i}' from='remote@${DOMAIN}/r' to='${ALICE}'><body>${"x".repeat(800)}</body></message>`;
    for (let i = 0; i < 5; i++) h.sm.onRoute("sm-2", ALICE, encodeSessionPayload(SessionOp.Forward, {}, message(i)));
    await h.sm.idle();
    expect(alice.received().map((s) => s.attrs.id)).toEqual(["m0", "m1", "m2"]);
    const bounced = h.port.take((f) => f.to === "sm" && f.key === `remote@${DOMAIN}`).map((f) => parse(f.xml.toString()));
    expect(bounced.map((s) => [s.attrs.id, s.attrs.type, s.attrs.to, conditionOf(s)])).toEqual([
      ["m3", "error", `remote@${DOMAIN}/r`, "resource-constraint"],
      ["m4", "error", `remote@${DOMAIN}/r`, "resource-constraint"],
    ]);
  });
});
