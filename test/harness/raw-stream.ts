// A hand-driven XMPP stream over a raw socket, for what real client
// libraries will not send: malformed XML, oversized stanzas, bad headers.
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { Login, streamHeader, type LoginParams } from "../../sim/login.js";
import { writeAll } from "../../sim/write-all.js";
import { StanzaScanner } from "../../sim/xml-scan.js";

export const HEADER = (to = "localhost") => streamHeader(to);

export class RawStream {
  received = "";
  closed = false;
  private socket: Duplex;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  /** While login() runs: the scanner its elements come from, and what a close means to it. */
  private scan: { scanner: StanzaScanner; login: Login; closed: () => void } | null = null;

  private constructor(socket: Duplex) {
    this.socket = socket;
    this.listen(socket);
  }

  /** Over a connected socket of any kind (test/harness/memory-socket.ts). */
  static over(socket: Duplex): RawStream {
    return new RawStream(socket);
  }

  /** `localAddress`: a loopback source address (127.0.0.2, …), as clients from several hosts. */
  static connect(port: number, localAddress?: string): Promise<RawStream> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => resolve(new RawStream(s)));
      s.once("error", reject);
    });
  }

  private listen(socket: Duplex): void {
    socket.on("data", (d: Buffer) => {
      const text = d.toString("utf8");
      this.received += text;
      const scan = this.scan;
      scan?.scanner.push(text, { streamOpen() {}, streamEnd() {}, element: (name, xml) => scan.login.element(name, xml) });
      this.check();
    });
    socket.on("close", () => {
      this.closed = true;
      this.scan?.closed();
      this.check();
    });
    socket.on("error", () => {});
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /**
   * Writes each chunk in turn, waiting while the socket's buffer is full, and
   * stops once the server closed the connection; resolves with the bytes written.
   */
  sendAll(chunks: Iterable<string | Buffer>): Promise<number> {
    return writeAll(this.socket, chunks, () => this.closed);
  }

  /**
   * Waits until the received text matches, or the test passes (or the
   * socket closes, then throws if it never matched). A test function may
   * consume `received`: it runs at every chunk.
   */
  async until(pattern: RegExp | (() => boolean), timeoutMs = 10_000): Promise<string> {
    const matches = typeof pattern === "function" ? pattern : () => pattern.test(this.received);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got: ${this.received.slice(-2000)}`)), timeoutMs);
      const test = () => matches() || this.closed;
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (test()) done();
      else this.waiters.push({ test, resolve: done });
    });
    if (!matches()) throw new Error(`stream closed without ${pattern}; got: ${this.received.slice(-2000)}`);
    return this.received;
  }

  async untilClosed(timeoutMs = 10_000): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socket still open; got: ${this.received}`)), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (this.closed) done();
      else this.waiters.push({ test: () => this.closed, resolve: done });
    });
    return this.received;
  }

  /** After <proceed/>: TLS over the same socket (`options` for the handshake), then a fresh stream. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    this.socket.removeAllListeners("data");
    this.socket.removeAllListeners("close");
    const secured = tls.connect({ socket: this.socket, servername: "localhost", ...options });
    await new Promise<void>((resolve, reject) => {
      secured.once("secureConnect", resolve);
      secured.once("error", reject);
    });
    this.socket = secured;
    this.received = "";
    this.listen(secured);
    return secured;
  }

  /**
   * Logs in through the simulator's login (sim/login.ts), as far as
   * `params.until`; resolves with the bound JID (null before bind). What
   * arrives meanwhile is kept in `received` as ever (cleared by STARTTLS).
   */
  login(params: Omit<LoginParams, "domain" | "security"> & Partial<Pick<LoginParams, "domain" | "security">>): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const end = (outcome: () => void) => {
        this.scan = null;
        outcome();
      };
      const scanner = new StanzaScanner();
      const login = new Login(
        { domain: "localhost", security: "starttls", ...params },
        {
          write: (xml) => this.send(xml),
          startTls: () => {
            this.startTls().then(
              () => {
                scanner.reset();
                login.open();
              },
              (err: Error) => end(() => reject(err)),
            );
          },
          restart: () => scanner.reset(),
          done: (jid) => end(() => resolve(jid)),
          failed: (kind) => end(() => reject(new Error(`login failed: ${kind}; got: ${this.received.slice(-2000)}`))),
        },
      );
      this.scan = { scanner, login, closed: () => end(() => reject(new Error(`closed during the login at ${login.step}; got: ${this.received.slice(-2000)}`))) };
      login.open();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closes our side once what was sent has gone out; the peer may still write. */
  end(): void {
    this.socket.end();
  }
}

/** Connects, does STARTTLS, and opens the encrypted stream (its features received). */
export async function secureStream(port: number, localAddress?: string): Promise<RawStream> {
  const s = await RawStream.connect(port, localAddress);
  await s.login({ mechanism: "PLAIN", username: "", password: "", until: "secured" });
  return s;
}

/** Connects, does STARTTLS, logs in with PLAIN and restarts the stream: resource binding is offered. */
export async function loggedInStream(port: number, user: string, password: string, localAddress?: string): Promise<RawStream> {
  const s = await RawStream.connect(port, localAddress);
  await s.login({ mechanism: "PLAIN", username: user, password, until: "authenticated" });
  return s;
}

/** A logged-in stream with a resource bound; resolves with the stream and the bound JID. */
export async function boundStream(port: number, user: string, password: string, localAddress?: string): Promise<{ stream: RawStream; jid: string }> {
  const s = await RawStream.connect(port, localAddress);
  const jid = await s.login({ mechanism: "PLAIN", username: user, password });
  return { stream: s, jid: jid! };
}
