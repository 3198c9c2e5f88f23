// The stanza router: a client's stanza, a peer sm's FORWARD or a stanza a
// module sends is parsed, classified by kind and target, run through the
// hooks (sm/hooks.ts: outbound on the sender's sm, inbound on the
// recipient's), and routed: processed here, forwarded to the sm that owns
// the recipient, passed to a component, or answered with an error.
import type { Element } from "ltx";
import { parseJid, type Jid } from "../lib/jid.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { errorReply, isError, type Condition } from "../lib/stanza-error.js";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import type { ClientDelivery } from "./client-delivery.js";
import type { HookName, Kind, StanzaEvent, Target } from "./hooks.js";
import type { IqRequests } from "./iq-requests.js";
import { Origin, Tally, UNNAMED, holding, inTurn, settled, type Work } from "./origin.js";
import type { Session } from "./sessions.js";
import type { Settling } from "./settling.js";
import { QUEUE_FULL, answerable, type SmContext } from "./sm-context.js";
import { parseStanza } from "./stanza-parser.js";
import { FrameTooLargeError, payloadKey } from "./stanza.js";

const KINDS: ReadonlySet<string> = new Set<Kind>(["message", "presence", "iq"]);

export interface RouterDeps {
  readonly settling: Settling;
  readonly requests: IqRequests;
  readonly delivery: ClientDelivery;
  /** Ends a session (the session lifecycle's end()); with a condition, its client is told. */
  end(work: Work, session: Session, reason: string, condition?: string): Promise<void>;
}

export class StanzaRouter {
  constructor(
    private readonly ctx: SmContext,
    private readonly deps: RouterDeps,
  ) {}

  /**
   * A client's STANZA for a session held here. Numbered (protocol §2.5): one
   * seen before is not processed again (and is acknowledged again if it was
   * taken); one after a gap waits to be sent again with those before it. Its
   * work runs under its identity, and once every job it set going has ended
   * it is taken.
   */
  takeStanza(session: Session, seq: number | undefined, xml: Buffer, h?: number): void {
    const { queue, acks } = this.ctx;
    if (seq === undefined) {
      const queued = queue.offer(session.user, xml.length, () => this.fromClient(session, xml, inTurn(session.user)));
      if (!queued) this.refused(xml, (error) => this.deps.delivery.deliver(UNNAMED, session, error));
      return;
    }
    if (seq <= session.received) {
      if (seq <= session.taken) acks.taken(session.c2s, session.sid, session.taken);
      return;
    }
    if (seq !== session.received + 1) return;
    session.received = seq;
    if (h !== undefined && session.resumption) session.resumption.inbound = h;
    const tally = new Tally(() => {
      if (session.took(seq)) acks.taken(session.c2s, session.sid, session.taken);
    });
    const work: Work = { origin: new Origin(`${session.c2s}/${session.sid}/${seq}`, tally), key: session.user };
    const queued = queue.offer(session.user, xml.length, () => settled(this.fromClient(session, xml, work), () => tally.release()));
    if (queued) return;
    // Answered resource-constraint (or, if it may not be answered, counted in the overflow log): taken too.
    this.refused(xml, (error) => this.deps.delivery.deliver(UNNAMED, session, error));
    tally.release();
  }

  /**
   * In `key`'s queue job: inbound processing of a routed stanza under the
   * identity its frame carried, if any, holding `tally` until it ends.
   */
  routedNow(xml: Buffer, key: string, origin: string | undefined, tally: Tally | null = null, defaultTo?: string): Promise<void> {
    const work: Work = { origin: origin === undefined ? undefined : new Origin(origin, tally), key };
    return holding(work.origin, () => this.fromPeerNow(xml, work, defaultTo)).job();
  }

  /** A FORWARD from another sm: the stanza is for a user this sm owns. */
  fromPeer(xml: Buffer, key: string, origin?: string, tally: Tally | null = null): void {
    tally?.hold();
    const queued = this.ctx.queue.offer(key, xml.length, () => settled(this.routedNow(xml, key, origin, tally), () => tally?.release()));
    if (!queued) {
      // Answered resource-constraint: taken too.
      this.refused(xml, (error) => this.send(UNNAMED, error));
      tally?.release();
    }
  }

  /** Inbound processing of a routed stanza; `defaultTo` stands for a missing 'to' (a self stanza). */
  private async fromPeerNow(xml: Buffer, work: Work, defaultTo?: string): Promise<void> {
    const stanza = parseStanza(xml);
    const to = stanza && parseJid(stanza.attrs.to ?? defaultTo ?? "");
    if (!stanza || !KINDS.has(stanza.name) || !to || !this.ctx.domains.has(to.domain)) {
      this.ctx.log.warn({ xml: xml.toString("utf8", 0, 200) }, "unroutable stanza dropped");
      return;
    }
    const from = parseJid(stanza.attrs.from ?? "") ?? to.domainJid();
    const event: StanzaEvent = { stanza, raw: xml, from, to, origin: undefined, work };
    await this.guarded(event, () => this.inbound(event, targetOf(to)));
  }

