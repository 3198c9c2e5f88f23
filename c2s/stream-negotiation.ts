// RFC 6120 stream negotiation on one connection, up to a bound session:
// the stream header and its checks, the features offered at each step
// (STARTTLS, SASL mechanisms, bind), the redirect decided at the header
// after SASL, and resource binding (START, answered by STARTED or
// START_FAILED). SASL itself is sasl-exchange.ts's, in-band registration
// registration.ts's. Functions over the connection's fields (Negotiating),
// which the coordinator moves along.
import { escapeXML, escapeXMLText, type Element } from "ltx";
import { domainpart, resourcepart } from "../lib/jid.js";
import { isCondition, type Answered } from "../lib/stanza-error.js";
import { badRequestText } from "../lib/stanza-rules.js";
import type { StreamHeader } from "../lib/xml-stream.js";
import type { Redirect } from "./balancer.js";
import type { ConnectionHost } from "./connection-host.js";
import { REGISTER_FEATURE, isRegistrationIq, onRegistrationIq, registrationOffered } from "./registration.js";
import { plainAllowed } from "./sasl-exchange.js";
import { SmPipe } from "./sm-pipe.js";
import { clientStanza, errorReply, start, type PipeHost, type SessionLink, type Stage } from "./session-pipe.js";
import { NS_SM } from "./stream-management.js";
import { NS_BIND, NS_CSI, NS_LIMITS, NS_SASL, NS_SESSION, NS_TLS, streamHeader } from "./stream-writer.js";

/** Stanzas a client may send between asking to bind and being bound. */
export const MAX_EARLY_STANZAS = 16;

export type NegotiationHost = PipeHost & Pick<ConnectionHost<Negotiating>, "balancer" | "sessions" | "streamId" | "authDone" | "store" | "registrations">;

/** What negotiation reads and moves along of a connection. */
export interface Negotiating extends SessionLink {
  readonly ctx: NegotiationHost;
  stage: Stage;
  domain: string;
  jid: string | null;
  /** Our stream header went out for the current stream. */
  headerSent: boolean;
  /** Came in on the direct-TLS port (XEP-0368), so a redirect names the peer's direct-TLS port. */
  readonly direct: boolean;
  /** Served here after coming back from a redirect: a drain does not move it again. */
  stay: boolean;
  binding: boolean;
  bindId: string | undefined;
  /** Stanzas sent after asking to bind, handled once bound. */
  early: Element[] | null;
  /** The sm incarnation holding the session. */
  holder: string | null;
  /** Counts the connection in the front end's sessions, once. */
  count(): void;
  /** <see-other-host/> to `target`. */
  sendAway(target: Redirect): void;
}

/** Our stream header if it is still owed, to go out in one write with what follows it. */
export function owedHeader(c: Negotiating): string {
  if (c.headerSent) return "";
  c.headerSent = true;
  return streamHeader(c.domain || c.ctx.config.domains[0]!, c.ctx.streamId());
}

/** The client's stream header: checked, then answered with ours and the features of this step, unless the client is sent on. */
export function onHeader(c: Negotiating, h: StreamHeader): void {
  const ctx = c.ctx;
  const domains = ctx.config.domains;
  const to = domainpart(h.to ?? domains[0]!);
  // The configured string itself, not one copy per connection.
  const served = domains.find((d) => d === to);
  c.domain = served ?? domains[0]!;
  if (!served) return c.streamError("host-unknown", `this server does not serve ${h.to}`);
  if (h.version === undefined || !/^1\.\d+$/.test(h.version)) return c.streamError("unsupported-version", "XMPP 1.0 streams only");
  const user = c.user;
  if (user) {
    // RFC 6120 §4.9.3.19: redirect after TLS, so the client knows who sends it away; after SASL, so
    // the farm can remember whom it redirected and serve a client that does not follow (redirection.md).
    const balancer = ctx.balancer;
    if (balancer.returned(c.ip, user)) c.stay = true;
    else if (balancer.wasSent(c.ip, user)) ctx.counters.redirectsFollowed++;
    else {
      const target = balancer.redirectFor(c.ip, user, ctx.sessions, c.direct);
      if (target) return c.sendAway(target);
    }
    // Served here: counted now, not at bind, so a burst of logins sees itself.
    c.count();
  }
  const header = owedHeader(c);
  c.stage = "features";
  c.write(header + features(ctx.config, c.secure, user !== null));
}

