// XEP-0198 (c2s/stream-management-protocol.ts, through the connection) over
// sockets in memory: a dropped session resumed on this front end, one taken
// over from another front end (TAKEOVER answered by HANDOFF) or from the sm
// (RESUME), one handed over to another front end; and a session's module
// state (SESSION_STATE) carried along each way.
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, type HandoffMeta } from "../lib/link/session-payload.js";
import type { ClientConnection } from "../c2s/client-connection.js";
import type { Member } from "../lib/link/member.js";
import { handOff, restoreSession } from "../c2s/stream-management-protocol.js";
import { MemoryFront } from "./harness/c2s-front.js";
import type { RawStream } from "./harness/raw-stream.js";

const NS_SM = "urn:xmpp:sm:3";
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };
const BIND = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>";
const MSG = (id: string) => `<message from='u2@localhost/x' to='u1@localhost/r' id='${id}'><body>${id}</body></message>`;
const STATE = { carbons: { enabled: true }, "mod-x": [1, "two"] };

const fronts: MemoryFront[] = [];
afterEach(async () => {
  for (const f of fronts.splice(0)) await f.close();
});

async function front(): Promise<MemoryFront> {
  const f = await MemoryFront.open(CLEAR);
  fronts.push(f);
  return f;
}

/** A client of u1 logged in with PLAIN, its restarted stream open, not bound. */
async function authenticated(f: MemoryFront): Promise<{ s: RawStream; conn: ClientConnection }> {
  const { stream: s, conn } = f.connect();
  await s.login({ security: "none", mechanism: "PLAIN", username: "u1", password: "pw", until: "authenticated" });
  s.received = "";
  return { s, conn };
}

/** u1/r bound (the test answering START as the sm does) with resumable stream management enabled. */
async function resumable(f: MemoryFront): Promise<{ s: RawStream; conn: ClientConnection; id: string }> {
  const { s, conn } = await authenticated(f);
  s.send(BIND);
  await f.link.next(SessionOp.Start);
  conn.bound("u1@localhost/r", "sm-1/1");
  await s.until(/<\/iq>/);
  s.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
  const id = (await f.link.next(SessionOp.Resumable)).meta.id;
  await s.until(/<enabled /);
  s.received = "";
  return { s, conn, id };
}

