// One simulated client: a socket and a small state machine. It logs in as a
// real client does (TCP, STARTTLS or direct TLS, SASL PLAIN or SCRAM, bind,
// the legacy session when a server requires it), follows <see-other-host/>
// (or, with session.redirects = "ignore", reconnects through its own port
// list, as most clients do), resumes a lost XEP-0198 session, then runs the
// scenario's actions. What the server sends is split into
// top-level elements by xml-scan.ts and read with a regular expression only
// where a value is needed (a SCRAM challenge, a stream error's condition, a
// message's stamp). Everything shared — the scenario, statistics, timers,
// who is online — lives in the worker (Ctx), one per process.
import net from "node:net";
import tls from "node:tls";
import type { Wheel, Sleeper } from "./wheel.js";
import type { OnlineSet } from "./online-set.js";
import type { Action, Scenario } from "./scenario.js";
import type { Recorder } from "./stats.js";
import { firstPort } from "./arrivals.js";
import { connectHost, hostPortKey, loopbackRefusal, parseHostPort } from "./loopback.js";
import { Login, type LoginSink } from "./login.js";
import { cachedSaltedPassword } from "./scram.js";
import { attr, firstChild, StanzaScanner, unescapeXml, type ScanSink } from "./xml-scan.js";
import { errorReplyXml } from "../lib/stanza-error.js";

/** What a client needs from its worker. */
export interface Ctx {
  readonly sc: Scenario;
  readonly rec: Recorder;
  readonly wheel: Wheel;
  readonly online: OnlineSet;
  readonly random: () => number;
  /** One TLS context for every connection of the worker (a context per connection would cost memory and CPU). */
  readonly tls: tls.SecureContext;
  /** Verify the server's certificate (a CA was given). */
  readonly verify: boolean;
  /** Per action index: messages per second per user for chat actions. */
  readonly chatRate: readonly number[];
  /** The parent ended every chat action (RunOptions.endChats): a chatting user goes on at its next turn. */
  readonly chatsEnded: boolean;
  /** XEP-0198: ask for an ack every this many stanzas sent (0: never). */
  readonly smRequestEvery: number;
  /** Per action index: the ordinal of a sync action. */
  readonly syncPoint: readonly number[];
  /** XEP-0198: ask for resumption when enabling. */
  readonly smResume: boolean;
  /** Sockets open (gauge). */
  open: number;
  /** Users logged in (gauge). */
  sessions: number;
  userName(k: number): string;
  password(k: number): string;
  /** A message body of `size` bytes starting with `head`. */
  body(head: string, size: number): string;
  /** A message's number in the run, from its sender and the sender's count. */
  msgKey(k: number, seq: number): number;
  /** A stamped message arrived; false if it is a copy of one that already had. */
  received(key: number, online: boolean): boolean;
  /** A message to an online user came back to its sender as an error. */
  bounced(key: number): void;
  /** Messages to online users the sender cannot know the server read (sent without resumption just before a cut). */
  unconfirmed(keys: number[]): void;
  wentOnline(c: SimClient): void;
  wentOffline(c: SimClient): void;
  syncReleased(point: number): boolean;
  /** c reached sync point `point`; the worker calls c.next() when it is released. */
  reachedSync(c: SimClient, point: number): void;
  /** c is done (closed, failed or cut); `syncs` is how many sync points it reached. */
  finished(c: SimClient, syncs: number): void;
}

const NS_SM = "urn:xmpp:sm:3";
const NS_CSI = "urn:xmpp:csi:0";
/**
 * A message written this shortly before its connection was cut, by a client
 * without XEP-0198 resumption, may never have been read by the server; no
 * acknowledgement tells the client either way. A busy server reads late: its
 * event loop may lag by more than c2s.max_lag (500 ms) before it cuts, and
 * what it has not read by then it never reads.
 */
const UNCONFIRMED_MS = 2000;
/** Without redirects followed: after every port refused, wait this long before trying the list again. */
const RETRY_MS = 1000;
/**
 * Stream errors after which a client that reconnects (does not follow
 * redirects, or session.reconnect) does, as it does when a connection drops:
 * the server going away or busy, not a refusal of the client itself.
 */
