// XEP-0198 as one connection speaks it: <enable/>, <r/> and <a/>, and
// <resume/> of a session held on this front end, on another one (TAKEOVER,
// answered by HANDOFF, protocol §2.3), or by the sm when its front end is
// gone (RESUME, §2.6). The counters and queue are AckState's
// (stream-management.ts); these are functions over the connection's fields
// (ManagedStream), so an idle session holds nothing more for them.
import { escapeXML } from "ltx";
import { SessionOp, encodeSessionPayload, type HandoffMeta } from "../lib/link/session-payload.js";
import { NS_STANZAS } from "../lib/stanza-error.js";
import type { ConnectionHost } from "./connection-host.js";
import { SmPipe } from "./sm-pipe.js";
import { clientState, confirm, rebuild, routingKey, toSm, type PipeHost, type SessionLink, type Stage } from "./session-pipe.js";
import { AckState, NS_SM, parseResumeId, resumePromise } from "./stream-management.js";

/** A resume waiting for a HANDOFF (protocol §2.3, §2.6). */
export interface PendingResume {
  previd: string;
  h: number;
  /** The front ends asked (TAKEOVER), each with its run then (undefined: not linked). */
  asked: ReadonlyMap<string, number | undefined>;
  /** Those that said no: by HANDOFF, by the router's bounce, or by leaving or restarting since. */
  refused: Set<string>;
  /** Once none has it, the sm is asked, which holds it if its front end is gone. */
  fromSm: boolean;
}

export type ManagedHost = PipeHost &
  Pick<ConnectionHost<ManagedStream>, "balancer" | "resumable" | "awaitHandoff" | "handoffDone" | "frontEndRun" | "oweAck" | "ackSent" | "clientAcked" | "alias" | "authDone" | "replace" | "forget">;

/** What XEP-0198 reads and changes of a connection. */
export interface ManagedStream extends SessionLink {
  readonly ctx: ManagedHost;
  /** Changes once: when this connection resumes another's session, it takes that session's sid. */
  sid: string;
  jid: string | null;
  stage: Stage;
  ack: AckState | null;
  /** The sm incarnation holding the session. */
  holder: string | null;
  /** Asked to bind, and waiting for the sm. */
  readonly binding: boolean;
  pendingResume: PendingResume | null;
  /** Counted in the front end's sessions (the balancer's load). */
  readonly counted: boolean;
  /** Counts the connection in the front end's sessions, once. */
  count(): void;
  /** No longer counted there: its session went on to another connection here. */
  uncount(): void;
  /** Its session lives on elsewhere: the connection ends without a word to the sm; `destroy`: its socket is cut now. */
  letGo(destroy: boolean): void;
}

/** A session's state as it moves between connections. */
export interface Session {
  jid: string;
  ack: AckState;
  pipe: SmPipe | null;
  presence: string | null;
  interested: boolean;
  moduleState: SessionLink["moduleState"];
}

export function smFailed(condition: string): string {
  return `<failed xmlns='${NS_SM}'><${condition} xmlns='${NS_STANZAS}'/></failed>`;
}

/** An element in XEP-0198's namespace from an authenticated client. */
export function onStreamManagement(c: ManagedStream, el: { name: string; attrs: Record<string, string | undefined> }): void {
  const ack = c.ack;
  switch (el.name) {
    case "enable":
      return enable(c, el.attrs.resume === "true" || el.attrs.resume === "1");
    case "r":
      if (!ack) return;
      // With stanzas not yet taken, answered once they are, or within a second with what is.
      if (c.pipe && c.pipe.pending.length > 0) return c.ctx.oweAck(c);
      return sendAck(c);
    case "a":
      if (!ack) return;
      if (!ack.acked(Number(el.attrs.h))) return c.streamError("undefined-condition", "acknowledged more stanzas than were sent");
      if (ack.resumable && c.smKnows) c.ctx.clientAcked(c.user!, c.sid, ack.outbound - ack.queue.length, ack.ackedN);
      return confirmAcked(c);
    case "resume":
      return resume(c, el.attrs.previd ?? "", Number(el.attrs.h));
    default:
      return c.write(smFailed("feature-not-implemented"));
  }
}

