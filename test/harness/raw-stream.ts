// A hand-driven XMPP stream over a raw socket, for what real client
// libraries will not send: malformed XML, oversized stanzas, bad headers.
import net from "node:net";
import tls from "node:tls";
import { writeAll } from "../../sim/write-all.js";

export const HEADER = (to = "localhost") =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`;

export class RawStream {
  received = "";
  closed = false;
  private socket: net.Socket;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  /** `localAddress`: a loopback source address (127.0.0.2, …), as clients from several hosts. */
  static connect(port: number, localAddress?: string): Promise<RawStream> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => resolve(new RawStream(s)));
      s.once("error", reject);
    });
  }

  private listen(socket: net.Socket): void {
    socket.on("data", (d: Buffer) => {
      this.received += d.toString("utf8");
      this.check();
    });
    socket.on("close", () => {
      this.closed = true;
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
  s.send(HEADER());
  await s.until(/<starttls/);
  s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await s.until(/<proceed/);
  await s.startTls();
  s.send(HEADER());
  await s.until(/<\/stream:features>/);
  return s;
}

/** Connects, does STARTTLS, logs in with PLAIN and restarts the stream: resource binding is offered. */
export async function loggedInStream(port: number, user: string, password: string, localAddress?: string): Promise<RawStream> {
  const s = await secureStream(port, localAddress);
  s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString("base64")}</auth>`);
  await s.until(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
  s.send(HEADER());
  await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
  return s;
}

/** A logged-in stream with a resource bound; resolves with the stream and the bound JID. */
export async function boundStream(port: number, user: string, password: string, localAddress?: string): Promise<{ stream: RawStream; jid: string }> {
  const s = await loggedInStream(port, user, password, localAddress);
  s.send("<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
  const bound = await s.until(/<jid>([^<]+)<\/jid>/);
  return { stream: s, jid: /<jid>([^<]+)<\/jid>/.exec(bound)![1]! };
}
