// One simulated client: a socket and a small state machine. It logs in as a
// real client does (TCP, STARTTLS or direct TLS, SASL PLAIN or SCRAM, bind,
// the legacy session when a server requires it), follows <see-other-host/>
// (or, with session.redirects = "ignore", reconnects through its own port
// list, as most clients do: client-route.ts), resumes a lost XEP-0198
// session, then runs the scenario's actions (client-session.ts). What the
// server sends is split into top-level elements by xml-scan.ts and read with
// a regular expression only where a value is needed (a SCRAM challenge, a
// stream error's condition, a message's stamp). Everything shared — the
// scenario, statistics, timers, who is online — lives in the worker (Ctx,
// client-ctx.ts), one per process.
import net from "node:net";
import type { Sleeper } from "./wheel.js";
import type { Ctx } from "./client-ctx.js";
import { ClientSession } from "./client-session.js";
import { openTcp, wrapTls, type SimSocket, type SocketOwner } from "./client-socket.js";
import { RECONNECT_ERRORS, RETRY_MS, Route } from "./client-route.js";
import { Login, type LoginSink } from "./login.js";
import { cachedSaltedPassword } from "./scram.js";
import { enableXml, REQUEST } from "./stream-management.js";
import { attr, firstChild, StanzaScanner, unescapeXml, type ScanSink } from "./xml-scan.js";

// Steps: the connection, the login (whose own steps login.ts names), then the session.
const CONNECTING = 0;
const TLS_HANDSHAKE = 1;
const LOGIN = 2;
const RESUME = 3;
const ACTIVE = 4;
const CLOSING = 5;
const DONE = 6;
const STEP_NAMES = ["connect", "tls", "login", "resume", "active", "closing", "done"];

export class SimClient implements ScanSink, Sleeper, LoginSink, SocketOwner {
  sock: SimSocket | null = null;
  gen = 0;
  private readonly scan = new StanzaScanner();
  private step = CONNECTING;
  private readonly route: Route;
  /** A reconnect waiting for RETRY_MS (performance.now() ms; 0: none), and the current login's deadline. */
  private retryAt = 0;
  private loginDeadline = 0;
  /** When the login began (the first connect), and when the current phase began; performance.now() ms. */
  private tLogin = 0;
  private tPhase = 0;
  /** The login under way on the current connection (login.ts); null once in session. */
  private login: Login | null = null;
  private readonly session = new ClientSession(this);
  private loggedIn = false;
  private inSession = false;
  /** The session was lost and is to be resumed after the next authentication. */
  private resuming = false;
  private relogged = false;
  lastWrite = 0;
  private cut = false;

  constructor(
    readonly ctx: Ctx,
    /** The user: offset from users.first. */
    readonly k: number,
    private readonly source: string | undefined,
  ) {
    this.route = new Route(ctx.sc, k);
  }

  get active(): boolean {
    return this.step === ACTIVE;
  }

  /** Starts the login. */
  start(): void {
    this.tLogin = performance.now();
    this.loginTimer();
    this.connect();
  }

  private loginTimer(): void {
    this.gen++;
    this.loginDeadline = performance.now() + this.ctx.sc.session.login_timeout * 1000;
    this.ctx.wheel.at(this.loginDeadline, this);
  }

  private connect(): void {
    const ctx = this.ctx;
    this.step = CONNECTING;
    this.scan.reset();
    this.login?.stop();
    const sc = ctx.sc;
    this.login = new Login(
      {
        domain: sc.server.domain,
        security: sc.server.security,
        mechanism: sc.server.mechanism,
        username: ctx.userName(this.k),
        password: ctx.password(this.k),
        resource: sc.session.resource,
        salted: cachedSaltedPassword,
        // A lost XEP-0198 session is resumed instead of bound, once authenticated.
        until: this.resuming ? "authenticated" : "bound",
      },
      this,
    );
    ctx.rec.count("connections");
    this.tPhase = performance.now();
    const { host, port } = this.route;
    const local = this.source && net.isIPv4(this.source) === net.isIPv4(host) ? this.source : undefined;
    this.sock = openTcp(this, host, port, local);
  }

  connected(): void {
    const ctx = this.ctx;
    ctx.rec.count("connected");
    ctx.rec.latency("connect", performance.now() - this.tPhase);
    if (ctx.sc.server.security === "direct") return this.startTls();
    this.sock!.setEncoding("utf8");
    this.step = LOGIN;
    this.login!.open();
  }

  /** TLS over the TCP socket: from the start (direct TLS), or after the login's <proceed/>. */
  startTls(): void {
    this.step = TLS_HANDSHAKE;
    this.tPhase = performance.now();
    this.sock = wrapTls(this, this.ctx.sc.server.domain, this.ctx.tls, this.ctx.verify);
  }

  secured(): void {
    this.ctx.rec.count("tls");
    this.ctx.rec.latency("tls", performance.now() - this.tPhase);
    this.sock!.setEncoding("utf8");
    this.scan.reset();
    this.step = LOGIN;
    this.login!.open();
  }

