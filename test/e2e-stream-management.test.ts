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

/** The front end a client is connected to now (by the port its socket reaches), or null between connections. */
function frontEndOf(farm: Farm, c: TestClient): string | null {
  const port = c.xmpp.socket?.socket?.remotePort;
  const i = farm.c2sPorts.findIndex((p) => p.port === port);
  return i < 0 ? null : `c2s-${i + 1}`;
}

/** Resolves the next time the client resumes its XEP-0198 session. */
function nextResume(c: TestClient): Promise<void> {
  let resumed = false;
  return new Promise((resolve) =>
    c.xmpp.streamManagement.on("resumed", () => {
      if (!resumed) resolve();
      resumed = true;
    }),
  );
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
    const resumed = nextResume(a);
    a.xmpp.socket!.socket.destroy();
    // The front end's own state, which nothing but its log shows: it holds the session for a resumption.
    await farm.waitFor((l) => l.msg === "session hibernating" && l.jid === "u1@localhost/r", 5000, before);
    await send(b, "u1@localhost/r", "while-away");
    // On the same front end, or on another if the client was sent there: a resumption either way.
    await resumed;
    const m = await a.next((s) => s.is("message") && s.attrs.id === "while-away");
    expect(m.getChildText("body")).toBe("while-away");
    // The session never ended: no unavailable presence, no new session at the sm (its log is where that shows).
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
    // As above: the front end holds the session, as only its log shows.
    await farm.waitFor((l) => l.msg === "session hibernating" && l.jid === "u3@localhost/r", 5000, before);
    await send(b, "u3@localhost/r", "lost-connection");
    // After resume_timeout the session ends and the message goes offline.
    await farm.waitOffline("u3@localhost");
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
    const holder = frontEndOf(farm, d)!;
    const other = holder === "c2s-1" ? "c2s-2" : "c2s-1";
    for (const id of ["d1", "d2", "d3"]) await send(b, "u4@localhost", id);
    await d.next((s) => s.is("message") && s.attrs.id === "d3");
    const before = farm.lines.length;
    const resumed = nextResume(d);
    expect((await farm.cli("c2s", "drain", holder, "--rate", "10")).code).toBe(0);
    // b may have been on the drained front end too, and gone with it (no XEP-0198); the drained
    // front end's ports are closed, so a client logging in now goes to the other one, as an SRV list would.
    // Another resource than the earlier test's u3/r, which the drain moves too.
    const bystander = await login("u3", false, farm.c2sPorts[other === "c2s-1" ? 0 : 1]!.port, "b");
    // Sent while the client may still be between front ends: it must arrive after the resume.
    await send(bystander, "u4@localhost/r", "in-flight");
    await resumed;
    expect(frontEndOf(farm, d)).toBe(other);
    const m = await d.next((s) => s.is("message") && s.attrs.id === "in-flight");
    expect(m.getChildText("body")).toBe("in-flight");
    await send(bystander, "u4@localhost/r", "after-move");
    await d.next((s) => s.is("message") && s.attrs.id === "after-move");
    await send(d, "u3@localhost/b", "reply-after-move");
    await bystander.next((s) => s.is("message") && s.attrs.id === "reply-after-move");
    // One session throughout: the sm moved it, never ended or restarted it (what its log records).
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
    const first = frontEndOf(farm, d)!;
    let resumed = nextResume(d);
    expect((await farm.cli("c2s", "drain", first, "--rate", "10")).code).toBe(0);
    await resumed;
    const second = frontEndOf(farm, d)!;
    resumed = nextResume(d);
    expect((await farm.cli("c2s", "drain", second, "--rate", "10")).code).toBe(0);
    await resumed;
    const third = frontEndOf(farm, d)!;
    expect([first, second]).not.toContain(third);
    // The session goes on where it is: a message reaches it, and its answer gets back (from a
    // client on the one front end not drained, whose ports are open).
    const e = await login("v2", false, farm.c2sPorts[Number(third.slice("c2s-".length)) - 1]!.port);
    await e.xmpp.send(xml("message", { to: "v1@localhost/r", type: "chat", id: "after-two-moves" }, xml("body", {}, "hi")));
    await d.next((s) => s.is("message") && s.attrs.id === "after-two-moves");
    await d.xmpp.send(xml("message", { to: "v2@localhost/r", type: "chat", id: "reply" }, xml("body", {}, "hi")));
    await e.next((s) => s.is("message") && s.attrs.id === "reply");
    // One session throughout: the sm moved it twice, never ended or restarted it (what its log records).
    const sm = farm.lines.filter((l) => l.proc === "sm-1" && String(l.jid).startsWith("v1@localhost/"));
    expect(sm.map((l) => l.msg)).toEqual(["session started", "session moved with its connection", "session moved with its connection"]);
  });
});