/** The features of this step: STARTTLS and SASL before authentication, bind after. */
export function features(config: NegotiationHost["config"], secure: boolean, authenticated: boolean): string {
  // XEP-0478: the largest stanza this stream takes, so a client can avoid sending one bigger.
  const limits = `<limits xmlns='${NS_LIMITS}'><max-bytes>${authenticated ? config.max_stanza_size : config.max_stanza_size_unauthenticated}</max-bytes></limits>`;
  if (!authenticated) {
    const mustTls = config.require_tls && !secure;
    const tlsOffer = secure ? "" : `<starttls xmlns='${NS_TLS}'>${mustTls ? "<required/>" : ""}</starttls>`;
    if (mustTls) return `<stream:features>${tlsOffer}${limits}</stream:features>`;
    const mechs = ["SCRAM-SHA-256", "SCRAM-SHA-1", ...(plainAllowed(config, secure) ? ["PLAIN"] : [])];
    const mechXml = mechs.map((m) => `<mechanism>${m}</mechanism>`).join("");
    const register = registrationOffered(config, secure) ? REGISTER_FEATURE : "";
    return `<stream:features>${tlsOffer}<mechanisms xmlns='${NS_SASL}'>${mechXml}</mechanisms>${register}${limits}</stream:features>`;
  }
  // Roster versioning (XEP-0237, RFC 6121 §2.6) and what client state indication (XEP-0352) changes are the sm's; the features are announced here.
  return `<stream:features><bind xmlns='${NS_BIND}'/><session xmlns='${NS_SESSION}'><optional/></session><ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='${NS_SM}'/><csi xmlns='${NS_CSI}'/>${limits}</stream:features>`;
}

/** A stanza before the session is bound: in-band registration, the bind request, or one kept until bound, or the stream's end. */
export function onUnboundStanza(c: Negotiating, el: Element): void {
  if (!c.user && isRegistrationIq(c.ctx.config, el)) return void onRegistrationIq(c.ctx, c, el);
  if (c.user && el.name === "iq") return onPreBindIq(c, el);
  if (!keepEarly(c, el)) c.streamError("not-authorized", "authenticate and bind before sending stanzas");
}

function keepEarly(c: Negotiating, el: Element): boolean {
  if (!c.binding || !c.early || c.early.length >= MAX_EARLY_STANZAS) return false;
  c.early.push(el);
  return true;
}

function onPreBindIq(c: Negotiating, iq: Element): void {
  if (badRequestText(iq)) return c.write(errorReply(c, unaddressed(iq), "bad-request"));
  const bind = iq.getChild("bind", NS_BIND);
  if (iq.attrs.type === "set" && bind) {
    if (c.binding) return c.write(errorReply(c, unaddressed(iq), "resource-constraint"));
    // RFC 6120 §7.7.2.2: a resourcepart RFC 7622 refuses is a bad request.
    const requested = bind.getChildText("resource")?.trim() ?? "";
    const resource = requested ? resourcepart(requested) : "";
    if (resource === null) return c.write(errorReply(c, unaddressed(iq), "bad-request"));
    c.bindId = iq.attrs.id;
    c.binding = true;
    c.early = [];
    start(c, resource ? `${c.user}/${resource}` : c.user!);
    return;
  }
  if (!keepEarly(c, iq)) c.streamError("not-authorized", "bind a resource before sending stanzas");
}

/** STARTED: the sm bound the session (or acknowledged a rebuild: then only `holder` changes). */
export function bound(c: Negotiating, jid: string, sm: string | null): void {
  if (c.stage === "closed") return;
  c.holder = sm;
  if (c.stage === "bound") return;
  c.jid = jid;
  c.binding = false;
  c.stage = "bound";
  c.pipe ??= new SmPipe();
  c.ctx.authDone(c);
  c.count();
  c.write(`<iq type='result' id='${escapeXML(c.bindId ?? "")}'><bind xmlns='${NS_BIND}'><jid>${escapeXMLText(jid)}</jid></bind></iq>`);
  // The login is logged once at info, as "authenticated"; at thousands a second every line costs.
  c.log.debug("session bound");
  const early = c.early ?? [];
  c.early = null;
  for (const el of early) clientStanza(c, el);
}

/** START_FAILED: the bind iq gets the sm's error; the client may try again. */
export function bindFailed(c: Negotiating, condition: string): void {
  if (c.stage === "closed") return;
  c.smKnows = false;
  c.binding = false;
  c.early = null;
  c.write(errorReply(c, { name: "iq", attrs: { id: c.bindId } }, isCondition(condition) ? condition : "internal-server-error"));
}

/** A pre-bind iq as a stanza error reply sees it: its id alone, since nothing else in it was checked. */
function unaddressed(iq: Element): Answered {
  return { name: "iq", attrs: { id: iq.attrs.id } };
}
