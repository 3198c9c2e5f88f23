// RFC 6121 §3 and §4: subscriptions, initial presence, probes, broadcast,
// directed presence and unavailability.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { DOMAIN, Harness, type Client } from "./sm-harness.js";

const ROSTER = "jabber:iq:roster";

/** The roster pushes among stanzas, as [jid, subscription, ask]. */
function pushes(stanzas: Element[]): (string | undefined)[][] {
  return stanzas
    .filter((s) => s.name === "iq" && s.attrs.type === "set")
    .map((iq) => iq.getChild("query", ROSTER)!.getChild("item")!)
    .map((i) => [i.attrs.jid, i.attrs.subscription, i.attrs.ask]);
}

/** The presences among stanzas, as [type, from]. */
function presences(stanzas: Element[]): (string | undefined)[][] {
  return stanzas.filter((s) => s.name === "presence").map((p) => [p.attrs.type, p.attrs.from]);
}

describe("sm presence", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function online(jid: string, priority?: number): Promise<Client> {
    const c = await h.connect(jid);
    await c.request(`<iq type='get' id='r'><query xmlns='${ROSTER}'/></iq>`);
    await c.online(priority);
    return c;
  }

  it("runs the subscription handshake between two users to both", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    const bob = await online(`bob@${DOMAIN}/b`);
    const A = `alice@${DOMAIN}`;
    const B = `bob@${DOMAIN}`;

    await alice.send(`<presence to='${B}' type='subscribe'/>`);
    expect(pushes(alice.received())).toEqual([[B, "none", "subscribe"]]);
    let got = bob.received();
    expect(presences(got)).toEqual([["subscribe", A]]); // stamped with the bare JID
    expect(pushes(got)).toEqual([]); // a pending request is not in bob's roster

    await bob.send(`<presence to='${A}' type='subscribed'/>`);
    got = bob.received();
    expect(pushes(got)).toEqual([[A, "from", undefined]]);
    got = alice.received();
    expect(pushes(got)).toEqual([[B, "to", undefined]]);
    // alice is told of the approval, then sees bob's presence.
    expect(presences(got)).toEqual([
      ["subscribed", B],
      [undefined, bob.jid],
    ]);

    await bob.send(`<presence to='${A}' type='subscribe'/>`);
    expect(pushes(bob.received())).toEqual([[A, "from", "subscribe"]]);
    expect(presences(alice.received())).toEqual([["subscribe", B]]);
    await alice.send(`<presence to='${B}' type='subscribed'/>`);
    expect(pushes(alice.received())).toEqual([[B, "both", undefined]]);
    got = bob.received();
    expect(pushes(got)).toEqual([[A, "both", undefined]]);
    expect(presences(got)).toEqual([
      ["subscribed", A],
      [undefined, alice.jid],
    ]);

    expect(await h.store.getRosterItem(A, B)).toMatchObject({ subscription: "both", askOut: false, pendingIn: false });
    expect(await h.store.getRosterItem(B, A)).toMatchObject({ subscription: "both", askOut: false, pendingIn: false });

    // Presence updates now flow both ways.
    await alice.send("<presence><show>away</show></presence>");
    const update = bob.received();
    expect(presences(update)).toEqual([[undefined, alice.jid]]);
    expect(update[0]!.getChildText("show")).toBe("away");
  });

  it("keeps a request for an offline user and delivers it at the next initial presence", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`alice@${DOMAIN}/a`);
    await alice.send(`<presence to='bob@${DOMAIN}' type='subscribe'/>`);
    alice.received();
    expect(await h.store.getRosterItem(`bob@${DOMAIN}`, `alice@${DOMAIN}`)).toMatchObject({
      pendingIn: true,
      visible: false,
    });

    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const roster = await bob.request(`<iq type='get' id='r'><query xmlns='${ROSTER}'/></iq>`);
    expect(roster[0]!.getChild("query")!.getChildren("item")).toEqual([]);
    const got = await bob.online();
    expect(presences(got)).toEqual([
      [undefined, bob.jid], // its own, reflected
      ["subscribe", `alice@${DOMAIN}`],
    ]);
    expect(got[1]!.attrs.to).toBe(`bob@${DOMAIN}`);

    // Denying it drops the record and tells alice.
    await bob.send(`<presence to='alice@${DOMAIN}' type='unsubscribed'/>`);
    expect(await h.store.getRosterItem(`bob@${DOMAIN}`, `alice@${DOMAIN}`)).toBeNull();
    const told = alice.received();
    expect(presences(told)).toEqual([["unsubscribed", `bob@${DOMAIN}`]]);
    expect(pushes(told)).toEqual([[`bob@${DOMAIN}`, "none", undefined]]);
  });

  it("auto-approves a subscribe from an existing subscriber and answers unknown users with unsubscribed", async () => {
    h = await Harness.create(["alice", "bob"]);
    // bob already lets alice see him, but alice's roster lost track of it.
    await h.rosterItem("bob", "alice", { subscription: "from" });
    const bob = await online(`bob@${DOMAIN}/b`);
    const alice = await online(`alice@${DOMAIN}/a`);
    await alice.send(`<presence to='bob@${DOMAIN}' type='subscribe'/>`);
    let got = alice.received();
    expect(presences(got)).toEqual([
      ["subscribed", `bob@${DOMAIN}`],
      [undefined, bob.jid],
    ]);
    expect(pushes(got)).toEqual([
      [`bob@${DOMAIN}`, "none", "subscribe"],
      [`bob@${DOMAIN}`, "to", undefined],
    ]);
    expect(bob.received()).toEqual([]); // answered on bob's behalf

    await alice.send(`<presence to='nobody@${DOMAIN}' type='subscribe'/>`);
    got = alice.received();
    expect(presences(got)).toEqual([["unsubscribed", `nobody@${DOMAIN}`]]);
    // The ask is withdrawn from alice's roster accordingly.
    expect(pushes(got)).toEqual([
      [`nobody@${DOMAIN}`, "none", "subscribe"],
      [`nobody@${DOMAIN}`, "none", undefined],
    ]);
  });

  it("answers initial presence with contacts' presence and broadcasts it to subscribers and own resources, the sender first", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"]);
    await h.mutual("alice", "bob");
    await h.rosterItem("alice", "carol", { subscription: "to" }); // alice sees carol; carol does not see alice
    await h.rosterItem("carol", "alice", { subscription: "from" });
    await h.rosterItem("alice", "dave", { subscription: "from" }); // dave sees alice
    await h.rosterItem("dave", "alice", { subscription: "to" });
    const bob = await online(`bob@${DOMAIN}/b`, 3);
    const carol = await online(`carol@${DOMAIN}/c`);
    const dave = await online(`dave@${DOMAIN}/d`);
    const other = await online(`alice@${DOMAIN}/other`);
    for (const c of [bob, carol, dave, other]) c.received();

    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await alice.send("<presence><status>here</status></presence>");
    const got = alice.received();
    // RFC 6121 §4.2.2: the sending resource gets its own presence, before anything else.
    expect(presences(got)[0]).toEqual([undefined, alice.jid]);
    expect(got[0]!.getChildText("status")).toBe("here");
    expect(presences(got).sort()).toEqual(
      [
        [undefined, alice.jid],
        [undefined, bob.jid],
        [undefined, carol.jid],
        [undefined, other.jid],
      ].sort(),
    );
    expect(got.find((p) => p.attrs.from === bob.jid)!.getChildText("priority")).toBe("3");

    for (const seer of [bob, dave, other]) {
      const seen = seer.received();
      expect(presences(seen)).toEqual([[undefined, alice.jid]]);
      expect(seen[0]!.getChildText("status")).toBe("here");
    }
    expect(carol.received()).toEqual([]);
  });

  it("answers a probe for an offline contact with unavailable", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const got = (await alice.online()).filter((s) => s.attrs.from !== alice.jid);
    expect(presences(got)).toEqual([["unavailable", `bob@${DOMAIN}`]]);
    expect(got[0]!.attrs.to).toBe(alice.jid);
  });

  it("sends unavailable to subscribers, own resources and directed recipients when a session ends", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    await h.mutual("alice", "bob");
    const bob = await online(`bob@${DOMAIN}/b`);
    const carol = await online(`carol@${DOMAIN}/c`);
    const alice2 = await online(`alice@${DOMAIN}/two`);
    const alice = await online(`alice@${DOMAIN}/a`);
    await alice.send(`<presence to='${carol.jid}'/>`); // directed: carol is no contact
    expect(presences(carol.received())).toEqual([[undefined, alice.jid]]);
    for (const c of [bob, alice2]) c.received();

    await alice.end();
    for (const c of [bob, carol, alice2]) {
      expect(presences(c.received())).toEqual([["unavailable", alice.jid]]);
    }
  });

  it("broadcasts an explicit unavailable presence and stops probes being answered with the resource", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const bob = await online(`bob@${DOMAIN}/b`);
    const alice = await online(`alice@${DOMAIN}/a`);
    bob.received();
    await alice.send("<presence type='unavailable'><status>gone</status></presence>");
    // Reflected to the sender too, as Prosody and ejabberd do.
    expect(presences(alice.received())).toEqual([["unavailable", alice.jid]]);
    const seen = bob.received();
    expect(presences(seen)).toEqual([["unavailable", alice.jid]]);
    expect(seen[0]!.getChildText("status")).toBe("gone");

    // bob's next resource learns alice is offline.
    const bob2 = await h.connect(`bob@${DOMAIN}/b2`);
    const got = await bob2.online();
    expect(presences(got)).toEqual(
      expect.arrayContaining([
        ["unavailable", `alice@${DOMAIN}`],
        [undefined, bob.jid],
      ]),
    );
  });
});
