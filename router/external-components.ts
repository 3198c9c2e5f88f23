// XEP-0114 external components: standard components (a MUC, a gateway, a
// bot) connect to the router with their own domain and shared secret. The
// router is their gateway into the farm: it parses their XML stream (they
// speak XML, not link frames), and routes each stanza by its 'to' — to the
// sm that owns a local user, or to another component.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { escapeXML } from "ltx";
import type { Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { listenFailure } from "../lib/process-lifecycle.js";
import { LogThrottle, clipForLog } from "../lib/log-bounds.js";
import { nameShape } from "../lib/link/member.js";
import { serialize } from "../lib/xml-serialize.js";
import { NS_COMPONENT, XmlStream, type XmlLimits } from "../lib/xml-stream.js";

const NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams";
const HANDSHAKE_TIMEOUT_MS = 10_000;
const STANZA_NAMES: ReadonlySet<string> = new Set(["message", "presence", "iq"]);
/** Streams refused before the handshake write one log line per this interval; the next line counts the rest. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ExternalComponentsOptions {
  host: string;
  port: number;
  /** The secret of each component domain; a domain not here is refused. */
  secretOf: (domain: string) => string | undefined;
  /** Bytes the router may hold for a component that does not read before it is cut off. */
  maxUnread: number;
  /** What a component's stream may send before and after its handshake. */
  limits: { unauthenticated: XmlLimits; authenticated: XmlLimits };
  log: Logger;
  /** A component authenticated: it receives what `send` is given; false if the domain is taken. */
  attach(domain: string, send: (xml: Buffer | string) => void): boolean;
  detach(domain: string): void;
  /** A stanza from a component, `from` already checked against its domain, and its XML as passed on. */
  route(domain: string, stanza: Element, xml: string): void;
}

export async function listenExternalComponents(opts: ExternalComponentsOptions): Promise<net.Server> {
  const refusals = new LogThrottle(REFUSAL_LOG_INTERVAL_MS);
  const server = net.createServer((socket) => accept(socket, opts, refusals));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(listenFailure("router.component_port", opts.port, err)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  opts.log.info({ host: opts.host, port: opts.port }, "listening for XEP-0114 components");
  return server;
}

function accept(socket: net.Socket, opts: ExternalComponentsOptions, refusals: LogThrottle): void {
  const log = opts.log.child({ peer: `${socket.remoteAddress}:${socket.remotePort}` });
  const id = randomBytes(8).toString("hex");
  let domain: string | null = null;
  let authenticated = false;
  const fail = (condition: string, text: string) => {
    // Before the handshake, anyone may fail as often as they like: those lines are thinned out.
    const unlogged = authenticated ? 0 : refusals.take();
    if (unlogged !== null) log.warn({ component: clipForLog(domain), condition, text, unlogged }, "component stream error");
    socket.end(`<stream:error><${condition} xmlns='${NS_STREAMS_ERR}'/><text xmlns='${NS_STREAMS_ERR}'>${escapeXML(text)}</text></stream:error></stream:stream>`);
    stream.stop();
  };
  const timer = setTimeout(() => fail("connection-timeout", "no handshake in time"), HANDSHAKE_TIMEOUT_MS);
  const stream = new XmlStream(
    opts.limits.unauthenticated,
    {
      header: (h) => {
        const to = parseJid(h.to ?? "");
        // A bare domain that fits a ROUTE header, since the sms address the component by it (protocol §1.4).
        domain = to && !to.local && !to.resource && nameShape(to.domain) ? to.domain : null;
        socket.write(
          `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='${escapeXML(domain ?? "")}'>`,
        );
        if (!domain || opts.secretOf(domain) === undefined) fail("host-unknown", "no component is configured for that domain");
      },
      element: (el, uri) => {
        if (!authenticated) {
          if (el.name !== "handshake") return fail("not-authorized", "send <handshake/> first");
          const expected = createHash("sha1").update(id + opts.secretOf(domain!)).digest("hex");
          const given = Buffer.from(el.getText().trim().toLowerCase());
          if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
            return fail("not-authorized", "wrong handshake: check the component's secret");
          }
          const send = (xml: Buffer | string) => {
            if (socket.destroyed) return;
            socket.write(xml);
            if (socket.writableLength <= opts.maxUnread) return;
            // It does not read: it would not read a stream error either.
            log.warn({ component: domain, buffered: socket.writableLength }, "component does not read; closing");
            socket.destroy();
          };
          if (!opts.attach(domain!, send)) {
            return fail("conflict", `a component for ${domain} is already connected`);
          }
          authenticated = true;
          stream.setLimits(opts.limits.authenticated);
          clearTimeout(timer);
          socket.write("<handshake/>");
          log.info({ component: domain }, "component connected");
          return;
        }
        if (uri !== NS_COMPONENT || !STANZA_NAMES.has(el.name)) return fail("unsupported-stanza-type", "only message, presence and iq are routed");
        const from = parseJid(el.attrs.from ?? "");
        // A component speaks for its own domain and the JIDs at it, nothing else (not even a subdomain).
        if (!from || from.domain !== domain) return fail("invalid-from", `'from' must be ${domain} or a JID at it`);
        const xml = serialize(el);
        // The size limit counts what is passed on, escaping included (a link frame must hold it).
        if (Buffer.byteLength(xml) > opts.limits.authenticated.maxStanza) {
          return fail("policy-violation", `stanza larger than ${opts.limits.authenticated.maxStanza} bytes`);
        }
        opts.route(domain, el, xml);
      },
      end: () => socket.end("</stream:stream>"),
      error: (err) => fail(err.condition, err.message),
    },
    NS_COMPONENT,
  );
  socket.on("data", (chunk: Buffer) => {
    try {
      stream.write(chunk);
    } catch (err) {
      // Whatever fails while handling a component's bytes (routing its stanza included) costs it its stream, never the router.
      log.error({ err, component: domain }, "handling a component's data failed; ending its stream");
      fail("internal-server-error", "the router could not handle that");
    }
  });
  socket.on("error", (err) => log.debug({ err: err.message }, "component socket error"));
  socket.on("close", () => {
    clearTimeout(timer);
    if (authenticated && domain) {
      opts.detach(domain);
      log.warn({ component: domain }, "component disconnected");
    }
  });
}
