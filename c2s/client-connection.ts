// One client's connection: the RFC 6120 stream state machine from the first
// header to a bound session — STARTTLS, SASL, resource binding — and then a
// thin pipe: stanzas go to the sm with `from` stamped, bytes from the sm go
// to the socket unparsed.
import net from "node:net";
import tls from "node:tls";
import { escapeXML, escapeXMLText, parse, type Element } from "ltx";
import { domainpart, parseJid, resourcepart } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { batched } from "../lib/link/batch.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload, type ClientAckedMeta, type DeliverMeta, type HandoffMeta, type SessionMetaByOp, type StanzaMeta } from "../lib/link/session-payload.js";
import { parsePlain } from "./sasl/plain.js";
import { plainVoucher, type PlainProof } from "./sasl/plain-cache.js";
import { saslLocalpart } from "../lib/sasl/saslprep.js";
import { completeCredentials, type Credentials } from "../lib/sasl/scram-credentials.js";
import { SaslError, ScramServer } from "./sasl/scram-server.js";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import type { Redirect } from "./balancer.js";
import type { ConnectionHost } from "./connection-host.js";
import { addressKey } from "./client-address.js";
import type { Throttled } from "./read-throttle.js";
import { SmPipe, type PendingStanza } from "./sm-pipe.js";
import { ACK_EVERY, AckState, MAX_UNACKED, NS_SM, parseResumeId } from "./stream-management.js";
import { NS_BIND, NS_LIMITS, NS_SASL, NS_SESSION, NS_TLS, saslFailure, streamError, streamHeader } from "./stream-writer.js";
import { serialize } from "../lib/xml-serialize.js";
import { NS_CLIENT, XmlStream, type StreamHeader } from "../lib/xml-stream.js";
import { badRequestText, routedAgain } from "../lib/stanza-rules.js";
import { NS_STANZAS, errorReplyXml, isCondition, type Answered, type Condition } from "../lib/stanza-error.js";

const MAX_SASL_ATTEMPTS = 3;
/** Stanzas a client may send between asking to bind and being bound. */
const MAX_EARLY_STANZAS = 16;
/**
 * Bytes queued for a client that does not read before it is cut off; with
 * XEP-0198, beyond the stanzas it has yet to acknowledge, which
 * c2s.max_unacked_bytes bounds (a resumption sends them all again at once).
 */
const MAX_WRITE_BUFFER = 4 * 1024 * 1024;
/** How long after its last bytes a closing stream's socket is half-closed. */
const HALF_CLOSE_DELAY_MS = 250;
const STANZA_NAMES = new Set(["message", "presence", "iq"]);

interface PendingResume {
  previd: string;
  h: number;
  waiting: number;
  fromSm: boolean;
}

/** "hibernating": an XEP-0198 session whose connection dropped, waiting to be resumed. */
type Stage = "header" | "features" | "sasl" | "bound" | "hibernating" | "closed";

export class ClientConnection implements Throttled {
  /** Changes once: when this connection resumes another's session, it takes that session's sid. */
  sid: string;
  private socket: net.Socket;
  private stream: XmlStream;
  private stage: Stage = "header";
  private secure: boolean;
  /** Came in on the direct-TLS port (XEP-0368), so a redirect names the peer's direct-TLS port. */
  readonly direct: boolean;
  private domain = "";
  /** The bare JID once SASL succeeded. */
  private user: string | null = null;
  /** The full JID once the sm bound the session. */
  private jid: string | null = null;
  private bindId: string | undefined;
  private binding = false;
  private early: Element[] | null = null;
  private scram: ScramServer | null = null;
  /** After a PLAIN login, until the restarted stream's header: proof of the password for the front end a redirect names. */
  private voucher: Buffer | null = null;
  private saslFailures = 0;
  private headerSent = false;
  /** The client's address (its socket's, kept for logs after the socket closed). */
  private readonly ip: string;
  /** Set once the sm knows this session, so END is owed when it goes. */
  private smKnows = false;
  /** The sm incarnation ("name/started") holding this session, to rebuild it when that changes. */
  holder: string | null = null;
  /** What a rebuild needs (protocol §2.2): the last broadcast presence, and roster interest. */
  private presence: string | null = null;
  private interested = false;
  /** XEP-0198 state, once the client enabled stream management. */
  private ack: AckState | null = null;
  /** The client's stanzas the sm has not taken, and what was delivered lately (protocol §2.5); from the bind on. */
  private pipe: SmPipe | null = null;
  /** Another connection resumed this session: this one ends without a word to the sm. */
  private superseded = false;
  /** A login attempt waits for the login throttle: the socket is not read meanwhile. */
  private loginHeld = false;
  /** Counted in the front end's sessions (the balancer's load) from the moment it is served. */
  private counted = false;
  /**
   * A resume waiting for a HANDOFF: from the front ends asked (`waiting`: those that have not said no),
   * then, once none has it, from the sm (`fromSm`), which holds it if its front end is gone (protocol §2.6).
   */
  private pendingResume: PendingResume | null = null;
  /** Counted in the gate's connections not yet authenticated from its address, until it authenticates or goes. */
  private unauthenticated = true;

  /** `socket` was let in by the gate (ctx.gate.enter); on the direct-TLS port (`direct`) the TLS handshake starts now. */
  constructor(
    private readonly ctx: ConnectionHost<ClientConnection>,
    socket: net.Socket,
    direct: boolean,
  ) {
    this.sid = ctx.nextSid();
    this.socket = socket;
    this.secure = false;
    this.direct = direct;
    this.ip = socket.remoteAddress ?? "";
    this.stream = this.newStream();
    ctx.register(this);
    ctx.awaitAuth(this);
    if (direct) this.encrypt(socket);
    else this.attach(socket);
  }

  /**
   * A logger with what is known of this connection now, made when something
   * is logged: a pino child kept per connection would cost every idle
   * session some 500 bytes.
   */
  private get log(): Logger {
    const who = this.jid ? { jid: this.jid } : this.user ? { user: this.user } : {};
    return this.ctx.log.child({ sid: this.sid, ip: this.ip, ...who });
  }

  get bareJid(): string | null {
    return this.user;
  }