  /** Routes a stanza a module built or passed on, as part of `work`: its addresses are parsed here. */
  async send(work: Work, stanza: Element, raw?: Buffer): Promise<void> {
    const to = parseJid(stanza.attrs.to ?? "");
    if (!to) {
      this.ctx.log.warn({ name: stanza.name, to: stanza.attrs.to }, "stanza without a valid to not sent");
      return;
    }
    const from = parseJid(stanza.attrs.from ?? "") ?? to.domainJid();
    return this.route({ stanza, raw, from, to, origin: undefined, work });
  }

  /** Answers a stanza: straight to the session that sent it, else routed to its sender. */
  async reply(event: StanzaEvent, stanza: Element): Promise<void> {
    if (event.origin && this.ctx.registry.has(event.origin)) this.deps.delivery.deliver(event.work, event.origin, stanza);
    else await this.send(event.work, stanza);
  }

  /** Answers with a stanza error (RFC 6120 §8.3); an error stanza gets none. */
  async error(event: StanzaEvent, condition: Condition, text?: string): Promise<void> {
    if (!isError(event.stanza)) await this.reply(event, errorReply(event.stanza, condition, { text }));
  }

  /**
   * A stanza that found its recipient's queue full: its sender is answered
   * resource-constraint (never an error, nor an iq result, which get no
   * answer; those are counted in the queue's overflow log).
   */
  private refused(xml: Buffer, answer: (error: Element) => unknown): void {
    const stanza = parseStanza(xml);
    if (!stanza || !answerable(stanza)) return;
    void Promise.resolve()
      .then(() => answer(errorReply(stanza, "resource-constraint", { text: QUEUE_FULL })))
      .catch((err: unknown) => this.ctx.log.warn({ err }, "refusal not answered"));
  }

  private async fromClient(session: Session, xml: Buffer, work: Work): Promise<void> {
    if (!this.ctx.registry.has(session)) return; // ended while this frame waited
    const stanza = parseStanza(xml);
    if (!stanza) {
      session.log.warn("unparsable stanza from c2s");
      return this.deps.end(work, session, "bad stanza", "bad-format");
    }
    if (!KINDS.has(stanza.name)) {
      session.log.warn({ name: stanza.name }, "non-stanza element from c2s");
      return this.deps.end(work, session, "bad stanza", "unsupported-stanza-type");
    }
    const from = session.jid;
    let raw: Buffer | undefined = xml;
    if (stanza.attrs.from !== from.full) {
      stanza.attrs.from = from.full;
      raw = undefined;
    }
    const selfEvent = { stanza, raw, from, to: from.withoutResource(), origin: session, work };
    const toAttr: string | undefined = stanza.attrs.to;
    if (!toAttr) return this.outbound(selfEvent, "self");
    // Parsed here, whatever form the c2s sent it in (protocol §2).
    const to = parseJid(toAttr);
    if (!to) return this.error(selfEvent, "jid-malformed");
    const event: StanzaEvent = { stanza, raw, from, to, origin: session, work };
    if (!this.ctx.domains.has(to.domain)) return this.toUnserved(event);
    if (!to.local) return this.outbound(event, "host");
    if (to.resource) return this.outbound(event, "full");
    return this.outbound(event, to.bare === session.user ? "self" : "bare");
  }

  /** Outbound processing on the sender's sm, then routing. */
  private async outbound(event: StanzaEvent, target: Target): Promise<void> {
    await this.guarded(event, async () => {
      const pre = this.ctx.hooks.fire(`pre-${event.stanza.name as Kind}/${target}`, event);
      if (pre === true || (pre !== false && (await pre))) return;
      if (target === "self" || target === "host") await this.inbound(event, target);
      else await this.route({ ...event, origin: undefined });
    });
  }

  /** Inbound processing on the recipient's sm. */
  private async inbound(event: StanzaEvent, target: Target): Promise<void> {
    const { stanza } = event;
    const { settling } = this.deps;
    if (stanza.name === "message" && (target === "bare" || target === "full")) {
      const moving = settling.mayBeMoving(event.to.bare, event.work);
      if (moving === true || (moving !== false && (await moving))) {
        return settling.park(event.to.bare, event.work, () => this.guarded(event, () => this.inbound(event, target)));
      }
    }
    const type: string | undefined = stanza.attrs.type;
    if (stanza.name === "iq" && (type === "result" || type === "error") && this.deps.requests.answered(event)) return;
    const any = this.ctx.hooks.fire(`stanza/${target}`, event);
    if (any === true || (any !== false && (await any))) return;
    const request = stanza.name === "iq" && (type === "get" || type === "set") ? type : undefined;
    if (request) {
      const payloads = stanza.getChildElements();
      // RFC 6120 §8.2.3: a get or set carries exactly one payload.
      if (payloads.length !== 1) return this.error(event, "bad-request");
      const key = payloadKey(payloads[0]!);
      const payload = this.fireTargeted((t) => `iq-${request}/${t}/${key}`, target, event);
      if (payload === true || (payload !== false && (await payload))) return;
    }
    const kind = this.fireTargeted((t) => `${stanza.name as Kind}/${t}`, target, event);
    if (kind === true || (kind !== false && (await kind))) return;
    if (request) return this.error(event, "service-unavailable");
    this.ctx.log.debug({ name: stanza.name, type, to: stanza.attrs.to, target }, "unhandled stanza dropped");
  }

