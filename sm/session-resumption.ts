// XEP-0198 resumption without the front end (protocol §2.6): a resumable
// session whose front end is gone waits here for its client, keeping what
// it was sent, until the client resumes it on another front end (RESUME),
// its own front end comes back with it, or its window passes.
import { SessionOp, encodeSessionPayload, type DeliverMeta, type HandoffMeta, type ResumeMeta } from "../lib/link/session-payload.js";
import { inTurn } from "./origin.js";
import type { Session } from "./sessions.js";
import type { SmContext } from "./sm-context.js";

/** Identities a resumption hands the front end at most (as many as a c2s remembers), so that its meta stays within 64 KiB. */
const RECENT_ORIGINS = 512;

export interface ResumptionDeps {
  /** Ends a session (the session lifecycle's end()). */
  end(session: Session, reason: string): Promise<void>;
  /** Whether a c2s is missing from the member table now. */
  frontEndMissing(c2s: string): boolean;
}

export class SessionResumption {
  constructor(
    private readonly ctx: SmContext,
    private readonly deps: ResumptionDeps,
  ) {}

  /** Its front end is gone: a resumable session waits for its client to resume it on another. */
  detach(session: Session): void {
    const resumption = session.resumption!;
    if (resumption.waiting) return;
    resumption.waiting = setTimeout(() => void this.ctx.queue.run(session.user, () => this.unresumed(session, "resumption window passed")), resumption.maxMs);
    resumption.waiting.unref();
    session.log.info({ c2s: session.c2s, window: resumption.maxMs / 1000 }, "front end gone; session waits to be resumed");
  }

  /** A waiting session's own front end came back with it: what it was not written goes now. */
  reattach(session: Session, lastN: number): void {
    const resumption = session.resumption!;
    clearTimeout(resumption.waiting!);
    resumption.waiting = null;
    const { port, unacked } = this.ctx;
    for (const { n, xml, confirm, origin } of resumption.after(lastN)) {
      const meta: DeliverMeta = { sid: session.sid, n, ...(confirm > 0 && { confirm }) };
      if (origin === undefined) {
        port.send(session.c2s, session.user, encodeSessionPayload(SessionOp.Deliver, meta, xml));
        continue;
      }
      const num = unacked.nextNum(session.c2s);
      unacked.deliver(session.c2s, num, session.sid, origin, session.user, encodeSessionPayload(SessionOp.Deliver, { ...meta, origin, num }, xml), null);
    }
    session.log.info({ c2s: session.c2s }, "front end back; session no longer waits to be resumed");
  }

  /** A session that waits for a resumption ends (end() routes again what it held). */
  async unresumed(session: Session, reason: string): Promise<void> {
    if (session.resumption?.waiting) await this.deps.end(session, reason);
  }

  /**
   * A client resumes on front end `c2s` a session whose own front end is
   * gone: the session moves there, with the stanzas its client did not get;
   * one whose front end is still linked is handed over by it (§2.3).
   */
  async resumeHere(c2s: string, key: string, meta: ResumeMeta): Promise<void> {
    const { registry, port, unacked } = this.ctx;
    const session = registry.of(key).find((s) => s.resumption?.id === meta.previd);
    const resumption = session?.resumption;
    const plan = session && resumption && (resumption.waiting || this.deps.frontEndMissing(session.c2s)) ? resumption.resumeFrom(meta.h) : null;
    if (!session || !resumption || !plan) {
      port.send(c2s, key, encodeSessionPayload(SessionOp.Handoff, { sid: meta.sid, ok: false }));
      return;
    }
    if (resumption.waiting) clearTimeout(resumption.waiting);
    resumption.waiting = null;
    // What waited for the old connection is in the log, and goes with the session.
    for (const w of unacked.takeDelivers(session.c2s, (sid) => sid === session.sid)) w.tally?.release();
    const oldC2s = session.c2s;
    const oldSid = session.sid;
    registry.move(session, c2s, meta.sid);
    resumption.resumed(meta.h, plan.missing);
    const origins = [...plan.got, ...plan.missing].flatMap((e) => (e.origin === undefined ? [] : [e.origin]));
    const handoff: HandoffMeta = {
      sid: meta.sid,
      ok: true,
      moved: true,
      jid: session.jid.full,
      oldSid,
      inbound: resumption.inbound,
      outbound: meta.h + plan.missing.length,
      lengths: plan.missing.map((e) => e.xml.length),
      confirms: plan.missing.map((e) => e.confirm),
      ns: plan.missing.map((e) => e.n),
      lastN: resumption.last,
      presence: session.presence?.toString() ?? null,
      interested: session.interested,
      seq: session.received,
      recent: origins.slice(-RECENT_ORIGINS),
      ...(session.moduleState && { state: session.moduleState }),
    };
    port.send(c2s, key, encodeSessionPayload(SessionOp.Handoff, handoff, Buffer.concat(plan.missing.map((e) => e.xml))));
    port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: session.jid.full }));
    session.log.info({ from: oldC2s, resent: plan.missing.length }, "session resumed on another front end after its own was lost");
    const confirmed = Math.max(0, ...plan.got.map((e) => e.confirm));
    if (confirmed > 0) await this.ctx.hooks.fire("delivered", { session, confirm: confirmed, work: inTurn(session.user) });
  }
}