const RECONNECT_ERRORS = new Set(["see-other-host", "system-shutdown", "reset", "internal-server-error", "connection-timeout"]);

// Steps: the connection, the login (whose own steps login.ts names), then the session.
const CONNECTING = 0;
const TLS_HANDSHAKE = 1;
const LOGIN = 2;
const RESUME = 3;
const ACTIVE = 4;
const CLOSING = 5;
const DONE = 6;
const STEP_NAMES = ["connect", "tls", "login", "resume", "active", "closing", "done"];

// What an active session waits for.
const W_NONE = 0;
const W_ROSTER = 1;
const W_SM = 2;
const W_THINK = 3;
const W_CHAT = 4;
const W_SYNC = 5;

type SimSocket = (net.Socket | tls.TLSSocket) & { sim?: SimClient };

// Shared listeners (no closure per client): `this` is the socket.
function onData(this: SimSocket, chunk: string): void {
  const c = this.sim;
  if (c && c.sock === this) c.data(chunk);
}
function onError(this: SimSocket, err: Error): void {
  const c = this.sim;
  if (c && c.sock === this) c.socketError(err as NodeJS.ErrnoException);
}
function onClose(this: SimSocket): void {
  const c = this.sim;
  if (c && c.sock === this) c.socketClosed();
}
/** On the TCP socket only: one per connection, whatever wraps it. */
function onTcpClose(this: SimSocket): void {
  const c = this.sim;
  if (c) c.ctx.open--;
}
function onConnect(this: SimSocket): void {
  const c = this.sim;
  if (c && c.sock === this) c.connected();
}
function onSecure(this: SimSocket): void {
  const c = this.sim;
  if (c && c.sock === this) c.secured();
}
function ignore(): void {}