describe("resumption on this front end", () => {
  it("takes a dropped session over on a new connection: its sid, the stanzas not acknowledged again; the sm hears only that the client is active (XEP-0352 §5.2)", async () => {
    const f = await front();
    const old = await resumable(f);
    const sid = old.conn.sid;
    for (const id of ["m1", "m2", "m3"]) old.conn.deliver(MSG(id));
    await old.s.until(/m3<\/body><\/message>/);
    old.s.send(`<a xmlns='${NS_SM}' h='1'/>`);
    old.s.destroy();
    await new Promise<void>((resolve) => {
      const check = () => (old.conn.isBound ? setImmediate(check) : resolve());
      check();
    });
    expect(old.conn.hasSession).toBe(true);
    f.link.frames.length = 0;

    const next = await authenticated(f);
    next.s.send(`<resume xmlns='${NS_SM}' previd='${old.id}' h='2'/>`);
    const got = await next.s.until(/<r xmlns='urn:xmpp:sm:3'\/>/);
    expect(got).toBe(`<resumed xmlns='${NS_SM}' previd='${old.id}' h='0'/>${MSG("m3")}<r xmlns='${NS_SM}'/>`);
    expect(next.conn.sid).toBe(sid);
    expect(f.ctx.get(sid)).toBe(next.conn);
    expect(next.conn.isBound).toBe(true);
    expect(f.link.frames.map((fr) => fr.msg)).toEqual([{ op: SessionOp.ClientState, meta: { sid, active: true }, xml: Buffer.alloc(0) }]);
  });

  it("answers an h beyond what was sent with <failed/>, and leaves the session where it is", async () => {
    const f = await front();
    const old = await resumable(f);
    old.conn.deliver(MSG("m1"));
    await old.s.until(/<\/message>/);
    const next = await authenticated(f);
    next.s.send(`<resume xmlns='${NS_SM}' previd='${old.id}' h='2'/>`);
    expect(await next.s.until(/<\/failed>/)).toBe(`<failed xmlns='${NS_SM}'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
    expect(old.conn.isBound).toBe(true);
  });
});

describe("resumption across front ends", () => {
  /** A HANDOFF as the front end that held the session sends it: one stanza unacknowledged, one not taken by the sm. */
  function handoff(sid: string, extra: Partial<HandoffMeta> = {}): { meta: HandoffMeta; queued: Buffer } {
    const unacked = MSG("late");
    const pending = "<message to='u2@localhost' from='u1@localhost/r' id='p1'><body>out</body></message>";
    const meta: HandoffMeta = {
      sid,
      ok: true,
      jid: "u1@localhost/r",
      oldSid: "s9",
      inbound: 4,
      outbound: 2,
      lengths: [Buffer.byteLength(unacked)],
      confirms: [0],
      presence: "<presence from='u1@localhost/r'/>",
      interested: true,
      seq: 5,
      pending: [[5, 4, Buffer.byteLength(pending)]],
      recent: [],
      ns: [0],
      lastN: 0,
      state: STATE,
      ...extra,
    };
    return { meta, queued: Buffer.from(unacked + pending) };
  }

  it("asks the front end the id names (TAKEOVER), and from its HANDOFF rebuilds the session on the sm, module state and all", async () => {
    const f = await front();
    const { s, conn } = await authenticated(f);
    const previd = "c2s-2~s9~abcdef";
    s.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='1'/>`);
    const takeover = await f.link.next(SessionOp.Takeover);
    expect(takeover.to).toBe("c2s-2");
    expect(takeover.meta).toEqual({ sid: "s9", previd, user: "u1@localhost", newSid: conn.sid });

    const { meta, queued } = handoff(conn.sid);
    conn.handedOver(meta, queued, "c2s-2");
    const rebuild = await f.link.next(SessionOp.Rebuild);
    expect(rebuild.key).toBe("u1@localhost");
    expect(rebuild.meta).toEqual({
      sid: conn.sid,
      jid: "u1@localhost/r",
      ip: "127.0.0.1",
      secure: false,
      interested: true,
      replaces: { c2s: "c2s-2", sid: "s9" },
      state: STATE,
    });
    expect(rebuild.xml.toString()).toBe("<presence from='u1@localhost/r'/>");
    expect(await s.until(/<r xmlns='urn:xmpp:sm:3'\/>/)).toBe(`<resumed xmlns='${NS_SM}' previd='${previd}' h='4'/>${MSG("late")}<r xmlns='${NS_SM}'/>`);
    expect(conn.moduleState).toEqual(STATE);
    expect(conn.pendingSince).not.toBeNull();
  });

  it("asks the sm once the front end asked leaves the member table or restarts without answering, and not while it is there", async () => {
    const c2s2 = (started: number): Member => ({ name: "c2s-2", role: "c2s", info: { host: "localhost", port: 5322, tlsPort: 5323, weight: 1, capacity: 1000, started } });
    const sm: Member = { name: "sm-1", role: "sm", info: { started: 1 } };
    for (const [why, after] of [
      ["left", [sm]],
      ["restarted", [sm, c2s2(2)]],
    ] as const) {
      const f = await front();
      f.link.emit("members", [sm, c2s2(1)]);
      const { conn, s } = await authenticated(f);
      const previd = "c2s-2~s9~abcdef";
      s.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='0'/>`);
      expect((await f.link.next(SessionOp.Takeover)).to).toBe("c2s-2");
      // Another member's change says nothing of c2s-2.
      f.link.emit("members", [sm, c2s2(1), { ...c2s2(1), name: "c2s-3" }]);
      expect(f.link.frames.map((fr) => fr.msg.op), why).toEqual([]);
      f.link.emit("members", [...after]);
      expect((await f.link.next(SessionOp.Resume)).meta, why).toEqual({ sid: conn.sid, previd, h: 0 });
      // Its late refusal changes nothing: the sm answers now.
      conn.handedOver({ sid: conn.sid, ok: false }, Buffer.alloc(0), "c2s-2");
      expect(conn.pendingResume?.fromSm, why).toBe(true);
      // The sm's does: the client binds anew.
      conn.handedOver({ sid: conn.sid, ok: false }, Buffer.alloc(0), "sm-1");
      await s.until(/<failed xmlns='urn:xmpp:sm:3'>/);
      expect(conn.pendingResume, why).toBeNull();
    }
  });

  it("asks the sm (RESUME) for a session of this front end's that is not here, and takes its HANDOFF as already moved: no REBUILD", async () => {
    const f = await front();
    const { s, conn } = await authenticated(f);
    const previd = "c2s-1~s77~abcdef";
    s.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='0'/>`);
    expect((await f.link.next(SessionOp.Resume)).meta).toEqual({ sid: conn.sid, previd, h: 0 });
    const { meta, queued } = handoff(conn.sid, { moved: true, oldSid: "s77", lengths: [], confirms: [], ns: [], outbound: 0, pending: [] });
    conn.handedOver(meta, queued.subarray(0, 0), "sm-1");
    expect(await s.until(/\/>$/)).toBe(`<resumed xmlns='${NS_SM}' previd='${previd}' h='4'/>`);
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.Rebuild)).toEqual([]);
    // Its next REBUILD, on another sm, carries what it was handed.
    conn.rebuild();
    expect((await f.link.next(SessionOp.Rebuild)).meta.state).toEqual(STATE);
  });

  it("hands its session over to the front end a client resumed on: the stanzas not acknowledged, those not taken, and the module state, with no END", async () => {
    const f = await front();
    const { s, conn, id } = await resumable(f);
    conn.sessionState(STATE);
    conn.deliver(MSG("m1"));
    s.send("<message to='u2@localhost' id='c1'><body>out</body></message>");
    await f.link.next(SessionOp.Stanza);
    await s.until(/<\/message>/);
    const { meta, queued } = handOff(conn);
    expect(meta).toMatchObject({ jid: "u1@localhost/r", oldSid: conn.sid, inbound: 1, outbound: 1, seq: 1, state: STATE });
    expect(f.ctx.get(conn.sid)).toBeUndefined();
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.End)).toEqual([]);
    // What the receiving front end makes of it: the same queues and state.
    const session = restoreSession({ sid: "n1", ok: true, ...meta }, queued, id, "u1@localhost");
    expect(session.ack.queue.map((e) => e.xml)).toEqual([MSG("m1")]);
    expect(session.pipe.pending.map((e) => [e.seq, e.h, e.to, e.xml])).toEqual([
      [1, 1, "u2@localhost", "<message to='u2@localhost' id='c1' from='u1@localhost/r'><body>out</body></message>"],
    ]);
    expect(session.moduleState).toEqual(STATE);
  });
});
