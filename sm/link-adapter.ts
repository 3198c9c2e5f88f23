// The sm's side of the session layer (protocol §2): each ROUTE payload is
// decoded, checked, and handed to the part that does its op's work, in the
// user's turn where order matters; a frame the router could not deliver is
// taken back so that nothing it carried is dropped in silence.
import { parseJid } from "../lib/jid.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import { SessionOp, eachClientAck, eachDelivered, encodeSessionPayload } from "../lib/link/session-payload.js";
import type { FrontEndWatch } from "./front-end-watch.js";
import { Tally, inTurn } from "./origin.js";
import { ResumeLog } from "./resumption.js";
import type { SessionLifecycle } from "./session-lifecycle.js";
import type { SessionResumption } from "./session-resumption.js";
import type { SmContext } from "./sm-context.js";
import type { StanzaRouter } from "./stanza-router.js";

export interface LinkAdapterDeps {
  readonly lifecycle: SessionLifecycle;
  readonly resumption: SessionResumption;
  readonly router: StanzaRouter;
  readonly frontEnds: FrontEndWatch;
}

export class LinkAdapter {
  constructor(
    private readonly ctx: SmContext,
    private readonly deps: LinkAdapterDeps,
  ) {}

  /** A ROUTE frame arrived: from a c2s (START/STANZA/END…) or another sm (FORWARD). */
  onRoute(from: string, key: string, payload: Buffer): void {
    const { ctx } = this;
    const { lifecycle, resumption, router } = this.deps;
    const msg = ctx.decode(payload, from);
    if (!msg) return;
    switch (msg.op) {
      case SessionOp.Start:
        return lifecycle.start(from, key, msg.meta);
      case SessionOp.Stanza: {
        const { sid, seq, h } = msg.meta;
        const session = ctx.registry.bySid(from, sid);
        if (session) return router.takeStanza(session, seq, msg.xml, h);
        // Looked up again in the user's turn: a REBUILD that moved the session here (a resumption on
        // another front end, whose client sends at once) may still be queued.
        void ctx.queue.run(key, async () => {
          const moved = ctx.registry.bySid(from, sid);
          if (moved) return router.takeStanza(moved, seq, msg.xml, h);
          const owner = ctx.port.smOwnerOf(key);
          if (owner !== undefined && owner !== ctx.port.name && !msg.meta.rerouted) {
            // Sent before the sender saw the user move: pass it on, once (protocol §2.2).
            const meta = seq === undefined ? { sid, rerouted: true } : { sid, seq, rerouted: true };
            ctx.port.send(SM_ADDRESS, key, encodeSessionPayload(SessionOp.Stanza, meta, msg.xml));
            return;
          }
          // Protocol §2.5: the c2s rebuilds the session here and sends again what was not taken.
          if (seq !== undefined) return ctx.acks.unknown(from, sid);
          // A sender that does not number its stanzas cannot send them again: its client reconnects.
          ctx.port.send(from, key, encodeSessionPayload(SessionOp.Close, { sid, condition: "internal-server-error" }));
        });
        return;
      }
      case SessionOp.End: {
        const session = ctx.registry.bySid(from, msg.meta.sid);
        if (!session) return;
        // Its front end stops: a resumable session waits for its client elsewhere, as a lost front end's (§2.6).
        if (msg.meta.resume && session.resumption) void ctx.queue.run(session.user, async () => resumption.detach(session));
        else void ctx.queue.run(session.user, () => lifecycle.end(inTurn(session.user), session, "end"));
        return;
      }
      case SessionOp.Forward: {
        const origin = msg.meta.origin;
        // From another sm, with an identity: it is told once the work is done (and its deliveries acknowledged).
        const tally = origin !== undefined && ctx.sms.has(from) ? new Tally(() => ctx.forwardAcks.frame(from).push(origin)) : null;
        router.fromPeer(msg.xml, key, origin, tally);
        tally?.release(); // its own count: the jobs hold it now
        return;
      }
      case SessionOp.Delivered:
        if (msg.meta.nums) ctx.unacked.delivered(from, msg.meta.nums);
        eachDelivered(msg.meta, (sid, origin) => ctx.unacked.deliveredAs(from, sid, origin));
        return;
      case SessionOp.Forwarded:
        for (const origin of msg.meta.origins) ctx.unacked.forwarded(origin);
        return;
      case SessionOp.Resumable: {
        const { sid, ...promised } = msg.meta;
        const session = ctx.registry.bySid(from, sid);
        if (session) session.resumption = new ResumeLog({ ...promised, inbound: 0, outbound: 0, lastN: 0 });
        return;
      }
      case SessionOp.ClientAcked: {
        const log = (sid: string) => ctx.registry.bySid(from, sid)?.resumption;
        for (const [sid, ats] of Object.entries(msg.meta.local ?? {})) for (const at of ats) log(sid)?.local(at);
        for (const [sid, ns] of Object.entries(msg.meta.skipped ?? {})) for (const n of ns) log(sid)?.skipped(n);
        eachClientAck(msg.meta, (sid, h, n) => log(sid)?.acked(h, n));
        return;
      }
      case SessionOp.Resume: {
        const meta = msg.meta;
        void ctx.queue.run(key, () => resumption.resumeHere(from, key, meta));
        return;
      }
      case SessionOp.Rebuild: {
        const meta = msg.meta;
        const jid = parseJid(meta.jid);
        void ctx.queue.run(jid?.bare ?? key, () => lifecycle.rebuild(from, key, meta, jid, msg.xml));
        return;
      }
      case SessionOp.ClientState: {
        // In the user's turn, after the stanzas its client sent before it, and any REBUILD that moved the session here.
        const { sid, active } = msg.meta;
        void ctx.queue.run(key, async () => {
          const session = ctx.registry.bySid(from, sid);
          if (session) await ctx.hooks.fire("client-state", { session, active, work: inTurn(key) });
        });
        return;
      }
      case SessionOp.Written: {
        // Looked up in the user's turn: a REBUILD that moved the session here may still be queued.
        const meta = msg.meta;
        void ctx.queue.run(key, () => lifecycle.written(from, meta.sid, meta.confirm));
        return;
      }
      default:
        ctx.log.warn({ op: msg.op, from }, "unexpected session op");
    }
  }

