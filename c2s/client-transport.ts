// One client's bytes: its socket (plain, or TLS once STARTTLS or the
// direct-TLS port asked for it), the XML stream parsed from it, and the
// writes to it. It knows nothing of XMPP beyond the parser: what the parser
// finds, and the socket's end, go to its owner (the connection).
import type net from "node:net";
import tls from "node:tls";
import type { Element } from "ltx";
import { batched } from "../lib/link/batch.js";
import { XmlStream, type StreamError, type StreamHeader, type XmlLimits, type XmlStreamHandlers } from "../lib/xml-stream.js";
import { NS_TLS } from "./stream-writer.js";

/**
 * How long after its last bytes a closing stream's socket is half-closed,
 * unless the client closes first (RFC 6120 §4.4 lets it say its goodbye).
 * xmpp.js writes its closing tag as it leaves a stream that ended in an
 * error, and one that hits a closed socket abandons a <see-other-host/>:
 * at 250 ms, a client whose event loop lagged longer under load did (a
 * drain then waited for sessions no client came back for).
 */
const HALF_CLOSE_DELAY_MS = 2_000;

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

// Memory: a front end holds thousands of idle connections, so none has
// closures of its own. The transport is its streams' handler (a closure per
// handler cost every connection some 300 bytes), and its socket's listeners
// are shared by every socket, which names its owner.
const OWNER = Symbol("owner");
type OwnedSocket = net.Socket & { [OWNER]: TransportOwner };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER].onData(chunk);
}

function onError(this: OwnedSocket, err: Error): void {
  this[OWNER].onSocketError(err);
}

function onClose(this: OwnedSocket): void {
  this[OWNER].onSocketClosed();
}

export class ClientTransport implements XmlStreamHandlers {
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
   * `afterLink` as for write().
   */
  closeWith(last: string, afterLink = false): void {
    const socket = this.sock;
    (afterLink ? batched(socket) : socket).write(last);
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

  // --- What the stream parses (XmlStreamHandlers), passed on to the owner.

  header(h: StreamHeader): void {
    this.owner.onHeader(h);
  }

  element(el: Element, uri: string): void {
    this.owner.onElement(el, uri);
  }

  end(): void {
    this.owner.onStreamEnd();
  }

  error(err: StreamError): void {
    this.owner.onXmlError(err.condition, err.message);
  }

  private attach(socket: net.Socket): void {
    (socket as OwnedSocket)[OWNER] = this.owner;
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  }

  private newStream(limits: XmlLimits): XmlStream {
    return new XmlStream(limits, this);
  }
}
