// XEP-0198 stream management with xmpp.js: acknowledgements, resumption
// after a dropped connection with what was sent meanwhile, and a session
// that is never resumed handing its unacknowledged messages to offline storage,
// and a session moved by drains from front end to front end twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FarmOptions } from "../sim/local-farm.js";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

/** A farm for one describe block: started with `count` accounts `${prefix}N` (password pw), its clients and itself stopped after. */
function farmFor(opts: FarmOptions, prefix: string, count: number): { farm: () => Farm; clients: TestClient[] } {
  let farm: Farm;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    farm = await Farm.create(opts);
    await farm.start();
    await farm.addUsers(prefix, count, "pw", 64);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm.stop();
    farm.cleanup();
  });
  return { farm: () => farm, clients };
}

describe("XEP-0198 stream management", () => {
  const setup = farmFor({ c2sCount: 2, c2s: { resume_timeout: 3, public_host: "127.0.0.1" } }, "u", 4);
  const clients = setup.clients;
  let farm: Farm;
  beforeAll(() => {
    farm = setup.farm();
  });
  const login = async (user: string, reconnect = false, port = farm.c2sPorts[0]!.port, resource = "r") => {
    const c = await connectClient({ port, username: user, password: "pw", resource, reconnect });
    clients.push(c);
    return c;
  };
  const send = (from: TestClient, to: string, id: string) => from.xmpp.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));

  it("resumes a dropped session and delivers what was sent while it was away", async () => {
    const a = await login("u1", true);
    const b = await login("u2");
    await a.xmpp.send(xml("presence"));
    await b.xmpp.send(xml("presence"));
    await expect.poll(() => a.xmpp.streamManagement.enabled).toBe(true);
    expect(a.xmpp.streamManagement.id).toMatch(/^c2s-1~/);
    for (const id of ["m1", "m2", "m3", "m4", "m5", "m6"]) await send(b, "u1@localhost", id);
    await a.next((s) => s.is("message") && s.attrs.id === "m6");

    const before = farm.lines.length;
    a.xmpp.socket!.socket.destroy();
    await farm.waitFor((l) => l.msg === "session hibernating" && l.jid === "u1@localhost/r", 5000, before);
    await send(b, "u1@localhost/r", "while-away");
    // On the same front end, or on another if the client was sent there: a resumption either way.
    const resumed = await farm.waitFor((l) => /^session resumed/.test(l.msg) && l.jid === "u1@localhost/r", 10_000, before);
    expect(resumed.resent).toBeGreaterThanOrEqual(1);
    const m = await a.next((s) => s.is("message") && s.attrs.id === "while-away");
    expect(m.getChildText("body")).toBe("while-away");
    // The session never ended: no unavailable presence, no new session at the sm.
    expect(farm.lines.slice(before).filter((l) => l.proc === "sm-1" && (l.msg === "session ended" || l.msg === "session started"))).toEqual([]);
    await send(a, "u2@localhost", "after-resume");
    await b.next((s) => s.is("message") && s.attrs.id === "after-resume");
  });

  it("hands what a never-resumed session did not acknowledge to offline storage", async () => {
    const c = await login("u3");
    await c.xmpp.send(xml("presence"));
    await expect.poll(() => c.xmpp.streamManagement.enabled).toBe(true);
    const b = clients[1]!;
    const before = farm.lines.length;
    c.xmpp.socket!.socket.destroy();
    await farm.waitFor((l) => l.msg === "session hibernating" && l.jid === "u3@localhost/r", 5000, before);
    await send(b, "u3@localhost/r", "lost-connection");
    // After resume_timeout the session ends and the message goes offline.
    await farm.waitFor((l) => l.msg === "stored offline" && l.user === "u3@localhost", 10_000, before);
    const again = await login("u3");
    await again.xmpp.send(xml("presence"));
    const m = await again.next((s) => s.is("message") && s.attrs.id === "lost-connection");
    expect(m.getChildText("body")).toBe("lost-connection");
  });

  it("moves a session with a drain: the client resumes it on another front end and loses nothing", async () => {
    const d = await login("u4", true);
    const b = clients[1]!;
    await d.xmpp.send(xml("presence"));
    await expect.poll(() => d.xmpp.streamManagement.enabled).toBe(true);
    // The front end the balancer put it on is the one drained.
    const holder = (await farm.waitFor((l) => l.msg === "session bound" && l.jid === "u4@localhost/r")).proc;
    const other = holder === "c2s-1" ? "c2s-2" : "c2s-1";
    for (const id of ["d1", "d2", "d3"]) await send(b, "u4@localhost", id);
    await d.next((s) => s.is("message") && s.attrs.id === "d3");
    const before = farm.lines.length;
    expect((await farm.cli("c2s", "drain", holder, "--rate", "10")).code).toBe(0);
    await farm.waitFor((l) => l.proc === holder && l.msg === "stream error" && l.condition === "see-other-host" && l.user === "u4@localhost", 5000, before);
    // b may have been on the drained front end too, and gone with it (no XEP-0198); the drained
    // front end's ports are closed, so a client logging in now goes to the other one, as an SRV list would.
    // Another resource than the earlier test's u3/r, which the drain moves too.
    const bystander = await login("u3", false, farm.c2sPorts[other === "c2s-1" ? 0 : 1]!.port, "b");
    // Sent while the client may still be between front ends: it must arrive after the resume.
    await send(bystander, "u4@localhost/r", "in-flight");
    const resumed = await farm.waitFor((l) => l.proc === other && l.msg === "session resumed from another front end", 10_000, before);
    expect(resumed.from).toBe(holder);
    const m = await d.next((s) => s.is("message") && s.attrs.id === "in-flight");
    expect(m.getChildText("body")).toBe("in-flight");
    await send(bystander, "u4@localhost/r", "after-move");
    await d.next((s) => s.is("message") && s.attrs.id === "after-move");
    await send(d, "u3@localhost/b", "reply-after-move");
    await bystander.next((s) => s.is("message") && s.attrs.id === "reply-after-move");
    // One session throughout: the sm moved it, never ended or restarted it.
    const sm = farm.lines.slice(before).filter((l) => l.proc === "sm-1" && String(l.jid).startsWith("u4@localhost/"));
    expect(sm.map((l) => l.msg)).toEqual(["session moved with its connection"]);
  });
});

