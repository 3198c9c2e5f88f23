// XEP-0352 client state indication against the whole farm, from xmpp.js: an
// inactive client is spared its contact's presence changes (all but the
// latest) and chat states until a message comes, which it then gets after
// them, in order; saying it is active again brings what waited.
import type { Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { mutualInStore } from "./harness/roster-item.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const NS_CSI = "urn:xmpp:csi:0";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";

/** What a stanza from ben is, briefly: "presence:dnd", "message:composing", "message:hi". */
function what(el: Element): string {
  if (el.is("presence")) return `presence:${el.getChildText("show") ?? el.attrs.type ?? "available"}`;
  return `message:${el.getChildText("body") ?? el.getChild("composing", NS_CHATSTATES)?.name ?? "?"}`;
}

describe("XEP-0352 client state indication from xmpp.js", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const login = async (username: string, resource: string) => {
    const c = await connectClient({ port: farm.c2sPorts[0]!.port, username, password: `${username}-pw`, resource });
    clients.push(c);
    return c;
  };
  /** Says inactive or active; the ping's answer comes after the sm took it (a user's frames are taken in order). */
  const say = async (c: TestClient, state: "active" | "inactive") => {
    await c.xmpp.send(xml(state, { xmlns: NS_CSI }));
    await c.xmpp.iqCaller.get(xml("ping", { xmlns: "urn:xmpp:ping" }), "localhost");
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1 });
    await farm.start();
    await farm.addAccounts({ "ann@localhost": "ann-pw", "ben@localhost": "ben-pw" });
    await mutualInStore(farm.storeUrl, [["ann@localhost", "ben@localhost"]]);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("holds presence changes (the latest kept) and a chat state until a message, then writes them in order", async () => {
    const ann = await login("ann", "phone");
    const ben = await login("ben", "desk");
    await ann.xmpp.send(xml("presence"));
    await ben.xmpp.send(xml("presence"));
    await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/desk" && !s.attrs.type);
    await say(ann, "inactive");
    ann.stanzas.length = 0;

    for (const show of ["away", "xa", "dnd"]) await ben.xmpp.send(xml("presence", {}, xml("show", {}, show)));
    await ben.xmpp.send(xml("message", { to: "ann@localhost/phone", type: "chat" }, xml("composing", { xmlns: NS_CHATSTATES })));
    await ben.xmpp.send(xml("message", { to: "ann@localhost/phone", type: "chat" }, xml("body", {}, "hi")));
    await ann.next((s) => s.is("message") && s.getChildText("body") === "hi");
    // Everything ben's stanzas brought came with the message, after what waited: nothing before it.
    const fromBen = [...ann.stanzas.splice(0)].filter((s) => s.attrs.from === "ben@localhost/desk");
    expect(fromBen.map(what)).toEqual(["presence:dnd", "message:composing"]);
    expect(fromBen.every((s) => s.getChild("delay", "urn:xmpp:delay") !== undefined)).toBe(true);
  });

  it("writes what waited when the client says it is active", async () => {
    const [ann, ben] = clients as [TestClient, TestClient];
    ann.stanzas.length = 0;
    await ben.xmpp.send(xml("presence", {}, xml("show", {}, "chat")));
    await ben.xmpp.send(xml("presence", {}, xml("show", {}, "away")));
    // Ben's sm queued his presences for ann before it answered his ping: her <active/> is taken after them.
    await ben.xmpp.iqCaller.get(xml("ping", { xmlns: "urn:xmpp:ping" }), "localhost");
    await ann.xmpp.send(xml("active", { xmlns: NS_CSI }));
    // The first of ben's presences ann gets is the latest: the one before it waited, and was replaced.
    const presence = await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/desk");
    expect(what(presence)).toBe("presence:away");
    // Active now: the next change comes at once.
    await ben.xmpp.send(xml("presence", {}, xml("show", {}, "xa")));
    expect(what(await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/desk"))).toBe("presence:xa");
    expect(ann.stanzas.filter((s) => s.is("presence"))).toEqual([]);
  });
});
