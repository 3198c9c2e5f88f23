// One client's bytes: its socket (plain, or TLS once STARTTLS or the
// direct-TLS port asked for it), the XML stream parsed from it, and the
// writes to it. It knows nothing of XMPP beyond the parser: what the parser
// finds, and the socket's end, go to its owner (the connection).
import type net from "node:net";
import tls from "node:tls";
import type { Element } from "ltx";
import { batched } from "../lib/link/batch.js";
import { XmlStream, type StreamHeader, type XmlLimits } from "../lib/xml-stream.js";
import { NS_TLS } from "./stream-writer.js";

/** How long after its last bytes a closing stream's socket is half-closed. */
const HALF_CLOSE_DELAY_MS = 250;

/** What a transport reports to the connection that owns it. */
export interface TransportOwner {
  onData(chunk: Buffer): void;
  onSocketError(err: Error): void;
  onSocketClosed(): void;
  onHeader(h: StreamHeader): void;
  onElement(el: Element, uri: string): void;
  /** The client closed its stream. */
  onStreamEnd(): void;
  /** The client's XML broke a rule of the parser's (an RFC 6120 stream error condition). */
  onXmlError(condition: string, message: string): void;
  /** The TLS handshake finished. */
  onSecured(protocol: string | null): void;
}

export class ClientTransport {
  private sock: net.Socket;
  private xml: XmlStream;
  private encrypted = false;

  /** Starts reading `socket` with a stream under `limits`; call encrypt() at once for direct TLS. */
  constructor(
    private readonly owner: TransportOwner,
    socket: net.Socket,
    limits: XmlLimits,
  ) {
    this.sock = socket;
    this.xml = this.newStream(limits);
  }

  get socket(): net.Socket {
    return this.sock;
  }

  /** The current stream's parser (a new one at every restart). */
  get stream(): XmlStream {
    return this.xml;
  }

  get secure(): boolean {
    return this.encrypted;
  }

  /** Bytes written and not yet taken by the kernel. */
  get buffered(): number {
    return this.sock.writableLength;
  }

  /** Listens to the plain socket; for the direct-TLS port, encrypt() instead. */
  attachPlain(): void {
    this.attach(this.sock);
  }

  /**
   * `flushed` runs once the bytes have left for the kernel. `afterLink`: only
   * after what this turn wrote to the router has (lib/link/batch.ts).
   */
  write(data: string | Buffer, flushed?: () => void, afterLink = false): void {
    (afterLink ? batched(this.sock) : this.sock).write(data, flushed && ((err) => !err && flushed()));
  }

  /**
   * Sends the stream's last bytes and closes our side a moment later, so a
   * client still writing its own goodbye (an XEP-0198 <a/>, its closing
   * tag) does not hit a closed socket and abandon, say, a redirect.
   */
  end(last: string): void {
    const socket = this.sock;
    socket.write(last);
    // Most clients are gone by then: ending a destroyed socket only builds an error to drop.
    setTimeout(() => {
      if (!socket.destroyed) socket.end();
    }, HALF_CLOSE_DELAY_MS).unref();
  }

  /** A new stream (RFC 6120 §4.3.3: after STARTTLS and after SASL), under `limits`. */
  restart(limits: XmlLimits): void {
    this.xml = this.newStream(limits);
  }

  /** Parses no more of this stream: it ended, or the connection lets its socket go. */
  stop(): void {
    this.xml.stop();
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    this.sock.resume();
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** <proceed/>, then TLS over the same socket with a new stream (RFC 6120 §5.4.3.3). */
  startTls(limits: XmlLimits, context: tls.SecureContext): void {
    this.write(`<proceed xmlns='${NS_TLS}'/>`);
    const raw = this.sock;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    raw.removeAllListeners("error");
    this.xml.stop();
    this.restart(limits);
    this.encrypt(context);
  }

  /** TLS over the socket, with the certificate in use now; the owner times the handshake. */
  encrypt(context: tls.SecureContext): void {
    const secured = new tls.TLSSocket(this.sock, { isServer: true, secureContext: context });
    this.sock = secured;
    this.encrypted = true;
    this.attach(secured);
    secured.once("secure", () => this.owner.onSecured(secured.getProtocol()));
  }

  private attach(socket: net.Socket): void {
    const owner = this.owner;
    socket.on("data", (chunk: Buffer) => owner.onData(chunk));
    socket.on("error", (err) => owner.onSocketError(err));
    socket.on("close", () => owner.onSocketClosed());
  }

  private newStream(limits: XmlLimits): XmlStream {
    const owner = this.owner;
    return new XmlStream(limits, {
      header: (h) => owner.onHeader(h),
      element: (el, uri) => owner.onElement(el, uri),
      end: () => owner.onStreamEnd(),
      error: (err) => owner.onXmlError(err.condition, err.message),
    });
  }
}
