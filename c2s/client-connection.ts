// One client's connection: the coordinator of its collaborators, each with
// one job — the socket and XML stream (client-transport.ts), stream
// negotiation up to a bound session (stream-negotiation.ts), SASL
// (sasl-exchange.ts), XEP-0198 (stream-management-protocol.ts), the
// session's traffic with its sm (session-pipe.ts), and the farm's sending
// it away: a drain, a stop (sending-away.ts). It holds the connection's
// state, which those read and move along through narrow interfaces, decides
// where each element goes, and owns the connection's lifecycle: closing,
// hibernating, letting its session go to another connection (which
// XEP-0198's module decides).
import type net from "node:net";
import type { Element } from "ltx";
import type { Logger } from "../lib/log.js";
import type { DeliverMeta, HandoffMeta, ModuleState } from "../lib/link/session-payload.js";
import { NS_CLIENT, type StreamHeader } from "../lib/xml-stream.js";
import type { Redirect } from "./balancer.js";
import { addressKey } from "./client-address.js";
import { ClientTransport, type TransportOwner } from "./client-transport.js";
import type { ConnectionHost } from "./connection-host.js";
import type { Throttled } from "./read-throttle.js";
import type { PlainProof } from "./sasl/plain-cache.js";
import { SaslExchange, type SaslParty } from "./sasl-exchange.js";
import * as sendingAway from "./sending-away.js";
import type { Departing } from "./sending-away.js";
import * as sessionPipe from "./session-pipe.js";
import type { SmPipe } from "./sm-pipe.js";
import { NS_SM, type AckState } from "./stream-management.js";
import * as xep0198 from "./stream-management-protocol.js";
import type { ManagedStream, PendingResume } from "./stream-management-protocol.js";
import * as negotiation from "./stream-negotiation.js";
import type { Negotiating } from "./stream-negotiation.js";
import { NS_CSI, NS_SASL, NS_TLS, streamError } from "./stream-writer.js";

/**
 * Bytes queued for a client that does not read before it is cut off; with
 * XEP-0198, beyond the stanzas it has yet to acknowledge, which
 * c2s.max_unacked_bytes bounds (a resumption sends them all again at once).
 */
const MAX_WRITE_BUFFER = 4 * 1024 * 1024;
const STANZA_NAMES = new Set(["message", "presence", "iq"]);
/** XEP-0352's nonzas: not stanzas, so XEP-0198 does not count them. */
const CLIENT_STATES = new Set(["active", "inactive"]);

export class ClientConnection implements Throttled, TransportOwner, SaslParty, Negotiating, ManagedStream, Departing {
  // The state its collaborators share; each field is described in the interface that names it.
  /** Changes once: when this connection resumes another's session, it takes that session's sid. */
  sid: string;
  private readonly transport: ClientTransport;
  stage: sessionPipe.Stage = "header";
  readonly direct: boolean;
  domain = "";
  user: string | null = null;
  jid: string | null = null;
  bindId: string | undefined;
  binding = false;
  early: Element[] | null = null;
  /** Until the client authenticated. */
  private sasl: SaslExchange | null = null;
  voucher: Buffer | null = null;
  headerSent = false;
  /** The client's address (its socket's, kept for logs after the socket closed). */
  readonly ip: string;
  smKnows = false;
  holder: string | null = null;
  presence: string | null = null;
  interested = false;
  moduleState: ModuleState | null = null;
  /** XEP-0198 state, once the client enabled stream management. */
  ack: AckState | null = null;
  pipe: SmPipe | null = null;
  pendingResume: PendingResume | null = null;
  stay = false;
  /** Another connection resumed this session: this one ends without a word to the sm. */
  private superseded = false;
  /** A login attempt waits for the login throttle: the socket is not read meanwhile. */
  private loginHeld = false;
  /** Counted in the front end's sessions (the balancer's load) from the moment it is served. */
  counted = false;
  /** Counted in the gate's connections not yet authenticated from its address, until it authenticates or goes. */
  private unauthenticated = true;
  /**
   * Its stream ended by the farm, not by itself, with no XEP-0198 resumption
   * (sent away, or its front end stopping): what the client wrote before it
   * read the stream error is still read until it closes its side, and its
   * messages routed, so the farm's own doing costs it none
   * (docs/redirection.md).
   */
  private readsOn = false;

