// The whole farm (router, sm, two c2s) as separate processes, driven by
// xmpp.js clients on loopback.
import type { Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("a one-box farm with xmpp.js clients", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const login = async (username: string, c2s: number, resource?: string) => {
    const c = await connectClient({ port: farm.c2sPorts[c2s]!.port, username, password: `${username}-pw`, resource });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    await farm.addAccounts(Object.fromEntries(["alice", "bob", "carol", "dave"].map((u) => [`${u}@localhost`, `${u}-pw`])));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm.stop();
    farm.cleanup();
  });

  it("lets two clients on different c2s subscribe, exchange presence and chat", async () => {
    const alice = await login("alice", 0, "laptop");
    const bob = await login("bob", 1, "phone");
    expect(alice.jid).toBe("alice@localhost/laptop");
    expect(bob.jid).toBe("bob@localhost/phone");
    // Both logged in with SCRAM over STARTTLS, each on its own front end: the mechanism shows in the front end's log only,
    // which the farm reads from the process's output, so a line may come after the client's own answer.
    const authenticated = (user: string) => farm.waitFor((l) => l.msg === "authenticated" && l.user === user, 10_000, 0);
    expect(await authenticated("alice@localhost")).toMatchObject({ proc: "c2s-1", secure: true, mech: "SCRAM-SHA-1" });
    expect(await authenticated("bob@localhost")).toMatchObject({ proc: "c2s-2", secure: true, mech: "SCRAM-SHA-1" });

    await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    await bob.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    await alice.xmpp.send(xml("presence"));
    await bob.xmpp.send(xml("presence"));

    // alice ⇄ bob mutual subscription.
    await alice.xmpp.send(xml("presence", { to: "bob@localhost", type: "subscribe" }));
    await bob.next((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === "alice@localhost");
    await bob.xmpp.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
    await bob.xmpp.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
    await alice.next((s) => s.is("presence") && s.attrs.type === "subscribed" && s.attrs.from === "bob@localhost");
    await alice.next((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === "bob@localhost");
    await alice.xmpp.send(xml("presence", { to: "bob@localhost", type: "subscribed" }));

    // Each now sees the other's available presence.
    await alice.next((s) => s.is("presence") && s.attrs.from === "bob@localhost/phone" && !s.attrs.type);
    await bob.next((s) => s.is("presence") && s.attrs.from === "alice@localhost/laptop" && !s.attrs.type);

    const roster = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    const item = roster.getChild("item");
    expect(item?.attrs).toMatchObject({ jid: "bob@localhost", subscription: "both" });

    // Chat both ways, across the two front ends.
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "m1" }, xml("body", {}, "hi bob")));
    const m1 = await bob.next((s) => s.is("message") && s.attrs.id === "m1");
    expect(m1.attrs.from).toBe("alice@localhost/laptop");
    expect(m1.getChildText("body")).toBe("hi bob");
    await bob.xmpp.send(xml("message", { to: "alice@localhost/laptop", type: "chat", id: "m2" }, xml("body", {}, "hi alice")));
    const m2 = await alice.next((s) => s.is("message") && s.attrs.id === "m2");
    expect(m2.attrs.from).toBe("bob@localhost/phone");
    expect(m2.getChildText("body")).toBe("hi alice");

    // A forged from is overwritten by the server.
    await alice.xmpp.send(xml("message", { to: "bob@localhost", from: "carol@localhost/x", type: "chat", id: "m3" }, xml("body", {}, "forged")));
    const m3 = await bob.next((s) => s.is("message") && s.attrs.id === "m3");
    expect(m3.attrs.from).toBe("alice@localhost/laptop");

    // bob goes away: alice gets his unavailable presence.
    await bob.stop();
    await alice.next((s) => s.is("presence") && s.attrs.from === "bob@localhost/phone" && s.attrs.type === "unavailable");
    await alice.stop();
  });

  it("stores a message for an offline user and delivers it at the next login", async () => {
    const carol = await login("carol", 0);
    await carol.xmpp.send(xml("message", { to: "dave@localhost", type: "chat", id: "off1" }, xml("body", {}, "while you were out")));
    // The message is committed before anything else happens; wait until the sm has it.
    await farm.waitOffline("dave@localhost");
    const dave = await login("dave", 1);
    await dave.xmpp.send(xml("presence"));
    const m = await dave.next((s) => s.is("message") && s.attrs.id === "off1");
    expect(m.getChildText("body")).toBe("while you were out");
    expect(m.attrs.from).toMatch(/^carol@localhost\//);
    expect(m.getChild("delay", "urn:xmpp:delay")?.attrs.stamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    await dave.stop();
    // Delivered once: a new login finds nothing more.
    const again = await login("dave", 0);
    await again.xmpp.send(xml("presence"));
    await expect(again.next((s) => s.is("message") && s.attrs.id === "off1", 1500)).rejects.toThrow();
    await again.stop();
    await carol.stop();
  });

  it("refuses a wrong password", async () => {
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username: "alice", password: "wrong" })).rejects.toMatchObject({
      condition: "not-authorized",
    });
    await expect(connectClient({ port: farm.c2sPorts[1]!.port, username: "nobody", password: "x" })).rejects.toMatchObject({
      condition: "not-authorized",
    });
  });

  it("answers service-unavailable for an unknown user and an unsupported iq, and the server's disco#info and time", async () => {
    const alice = await login("alice", 0);
    await alice.xmpp.send(xml("message", { to: "nosuchuser@localhost", type: "chat", id: "u1" }, xml("body", {}, "?")));
    const err = await alice.next((s) => s.is("message") && s.attrs.id === "u1");
    expect(err.attrs.type).toBe("error");
    expect(err.getChild("error")?.getChild("service-unavailable")).toBeTruthy();
    await expect(alice.xmpp.iqCaller.get(xml("query", { xmlns: "urn:example:unsupported" }), "localhost")).rejects.toMatchObject({
      condition: "service-unavailable",
    });
    const info = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), "localhost");
    expect(info.getChild("identity")?.attrs).toMatchObject({ category: "server", type: "im" });
    expect(info.getChildren("feature").map((f) => f.attrs.var)).toContain("urn:xmpp:time");
    const time = await alice.xmpp.iqCaller.get(xml("time", { xmlns: "urn:xmpp:time" }), "localhost");
    expect(Number.isNaN(Date.parse(time.getChildText("utc") ?? ""))).toBe(false);
    expect(time.getChildText("tzo")).toMatch(/^[+-]\d\d:\d\d$/);
    await alice.stop();
  });

  it("copies what one resource receives and sends to the account's other one (XEP-0280 carbons)", async () => {
    const NS = "urn:xmpp:carbons:2";
    const phone = await login("carol", 0, "phone");
    const laptop = await login("carol", 1, "laptop");
    const dave = await login("dave", 0, "desk");
    await dave.xmpp.send(xml("presence"));
    const info = await phone.xmpp.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), "localhost");
    expect(info.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
    for (const c of [phone, laptop]) {
      await c.xmpp.iqCaller.set(xml("enable", { xmlns: NS }));
      await c.xmpp.send(xml("presence"));
    }
    const forwarded = (s: Element, kind: string) => s.getChild(kind, NS)?.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message");

    await dave.xmpp.send(xml("message", { to: "carol@localhost/phone", type: "chat", id: "c1" }, xml("body", {}, "to the phone")));
    await phone.next((s) => s.is("message") && s.attrs.id === "c1");
    const received = await laptop.next((s) => s.is("message") && forwarded(s, "received") !== undefined);
    expect(received.attrs).toMatchObject({ from: "carol@localhost", to: "carol@localhost/laptop" });
    expect(forwarded(received, "received")!.attrs).toMatchObject({ from: "dave@localhost/desk", id: "c1" });

    await laptop.xmpp.send(xml("message", { to: "dave@localhost", type: "chat", id: "c2" }, xml("body", {}, "from the laptop")));
    await dave.next((s) => s.is("message") && s.attrs.id === "c2");
    const sent = await phone.next((s) => s.is("message") && forwarded(s, "sent") !== undefined);
    expect(sent.attrs).toMatchObject({ from: "carol@localhost", to: "carol@localhost/phone" });
    expect(forwarded(sent, "sent")!.attrs).toMatchObject({ from: "carol@localhost/laptop", to: "dave@localhost", id: "c2" });
    expect(forwarded(sent, "sent")!.getChildText("body")).toBe("from the laptop");
    await Promise.all([phone, laptop, dave].map((c) => c.stop()));
  });

  it("archives a chat on both sides and gives it back to each by query (XEP-0313 MAM, XEP-0359 stanza-id)", async () => {
    const NS = "urn:xmpp:mam:2";
    await farm.addAccounts({ "gil@localhost": "gil-pw", "hal@localhost": "hal-pw" });
    const gil = await login("gil", 0);
    const hal = await login("hal", 1);
    await hal.xmpp.send(xml("presence"));
    const info = await gil.xmpp.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), "gil@localhost");
    expect(info.getChildren("feature").map((f) => f.attrs.var)).toEqual(expect.arrayContaining([NS, "urn:xmpp:sid:0"]));

    const stanzaIds: string[] = [];
    for (const n of [1, 2, 3]) {
      await gil.xmpp.send(xml("message", { to: "hal@localhost", type: "chat", id: `a${n}` }, xml("body", {}, `archived ${n}`)));
      const got = await hal.next((s) => s.is("message") && s.attrs.id === `a${n}`);
      const sid = got.getChild("stanza-id", "urn:xmpp:sid:0");
      expect(sid?.attrs.by).toBe("hal@localhost");
      stanzaIds.push(sid!.attrs.id as string);
    }

    /** Queries the archive; the results that came before the answer, as [message id, archive id]. */
    const queryArchive = async (c: TestClient, queryid: string, set: Element[]) => {
      const form = xml(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS)),
        xml("field", { var: "with" }, xml("value", {}, c === gil ? "hal@localhost" : "gil@localhost")),
      );
      const query = xml("query", { xmlns: NS, queryid }, form, xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, ...set));
      const answer = (await c.xmpp.iqCaller.request(xml("iq", { type: "set" }, query))).getChild("fin", NS)!;
      const results = c.stanzas.filter((s) => s.is("message") && s.getChild("result", NS)?.attrs.queryid === queryid);
      const items = results.map((r) => {
        const result = r.getChild("result", NS)!;
        return [result.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!.attrs.id, result.attrs.id];
      });
      return { answer, items };
    };

    // gil's own archive: what he sent, oldest first, complete.
    const sent = await queryArchive(gil, "g", []);
    expect(sent.items.map(([id]) => id)).toEqual(["a1", "a2", "a3"]);
    expect(sent.answer.attrs.complete).toBe("true");
    // hal's: the last page of two, under the ids his client was given.
    const last = await queryArchive(hal, "h", [xml("max", {}, "2"), xml("before")]);
    expect(last.items).toEqual([
      ["a2", stanzaIds[1]],
      ["a3", stanzaIds[2]],
    ]);
    expect(last.answer.getChild("set")?.getChildText("count")).toBe("3");
    expect(last.answer.attrs.complete).toBeUndefined();
    await Promise.all([gil.stop(), hal.stop()]);
  });

  it("ends the sessions of an account deleted while it is online", async () => {
    await farm.addUser("erin@localhost", "erin-pw");
    const erin = await login("erin", 1);
    const ended = new Promise<{ condition?: string }>((resolve) => erin.xmpp.on("error", (e) => resolve(e as { condition?: string })));
    const r = await farm.cli("user", "del", "erin@localhost");
    expect(r.stdout).toBe("deleted erin@localhost\nits sessions on the running farm were ended and its contacts told\n");
    expect((await ended).condition).toBe("not-authorized");
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username: "erin", password: "erin-pw" })).rejects.toMatchObject({
      condition: "not-authorized",
    });
  });

  it("restarts a killed sm, and clients log in again", async () => {
    const before = Date.now();
    const pid = farm.childPid("sm-1");
    process.kill(pid, "SIGKILL");
    await farm.waitRestarted("sm-1", pid);
    await farm.waitLinked(before, ["sm-1"]);
    const alice = await login("alice", 0);
    const bob = await login("bob", 1);
    await bob.xmpp.send(xml("presence"));
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "after" }, xml("body", {}, "still here")));
    const m = await bob.next((s) => s.is("message") && s.attrs.id === "after");
    expect(m.getChildText("body")).toBe("still here");
  });

  it("restarts a killed router; every component re-links by itself and clients chat again", async () => {
    const before = Date.now();
    const pid = farm.childPid("router-1");
    process.kill(pid, "SIGKILL");
    await farm.waitRestarted("router-1", pid);
    await farm.waitLinked(before);
    const carol = await login("carol", 1);
    const dave = await login("dave", 0);
    await dave.xmpp.send(xml("presence"));
    await carol.xmpp.send(xml("message", { to: "dave@localhost", type: "chat", id: "relinked" }, xml("body", {}, "the hub came back")));
    const m = await dave.next((s) => s.is("message") && s.attrs.id === "relinked");
    expect(m.getChildText("body")).toBe("the hub came back");
  });
});
