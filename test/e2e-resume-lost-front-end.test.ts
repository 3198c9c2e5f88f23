// XEP-0198 across a dead front end (protocol §2.6): a client whose c2s is
// SIGKILLed resumes its session on another one, gets what it had not
// received exactly once, and is told how many of its own stanzas were
// taken; a session that nobody resumes hands what it held to offline
// storage once the resumption window has passed; and a front end that was
// only hung gets its sessions back with what waited for them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { boundStream, loggedInStream, type RawStream } from "./harness/raw-stream.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const NS_SM = "urn:xmpp:sm:3";
/** sm.c2s_grace here (seconds); the sm looks at it every second. */
const C2S_GRACE_S = 2;
/** How many messages with this id a stream received. */
const times = (s: RawStream, id: string) => (s.received.match(new RegExp(`<message [^>]*id=["']${id}["']`, "g")) ?? []).length;

describe("XEP-0198 resumption after the front end died", () => {
  let farm: Farm;
  let peer: TestClient;
  const clients: TestClient[] = [];
  const streams: RawStream[] = [];

  /** A raw client on front end `c2s` with resumable stream management on. */
  const resumable = async (user: string, c2s: number) => {
    const { stream, jid } = await boundStream(farm.c2sPorts[c2s]!.port, user, "pw");
    streams.push(stream);
    stream.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const enabled = await stream.until(/<enabled [^>]*id='([^']+)'/);
    return { stream, jid, id: /<enabled [^>]*id='([^']+)'/.exec(enabled)![1]! };
  };
  /** When c2s-1 was last killed. */
  let killedAt = 0;
  const kill = async (stream: RawStream) => {
    killedAt = Date.now();
    process.kill(farm.childPid("c2s-1"), "SIGKILL");
    await stream.untilClosed();
  };
  /** Until the restarted c2s-1 is linked again, as `xfarm status` shows it. */
  const c2s1Back = () => farm.waitLinked(killedAt, ["c2s-1"]);

  beforeAll(async () => {
    // Clients stay on the front end they are sent to. The resumption window is short, for the second test;
    // it opens when c2s_grace ends, and the third's hang ends soon after that, so that the hung front end is
    // back well within it.
    farm = await Farm.create({ c2sCount: 2, sm: { c2s_grace: C2S_GRACE_S }, c2s: { redirect_margin: 1000, resume_timeout: 8 } });
    await farm.start();
    await farm.addUsers("u", 4, "pw", 64);
    // u2, available on the front end that survives, talks to the others.
    peer = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u2", password: "pw", resource: "r" });
    clients.push(peer);
    await peer.xmpp.send(xml("presence"));
  });

  afterAll(async () => {
    for (const s of streams) s.destroy();
    await Promise.all(clients.map((c) => c.stop()));
    await farm.stop();
    farm.cleanup();
  });

  it("resumes on another front end with nothing lost and nothing twice", async () => {
    const send = (id: string, to: string) => peer.xmpp.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));
    const u1 = await resumable("u1", 0);

    // u1 sends one stanza, which u2 gets: the farm took it.
    u1.stream.send(`<message to='u2@localhost/r' type='chat' id='from-u1'><body>hi</body></message>`);
    await peer.next((s) => s.is("message") && s.attrs.id === "from-u1");
    // u1 gets m1 and acknowledges it, then m2, which it does not acknowledge.
    await send("m1", u1.jid);
    await u1.stream.until(() => times(u1.stream, "m1") === 1);
    u1.stream.send(`<a xmlns='${NS_SM}' h='1'/>`);
    await send("m2", u1.jid);
    await u1.stream.until(() => times(u1.stream, "m2") === 1);

    await kill(u1.stream);
    // Sent while u1 has no front end: the sm keeps it for the resumption.
    await send("m3", u1.jid);

    // u1 got two stanzas: it resumes with h=2 on the surviving front end.
    const back = await loggedInStream(farm.c2sPorts[1]!.port, "u1", "pw");
    streams.push(back);
    back.send(`<resume xmlns='${NS_SM}' previd='${u1.id}' h='2'/>`);
    const resumed = await back.until(/<resumed [^>]*h='(\d+)'/, 20_000);
    // Its one stanza was taken.
    expect(/<resumed [^>]*h='(\d+)'/.exec(resumed)![1]).toBe("1");
    await back.until(() => times(back, "m3") === 1);

    // The session lives on where it is now: both ways, nothing again.
    back.send(`<message to='u2@localhost/r' type='chat' id='after'><body>back</body></message>`);
    await peer.next((s) => s.is("message") && s.attrs.id === "after");
    await send("m4", u1.jid);
    await back.until(() => times(back, "m4") === 1);
    expect([times(back, "m1"), times(back, "m2"), times(back, "m3")]).toEqual([0, 0, 1]);
    // Its stanza taken before the kill reached u2 once (next() took that one).
    expect(peer.stanzas.filter((s) => s.is("message") && s.attrs.id === "from-u1")).toEqual([]);
  });

  it("hands what a session never resumed held to offline storage after the window", async () => {
    await c2s1Back();
    const u3 = await resumable("u3", 0);
    // u2 follows u3's presence.
    u3.stream.send("<presence/>");
    await peer.xmpp.send(xml("presence", { to: "u3@localhost", type: "subscribe" }));
    await u3.stream.until(/<presence [^>]*type=["']subscribe["']/);
    u3.stream.send("<presence to='u2@localhost' type='subscribed'/>");
    await peer.next((s) => s.is("presence") && s.attrs.from === u3.jid && !s.attrs.type);

    await kill(u3.stream);
    await peer.xmpp.send(xml("message", { to: u3.jid, type: "chat", id: "while-gone" }, xml("body", {}, "while gone")));
    // Nobody resumes: after c2s_grace and resume_timeout the session ends, and u2 hears it.
    await peer.next((s) => s.is("presence") && s.attrs.from === u3.jid && s.attrs.type === "unavailable", 40_000);

    // What it held waits offline.
    const later = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u3", password: "pw", resource: "other" });
    clients.push(later);
    await later.xmpp.send(xml("presence"));
    const m = await later.next((s) => s.is("message") && s.attrs.id === "while-gone");
    expect(m.getChildText("body")).toBe("while gone");
    expect(m.getChild("delay", "urn:xmpp:delay")).toBeTruthy();
  }, 60_000);

  it("gives a front end that wakes from a hang its waiting sessions back, with what waited", async () => {
    await c2s1Back();
    const u4 = await resumable("u4", 0);
    const pid = farm.childPid("c2s-1");
    // Past the links' silence limit (the router drops it from its status) and c2s_grace (with the sm's
    // one-second look and a second to spare): its sessions wait in the sm as if it were dead.
    process.kill(pid, "SIGSTOP");
    try {
      await peer.xmpp.send(xml("message", { to: u4.jid, type: "chat", id: "while-hung" }, xml("body", {}, "while hung")));
      await farm.untilStatus((entries) => !entries.some((e) => e.name === "c2s-1"));
      await new Promise((resolve) => setTimeout(resolve, (C2S_GRACE_S + 2) * 1000));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Its client never noticed: it gets the message, once, and goes on.
    await u4.stream.until(() => times(u4.stream, "while-hung") === 1, 20_000);
    u4.stream.send(`<message to='u2@localhost/r' type='chat' id='after-hang'><body>awake</body></message>`);
    await peer.next((s) => s.is("message") && s.attrs.id === "after-hang", 20_000);
    expect(times(u4.stream, "while-hung")).toBe(1);
    expect(u4.stream.closed).toBe(false);
  }, 60_000);
});
