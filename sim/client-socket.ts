// A simulated client's socket (client.ts): TCP, then TLS over it when the
// server asks (direct TLS or STARTTLS). The listeners are shared, with no
// closure per client: `this` is the socket and `sim` its owner, and events of
// a socket the owner has since replaced are dropped.
import net from "node:net";
import tls from "node:tls";

/** What a socket tells its client. */
export interface SocketOwner {
  sock: SimSocket | null;
  /** The worker's count of open sockets. */
  readonly ctx: { open: number };
  connected(): void;
  secured(): void;
  data(chunk: string): void;
  socketError(err: NodeJS.ErrnoException): void;
  socketClosed(): void;
}

export type SimSocket = (net.Socket | tls.TLSSocket) & { sim?: SocketOwner };

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

function listen(sock: SimSocket): void {
  sock.on("data", onData);
  sock.on("error", onError);
  sock.on("close", onClose);
}

/** A TCP connection for `owner`, from `local` when given. */
export function openTcp(owner: SocketOwner, host: string, port: number, local: string | undefined): SimSocket {
  const sock: SimSocket = net.connect({ host, port, localAddress: local });
  owner.ctx.open++;
  sock.sim = owner;
  sock.setNoDelay(true);
  sock.once("connect", onConnect);
  sock.once("close", onTcpClose);
  listen(sock);
  return sock;
}

/** TLS over `owner`'s TCP socket: its events move to the TLS socket. */
export function wrapTls(owner: SocketOwner, domain: string, secureContext: tls.SecureContext, verify: boolean): SimSocket {
  const tcp = owner.sock!;
  tcp.removeListener("data", onData);
  tcp.removeListener("error", onError);
  tcp.removeListener("close", onClose);
  // Errors of the TCP socket surface on the TLS socket; this one only keeps them from being unhandled.
  tcp.on("error", ignore);
  const t: SimSocket = tls.connect({
    socket: tcp,
    servername: net.isIP(domain) ? undefined : domain,
    secureContext,
    rejectUnauthorized: verify,
  });
  t.sim = owner;
  t.once("secureConnect", onSecure);
  listen(t);
  return t;
}
