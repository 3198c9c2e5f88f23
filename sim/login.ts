// The client side of an XMPP login (RFC 6120), once for every hand-written
// client of the farm: the simulator's (client.ts), its cheapest idle one
// (raw-session.ts), the soak's and the fault harness's raw connections
// (soak-conn.ts) and the test harness's raw streams. Stream header,
// STARTTLS, SASL PLAIN or SCRAM (lib/sasl/scram-client.ts), resource binding
// and the legacy session when a server requires it, as a state machine
// without I/O: its user owns the socket and the parser, hands it the
// server's top-level elements (xml-scan.ts) and does what it asks through a
// LoginSink. A login object lives only as long as the login, so a session
// that idles afterwards pays nothing for it.
import { ScramClient, type SaltedPasswordFn } from "./scram-client.js";
import { attr, firstChild, unescapeXml } from "./xml-scan.js";

export type Security = "starttls" | "direct" | "none";
export type Mechanism = "PLAIN" | "SCRAM-SHA-1" | "SCRAM-SHA-256";

export interface LoginParams {
  domain: string;
  /** STARTTLS, TLS from the first byte (XEP-0368; the transport does it before open()), or none. */
  security: Security;
  mechanism: Mechanism;
  username: string;
  password: string;
  /** The resource asked for at bind; empty or absent: the server's choice. */
  resource?: string | undefined;
  /** SCRAM's SaltedPassword, if the caller caches it (sim/scram.ts). */
  salted?: SaltedPasswordFn | undefined;
  /**
   * Where the login stops, each time with the features of the stream it
   * reached: TLS up ("secured"), authenticated ("authenticated": bind() goes
   * on, or the caller resumes an XEP-0198 session instead), or bound (the default).
   */
  until?: "secured" | "authenticated" | "bound" | undefined;
}

export interface LoginSink {
  write(xml: string): void;
  /** After <proceed/>: TLS over the same socket, then open() again. */
  startTls(): void;
  /** A new stream starts on this connection (after SASL success): what was scanned of the old one goes. */
  restart(): void;
  /** SASL succeeded, `ms` after the <auth/> went out: the restarted stream's header goes out next. */
  authenticated?(ms: number): void;
  /** The login reached its `until`: the bound JID (null before bind) and the stream's features. */
  done(jid: string | null, features: string): void;
  /** Named as the simulator counts failures: "sasl-failure:not-authorized", "bind-error:conflict", … */
  failed(kind: string): void;
}

/** Each step's name is what the simulator's failure kinds say (timeout:<step>). */
export type LoginStep =
  | "connect"
  | "tls-features"
  | "starttls"
  | "tls"
  | "auth-features"
  | "sasl-challenge"
  | "sasl-success"
  | "bind-features"
  | "authenticated"
  | "bind"
  | "session"
  | "done";

const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";

