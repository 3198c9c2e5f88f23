// The sm's side of acknowledged stanzas (docs/protocol.md §2.5): numbered
// STANZAs taken once, TAKEN only when their deliveries are acknowledged,
// identities on deliveries, sessions it does not hold named unknown, and
// deliveries that wait for a front end cut off within its grace.
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload, type SessionMetaByOp } from "../lib/link/session-payload.js";
import { DOMAIN, Harness, type Frame } from "./sm-harness.js";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const chat = (n: number) => `<message to='${BOB}' type='chat' id='m${n}'><body>${n}</body></message>`;
/** TAKEN frames go out once the turn ends. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("sm: acknowledged stanzas", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  const taken = (c2s: string): SessionMetaByOp[SessionOp.Taken][] =>
    h.port.take((f) => f.to === c2s && f.op === SessionOp.Taken).map((f) => (f as Frame & { op: SessionOp.Taken }).meta);

  /** Alice on c2s-1 has sent Bob, on c2s-2, message 1: its DELIVER waits for bob.frames(). */
  const aliceSentBob = async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`, "c2s-1");
    const bob = await h.connect(`${BOB}/b`, "c2s-2");
    await bob.online();
    bob.frames();
    await alice.sendNumbered(chat(1), 1);
    await turn();
    return { alice, bob };
  };

  it("takes a numbered stanza once, and only when its delivery was acknowledged", async () => {
    const { alice, bob } = await aliceSentBob();
    const [deliver] = bob.frames();
    expect(deliver).toMatchObject({ op: SessionOp.Deliver, meta: { sid: bob.sid, origin: `c2s-1/${alice.sid}/1.0` } });
    expect(taken("c2s-1")).toEqual([]);

    // Acknowledged by its number, which names a DELIVER to c2s-2 only.
    const num = (deliver!.meta as { num: number }).num;
    await h.route("c2s-1", "", encodeSessionPayload(SessionOp.Delivered, { nums: [num, num] }));
    await turn();
    expect(taken("c2s-1")).toEqual([]);
    await h.route("c2s-2", "", encodeSessionPayload(SessionOp.Delivered, { nums: [num - 5, num + 5] }));
    await turn();
    expect(taken("c2s-1")).toEqual([{ taken: { [alice.sid]: 1 } }]);

    // Sent again (its TAKEN lost): not processed again, acknowledged again.
    await alice.sendNumbered(chat(1), 1);
    await turn();
    expect(bob.frames()).toEqual([]);
    expect(taken("c2s-1")).toEqual([{ taken: { [alice.sid]: 1 } }]);

    // After a gap (2 was lost), 3 waits to come again with 2.
    await alice.sendNumbered(chat(3), 3);
    await turn();
    expect(bob.frames()).toEqual([]);
    await alice.sendNumbered(chat(2), 2);
    await alice.sendNumbered(chat(3), 3);
    expect(bob.received().map((m) => m.attrs.id)).toEqual(["m2", "m3"]);
  });

  it("takes a front end's acknowledgements by session and identity, as one of an earlier version sends them", async () => {
    const { alice, bob } = await aliceSentBob();
    const origin = (bob.frames()[0]!.meta as { origin: string }).origin;
    await h.route("c2s-2", "", encodeSessionPayload(SessionOp.Delivered, { got: { [bob.sid]: [`${origin}#1`] } }));
    await turn();
    expect(taken("c2s-1")).toEqual([]);
    await h.route("c2s-2", "", encodeSessionPayload(SessionOp.Delivered, { got: { [bob.sid]: [origin] } }));
    await turn();
    expect(taken("c2s-1")).toEqual([{ taken: { [alice.sid]: 1 } }]);
  });

  it("speaks the flat form with a front end that reads it", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`, "c2s-1");
    const bob = await h.connect(`${BOB}/b`, "c2s-2");
    await h.members(["c2s-1", "c2s-2", "sm-1"], { "c2s-1": { flatAcks: true } });
    await bob.online();
    bob.frames();
    await alice.sendNumbered(chat(1), 1);
    await alice.sendNumbered(chat(2), 2);
    await turn();
    const origins = bob.frames().map((f) => (f.meta as { origin: string }).origin);
    expect(origins).toHaveLength(2);
    await h.route("c2s-2", "", encodeSessionPayload(SessionOp.Delivered, { delivered: [bob.sid, origins[0]!, bob.sid, origins[1]!] }));
    await turn();
    expect(taken("c2s-1")).toEqual([{ seqs: [alice.sid, 1, alice.sid, 2] }]);
    await h.route("c2s-1", ALICE, encodeSessionPayload(SessionOp.Stanza, { sid: "gone", seq: 4 }, `<presence from='${ALICE}/a'/>`));
    await turn();
    expect(taken("c2s-1")).toEqual([{ seqs: [], unknown: ["gone"] }]);
  });

  it("keeps a resumable session whose front end stops (END resume) for its client to resume elsewhere, and ends others", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`, "c2s-1");
    const bob = await h.connect(`${BOB}/b`, "c2s-2");
    await h.route("c2s-1", ALICE, encodeSessionPayload(SessionOp.Resumable, { sid: alice.sid, id: "r1", max: 300, stanzas: 100, bytes: 1 << 20 }));
    await h.route("c2s-1", ALICE, encodeSessionPayload(SessionOp.End, { sid: alice.sid, resume: true }));
    // Still there for its contacts: what comes for it is kept, not sent to the stopped front end.
    await bob.sendNumbered(`<message to='${ALICE}/a' type='chat' id='kept'><body>kept</body></message>`, 1);
    await turn();
    expect(alice.frames()).toEqual([]);
    await h.route("c2s-2", ALICE, encodeSessionPayload(SessionOp.Resume, { sid: "a2", previd: "r1", h: 0 }));
    const [handoff] = h.port.take((f) => f.to === "c2s-2" && f.op === SessionOp.Handoff);
    expect(handoff!.meta).toMatchObject({ sid: "a2", ok: true, moved: true, oldSid: alice.sid });
    expect(handoff!.xml.toString()).toContain("id=\"kept\"");

    // Without resumption, END ends the session, resume or not.
    await h.route("c2s-2", BOB, encodeSessionPayload(SessionOp.End, { sid: bob.sid, resume: true }));
    await h.route("c2s-2", ALICE, encodeSessionPayload(SessionOp.Stanza, { sid: "a2", seq: 1 }, `<message to='${BOB}/b' type='chat' id='late'><body>?</body></message>`));
    expect(await h.store.countOffline(BOB)).toBe(1);
  });

  it("names a session it does not hold in TAKEN unknown, rather than closing the client", async () => {
    h = await Harness.create(["alice"]);
    await h.route("c2s-1", ALICE, encodeSessionPayload(SessionOp.Stanza, { sid: "gone", seq: 4 }, `<presence from='${ALICE}/a'/>`));
    await turn();
    expect(taken("c2s-1")).toEqual([{ taken: {}, unknown: ["gone"] }]);
    expect(h.port.take((f) => f.op === SessionOp.Close)).toEqual([]);
  });

  it("holds a message for a user without a session while the sms settle, and delivers it live once the session is rebuilt", async () => {
    h = await Harness.create(["alice", "bob"], { settleMs: 60_000 });
    const alice = await h.connect(`${ALICE}/a`, "c2s-1");
    await h.members(["c2s-1", "c2s-2", "sm-1"]);
    await alice.sendNumbered(chat(1), 1);
    expect(await h.store.countOffline(BOB)).toBe(0);
    // Only a client's stanza, which may be a copy sent again, waits; for an unknown account nothing does.
    await alice.sendNumbered(`<message to='nobody@${DOMAIN}' type='chat' id='x'><body>?</body></message>`, 2);
    expect(alice.received().map((m) => [m.attrs.id, m.attrs.type])).toEqual([["x", "error"]]);
    await h.route("c2s-2", BOB, encodeSessionPayload(SessionOp.Rebuild, { sid: "b1", jid: `${BOB}/b`, ip: "127.0.0.1", secure: true, interested: false }, `<presence from='${BOB}/b'/>`));
    const delivered = h.port.take((f) => f.to === "c2s-2" && f.op === SessionOp.Deliver);
    expect(delivered.map((f) => f.xml.toString())).toEqual([expect.stringContaining('id="m1"')]);
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("keeps a delivery for a front end cut off within its grace, and sends it when the front end is back", async () => {
    h = await Harness.create(["alice", "bob"], { c2sGraceMs: 60_000 });
    await h.members(["c2s-1", "c2s-2", "sm-1"]);
    const alice = await h.connect(`${ALICE}/a`, "c2s-1");
    const bob = await h.connect(`${BOB}/b`, "c2s-2");
    await bob.online();
    bob.frames();
    await h.members(["c2s-1", "sm-1"]);
    await alice.sendNumbered(chat(1), 1);
    const [deliver] = h.port.take((f) => f.to === "c2s-2" && f.op === SessionOp.Deliver);
    h.sm.onUndeliverable("c2s-2", BOB, encodeSessionPayload(SessionOp.Deliver, deliver!.meta as SessionMetaByOp[SessionOp.Deliver], deliver!.xml));
    await h.sm.idle();
    expect(await h.store.countOffline(BOB)).toBe(0);
    expect(h.port.take((f) => f.op === SessionOp.Close)).toEqual([]);

    await h.members(["c2s-1", "c2s-2", "sm-1"]);
    expect(bob.received().map((m) => m.attrs.id)).toEqual(["m1"]);
  });
});
