// What every connection of one c2s process shares: config, store, link, and
// the process-wide timers (one sweep for all, never a timer per socket).
import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import type net from "node:net";
import { xmlLimits } from "../lib/config.js";
import type { Logger } from "../lib/log.js";
import type { LinkClient, LinkClientEvents } from "../lib/link/link-client.js";
import { SM_ADDRESS, flatAckReaders, type Member } from "../lib/link/member.js";
import { AckBatch } from "../lib/link/ack-batch.js";
import { SessionOp, clientAckedPayload, encodeSessionPayload } from "../lib/link/session-payload.js";
import type { XmlLimits } from "../lib/xml-stream.js";
import { randomHex } from "../lib/random.js";
import { PlainVerifier } from "./sasl/plain-cache.js";
import * as sendingAway from "./sending-away.js";
import type { Store } from "../xdb-sql/store.js";
import type { Balancer } from "./balancer.js";
import type { ClientConnection } from "./client-connection.js";
import type { C2sSettings, ConnectionHost } from "./connection-host.js";
import { routedAgain } from "../lib/stanza-rules.js";
import type { SmPipe } from "./sm-pipe.js";
import { RegistrationLimit } from "./registration.js";
import { PeerHearing } from "../lib/link/peer-hearing.js";
import { ReadThrottle } from "./read-throttle.js";
import { ConnectionGate, type Refusal } from "./connection-gate.js";
import { LoginThrottle } from "./login-throttle.js";
import { C2sCounters } from "./c2s-counters.js";
import { resumableBy } from "./stream-management-protocol.js";
import { streamError, streamHeader } from "./stream-writer.js";
import type { TlsCredentials } from "../lib/tls-credentials.js";

/** What the c2s's connections use of the link to the router: a LinkClient, or a stand-in in unit tests. */
export type C2sLink = Pick<LinkClient, "connected" | "congested" | "send" | "sendControl" | "smOwnerOf"> & Pick<EventEmitter<LinkClientEvents>, "on">;

/** How long a closed stream's socket may linger for the peer's close. */
const CLOSE_GRACE_MS = 5_000;
const SWEEP_MS = 1_000;
/** How long a resume waits for the front end that held the session. */
const HANDOFF_TIMEOUT_MS = 5_000;
/** A session's stanzas that the sm has not taken after this long, the sm silent as long, are sent again (protocol §2.5). */
const RESEND_MS = 3_000;
/** How long an XEP-0198 <r/> waits for the sm to take what the client sent before it is answered with what was taken. */
const ACK_WAIT_MS = 1_000;
/** How long the stanzas of an ended session wait for the sm to take them before they are routed (protocol §2.5). */
const ORPHAN_MS = 10_000;
/** Stanzas to be routed again that wait for an sm to be linked; beyond, the oldest is dropped, with a log line. */
const MAX_HELD_ROUTES = 10_000;
/** How long frames for a handed-over session are passed on. */
const FORWARD_MS = 60_000;
/** How long a refused client's socket may linger for the peer to read why; at most this many at once, beyond them a refusal is a plain close. */
const REFUSAL_GRACE_MS = 1_000;
const MAX_LINGERING_REFUSALS = 256;
/** Acknowledgements one CLIENT_ACKED carries at most (a session may have several), so that its meta stays within 64 KiB. */
const CLIENT_ACKS_PER_FRAME = 1_000;
const REFUSAL_TEXT: Record<Refusal, string> = {
  "resource-constraint": "this server is full; try again later",
  "policy-violation": "too many connections from your address are not authenticated yet",
};

