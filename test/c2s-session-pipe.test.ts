// A bound session's traffic with its sm (c2s/session-pipe.ts, through the
// connection) over sockets in memory: SESSION_STATE kept and carried by
// REBUILD, a revived session's presence sent again, what the c2s answers
// itself, a stanza delivered twice written once, and what goes where when
// the client leaves (END, the stanzas it never acknowledged routed again),
// and XEP-0352's nonzas passed on as CLIENT_STATE; a stanza the sm has not
// taken sent again only while the sm is silent, or when it comes back.
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionOp, decodeSessionPayload, encodeSessionPayload } from "../lib/link/session-payload.js";
import type { ClientConnection } from "../c2s/client-connection.js";
import { BIND, MemoryFront } from "./harness/c2s-front.js";
import type { RawStream } from "./harness/raw-stream.js";

const NS_SM = "urn:xmpp:sm:3";
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };

const fronts: MemoryFront[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const f of fronts.splice(0)) await f.close();
});

/** u1/r bound, the test answering START as the sm does; what came before is cleared. */
async function bound(): Promise<{ f: MemoryFront; s: RawStream; conn: ClientConnection }> {
  const f = await MemoryFront.open(CLEAR);
  fronts.push(f);
  const { stream: s, conn } = await f.bound();
  return { f, s, conn };
}

/** SESSION_STATE as it comes off the link, dispatched as c2s/session-frames.ts does. */
function sessionState(conn: ClientConnection, state: Record<string, unknown>): void {
  const msg = decodeSessionPayload(encodeSessionPayload(SessionOp.SessionState, { sid: conn.sid, state }));
  if (msg.op !== SessionOp.SessionState) throw new Error("not SESSION_STATE");
  conn.sessionState(msg.meta.state);
}

describe("module state (SESSION_STATE)", () => {
  it("keeps the sm's latest state as it came, and sends it back in REBUILD; none sent, none carried", async () => {
    const { f, conn } = await bound();
    conn.rebuild();
    const plain = await f.link.next(SessionOp.Rebuild);
    expect(plain.meta).toEqual({ sid: conn.sid, jid: "u1@localhost/r", ip: "127.0.0.1", secure: false, interested: false, seq: 0 });

    sessionState(conn, { carbons: { enabled: false } });
    sessionState(conn, { carbons: { enabled: true }, "mod-y": null });
    conn.rebuild();
    const rebuild = await f.link.next(SessionOp.Rebuild);
    expect(rebuild.key).toBe("u1@localhost");
    expect(rebuild.meta).toEqual({ ...plain.meta, state: { carbons: { enabled: true }, "mod-y": null } });
  });

  it("is refused off the link unless `state` is an object", () => {
    for (const state of [null, [1], "x", 3]) {
      const payload = encodeSessionPayload(SessionOp.SessionState, { sid: "s1", state: state as never });
      expect(() => decodeSessionPayload(payload)).toThrow(/wrong shape/);
    }
  });
});

describe("the pipe to the sm", () => {
  it("revives a session the sm does not hold: REBUILD with its presence, then the presence as the front end's own stanza", async () => {
    const { f, s, conn } = await bound();
    s.send(`<enable xmlns='${NS_SM}' resume='true'/><presence><show>away</show></presence>`);
    const first = await f.link.next(SessionOp.Stanza);
    expect(first.meta).toEqual({ sid: conn.sid, seq: 1, h: 1 });
    conn.taken(1);
    conn.revive();
    const rebuild = await f.link.next(SessionOp.Rebuild);
    expect(rebuild.meta).toMatchObject({ seq: 1, resume: { inbound: 1, outbound: 0, lastN: 0, max: 300 } });
    expect(rebuild.xml.toString()).toBe("<presence from='u1@localhost/r'><show>away</show></presence>");
    const again = await f.link.next(SessionOp.Stanza);
    // Counted after the client's own, with no 'h' of the client's.
    expect(again.meta).toEqual({ sid: conn.sid, seq: 2 });
    expect(again.xml.toString()).toBe(rebuild.xml.toString());
  });

  it("answers RFC 3921's session iq and a second bind itself, and passes neither on", async () => {
    const { f, s } = await bound();
    s.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>" + BIND.replace("b1", "b2"));
    await s.until(/id='b2'/);
    expect(s.received).toBe(
      "<iq type='result' id='s1'/><iq type='error' to='u1@localhost/r' id='b2'><error type='cancel' by='localhost'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    );
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.Stanza)).toEqual([]);
  });

  it("writes a stanza the sm sends again under the same origin once", async () => {
    const { s, conn } = await bound();
    const msg = "<message from='u2@localhost/x' to='u1@localhost/r' id='o1'><body>once</body></message>";
    conn.deliver(msg, { origin: "sm-1/7" });
    conn.deliver(msg, { origin: "sm-1/7" });
    conn.deliver("<message id='o2'/>", { origin: "sm-1/8" });
    await s.until(/id='o2'/);
    expect(s.received).toBe(msg + "<message id='o2'/>");
  });

  it("when the client goes: END, then what it never acknowledged routed again, but not an offline message the sm keeps", async () => {
    const { f, s, conn } = await bound();
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<enabled /);
    conn.deliver("<message from='u2@localhost/x' to='u1@localhost/r' id='m1'><body>1</body></message>");
    conn.deliver("<message from='u2@localhost/x' to='u1@localhost/r' id='m2'><body>2</body></message>", { confirm: 7 });
    await s.until(/id='m2'/);
    s.send(`</stream:stream>`);
    const end = await f.link.next(SessionOp.End);
    expect(end.meta).toEqual({ sid: conn.sid });
    const forward = await f.link.next(SessionOp.Forward);
    expect(forward.key).toBe("u1@localhost");
    expect(forward.xml.toString()).toContain("id='m1'");
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.Forward)).toEqual([]);
  });
});