  /** The router could not deliver a frame we sent: nothing it carried is dropped in silence. */
  onUndeliverable(to: string, key: string, payload: Buffer): void {
    const { ctx } = this;
    const { lifecycle, router } = this.deps;
    const msg = ctx.decode(payload, to);
    if (!msg) return;
    switch (msg.op) {
      case SessionOp.Deliver: {
        // The c2s is gone, so is the session; its stanza is routed again, now
        // to the user's other sessions, offline storage, or an error; an
        // offline message (confirm) is still stored.
        const session = ctx.registry.bySid(to, msg.meta.sid);
        const stored = msg.meta.confirm !== undefined;
        const origin = msg.meta.origin;
        // Cut off within its grace (hung, or re-linking): the session stays, and a delivery with an
        // identity keeps waiting, sent again when the front end links, routed if its grace ends (§2.5).
        if (session && origin !== undefined && this.deps.frontEnds.inGrace(to)) return;
        // A resumable session keeps it for its client (§2.6).
        if (session?.resumption && msg.meta.n !== undefined) return;
        const num = msg.meta.num;
        const tally = num === undefined ? null : (ctx.unacked.takeDelivery(to, num)?.tally ?? null);
        const user = session?.user ?? key;
        void ctx.queue.run(user, async () => {
          if (session) await lifecycle.end(inTurn(user), session, "c2s unreachable");
          // Under its identity: the user's other sessions, which had their copy, drop this one.
          if (!stored) await router.routedNow(msg.xml, user, origin, tally, session?.jid.full ?? key);
        }).finally(() => tally?.release());
        return;
      }
      case SessionOp.Started: {
        const session = ctx.registry.bySid(to, msg.meta.sid);
        if (session) void ctx.queue.run(session.user, () => lifecycle.end(inTurn(session.user), session, "c2s unreachable"));
        return;
      }
      case SessionOp.Forward: {
        // No sm is linked to take it; the store is shared, so process it here
        // (offline storage, stored subscription requests, errors).
        const origin = msg.meta.origin;
        const tally = origin === undefined ? null : (ctx.unacked.takeForward(origin)?.tally ?? null);
        router.fromPeer(msg.xml, key, origin, tally);
        tally?.release();
        return;
      }
      default:
        ctx.log.debug({ op: msg.op, to }, "undeliverable frame for a gone session");
    }
  }
}