  /** `socket` was let in by the gate (ctx.gate.enter); on the direct-TLS port (`direct`) the TLS handshake starts now. */
  constructor(
    readonly ctx: ConnectionHost<ClientConnection>,
    socket: net.Socket,
    direct: boolean,
  ) {
    this.sid = ctx.nextSid();
    this.direct = direct;
    this.ip = socket.remoteAddress ?? "";
    this.transport = new ClientTransport(this, socket, ctx.limits.unauthenticated);
    ctx.register(this);
    ctx.awaitAuth(this);
    if (direct) this.encrypt();
    else this.transport.attachPlain();
  }

  /**
   * A logger with what is known of this connection now, made when something
   * is logged: a pino child kept per connection would cost every idle
   * session some 500 bytes.
   */
  get log(): Logger {
    const who = this.jid ? { jid: this.jid } : this.user ? { user: this.user } : {};
    return this.ctx.log.child({ sid: this.sid, ip: this.ip, ...who });
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get closed(): boolean {
    return this.stage === "closed";
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

  // --- The transport's reports.

  /** Bytes from the client: parsed, counted against its rate, and read no more while the link is congested. */
  onData(chunk: Buffer): void {
    this.ctx.counters.bytesIn += chunk.length;
    this.guarded(() => this.transport.stream.write(chunk));
    if (this.stage === "closed" || this.stage === "hibernating") return;
    this.ctx.rates.charge(this, chunk.length, 0);
    this.ctx.holdIfLinkCongested(this);
  }

  onSocketError(err: Error): void {
    this.log.debug({ err: err.message }, "client socket error");
  }

  onHeader(h: StreamHeader): void {
    negotiation.onHeader(this, h);
  }

  onStreamEnd(): void {
    this.close();
  }

  onXmlError(condition: string, message: string): void {
    this.streamError(condition, message);
  }

  onSecured(protocol: string | null): void {
    this.ctx.handshakeDone(this);
    this.log.debug({ protocol }, "TLS established");
  }

  /** Where each element goes, by namespace and by how far the stream got. */
  onElement(el: Element, uri: string): void {
    this.ctx.rates.charge(this, 0, 1);
    if (this.stage === "closed") {
      if (this.readsOn && uri === NS_CLIENT && el.name === "message") sessionPipe.forwardInFlight(this, el);
      return; // cut off for its rate, moved, or its front end stopping
    }
    if (uri === NS_CLIENT && STANZA_NAMES.has(el.name)) {
      if (this.stage === "bound") sessionPipe.clientStanza(this, el);
      else negotiation.onUnboundStanza(this, el);
      return;
    }
    if (uri === NS_SM && this.user) return xep0198.onStreamManagement(this, el);
    if (uri === NS_CSI && this.stage === "bound" && CLIENT_STATES.has(el.name)) return sessionPipe.clientState(this, el.name === "active");
    if (uri === NS_TLS && el.name === "starttls" && !this.user) return this.startTls();
    if (uri === NS_SASL && !this.user) return void this.onSasl(el);
    this.streamError("unsupported-stanza-type", `<${el.name}/> in ${uri} is not supported here`);
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

  // --- Reading and writing.

  pauseReading(): void {
    this.transport.pause();
  }

  resumeReading(): void {
    if (this.stage === "closed" || this.stage === "hibernating" || this.loginHeld) return;
    if (this.ctx.rates.holds(this) || this.ctx.holdsForLink(this) || sessionPipe.pendingFull(this)) return;
    this.transport.resume();
  }

  holdForLogin(held: boolean): void {
    this.loginHeld = held;
    if (held) this.pauseReading();
  }

  /** Stayed over its rate for longer than c2s.rate_cutoff. */
  overRate(): void {
    this.streamError("policy-violation", "sending too fast for too long");
  }

  /**
   * Writes to the client's socket; `flushed` runs once the bytes have left
   * for the kernel. `afterLink`: only after what this turn wrote to the
   * router has, for what the sm must know before the client does (protocol §2.6).
   */
  write(data: string | Buffer, flushed?: () => void, afterLink = false): void {
    if (this.stage === "closed" || this.stage === "hibernating") return;
    this.transport.write(data, flushed, afterLink);
    this.ctx.counters.bytesOut += typeof data === "string" ? Buffer.byteLength(data) : data.length;
    if (this.transport.buffered > MAX_WRITE_BUFFER + (this.ack?.bytes ?? 0)) {
      this.log.warn({ buffered: this.transport.buffered }, "client does not read; closing");
      this.streamError("policy-violation", "too much unread data");
    }
  }

  // --- Negotiation steps that change the transport.

  private startTls(): void {
    if (this.secure) return this.streamError("policy-violation", "the stream is already encrypted");
    this.transport.startTls(this.ctx.limits.unauthenticated, this.ctx.tls.context);
    this.headerSent = false;
    this.stage = "header";
    this.ctx.awaitHandshake(this);
  }

  /** TLS on the direct-TLS port; the handshake has its own deadline. */
  private encrypt(): void {
    this.transport.encrypt(this.ctx.tls.context);
    this.ctx.awaitHandshake(this);
  }

  private async onSasl(el: Element): Promise<void> {
    // Bytes after this element may be a pipelined new stream (after success) or more of this one.
    const stream = this.transport.stream;
    stream.hold();
    try {
      await (this.sasl ??= new SaslExchange(this.ctx, this)).handle(el);
    } finally {
      // After success the stream was restarted and took what was held; otherwise this one goes on.
      if (this.transport.stream === stream) this.guarded(() => stream.resume());
    }
  }

  authenticated(user: string, mech: string, additional?: Buffer, proof?: PlainProof, voucher?: Buffer): void {
    this.user = user;
    this.sasl = null;
    if (voucher) this.voucher = voucher;
    this.leaveGate();
    this.log.info({ secure: this.secure, mech, proof }, "authenticated");
    this.write(`<success xmlns='${NS_SASL}'>${additional ? additional.toString("base64") : ""}</success>`);
    const pipelined = this.transport.stream.takeHeld();
    this.transport.restart(this.ctx.limits.authenticated);
    this.headerSent = false;
    this.stage = "header";
    if (pipelined) this.guarded(() => this.transport.stream.write(pipelined));
  }

  /** No longer counted among its address's connections that have not authenticated. */
  private leaveGate(): void {
    if (!this.unauthenticated) return;
    this.unauthenticated = false;
    this.ctx.gate.leave(addressKey(this.ip));
  }

  count(): void {
    if (this.counted) return;
    this.counted = true;
    this.ctx.sessions++;
  }

  uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    this.ctx.sessions--;
  }

  // --- Leaving: ends, moves, hibernation.

  /** Ends the stream with a stream error (RFC 6120 §4.9). */
  streamError(condition: string, text?: string, content?: string): void {
    if (this.stage === "closed") return;
    if (this.stage === "hibernating") return this.finish();
    // A redirect is the farm at work (balance, drain), not a failure: logged as what it is.
    if (condition === "see-other-host") this.log.info({ to: content, text }, "redirected");
    else this.log.info({ condition, text, content }, "stream error");
    this.transport.closeWith(negotiation.owedHeader(this) + streamError(condition, text, content));
    this.finish();
  }

  /** Closes the stream cleanly. */
  close(): void {
    if (this.stage === "closed") return;
    this.transport.closeWith("</stream:stream>");
    this.finish();
  }

  private finish(): void {
    const wasAttached = this.stage !== "hibernating";
    this.stage = "closed";
    if (!this.readsOn) this.transport.stop();
    // A client that never closes its side is cut off after a grace period.
    if (wasAttached) this.ctx.scheduleDestroy(this.transport.socket);
    this.leave();
  }

  onSocketClosed(): void {
    if (this.stage === "closed") {
      this.transport.stop();
      return this.leave();
    }
    if (this.stage === "hibernating") return; // already let go of its socket (a drain)
    this.transport.stop();
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
    this.leaveGate();
    if (this.superseded) return;
    this.ctx.forget(this, this.counted);
    sessionPipe.end(this);
  }

  timedOut(): void {
    this.streamError("connection-timeout", "authentication and binding must finish sooner");
  }

  /** The TLS handshake did not finish in time: there is no stream to end yet, the socket is cut. */
  handshakeTimedOut(): void {
    this.log.debug("TLS handshake timed out");
    this.transport.destroy();
  }

  /** Sent away by the farm (sending-away.ts): see-other-host at login, when the balancer sends it elsewhere. */
  sendAway(target: Redirect): void {
    sendingAway.sendAway(this, target);
  }

  readOnAfterClose(): void {
    this.readsOn = true;
  }

  hibernateAfter(last: string): void {
    this.transport.closeWith(last);
    this.ctx.scheduleDestroy(this.transport.socket);
    this.transport.stop();
    this.stage = "hibernating";
    this.ctx.hibernate(this);
  }

  closeAfterLink(last: string | null): void {
    if (last !== null) this.transport.closeWith(last, true);
    this.finish();
  }

  // --- What the sm sends (c2s-server.ts's dispatch).

  /** STARTED: the sm answered our START (or acknowledged a rebuild: then only `holder` changes). */
  bound(jid: string, sm: string | null): void {
    negotiation.bound(this, jid, sm);
  }

  bindFailed(condition: string): void {
    negotiation.bindFailed(this, condition);
  }

  deliver(xml: string | Buffer, flow: Omit<DeliverMeta, "sid"> = {}): void {
    sessionPipe.deliver(this, xml, flow);
  }

  /** The sm ended this session (CLOSE): no END is owed. */
  closedBySm(condition: string, text?: string): void {
    this.smKnows = false;
    this.streamError(condition, text);
  }

  /** SESSION_STATE: kept as it came, for REBUILD and HANDOFF to carry. */
  sessionState(state: ModuleState): void {
    this.moduleState = state;
  }

  /** Re-establishes this session on the sm that now owns the user, without a word to the client. */
  rebuild(): void {
    if (this.hasSession) sessionPipe.rebuild(this);
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
    if (this.presence !== null) sessionPipe.passOn(this, this.presence, this.user!, true);
  }

  resendPending(): void {
    sessionPipe.resendPending(this);
  }

  /** When the oldest stanza the sm has not taken was last sent; null when none waits. */
  get pendingSince(): number | null {
    return this.pipe && this.pipe.pending.length > 0 ? this.pipe.sentAt : null;
  }

  /** The sm took this session's stanzas up to `seq` (TAKEN, protocol §2.5). */
  taken(seq: number): void {
    const smPipe = this.pipe;
    if (!smPipe?.taken(seq, Date.now())) return;
    if (smPipe.pending.length === 0) {
      this.ctx.doneWaiting(this);
      if (this.ctx.owesAck(this)) this.sendAck();
    }
    if (!sessionPipe.pendingFull(this)) this.resumeReading();
  }

  sendAck(): void {
    xep0198.sendAck(this);
  }

  // --- XEP-0198 resumption: here, from another front end, or to one (stream-management-protocol.ts).

  handedOver(meta: HandoffMeta, queued: Buffer, fromC2s: string): void {
    xep0198.handedOver(this, meta, queued, fromC2s);
  }

  handoffRefused(from: string): void {
    xep0198.handoffRefused(this, from);
  }

  frontEndsChanged(): void {
    xep0198.frontEndsChanged(this);
  }

  handoffFailed(): void {
    xep0198.handoffFailed(this);
  }

  letGo(destroy: boolean): void {
    this.superseded = true;
    if (destroy) this.transport.destroy();
    this.stage = "closed";
    this.transport.stop();
  }
}
