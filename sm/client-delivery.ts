// Writing a stanza to one session's client: DELIVER to its front end, with
// the identity of the work that made it (protocol §2.5) and, for a
// resumable session, the sm's number for it (§2.6).
import type { Element } from "ltx";
import { SessionOp, encodeSessionPayload, type DeliverMeta } from "../lib/link/session-payload.js";
import type { StoredDelivery } from "./module-api.js";
import type { Session } from "./sessions.js";
import type { SessionResumption } from "./session-resumption.js";
import type { SmContext } from "./sm-context.js";
import { FrameTooLargeError } from "./stanza.js";
import { deliverId } from "./unacknowledged.js";

export class ClientDelivery {
  constructor(
    private readonly ctx: SmContext,
    private readonly resumption: SessionResumption,
  ) {}

  deliver(session: Session, stanza: Element, raw?: Buffer, stored?: StoredDelivery): void {
    const { origins, queue, unacked } = this.ctx;
    // An offline message needs no identity: it stays stored until the c2s reports it written.
    const origin = stored ? undefined : origins.current()?.deliveryId(session);
    const xml = raw ?? Buffer.from(stanza.toString(), "utf8");
    // A resumable session's deliveries are kept until its client acknowledges them (§2.6).
    const resumption = session.resumption;
    const n = resumption?.add(xml, stored?.confirm ?? 0, origin);
    if (resumption?.waiting) {
      // Its front end is gone: kept for the client's resumption, which sends it.
      if (resumption.full) void queue.run(session.user, () => this.resumption.unresumed(session, "too much waiting for its client"));
      return;
    }
    const meta: DeliverMeta = stored ? { sid: session.sid, confirm: stored.confirm, ...(stored.last && { last: true }) } : { sid: session.sid };
    if (origin !== undefined) meta.origin = origin;
    if (n !== undefined) meta.n = n;
    const payload = encodeSessionPayload(SessionOp.Deliver, meta, xml);
    if (origin === undefined) return this.ctx.transmit(session.c2s, session.user, payload);
    const id = deliverId(session.c2s, session.sid, origin);
    if (!unacked.send(id, session.c2s, session.user, payload, origins.current()!.tally)) throw new FrameTooLargeError(payload.length);
  }
}