function enable(c: ManagedStream, resumable: boolean): void {
  if (c.stage !== "bound" || c.ack) return c.write(smFailed("unexpected-request"));
  const config = c.ctx.config;
  const ack = (c.ack = AckState.create(config.name, c.sid, resumable));
  if (resumable) toSm(c, SessionOp.Resumable, { sid: c.sid, ...resumePromise(ack, config) });
  // After RESUMABLE has left: a client told it may resume finds its sm knows (§2.6).
  c.write(
    resumable ? `<enabled xmlns='${NS_SM}' id='${ack.id}' resume='true' max='${config.resume_timeout}'/>` : `<enabled xmlns='${NS_SM}'/>`,
    undefined,
    resumable,
  );
}

/** <a/>: counts only what the sm has taken, so an acknowledged stanza is never lost. */
export function sendAck(c: ManagedStream): void {
  c.ctx.ackSent(c);
  const ack = c.ack;
  if (ack && (c.stage === "bound" || c.stage === "hibernating")) {
    c.write(`<a xmlns='${NS_SM}' h='${c.pipe?.safeH(ack.inbound) ?? ack.inbound}'/>`);
  }
}

/** Reports the offline messages the client's last acknowledgement covered. */
function confirmAcked(c: ManagedStream): void {
  const confirmed = c.ack?.takeConfirmed() ?? 0;
  if (confirmed > 0) confirm(c, confirmed);
}

/** After a resumption: <resumed/>, then again what the client did not acknowledge, and a request for an acknowledgement. */
function resumed(c: ManagedStream, previd: string): void {
  const ack = c.ack!;
  c.write(`<resumed xmlns='${NS_SM}' previd='${escapeXML(previd)}' h='${ack.inbound}'/>`);
  // XEP-0352 §5.2: a resumed stream starts active, whatever the client said on the one it resumes.
  clientState(c, true);
  confirmAcked(c);
  for (const { xml } of ack.queue) c.write(xml);
  if (ack.queue.length > 0) c.write(`<r xmlns='${NS_SM}'/>`);
}

/** XEP-0198 §5: takes over a hibernating (or still attached) session of the same account. */
function resume(c: ManagedStream, previd: string, h: number): void {
  if (c.stage === "bound" || c.binding || c.pendingResume) return c.write(smFailed("unexpected-request"));
  const ctx = c.ctx;
  const holder = parseResumeId(previd);
  // Held by another front end: it hands the session over (protocol §2.3). A session resumed on
  // another front end keeps the id naming the first (this one, maybe), so every front end is asked.
  const asked = new Map<string, number | undefined>();
  if (holder && !ctx.resumable(previd)) {
    if (holder.c2s !== ctx.config.name) asked.set(holder.c2s, ctx.frontEndRun(holder.c2s));
    for (const peer of ctx.balancer.peerNames()) asked.set(peer, ctx.frontEndRun(peer));
  }
  if (holder && asked.size > 0) {
    c.pendingResume = { previd, h, asked, refused: new Set(), fromSm: false };
    ctx.awaitHandoff(c);
    const payload = encodeSessionPayload(SessionOp.Takeover, { sid: holder.sid, previd, user: c.user!, newSid: c.sid });
    for (const c2s of asked.keys()) ctx.link.send(c2s, c.user!, payload);
    return;
  }
  const old = ctx.resumable(previd);
  // Named this front end, but not here (it restarted): its sm may hold it (§2.6).
  if (holder && !old) return askSm(c, (c.pendingResume = { previd, h, asked: new Map(), refused: new Set(), fromSm: false }));
  if (!old || old.user !== c.user || !old.ack) return c.write(smFailed("item-not-found"));
  if (!old.ack.acked(h)) return c.write(smFailed("bad-request"));
  adopt(c, old);
  resumed(c, previd);
  c.log.info({ resent: c.ack!.queue.length }, "session resumed");
}

