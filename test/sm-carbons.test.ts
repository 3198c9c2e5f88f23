// XEP-0280 message carbons in the sm: enabling, and which copies go where.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp } from "../lib/link/session-payload.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const NS = "urn:xmpp:carbons:2";
const chat = (to: string, id: string, extra = "") => `<message to='${to}' type='chat' id='${id}'><body>${id}</body>${extra}</message>`;

/** The message a carbon carries, and which kind of carbon it is. */
function carried(el: Element): { kind: string; message: Element } | undefined {
  const wrap = el.getChild("received", NS) ?? el.getChild("sent", NS);
  const message = wrap?.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message");
  return wrap && message ? { kind: wrap.name, message } : undefined;
}

describe("sm message carbons", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function online(jid: string, opts: { priority?: number; carbons?: boolean } = {}): Promise<Client> {
    const c = await h.connect(jid);
    await c.online(opts.priority);
    if (opts.carbons ?? true) {
      const [result] = await c.request(`<iq type='set' id='on'><enable xmlns='${NS}'/></iq>`);
      expect(result!.attrs).toMatchObject({ type: "result", id: "on", to: c.jid });
    }
    return c;
  }

  it("advertises the feature and answers enable and disable, twice alike", async () => {
    h = await Harness.create(["alice"]);
    const a = await online(`alice@${DOMAIN}/a`, { carbons: false });
    const [info] = await a.request(`<iq type='get' id='d' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
    for (const [id, xml] of [
      ["e1", `<iq type='set' id='e1'><enable xmlns='${NS}'/></iq>`],
      ["e2", `<iq type='set' id='e2' to='alice@${DOMAIN}'><enable xmlns='${NS}'/></iq>`],
      ["d1", `<iq type='set' id='d1'><disable xmlns='${NS}'/></iq>`],
      ["d2", `<iq type='set' id='d2'><disable xmlns='${NS}'/></iq>`],
    ]) {
      const [answer, ...rest] = await a.request(xml!);
      expect(answer!.attrs).toMatchObject({ type: "result", id });
      expect(rest).toEqual([]);
    }
  });

  it("refuses to enable carbons for another account", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`alice@${DOMAIN}/a`, { carbons: false });
    const [answer] = await a.request(`<iq type='set' id='x' to='bob@${DOMAIN}'><enable xmlns='${NS}'/></iq>`);
    expect(answer!.attrs).toMatchObject({ type: "error", id: "x" });
    expect(conditionOf(answer!)).toBe("service-unavailable");
  });

  it("copies a message received on one resource to the others that enabled carbons, from the bare JID", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`bob@${DOMAIN}/b`, { carbons: false });
    const phone = await online(`alice@${DOMAIN}/phone`);
    const laptop = await online(`alice@${DOMAIN}/laptop`);
    const off = await online(`alice@${DOMAIN}/off`, { carbons: false });
    for (const c of [bob, phone, laptop, off]) c.received();

    await bob.send(chat(phone.jid, "m1"));
    expect(phone.received().map((m) => m.attrs.id)).toEqual(["m1"]);
    const [copy, ...more] = laptop.received();
    expect(more).toEqual([]);
    expect(copy!.attrs).toMatchObject({ from: `alice@${DOMAIN}`, to: laptop.jid, type: "chat" });
    const { kind, message } = carried(copy!)!;
    expect(kind).toBe("received");
    expect(message.attrs).toMatchObject({ xmlns: "jabber:client", from: bob.jid, to: phone.jid, id: "m1" });
    expect(message.getChildText("body")).toBe("m1");
    expect(off.received()).toEqual([]);

    // Disabled, no more copies.
    await laptop.request(`<iq type='set' id='d'><disable xmlns='${NS}'/></iq>`);
    await bob.send(chat(phone.jid, "m2"));
    expect(phone.received().map((m) => m.attrs.id)).toEqual(["m2"]);
    expect(laptop.received()).toEqual([]);
  });

  it("copies a message to the bare JID to none of the resources it reached, and to the lower ones", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`bob@${DOMAIN}/b`, { carbons: false });
    const one = await online(`alice@${DOMAIN}/one`, { priority: 5 });
    const two = await online(`alice@${DOMAIN}/two`, { priority: 5 });
    const low = await online(`alice@${DOMAIN}/low`, { priority: 1 });
    for (const c of [bob, one, two, low]) c.received();

    await bob.send(chat(`alice@${DOMAIN}`, "m1"));
    for (const top of [one, two]) expect(top.received().map((m) => [m.attrs.id, carried(m)])).toEqual([["m1", undefined]]);
    const [copy] = low.received();
    expect(carried(copy!)?.kind).toBe("received");
    expect(carried(copy!)?.message.attrs.to).toBe(`alice@${DOMAIN}`);

    // To a resource that is gone: delivered as to the bare JID, copied alike.
    await bob.send(chat(`alice@${DOMAIN}/gone`, "m2"));
    for (const top of [one, two]) expect(top.received().map((m) => m.attrs.id)).toEqual(["m2"]);
    expect(low.received().map((m) => carried(m)?.message.attrs.id)).toEqual(["m2"]);
  });

  it("copies what a resource sends to its other enabled resources, not back to it, whether or not it enabled carbons", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`bob@${DOMAIN}/b`, { carbons: false });
    const phone = await online(`alice@${DOMAIN}/phone`, { carbons: false });
    const laptop = await online(`alice@${DOMAIN}/laptop`);
    for (const c of [bob, phone, laptop]) c.received();

    await phone.send(chat(`bob@${DOMAIN}`, "s1"));
    expect(bob.received().map((m) => m.attrs.id)).toEqual(["s1"]);
    expect(phone.received()).toEqual([]);
    const [copy, ...more] = laptop.received();
    expect(more).toEqual([]);
    expect(copy!.attrs).toMatchObject({ from: `alice@${DOMAIN}`, to: laptop.jid, type: "chat" });
    expect(carried(copy!)?.kind).toBe("sent");
    expect(carried(copy!)?.message.attrs).toMatchObject({ from: phone.jid, to: `bob@${DOMAIN}`, id: "s1" });

    // Normal messages with a body are copied, those without are not.
    await phone.send(`<message to='bob@${DOMAIN}/b' id='n1'><body>x</body></message>`);
    await phone.send(`<message to='bob@${DOMAIN}/b' id='n2'><x xmlns='urn:example'/></message>`);
    expect(bob.received().map((m) => m.attrs.id)).toEqual(["n1", "n2"]);
    expect(laptop.received().map((m) => [m.attrs.type, carried(m)?.message.attrs.id])).toEqual([[undefined, "n1"]]);
  });

  it("makes the sent copy on the sender's sm when the recipient is on another", async () => {
    h = await Harness.create(["alice", "bob"]);
    const phone = await online(`alice@${DOMAIN}/phone`);
    const laptop = await online(`alice@${DOMAIN}/laptop`);
    h.port.owner = (key) => (key === `bob@${DOMAIN}` ? "sm-2" : "sm-1");
    for (const c of [phone, laptop]) c.received();

    await phone.send(chat(`bob@${DOMAIN}`, "s1"));
    expect(h.port.take((f) => f.op === SessionOp.Forward && f.key === `bob@${DOMAIN}`)).toHaveLength(1);
    expect(laptop.received().map((m) => carried(m)?.message.attrs.id)).toEqual(["s1"]);
  });

  it("copies no private, no-copy, groupchat, headline, error or MUC message", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`bob@${DOMAIN}/b`);
    const bob2 = await online(`bob@${DOMAIN}/b2`);
    const phone = await online(`alice@${DOMAIN}/phone`);
    const laptop = await online(`alice@${DOMAIN}/laptop`);
    for (const c of [bob, bob2, phone, laptop]) c.received();

    await bob.send(chat(phone.jid, "p", `<private xmlns='${NS}'/>`));
    await bob.send(chat(phone.jid, "nc", "<no-copy xmlns='urn:xmpp:hints'/>"));
    await bob.send(chat(phone.jid, "muc", "<x xmlns='http://jabber.org/protocol/muc#user'/>"));
    await bob.send(`<message to='${phone.jid}' type='groupchat' id='g'><body>g</body></message>`);
    await bob.send(`<message to='${phone.jid}' type='headline' id='h'><body>h</body></message>`);
    await bob.send(`<message to='${phone.jid}' type='error' id='e'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    expect(phone.received().map((m) => m.attrs.id)).toEqual(["p", "nc", "muc", "g", "h", "e"]);
    expect(laptop.received()).toEqual([]);
    // bob's own other resource saw what he sent: chat, and normal with a body.
    expect(bob2.received().map((m) => carried(m)?.message.attrs.id)).toEqual(["muc"]);

    // Sent likewise: private and no-copy stay with the sender.
    await phone.send(chat(bob.jid, "ps", `<private xmlns='${NS}'/>`));
    await phone.send(chat(bob.jid, "ncs", "<no-copy xmlns='urn:xmpp:hints'/>"));
    expect(bob.received().map((m) => m.attrs.id)).toEqual(["ps", "ncs"]);
    expect(bob2.received()).toEqual([]);
    expect(laptop.received()).toEqual([]);
  });

  it("copies a message between two resources of one account once, as received, to the third", async () => {
    h = await Harness.create(["alice"]);
    const phone = await online(`alice@${DOMAIN}/phone`);
    const laptop = await online(`alice@${DOMAIN}/laptop`);
    const desk = await online(`alice@${DOMAIN}/desk`);
    for (const c of [phone, laptop, desk]) c.received();

    await phone.send(chat(laptop.jid, "own"));
    expect(laptop.received().map((m) => [m.attrs.id, carried(m)])).toEqual([["own", undefined]]);
    expect(phone.received()).toEqual([]);
    expect(desk.received().map((m) => [carried(m)?.kind, carried(m)?.message.attrs.id])).toEqual([["received", "own"]]);
  });
});