describe("client state indication (XEP-0352)", () => {
  it("passes <inactive/> and <active/> on as CLIENT_STATE, uncounted by XEP-0198, and nothing else of the namespace", async () => {
    const { f, s, conn } = await bound();
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<enabled /);
    s.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    expect((await f.link.next(SessionOp.ClientState)).meta).toEqual({ sid: conn.sid, active: false });
    s.send("<active xmlns='urn:xmpp:csi:0'/>");
    const active = await f.link.next(SessionOp.ClientState);
    expect(active.key).toBe("u1@localhost");
    expect(active.meta).toEqual({ sid: conn.sid, active: true });
    // Nonzas, not stanzas: the client's count stays at none.
    s.received = "";
    s.send(`<r xmlns='${NS_SM}'/>`);
    expect(await s.until(/<a [^>]*\/>/)).toBe(`<a xmlns='${NS_SM}' h='0'/>`);
    s.send("<idle xmlns='urn:xmpp:csi:0'/>");
    expect(await s.until(/<\/stream:stream>/)).toContain("unsupported-stanza-type");
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.ClientState)).toEqual([]);
  });
});

describe("timed resends of what the sm has not taken", () => {
  /** A bound session with the context's sweep and clock under the test's hand, and one stanza sent and not taken. */
  async function waiting(): Promise<{ f: MemoryFront; conn: ClientConnection }> {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    const { f, s, conn } = await bound();
    s.send("<message to='u2@localhost' id='m1'><body>hi</body></message>");
    await f.link.next(SessionOp.Stanza);
    return { f, conn };
  }
  const stanzas = (f: MemoryFront) => f.link.frames.filter((fr) => fr.msg.op === SessionOp.Stanza).length;
  /** A frame from the sm that is nothing to this session: the sm is alive and working. */
  const fromSm = (f: MemoryFront, sm = "sm-1") => f.link.emit("route", sm, "", encodeSessionPayload(SessionOp.Taken, { taken: {} }));

  it("sends nothing again while the sm is heard from, and again once it has been silent 3 s", async () => {
    const { f } = await waiting();
    for (let i = 0; i < 10; i++) {
      fromSm(f);
      vi.advanceTimersByTime(1_000);
    }
    expect(stanzas(f)).toBe(0);
    // Another sm's frames are not this one's.
    fromSm(f, "sm-2");
    vi.advanceTimersByTime(3_000);
    expect(stanzas(f)).toBe(1);
  });

  it("sends again after 3 s to an sm never heard from", async () => {
    const { f } = await waiting();
    vi.advanceTimersByTime(2_000);
    expect(stanzas(f)).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(stanzas(f)).toBe(1);
  });

  it("sends again at once to the sm that owns the session when it comes back into the member table", async () => {
    const { f } = await waiting();
    const sm = { name: "sm-1", role: "sm" as const, info: {} };
    f.link.emit("members", [sm]);
    expect(stanzas(f)).toBe(1);
    f.link.emit("members", [sm]);
    expect(stanzas(f)).toBe(1);
    f.link.emit("members", []);
    f.link.emit("members", [sm]);
    expect(stanzas(f)).toBe(2);
  });
});
