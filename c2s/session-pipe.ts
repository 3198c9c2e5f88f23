// A bound session's traffic with its sm (protocol §2): START, the client's
// stanzas as numbered STANZAs kept until TAKEN (§2.5), DELIVERs written to
// the client, WRITTEN and CLIENT_ACKED reports, REBUILD, END. Functions over
// the connection's fields (SessionLink), not an object of their own, so an
// idle session costs no more than the SmPipe it already holds.
import { escapeXML, parse, type Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import {
  SessionOp,
  encodeSessionPayload,
  type ClientAckedMeta,
  type DeliverMeta,
  type ModuleState,
  type RebuildMeta,
  type SessionMetaByOp,
  type StanzaMeta,
} from "../lib/link/session-payload.js";
import { badRequestText, routedAgain } from "../lib/stanza-rules.js";
import { errorReplyXml, type Answered, type Condition } from "../lib/stanza-error.js";
import { serialize } from "../lib/xml-serialize.js";
import type { ConnectionHost } from "./connection-host.js";
import type { Throttled } from "./read-throttle.js";
import type { PendingStanza, SmPipe } from "./sm-pipe.js";
import { ACK_EVERY, MAX_UNACKED, NS_SM, resumePromise, type AckState } from "./stream-management.js";
import { NS_BIND, NS_SESSION } from "./stream-writer.js";

/** Where a connection is; "hibernating": an XEP-0198 session whose connection dropped, waiting to be resumed. */
export type Stage = "header" | "features" | "bound" | "hibernating" | "closed";

export type PipeHost = Pick<ConnectionHost<Throttled>, "config" | "link" | "awaitTaken" | "orphan" | "routeAgain" | "counters" | "leftForResumption">;

/** What the pipe reads and keeps of a connection. */
export interface SessionLink extends Throttled {
  readonly ctx: PipeHost;
  readonly sid: string;
  /** The bare JID (SASL's); frames to the sm are keyed by it. */
  readonly user: string | null;
  /** The bound full JID. */
  readonly jid: string | null;
  readonly domain: string;
  readonly ip: string;
  readonly secure: boolean;
  readonly stage: Stage;
  readonly log: Logger;
  readonly ack: AckState | null;
  /** After a PLAIN login, until START: the password's voucher, for a redirect's target (§1.6) and for the sm to keep (START, §2.8). */
  voucher: Buffer | null;
  /** From the bind on (sm-pipe.ts). */
  pipe: SmPipe | null;
  /** The sm knows this session, so END is owed when it goes. */
  smKnows: boolean;
  /** What a rebuild needs (protocol §2.2): the last broadcast presence, and roster interest. */
  presence: string | null;
  interested: boolean;
  /** The sm's last SESSION_STATE, kept as it came; null: none yet (`{}`). */
  moduleState: ModuleState | null;
  write(data: string | Buffer, flushed?: () => void, afterLink?: boolean): void;
  streamError(condition: string, text?: string): void;
}

export function toSm<K extends SessionOp>(c: SessionLink, op: K, meta: SessionMetaByOp[K], xml?: string): void {
  c.ctx.link.send(SM_ADDRESS, c.user!, encodeSessionPayload(op, meta, xml));
}

/** START: the sm binds `jid` (bare, or full with the resource the client asked for). */
export function start(c: SessionLink, jid: string): void {
  c.smKnows = true;
  const plain = c.voucher?.toString("base64");
  c.voucher = null;
  toSm(c, SessionOp.Start, { sid: c.sid, jid, ip: c.ip, secure: c.secure, ...(plain && { plain }) });
}

/** A stanza the server answers itself: by the server, with no 'from' (RFC 6120 §8.3.1). */
export function errorReply(c: { readonly domain: string }, stanza: Answered, condition: Condition, text?: string): string {
  return errorReplyXml(stanza, condition, { text, by: c.domain });
}

/** A bound client's stanza: checked, stamped with its JID, answered here if it is the c2s's, else passed on. */
export function clientStanza(c: SessionLink, el: Element): void {
  if (c.ack) c.ack.inbound++;
  c.ctx.counters.stanzaIn(el.name);
  el.attrs.from = c.jid!;
  const malformed = badRequestText(el);
  if (malformed) return deliver(c, errorReply(c, el, "bad-request", malformed));
  if (el.name === "iq" && el.attrs.type === "set" && el.getChild("session", NS_SESSION) && !el.attrs.to) {
    // RFC 3921's session establishment: a no-op kept for old clients (RFC 6121 Appendix E).
    return deliver(c, `<iq type='result' id='${escapeXML(el.attrs.id ?? "")}'/>`);
  }
  if (el.name === "iq" && el.getChild("bind", NS_BIND) && el.attrs.type === "set") return deliver(c, errorReply(c, el, "not-allowed"));
  let key = c.user!;
  if (el.attrs.to !== undefined) {
    const to = parseJid(el.attrs.to);
    if (!to) return deliver(c, errorReply(c, el, "jid-malformed"));
    // Never taken as the client wrote it: sent on, and delivered, in its RFC 7622 form.
    el.attrs.to = to.full;
    key = to.bare;
  }
  const xml = serialize(el);
  // The limit counts what the farm passes on, escaping included: a link frame must hold it.
  const max = c.ctx.config.max_stanza_size;
  if (xml.length > max / 3 && Buffer.byteLength(xml) > max) return c.streamError("policy-violation", `stanza larger than ${max} bytes`);
  if (el.name === "presence" && el.attrs.to === undefined) {
    // A broadcast presence: the session's state, kept for a rebuild.
    if (el.attrs.type === undefined) c.presence = xml;
    else if (el.attrs.type === "unavailable") c.presence = null;
  } else if (el.name === "iq" && el.attrs.type === "get" && el.attrs.to === undefined && el.getChild("query", "jabber:iq:roster")) {
    c.interested = true;
  }
  passOn(c, xml, key);
}

/**
 * Sends a client stanza to the sm, numbered, and keeps it until the sm
 * takes it (protocol §2.5): sent again after a failover, never lost with a
 * router or an sm. While no router is linked it only waits; too much
 * waiting and the client is not read.
 */
export function passOn(c: SessionLink, xml: string, key: string, own = false): void {
  const pipe = c.pipe!;
  // The front end's own stanza is counted after every one the client sent, so its 'h' is not held back.
  const inbound = c.ack?.inbound ?? 0;
  const entry = pipe.add(xml, Buffer.byteLength(xml), own ? inbound + 1 : inbound, key, Date.now(), own);
  if (pipe.pending.length === 1) c.ctx.awaitTaken(c);
  if (c.ctx.link.connected) toSm(c, SessionOp.Stanza, stanzaMeta(c, entry), entry.xml);
  if (pendingFull(c)) c.pauseReading();
}

/** Its stanzas that the sm has not taken fill c2s.max_pending_bytes: it is not read until the sm takes some. */
export function pendingFull(c: SessionLink): boolean {
  return c.pipe !== null && c.pipe.bytes > c.ctx.config.max_pending_bytes;
}

/** A STANZA's meta: a resumable session's tells the sm the client's count (§2.6), unless the front end made it. */
function stanzaMeta(c: SessionLink, entry: PendingStanza): StanzaMeta {
  return c.ack?.resumable && !entry.own ? { sid: c.sid, seq: entry.seq, h: entry.h } : { sid: c.sid, seq: entry.seq };
}

/** Sends again every stanza the sm has not taken: after a rebuild, a re-link, or silence (protocol §2.5). */
export function resendPending(c: SessionLink): void {
  const pipe = c.pipe;
  if (!pipe || pipe.pending.length === 0 || !c.ctx.link.connected) return;
  for (const entry of pipe.pending) toSm(c, SessionOp.Stanza, stanzaMeta(c, entry), entry.xml);
  pipe.sentAt = Date.now();
}

/**
 * DELIVER: writes a stanza; with stream management on, it is counted and
 * kept until acknowledged. An offline message (`confirm`, protocol §2.4) is
 * reported to the sm once delivered: written to the socket, or, with stream
 * management, acknowledged by the client.
 */
export function deliver(c: SessionLink, xml: string | Buffer, flow: Omit<DeliverMeta, "sid"> = {}): void {
  if (c.stage === "closed") return;
  const ack = c.ack;
  // Sent again after a failover, and already here (protocol §2.5); a copy numbered anew is never written (§2.6).
  if (flow.origin !== undefined && c.pipe?.seen(flow.origin, Date.now())) {
    if (ack?.resumable && flow.n !== undefined && flow.n > ack.lastN) tellSm(c, { skipped: { [c.sid]: [flow.n] } });
    return;
  }
  c.ctx.counters.stanzaOut(xml);
  if (!ack) {
    const confirmed = flow.last ? flow.confirm : undefined;
    c.write(xml, confirmed ? () => confirm(c, confirmed) : undefined);
    return;
  }
  const bytes = typeof xml === "string" ? Buffer.byteLength(xml) : xml.length;
  ack.sent(typeof xml === "string" ? xml : xml.toString("utf8"), bytes, flow.confirm ?? 0, flow.n);
  // Told before it is written, so that a resumption from the sm counts it even if this process dies now (§2.6).
  const local = ack.resumable && flow.n === undefined;
  if (local) tellSm(c, { local: { [c.sid]: [ack.outbound] } });
  if (ack.queue.length > MAX_UNACKED || ack.bytes > c.ctx.config.max_unacked_bytes) {
    // What it holds goes back to the sm (bounceUnacked); a hibernating session just ends.
    c.log.info({ unacked: ack.queue.length, bytes: ack.bytes }, "unacknowledged stanzas over the limit");
    return c.streamError("policy-violation", "too many unacknowledged stanzas");
  }
  c.write(xml, undefined, local);
  if (ack.queue.length % ACK_EVERY === 0 || flow.last) c.write(`<r xmlns='${NS_SM}'/>`);
}

/**
 * CLIENT_STATE: the client said it is active or inactive (XEP-0352). Passed
 * on as it came, neither counted (a nonza) nor kept: what it changes is the
 * sm's modules' business, and they keep it in the session's module state.
 */
export function clientState(c: SessionLink, active: boolean): void {
  if (c.smKnows) toSm(c, SessionOp.ClientState, { sid: c.sid, active });
}

/** WRITTEN: the sm's offline messages up to store id `upTo` reached the client. */
export function confirm(c: SessionLink, upTo: number): void {
  if (c.smKnows) toSm(c, SessionOp.Written, { sid: c.sid, confirm: upTo });
}

/** CLIENT_ACKED: what the sm must know to resume this session without this front end (§2.6). */
export function tellSm(c: SessionLink, meta: ClientAckedMeta): void {
  if (c.smKnows && c.ctx.link.connected) toSm(c, SessionOp.ClientAcked, meta);
}

/**
 * REBUILD: re-establishes the session on the sm that now owns the user, then
 * sends again what no sm took. `replaces`: a resumption from another front end.
 */
export function rebuild(c: SessionLink, replaces?: RebuildMeta["replaces"]): void {
  const meta: RebuildMeta = { sid: c.sid, jid: c.jid!, ip: c.ip, secure: c.secure, interested: c.interested };
  if (replaces) meta.replaces = replaces;
  else {
    meta.seq = c.pipe?.takenSeq ?? 0;
    const ack = c.ack;
    // An sm that holds no log of this session starts one now: what was written before is not sent again from there (§2.6).
    if (ack?.resumable) {
      const inbound = c.pipe?.safeH(ack.inbound) ?? ack.inbound;
      meta.resume = { ...resumePromise(ack, c.ctx.config), inbound, outbound: ack.outbound, lastN: ack.lastN };
    }
  }
  if (c.moduleState) meta.state = c.moduleState;
  toSm(c, SessionOp.Rebuild, meta, c.presence ?? undefined);
  if (!replaces) resendPending(c);
}

/**
 * END, once: the session is gone. What the sm had not taken is routed on by
 * the front end (orphan), and stanzas the client may never have received go
 * back to the sm as if routed anew: messages reach the user's other
 * resources or offline storage, iq requests get an error. Offline messages
 * the sm still keeps (`confirm`) stay where they are.
 * `forResumption`: the front end stops under a resumable session, and END
 * `resume` (protocol §2.6) has the sm keep it, with what its client has not
 * acknowledged, for the client to resume elsewhere: nothing is routed again.
 */
export function end(c: SessionLink, forResumption = false): void {
  if (!c.smKnows) return;
  c.smKnows = false;
  toSm(c, SessionOp.End, forResumption ? { sid: c.sid, resume: true } : { sid: c.sid });
  // What the sm's identities of this session's stanzas start with (protocol §2.5).
  if (c.pipe && c.pipe.pending.length > 0) c.ctx.orphan(c.sid, c.pipe, `${c.ctx.config.name}/${c.sid}/`);
  c.pipe = null;
  if (forResumption) return c.ctx.leftForResumption(c.sid);
  const ack = c.ack;
  if (!ack) return;
  const queue = ack.queue;
  ack.queue = [];
  ack.bytes = 0;
  for (const { xml, confirm } of queue) {
    if (confirm === 0 && routedAgain(xml)) c.ctx.routeAgain(c.user!, xml);
  }
  if (queue.length > 0) c.log.info({ count: queue.length }, "unacknowledged stanzas routed again");
}

/**
 * A message the client sent before it read the stream error that the farm
 * ended its session with (see-other-host, system-shutdown). Its session
 * has ended (END went first), so it is routed as FORWARD, keyed by its
 * recipient, as any other sm would pass it on. Presence is state, not
 * replayed; an iq's answer could no longer reach the client.
 */
export function forwardInFlight(c: SessionLink, el: Element): void {
  el.attrs.from = c.jid!;
  const to = parseJid(el.attrs.to ?? c.user!);
  if (!to || badRequestText(el)) return void c.log.debug("malformed message after its stream ended; dropped with the stream");
  el.attrs.to = to.full;
  const xml = serialize(el);
  if (Buffer.byteLength(xml) > c.ctx.config.max_stanza_size) return void c.log.debug("oversized message after its stream ended; dropped with the stream");
  c.ctx.routeAgain(to.bare, xml);
}

/** A serialized stanza's routing key (protocol §2): its recipient's bare JID or domain; undefined without a valid 'to'. */
export function routingKey(xml: string): string | undefined {
  const to = parseJid(parse(xml).attrs.to ?? "");
  return to?.bare;
}