  /** The XEP-0198 resumption id, once stream management is enabled. */
  get resumeId(): string | undefined {
    return this.ack?.id;
  }

  get isBound(): boolean {
    return this.stage === "bound";
  }

  /** Bound or hibernating: a session that the sm holds for this connection. */
  get hasSession(): boolean {
    return this.smKnows && (this.stage === "bound" || this.stage === "hibernating");
  }

  /** Served here after coming back from a redirect: a drain does not move it again. */
  stay = false;
  /**
   * Sent away without a session to resume: what the client wrote before it
   * read its see-other-host is still read until it closes its side, and its
   * messages routed, so a move costs it none (docs/redirection.md).
   */
  private movedOff = false;

  /** Sends the bound client to another front end (a drain), remembering it in case it comes back. */
  moveTo(target: Redirect): void {
    this.ctx.balancer.remember(this.ip, this.user!);
    this.sendAway(target, "this server is being drained", this.ack?.resumable === true);
  }

  /**
   * <see-other-host/>, after telling the target to expect this client. With
   * `keepSession` (XEP-0198), the session waits here, hibernating, while the
   * client resumes it on the target (protocol §2.3).
   */
  private sendAway(target: Redirect, text?: string, keepSession = false): void {
    const plain = this.voucher?.toString("base64");
    this.ctx.link.sendControl({ op: "expect", to: target.name, ip: this.ip, user: this.user!, ...(plain && { plain }) });
    if (!keepSession) {
      this.movedOff = this.stage === "bound";
      return this.streamError("see-other-host", text, target.address);
    }
    this.log.info({ condition: "see-other-host", content: target.address, user: this.user }, "stream error");
    this.endSocket(streamError("see-other-host", text, target.address));
    this.ctx.scheduleDestroy(this.socket);
    this.stream.stop();
    this.stage = "hibernating";
    this.ctx.hibernate(this);
  }

  private newStream(): XmlStream {
    const limits = this.user ? this.ctx.limits.authenticated : this.ctx.limits.unauthenticated;
    return new XmlStream(limits, {
      header: (h) => this.onHeader(h),
      element: (el, uri) => this.onElement(el, uri),
      end: () => this.close(),
      error: (err) => this.streamError(err.condition, err.message),
    });
  }

  private attach(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("error", (err) => this.log.debug({ err: err.message }, "client socket error"));
    socket.on("close", () => this.onSocketClosed());
  }

  /** Bytes from the client: parsed, counted against its rate, and read no more while the link is congested. */
  private read(chunk: Buffer): void {
    this.guarded(() => this.stream.write(chunk));
    if (this.stage === "closed" || this.stage === "hibernating") return;
    this.ctx.rates.charge(this, chunk.length, 0);
    this.ctx.holdIfLinkCongested(this);
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (this.stage === "closed" || this.stage === "hibernating" || this.loginHeld) return;
    if (this.ctx.rates.holds(this) || this.ctx.holdsForLink(this) || this.pendingFull) return;
    this.socket.resume();
  }

  /** Its stanzas that the sm has not taken fill c2s.max_pending_bytes: it is not read until the sm takes some. */
  private get pendingFull(): boolean {
    return this.pipe !== null && this.pipe.bytes > this.ctx.config.max_pending_bytes;
  }

  /** Stayed over its rate for longer than c2s.rate_cutoff. */
  overRate(): void {
    this.streamError("policy-violation", "sending too fast for too long");
  }

  /** Handles client input: whatever goes wrong there ends this stream, never the process. */
  private guarded(handle: () => void): void {
    try {
      handle();
    } catch (err) {
      this.log.error({ err }, "handling the client's data failed; ending its stream");
      this.streamError("internal-server-error");
    }
  }

  /**
   * Writes to the client's socket; `flushed` runs once the bytes have left
   * for the kernel. `afterLink`: only after what this turn wrote to the
   * router has (link frames leave at the end of the turn, lib/link/batch.ts),
   * for what the sm must know before the client does (protocol §2.6).
   */
  write(data: string | Buffer, flushed?: () => void, afterLink = false): void {
    if (this.stage === "closed" || this.stage === "hibernating") return;
    (afterLink ? batched(this.socket) : this.socket).write(data, flushed && ((err) => !err && flushed()));
    if (this.socket.writableLength > MAX_WRITE_BUFFER + (this.ack?.bytes ?? 0)) {
      this.log.warn({ buffered: this.socket.writableLength }, "client does not read; closing");
      this.streamError("policy-violation", "too much unread data");
    }
  }

  /**
   * Writes a stanza; with stream management on, it is counted and kept until
   * acknowledged. An offline message (`confirm`, protocol §2.4) is reported
   * to the sm once delivered: written to the socket, or, with stream
   * management, acknowledged by the client.
   */
  deliver(xml: string | Buffer, flow: Omit<DeliverMeta, "sid"> = {}): void {
    if (this.stage === "closed") return;
    const ack = this.ack;
    // Sent again after a failover, and already here (protocol §2.5); a copy numbered anew is never written (§2.6).
    if (flow.origin !== undefined && this.pipe?.seen(flow.origin, Date.now())) {
      if (ack?.resumable && flow.n !== undefined && flow.n > ack.lastN) this.tellSm({ skipped: { [this.sid]: [flow.n] } });
      return;
    }
    if (!ack) {
      const confirm = flow.last ? flow.confirm : undefined;
      this.write(xml, confirm ? () => this.confirm(confirm) : undefined);
      return;
    }
    const bytes = typeof xml === "string" ? Buffer.byteLength(xml) : xml.length;
    ack.sent(typeof xml === "string" ? xml : xml.toString("utf8"), bytes, flow.confirm ?? 0, flow.n);
    // Told before it is written, so that a resumption from the sm counts it even if this process dies now (§2.6).
    const local = ack.resumable && flow.n === undefined;
    if (local) this.tellSm({ local: { [this.sid]: [ack.outbound] } });
    if (ack.queue.length > MAX_UNACKED || ack.bytes > this.ctx.config.max_unacked_bytes) {
      // What it holds goes back to the sm (bounceUnacked); a hibernating session just ends.
      this.log.info({ unacked: ack.queue.length, bytes: ack.bytes }, "unacknowledged stanzas over the limit");
      return this.streamError("policy-violation", "too many unacknowledged stanzas");
    }
    this.write(xml, undefined, local);
    if (ack.queue.length % ACK_EVERY === 0 || flow.last) this.write(`<r xmlns='${NS_SM}'/>`);
  }