  /** The target's chain, then for a self stanza the bare one; synchronous while the handlers are (Hooks.fire). */
  private fireTargeted(name: (t: Target) => HookName, target: Target, event: StanzaEvent): boolean | Promise<boolean> {
    const handled = this.ctx.hooks.fire(name(target), event);
    if (target !== "self" || handled === true) return handled;
    if (handled === false) return this.ctx.hooks.fire(name("bare"), event);
    return handled.then((h) => h || this.ctx.hooks.fire(name("bare"), event));
  }

  /** Routes a stanza whose 'from' and 'to' the event holds parsed, as a child of the event's work. */
  private async route(event: StanzaEvent): Promise<void> {
    const { stanza, raw, from, to } = event;
    const { port, queue, unacked } = this.ctx;
    if (stanza.name === "message") this.ctx.messagesRouted++;
    if (!this.ctx.domains.has(to.domain)) return this.toUnserved(event);
    const target = targetOf(to);
    // Named whichever way it goes, so that it has the same name when sent again after a failover (§2.5).
    const origin = event.work.origin?.child();
    // Host stanzas are answered on the sender's behalf, in the sender's order.
    const key = target === "host" ? from.bare : to.bare;
    if (target !== "host") {
      const owner = port.smOwnerOf(key);
      if (owner !== undefined && owner !== port.name) {
        const payload = encodeSessionPayload(SessionOp.Forward, origin ? { origin: origin.id } : {}, raw ?? stanza.toString());
        if (!origin) this.ctx.transmit(SM_ADDRESS, key, payload);
        else if (!unacked.forward(origin.id, key, payload, origin.tally)) throw new FrameTooLargeError(payload.length);
        return;
      }
    }
    const inbound: StanzaEvent = { ...event, work: { origin, key } };
    const held = holding(origin, () => this.guarded(inbound, () => this.inbound(inbound, target)));
    // Within the recipient's own job, run at once: waiting on its queue would
    // deadlock, and queueing behind would reorder its sends.
    if (event.work.key === key) await held.job();
    else if (!queue.offer(key, raw?.length ?? 0, held.job)) {
      held.release();
      if (answerable(stanza)) await this.send(event.work, errorReply(stanza, "resource-constraint", { text: QUEUE_FULL }));
    }
  }

  /**
   * Another domain: an external component's, routed to it as XML (protocol
   * §1.8); else, with no s2s yet, messages and iq requests bounce, and
   * presence and iq results have nowhere to go.
   */
  private async toUnserved(event: StanzaEvent): Promise<void> {
    const { name, attrs } = event.stanza;
    if (this.ctx.components.has(event.to.domain)) {
      this.ctx.transmit(event.to.domain, "", event.raw ?? Buffer.from(event.stanza.toString(), "utf8"));
      return;
    }
    if (name === "presence" || (name === "iq" && attrs.type === "result")) {
      this.ctx.log.debug({ name, to: attrs.to }, "stanza for an unserved domain dropped");
      return;
    }
    await this.error(event, "remote-server-not-found");
  }

  /** A handler that throws costs the sender an internal-server-error, never the farm. */
  private async guarded(event: StanzaEvent, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        // Logged once per outage by the store's availability callback; the sender may try later.
        await this.error(event, "resource-constraint");
        return;
      }
      if (err instanceof FrameTooLargeError) {
        const max = this.ctx.limits.stanzaBytes;
        this.ctx.log.warn({ name: event.stanza.name, from: event.from.full, to: event.to.full, bytes: err.bytes, max }, "answer too large for a link frame; answered resource-constraint");
        await this.error(event, "resource-constraint", `the answer (${err.bytes} bytes) is larger than this server sends at once (${max} bytes)`);
        return;
      }
      this.ctx.log.error({ err, name: event.stanza.name, from: event.from.full, to: event.to.full }, "stanza failed");
      await this.error(event, "internal-server-error");
    }
  }
}

function targetOf(to: Jid): Target {
  if (!to.local) return "host";
  return to.resource ? "full" : "bare";
}
