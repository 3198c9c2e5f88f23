// Writing a stanza to one session's client: through the outgoing filters
// (sm/outgoing-filters.ts), then DELIVER to its front end, with the identity
// of the work that made it (protocol §2.5) and, for a resumable session, the
// sm's number for it (§2.6). The identity is taken as the stanza enters the
// filters, so that it is the same whatever they do: a stanza held and
// released later keeps its own, and what the work delivers after it keeps
// the same names when the work is processed again on an sm that held
// nothing. A stanza a filter drops or holds is neither numbered nor waited
// for, so the XEP-0198 counts and the acknowledgement of the client stanza
// that made it stay whole.
import type { Element } from "ltx";
import { SessionOp, encodeSessionPayload, type DeliverMeta } from "../lib/link/session-payload.js";
import { errorReply, type Condition } from "../lib/stanza-error.js";
import { routedAgain } from "../lib/stanza-rules.js";
import type { Work } from "./origin.js";
import type { FilterHandle, Outgoing, OutgoingFilter, StoredDelivery, StoredMessage } from "./module-api.js";
import { OutgoingFilters } from "./outgoing-filters.js";
import type { Session } from "./sessions.js";
import type { SessionResumption } from "./session-resumption.js";
import { answerable, type SmContext } from "./sm-context.js";
import { FrameTooLargeError } from "./stanza.js";

export class ClientDelivery {
  private readonly filters = new OutgoingFilters((work, out, after) => this.released(work, out, after));

  constructor(
    private readonly ctx: SmContext,
    private readonly resumption: SessionResumption,
    /** Routes a stanza (the stanza router's send): bounces. */
    private readonly route: (work: Work, stanza: Element) => Promise<void>,
    /** Routes a message released for a session that ended as its front end would have, under its identity. */
    private readonly routeAgain: (xml: Buffer, user: string, origin: string | undefined) => Promise<void>,
  ) {}

  addFilter(module: string, filter: OutgoingFilter, priority?: number): FilterHandle {
    return this.filters.add(module, filter, priority);
  }

  /** Writes a stanza that `work` makes to the session's client, named from the work's identity. */
  deliver(work: Work, session: Session, stanza: Element, raw?: Buffer): void {
    const origin = work.origin?.deliveryId(session);
    const outcome = this.filters.run(work, { session, stanza, raw, stored: false, origin });
    if ("write" in outcome) this.write(work, outcome.write);
    else if ("bounce" in outcome) this.bounce(work, stanza, outcome.bounce, outcome.text);
  }

  /** A batch of offline messages; the ids of those the filters dropped. */
  deliverStored(work: Work, session: Session, batch: readonly StoredMessage[]): number[] {
    const written: { id: number; out: Outgoing }[] = [];
    const dropped: number[] = [];
    for (const { id, stanza } of batch) {
      // An offline message needs no identity: it stays stored until the c2s reports it written.
      const outcome = this.filters.run(work, { session, stanza, raw: undefined, stored: true, origin: undefined });
      if ("write" in outcome) written.push({ id, out: outcome.write });
      else {
        dropped.push(id);
        if ("bounce" in outcome) this.bounce(work, stanza, outcome.bounce, outcome.text);
      }
    }
    written.forEach(({ id, out }, i) => this.write(work, out, { confirm: id, last: i === written.length - 1 }));
    return dropped;
  }

  /** A filter released a stanza it held, in `work`: the filters after it, then the client, if the session is still here. */
  private released(work: Work, out: Outgoing, after: number): void {
    const { session, stanza } = out;
    if (!this.ctx.registry.has(session)) {
      const xml = out.raw ?? Buffer.from(stanza.toString(), "utf8");
      // Gone: a message goes where its front end would have sent it (protocol §2); presence is state.
      if (routedAgain(xml)) this.background(this.routeAgain(xml, session.user, out.origin), "held stanza not routed again");
      return;
    }
    const outcome = this.filters.run(work, out, after);
    if ("write" in outcome) this.write(work, outcome.write);
    else if ("bounce" in outcome) this.bounce(work, stanza, outcome.bounce, outcome.text);
  }

  /** Its sender is answered with a stanza error, unless it is one, or an iq result. */
  private bounce(work: Work, stanza: Element, condition: Condition, text: string | undefined): void {
    if (answerable(stanza)) this.background(this.route(work, errorReply(stanza, condition, { text })), "bounce not sent");
  }

  private background(work: Promise<void>, failed: string): void {
    work.catch((err: unknown) => this.ctx.log.warn({ err }, failed));
  }

  /** Out to the front end; a delivery with an identity is held for `work` (for a released stanza, the work that released it) until acknowledged. */
  private write(work: Work, { session, stanza, raw, origin }: Outgoing, stored?: StoredDelivery): void {
    const { queue, unacked } = this.ctx;
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
    if (n !== undefined) meta.n = n;
    if (origin === undefined) return this.ctx.transmit(session.c2s, session.user, encodeSessionPayload(SessionOp.Deliver, meta, xml));
    meta.origin = origin;
    const num = (meta.num = unacked.nextNum(session.c2s));
    const payload = encodeSessionPayload(SessionOp.Deliver, meta, xml);
    if (!unacked.deliver(session.c2s, num, session.sid, origin, session.user, payload, work.origin?.tally ?? null)) throw new FrameTooLargeError(payload.length);
  }
}