export class C2sContext implements ConnectionHost<ClientConnection> {
  private sidCounter = 0;
  /**
   * Ten characters, so that every sid is longer than ten: V8's JSON.parse
   * interns string values of up to ten characters, a string-table lookup
   * for each sid in every frame that names sessions (docs/bench.md).
   */
  private readonly boot = randomBytes(5).toString("hex");
  /** Connections that have yet to bind, with their deadline. */
  private readonly authDeadlines = new Map<ClientConnection, number>();
  /** Connections in a TLS handshake, with its deadline. */
  private readonly handshakes = new Map<ClientConnection, number>();
  private readonly closing = new Map<net.Socket, number>();
  /** Refused clients' sockets, with the time they are cut. */
  private readonly refusing = new Map<net.Socket, number>();
  /** XEP-0198 sessions waiting to be resumed, with the time they began to. */
  private readonly hibernating = new Map<ClientConnection, number>();
  /** Resumes waiting for another front end's HANDOFF, with their deadline. */
  private readonly handoffs = new Map<ClientConnection, number>();
  /** Each front end in the member table, by name, with its run (`info.started`). */
  private frontEndRuns = new Map<string, number | undefined>();
  /** Resumption ids of sessions resumed here from another front end. */
  private readonly aliases = new Map<string, ClientConnection>();
  /** Sessions handed over to another front end: where late frames for their sid go now, and until when. */
  private readonly forwards = new Map<string, { c2s: string; sid: string; until: number }>();
  /** Sessions left to their sm as this front end stops (filled only then, so bounded by its sessions). */
  private readonly leftToSm = new Set<string>();
  private readonly connections = new Map<string, ClientConnection>();
  /** Sessions with stanzas the sm has not taken yet (protocol §2.5). */
  private readonly waitingTaken = new Set<ClientConnection>();
  /** When each sm was last heard from: a busy one gets no copies of what it has yet to take. */
  private readonly hearing = new PeerHearing(RESEND_MS);
  /** The sms of the last member table, to tell one that comes back. */
  private sms = new Set<string>();
  /** XEP-0198 <r/>s waiting for the sm to take what they would count, with the time they are answered anyway. */
  private readonly owedAcks = new Map<ClientConnection, number>();
  /** Sessions that ended with stanzas the sm had not taken, by sid: the stanzas, the prefix of their identities, and until when they wait. */
  private readonly orphans = new Map<string, { pipe: SmPipe; prefix: string; until: number }>();
  /** Stanzas to be routed again (FORWARD) that found no sm linked, oldest first. */
  private heldRoutes: { key: string; xml: Buffer; origin: string | undefined }[] = [];
  /** What resumable sessions' clients acknowledged, for their sms: a frame per sm a turn (protocol §2.6). */
  /** sid, h, n, sid, h, n, … */
  private readonly clientAcks: AckBatch<(string | number)[]>;
  /** The peers that read TAKEN, DELIVERED and CLIENT_ACKED in their flat form (their `info`, protocol §1.5). */
  flatReaders: ReadonlySet<string> = new Set();
  private readonly sweeper: NodeJS.Timeout;
  /** Sessions served here (authenticated and not redirected), kept as a count: read at every login by the balancer. */
  sessions = 0;
  /** What this front end served, for its metrics. */
  readonly counters = new C2sCounters();
  /** SASL PLAIN checks, remembered so that a client coming back skips PBKDF2. */
  readonly plain = new PlainVerifier();
  /** How fast each client may send. */
  readonly rates: ReadThrottle<ClientConnection>;
  /** Clients not read while the link to the router is congested. */
  private readonly heldForLink = new Set<ClientConnection>();
  /** What a client's stream may send before and after it authenticated: one object each, shared by every stream. */
  readonly limits: { readonly unauthenticated: XmlLimits; readonly authenticated: XmlLimits };
  readonly gate: ConnectionGate;
  /** Failed logins, per address and account: how long the next attempt waits. */
  readonly throttle: LoginThrottle;
  /** Accounts registered in-band lately, per address (XEP-0077). */
  readonly registrations: RegistrationLimit;

