// One simulated client at the lowest cost a load generator can afford: a
// socket, the shared login (login.ts) over the simulator's scanner while it
// logs in, and nothing once it idles: no DOM, no library, no parser left.
import net from "node:net";
import tls from "node:tls";
import { Login, type Mechanism, type Security } from "./login.js";
import { StanzaScanner } from "./xml-scan.js";

export interface SessionTarget {
  host: string;
  port: number;
  /** Local address to connect from (spread over 127.0.0.0/8 to multiply ephemeral ports). */
  localAddress?: string;
  domain: string;
  security: Security;
  /** PEM CA to verify the server with; without it the certificate is not checked (load tests only). */
  ca?: Buffer;
  mechanism: Mechanism;
}

export interface RawSession {
  socket: net.Socket;
  jid: string;
  /** Milliseconds from connect to the bind result. */
  loginMs: number;
  close(): void;
}

function ignore(): void {}

/** The session once logged in: initial presence sent, then what arrives is read and dropped. */
function idle(socket: net.Socket, jid: string, loginMs: number): RawSession {
  socket.write("<presence/>");
  socket.on("data", ignore);
  return { socket, jid, loginMs, close: () => socket.end("</stream:stream>") };
}

/** Authenticates, binds a resource, and sends initial presence. */
export function login(t: SessionTarget, username: string, password: string, timeoutMs = 30_000): Promise<RawSession> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: t.host, port: t.port, localAddress: t.localAddress });
    let socket: net.Socket = tcp;
    const scan = new StanzaScanner();
    const scanned = { streamOpen() {}, streamEnd() {}, element: (name: string, xml: string) => exchange.element(name, xml) };
    const onData = (d: Buffer) => scan.push(d.toString("utf8"), scanned);
    const fail = (err: Error) => {
      clearTimeout(timer);
      exchange.stop();
      socket.destroy();
      reject(err);
    };
    const secure = () => {
      const secured = tls.connect({ socket, servername: t.domain, ca: t.ca, rejectUnauthorized: !!t.ca });
      secured.once("secureConnect", () => {
        scan.reset();
        exchange.open();
      });
      secured.on("error", fail);
      socket.removeListener("data", onData);
      secured.on("data", onData);
      socket = secured;
    };
    const exchange = new Login(
      { domain: t.domain, security: t.security, mechanism: t.mechanism, username, password },
      {
        write: (xml) => socket.write(xml),
        startTls: secure,
        restart: () => scan.reset(),
        failed: (kind) => fail(new Error(`login failed: ${kind}`)),
        done: (jid) => {
          clearTimeout(timer);
          // Nothing of the login stays reachable from the socket: an idle session costs its socket alone.
          for (const held of new Set([tcp, socket])) {
            held.removeListener("error", fail);
            held.on("error", ignore);
          }
          socket.removeListener("data", onData);
          resolve(idle(socket, jid!, performance.now() - started));
        },
      },
    );
    const timer = setTimeout(() => fail(new Error(`login timed out at step ${exchange.step}`)), timeoutMs);
    socket.on("data", onData);
    socket.on("error", fail);
    if (t.security === "direct") tcp.once("connect", secure);
    else tcp.once("connect", () => exchange.open());
  });
}
