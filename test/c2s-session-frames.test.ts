// What the sms send a front end's sessions (c2s/session-frames.ts): each
// DELIVER with an identity acknowledged (protocol §2.5), by ranges of its
// sm's numbers, or by session and identity to an sm of an earlier version,
// which numbers none; and, for a session no longer here, a DELIVER for one that is simply gone gets END
// again and its stanza is routed again under its identity; one that comes
// late for a session the front end left to its sm as it stopped (END
// `resume`, protocol §2.6) is left there, in the session's log, for the
// client's resumption elsewhere: no END would end the session the client is
// about to resume, and nothing is routed twice. Over sockets in memory, the
// frames handed to the handler as the link hands them.
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { SM_ADDRESS } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { sessionFrames } from "../c2s/session-frames.js";
import { MemoryFront } from "./harness/c2s-front.js";

const NS_SM = "urn:xmpp:sm:3";
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };
const MESSAGE = Buffer.from("<message type='chat' from='u2@localhost/x' to='u1@localhost/r' id='m1'><body>late</body></message>");

const fronts: MemoryFront[] = [];
afterEach(async () => {
  for (const f of fronts.splice(0)) await f.close();
});

/** u1/r bound on a front end, the test answering START as the sm does; resumable if asked. */
async function bound(resumable: boolean): Promise<{ f: MemoryFront; sid: string }> {
  const f = await MemoryFront.open(CLEAR);
  fronts.push(f);
  const { stream: s, conn } = await f.bound();
  if (resumable) {
    s.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    await s.until(/<enabled [^>]*\/>/);
  }
  return { f, sid: conn.sid };
}

/** A DELIVER for `sid` from sm-1, as it comes off the link, handed to the front end's handler. */
function lateDeliver(f: MemoryFront, sid: string): void {
  const dispatch = sessionFrames(f.ctx, pino({ level: "silent" }), () => "sm-1/1");
  dispatch("sm-1", "u1@localhost", encodeSessionPayload(SessionOp.Deliver, { sid, origin: "c2s-2/s9/4.0", n: 1 }, MESSAGE));
}

/** sm-1's DELIVER of message `id` to `sid`, numbered `num` unless left out (an sm of an earlier version). */
const deliver = (sid: string, id: string, num?: number): Buffer =>
  encodeSessionPayload(SessionOp.Deliver, { sid, origin: `c2s-2/s9/${id}.0`, ...(num !== undefined && { num }) }, MESSAGE.toString().replace("m1", id));

/** The frames the front end sent since `from`, as op and meta; DELIVERED (its acknowledgement) left out. */
function sentSince(f: MemoryFront, from: number): { to: string; op: SessionOp; meta: unknown }[] {
  return f.link.frames.slice(from).flatMap(({ to, msg }) => (msg.op === SessionOp.Delivered ? [] : [{ to, op: msg.op, meta: msg.meta }]));
}

describe("a DELIVER for a session no longer here", () => {
  it("for a session that is gone: END again, and the stanza routed again under its identity", async () => {
    const { f, sid } = await bound(false);
    await f.close();
    const from = f.link.frames.length;
    lateDeliver(f, sid);
    expect(sentSince(f, from)).toEqual([
      { to: SM_ADDRESS, op: SessionOp.End, meta: { sid } },
      { to: SM_ADDRESS, op: SessionOp.Forward, meta: { origin: "c2s-2/s9/4.0" } },
    ]);
  });

  it("for a session the stopping front end left to its sm for resumption: left there, nothing sent", async () => {
    const { f, sid } = await bound(true);
    await f.close();
    const ended = f.link.frames.filter(({ msg }) => msg.op === SessionOp.End).map(({ msg }) => msg.meta);
    expect(ended).toEqual([{ sid, resume: true }]);
    const from = f.link.frames.length;
    lateDeliver(f, sid);
    expect(sentSince(f, from)).toEqual([]);
  });
});

describe("DELIVERED", () => {
  it("acknowledges a turn's DELIVERs to each sm by ranges of their numbers, and an earlier version's by session and identity", async () => {
    const { f, sid } = await bound(false);
    const dispatch = sessionFrames(f.ctx, pino({ level: "silent" }), () => "sm-1/1");
    const from = f.link.frames.length;
    for (const num of [10, 11, 12, 20]) dispatch("sm-1", "u1@localhost", deliver(sid, `a${num}`, num));
    dispatch("sm-2", "u1@localhost", deliver(sid, "b5", 5));
    dispatch("sm-3", "u1@localhost", deliver(sid, "c"));
    // The acknowledgements of a turn go once it ends.
    expect(f.link.frames.length).toBe(from);
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.link.frames.slice(from).map(({ to, msg }) => ({ to, op: msg.op, meta: msg.meta }))).toEqual([
      { to: "sm-1", op: SessionOp.Delivered, meta: { nums: [10, 12, 20, 20] } },
      { to: "sm-2", op: SessionOp.Delivered, meta: { nums: [5, 5] } },
      { to: "sm-3", op: SessionOp.Delivered, meta: { got: { [sid]: ["c2s-2/s9/c.0"] } } },
    ]);
  });

  it("passes a DELIVER for a session moved to another front end on without its number, which names a DELIVER to this one", async () => {
    const { f, sid } = await bound(false);
    await f.close();
    f.ctx.forward(sid, "c2s-2", "s2");
    const from = f.link.frames.length;
    sessionFrames(f.ctx, pino({ level: "silent" }), () => "sm-1/1")("sm-1", "u1@localhost", deliver(sid, "m1", 7));
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.link.frames.slice(from).map(({ to, msg }) => ({ to, op: msg.op, meta: msg.meta }))).toEqual([
      { to: "c2s-2", op: SessionOp.Deliver, meta: { sid: "s2", origin: "c2s-2/s9/m1.0" } },
      { to: "sm-1", op: SessionOp.Delivered, meta: { nums: [7, 7] } },
    ]);
  });
});
