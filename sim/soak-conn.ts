// One connection of the soak (sim/soak.ts) to the farm: a raw socket to a
// front end or to the router's XEP-0114 port that sends whatever it is given,
// hostile or not, and reads the farm's answers as top-level elements
// (xml-scan.ts) into a short backlog, so that an attack may wait for one and
// say how the farm ended the stream: the stream error it named, or a bare
// close. login() takes one through the simulator's login (login.ts):
// STARTTLS, SASL, binding; logIn() follows <see-other-host/> on top of it.
import net from "node:net";
import tls from "node:tls";
import { Login, type LoginParams, type LoginStep } from "./login.js";
import { hostPortKey, loopbackRefusal, parseHostPort } from "./loopback.js";
import { cachedSaltedPassword } from "./scram.js";
import { writeAll } from "./write-all.js";
import { attr, firstChild, StanzaScanner, unescapeXml, type ScanSink } from "./xml-scan.js";

export const NS_CLIENT = "jabber:client";
export const NS_COMPONENT = "jabber:component:accept";

export const streamHeader = (to = "localhost", ns = NS_CLIENT) =>
  `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`;

/** Elements kept unread at most; older ones are dropped (a hostile run reads what it waits for). */
const BACKLOG = 64;

export interface Element {
  name: string;
  xml: string;
}

