// What the sms send a front end's sessions (protocol §2): each ROUTE frame's
// session message goes to its connection, follows a session that moved to
// another front end, or, for a session gone, is answered so that the sm
// holds no ghost of it and nothing on its way is lost; TAKEN and DELIVERED,
// the acknowledgements either way (§2.5).
import { AckBatch } from "../lib/link/ack-batch.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import {
  MAX_SESSION_STATE_META,
  SessionOp,
  addDeliveredNum,
  decodeSessionPayload,
  deliveredPayload,
  eachTaken,
  encodeSessionPayload,
  sessionMetaLength,
  takenPayload,
  type TakenMeta,
} from "../lib/link/session-payload.js";
import type { Logger } from "../lib/log.js";
import { routedAgain } from "../lib/stanza-rules.js";
import type { C2sContext } from "./c2s-context.js";
import { handOff } from "./stream-management-protocol.js";

/** DELIVERs one DELIVERED acknowledges at most, so that its meta stays within 64 KiB. */
const DELIVERED_PER_FRAME = 500;

/**
 * The handler of the link's ROUTE frames for a front end's sessions;
 * `incarnation` names the linked sm's current run ("name/started").
 */
export function sessionFrames(ctx: C2sContext, log: Logger, incarnation: (sm: string) => string | null): (from: string, key: string, payload: Buffer) => void {
  const { link } = ctx;
  // Ranges of nums: from, to, from, to, …
  const deliveredNums = new AckBatch<number[]>(DELIVERED_PER_FRAME, () => [], (sm, nums) => {
    link.send(sm, "", encodeSessionPayload(SessionOp.Delivered, { nums }));
  });
  // From an sm of an earlier version, which numbers no DELIVER: sid, origin, sid, origin, …
  const deliveredPairs = new AckBatch<string[]>(DELIVERED_PER_FRAME, () => [], (sm, pairs) => {
    link.send(sm, "", deliveredPayload(pairs, ctx.flatReaders.has(sm)));
  });
  /** TAKEN (protocol §2.5): stanzas the sm took, and sessions it does not hold, which are rebuilt there. */
  const taken = (from: string, meta: TakenMeta) => {
    const passOn = new Map<string, (string | number)[]>();
    eachTaken(meta, (sid, seq) => {
      const conn = ctx.get(sid);
      if (conn) conn.taken(seq);
      else if (!ctx.orphanTaken(sid, seq)) {
        const moved = ctx.forwarded(sid);
        if (!moved) return;
        let seqs = passOn.get(moved.c2s);
        if (!seqs) passOn.set(moved.c2s, (seqs = []));
        seqs.push(moved.sid, seq);
      }
    });
    for (const [c2s, seqs] of passOn) link.send(c2s, "", takenPayload(seqs, [], ctx.flatReaders.has(c2s)));
    for (const sid of meta.unknown ?? []) {
      const conn = ctx.get(sid);
      if (!conn?.hasSession) {
        ctx.routeOrphan(sid);
        continue;
      }
      log.info({ sid, sm: from }, "the sm does not hold this session; rebuilding it");
      conn.revive();
    }
  };

  return (from, key, payload) => {
    let msg;
    try {
      msg = decodeSessionPayload(payload);
    } catch (err) {
      log.error({ err: (err as Error).message, from }, "bad session payload");
      return;
    }
    if (msg.op === SessionOp.Takeover) {
      // Another front end's client resumes a session held here (protocol §2.3): by its id, which
      // names the front end it began on, not necessarily this one.
      const meta = msg.meta;
      const conn = ctx.resumable(meta.previd);
      if (!conn || conn.bareJid !== meta.user) {
        link.send(from, key, encodeSessionPayload(SessionOp.Handoff, { sid: meta.newSid, ok: false }));
        return;
      }
      const state = handOff(conn);
      ctx.forward(conn.sid, from, meta.newSid);
      link.send(from, key, encodeSessionPayload(SessionOp.Handoff, { sid: meta.newSid, ok: true, ...state.meta }, state.queued));
      return;
    }
    if (msg.op === SessionOp.Taken) return taken(from, msg.meta);
    if (msg.op === SessionOp.Sessions) {
      // What the sm holds for us that no connection here has (its END was lost with a router): END again.
      for (const sid of msg.meta.sids) {
        if (!ctx.get(sid) && !ctx.forwarded(sid)) link.send(from, "", encodeSessionPayload(SessionOp.End, { sid }));
      }
      return;
    }
    if (msg.op === SessionOp.Vouchers) {
      // Protocol §2.8: a lost front end's PLAIN clients are taken here without a PBKDF2 each.
      const now = Date.now();
      const vouchers = Object.entries(msg.meta.plain);
      for (const [user, voucher] of vouchers) ctx.plain.acceptLost(user, Buffer.from(voucher, "base64"), now);
      log.info({ from, lost: msg.meta.from, vouchers: vouchers.length }, "PLAIN vouchers for a lost front end's clients");
      return;
    }
    // Protocol §2.5: the sm keeps a DELIVER with an identity until told it arrived, whatever becomes of it here.
    if (msg.op === SessionOp.Deliver && msg.meta.origin !== undefined) {
      if (msg.meta.num !== undefined) addDeliveredNum(deliveredNums.frame(from), msg.meta.num);
      else deliveredPairs.frame(from).push(msg.meta.sid, msg.meta.origin);
    }
    // Every op left names a session.
    if (!("sid" in msg.meta)) return;
    const sid = msg.meta.sid;
    const conn = ctx.get(sid);
    if (!conn) {
      // A session that moved to another front end: late frames follow it there (a DELIVER acknowledged
      // here, without the num, which names a DELIVER to this front end only).
      const moved = ctx.forwarded(sid);
      if (moved) link.send(moved.c2s, key, encodeSessionPayload(msg.op, { ...msg.meta, sid: moved.sid, num: undefined } as never, msg.xml));
      // Left to the sm as this front end stops: the sm's log of the session has it for the resumption.
      else if (ctx.isLeftToSm(sid)) return;
      else if (msg.op === SessionOp.Deliver && !msg.meta.confirm) {
        // The connection is gone (protocol §2): END again, in case the first was lost with a router, so
        // that the sm holds no ghost of it; then a stanza that was on its way is routed again, under
        // its identity, so that the user's other sessions, which had their copy, drop this one.
        link.send(SM_ADDRESS, key, encodeSessionPayload(SessionOp.End, { sid }));
        if (routedAgain(msg.xml)) ctx.routeAgain(key, msg.xml, msg.meta.origin);
      }
      return;
    }
    switch (msg.op) {
      case SessionOp.Deliver:
        conn.deliver(msg.xml, msg.meta);
        break;
      case SessionOp.Started:
        conn.bound(msg.meta.jid, incarnation(from));
        break;
      case SessionOp.StartFailed:
        conn.bindFailed(msg.meta.condition);
        break;
      case SessionOp.Close:
        conn.closedBySm(msg.meta.condition, msg.meta.text);
        break;
      case SessionOp.Handoff:
        conn.handedOver(msg.meta, msg.xml, from);
        break;
      case SessionOp.SessionState:
        if (sessionMetaLength(payload) <= MAX_SESSION_STATE_META) conn.sessionState(msg.meta.state);
        else log.warn({ from, sid: conn.sid, bytes: sessionMetaLength(payload) }, "session state too large to carry; the last one kept");
        break;
      default:
        log.warn({ op: msg.op, from }, "unexpected session op");
    }
  };
}