  /** Tells the sm that its offline messages up to store id `confirm` reached the client. */
  private confirm(confirm: number): void {
    if (this.smKnows) this.toSm(SessionOp.Written, { sid: this.sid, confirm });
  }

  /** Tells the sm what it must know to resume this session without this front end (§2.6). */
  private tellSm(meta: ClientAckedMeta): void {
    if (this.smKnows && this.ctx.link.connected) this.toSm(SessionOp.ClientAcked, meta);
  }

  /** Reports the offline messages the client's last acknowledgement covered. */
  private confirmAcked(): void {
    const confirmed = this.ack?.takeConfirmed() ?? 0;
    if (confirmed > 0) this.confirm(confirmed);
  }

  /** After a resumption: sends again what the client did not acknowledge, and asks for an acknowledgement. */
  private resend(): void {
    const queue = this.ack!.queue;
    for (const { xml } of queue) this.write(xml);
    if (queue.length > 0) this.write(`<r xmlns='${NS_SM}'/>`);
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9). */
  streamError(condition: string, text?: string, content?: string): void {
    if (this.stage === "closed") return;
    if (this.stage === "hibernating") return this.finish();
    this.log.info({ condition, text, content }, "stream error");
    this.endSocket(this.header() + streamError(condition, text, content));
    this.finish();
  }

  /** Closes the stream cleanly. */
  close(): void {
    if (this.stage === "closed") return;
    this.endSocket("</stream:stream>");
    this.finish();
  }

  /**
   * Sends the stream's last bytes and closes our side a moment later, so a
   * client still writing its own goodbye (an XEP-0198 <a/>, its closing
   * tag) does not hit a closed socket and abandon, say, a redirect.
   */
  private endSocket(last: string): void {
    const socket = this.socket;
    socket.write(last);
    // Most clients are gone by then: ending a destroyed socket only builds an error to drop.
    setTimeout(() => {
      if (!socket.destroyed) socket.end();
    }, HALF_CLOSE_DELAY_MS).unref();
  }

  private finish(): void {
    const wasAttached = this.stage !== "hibernating";
    this.stage = "closed";
    if (!this.movedOff) this.stream.stop();
    // A client that never closes its side is cut off after a grace period.
    if (wasAttached) this.ctx.scheduleDestroy(this.socket);
    this.leave();
  }

  private onSocketClosed(): void {
    if (this.stage === "closed") {
      this.stream.stop();
      return this.leave();
    }
    if (this.stage === "hibernating") return; // already let go of its socket (a drain)
    this.stream.stop();
    if (this.stage === "bound" && this.ack?.resumable) {
      // XEP-0198: the connection dropped without a stream close; the session waits to be resumed.
      this.stage = "hibernating";
      this.ctx.hibernate(this);
      this.log.info({ unacked: this.ack.queue.length }, "session hibernating");
      return;
    }
    this.stage = "closed";
    this.leave();
  }

  /** The resumption window passed: the session ends. */
  expire(): void {
    if (this.stage !== "hibernating") return;
    this.log.info("hibernation expired");
    this.finish();
  }

  /** Forgets the connection; tells the sm unless the sm ended it, and hands back what the client never acknowledged. */
  private leave(): void {
    this.authenticated();
    if (this.superseded) return;
    this.ctx.forget(this, this.counted);
    if (this.smKnows) {
      this.smKnows = false;
      this.toSm(SessionOp.End, { sid: this.sid });
      if (this.pipe && this.pipe.pending.length > 0) this.ctx.orphan(this.sid, this.pipe, this.originPrefix);
      this.pipe = null;
      this.bounceUnacked();
    }
  }

  /** What the sm's identities of this session's stanzas start with (protocol §2.5). */
  private get originPrefix(): string {
    return `${this.ctx.config.name}/${this.sid}/`;
  }

  /**
   * Stanzas the client may never have received go back to the sm as if
   * routed anew, after END: with the session gone, messages reach the
   * user's other resources or offline storage, and iq requests get an error.
   * Offline messages the sm still keeps (`confirm`) stay where they are.
   */
  private bounceUnacked(): void {
    const queue = this.ack?.queue ?? [];
    if (this.ack) {
      this.ack.queue = [];
      this.ack.bytes = 0;
    }
    for (const { xml, confirm } of queue) {
      if (confirm === 0 && routedAgain(xml)) this.ctx.routeAgain(this.user!, xml);
    }
    if (queue.length > 0) this.log.info({ count: queue.length }, "unacknowledged stanzas routed again");
  }

  /** The sm ended this session (CLOSE): no END is owed. */
  closedBySm(condition: string, text?: string): void {
    this.smKnows = false;
    this.streamError(condition, text);
  }

  /** The sm answered our START (or acknowledged a rebuild: then only `sm` changes). */
  bound(jid: string, sm: string | null): void {
    if (this.stage === "closed") return;
    this.holder = sm;
    if (this.stage === "bound") return;
    this.jid = jid;
    this.binding = false;
    this.stage = "bound";
    this.pipe ??= new SmPipe();
    this.ctx.authDone(this);
    this.count();
    this.write(`<iq type='result' id='${escapeXML(this.bindId ?? "")}'><bind xmlns='${NS_BIND}'><jid>${escapeXMLText(jid)}</jid></bind></iq>`);
    // The login is logged once at info, as "authenticated"; at thousands a second every line costs.
    this.log.debug("session bound");
    const early = this.early ?? [];
    this.early = null;
    for (const el of early) this.onStanza(el);
  }

  /** Re-establishes this session on the sm that now owns the user, without a word to the client. */
  rebuild(): void {
    if (!this.hasSession) return;
    const seq = this.pipe?.takenSeq ?? 0;
    const ack = this.ack;
    // An sm that holds no log of this session starts one now: what was written before is not sent again from there (§2.6).
    const resume = ack?.resumable
      ? { ...this.resumePromise, inbound: this.pipe?.safeH(ack.inbound) ?? ack.inbound, outbound: ack.outbound, lastN: ack.lastN }
      : undefined;
    this.toSm(
      SessionOp.Rebuild,
      { sid: this.sid, jid: this.jid!, ip: this.ip, secure: this.secure, interested: this.interested, seq, ...(resume && { resume }) },
      this.presence ?? undefined,
    );
    this.resendPending();
  }

