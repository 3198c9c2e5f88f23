// SIGKILL of a front end under chatting clients: its clients lose their
// connection, the others stay; messages to the lost ones that do not resume
// (XEP-0198, test/e2e-resume-lost-front-end.test.ts) go offline and are
// delivered when they log in again, on any front end.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("a front end killed under live clients", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const login = async (user: string, c2s: number) => {
    const c = await connectClient({ port: farm.c2sPorts[c2s]!.port, username: user, password: "pw", resource: "r" });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    // Each client stays on the front end it is sent to: a redirect could put a watcher on the one killed.
    // xmpp.js enables resumption: the lost client's session waits resume_timeout more in its sm.
    farm = await Farm.create({ c2sCount: 2, smCount: 2, sm: { c2s_grace: 2 }, c2s: { redirect_margin: 1000, resume_timeout: 2 } });
    await farm.start();
    await farm.addUsers("u", 3, "pw", 64);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm.stop();
    farm.cleanup();
  });

  it("drops only its clients; what is sent to them meanwhile waits offline", async () => {
    const lost = await login("u1", 0);
    const stays = await login("u2", 1);
    const watcher = await login("u3", 1);
    for (const c of [lost, stays, watcher]) await c.xmpp.send(xml("presence"));
    // u3 follows u1's presence.
    await watcher.xmpp.send(xml("presence", { to: "u1@localhost", type: "subscribe" }));
    await lost.next((s) => s.is("presence") && s.attrs.type === "subscribe");
    await lost.xmpp.send(xml("presence", { to: "u3@localhost", type: "subscribed" }));
    await watcher.next((s) => s.is("presence") && s.attrs.from === "u1@localhost/r" && !s.attrs.type);
    await stays.xmpp.send(xml("message", { to: "u1@localhost", type: "chat", id: "before" }, xml("body", {}, "before")));
    await lost.next((s) => s.is("message") && s.attrs.id === "before");

    const disconnected = new Promise((r) => lost.xmpp.on("error", r)).catch(() => {});
    process.kill(farm.childPid("c2s-1"), "SIGKILL");
    void disconnected;
    // The sms end u1's session after the grace period and its resumption window: u3 hears it is gone.
    await watcher.next((s) => s.is("presence") && s.attrs.from === "u1@localhost/r" && s.attrs.type === "unavailable", 15_000);
    // Messages to u1 are stored now, not lost.
    await stays.xmpp.send(xml("message", { to: "u1@localhost", type: "chat", id: "while-gone" }, xml("body", {}, "while gone")));
    await farm.waitOffline("u1@localhost");
    // The other front end's clients never noticed.
    await stays.xmpp.send(xml("message", { to: "u3@localhost", type: "chat", id: "still" }, xml("body", {}, "still here")));
    await watcher.next((s) => s.is("message") && s.attrs.id === "still");
    // Nor did a front end end their streams: it logs every stream error it sends.
    expect(farm.lines.filter((l) => (l.msg === "stream error" || l.msg === "redirected") && /^u[23]@/.test(String(l.user)))).toEqual([]);

    // u1 comes back on the surviving front end and gets what it missed.
    const back = await login("u1", 1);
    await back.xmpp.send(xml("presence"));
    const m = await back.next((s) => s.is("message") && s.attrs.id === "while-gone");
    expect(m.getChildText("body")).toBe("while gone");
    expect(m.getChild("delay", "urn:xmpp:delay")).toBeTruthy();
  });
});