  data(chunk: string): void {
    this.scan.push(chunk, this);
  }

  write(s: string): void {
    const sock = this.sock;
    if (!sock || sock.destroyed) return;
    sock.write(s);
    this.lastWrite = performance.now();
  }

  streamOpen(): void {}

  streamEnd(): void {
    if (this.step === CLOSING) return this.closedCleanly();
    this.lost(`closed:${this.stepName}`);
  }

  /** The step a failure names: the login's own while logging in. */
  private get stepName(): string {
    return this.step === LOGIN && this.login ? this.login.step : STEP_NAMES[this.step]!;
  }

  element(name: string, xml: string): void {
    if (name === "error") return this.streamError(xml);
    switch (this.step) {
      case LOGIN:
        return this.login!.element(name, xml);
      case RESUME:
        if (name === "resumed") return this.resumed(Number(attr(xml, "h")));
        if (name === "failed") return this.resumeFailed();
        return;
      case ACTIVE:
      case CLOSING:
        return this.session.stanza(name, xml);
    }
  }

  /** The login authenticated (login.ts). */
  authenticated(ms: number): void {
    this.ctx.rec.count("authenticated");
    this.ctx.rec.latency("auth", ms);
  }

  /** SASL succeeded: a new stream starts on this connection. */
  restart(): void {
    this.scan.reset();
  }

  /** The login is through: bound (`jid`), or authenticated with a session to resume. */
  done(jid: string | null): void {
    if (jid !== null) return this.boundIn();
    this.step = RESUME;
    this.write(this.session.sm.resumeXml());
  }

  failed(kind: string): void {
    this.fail(kind);
  }

  private streamError(xml: string): void {
    const cond = firstChild(xml);
    if (this.step === CLOSING) return this.closedCleanly();
    if (cond?.name === "see-other-host") return this.redirect(unescapeXml(cond.text));
    const kind = `stream-error:${cond?.name ?? "unknown"}`;
    if (RECONNECT_ERRORS.has(cond?.name ?? "")) return this.lost(kind);
    this.fail(kind);
  }

  private redirect(text: string): void {
    const refused = this.route.redirect(text, this.ctx.rec);
    if (refused) return this.fail(refused);
    this.dropSocket();
    if (this.step === ACTIVE) {
      // Moved after login (a drain): log in again (or resume) elsewhere, and go on with the actions.
      this.ctx.rec.count("moved");
      this.sessionLost();
    }
    this.connect();
  }

  /** The session is gone with its connection; the user will log in again, or resume it. */
  private sessionLost(): void {
    const ctx = this.ctx;
    ctx.rec.count("reconnects");
    const keys = this.session.recent.take();
    if (keys.length) ctx.unconfirmed(keys);
    this.resuming = this.session.sm.id !== null;
    if (!this.resuming) this.leaveSession();
    else if (this.inSession) {
      // The server holds the session: the user stays a chat target, and its messages wait for it.
      this.inSession = false;
      ctx.sessions--;
    }
    this.tLogin = performance.now();
    this.loginTimer();
  }

  /**
   * The connection ended without a goodbye. A client that follows redirects
   * gives up, as before; one that does not reconnects: after login to the
   * port it had, during a login to the next port of its list, waiting
   * RETRY_MS once every port has failed in a row.
   */
  private lost(kind: string): void {
    if (this.step === DONE) return;
    if (this.step === CLOSING) return this.closedCleanly();
    const sc = this.ctx.sc;
    if (sc.session.redirects !== "ignore" && !sc.session.reconnect) return this.fail(kind);
    this.dropSocket();
    if (this.step === ACTIVE) {
      this.sessionLost();
      this.route.afresh();
      if (sc.session.reconnect_delay <= 0) return this.connect();
      // Backing off with jitter, as real clients do; the login's deadline starts after the wait.
      const delay = this.ctx.random() * sc.session.reconnect_delay * 1000;
      this.loginDeadline += delay;
      return this.retryIn(delay);
    }
    if (this.route.next()) return this.connect();
    if (performance.now() + RETRY_MS >= this.loginDeadline) return this.fail(kind);
    this.retryIn(RETRY_MS);
  }

  /** Connects again after `ms`. */
  private retryIn(ms: number): void {
    this.step = CONNECTING;
    this.retryAt = performance.now() + ms;
    this.gen++;
    this.ctx.wheel.at(this.retryAt, this);
  }

  private boundIn(): void {
    const ctx = this.ctx;
    const session = this.session;
    ctx.rec.latency("login", performance.now() - this.tLogin);
    if (!this.loggedIn) ctx.rec.count("logged_in");
    const again = this.loggedIn;
    this.loggedIn = true;
    this.enterSession();
    if (!again) return session.run();
    // Back after a lost session: restore what the server forgot, send again what it never acknowledged, then resume the action.
    ctx.rec.count("relogins");
    ctx.rec.latency("relogin", performance.now() - this.tLogin);
    if (!this.relogged) ctx.rec.count("relogged_users");
    this.relogged = true;
    const unacked = session.sm.queue ?? [];
    if (session.sm.wanted) {
      session.sm.restart(ctx.smResume);
      this.write(enableXml(ctx.smResume));
    }
    if (session.available) {
      session.available = false;
      session.goOnline();
    }
    for (const s of unacked) {
      if (!s.startsWith("<message")) continue;
      session.send(s);
      ctx.rec.count("msgs_resent");
    }
    session.goOn();
  }

