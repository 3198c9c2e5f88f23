// One connection of the soak (sim/soak.ts) to the farm: a raw socket to a
// front end or to the router's XEP-0114 port that sends whatever it is given,
// hostile or not, and reads the farm's answers as top-level elements
// (xml-scan.ts) into a short backlog, so that an attack may wait for one and
// say how the farm ended the stream: the stream error it named, or a bare
// close. logIn() takes one through STARTTLS, SASL (PLAIN or SCRAM-SHA-1),
// <see-other-host/> and binding, as a client does.
import net from "node:net";
import tls from "node:tls";
import { ScramClient } from "./scram-client.js";
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
    if (name === "error" && this.streamError === null) this.streamError = firstChild(xml)?.name ?? "unknown";
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

  /** A new stream on the same connection (after STARTTLS or SASL): what was read of the old one is dropped. */
  restart(header = streamHeader()): void {
    this.scanner.reset();
    this.backlog = [];
    this.head = "";
    this.opened = false;
    this.send(header);
  }

  /** After <proceed/>: TLS over this socket (the farm's certificate is not checked: loopback, a test farm). */
  async startTls(): Promise<void> {
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
}

const isFeatures = (e: Element) => e.name === "features";
const named = (...names: string[]) => (e: Element) => names.includes(e.name);

/** Connects, asks for STARTTLS and opens the encrypted stream; resolves once its features arrived. */
export async function secureStream(port: number, localAddress: string, answerMs: number, track: (c: SoakConn) => void): Promise<SoakConn> {
  const c = await SoakConn.open(port, localAddress);
  track(c);
  c.send(streamHeader());
  await c.next(isFeatures, answerMs);
  c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await c.next(named("proceed"), answerMs);
  await c.startTls();
  c.restart();
  await c.next(isFeatures, answerMs);
  return c;
}

/**
 * Logs in over STARTTLS and binds a resource, following <see-other-host/>
 * to the front end it names (twice at most); resolves with the stream, the
 * bound JID and how many redirects it followed. A SASL failure or a stream
 * error rejects, naming it.
 */
export async function logIn(o: LoginOptions): Promise<{ conn: SoakConn; jid: string; redirects: number }> {
  let port = o.port;
  for (let hop = 0; ; hop++) {
    const c = await secureStream(port, o.localAddress, o.answerMs, o.track);
    await authenticate(c, o);
    c.restart();
    const first = await c.next(named("features", "error"), o.answerMs);
    if (first.name === "error") {
      const cond = firstChild(first.xml);
      const target = cond?.name === "see-other-host" ? parseHostPort(unescapeXml(cond.text), port) : null;
      if (!target || hop >= 2 || loopbackRefusal(target.host)) throw new Error(`stream error ${cond?.name ?? "unknown"} after SASL${target ? ` (to ${hostPortKey(target.host, target.port)})` : ""}`);
      c.destroy();
      port = target.port;
      continue;
    }
    c.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    const bound = await c.next((e) => e.name === "iq" && attr(e.xml, "id") === "bind", o.answerMs);
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound.xml)?.[1];
    if (!jid) throw new Error(`bind refused: ${firstChild(bound.xml.slice(bound.xml.indexOf("<error")), [])?.name ?? "no jid"}`);
    return { conn: c, jid, redirects: hop };
  }
}

export async function authenticate(c: SoakConn, o: LoginOptions): Promise<void> {
  const sasl = named("success", "failure", "challenge");
  const failed = (e: Element) => new Error(`SASL failure ${firstChild(e.xml)?.name ?? "unknown"}`);
  if (o.mechanism === "PLAIN") {
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${o.user}\0${o.password}`).toString("base64")}</auth>`);
    const e = await c.next(sasl, o.answerMs);
    if (e.name !== "success") throw failed(e);
    return;
  }
  const scram = new ScramClient("SHA-1", o.user, o.password, cachedSaltedPassword);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${scram.first().toString("base64")}</auth>`);
  const challenge = await c.next(sasl, o.answerMs);
  if (challenge.name !== "challenge") throw failed(challenge);
  const content = (e: Element) => Buffer.from(/^<[^>]*>([^<]*)</.exec(e.xml)?.[1]?.trim() ?? "", "base64");
  c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${(await scram.final(content(challenge))).toString("base64")}</response>`);
  const done = await c.next(sasl, o.answerMs);
  if (done.name !== "success") throw failed(done);
  if (!scram.verify(content(done))) throw new Error("the farm's SCRAM signature is wrong");
}
