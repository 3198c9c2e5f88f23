// XEP-0352 client state indication in the sm (sm/mod-csi.ts): what an
// inactive session's client is spared, what it gets at once, and in which order.
import { parse, type Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { NO_MODULE_SETTINGS, enabledModules } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { Client, DOMAIN, Harness } from "./sm-harness.js";

const composing = (to: string) => `<message to='${to}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`;
const chat = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;
const status = (show: string) => `<presence><show>${show}</show></presence>`;

/** What a stanza is, briefly: "presence:away", "message:composing", "message:hi", "iq". */
function what(el: Element): string {
  if (el.name === "presence") return `presence:${el.getChildText("show") ?? el.attrs.type ?? "available"}`;
  if (el.name === "message") return `message:${el.getChildText("body") ?? el.getChildElements().find((c) => c.name !== "delay")?.name}`;
  return el.name;
}

describe("sm client state indication (XEP-0352)", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function state(c: Client, active: boolean): Promise<void> {
    await h.route(c.c2s, c.bare, encodeSessionPayload(SessionOp.ClientState, { sid: c.sid, active }));
  }

  /** Alice and Bob, subscribed to each other and online; Alice's client inactive. */
  async function pair(table: Record<string, unknown> = {}): Promise<{ alice: Client; bob: Client }> {
    h = await Harness.create(["alice", "bob"], { modules: enabledModules(MODULES, { table: { csi: table }, env: {} }) });
    await h.mutual("alice", "bob");
    const alice = await h.connect(`alice@${DOMAIN}/phone`);
    const bob = await h.connect(`bob@${DOMAIN}/desk`);
    await alice.online();
    await bob.online();
    await state(alice, false);
    alice.received();
    bob.received();
    return { alice, bob };
  }

  it("keeps the inactive flag in the session's module state, sent to its front end", async () => {
    const { alice } = await pair();
    // pair() took the frames: saying inactive again changes nothing, active clears it.
    await state(alice, false);
    expect(alice.frames().filter((f) => f.op === SessionOp.SessionState)).toEqual([]);
    await state(alice, true);
    const [frame] = alice.frames().filter((f) => f.op === SessionOp.SessionState);
    expect(frame!.meta).toEqual({ sid: alice.sid, state: {} });
  });

  it("holds presence updates (the latest per sender) and chat states, then writes them before a message, in order", async () => {
    const { alice, bob } = await pair();
    for (const show of ["away", "xa", "dnd"]) await bob.send(status(show));
    await bob.send(composing(alice.bare));
    expect(alice.received()).toEqual([]);

    await bob.send(chat(alice.bare, "hi"));
    const got = alice.received();
    expect(got.map(what)).toEqual(["presence:dnd", "message:composing", "message:hi"]);
    // The held ones say when they came (XEP-0203); the urgent one came now.
    expect(got[0]!.getChild("delay", "urn:xmpp:delay")?.attrs.from).toBe(`alice@${DOMAIN}`);
    expect(got[1]!.getChild("delay", "urn:xmpp:delay")).toBeDefined();
    expect(got[2]!.getChild("delay", "urn:xmpp:delay")).toBeUndefined();
  });

  it("writes what it held when the client is active again, and then holds nothing", async () => {
    const { alice, bob } = await pair();
    await bob.send(status("away"));
    await bob.send(composing(alice.jid));
    expect(alice.received()).toEqual([]);
    await state(alice, true);
    expect(alice.received().map(what)).toEqual(["presence:away", "message:composing"]);
    await bob.send(status("xa"));
    expect(alice.received().map(what)).toEqual(["presence:xa"]);
  });

  it("lets urgent stanzas through at once (an iq, a subscription change) and holds a headline", async () => {
    const { alice, bob } = await pair();
    await bob.send(status("away"));
    const [version] = await bob.request(`<iq type='get' id='v' to='${alice.jid}'><query xmlns='jabber:iq:version'/></iq>`);
    // The iq reached Alice's client (which answers it itself), after what was held.
    expect(version).toBeUndefined();
    expect(alice.received().map(what)).toEqual(["presence:away", "iq"]);
    await bob.send(`<presence to='${alice.bare}' type='unsubscribe'/>`);
    expect(alice.received().map((s) => s.attrs.type)).toContain("unsubscribe");
    // A PEP-like headline waits.
    await bob.send(`<message to='${alice.jid}' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`);
    expect(alice.received()).toEqual([]);
  });

  it("takes the payloads the admin names as urgent", async () => {
    const { alice, bob } = await pair({ important_payloads: ["{urn:example:ring}"] });
    await bob.send(composing(alice.jid));
    expect(alice.received()).toEqual([]);
    await bob.send(`<message to='${alice.jid}' type='chat'><ring xmlns='urn:example:ring'/></message>`);
    expect(alice.received().map(what)).toEqual(["message:composing", "message:ring"]);
  });

  it("holds at most max_held stanzas: past it, everything goes", async () => {
    const { alice, bob } = await pair({ max_held: 2 });
    await bob.send(composing(alice.jid));
    await bob.send(status("away"));
    expect(alice.received()).toEqual([]);
    await bob.send(`<message to='${alice.jid}' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    expect(alice.received().map(what)).toEqual(["message:composing", "presence:away", "message:paused"]);
  });

  it("holds at most max_held_bytes", async () => {
    const { alice, bob } = await pair({ max_held_bytes: 400 });
    await bob.send(composing(alice.jid));
    expect(alice.received()).toEqual([]);
    await bob.send(`<presence><status>${"x".repeat(400)}</status></presence>`);
    expect(alice.received().map((s) => s.name)).toEqual(["message", "presence"]);
  });

  it("drops what it held when the session ends: presence and notices are not routed again", async () => {
    const { alice, bob } = await pair();
    const other = await h.connect(`alice@${DOMAIN}/laptop`);
    await other.online();
    other.received();
    await bob.send(composing(alice.jid));
    await alice.end();
    // It hears its other resource go, and nothing more.
    expect(other.received().map(what)).toEqual(["presence:unavailable"]);
    expect(await h.store.loadOffline(`alice@${DOMAIN}`, { limit: 10, maxBytes: 100_000 })).toEqual([]);
  });

  it("keeps a rebuilt session inactive on its new sm", async () => {
    h = await Harness.create(["alice", "bob"], { modules: enabledModules(MODULES, NO_MODULE_SETTINGS) });
    await h.mutual("alice", "bob");
    const bob = await h.connect(`bob@${DOMAIN}/desk`);
    await bob.online();
    const jid = `alice@${DOMAIN}/phone`;
    await h.route(
      "c2s-1",
      `alice@${DOMAIN}`,
      encodeSessionPayload(
        SessionOp.Rebuild,
        { sid: "r1", jid, ip: "127.0.0.1", secure: true, interested: true, state: { csi: true } },
        "<presence/>",
      ),
    );
    const take = () => h.port.take((f) => f.to === "c2s-1" && "sid" in f.meta && f.meta.sid === "r1" && f.op === SessionOp.Deliver);
    take();
    await bob.send(status("away"));
    expect(take()).toEqual([]);
    await bob.send(chat(jid, "hi"));
    expect(take().map((f) => f.xml.toString()).join("")).toMatch(/<presence[^]*away[^]*<body>hi<\/body>/);
  });

  it("keeps each held stanza's delivery identity, so a stanza processed again after a failover is recognised", async () => {
    // sm-1 holds Bob's presence, then his message flushes it: each DELIVER must carry its own work's name (protocol §2.5).
    // They took the message's (the presence its first name, the message "#1"): processed again on an sm that held
    // nothing, the message came under the name its front end had seen on the presence, and was dropped as a copy.
    const { alice, bob } = await pair();
    await bob.sendNumbered(status("away"), 1);
    await bob.sendNumbered(chat(alice.bare, "hi"), 2);
    const first = alice.frames().filter((f) => f.op === SessionOp.Deliver);
    const origins = (frames: typeof first) => frames.map((f) => [what(parse(f.xml.toString())), "origin" in f.meta ? f.meta.origin : undefined]);
    expect(origins(first)).toEqual([
      ["presence:away", `c2s-1/${bob.sid}/1.0`],
      ["message:hi", `c2s-1/${bob.sid}/2.0`],
    ]);

    // sm-1 dies before taking seq 2; sm-2 rebuilds both sessions (Alice still inactive) and processes it again,
    // holding nothing: the message must come under the name it had, which Alice's front end then recognises.
    const h2 = await Harness.create(["alice", "bob"], { modules: enabledModules(MODULES, NO_MODULE_SETTINGS) });
    try {
      await h2.mutual("alice", "bob");
      const rebuild = async (c: Client, seq: number, state: Record<string, unknown>) => {
        const meta = { sid: c.sid, jid: c.jid, ip: "127.0.0.1", secure: true, interested: true, seq, state };
        await h2.route(c.c2s, c.bare, encodeSessionPayload(SessionOp.Rebuild, meta, "<presence/>"));
        return new Client(h2, c.c2s, c.sid, c.jid);
      };
      const alice2 = await rebuild(alice, 0, { csi: true });
      const bob2 = await rebuild(bob, 1, {});
      alice2.frames();
      await bob2.sendNumbered(chat(alice.bare, "hi"), 2);
      expect(origins(alice2.frames().filter((f) => f.op === SessionOp.Deliver))).toEqual([["message:hi", `c2s-1/${bob.sid}/2.0`]]);
    } finally {
      await h2.close();
    }
  });
});
