// One simulated client at the lowest cost a load generator can afford: a
// socket and a small state machine reading what a known RFC 6120 server
// sends (features, proceed, success, bind result) — no DOM, no library.
import net from "node:net";
import tls from "node:tls";
import { ScramClient } from "./scram-client.js";

export interface SessionTarget {
  host: string;
  port: number;
  /** Local address to connect from (spread over 127.0.0.0/8 to multiply ephemeral ports). */
  localAddress?: string;
  domain: string;
  security: "starttls" | "direct" | "none";
  /** PEM CA to verify the server with; without it the certificate is not checked (load tests only). */
  ca?: Buffer;
  mechanism: "PLAIN" | "SCRAM-SHA-1" | "SCRAM-SHA-256";
}

export interface RawSession {
  socket: net.Socket;
  jid: string;
  /** Milliseconds from connect to the bind result. */
  loginMs: number;
  close(): void;
}

const header = (domain: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`;

/** Authenticates, binds a resource, and sends initial presence. */
export function login(t: SessionTarget, username: string, password: string, timeoutMs = 30_000): Promise<RawSession> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: t.host, port: t.port, localAddress: t.localAddress });
    let socket: net.Socket = tcp;
    if (t.security === "direct") {
      socket = tls.connect({ socket: tcp, servername: t.domain, ca: t.ca, rejectUnauthorized: !!t.ca });
      socket.once("secureConnect", () => socket.write(header(t.domain)));
    } else tcp.once("connect", () => tcp.write(header(t.domain)));
    let buf = "";
    let scram: ScramClient | null = null;
    let step: "features" | "proceed" | "auth-features" | "challenge" | "success" | "bind-features" | "bound" = t.security === "starttls" ? "proceed" : "auth-features";
    const timer = setTimeout(() => fail(new Error(`login timed out at step ${step}`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      if (buf.includes("<stream:error>") || buf.includes("<failure")) return fail(new Error(`server refused: ${buf.slice(-300)}`));
      switch (step) {
        case "proceed":
          if (!buf.includes("</stream:features>")) return;
          buf = "";
          socket.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
          step = "features";
          return;
        case "features": {
          if (!buf.includes("<proceed")) return;
          buf = "";
          socket.removeListener("data", onData);
          const secured = tls.connect({ socket, servername: t.domain, ca: t.ca, rejectUnauthorized: !!t.ca });
          secured.once("secureConnect", () => secured.write(header(t.domain)));
          secured.on("error", fail);
          secured.on("data", onData);
          socket = secured;
          step = "auth-features";
          return;
        }
        case "auth-features": {
          if (!buf.includes("</stream:features>")) return;
          buf = "";
          let msg: Buffer;
          if (t.mechanism === "PLAIN") {
            msg = Buffer.from(`\0${username}\0${password}`);
            step = "success";
          } else {
            scram = new ScramClient(t.mechanism === "SCRAM-SHA-1" ? "SHA-1" : "SHA-256", username, password);
            msg = scram.first();
            step = "challenge";
          }
          socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${t.mechanism}'>${msg.toString("base64")}</auth>`);
          return;
        }
        case "challenge": {
          const m = /<challenge[^>]*>([^<]*)<\/challenge>/.exec(buf);
          if (!m) return;
          buf = "";
          step = "success";
          scram!.final(Buffer.from(m[1]!, "base64")).then(
            (final) => socket.write(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${final.toString("base64")}</response>`),
            fail,
          );
          return;
        }
        case "success": {
          const m = /<success[^>]*?(?:\/>|>([^<]*)<\/success>)/.exec(buf);
          if (!m) return;
          buf = "";
          if (scram && !scram.verify(Buffer.from(m[1] ?? "", "base64"))) return fail(new Error("the server's SCRAM signature is wrong"));
          socket.write(header(t.domain));
          step = "bind-features";
          return;
        }
        case "bind-features":
          if (!buf.includes("</stream:features>")) return;
          buf = "";
          socket.write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
          step = "bound";
          return;
        case "bound": {
          const m = /<jid>([^<]+)<\/jid>/.exec(buf);
          if (!m) return;
          buf = "";
          clearTimeout(timer);
          socket.write("<presence/>");
          // From here on the session idles: what arrives is read and dropped.
          socket.removeListener("data", onData);
          socket.on("data", () => {});
          const s = socket;
          resolve({ socket: s, jid: m[1]!, loginMs: performance.now() - started, close: () => s.end("</stream:stream>") });
          return;
        }
      }
    };
    socket.on("data", onData);
    socket.on("error", fail);
  });
}