/** The session's front end is gone, or never answered: its sm may hold it (§2.6). */
function askSm(c: ManagedStream, pending: PendingResume): void {
  pending.fromSm = true;
  c.ctx.awaitHandoff(c);
  toSm(c, SessionOp.Resume, { sid: c.sid, previd: pending.previd, h: pending.h });
}

/** Front end `from`, asked, does not hold the session, or is gone; once none is left, the sm is asked. */
export function handoffRefused(c: ManagedStream, from: string): void {
  const pending = c.pendingResume;
  if (!pending || pending.fromSm || !pending.asked.has(from) || pending.refused.has(from)) return;
  pending.refused.add(from);
  if (pending.refused.size === pending.asked.size) handoffFailed(c);
}

/**
 * The member table changed. A front end asked that has left it, or came back
 * as another run, since, lost the TAKEOVER with the run it reached (one that
 * was stopping, say): that is its no, rather than the end of the wait.
 */
export function frontEndsChanged(c: ManagedStream): void {
  const pending = c.pendingResume;
  if (!pending || pending.fromSm) return;
  for (const [name, run] of pending.asked) {
    if (run === undefined || c.ctx.frontEndRun(name) === run || pending.refused.has(name)) continue;
    c.log.debug({ c2s: name }, "a front end asked for the session to resume left without answering");
    handoffRefused(c, name);
  }
}

/** No front end handed the session over in time: the sm is asked, then the client binds anew. */
export function handoffFailed(c: ManagedStream): void {
  const pending = c.pendingResume;
  if (!pending) return;
  if (!pending.fromSm) return askSm(c, pending);
  c.pendingResume = null;
  c.ctx.handoffDone(c);
  c.write(smFailed("item-not-found"));
}

/** HANDOFF: the front end that held the session (§2.3), or the sm (§2.6), answered. */
export function handedOver(c: ManagedStream, meta: HandoffMeta, queued: Buffer, fromC2s: string): void {
  const pending = c.pendingResume;
  if (pending && (!meta.ok || !meta.jid || !meta.oldSid)) {
    if (!pending.fromSm) return handoffRefused(c, fromC2s);
    // Once the sm is asked, only its no counts: a front end asked may still say its own, late.
    return pending.asked.has(fromC2s) ? undefined : handoffFailed(c);
  }
  c.pendingResume = null;
  c.ctx.handoffDone(c);
  if (!pending || c.stage === "closed" || !meta.ok || !meta.jid || !meta.oldSid) return;
  const session = restoreSession(meta, queued, pending.previd, c.user!);
  takeSession(c, session);
  if (session.pipe.pending.length > 0) c.ctx.awaitTaken(c);
  c.ctx.authDone(c);
  c.ctx.alias(pending.previd, c);
  // From the sm, the session is already here (§2.6); from a front end, the sm moves it now (§2.3).
  if (!meta.moved) rebuild(c, { c2s: fromC2s, sid: meta.oldSid });
  if (!session.ack.acked(pending.h)) return c.streamError("undefined-condition", "acknowledged more stanzas than were sent");
  resumed(c, pending.previd);
  c.log.info({ resent: session.ack.queue.length, from: fromC2s, lost: meta.moved === true }, "session resumed from another front end");
}

