// The whole farm (router, sm, two c2s) on MariaDB, with real clients.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { MariaDb } from "../sim/mariadb.js";
import { connectClient, xml } from "./harness/xmppjs.js";

describe("a farm on MariaDB", () => {
  let db: MariaDb;
  let farm: Farm;

  beforeAll(async () => {
    db = await MariaDb.start();
    farm = await Farm.create({ c2sCount: 2, db: await db.createDatabase("xfarm_e2e") });
    await farm.start();
    // Through the CLI, as an admin would, against the same database.
    await farm.addUser("alice@localhost", "alice-pw");
    await farm.addUser("bob@localhost", "bob-pw");
    await farm.addUser("carol@localhost", "carol-pw");
  }, 90_000);

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
    await db?.stop();
  });

  it("logs clients in on both front ends, keeps rosters, chats, and stores offline messages", async () => {
    // The sm says which store it opened (its log line is the only place that shows it).
    expect(farm.lines.find((l) => l.proc === "sm-1" && l.msg === "store open")?.store).toMatch(/^mysql:\/\/root@localhost\/xfarm_e2e/);
    const alice = await connectClient({ port: farm.c2sPorts[0]!.port, username: "alice", password: "alice-pw", resource: "a" });
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "early" }, xml("body", {}, "stored in MariaDB")));
    await farm.waitOffline("bob@localhost");
    const bob = await connectClient({ port: farm.c2sPorts[1]!.port, username: "bob", password: "bob-pw", resource: "b" });
    await bob.xmpp.send(xml("presence"));
    expect((await bob.next((s) => s.is("message") && s.attrs.id === "early")).getChildText("body")).toBe("stored in MariaDB");

    await alice.xmpp.iqCaller.set(xml("query", { xmlns: "jabber:iq:roster" }, xml("item", { jid: "bob@localhost", name: "Bob" }, xml("group", {}, "Friends"))));
    const roster = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    expect(roster.getChild("item")?.attrs).toMatchObject({ jid: "bob@localhost", name: "Bob", subscription: "none" });
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "live" }, xml("body", {}, "live")));
    await bob.next((s) => s.is("message") && s.attrs.id === "live");
    await alice.stop();
    await bob.stop();
  });

  it("keeps chatting through a database outage, answers what needs it with resource-constraint, and recovers", async () => {
    const alice = await connectClient({ port: farm.c2sPorts[0]!.port, username: "alice", password: "alice-pw", resource: "a2" });
    const bob = await connectClient({ port: farm.c2sPorts[1]!.port, username: "bob", password: "bob-pw", resource: "b2" });
    await bob.xmpp.send(xml("presence"));
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "pre" }, xml("body", {}, "pre")));
    await bob.next((s) => s.is("message") && s.attrs.id === "pre");

    const before = farm.lines.length;
    await db.pause();
    // Sessions already up keep chatting: this needs no database (XEP-0313 MAM lets the message go unarchived, without a stanza-id).
    await alice.xmpp.send(xml("message", { to: "bob@localhost", type: "chat", id: "during" }, xml("body", {}, "during")));
    const during = await bob.next((s) => s.is("message") && s.attrs.id === "during");
    expect(during.getChildText("body")).toBe("during");
    expect(during.getChild("stanza-id", "urn:xmpp:sid:0")).toBeUndefined();
    // carol is offline: storing her message needs the database, so alice hears "try later", at once.
    for (const id of ["c1", "c2"]) {
      await alice.xmpp.send(xml("message", { to: "carol@localhost", type: "chat", id }, xml("body", {}, id)));
      const err = await alice.next((s) => s.is("message") && s.attrs.id === id);
      expect(err.attrs.type).toBe("error");
      expect(err.getChild("error")?.attrs.type).toBe("wait");
      expect(err.getChild("error")?.getChild("resource-constraint")).toBeTruthy();
    }
    // One log line for the outage, not one per stanza (what is logged is the subject here).
    expect(farm.lines.slice(before).filter((l) => l.proc === "sm-1" && String(l.msg).startsWith("database unreachable"))).toHaveLength(1);

    await db.resume();
    await alice.xmpp.send(xml("message", { to: "carol@localhost", type: "chat", id: "c3" }, xml("body", {}, "after the outage")));
    await farm.waitOffline("carol@localhost");
    // What is logged is the subject here too: the outage's end, once.
    await farm.waitFor((l) => l.proc === "sm-1" && l.msg === "database reachable again", 5000, before);
    const carol = await connectClient({ port: farm.c2sPorts[0]!.port, username: "carol", password: "carol-pw" });
    await carol.xmpp.send(xml("presence"));
    expect((await carol.next((s) => s.is("message") && s.attrs.id === "c3")).getChildText("body")).toBe("after the outage");
    await Promise.all([alice.stop(), bob.stop(), carol.stop()]);
  });
});