export const streamHeader = (domain: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`;

/** The condition a stanza error names, for a failure kind. */
const stanzaCondition = (xml: string) => firstChild(xml.slice(xml.indexOf("<error")), [])?.name ?? "unknown";

export class Login {
  step: LoginStep = "connect";
  private scram: ScramClient | null = null;
  /** The server requires the legacy session (RFC 3921) after bind. */
  private needSession = false;
  private jid = "";
  /** When the <auth/> went out (performance.now()). */
  private authAt = 0;
  /** Set by stop(): an answer still under way (a SCRAM proof) is dropped. */
  private stopped = false;

  constructor(
    private readonly p: LoginParams,
    private readonly sink: LoginSink,
  ) {}

  /** The connection (or, after STARTTLS or for direct TLS, its TLS) is up: a stream opens. */
  open(): void {
    this.step = this.step === "connect" && this.p.security === "starttls" ? "tls-features" : "auth-features";
    this.sink.write(streamHeader(this.p.domain));
  }

  /** The connection is dropped: nothing more is written for this login. */
  stop(): void {
    this.stopped = true;
  }

  /** A top-level element the server sent. */
  element(name: string, xml: string): void {
    if (name === "error") return this.sink.failed(`stream-error:${firstChild(xml)?.name ?? "unknown"}`);
    switch (this.step) {
      case "tls-features":
        if (name !== "features") return;
        if (!xml.includes(NS_TLS)) return this.sink.failed("starttls-not-offered");
        this.step = "starttls";
        return this.sink.write(`<starttls xmlns='${NS_TLS}'/>`);
      case "starttls":
        if (name === "proceed") {
          this.step = "tls";
          return this.sink.startTls();
        }
        if (name === "failure") return this.sink.failed("starttls-failure");
        return;
      case "auth-features":
        if (name !== "features") return;
        if (this.p.until === "secured") return this.finish(null, xml);
        return this.authenticate(xml);
      case "sasl-challenge":
      case "sasl-success":
        return this.sasl(name, xml);
      case "bind-features": {
        if (name !== "features") return;
        const s = xml.indexOf(NS_SESSION);
        this.needSession = s >= 0 && !/^[^/]*?<optional/.test(xml.slice(s));
        if (this.p.until !== "authenticated") return this.bind();
        this.step = "authenticated";
        return this.sink.done(null, xml);
      }
      case "bind": {
        if (name !== "iq" || attr(xml, "id") !== "bind") return;
        const jid = /<jid>([^<]+)<\/jid>/.exec(xml)?.[1];
        if (attr(xml, "type") !== "result" || !jid) return this.sink.failed(`bind-error:${stanzaCondition(xml)}`);
        this.jid = unescapeXml(jid);
        if (!this.needSession) return this.finish(this.jid, "");
        this.step = "session";
        return this.sink.write(`<iq type='set' id='session'><session xmlns='${NS_SESSION}'/></iq>`);
      }
      case "session":
        if (name !== "iq" || attr(xml, "id") !== "session") return;
        if (attr(xml, "type") !== "result") return this.sink.failed("session-error");
        return this.finish(this.jid, "");
    }
  }

  /** Binds a resource: after the login stopped at "authenticated" (an XEP-0198 resumption that failed). */
  bind(): void {
    const resource = this.p.resource;
    this.step = "bind";
    this.sink.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${resource ? `<resource>${resource}</resource>` : ""}</bind></iq>`);
  }

  private finish(jid: string | null, features: string): void {
    this.step = "done";
    this.sink.done(jid, features);
  }

  private authenticate(features: string): void {
    const { mechanism, username, password } = this.p;
    if (!features.includes(`<mechanism>${mechanism}</mechanism>`)) return this.sink.failed(`mechanism-not-offered:${mechanism}`);
    let initial: string;
    if (mechanism === "PLAIN") {
      initial = Buffer.from(`\0${username}\0${password}`).toString("base64");
      this.step = "sasl-success";
    } else {
      this.scram = new ScramClient(mechanism === "SCRAM-SHA-1" ? "SHA-1" : "SHA-256", username, password, this.p.salted);
      initial = this.scram.first().toString("base64");
      this.step = "sasl-challenge";
    }
    this.authAt = performance.now();
    this.sink.write(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${initial}</auth>`);
  }

  private sasl(name: string, xml: string): void {
    if (name === "failure") return this.sink.failed(`sasl-failure:${firstChild(xml)?.name ?? "unknown"}`);
    const content = Buffer.from((/^<[^>]*>([^<]*)</.exec(xml)?.[1] ?? "").trim(), "base64");
    if (name === "challenge") {
      if (this.step === "sasl-challenge" && this.scram) {
        this.step = "sasl-success";
        this.scram.final(content).then(
          (final) => {
            if (!this.stopped && this.step === "sasl-success") this.sink.write(`<response xmlns='${NS_SASL}'>${final.toString("base64")}</response>`);
          },
          (err: Error) => {
            if (!this.stopped) this.sink.failed(`scram:${err.message}`);
          },
        );
        return;
      }
      // The server-final message in a challenge (RFC 6120 §6.4.6 allows it), then an empty success.
      if (this.scram && !this.scram.verify(content)) return this.sink.failed("scram:server-signature");
      this.scram = null;
      return this.sink.write(`<response xmlns='${NS_SASL}'/>`);
    }
    if (name !== "success") return;
    if (this.scram && !this.scram.verify(content)) return this.sink.failed("scram:server-signature");
    this.scram = null;
    this.sink.authenticated?.(performance.now() - this.authAt);
    this.sink.restart();
    this.step = "bind-features";
    this.sink.write(streamHeader(this.p.domain));
  }
}