  /** XEP-0198: the server resumed the session; what it did not acknowledge goes again. */
  private resumed(h: number): void {
    const ctx = this.ctx;
    ctx.rec.count("resumed");
    ctx.rec.latency("relogin", performance.now() - this.tLogin);
    this.resuming = false;
    const queue = this.session.sm.resumed(h);
    this.enterSession();
    for (const s of queue) {
      this.write(s);
      if (s.startsWith("<message")) ctx.rec.count("msgs_resent");
    }
    if (queue.length) this.write(REQUEST);
    this.session.goOn();
  }

  /** XEP-0198: the session could not be resumed; the user binds anew (a login again) and sends its unacknowledged messages again. */
  private resumeFailed(): void {
    this.ctx.rec.count("resume_failed");
    this.resuming = false;
    this.session.sm.id = null;
    // Out of the online set until the new session's presence (boundIn sends it).
    if (this.session.available) this.ctx.wentOffline(this);
    this.step = LOGIN;
    this.login!.bind();
  }

  /** A session bound or resumed: the counts of this login start afresh. */
  private enterSession(): void {
    this.login = null;
    this.inSession = true;
    this.route.afresh();
    this.ctx.sessions++;
    this.step = ACTIVE;
    this.gen++;
  }

  /** Goes on with the next action (the worker calls this when a sync point is released). */
  next(): void {
    this.session.next();
  }

  /** The wheel's wake-up: a reconnect's wait or a timeout, or one of the session's (client-session.ts). */
  wake(): void {
    if (this.retryAt > 0) {
      this.retryAt = 0;
      this.gen++;
      this.ctx.wheel.at(this.loginDeadline, this);
      return this.connect();
    }
    if (this.step < ACTIVE) return this.fail(`timeout:${this.stepName}`);
    if (this.step === CLOSING) return this.closedCleanly();
    if (this.step !== ACTIVE) return;
    this.session.wake();
  }

  private leaveSession(): void {
    if (this.session.available) this.ctx.wentOffline(this);
    if (this.inSession) this.ctx.sessions--;
    this.inSession = false;
  }

  /** Closes the stream: at the end of the actions, or `cut` when the run is over. */
  close(cut: boolean): void {
    if (this.step === DONE || this.step === CLOSING) return;
    this.cut = cut;
    if (this.step !== ACTIVE) {
      // Still logging in when the run ends.
      return this.end(cut ? "cut" : "closed");
    }
    // Out of the online set first, so that nobody picks a user that is leaving.
    this.leaveSession();
    this.session.available = false;
    this.step = CLOSING;
    // XEP-0198: acknowledge everything first, or the server keeps the rest for offline delivery.
    if (this.session.sm.in >= 0) this.write(this.session.sm.answer());
    this.write("</stream:stream>");
    this.session.sleepUntil(performance.now() + 2000);
  }

  private closedCleanly(): void {
    this.end(this.cut ? "cut" : "closed");
  }

  socketError(err: NodeJS.ErrnoException): void {
    if (this.step === CLOSING) return this.closedCleanly();
    const code = err.code ?? err.message;
    if (this.step === CONNECTING) return this.lost(`connect:${code}`);
    if (this.step === TLS_HANDSHAKE) return this.lost(`tls:${code}`);
    this.lost(`socket:${code}`);
  }

  socketClosed(): void {
    if (this.step === CLOSING) return this.closedCleanly();
    if (this.step !== DONE) this.lost(`closed:${this.stepName}`);
  }

  /** Gives up: an error, and the user is done. */
  fail(kind: string): void {
    if (this.step === DONE) return;
    if (this.step === CLOSING) return this.closedCleanly();
    this.ctx.rec.error(kind);
    this.end(this.loggedIn ? "dropped" : "login_failed");
  }

  private end(how: "closed" | "cut" | "dropped" | "login_failed"): void {
    // The server ended the session (a stream error, a stop): what it had not read of the last seconds is gone with it.
    if (how === "dropped") {
      const keys = this.session.recent.take();
      if (keys.length) this.ctx.unconfirmed(keys);
    }
    this.retryAt = 0;
    this.leaveSession();
    this.session.available = false;
    this.ctx.rec.count(how);
    this.step = DONE;
    this.gen++;
    this.dropSocket();
    this.ctx.finished(this, this.session.syncs);
  }

  private dropSocket(): void {
    this.login?.stop();
    const sock = this.sock;
    this.sock = null;
    if (sock && !sock.destroyed) sock.destroy();
  }
}
