// Several session managers: users spread over them by their bare JID; when
// one dies, or the router does, connected clients keep their sessions
// (rebuilt from the c2s that holds each connection) and keep chatting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rendezvousOwner } from "../lib/link/member.js";
import { Farm } from "./harness/farm.js";
import type { Element } from "ltx";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const CARBONS = "urn:xmpp:carbons:2";

describe("a farm with two session managers", () => {
  let farm: Farm;
  let a: TestClient;
  let b: TestClient;
  // Two users that rendezvous hashing puts on different sms.
  const names = Array.from({ length: 50 }, (_, i) => `u${i + 1}`);
  const onSm = (sm: string) => names.find((n) => rendezvousOwner(["sm-1", "sm-2"], `${n}@localhost`) === sm)!;
  const alice = onSm("sm-1");
  const bob = onSm("sm-2");

  const chat = async (from: TestClient, to: TestClient, toJid: string, id: string) => {
    await from.xmpp.send(xml("message", { to: toJid, type: "chat", id }, xml("body", {}, id)));
    const m = await to.next((s) => s.is("message") && s.attrs.id === id);
    expect(m.getChildText("body")).toBe(id);
  };
  /** Stream errors and redirects the front ends sent `user`, from their logs: every one is logged, and a client may miss the last. */
  const streamErrors = (user: string) => farm.lines.filter((l) => (l.msg === "stream error" || l.msg === "redirected") && String(l.user) === `${user}@localhost`);

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, smCount: 2 });
    await farm.start();
    await farm.addUsers("u", 50, "pw", 64);
    a = await connectClient({ port: farm.c2sPorts[0]!.port, username: alice, password: "pw", resource: "a" });
    b = await connectClient({ port: farm.c2sPorts[1]!.port, username: bob, password: "pw", resource: "b" });
    for (const [c, other] of [[a, bob], [b, alice]] as const) {
      await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      await c.xmpp.send(xml("presence"));
      await c.xmpp.send(xml("presence", { to: `${other}@localhost`, type: "subscribe" }));
    }
    for (const [c, other] of [[a, bob], [b, alice]] as const) {
      await c.next((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === `${other}@localhost`);
      await c.xmpp.send(xml("presence", { to: `${other}@localhost`, type: "subscribed" }));
    }
    await a.next((s) => s.is("presence") && !s.attrs.type && s.attrs.from === `${bob}@localhost/b`);
    await b.next((s) => s.is("presence") && !s.attrs.type && s.attrs.from === `${alice}@localhost/a`);
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("keeps each user's session on its own sm, and messages cross between them", async () => {
    // Which sm holds a session: only the sms' logs say (read from their output, maybe after the client's answer).
    expect((await farm.waitFor((l) => l.msg === "session started" && l.jid === `${alice}@localhost/a`)).proc).toBe("sm-1");
    expect((await farm.waitFor((l) => l.msg === "session started" && l.jid === `${bob}@localhost/b`)).proc).toBe("sm-2");
    await chat(a, b, `${bob}@localhost`, "across-1");
    await chat(b, a, `${alice}@localhost`, "across-2");
  });

  it("rebuilds the sessions of a SIGKILLed sm elsewhere and back, with no client disconnected", async () => {
    const before = farm.lines.length;
    process.kill(farm.childPid("sm-2"), "SIGKILL");
    // bob moves to sm-1 while sm-2 is down (where a session lives shows in the sms' logs only)...
    await farm.waitFor((l) => l.proc === "sm-1" && l.msg === "session rebuilt" && l.jid === `${bob}@localhost/b`, 15_000, before);
    await chat(a, b, `${bob}@localhost`, "while-down");
    // ...and back once the supervisor restarted it.
    await farm.waitFor((l) => l.proc === "sm-2" && l.msg === "session rebuilt" && l.jid === `${bob}@localhost/b`, 20_000, before);
    await chat(a, b, `${bob}@localhost`, "after-restart");
    await chat(b, a, `${alice}@localhost`, "reply-after-restart");
    expect(streamErrors(alice)).toEqual([]);
    expect(streamErrors(bob)).toEqual([]);
  });

  it("keeps every client connected through a SIGKILL of the router", async () => {
    const before = Date.now();
    const pid = farm.childPid("router-1");
    process.kill(pid, "SIGKILL");
    await farm.waitRestarted("router-1", pid);
    await farm.waitLinked(before);
    await chat(a, b, `${bob}@localhost`, "after-router");
    await chat(b, a, `${alice}@localhost`, "reply-after-router");
    expect(streamErrors(alice)).toEqual([]);
    expect(streamErrors(bob)).toEqual([]);
  });

  it("keeps XEP-0280 carbons on for sessions rebuilt on another sm (module state through REBUILD), and XEP-0313 MAM archives each message once", async () => {
    const b2 = await connectClient({ port: farm.c2sPorts[0]!.port, username: bob, password: "pw", resource: "b2" });
    try {
      await b2.xmpp.send(xml("presence"));
      for (const c of [b, b2]) await c.xmpp.iqCaller.set(xml("enable", { xmlns: CARBONS }));
      const before = Date.now();
      const pid = farm.childPid("sm-2");
      process.kill(pid, "SIGKILL");
      await farm.waitRestarted("sm-2", pid);
      // Whichever sm holds bob's two sessions now, each was rebuilt from its front end's REBUILD:
      // without the state it carries, neither would have carbons on. A message sent while the
      // sessions move may reach one before the other is back, so probe until a copy comes.
      const copied = (kind: string) => (s: Element) => s.is("message") && s.getChild(kind, CARBONS) !== undefined;
      const sentBodies: string[] = [];
      const probeUntil = async (send: (body: string) => Promise<void>, prefix: string, kind: string): Promise<Element> => {
        for (let n = 1; Date.now() - before < 20_000; n++) {
          sentBodies.push(`${prefix} ${n}`);
          await send(`${prefix} ${n}`);
          const copy = await b2.next(copied(kind), 1_000).catch(() => null);
          if (copy) return copy;
        }
        throw new Error(`no ${kind} carbon reached b2 after the sm failover`);
      };
      await probeUntil((body) => a.xmpp.send(xml("message", { to: `${bob}@localhost/b`, type: "chat" }, xml("body", {}, body))), "probe", "received");
      // Sent copies too, once sm-2 is back and has taken bob again: what b writes, b2 sees.
      await farm.waitLinked(before, ["sm-2"]);
      const sent = await probeUntil((body) => b.xmpp.send(xml("message", { to: `${alice}@localhost`, type: "chat", id: body }, xml("body", {}, body))), "sent", "sent");
      expect(sent.getChild("sent", CARBONS)!.getChild("forwarded")!.getChild("message")!.getChildText("body")).toMatch(/^sent \d+$/);
      // Every message bob's account took in and sent through the moves is in its archive, each once:
      // a stanza processed again after the failover keeps its archive id.
      const MAM = "urn:xmpp:mam:2";
      const form = xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)), xml("field", { var: "with" }, xml("value", {}, `${alice}@localhost`)));
      const fin = (await b2.xmpp.iqCaller.request(xml("iq", { type: "set" }, xml("query", { xmlns: MAM, queryid: "after-failover" }, form, xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, xml("max", {}, "50")))))).getChild("fin", MAM)!;
      expect(fin.attrs.complete).toBe("true");
      const archived = b2.stanzas
        .filter((s) => s.is("message") && s.getChild("result", MAM)?.attrs.queryid === "after-failover")
        .map((r) => r.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!.getChildText("body"));
      expect(archived.filter((body) => /^(probe|sent) \d+$/.test(body ?? "")).sort()).toEqual([...sentBodies].sort());
      expect(streamErrors(bob)).toEqual([]);
    } finally {
      await b2.stop();
    }
  });
});