  constructor(
    readonly config: C2sSettings,
    readonly store: Store,
    readonly link: C2sLink,
    readonly tls: TlsCredentials,
    readonly balancer: Balancer,
    readonly log: Logger,
  ) {
    this.limits = {
      unauthenticated: xmlLimits(config.xml, config.max_stanza_size_unauthenticated),
      authenticated: xmlLimits(config.xml, config.max_stanza_size),
    };
    this.rates = new ReadThrottle({
      bytesPerSecond: config.rate_bytes,
      stanzasPerSecond: config.rate_stanzas,
      burstSeconds: config.rate_burst,
      cutoffSeconds: config.rate_cutoff,
    });
    this.clientAcks = new AckBatch<(string | number)[]>(CLIENT_ACKS_PER_FRAME, () => [], (sm, acks) => {
      link.send(sm, "", clientAckedPayload(acks, this.flatReaders.has(sm)));
    });
    link.on("drain", () => this.releaseHeldForLink());
    // The old router may have lost what it had not passed on: every session sends again what was not taken.
    link.on("up", () => {
      for (const conn of this.waitingTaken) conn.resendPending();
    });
    link.on("route", (from) => this.hearing.heard(from, Date.now()));
    link.on("members", (members) => {
      this.flatReaders = flatAckReaders(members);
      this.frontEndRuns = new Map(members.filter((m) => m.role === "c2s").map((m) => [m.name, m.info.started as number | undefined]));
      // A front end asked for a session that left or restarted since will not answer: a resume need not wait it out.
      for (const conn of [...this.handoffs.keys()]) conn.frontEndsChanged();
      this.smsChanged(members);
    });
    this.gate = new ConnectionGate(config.max_connections, config.max_unauthenticated_per_address, log);
    this.throttle = new LoginThrottle({
      freeFailures: config.auth_free_failures,
      delayMs: config.auth_delay * 1000,
      maxDelayMs: config.auth_max_delay * 1000,
      memoryMs: config.auth_failure_memory * 1000,
      maxEntries: config.auth_throttle_entries,
    });
    this.registrations = new RegistrationLimit(config.registration_per_hour, config.auth_throttle_entries);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Sockets held: connections, and closed streams' sockets waiting for the peer's close. */
  get sockets(): number {
    return this.connections.size + this.closing.size;
  }

  /**
   * Turns a new client away. On the STARTTLS port it reads why, as a stream
   * error; on the direct-TLS port, where that would cost a handshake, and
   * when too many refused sockets linger already, it is a plain close.
   */
  refuse(socket: net.Socket, direct: boolean, refusal: Refusal): void {
    socket.on("error", () => {}); // a reset from the peer is no news
    if (direct || this.refusing.size >= MAX_LINGERING_REFUSALS) {
      socket.destroy();
      return;
    }
    socket.resume(); // what it sent is not read, but must not pile up
    socket.end(streamHeader(this.config.domains[0]!, this.streamId()) + streamError(refusal, REFUSAL_TEXT[refusal]));
    this.refusing.set(socket, Date.now() + REFUSAL_GRACE_MS);
    socket.once("close", () => this.refusing.delete(socket));
  }

  nextSid(): string {
    return `${this.boot}${(++this.sidCounter).toString(36)}`;
  }

  streamId(): string {
    return randomHex(8);
  }

  register(conn: ClientConnection): void {
    this.connections.set(conn.sid, conn);
  }

  get(sid: string): ClientConnection | undefined {
    return this.connections.get(sid);
  }

  all(): IterableIterator<ClientConnection> {
    return this.connections.values();
  }

  awaitAuth(conn: ClientConnection): void {
    this.authDeadlines.set(conn, Date.now() + this.config.auth_timeout * 1000);
  }

  authDone(conn: ClientConnection): void {
    this.authDeadlines.delete(conn);
  }

  /**
   * After a client's read: with the link congested, the client is not read
   * again until the link drains (backpressure from the router and sms back to
   * the sockets of the clients that feed them).
   */
  holdIfLinkCongested(conn: ClientConnection): void {
    if (!this.link.congested || this.heldForLink.has(conn)) return;
    this.heldForLink.add(conn);
    conn.pauseReading();
  }

  /** Whether a congested link is what keeps this client's socket paused. */
  holdsForLink(conn: ClientConnection): boolean {
    return this.heldForLink.has(conn);
  }

  private releaseHeldForLink(): void {
    const held = [...this.heldForLink];
    this.heldForLink.clear();
    for (const conn of held) conn.resumeReading();
  }

  awaitHandshake(conn: ClientConnection): void {
    this.handshakes.set(conn, Date.now() + this.config.tls_handshake_timeout * 1000);
  }

  handshakeDone(conn: ClientConnection): void {
    this.handshakes.delete(conn);
  }

  /** Forgets a connection: closed, or its session handed over to another front end. */
  forget(conn: ClientConnection, wasCounted: boolean): void {
    this.rates.forget(conn);
    this.heldForLink.delete(conn);
    this.authDeadlines.delete(conn);
    this.handshakes.delete(conn);
    this.throttle.cancel(conn);
    this.hibernating.delete(conn);
    this.handoffs.delete(conn);
    this.waitingTaken.delete(conn);
    this.owedAcks.delete(conn);
    const id = conn.resumeId;
    if (id !== undefined && this.aliases.get(id) === conn) this.aliases.delete(id);
    if (this.connections.get(conn.sid) !== conn) return;
    this.connections.delete(conn.sid);
    if (wasCounted) this.sessions--;
  }

  /** A resumable session's client acknowledged `h` stanzas, covering the DELIVERs up to `n`: its sm is told (§2.6). */
  clientAcked(user: string, sid: string, h: number, n: number): void {
    const sm = this.link.smOwnerOf(user);
    if (sm !== undefined) this.clientAcks.frame(sm).push(sid, h, n);
  }

  awaitHandoff(conn: ClientConnection): void {
    this.handoffs.set(conn, Date.now() + HANDOFF_TIMEOUT_MS);
  }

  handoffDone(conn: ClientConnection): void {
    this.handoffs.delete(conn);
  }

  /** The run (`info.started`) of front end `name` as the member table has it; undefined while it is not linked. */
  frontEndRun(name: string): number | undefined {
    return this.frontEndRuns.get(name);
  }

  alias(previd: string, conn: ClientConnection): void {
    this.aliases.set(previd, conn);
  }

  /**
   * Sends a stanza to the sm that owns `key` to be routed again (FORWARD,
   * protocol §2): its session here is gone. `origin`, its identity, lets a
   * recipient that already has it drop it (§2.5).
   */
  routeAgain(key: string, xml: string | Buffer, origin?: string): void {
    this.link.send(SM_ADDRESS, key, encodeSessionPayload(SessionOp.Forward, origin === undefined ? {} : { origin }, xml));
  }

  /** A FORWARD came back undeliverable (no sm linked): it waits for one. */
  routeLater(key: string, xml: Buffer, origin: string | undefined): void {
    if (this.heldRoutes.length >= MAX_HELD_ROUTES) {
      const dropped = this.heldRoutes.shift()!;
      this.log.error({ key: dropped.key }, "too many stanzas wait for a session manager; the oldest is dropped");
    }
    this.heldRoutes.push({ key, xml, origin });
  }

  /** The member table changed: with an sm linked, what waited for one is routed now. */
  routeHeld(): void {
    if (this.heldRoutes.length === 0 || this.link.smOwnerOf("") === undefined) return;
    const held = this.heldRoutes;
    this.heldRoutes = [];
    for (const { key, xml, origin } of held) this.routeAgain(key, xml, origin);
    this.log.info({ count: held.length }, "stanzas that waited for a session manager routed");
  }

  /**
   * A session ended with stanzas the sm had not taken. They were sent before
   * its END, so the sm normally takes them still; those it does not (lost
   * with a router or an sm) are routed as FORWARD once it names the session
   * unknown, or after ORPHAN_MS.
   */
  orphan(sid: string, pipe: SmPipe, prefix: string): void {
    this.orphans.set(sid, { pipe, prefix, until: Date.now() + ORPHAN_MS });
  }

  /** TAKEN for a session that ended: true if it was one waiting here. */
  orphanTaken(sid: string, seq: number): boolean {
    const orphan = this.orphans.get(sid);
    if (!orphan) return false;
    orphan.pipe.taken(seq, Date.now());
    if (orphan.pipe.pending.length === 0) this.orphans.delete(sid);
    return true;
  }

  /**
   * Routes an ended session's stanzas that no sm took: messages and iq
   * requests, under the identity the sm gives a stanza's own routing, so
   * that one an sm did take reaches no one twice. Presence is state, not
   * replayed.
   */
  routeOrphan(sid: string): void {
    const orphan = this.orphans.get(sid);
    if (!orphan) return;
    this.orphans.delete(sid);
    const pending = orphan.pipe.pending;
    for (const { xml, seq, to } of pending) if (routedAgain(xml)) this.routeAgain(to, xml, `${orphan.prefix}${seq}.0`);
    this.log.info({ sid, count: pending.length }, "stanzas of an ended session that no sm took routed");
  }

  awaitTaken(conn: ClientConnection): void {
    this.waitingTaken.add(conn);
  }

  doneWaiting(conn: ClientConnection): void {
    this.waitingTaken.delete(conn);
  }

  oweAck(conn: ClientConnection): void {
    if (!this.owedAcks.has(conn)) this.owedAcks.set(conn, Date.now() + ACK_WAIT_MS);
  }

  owesAck(conn: ClientConnection): boolean {
    return this.owedAcks.has(conn);
  }

  ackSent(conn: ClientConnection): void {
    this.owedAcks.delete(conn);
  }

  /** Frames for `sid` go to `sid'` on front end `c2s` from now on (for a minute). */
  forward(sid: string, c2s: string, newSid: string): void {
    this.forwards.set(sid, { c2s, sid: newSid, until: Date.now() + FORWARD_MS });
  }

  forwarded(sid: string): { c2s: string; sid: string } | undefined {
    return this.forwards.get(sid);
  }

  leftForResumption(sid: string): void {
    this.leftToSm.add(sid);
  }

  /**
   * Whether session `sid` was left to its sm for resumption: a late DELIVER
   * for it is kept there, in the session's log, and calls for no END.
   */
  isLeftToSm(sid: string): boolean {
    return this.leftToSm.has(sid);
  }

  hibernate(conn: ClientConnection): void {
    this.hibernating.set(conn, Date.now());
  }

  /** Sessions that began to wait here for their client to resume them before `time`. */
  hibernatedBefore(time: number): ClientConnection[] {
    const found: ClientConnection[] = [];
    for (const [conn, since] of this.hibernating) if (since < time) found.push(conn);
    return found;
  }

  /** The session a resumption id names on this front end, if it can be taken over. */
  resumable(previd: string): ClientConnection | undefined {
    const sid = previd.split("~")[1];
    const conn = this.aliases.get(previd) ?? (sid === undefined ? undefined : this.connections.get(sid));
    return conn && resumableBy(conn, previd) ? conn : undefined;
  }

  /** `next` resumed `old`'s session: it now answers for old's sid. */
  replace(old: ClientConnection, next: ClientConnection): void {
    this.hibernating.delete(old);
    this.authDeadlines.delete(next);
    this.connections.delete(next.sid);
    this.connections.set(old.sid, next);
    // A session resumed here from another front end keeps its id: it now names `next`.
    const id = old.resumeId;
    if (id !== undefined && this.aliases.get(id) === old) this.aliases.set(id, next);
  }

  scheduleDestroy(socket: net.Socket): void {
    this.closing.set(socket, Date.now() + CLOSE_GRACE_MS);
    socket.once("close", () => this.closing.delete(socket));
  }

  /**
   * Ends every stream with system-shutdown, then cuts what is still open
   * after a grace period; until then, what bound clients without XEP-0198
   * wrote meanwhile is routed (sending-away.ts).
   */
  async shutdown(graceMs = 1_000): Promise<void> {
    for (const conn of [...this.connections.values()]) sendingAway.shutDown(conn);
    const end = Date.now() + graceMs;
    while (this.closing.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    for (const socket of [...this.closing.keys(), ...this.refusing.keys()]) socket.destroy();
    clearInterval(this.sweeper);
    this.rates.close();
  }

  /**
   * An sm back in the member table re-linked, maybe after a pause that cost
   * it what waited in its old link (protocol §2.5, a process that wakes): the
   * sessions it owns send again at once what it has not taken, since, heard
   * again, it would get no copies on the timer.
   */
  private smsChanged(members: readonly Member[]): void {
    const sms = new Set(members.filter((m) => m.role === "sm").map((m) => m.name));
    const back = new Set([...sms].filter((n) => !this.sms.has(n)));
    this.sms = sms;
    if (back.size === 0) return;
    for (const conn of this.waitingTaken) {
      const owner = this.link.smOwnerOf(conn.user!);
      if (owner !== undefined && back.has(owner)) conn.resendPending();
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [conn, deadline] of this.handshakes) {
      if (deadline > now) continue;
      this.handshakes.delete(conn);
      conn.handshakeTimedOut();
    }
    for (const [conn, deadline] of this.authDeadlines) if (deadline <= now) conn.timedOut();
    const window = this.config.resume_timeout * 1000;
    for (const [conn, since] of this.hibernating) if (since + window <= now) conn.expire();
    for (const [conn, deadline] of this.handoffs) if (deadline <= now) conn.handoffFailed();
    for (const [sid, f] of this.forwards) if (f.until <= now) this.forwards.delete(sid);
    for (const [conn, deadline] of this.owedAcks) if (deadline <= now) conn.sendAck();
    for (const [sid, orphan] of this.orphans) if (orphan.until <= now) this.routeOrphan(sid);
    for (const conn of this.waitingTaken) {
      const since = conn.pendingSince;
      if (since === null) this.waitingTaken.delete(conn);
      else if (this.hearing.due(this.link.smOwnerOf(conn.user!), since, now)) conn.resendPending();
    }
    this.balancer.sweep(now);
    this.throttle.release(now);
    this.rates.sweep();
    this.gate.report(now);
    for (const sockets of [this.closing, this.refusing]) {
      for (const [socket, deadline] of sockets) {
        if (deadline <= now) {
          sockets.delete(socket);
          socket.destroy();
        }
      }
    }
  }
}