  /**
   * The sm does not hold this session (TAKEN `unknown`, protocol §2.5): it
   * is rebuilt there, and its presence broadcast again, since the contacts
   * may have seen it end (its front end was cut off past sm.c2s_grace).
   */
  revive(): void {
    if (!this.hasSession) return;
    this.rebuild();
    // Not the client's stanza: counted after every one it sent, so its 'h' is not held back.
    if (this.presence !== null) this.passOn(this.presence, this.user!, true);
  }

  bindFailed(condition: string): void {
    if (this.stage === "closed") return;
    this.smKnows = false;
    this.binding = false;
    this.early = null;
    this.write(this.errorReply({ name: "iq", attrs: { id: this.bindId } }, isCondition(condition) ? condition : "internal-server-error"));
  }

  timedOut(): void {
    this.streamError("connection-timeout", "authentication and binding must finish sooner");
  }

  /** The TLS handshake did not finish in time: there is no stream to end yet, the socket is cut. */
  handshakeTimedOut(): void {
    this.log.debug("TLS handshake timed out");
    this.socket.destroy();
  }

  /** Our stream header if it is still owed, to go out in one write with what follows it. */
  private header(): string {
    if (this.headerSent) return "";
    this.headerSent = true;
    return streamHeader(this.domain || this.ctx.config.domains[0]!, this.ctx.streamId());
  }

  private onHeader(h: StreamHeader): void {
    const domains = this.ctx.config.domains;
    const to = domainpart(h.to ?? domains[0]!);
    // The configured string itself, not one copy per connection.
    const served = domains.find((d) => d === to);
    this.domain = served ?? domains[0]!;
    if (!served) {
      this.streamError("host-unknown", `this server does not serve ${h.to}`);
      return;
    }
    if (h.version === undefined || !/^1\.\d+$/.test(h.version)) {
      this.streamError("unsupported-version", "XMPP 1.0 streams only");
      return;
    }
    if (this.user) {
      // RFC 6120 §4.9.3.19: redirect after TLS, so the client knows who sends it away; after SASL, so
      // the farm can remember whom it redirected and serve a client that does not follow (redirection.md).
      const ip = this.ip;
      const balancer = this.ctx.balancer;
      if (balancer.returned(ip, this.user)) this.stay = true;
      else if (!balancer.wasSent(ip, this.user)) {
        const target = balancer.redirectFor(ip, this.user, this.ctx.sessions, this.direct);
        if (target) return this.sendAway(target);
      }
      // Served here: counted now, not at bind, so a burst of logins sees itself.
      this.count();
      this.voucher = null;
    }
    const header = this.header();
    this.stage = "features";
    this.write(header + this.features());
  }

  /** PLAIN sends the password itself: only inside TLS, unless the admin allowed it in the clear. */
  private get plainAllowed(): boolean {
    return this.secure || this.ctx.config.allow_unencrypted_plain_auth;
  }

  private features(): string {
    // XEP-0478: the largest stanza this stream takes, so a client can avoid sending one bigger.
    const c = this.ctx.config;
    const limits = `<limits xmlns='${NS_LIMITS}'><max-bytes>${this.user ? c.max_stanza_size : c.max_stanza_size_unauthenticated}</max-bytes></limits>`;
    if (!this.user) {
      const mustTls = c.require_tls && !this.secure;
      const tlsOffer = this.secure ? "" : `<starttls xmlns='${NS_TLS}'>${mustTls ? "<required/>" : ""}</starttls>`;
      if (mustTls) return `<stream:features>${tlsOffer}${limits}</stream:features>`;
      const mechs = ["SCRAM-SHA-256", "SCRAM-SHA-1", ...(this.plainAllowed ? ["PLAIN"] : [])];
      const mechXml = mechs.map((m) => `<mechanism>${m}</mechanism>`).join("");
      return `<stream:features>${tlsOffer}<mechanisms xmlns='${NS_SASL}'>${mechXml}</mechanisms>${limits}</stream:features>`;
    }
    // Roster versioning (XEP-0237, RFC 6121 §2.6) is the sm's; the feature is announced here.
    return `<stream:features><bind xmlns='${NS_BIND}'/><session xmlns='${NS_SESSION}'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='${NS_SM}'/>${limits}</stream:features>`;
  }

  private onElement(el: Element, uri: string): void {
    this.ctx.rates.charge(this, 0, 1);
    if (this.stage === "closed") {
      if (this.movedOff && uri === NS_CLIENT && el.name === "message") this.forwardInFlight(el);
      return; // cut off for its rate, or moved
    }
    if (uri === NS_CLIENT && STANZA_NAMES.has(el.name)) {
      if (this.stage === "bound") this.onStanza(el);
      else if (this.user && el.name === "iq") this.onPreBindIq(el);
      else if (this.binding && this.early && this.early.length < MAX_EARLY_STANZAS) this.early.push(el);
      else this.streamError("not-authorized", "authenticate and bind before sending stanzas");
      return;
    }
    if (uri === NS_SM && this.user) return this.onStreamManagement(el);
    if (uri === NS_TLS && el.name === "starttls" && !this.user) return this.startTls();
    if (uri === NS_SASL && !this.user) return void this.onSasl(el);
    this.streamError("unsupported-stanza-type", `<${el.name}/> in ${uri} is not supported here`);
  }

  private onPreBindIq(iq: Element): void {
    if (badRequestText(iq)) return this.write(this.errorReply(unaddressed(iq), "bad-request"));
    const type = iq.attrs.type;
    const bind = iq.getChild("bind", NS_BIND);
    if (type === "set" && bind) {
      if (this.binding) {
        this.write(this.errorReply(unaddressed(iq), "resource-constraint"));
        return;
      }
      // RFC 6120 §7.7.2.2: a resourcepart RFC 7622 refuses is a bad request.
      const requested = bind.getChildText("resource")?.trim() ?? "";
      const resource = requested ? resourcepart(requested) : "";
      if (resource === null) {
        this.write(this.errorReply(unaddressed(iq), "bad-request"));
        return;
      }
      this.bindId = iq.attrs.id;
      this.binding = true;
      this.early = [];
      this.smKnows = true;
      this.toSm(SessionOp.Start, {
        sid: this.sid,
        jid: resource ? `${this.user}/${resource}` : this.user!,
        ip: this.ip,
        secure: this.secure,
      });
      return;
    }
    if (this.binding && this.early && this.early.length < MAX_EARLY_STANZAS) {
      this.early.push(iq);
      return;
    }
    this.streamError("not-authorized", "bind a resource before sending stanzas");
  }