/** A HANDOFF's session: the unacknowledged stanzas, then the STANZAs no sm took, in `queued`. */
export function restoreSession(meta: HandoffMeta, queued: Buffer, previd: string, user: string): Session & { pipe: SmPipe } {
  const ack = new AckState(previd, true);
  ack.inbound = meta.inbound ?? 0;
  ack.outbound = meta.outbound ?? 0;
  ack.lastN = meta.lastN ?? 0;
  let offset = 0;
  for (const [i, length] of (meta.lengths ?? []).entries()) {
    ack.requeue(queued.toString("utf8", offset, offset + length), length, meta.confirms?.[i] ?? 0, meta.ns?.[i] ?? 0);
    offset += length;
  }
  // What the sm had not taken from the old connection waits here now, under its seq (protocol §2.5).
  const now = Date.now();
  const pipe = new SmPipe();
  pipe.seq = meta.seq ?? 0;
  for (const [seq, h, length] of meta.pending ?? []) {
    const xml = queued.toString("utf8", offset, offset + length);
    offset += length;
    pipe.requeue({ seq, xml, bytes: length, h, to: routingKey(xml) ?? user }, now);
  }
  pipe.remember(meta.recent ?? [], now);
  return { jid: meta.jid!, ack, pipe, presence: meta.presence ?? null, interested: meta.interested ?? false, moduleState: meta.state ?? null };
}

/** For a resume: whether `previd` names `c`'s session, and it can still be taken over. */
export function resumableBy(c: ManagedStream, previd: string): boolean {
  return (c.stage === "bound" || c.stage === "hibernating") && c.ack?.resumable === true && c.ack.id === previd;
}

/** `c` becomes the bound session that another connection held. */
function takeSession(c: ManagedStream, session: Session): void {
  c.jid = session.jid;
  c.ack = session.ack;
  c.pipe = session.pipe;
  c.presence = session.presence;
  c.interested = session.interested;
  c.moduleState = session.moduleState;
  c.smKnows = true;
  c.stage = "bound";
  c.count();
}

/** `c` takes over `old`'s session on this front end: its sid and holder too. */
function adopt(c: ManagedStream, old: ManagedStream): void {
  old.uncount();
  old.letGo(true);
  c.ctx.replace(old, c);
  c.sid = old.sid;
  c.holder = old.holder;
  takeSession(c, sessionOf(old));
}

/**
 * Another front end's client resumed `c`'s session: `c` lets it go, with
 * no END to the sm (the session lives on over there), and this is what
 * HANDOFF carries.
 */
export function handOff(c: ManagedStream): ReturnType<typeof handoffOf> {
  const handoff = handoffOf(c.sid, sessionOf(c));
  c.ctx.forget(c, c.counted);
  c.letGo(c.stage !== "hibernating");
  c.log.info({ unacked: c.ack!.queue.length }, "session handed over to another front end");
  return handoff;
}

/** `c`'s bound session, to move to another connection. */
function sessionOf(c: ManagedStream): Session {
  return { jid: c.jid!, ack: c.ack!, pipe: c.pipe, presence: c.presence, interested: c.interested, moduleState: c.moduleState };
}

/** A session as HANDOFF carries it to the front end its client resumed on (§2.3). */
export function handoffOf(sid: string, session: Session): { meta: Omit<HandoffMeta, "sid" | "ok">; queued: Buffer } {
  const { ack, pipe } = session;
  const bufs = ack.queue.map((entry) => Buffer.from(entry.xml, "utf8"));
  const pending = pipe?.pending ?? [];
  const pendingBufs = pending.map((entry) => Buffer.from(entry.xml, "utf8"));
  return {
    meta: {
      jid: session.jid,
      oldSid: sid,
      inbound: ack.inbound,
      outbound: ack.outbound,
      lengths: bufs.map((b) => b.length),
      presence: session.presence,
      interested: session.interested,
      confirms: ack.queue.map((entry) => entry.confirm),
      seq: pipe?.seq ?? 0,
      pending: pending.map((entry, i) => [entry.seq, entry.h, pendingBufs[i]!.length]),
      recent: pipe?.recentOrigins(Date.now()) ?? [],
      ns: ack.queue.map((entry) => entry.n),
      lastN: ack.lastN,
      ...(session.moduleState && { state: session.moduleState }),
    },
    queued: Buffer.concat([...bufs, ...pendingBufs]),
  };
}
