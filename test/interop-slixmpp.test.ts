// Interop with Debian's python3-slixmpp, a second real client library,
// chatting across the two front ends with an xmpp.js client.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { SlixClient, requireSlixmpp, type SlixEvent } from "./harness/slixmpp.js";
import { connectClient, xml } from "./harness/xmppjs.js";

describe("slixmpp interop", () => {
  let farm: Farm;

  beforeAll(async () => {
    requireSlixmpp();
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    await farm.addUser("slix@localhost", "slix-pw");
    await farm.addUser("js@localhost", "js-pw");
  });

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("logs in with SCRAM over STARTTLS, subscribes, and chats with an xmpp.js client", async () => {
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "web" });
    await js.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    await js.xmpp.send(xml("presence"));

    const py = new SlixClient("slix_client.py", ["--port", String(farm.c2sPorts[1]!.port), "--jid", "slix@localhost/py", "--password", "slix-pw", "--peer", "js@localhost", "--ca", process.env.XFARM_TEST_CERT!]);
    const slixEvent = (test: (e: SlixEvent) => boolean) => py.next(test);

    const started = await slixEvent((e) => e.event === "session_start");
    expect(started.jid).toBe("slix@localhost/py");
    expect(started.mech).toMatch(/^SCRAM-SHA-(1|256)$/);
    // Where and how a client authenticated shows in the front end's log only.
    expect(await farm.waitFor((l) => l.msg === "authenticated" && l.user === "slix@localhost")).toMatchObject({ proc: "c2s-2", secure: true });

    const hello = await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp");
    expect(hello.attrs.from).toBe("slix@localhost/py");

    // slixmpp auto-accepts and subscribes back; then both see each other online.
    await js.xmpp.send(xml("presence", { to: "slix@localhost", type: "subscribe" }));
    await js.next((s) => s.is("presence") && s.attrs.type === "subscribed" && s.attrs.from === "slix@localhost");
    await js.next((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === "slix@localhost");
    await js.xmpp.send(xml("presence", { to: "slix@localhost", type: "subscribed" }));
    await js.next((s) => s.is("presence") && !s.attrs.type && s.attrs.from === "slix@localhost/py");
    await slixEvent((e) => e.event === "presence" && e.frm === "js@localhost/web");

    for (const n of [1, 2, 3]) {
      await js.xmpp.send(xml("message", { to: "slix@localhost/py", type: "chat" }, xml("body", {}, `ping ${n}`)));
      const pong = await js.next((s) => s.is("message") && s.getChildText("body") === `pong ${n}`);
      expect(pong.attrs.from).toBe("slix@localhost/py");
    }
    const roster = await js.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    expect(roster.getChild("item")?.attrs).toMatchObject({ jid: "slix@localhost", subscription: "both" });

    await js.xmpp.send(xml("message", { to: "slix@localhost", type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    await js.next((s) => s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === "slix@localhost/py");
    expect(await py.exited()).toBe(0);
    await js.stop();
  });

  it("enables carbons with slixmpp's xep_0280 plugin and gets both kinds of copy", async () => {
    await farm.addUser("rose@localhost", "rose-pw");
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "desk" });
    const web = await connectClient({ port: farm.c2sPorts[0]!.port, username: "rose", password: "rose-pw", resource: "web" });
    for (const c of [js, web]) await c.xmpp.send(xml("presence"));
    const py = new SlixClient("slix_client.py", ["--port", String(farm.c2sPorts[1]!.port), "--jid", "rose@localhost/py", "--password", "rose-pw", "--peer", "js@localhost", "--ca", process.env.XFARM_TEST_CERT!, "--carbons"]);
    const slixEvent = (test: (e: SlixEvent) => boolean) => py.next(test);
    await slixEvent((e) => e.event === "session_start");
    await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp");

    // What rose's other resource receives, and what it sends, slixmpp sees as carbons.
    await js.xmpp.send(xml("message", { to: "rose@localhost/web", type: "chat" }, xml("body", {}, "to the web client")));
    await web.next((s) => s.is("message") && s.getChildText("body") === "to the web client");
    const received = await slixEvent((e) => e.event === "carbon_received");
    expect(received).toMatchObject({ frm: "js@localhost/desk", to: "rose@localhost/web", body: "to the web client" });
    await web.xmpp.send(xml("message", { to: "js@localhost", type: "chat" }, xml("body", {}, "from the web client")));
    const sent = await slixEvent((e) => e.event === "carbon_sent");
    expect(sent).toMatchObject({ frm: "rose@localhost/web", to: "js@localhost", body: "from the web client" });

    await js.xmpp.send(xml("message", { to: "rose@localhost/py", type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    expect(await py.exited()).toBe(0);
    await Promise.all([js.stop(), web.stop()]);
  });

  it("changes its password with slixmpp's xep_0077 plugin (XEP-0077): its other resource is closed, the old password no longer logs in", async () => {
    await farm.addUser("sam@localhost", "sam-old");
    const other = await connectClient({ port: farm.c2sPorts[0]!.port, username: "sam", password: "sam-old", resource: "web" });
    const closed = new Promise<{ condition?: string }>((resolve) => other.xmpp.on("error", (e) => resolve(e as { condition?: string })));
    const py = new SlixClient("slix_client.py", ["--port", String(farm.c2sPorts[1]!.port), "--jid", "sam@localhost/py", "--password", "sam-old", "--peer", "js@localhost", "--ca", process.env.XFARM_TEST_CERT!, "--new-password", "sam-new"]);
    const slixEvent = (test: (e: SlixEvent) => boolean) => py.next(test);
    await slixEvent((e) => e.event === "password_changed");
    expect((await closed).condition).toBe("reset");
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username: "sam", password: "sam-old" })).rejects.toMatchObject({ condition: "not-authorized" });
    const again = await connectClient({ port: farm.c2sPorts[0]!.port, username: "sam", password: "sam-new", resource: "web" });
    // slixmpp's session stayed: a message still reaches it.
    await again.xmpp.send(xml("message", { to: "sam@localhost/py", type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    expect(await py.exited()).toBe(0);
    await Promise.all([other.stop(), again.stop()]);
  });

  it("finds its chat in its archive with slixmpp's xep_0313 plugin (XEP-0313), under the stanza-ids it was given", async () => {
    await farm.addUser("ivy@localhost", "ivy-pw");
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "mam" });
    await js.xmpp.send(xml("presence"));
    const py = new SlixClient("slix_client.py", ["--port", String(farm.c2sPorts[1]!.port), "--jid", "ivy@localhost/py", "--password", "ivy-pw", "--peer", "js@localhost", "--ca", process.env.XFARM_TEST_CERT!]);
    const slixEvent = (test: (e: SlixEvent) => boolean) => py.next(test);
    await slixEvent((e) => e.event === "session_start");
    // Its own hello: js may also get, from offline storage, the one the password test's slixmpp sent it.
    const hello = await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp" && s.attrs.from === "ivy@localhost/py");
    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "ping 1")));
    const pinged = await slixEvent((e) => e.event === "message" && e.body === "ping 1");
    await js.next((s) => s.is("message") && s.getChildText("body") === "pong 1");
    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "mam")));
    const asked = await slixEvent((e) => e.event === "message" && e.body === "mam");

    // What it sent and what it got, oldest first; those it got under the ids they came with.
    const archive = await slixEvent((e) => e.event === "mam");
    expect(archive.bodies).toEqual(["hello from slixmpp", "ping 1", "pong 1", "mam"]);
    expect([archive.ids![1], archive.ids![3]]).toEqual([pinged.stanza_id, asked.stanza_id]);

    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    expect(await py.exited()).toBe(0);
    await js.stop();
  });
});