  private onStanza(el: Element): void {
    if (this.ack) this.ack.inbound++;
    el.attrs.from = this.jid!;
    const malformed = badRequestText(el);
    if (malformed) {
      this.deliver(this.errorReply(el, "bad-request", malformed));
      return;
    }
    if (el.name === "iq" && el.attrs.type === "set" && el.getChild("session", NS_SESSION) && !el.attrs.to) {
      // RFC 3921's session establishment: a no-op kept for old clients (RFC 6121 Appendix E).
      this.deliver(`<iq type='result' id='${escapeXML(el.attrs.id ?? "")}'/>`);
      return;
    }
    if (el.name === "iq" && el.getChild("bind", NS_BIND) && el.attrs.type === "set") {
      this.deliver(this.errorReply(el, "not-allowed"));
      return;
    }
    let key = this.user!;
    if (el.attrs.to !== undefined) {
      const to = parseJid(el.attrs.to);
      if (!to) {
        this.deliver(this.errorReply(el, "jid-malformed"));
        return;
      }
      // Never taken as the client wrote it: sent on, and delivered, in its RFC 7622 form.
      el.attrs.to = to.full;
      key = to.bare;
    }
    const xml = serialize(el);
    // The limit counts what the farm passes on, escaping included: a link frame must hold it.
    const max = this.ctx.config.max_stanza_size;
    if (xml.length > max / 3 && Buffer.byteLength(xml) > max) return this.streamError("policy-violation", `stanza larger than ${max} bytes`);
    if (el.name === "presence" && el.attrs.to === undefined) {
      // A broadcast presence: the session's state, kept for a rebuild.
      if (el.attrs.type === undefined) this.presence = xml;
      else if (el.attrs.type === "unavailable") this.presence = null;
    } else if (el.name === "iq" && el.attrs.type === "get" && el.attrs.to === undefined && el.getChild("query", "jabber:iq:roster")) {
      this.interested = true;
    }
    this.passOn(xml, key);
  }

  /**
   * Sends a client stanza to the sm, numbered, and keeps it until the sm
   * takes it (protocol §2.5): sent again after a failover, never lost with a
   * router or an sm. While no router is linked it only waits; too much
   * waiting and the client is not read.
   */
  private passOn(xml: string, key: string, own = false): void {
    const pipe = this.pipe!;
    // The front end's own stanza is counted after every one the client sent, so its 'h' is not held back.
    const inbound = this.ack?.inbound ?? 0;
    const entry = pipe.add(xml, Buffer.byteLength(xml), own ? inbound + 1 : inbound, key, Date.now(), own);
    if (pipe.pending.length === 1) this.ctx.awaitTaken(this);
    if (this.ctx.link.connected) this.toSm(SessionOp.Stanza, this.stanzaMeta(entry), entry.xml);
    if (this.pendingFull) this.pauseReading();
  }

  /** A STANZA's meta: a resumable session's tells the sm the client's count (§2.6), unless the front end made it. */
  private stanzaMeta(entry: PendingStanza): StanzaMeta {
    return this.ack?.resumable && !entry.own ? { sid: this.sid, seq: entry.seq, h: entry.h } : { sid: this.sid, seq: entry.seq };
  }

  /** What the sm keeps of a resumable session (§2.6), promised to the client in <enabled/>. */
  private get resumePromise(): { id: string; max: number; stanzas: number; bytes: number } {
    return { id: this.ack!.id, max: this.ctx.config.resume_timeout, stanzas: MAX_UNACKED, bytes: this.ctx.config.max_unacked_bytes };
  }

  /** Sends again every stanza the sm has not taken: after a rebuild, a re-link, or silence (protocol §2.5). */
  resendPending(): void {
    const pipe = this.pipe;
    if (!pipe || pipe.pending.length === 0 || !this.ctx.link.connected) return;
    for (const entry of pipe.pending) this.toSm(SessionOp.Stanza, this.stanzaMeta(entry), entry.xml);
    pipe.sentAt = Date.now();
  }

  /** When the oldest stanza the sm has not taken was last sent; null when none waits. */
  get pendingSince(): number | null {
    return this.pipe && this.pipe.pending.length > 0 ? this.pipe.sentAt : null;
  }

  /** The sm took this session's stanzas up to `seq` (TAKEN, protocol §2.5). */
  taken(seq: number): void {
    const pipe = this.pipe;
    if (!pipe?.taken(seq, Date.now())) return;
    if (pipe.pending.length === 0) {
      this.ctx.doneWaiting(this);
      if (this.ctx.owesAck(this)) this.sendAck();
    }
    if (!this.pendingFull) this.resumeReading();
  }

  /** XEP-0198 <a/>: counts only what the sm has taken, so an acknowledged stanza is never lost. */
  sendAck(): void {
    this.ctx.ackSent(this);
    if (this.ack && (this.stage === "bound" || this.stage === "hibernating")) {
      this.write(`<a xmlns='${NS_SM}' h='${this.pipe?.safeH(this.ack.inbound) ?? this.ack.inbound}'/>`);
    }
  }

  /**
   * A message the client sent before it read its see-other-host. Its session
   * has ended (END went first), so it is routed as FORWARD, keyed by its
   * recipient, as any other sm would pass it on. Presence is state, not
   * replayed; an iq's answer could no longer reach the client.
   */
  private forwardInFlight(el: Element): void {
    el.attrs.from = this.jid!;
    const to = parseJid(el.attrs.to ?? this.user!);
    if (!to || badRequestText(el)) return void this.log.debug("malformed message after a move; dropped with the stream");
    el.attrs.to = to.full;
    const xml = serialize(el);
    if (Buffer.byteLength(xml) > this.ctx.config.max_stanza_size) return void this.log.debug("oversized message after a move; dropped with the stream");
    this.ctx.routeAgain(to.bare, xml);
  }