describe("XEP-0198 resumption after a first move", () => {
  const { farm: farmOf, clients } = farmFor({ c2sCount: 3, c2s: { public_host: "127.0.0.1" } }, "v", 2);

  it("moves a session twice: the id names the first front end, the second hands it to the third", async () => {
    const farm = farmOf();
    const login = async (user: string, reconnect: boolean, port = farm.c2sPorts[0]!.port) => {
      const c = await connectClient({ port, username: user, password: "pw", resource: "r", reconnect });
      clients.push(c);
      return c;
    };
    const d = await login("v1", true);
    await d.xmpp.send(xml("presence"));
    await expect.poll(() => d.xmpp.streamManagement.enabled).toBe(true);
    const first = (await farm.waitFor((l) => l.msg === "session bound" && l.jid === "v1@localhost/r")).proc;
    let before = farm.lines.length;
    expect((await farm.cli("c2s", "drain", first, "--rate", "10")).code).toBe(0);
    const second = (await farm.waitFor((l) => l.msg === "session resumed from another front end" && l.from === first, 10_000, before)).proc;
    before = farm.lines.length;
    expect((await farm.cli("c2s", "drain", second, "--rate", "10")).code).toBe(0);
    const third = await farm.waitFor((l) => l.msg === "session resumed from another front end" && l.from === second, 10_000, before);
    expect([first, second]).not.toContain(third.proc);
    // The session goes on where it is: a message reaches it, and its answer gets back (from a
    // client on the one front end not drained, whose ports are open).
    const e = await login("v2", false, farm.c2sPorts[Number(third.proc.slice("c2s-".length)) - 1]!.port);
    await e.xmpp.send(xml("message", { to: "v1@localhost/r", type: "chat", id: "after-two-moves" }, xml("body", {}, "hi")));
    await d.next((s) => s.is("message") && s.attrs.id === "after-two-moves");
    await d.xmpp.send(xml("message", { to: "v2@localhost/r", type: "chat", id: "reply" }, xml("body", {}, "hi")));
    await e.next((s) => s.is("message") && s.attrs.id === "reply");
    // One session throughout: the sm moved it twice, never ended or restarted it.
    const sm = farm.lines.filter((l) => l.proc === "sm-1" && String(l.jid).startsWith("v1@localhost/"));
    expect(sm.map((l) => l.msg)).toEqual(["session started", "session moved with its connection", "session moved with its connection"]);
  });
});