/** Wall clock in microseconds: the stamp a message carries (sender and receiver may be different processes). */
export function wallMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export class SimClient implements ScanSink, Sleeper, LoginSink {
  sock: SimSocket | null = null;
  gen = 0;
  private readonly scan = new StanzaScanner();
  private step = CONNECTING;
  private host: string;
  private port: number;
  /** With redirects ignored: the index in server.ports of the port in use, and ports tried in a row without a session. */
  private portIndex: number;
  private tries = 0;
  /** A reconnect waiting for RETRY_MS (performance.now() ms; 0: none), and the current login's deadline. */
  private retryAt = 0;
  private loginDeadline = 0;
  /** When the login began (the first connect), and when the current phase began; performance.now() ms. */
  private tLogin = 0;
  private tPhase = 0;
  /** The login under way on the current connection (login.ts); null once in session. */
  private login: Login | null = null;
  private redirects = 0;
  private loggedIn = false;
  private inSession = false;
  private available = false;
  /** The action running, and what it waits for. */
  private act = 0;
  private wait = W_NONE;
  /** When the pending wake-up is due. */
  private until = 0;
  private chatNext = 0;
  private chatEnd = 0;
  private chatLeft = 0;
  private syncs = 0;
  /** XEP-0198: stanzas received since enabled (-1: off), stanzas sent since enabled. */
  private smIn = -1;
  private smOut = 0;
  private smWanted = false;
  /** XEP-0198 resumption: the session's id, our stanzas the server acknowledged, those it has not yet (null: no resumption). */
  private smId: string | null = null;
  private smAcked = 0;
  private smQueue: string[] | null = null;
  /** The session was lost and is to be resumed after the next authentication. */
  private resuming = false;
  private relogged = false;
  /** Messages sent by this user; keys and send times of the latest to online users (without resumption). */
  private seq = 0;
  private recent: number[] = [];
  lastWrite = 0;
  private cut = false;

  constructor(
    readonly ctx: Ctx,
    /** The user: offset from users.first. */
    readonly k: number,
    private readonly source: string | undefined,
  ) {
    this.host = connectHost(ctx.sc.server.host);
    this.port = firstPort(ctx.sc, k);
    this.portIndex = ctx.sc.server.ports.indexOf(this.port);
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
    const local = this.source && net.isIPv4(this.source) === net.isIPv4(this.host) ? this.source : undefined;
    const sock: SimSocket = net.connect({ host: this.host, port: this.port, localAddress: local });
    ctx.open++;
    sock.sim = this;
    sock.setNoDelay(true);
    sock.once("connect", onConnect);
    sock.once("close", onTcpClose);
    this.listen(sock);
    this.sock = sock;
  }

  private listen(sock: SimSocket): void {
    sock.on("data", onData);
    sock.on("error", onError);
    sock.on("close", onClose);
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
    const tcp = this.sock!;
    tcp.removeListener("data", onData);
    tcp.removeListener("error", onError);
    tcp.removeListener("close", onClose);
    // Errors of the TCP socket surface on the TLS socket; this one only keeps them from being unhandled.
    tcp.on("error", ignore);
    this.step = TLS_HANDSHAKE;
    this.tPhase = performance.now();
    const domain = this.ctx.sc.server.domain;
    const t: SimSocket = tls.connect({
      socket: tcp,
      servername: net.isIP(domain) ? undefined : domain,
      secureContext: this.ctx.tls,
      rejectUnauthorized: this.ctx.verify,
    });
    t.sim = this;
    t.once("secureConnect", onSecure);
    this.listen(t);
    this.sock = t;
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

  /** A stanza (counted for XEP-0198, kept until acknowledged with resumption, with an ack request every request_every). */
  private send(s: string): void {
    this.write(s);
    if (this.smIn < 0) return;
    this.smOut++;
    this.smQueue?.push(s);
    const every = this.ctx.smRequestEvery;
    if (every > 0 && this.smOut % every === 0) this.write(`<r xmlns='${NS_SM}'/>`);
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
        return this.stanza(name, xml);
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
    this.write(`<resume xmlns='${NS_SM}' previd='${this.smId!.replace(/'/g, "&apos;")}' h='${this.smIn}'/>`);
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
    const ctx = this.ctx;
    const target = parseHostPort(text, this.port);
    if (!target) return this.fail("redirect-unreadable");
    if (loopbackRefusal(target.host)) return this.fail("redirect-not-loopback");
    if (++this.redirects > ctx.sc.session.max_redirects) return this.fail("redirect-loop");
    ctx.rec.redirect(hostPortKey(target.host, target.port));
    this.dropSocket();
    if (this.step === ACTIVE) {
      // Moved after login (a drain): log in again (or resume) elsewhere, and go on with the actions.
      ctx.rec.count("moved");
      this.sessionLost();
    }
    if (ctx.sc.session.redirects === "ignore") {
      // As a client that does not follow: back to the port it had, then down its list.
      this.tries = 0;
      return this.connect();
    }
    this.host = connectHost(target.host);
    this.port = target.port;
    this.connect();
  }

  /** The session is gone with its connection; the user will log in again, or resume it. */
  private sessionLost(): void {
    const ctx = this.ctx;
    ctx.rec.count("reconnects");
    if (this.recent.length) {
      const since = performance.now() - UNCONFIRMED_MS;
      const keys: number[] = [];
      for (let i = 0; i < this.recent.length; i += 2) if (this.recent[i + 1]! >= since) keys.push(this.recent[i]!);
      this.recent = [];
      if (keys.length) ctx.unconfirmed(keys);
    }
    this.resuming = this.smId !== null;
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
    const ports = sc.server.ports;
    if (sc.session.redirects !== "ignore" && !sc.session.reconnect) return this.fail(kind);
    this.dropSocket();
    if (this.step === ACTIVE) {
      this.sessionLost();
      this.tries = 0;
      if (sc.session.reconnect_delay <= 0) return this.connect();
      // Backing off with jitter, as real clients do; the login's deadline starts after the wait.
      const delay = this.ctx.random() * sc.session.reconnect_delay * 1000;
      this.loginDeadline += delay;
      return this.retryIn(delay);
    }
    // A client that followed a redirect goes back to its own list.
    this.host = connectHost(sc.server.host);
    this.portIndex = (this.portIndex + 1) % ports.length;
    this.port = ports[this.portIndex]!;
    if (++this.tries < ports.length) return this.connect();
    this.tries = 0;
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
    ctx.rec.latency("login", performance.now() - this.tLogin);
    if (!this.loggedIn) ctx.rec.count("logged_in");
    const again = this.loggedIn;
    this.loggedIn = true;
    this.enterSession();
    if (!again) return this.run();
    // Back after a lost session: restore what the server forgot, send again what it never acknowledged, then resume the action.
    ctx.rec.count("relogins");
    ctx.rec.latency("relogin", performance.now() - this.tLogin);
    if (!this.relogged) ctx.rec.count("relogged_users");
    this.relogged = true;
    const unacked = this.smQueue ?? [];
    if (this.smWanted) {
      this.smIn = 0;
      this.smOut = 0;
      this.smAcked = 0;
      this.smId = null;
      this.smQueue = ctx.smResume ? [] : null;
      this.write(`<enable xmlns='${NS_SM}'${ctx.smResume ? " resume='true'" : ""}/>`);
    }
    if (this.available) {
      this.available = false;
      this.goOnline();
    }
    for (const s of unacked) {
      if (!s.startsWith("<message")) continue;
      this.send(s);
      ctx.rec.count("msgs_resent");
    }
    this.goOn();
  }

  /** XEP-0198: the server resumed the session; what it did not acknowledge goes again. */
  private resumed(h: number): void {
    const ctx = this.ctx;
    ctx.rec.count("resumed");
    ctx.rec.latency("relogin", performance.now() - this.tLogin);
    this.resuming = false;
    this.acked(h);
    this.enterSession();
    const queue = this.smQueue ?? [];
    this.smOut = this.smAcked + queue.length;
    for (const s of queue) {
      this.write(s);
      if (s.startsWith("<message")) ctx.rec.count("msgs_resent");
    }
    if (queue.length) this.write(`<r xmlns='${NS_SM}'/>`);
    this.goOn();
  }

  /** XEP-0198: the session could not be resumed; the user binds anew (a login again) and sends its unacknowledged messages again. */
  private resumeFailed(): void {
    this.ctx.rec.count("resume_failed");
    this.resuming = false;
    this.smId = null;
    // Out of the online set until the new session's presence (boundIn sends it).
    if (this.available) this.ctx.wentOffline(this);
    this.step = LOGIN;
    this.login!.bind();
  }

  /** A session bound or resumed: the counts of this login start afresh. */
  private enterSession(): void {
    this.login = null;
    this.inSession = true;
    this.redirects = 0;
    this.tries = 0;
    this.ctx.sessions++;
    this.step = ACTIVE;
    this.gen++;
  }

  /** Back in session after a loss: carries on with the action it was in. */
  private goOn(): void {
    const ctx = this.ctx;
    if (this.wait === W_SYNC) {
      // Still on the point's list unless it was released meanwhile.
      if (ctx.syncReleased(ctx.syncPoint[this.act]!)) this.next();
    } else if (this.wait === W_CHAT || this.wait === W_THINK) ctx.wheel.at(this.until, this);
    else {
      this.wait = W_NONE;
      this.run();
    }
  }

  private goOnline(): void {
    if (this.available) return;
    this.available = true;
    this.send("<presence/>");
    this.ctx.wentOnline(this);
  }

  /** Runs actions from `act` until one has to wait. */
  private run(): void {
    const ctx = this.ctx;
    const actions = ctx.sc.actions;
    while (this.step === ACTIVE) {
      const a: Action | undefined = actions[this.act];
      if (!a) return this.close(false);
      const now = performance.now();
      switch (a.type) {
        case "roster":
          this.wait = W_ROSTER;
          this.tPhase = now;
          this.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
          this.sleepUntil(now + ctx.sc.session.reply_timeout * 1000);
          return;
        case "presence":
          this.goOnline();
          this.act++;
          continue;
        case "inactive":
          // A nonza: never counted for XEP-0198.
          this.write(`<inactive xmlns='${NS_CSI}'/>`);
          this.act++;
          continue;
        case "sm":
          this.wait = W_SM;
          this.smWanted = true;
          if (a.resume) this.smQueue = [];
          this.write(`<enable xmlns='${NS_SM}'${a.resume ? " resume='true'" : ""}/>`);
          this.sleepUntil(now + ctx.sc.session.reply_timeout * 1000);
          return;
        case "think": {
          const secs = a.random ? -Math.log(1 - ctx.random()) * a.seconds : a.seconds;
          if (secs <= 0) {
            this.act++;
            continue;
          }
          this.wait = W_THINK;
          this.sleepUntil(now + secs * 1000);
          return;
        }
        case "chat": {
          const interval = 1000 / ctx.chatRate[this.act]!;
          this.wait = W_CHAT;
          this.chatLeft = a.count > 0 ? a.count : Infinity;
          this.chatEnd = a.duration > 0 ? now + a.duration * 1000 : Infinity;
          // A random phase, so that users released together do not send together.
          this.chatNext = now + ctx.random() * interval;
          this.sleepUntil(Math.min(this.chatNext, this.chatEnd));
          return;
        }
        case "sync":
          this.wait = W_SYNC;
          this.syncs++;
          ctx.reachedSync(this, ctx.syncPoint[this.act]!);
          return;
        case "close":
          return this.close(false);
      }
    }
  }

  /** Goes on with the next action (the worker calls this when a sync point is released). */
  next(): void {
    if (this.step !== ACTIVE) return;
    this.gen++;
    this.wait = W_NONE;
    this.act++;
    this.run();
  }

  private sleepUntil(t: number): void {
    this.until = t;
    this.gen++;
    this.ctx.wheel.at(t, this);
  }

  /** The wheel's wake-up: a timeout, the end of a think, the next chat message. */
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
    switch (this.wait) {
      case W_ROSTER:
        return this.fail("timeout:roster");
      case W_SM:
        return this.fail("timeout:sm-enable");
      case W_THINK:
        return this.next();
      case W_CHAT:
        return this.chatTurn();
    }
  }

  private chatTurn(): void {
    const ctx = this.ctx;
    const now = performance.now();
    const a = ctx.sc.actions[this.act] as Extract<Action, { type: "chat" }>;
    if (now >= this.chatEnd || this.chatLeft <= 0 || ctx.chatsEnded) return this.next();
    const online = a.to === "online";
    const to = online ? ctx.online.pick(ctx.random, this.k) : ctx.online.pickOffline(ctx.random, this.k);
    if (to < 0) ctx.rec.count("msgs_no_target");
    else {
      // The sender and its count name the message in the run: in the id (for a bounce) and in the body.
      const tag = `${online ? "o" : "f"}${this.k}.${this.seq}`;
      const body = ctx.body(`xfsim ${wallMicros()} ${tag} `, a.size);
      this.send(`<message to='${ctx.userName(to)}@${ctx.sc.server.domain}' type='chat' id='${tag}'><body>${body}</body></message>`);
      ctx.rec.count(online ? "msgs_sent" : "msgs_sent_offline");
      if (online && !this.smQueue) {
        const cut = now - UNCONFIRMED_MS;
        let drop = 0;
        while (drop < this.recent.length && this.recent[drop + 1]! < cut) drop += 2;
        if (drop) this.recent.splice(0, drop);
        this.recent.push(ctx.msgKey(this.k, this.seq), now);
      }
      this.seq++;
    }
    this.chatLeft--;
    if (this.chatLeft <= 0) return this.next();
    this.chatNext += 1000 / ctx.chatRate[this.act]!;
    if (this.chatNext < now) this.chatNext = now; // fell behind: no burst to catch up
    this.sleepUntil(Math.min(this.chatNext, this.chatEnd));
  }

  /** A stanza or nonza while the session is active or closing. */
  private stanza(name: string, xml: string): void {
    const ctx = this.ctx;
    switch (name) {
      case "message": {
        if (this.smIn >= 0) this.smIn++;
        if (attr(xml, "type") === "error") {
          const mine = /^o(\d+)\.(\d+)$/.exec(attr(xml, "id") ?? "");
          if (mine && Number(mine[1]) === this.k) ctx.bounced(ctx.msgKey(this.k, Number(mine[2])));
          ctx.rec.error(`message-error:${firstChild(xml.slice(xml.indexOf("<error")), [])?.name ?? "unknown"}`);
          return;
        }
        const i = xml.indexOf("<body>xfsim ");
        if (i < 0) return;
        const m = /^(\d+) ([of])(\d+)\.(\d+) /.exec(xml.slice(i + 12, i + 64));
        if (!m) return;
        if (!ctx.received(ctx.msgKey(Number(m[3]), Number(m[4])), m[2] === "o")) return;
        const stamp = Number(m[1]);
        if (xml.includes("urn:xmpp:delay")) ctx.rec.count("msgs_received_delayed");
        else {
          ctx.rec.count("msgs_received");
          ctx.rec.latency("message", (wallMicros() - stamp) / 1000);
        }
        return;
      }
      case "presence":
        if (this.smIn >= 0) this.smIn++;
        return;
      case "iq": {
        if (this.smIn >= 0) this.smIn++;
        const type = attr(xml, "type");
        const id = attr(xml, "id");
        if ((type === "result" || type === "error") && id === "r" && this.wait === W_ROSTER) {
          if (type === "result") {
            ctx.rec.count("rosters");
            ctx.rec.latency("roster", performance.now() - this.tPhase);
          } else ctx.rec.error("roster-error");
          return this.next();
        }
        if (type === "get" || type === "set") {
          // Pings and roster pushes get a result; anything else is not supported here.
          const from = attr(xml, "from");
          const to = from ? ` to='${from}'` : "";
          if (xml.includes("urn:xmpp:ping") || xml.includes("jabber:iq:roster")) this.send(`<iq type='result' id='${id ?? ""}'${to}/>`);
          // The error reply names no 'from' (the stanza's 'to' is not handed over): the farm stamps ours.
          else this.send(errorReplyXml({ name: "iq", attrs: { id: id && unescapeXml(id), from: from && unescapeXml(from) } }, "service-unavailable"));
        }
        return;
      }
      case "enabled": {
        const resumable = attr(xml, "resume") === "true" || attr(xml, "resume") === "1";
        this.smId = resumable ? (attr(xml, "id") ?? null) : null;
        if (!this.smId) this.smQueue = null;
        if (this.wait !== W_SM) return;
        this.smIn = 0;
        this.smOut = 0;
        ctx.rec.count("sm_enabled");
        return this.next();
      }
      case "failed":
        if (this.wait !== W_SM) return;
        this.smWanted = false;
        ctx.rec.error("sm-failed");
        return this.next();
      case "r":
        if (this.smIn < 0) return;
        this.write(`<a xmlns='${NS_SM}' h='${this.smIn}'/>`);
        ctx.rec.count("sm_acks_sent");
        return;
      case "a":
        ctx.rec.count("sm_acks_received");
        return this.acked(Number(attr(xml, "h")));
    }
  }

  /** XEP-0198: the server has our first h stanzas; they leave the queue. */
  private acked(h: number): void {
    if (!Number.isFinite(h) || h <= this.smAcked) return;
    this.smQueue?.splice(0, h - this.smAcked);
    this.smAcked = h;
  }

  private leaveSession(): void {
    if (this.available) this.ctx.wentOffline(this);
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
    this.available = false;
    this.step = CLOSING;
    // XEP-0198: acknowledge everything first, or the server keeps the rest for offline delivery.
    if (this.smIn >= 0) this.write(`<a xmlns='${NS_SM}' h='${this.smIn}'/>`);
    this.write("</stream:stream>");
    this.sleepUntil(performance.now() + 2000);
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

  private fail(kind: string): void {
    if (this.step === DONE) return;
    if (this.step === CLOSING) return this.closedCleanly();
    this.ctx.rec.error(kind);
    this.end(this.loggedIn ? "dropped" : "login_failed");
  }

  private end(how: "closed" | "cut" | "dropped" | "login_failed"): void {
    this.retryAt = 0;
    this.leaveSession();
    this.available = false;
    this.ctx.rec.count(how);
    this.step = DONE;
    this.gen++;
    this.dropSocket();
    this.ctx.finished(this, this.syncs);
  }

  private dropSocket(): void {
    this.login?.stop();
    const sock = this.sock;
    this.sock = null;
    if (sock && !sock.destroyed) sock.destroy();
  }
}
