// RFC 6121 §8.5 message delivery and XEP-0160 offline storage.
import { parse } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp } from "../lib/link/session-payload.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const chat = (to: string, body = "hi", id = "m1") =>
  `<message to='${to}' type='chat' id='${id}'><body>${body}</body></message>`;

describe("sm messages", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function online(jid: string, priority?: number): Promise<Client> {
    const c = await h.connect(jid);
    await c.online(priority);
    return c;
  }

  it("delivers to the highest non-negative priority resources of a bare JID", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    const high = await online(`bob@${DOMAIN}/high`, 5);
    const low = await online(`bob@${DOMAIN}/low`, 1);
    const negative = await online(`bob@${DOMAIN}/neg`, -1);
    for (const c of [high, low, negative]) c.received();

    await alice.send(chat(`bob@${DOMAIN}`));
    const got = high.received();
    expect(got).toHaveLength(1);
    expect(got[0]!.attrs).toMatchObject({ from: alice.jid, to: `bob@${DOMAIN}`, id: "m1" });
    expect(got[0]!.getChildText("body")).toBe("hi");
    expect(low.received()).toEqual([]);
    expect(negative.received()).toEqual([]);

    // A tie at the top: every tied resource gets it.
    await low.send("<presence><priority>5</priority></presence>");
    for (const c of [high, low, negative]) c.received();
    await alice.send(chat(`bob@${DOMAIN}`, "both", "m2"));
    expect(high.received().map((m) => m.attrs.id)).toEqual(["m2"]);
    expect(low.received().map((m) => m.attrs.id)).toEqual(["m2"]);
    expect(negative.received()).toEqual([]);

    // Headlines go to every non-negative resource.
    await alice.send(`<message to='bob@${DOMAIN}' type='headline'><body>news</body></message>`);
    expect(high.received()).toHaveLength(1);
    expect(low.received()).toHaveLength(1);
    expect(negative.received()).toEqual([]);
  });

  it("delivers to a full JID, and to the bare JID's resources when that resource is gone", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    const one = await online(`bob@${DOMAIN}/one`, 10);
    const two = await online(`bob@${DOMAIN}/two`, 0);
    for (const c of [one, two]) c.received();

    await alice.send(chat(two.jid));
    expect(two.received().map((m) => m.attrs.to)).toEqual([two.jid]);
    expect(one.received()).toEqual([]);

    await alice.send(chat(`bob@${DOMAIN}/gone`, "fallback", "m2"));
    expect(one.received().map((m) => m.attrs.id)).toEqual(["m2"]);
    expect(two.received()).toEqual([]);

    // groupchat to a gone resource is an error.
    await alice.send(`<message to='bob@${DOMAIN}/gone' type='groupchat' id='g'><body>x</body></message>`);
    const [error] = alice.received();
    expect(error!.attrs).toMatchObject({ type: "error", id: "g", from: `bob@${DOMAIN}/gone`, to: alice.jid });
    expect(conditionOf(error!)).toBe("service-unavailable");
  });

  it("passes a client's stanza on as the very bytes it sent, unless a hook changed it", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    const bob = await online(`bob@${DOMAIN}/b`);
    bob.frames();
    // Not archived (XEP-0334 no-store): nothing changes it.
    const bytes = `<message from="${alice.jid}" to='bob@${DOMAIN}/b'  type="chat"><body>&lt;3 &amp; more</body><no-store xmlns='urn:xmpp:hints'/></message>`;
    await alice.sendRaw(bytes);
    expect(bob.frames().map((f) => f.xml.toString())).toEqual([bytes]);
    // Archived: delivered as its element, with mod-mam's XEP-0359 stanza-id.
    await alice.sendRaw(`<message from="${alice.jid}" to='bob@${DOMAIN}/b'  type="chat"><body>&lt;3 &amp; more</body></message>`);
    const [changed] = bob.received();
    expect(changed!.getChildText("body")).toBe("<3 & more");
    expect(changed!.getChild("stanza-id", "urn:xmpp:sid:0")!.attrs.by).toBe(`bob@${DOMAIN}`);
  });

  it("stores messages for an offline user and delivers them with a delay at initial presence", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    await alice.send(chat(`bob@${DOMAIN}`, "first", "m1"));
    await alice.send(chat(`bob@${DOMAIN}/phone`, "second", "m2"));
    await alice.send(`<message to='bob@${DOMAIN}' type='headline'><body>dropped</body></message>`);
    expect(alice.received()).toEqual([]); // no errors: stored
    expect(await h.store.countOffline(`bob@${DOMAIN}`)).toBe(2);

    // A connected but not yet available session does not take them.
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await alice.send(chat(`bob@${DOMAIN}`, "third", "m3"));
    expect(bob.received()).toEqual([]);
    expect(await h.store.countOffline(`bob@${DOMAIN}`)).toBe(3);

    await bob.send("<presence/>");
    const frames = bob.frames().filter((f) => f.op === SessionOp.Deliver && f.meta.confirm !== undefined);
    const got = frames.map((f) => parse(f.xml.toString()));
    expect(got.map((m) => m.getChildText("body"))).toEqual(["first", "second", "third"]);
    for (const m of got) {
      expect(m.attrs.from).toBe(alice.jid);
      const delay = m.getChild("delay", "urn:xmpp:delay")!;
      expect(delay.attrs.from).toBe(DOMAIN);
      expect(Date.now() - Date.parse(delay.attrs.stamp)).toBeLessThan(60_000);
    }
    // Kept until the c2s reports them delivered.
    expect(await h.store.countOffline(`bob@${DOMAIN}`)).toBe(3);
    const last = frames.at(-1)!.meta as { confirm: number; last?: boolean };
    expect(last.last).toBe(true);
    await bob.written(last.confirm);
    expect(await h.store.countOffline(`bob@${DOMAIN}`)).toBe(0);
  });

  it("keeps offline messages for a resource with negative priority", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    await alice.send(chat(`bob@${DOMAIN}`));
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    expect((await bob.online(-5)).filter((s) => s.name === "message")).toEqual([]);
    expect(await h.store.countOffline(`bob@${DOMAIN}`)).toBe(1);
  });

  it("bounces messages for unknown users, other domains and groupchat to a bare JID", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    const cases: [string, string, string][] = [
      [chat(`nobody@${DOMAIN}`), `nobody@${DOMAIN}`, "service-unavailable"],
      [chat(`nobody@${DOMAIN}/r`), `nobody@${DOMAIN}/r`, "service-unavailable"],
      [chat("someone@elsewhere.org"), "someone@elsewhere.org", "remote-server-not-found"],
      [`<message to='bob@${DOMAIN}' type='groupchat' id='m1'/>`, `bob@${DOMAIN}`, "service-unavailable"],
    ];
    for (const [xml, to, condition] of cases) {
      await alice.send(xml);
      const [error, ...rest] = alice.received();
      expect(rest).toEqual([]);
      expect(error!.attrs).toMatchObject({ type: "error", id: "m1", from: to, to: alice.jid });
      expect(conditionOf(error!)).toBe(condition);
    }
    // Error stanzas never cause errors.
    await alice.send(`<message to='nobody@${DOMAIN}' type='error' id='e'/>`);
    expect(alice.received()).toEqual([]);
  });
});
