// `xfarm user del` on a running farm, seen from the deleted user's contacts:
// each of the user's resources goes unavailable for them, whichever sm holds
// them, and their subscriptions to and from the user are cancelled (roster
// items left with subscription none), as ejabberd and Prosody do.
import type { Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rendezvousOwner } from "../lib/link/member.js";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("xfarm user del on a farm with two session managers", () => {
  let farm: Farm;
  // alice on sm-1 with a resource on each front end; bob (mutual contact) on
  // sm-2; carol (sees alice, alice does not see her) on sm-1 beside alice.
  let a1: TestClient;
  let a2: TestClient;
  let b: TestClient;
  let c: TestClient;
  const names = Array.from({ length: 50 }, (_, i) => `u${i + 1}`);
  const onSm = (sm: string) => names.filter((n) => rendezvousOwner(["sm-1", "sm-2"], `${n}@localhost`) === sm);
  const [alice, carol] = onSm("sm-1") as [string, string];
  const bob = onSm("sm-2")[0]!;
  const aliceJid = `${alice}@localhost`;

  const presence = (type: string | undefined, from: string) => (s: Element) => s.is("presence") && s.attrs.type === type && s.attrs.from === from;
  /** A roster push of alice's item with this subscription and no request pending. */
  const push = (subscription: string) => (s: Element) => {
    const item = s.is("iq") && s.attrs.type === "set" ? s.getChild("query", "jabber:iq:roster")?.getChild("item") : undefined;
    return item?.attrs.jid === aliceJid && item.attrs.subscription === subscription && item.attrs.ask === undefined;
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, smCount: 2 });
    await farm.start();
    await farm.addUsers("u", 50, "pw", 64);
    const login = (username: string, resource: string, front: number) =>
      connectClient({ port: farm.c2sPorts[front]!.port, username, password: "pw", resource });
    [a1, a2, b, c] = await Promise.all([login(alice, "a1", 0), login(alice, "a2", 1), login(bob, "b", 1), login(carol, "c", 0)]);
    for (const client of [a1, a2, b, c]) {
      await client.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      await client.xmpp.send(xml("presence"));
    }
    // alice and bob subscribe to each other; carol to alice only.
    await a1.xmpp.send(xml("presence", { to: `${bob}@localhost`, type: "subscribe" }));
    await b.next(presence("subscribe", aliceJid));
    await b.xmpp.send(xml("presence", { to: aliceJid, type: "subscribed" }));
    await b.xmpp.send(xml("presence", { to: aliceJid, type: "subscribe" }));
    await c.xmpp.send(xml("presence", { to: aliceJid, type: "subscribe" }));
    await a1.next(presence("subscribe", `${bob}@localhost`));
    await a1.xmpp.send(xml("presence", { to: `${bob}@localhost`, type: "subscribed" }));
    await a1.next(presence("subscribe", `${carol}@localhost`));
    await a1.xmpp.send(xml("presence", { to: `${carol}@localhost`, type: "subscribed" }));
    // alice's presence follows her approval, so the subscriptions are in place once it arrives.
    for (const contact of [b, c]) {
      await contact.next(presence(undefined, `${aliceJid}/a1`));
      await contact.next(presence(undefined, `${aliceJid}/a2`));
    }
  }, 60_000);

  afterAll(async () => {
    for (const client of [a1, a2, b, c]) await client?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("tells each contact that every resource went unavailable, then cancels their subscriptions", async () => {
    // Everything bob and carol receive from now on, in order.
    const seen = new Map<TestClient, Element[]>([[b, []], [c, []]]);
    for (const [client, list] of seen) client.xmpp.on("stanza", (s: Element) => list.push(s));
    const closed = [a1, a2].map((a) => new Promise<{ condition?: string }>((resolve) => a.xmpp.on("error", (e) => resolve(e as { condition?: string }))));

    const r = await farm.cli("user", "del", aliceJid);
    expect(r).toMatchObject({ code: 0, stdout: `deleted ${aliceJid}\nits sessions on the running farm were ended and its contacts told\n` });
    for (const e of await Promise.all(closed)) expect(e.condition).toBe("not-authorized");

    // bob, on the other sm, shared a subscription both ways: both directions are cancelled.
    const bobGot = await Promise.all([
      b.next(presence("unavailable", `${aliceJid}/a1`)),
      b.next(presence("unavailable", `${aliceJid}/a2`)),
      b.next(presence("unsubscribe", aliceJid)),
      b.next(presence("unsubscribed", aliceJid)),
      b.next(push("none")),
    ]);
    // carol, on alice's sm, saw alice without being seen: only that direction is cancelled.
    const carolGot = await Promise.all([
      c.next(presence("unavailable", `${aliceJid}/a1`)),
      c.next(presence("unavailable", `${aliceJid}/a2`)),
      c.next(presence("unsubscribed", aliceJid)),
      c.next(push("none")),
    ]);
    // The unavailable presence came first: the sessions ended while alice's roster still named her contacts.
    for (const [client, got] of [[b, bobGot], [c, carolGot]] as const) {
      const at = got.map((s) => seen.get(client)!.indexOf(s));
      expect(Math.max(at[0]!, at[1]!)).toBeLessThan(Math.min(...at.slice(2)));
    }
    expect(c.stanzas.filter(presence("unsubscribe", aliceJid))).toEqual([]);

    // Their rosters keep alice with no subscription; alice herself is gone.
    for (const contact of [b, c]) {
      const roster = await contact.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      expect(roster.getChildren("item").find((i) => i.attrs.jid === aliceJid)?.attrs).toMatchObject({ subscription: "none" });
    }
    expect((await farm.cli("user", "list")).stdout.split("\n")).not.toContain(aliceJid);
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username: alice, password: "pw" })).rejects.toMatchObject({ condition: "not-authorized" });
  });
});
