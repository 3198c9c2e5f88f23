// iq handling: unsupported payloads, disco (XEP-0030), ping (XEP-0199),
// version (XEP-0092), entity time (XEP-0202), and iqs between users.
import { afterEach, describe, expect, it } from "vitest";
import { zoneOffset } from "../sm/mod-time.js";
import { DOMAIN, Harness, conditionOf } from "./sm-harness.js";

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

describe("sm iq", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("answers iqs nobody handles with service-unavailable", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    for (const to of [DOMAIN, `alice@${DOMAIN}`, `nobody@${DOMAIN}`, `alice@${DOMAIN}/nowhere`]) {
      const [error, ...rest] = await alice.request(`<iq type='get' id='q' to='${to}'><query xmlns='urn:example:nope'/></iq>`);
      expect(rest).toEqual([]);
      expect(error!.attrs).toMatchObject({ type: "error", id: "q", from: to, to: alice.jid });
      expect(conditionOf(error!)).toBe("service-unavailable");
      expect(error!.getChild("error")!.attrs.type).toBe("cancel");
    }
    const [none] = await alice.request("<iq type='set' id='n'><vcard xmlns='urn:example:nope'/></iq>");
    expect(none!.attrs).toMatchObject({ type: "error", id: "n", to: alice.jid });
    expect(conditionOf(none!)).toBe("service-unavailable");

    const [bad] = await alice.request(`<iq type='get' id='b' to='${DOMAIN}'/>`);
    expect(conditionOf(bad!)).toBe("bad-request");
    // Results nobody waits for are dropped, not answered.
    expect(await alice.request(`<iq type='result' id='r' to='${DOMAIN}'/>`)).toEqual([]);
  });

  it("describes the server with every module's features", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const [info] = await alice.request(`<iq type='get' id='d' to='${DOMAIN}'><query xmlns='${INFO}'/></iq>`);
    expect(info!.attrs).toMatchObject({ type: "result", id: "d", from: DOMAIN, to: alice.jid });
    const query = info!.getChild("query", INFO)!;
    expect(query.getChild("identity")!.attrs).toMatchObject({ category: "server", type: "im" });
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(
      expect.arrayContaining([INFO, ITEMS, "urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:time", "msgoffline"]),
    );
    expect(new Set(features).size).toBe(features.length);

    const [items] = await alice.request(`<iq type='get' id='i' to='${DOMAIN}'><query xmlns='${ITEMS}'/></iq>`);
    expect(items!.attrs.type).toBe("result");
    expect(items!.getChild("query", ITEMS)!.getChildElements()).toEqual([]);

    const [node] = await alice.request(`<iq type='get' id='n' to='${DOMAIN}'><query xmlns='${INFO}' node='x'/></iq>`);
    expect(conditionOf(node!)).toBe("item-not-found");
  });

  it("lists the components linked under the server's domain among its items", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await h.members(["c2s-1", "sm-1", `muc.${DOMAIN}`, "gateway.example.org", `pubsub.${DOMAIN}`]);
    const [items] = await alice.request(`<iq type='get' id='i' to='${DOMAIN}'><query xmlns='${ITEMS}'/></iq>`);
    expect(items!.getChild("query", ITEMS)!.getChildren("item").map((i) => i.attrs)).toEqual([{ jid: `muc.${DOMAIN}` }, { jid: `pubsub.${DOMAIN}` }]);
    // A component that leaves the table leaves the list.
    await h.members(["c2s-1", "sm-1", `pubsub.${DOMAIN}`]);
    const [after] = await alice.request(`<iq type='get' id='j' to='${DOMAIN}'><query xmlns='${ITEMS}'/></iq>`);
    expect(after!.getChild("query", ITEMS)!.getChildren("item").map((i) => i.attrs.jid)).toEqual([`pubsub.${DOMAIN}`]);
  });

  it("describes an account to itself and its subscribers only", async () => {
    h = await Harness.create(["alice", "bob", "eve"]);
    await h.rosterItem("alice", "bob", { subscription: "from" });
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const eve = await h.connect(`eve@${DOMAIN}/e`);
    const ask = `<iq type='get' id='a' to='alice@${DOMAIN}'><query xmlns='${INFO}'/></iq>`;
    for (const asker of [alice, bob]) {
      const [info] = await asker.request(ask);
      expect(info!.attrs).toMatchObject({ type: "result", from: `alice@${DOMAIN}`, to: asker.jid });
      expect(info!.getChild("query", INFO)!.getChild("identity")!.attrs).toMatchObject({
        category: "account",
        type: "registered",
      });
    }
    expect(conditionOf((await eve.request(ask))[0]!)).toBe("service-unavailable");
  });

  it("answers ping and version", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const [pong] = await alice.request(`<iq type='get' id='p' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    expect(pong!.attrs).toMatchObject({ type: "result", id: "p", from: DOMAIN, to: alice.jid });
    const [self] = await alice.request("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    expect(self!.attrs).toMatchObject({ type: "result", id: "p2", to: alice.jid });

    const [version] = await alice.request(`<iq type='get' id='v' to='${DOMAIN}'><query xmlns='jabber:iq:version'/></iq>`);
    const query = version!.getChild("query", "jabber:iq:version")!;
    expect(query.getChildText("name")).toBe("xfarm");
    expect(query.getChildText("version")).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("tells the server's time in UTC and its zone's offset (XEP-0202)", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const before = Date.now();
    const [answer] = await alice.request(`<iq type='get' id='t' to='${DOMAIN}'><time xmlns='urn:xmpp:time'/></iq>`);
    const after = Date.now();
    expect(answer!.attrs).toMatchObject({ type: "result", id: "t", from: DOMAIN, to: alice.jid });
    const time = answer!.getChild("time", "urn:xmpp:time")!;
    const utc = time.getChildText("utc")!;
    expect(utc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Date.parse(utc)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(utc)).toBeLessThanOrEqual(after);
    expect(time.getChildText("tzo")).toBe(zoneOffset(new Date(utc)));
  });

  it("writes a zone's offset as XEP-0082 does", () => {
    const at = (minutesWest: number) => ({ getTimezoneOffset: () => minutesWest }) as Date;
    expect(zoneOffset(at(0))).toBe("+00:00");
    expect(zoneOffset(at(300))).toBe("-05:00");
    expect(zoneOffset(at(-330))).toBe("+05:30");
    expect(zoneOffset(at(-765))).toBe("+12:45");
    expect(zoneOffset(at(570))).toBe("-09:30");
  });

  it("carries iqs between users' full JIDs both ways", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await alice.send(`<iq type='get' id='t' to='${bob.jid}'><time xmlns='urn:xmpp:time'/></iq>`);
    const [asked] = bob.received();
    expect(asked!.attrs).toMatchObject({ type: "get", id: "t", from: alice.jid });
    await bob.send(`<iq type='result' id='t' to='${alice.jid}'><time xmlns='urn:xmpp:time'/></iq>`);
    const [answer] = alice.received();
    expect(answer!.attrs).toMatchObject({ type: "result", id: "t", from: bob.jid });
  });

  it("answers a malformed 'to' with jid-malformed", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const [error] = await alice.request("<iq type='get' id='j' to='a@b@c'><ping xmlns='urn:xmpp:ping'/></iq>");
    expect(conditionOf(error!)).toBe("jid-malformed");
  });
});