  /** XEP-0198: enable, acknowledgements, and resumption (§5). */
  private onStreamManagement(el: Element): void {
    switch (el.name) {
      case "enable":
        if (this.stage !== "bound" || this.ack) return this.write(smFailed("unexpected-request"));
        this.ack = AckState.create(this.ctx.config.name, this.sid, el.attrs.resume === "true" || el.attrs.resume === "1");
        if (this.ack.resumable) this.toSm(SessionOp.Resumable, { sid: this.sid, ...this.resumePromise });
        // After RESUMABLE has left: a client told it may resume finds its sm knows (§2.6).
        this.write(
          this.ack.resumable
            ? `<enabled xmlns='${NS_SM}' id='${this.ack.id}' resume='true' max='${this.ctx.config.resume_timeout}'/>`
            : `<enabled xmlns='${NS_SM}'/>`,
          undefined,
          this.ack.resumable,
        );
        return;
      case "r":
        if (!this.ack) return;
        // With stanzas not yet taken, answered once they are, or within a second with what is.
        if (this.pipe && this.pipe.pending.length > 0) return this.ctx.oweAck(this);
        return this.sendAck();
      case "a":
        if (!this.ack) return;
        if (!this.ack.acked(Number(el.attrs.h))) return this.streamError("undefined-condition", "acknowledged more stanzas than were sent");
        if (this.ack.resumable && this.smKnows) this.ctx.clientAcked(this.user!, this.sid, this.ack.outbound - this.ack.queue.length, this.ack.ackedN);
        return this.confirmAcked();
      case "resume":
        return this.resume(el.attrs.previd ?? "", Number(el.attrs.h));
      default:
        return this.write(smFailed("feature-not-implemented"));
    }
  }

  /** XEP-0198 §5: takes over a hibernating (or still attached) session of the same account. */
  private resume(previd: string, h: number): void {
    if (this.stage === "bound" || this.binding || this.pendingResume) return this.write(smFailed("unexpected-request"));
    const holder = parseResumeId(previd);
    // Held by another front end: it hands the session over (protocol §2.3). A session resumed on
    // another front end keeps the id naming the first (this one, maybe), so every front end is asked.
    const asked = new Set<string>();
    if (holder && !this.ctx.resumable(previd)) {
      if (holder.c2s !== this.ctx.config.name) asked.add(holder.c2s);
      for (const peer of this.ctx.balancer.peerNames()) asked.add(peer);
    }
    if (holder && asked.size > 0) {
      this.pendingResume = { previd, h, waiting: asked.size, fromSm: false };
      this.ctx.awaitHandoff(this);
      const payload = encodeSessionPayload(SessionOp.Takeover, { sid: holder.sid, previd, user: this.user!, newSid: this.sid });
      for (const c2s of asked) this.ctx.link.send(c2s, this.user!, payload);
      return;
    }
    const old = this.ctx.resumable(previd);
    // Named this front end, but not here (it restarted): its sm may hold it (§2.6).
    if (holder && !old) return this.askSm((this.pendingResume = { previd, h, waiting: 0, fromSm: false }));
    if (!old || old.user !== this.user || !old.ack) return this.write(smFailed("item-not-found"));
    if (!old.ack.acked(h)) return this.write(smFailed("bad-request"));
    this.adopt(old);
    this.write(`<resumed xmlns='${NS_SM}' previd='${escapeXML(previd)}' h='${this.ack!.inbound}'/>`);
    this.confirmAcked();
    this.resend();
    this.log.info({ resent: this.ack!.queue.length }, "session resumed");
  }

  private count(): void {
    if (this.counted) return;
    this.counted = true;
    this.ctx.sessions++;
  }

  /** Takes over another connection's session: its sid, JID, state and queue. */
  private adopt(old: ClientConnection): void {
    if (old.counted) {
      old.counted = false;
      this.ctx.sessions--;
    }
    this.count();
    old.superseded = true;
    old.stage = "closed";
    old.stream.stop();
    old.socket.destroy();
    this.ctx.replace(old, this);
    this.sid = old.sid;
    this.jid = old.jid;
    this.ack = old.ack;
    this.pipe = old.pipe;
    this.presence = old.presence;
    this.interested = old.interested;
    this.holder = old.holder;
    this.smKnows = true;
    this.stage = "bound";
  }