type Waiter = { test: (e: Element) => boolean; resolve: (e: Element) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

/** A login under way on the connection: it reads every element until it ends. */
interface Driven {
  login: Login;
  /** Milliseconds each answer may take. */
  answerMs: number;
  /** Armed while the login waits for the farm's answer to what it wrote. */
  timer: NodeJS.Timeout | null;
  resolve: (jid: string | null) => void;
  reject: (err: Error) => void;
}

/** A failure kind of login.ts, worded as the soak's report has always named it. */
function failureMessage(kind: string, step: LoginStep): string {
  const i = kind.indexOf(":");
  const what = i < 0 ? kind : kind.slice(0, i);
  const cond = kind.slice(i + 1);
  switch (what) {
    case "sasl-failure":
      return `SASL failure ${cond}`;
    case "bind-error":
      return `bind refused: ${cond}`;
    case "stream-error":
      return `stream error ${cond}${step === "bind-features" || step === "bind" ? " after SASL" : ""}`;
    case "scram":
      return cond === "server-signature" ? "the farm's SCRAM signature is wrong" : cond;
    default:
      return kind;
  }
}

export class SoakConn implements ScanSink {
  private socket: net.Socket;
  private readonly scanner = new StanzaScanner();
  private backlog: Element[] = [];
  private waiters: Waiter[] = [];
  private closeWaiters: (() => void)[] = [];
  private openWaiters: (() => void)[] = [];
  /** Set by tap(): every element goes here instead of the backlog. */
  private sink: ((e: Element) => void) | null = null;
  /** Elements kept unread at most (keepAll() lifts it). */
  private keep = BACKLOG;
  /** The farm opened its side of the current stream (its header arrived). */
  private opened = false;
  /** The start of what the farm sent on the current stream: its header (for a component's stream id). */
  private head = "";
  /** The first stream error the farm sent on this connection, its condition. */
  streamError: string | null = null;
  /** Where the farm's <see-other-host/> sent this connection, as it wrote it. */
  seeOtherHost: string | null = null;
  /** The login under way, and the one that stopped at "authenticated" (for bind()). */
  private driven: Driven | null = null;
  private authenticated: Login | null = null;
  closed = false;
  readonly openedAt = performance.now();
  closedAt = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  /** Connects from `localAddress` (a loopback address) to 127.0.0.1:`port`. */
  static open(port: number, localAddress: string): Promise<SoakConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => {
        s.off("error", reject);
        resolve(new SoakConn(s));
      });
      s.once("error", reject);
    });
  }

  private listen(socket: net.Socket): void {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      if (this.head.length < 2048) this.head += chunk.slice(0, 2048);
      this.scanner.push(chunk, this);
    });
    socket.on("error", () => {});
    socket.on("close", () => this.onClose());
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = performance.now();
    const step = this.driven?.login.step;
    this.endLogin(new Error(step === "tls" ? `closed in the TLS handshake (${this.ending})` : `closed (${this.ending})`));
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`closed (${this.ending})`));
    }
    this.waiters = [];
    for (const f of [...this.closeWaiters, ...this.openWaiters]) f();
    this.closeWaiters = [];
    this.openWaiters = [];
  }

  streamOpen(): void {
    this.opened = true;
    for (const f of this.openWaiters) f();
    this.openWaiters = [];
  }

  /** Resolves once the farm's stream header has arrived; rejects on a close or after `ms`. */
  streamOpened(ms: number): Promise<void> {
    if (this.opened) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error(`closed (${this.ending})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no stream header within ${ms / 1000} s`)), ms);
      const done = () => {
        clearTimeout(timer);
        if (this.opened) resolve();
        else reject(new Error(`closed (${this.ending})`));
      };
      this.openWaiters.push(done);
    });
  }

  streamEnd(): void {
    this.socket.end();
  }

  element(name: string, xml: string): void {
    // A top-level <error/> is the stream's (a stanza's error is inside the stanza).
    if (name === "error" && this.streamError === null) {
      const cond = firstChild(xml);
      this.streamError = cond?.name ?? "unknown";
      if (cond?.name === "see-other-host") this.seeOtherHost = unescapeXml(cond.text);
    }
    if (this.driven) {
      this.answered();
      return this.driven.login.element(name, xml);
    }
    const e = { name, xml };
    if (this.sink) return this.sink(e);
    const w = this.waiters.find((x) => x.test(e));
    if (w) {
      this.waiters = this.waiters.filter((x) => x !== w);
      clearTimeout(w.timer);
      return w.resolve(e);
    }
    this.backlog.push(e);
    if (this.backlog.length > this.keep) this.backlog.shift();
  }

  /** Keeps every unread element: a client that will read them all (tap()) and must not miss one. */
  keepAll(): void {
    this.keep = Infinity;
  }

  /**
   * From now on hands every element to `sink` (those kept unread first) and
   * calls `closed` once the connection is gone: for a client that reads
   * everything the farm sends (the fault harness's counting client).
   */
  tap(sink: (e: Element) => void, closed: () => void): void {
    this.sink = sink;
    const kept = this.backlog;
    this.backlog = [];
    for (const e of kept) sink(e);
    if (this.closed) closed();
    else this.closeWaiters.push(closed);
  }

  /** How the farm ended this connection so far: its stream error, a close, or not at all. */
  get ending(): string {
    if (this.streamError) return `stream error ${this.streamError}`;
    return this.closed ? "closed without a stream error" : "still open";
  }

  /** The header's attribute `name` of the stream the farm opened last (its id). */
  headerAttr(name: string): string | undefined {
    const open = /<stream:stream\b[^>]*>/.exec(this.head)?.[0];
    return open ? attr(open, name) : undefined;
  }

  send(text: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  /** Writes the chunks as fast as the farm takes them, stopping once it has closed; resolves with what was written. */
  pour(chunks: Iterable<string | Buffer>): Promise<number> {
    return writeAll(this.socket, chunks, () => this.closed);
  }

  /** Bytes handed to the socket that the kernel has not taken yet. */
  get unsent(): number {
    return this.socket.writableLength;
  }

  /** The next element (kept or still to come) that passes `test`; rejects on a close or after `ms`. */
  next(test: (e: Element) => boolean, ms: number): Promise<Element> {
    const i = this.backlog.findIndex(test);
    if (i >= 0) {
      const e = this.backlog[i]!;
      this.backlog = this.backlog.slice(i + 1);
      return Promise.resolve(e);
    }
    if (this.closed) return Promise.reject(new Error(`closed (${this.ending})`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        test,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error(`no answer within ${ms / 1000} s`));
        }, ms),
      };
      this.waiters.push(w);
    });
  }

  /** Resolves true once the farm has closed the connection, false if it has not within `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Logs in through login.ts as far as `params.until` (bound by default),
   * each answer within `answerMs`; resolves with the bound JID (null
   * before bind). A failure rejects, named as the soak reports it.
   */
  login(params: LoginParams, answerMs: number): Promise<string | null> {
    const login: Login = new Login(params, {
      write: (xml) => {
        this.send(xml);
        this.awaitAnswer();
      },
      startTls: () => {
        this.startTls().then(
          () => {
            this.newStream();
            login.open();
          },
          (err: Error) => this.endLogin(err),
        );
      },
      restart: () => this.newStream(),
      done: (jid) => {
        this.authenticated = jid === null ? login : null;
        this.endLogin(null, jid);
      },
      failed: (kind) => this.endLogin(new Error(failureMessage(kind, login.step))),
    });
    return this.drive(login, answerMs, () => login.open());
  }

  /** Binds a resource after a login() that stopped at "authenticated"; resolves with the bound JID. */
  async bind(answerMs: number): Promise<string> {
    const login = this.authenticated;
    if (!login) throw new Error("bind() without a login stopped at authenticated");
    this.authenticated = null;
    return (await this.drive(login, answerMs, () => login.bind()))!;
  }

  private drive(login: Login, answerMs: number, start: () => void): Promise<string | null> {
    if (this.closed) return Promise.reject(new Error(`closed (${this.ending})`));
    return new Promise((resolve, reject) => {
      this.driven = { login, answerMs, timer: null, resolve, reject };
      start();
    });
  }

  /** The login wrote something: the farm has `answerMs` to answer it. */
  private awaitAnswer(): void {
    const d = this.driven;
    if (!d) return;
    if (d.timer) clearTimeout(d.timer);
    d.timer = setTimeout(() => this.endLogin(new Error(`no answer within ${d.answerMs / 1000} s`)), d.answerMs);
  }

  /** An answer arrived: the login's own time (a SCRAM proof, the TLS handshake) is not the farm's. */
  private answered(): void {
    const d = this.driven;
    if (d?.timer) clearTimeout(d.timer);
    if (d) d.timer = null;
  }

  private endLogin(err: Error | null, jid: string | null = null): void {
    const d = this.driven;
    if (!d) return;
    this.driven = null;
    if (d.timer) clearTimeout(d.timer);
    if (err) {
      d.login.stop();
      d.reject(err);
    } else d.resolve(jid);
  }

  /** A new stream on the same connection (after STARTTLS or SASL): what was read of the old one is dropped. */
  private newStream(): void {
    this.scanner.reset();
    this.backlog = [];
    this.head = "";
    this.opened = false;
  }

  /** After <proceed/>: TLS over this socket (the farm's certificate is not checked: loopback, a test farm). */
  private async startTls(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    const secured = tls.connect({ socket: raw, servername: "localhost", rejectUnauthorized: false });
    this.socket = secured;
    this.listen(secured);
    await new Promise<void>((resolve, reject) => {
      secured.once("secureConnect", resolve);
      secured.once("close", () => reject(new Error(`closed in the TLS handshake (${this.ending})`)));
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface LoginOptions {
  port: number;
  localAddress: string;
  user: string;
  password: string;
  mechanism: "PLAIN" | "SCRAM-SHA-1";
  /** Milliseconds each answer may take (a throttled login waits up to c2s.auth_max_delay). */
  answerMs: number;
  /** Every connection made on the way, for the caller to destroy when it is done. */
  track: (c: SoakConn) => void;
  /** The stream's 'to'; localhost if absent. */
  domain?: string | undefined;
  /** Where the login stops: bound (the default), or authenticated for a caller that resumes an XEP-0198 session (then SoakConn.bind()). */
  until?: "authenticated" | "bound" | undefined;
}

export interface LoggedIn<J> {
  conn: SoakConn;
  jid: J;
  /** The front end it ended on, after redirects. */
  port: number;
  redirects: number;
}

/** Connects, asks for STARTTLS and opens the encrypted stream; resolves once its features arrived. */
export async function secureStream(port: number, localAddress: string, answerMs: number, track: (c: SoakConn) => void): Promise<SoakConn> {
  const c = await SoakConn.open(port, localAddress);
  track(c);
  await c.login({ domain: "localhost", security: "starttls", mechanism: "PLAIN", username: "", password: "", until: "secured" }, answerMs);
  return c;
}

/**
 * Logs in over STARTTLS and binds a resource (or stops at `until`),
 * following <see-other-host/> to the front end it names (twice at most);
 * resolves with the stream, the bound JID (null if it stopped before bind),
 * the port it ended on and how many redirects it followed. A SASL failure
 * or a stream error rejects, naming it.
 */
export async function logIn(o: LoginOptions & { until?: "bound" | undefined }): Promise<LoggedIn<string>>;
export async function logIn(o: LoginOptions): Promise<LoggedIn<string | null>>;
export async function logIn(o: LoginOptions): Promise<LoggedIn<string | null>> {
  let port = o.port;
  for (let hop = 0; ; hop++) {
    const c = await SoakConn.open(port, o.localAddress);
    o.track(c);
    try {
      const params = { domain: o.domain ?? "localhost", security: "starttls", mechanism: o.mechanism, username: o.user, password: o.password, salted: cachedSaltedPassword, until: o.until } as const;
      const jid = await c.login(params, o.answerMs);
      return { conn: c, jid, port, redirects: hop };
    } catch (err) {
      const target = c.seeOtherHost === null ? null : parseHostPort(c.seeOtherHost, port);
      if (!target || hop >= 2 || loopbackRefusal(target.host)) throw target ? new Error(`${(err as Error).message} (to ${hostPortKey(target.host, target.port)})`) : err;
      c.destroy();
      port = target.port;
    }
  }
}