  /** The front end that held the session answered our TAKEOVER (protocol §2.3). */
  handedOver(meta: HandoffMeta, queued: Buffer, fromC2s: string): void {
    const pending = this.pendingResume;
    if (pending && (!meta.ok || !meta.jid || !meta.oldSid)) return pending.fromSm ? this.handoffFailed() : this.handoffRefused();
    this.pendingResume = null;
    this.ctx.handoffDone(this);
    if (!pending || this.stage === "closed" || !meta.ok || !meta.jid || !meta.oldSid) return;
    const ack = new AckState(pending.previd, true);
    ack.inbound = meta.inbound ?? 0;
    ack.outbound = meta.outbound ?? 0;
    let offset = 0;
    ack.lastN = meta.lastN ?? 0;
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
      pipe.requeue({ seq, xml, bytes: length, h, to: routingKey(xml) ?? this.user! }, now);
    }
    pipe.remember(meta.recent ?? [], now);
    this.pipe = pipe;
    if (pipe.pending.length > 0) this.ctx.awaitTaken(this);
    this.ack = ack;
    this.jid = meta.jid;
    this.presence = meta.presence ?? null;
    this.interested = meta.interested ?? false;
    this.stage = "bound";
    this.smKnows = true;
    this.ctx.authDone(this);
    this.count();
    this.ctx.alias(pending.previd, this);
    // From the sm, the session is already here (§2.6); from a front end, the sm moves it now (§2.3).
    if (!meta.moved) this.toSm(
      SessionOp.Rebuild,
      {
        sid: this.sid,
        jid: this.jid,
        ip: this.ip,
        secure: this.secure,
        interested: this.interested,
        replaces: { c2s: fromC2s, sid: meta.oldSid },
      },
      this.presence ?? undefined,
    );
    if (!ack.acked(pending.h)) return this.streamError("undefined-condition", "acknowledged more stanzas than were sent");
    this.write(`<resumed xmlns='${NS_SM}' previd='${escapeXML(pending.previd)}' h='${ack.inbound}'/>`);
    this.confirmAcked();
    this.resend();
    this.log.info({ resent: ack.queue.length, from: fromC2s, lost: meta.moved === true }, "session resumed from another front end");
  }

  /** A front end asked does not hold the session, or is gone; once none is left, the client binds anew. */
  handoffRefused(): void {
    if (!this.pendingResume || this.pendingResume.fromSm || --this.pendingResume.waiting > 0) return;
    this.handoffFailed();
  }

  /** No front end handed the session over in time: the sm is asked, then the client binds anew. */
  handoffFailed(): void {
    const pending = this.pendingResume;
    if (!pending) return;
    if (!pending.fromSm) return this.askSm(pending);
    this.pendingResume = null;
    this.ctx.handoffDone(this);
    this.write(smFailed("item-not-found"));
  }

  /** The session's front end is gone, or never answered: its sm may hold it (§2.6). */
  private askSm(pending: PendingResume): void {
    pending.fromSm = true;
    this.ctx.awaitHandoff(this);
    this.toSm(SessionOp.Resume, { sid: this.sid, previd: pending.previd, h: pending.h });
  }

  /**
   * Another front end's client resumed this session: this connection lets
   * it go, with no END to the sm (the session lives on over there).
   */
  handOff(): { meta: Omit<HandoffMeta, "sid" | "ok">; queued: Buffer } {
    const ack = this.ack!;
    const bufs = ack.queue.map((entry) => Buffer.from(entry.xml, "utf8"));
    const pending = this.pipe?.pending ?? [];
    const pendingBufs = pending.map((entry) => Buffer.from(entry.xml, "utf8"));
    this.superseded = true;
    this.ctx.forget(this, this.counted);
    if (this.stage !== "hibernating") this.socket.destroy();
    this.stage = "closed";
    this.stream.stop();
    this.log.info({ unacked: bufs.length }, "session handed over to another front end");
    return {
      meta: {
        jid: this.jid!,
        oldSid: this.sid,
        inbound: ack.inbound,
        outbound: ack.outbound,
        lengths: bufs.map((b) => b.length),
        presence: this.presence,
        interested: this.interested,
        confirms: ack.queue.map((entry) => entry.confirm),
        seq: this.pipe?.seq ?? 0,
        pending: pending.map((entry, i) => [entry.seq, entry.h, pendingBufs[i]!.length]),
        recent: this.pipe?.recentOrigins(Date.now()) ?? [],
        ns: ack.queue.map((entry) => entry.n),
        lastN: ack.lastN,
      },
      queued: Buffer.concat([...bufs, ...pendingBufs]),
    };
  }

  /** For a resume: this session, if `previd` is its id and it can still be taken over. */
  resumableBy(previd: string): boolean {
    return (this.stage === "bound" || this.stage === "hibernating") && this.ack?.resumable === true && this.ack.id === previd;
  }

  private toSm<K extends SessionOp>(op: K, meta: SessionMetaByOp[K], xml?: string): void {
    this.ctx.link.send(SM_ADDRESS, this.user!, encodeSessionPayload(op, meta, xml));
  }

  private startTls(): void {
    if (this.secure) {
      this.streamError("policy-violation", "the stream is already encrypted");
      return;
    }
    this.write(`<proceed xmlns='${NS_TLS}'/>`);
    const raw = this.socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    raw.removeAllListeners("error");
    this.stream.stop();
    this.restartStream();
    this.encrypt(raw);
  }

  /** TLS over the client's socket, with the certificate in use now; the handshake has its own deadline. */
  private encrypt(raw: net.Socket): void {
    const secured = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.tls.context });
    this.socket = secured;
    this.secure = true;
    this.ctx.awaitHandshake(this);
    this.attach(secured);
    secured.once("secure", () => {
      this.ctx.handshakeDone(this);
      this.log.debug({ protocol: secured.getProtocol() }, "TLS established");
    });
  }

  private restartStream(): void {
    this.stream = this.newStream();
    this.headerSent = false;
    this.stage = "header";
  }

  private async onSasl(el: Element): Promise<void> {
    // Bytes after this element may be a pipelined new stream (after success) or more of this one.
    const stream = this.stream;
    stream.hold();
    try {
      if (el.name === "auth") await this.saslAuth(el);
      else if (el.name === "response" && this.scram) await this.saslResponse(el);
      else if (el.name === "abort") {
        this.scram = null;
        this.saslFail("aborted");
      } else throw new SaslError("malformed-request", `unexpected <${el.name}/>`);
    } catch (err) {
      if (!(err instanceof SaslError)) {
        // A database outage is logged once by the store; anything else here is a bug.
        if (!(err instanceof StoreUnavailableError)) this.log.error({ err }, "SASL failed internally");
        this.scram = null;
        this.write(saslFailure("temporary-auth-failure"));
        return;
      }
      this.scram = null;
      this.saslFail(err.condition, err.message);
    } finally {
      // After success the stream was restarted and took what was held; otherwise this one goes on.
      if (this.stream === stream) this.guarded(() => stream.resume());
    }
  }

  private async saslAuth(el: Element): Promise<void> {
    if (this.scram) throw new SaslError("malformed-request", "an exchange is already under way");
    if (this.ctx.config.require_tls && !this.secure) {
      throw new SaslError("encryption-required", "use STARTTLS before authenticating");
    }
    const mech = el.attrs.mechanism as string | undefined;
    const initial = decodeSaslData(el.getText());
    switch (mech) {
      case "PLAIN": {
        if (!this.plainAllowed) throw new SaslError("encryption-required", "PLAIN needs an encrypted stream");
        const { authzid, authcid, password } = parsePlain(initial);
        const user = this.userJid(authcid);
        if (!(await this.throttled(user))) return;
        const creds = user ? await this.ctx.store.getCredentials(user) : null;
        // An unknown account is checked too, against fake keys: it takes as long as a wrong password.
        const checked = await this.ctx.plain.checkAccount(user ?? authcid, password, creds, this.ctx.config.scram_iterations);
        if (!checked) {
          this.loginFailed(user);
          throw new SaslError("not-authorized", "wrong username or password");
        }
        this.checkAuthzid(authzid, user!);
        await this.completeKeys(user!, password, creds!);
        // Kept until the restarted stream's header, in case the balancer sends the client on.
        this.voucher = plainVoucher(user!, password, checked.keys, checked.hash);
        return this.saslSuccess(user!, "PLAIN", undefined, checked.proof);
      }
      case "SCRAM-SHA-1":
      case "SCRAM-SHA-256": {
        const hash = mech === "SCRAM-SHA-1" ? "SHA-1" : "SHA-256";
        const scram = new ScramServer(hash, async (name) => {
          const user = this.userJid(name);
          const creds = user ? await this.ctx.store.getCredentials(user) : null;
          if (creds && !creds[hash]) {
            this.log.info({ user, mechanism: mech }, "account has no keys for this hash (imported); PLAIN or xfarm user passwd adds them");
          }
          return creds?.[hash] ?? null;
        }, { fakeIterations: this.ctx.config.scram_iterations, accountOf: (name) => this.userJid(name) ?? name });
        this.scram = scram;
        const challenge = await scram.start(initial);
        if (this.scram === scram) this.write(`<challenge xmlns='${NS_SASL}'>${challenge.toString("base64")}</challenge>`);
        return;
      }
      default:
        throw new SaslError("invalid-mechanism", `mechanism ${mech ?? "(none)"} is not offered`);
    }
  }

  /**
   * An imported account may hold keys for one SCRAM hash only: the password
   * a PLAIN login proved gives it the other. A failure here only delays that.
   */
  private async completeKeys(user: string, password: string, creds: Credentials): Promise<void> {
    try {
      const complete = await completeCredentials(password, creds);
      if (complete && (await this.ctx.store.setCredentials(user, complete))) {
        this.log.info({ user }, "added the missing SCRAM keys");
      }
    } catch (err) {
      this.log.warn({ err, user }, "could not add the missing SCRAM keys");
    }
  }

  private async saslResponse(el: Element): Promise<void> {
    const scram = this.scram!;
    const account = this.userJid(scram.username!);
    if (!(await this.throttled(account))) return;
    let final: Buffer;
    try {
      final = await scram.finish(decodeSaslData(el.getText()));
    } catch (err) {
      if (err instanceof SaslError && err.condition === "not-authorized") this.loginFailed(account);
      throw err;
    }
    if (this.scram !== scram) return;
    const user = this.userJid(scram.username!)!;
    this.checkAuthzid(scram.authzid ?? "", user);
    this.scram = null;
    this.saslSuccess(user, `SCRAM-${scram.hash}`, final);
  }

  private checkAuthzid(authzid: string, user: string): void {
    if (!authzid) return;
    const jid = parseJid(authzid);
    if (!jid) throw new SaslError("invalid-authzid", "malformed authzid");
    if (jid.full !== user) throw new SaslError("invalid-authzid", "you may only authorize as yourself");
  }

  private userJid(username: string): string | null {
    const local = saslLocalpart(username);
    return local === null ? null : `${local}@${this.domain}`;
  }

  /**
   * Holds a password guess on `account` (null: no such account can exist)
   * for as long as the login throttle says; false if the connection went
   * meanwhile. The socket is not read while the guess is held, so nothing
   * the client sends piles up.
   */
  private async throttled(account: string | null): Promise<boolean> {
    const turn = this.ctx.throttle.turn(this, addressKey(this.ip), account, Date.now());
    if (turn === true) return true;
    this.loginHeld = true;
    this.pauseReading();
    const go = await turn;
    this.loginHeld = false;
    if (!go || this.stage === "closed") return false;
    this.resumeReading();
    return true;
  }

  private loginFailed(account: string | null): void {
    this.ctx.throttle.failed(addressKey(this.ip), account, Date.now());
  }

  /** No longer counted among its address's connections that have not authenticated. */
  private authenticated(): void {
    if (!this.unauthenticated) return;
    this.unauthenticated = false;
    this.ctx.gate.leave(addressKey(this.ip));
  }

  private saslSuccess(user: string, mech: string, additional?: Buffer, proof?: PlainProof): void {
    if (this.stage === "closed") return;
    this.user = user;
    this.authenticated();
    this.ctx.throttle.succeeded(addressKey(this.ip), user, Date.now());
    this.log.info({ secure: this.secure, mech, proof }, "authenticated");
    this.write(`<success xmlns='${NS_SASL}'>${additional ? additional.toString("base64") : ""}</success>`);
    const pipelined = this.stream.takeHeld();
    this.restartStream();
    if (pipelined) this.guarded(() => this.stream.write(pipelined));
  }

  /** `text` is for the log alone. */
  private saslFail(condition: string, text?: string): void {
    this.saslFailures++;
    this.log.info({ condition, text }, "authentication failed");
    this.write(saslFailure(condition));
    if (this.saslFailures >= MAX_SASL_ATTEMPTS) this.streamError("policy-violation", "too many failed authentication attempts");
  }

  /** A stanza error the c2s itself answers with: by the server, with no 'from' (RFC 6120 §8.3.1). */
  private errorReply(stanza: Answered, condition: Condition, text?: string): string {
    return errorReplyXml(stanza, condition, { text, by: this.domain });
  }
}

/** A serialized stanza's routing key (protocol §2): its recipient's bare JID or domain; undefined without a valid 'to'. */
function routingKey(xml: string): string | undefined {
  const to = parseJid(parse(xml).attrs.to ?? "");
  return to?.bare;
}


function decodeSaslData(text: string): Buffer {
  const t = text.trim();
  if (t === "" || t === "=") return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new SaslError("incorrect-encoding", "invalid base64");
  return Buffer.from(t, "base64");
}

function smFailed(condition: string): string {
  return `<failed xmlns='${NS_SM}'><${condition} xmlns='${NS_STANZAS}'/></failed>`;
}

/** A pre-bind iq as a stanza error reply sees it: its id alone, since nothing else in it was checked. */
function unaddressed(iq: Element): Answered {
  return { name: "iq", attrs: { id: iq.attrs.id } };
}
