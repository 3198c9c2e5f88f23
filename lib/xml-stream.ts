// Parses one XML stream (RFC 6120 §4) from a client, or from an external
// component (XEP-0114), into stanzas. Strict:
// saxes checks well-formedness, and the restricted XML of RFC 6120 §11.1
// (DTDs, comments, processing instructions) ends the stream. A new instance
// is made at every stream restart (after STARTTLS and SASL).
import { Element } from "ltx";
import { SaxesParser, type SaxesTagNS } from "saxes";

export const NS_STREAM = "http://etherx.jabber.org/streams";
export const NS_CLIENT = "jabber:client";
export const NS_COMPONENT = "jabber:component:accept";

export interface StreamHeader {
  to: string | undefined;
  version: string | undefined;
  lang: string | undefined;
}

/** A condition of RFC 6120 §4.9.3 and a text for the client. */
export class StreamError extends Error {
  constructor(
    readonly condition: string,
    text: string,
  ) {
    super(text);
  }
}

export interface XmlStreamHandlers {
  header(h: StreamHeader): void;
  /** A complete top-level element; `uri` is its namespace. */
  element(el: Element, uri: string): void;
  /** The client closed its stream with </stream:stream>. */
  end(): void;
  error(err: StreamError): void;
}

type Tag = SaxesTagNS;

export class XmlStream {
  private readonly parser = new SaxesParser({ xmlns: true, position: true });
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private stack: Element[] = [];
  private depth = 0;
  private stanzaStart = 0;
  /** Prefix declarations on the stream header other than the stream's own, copied onto stanzas. */
  private headerPrefixes: Record<string, string> = {};
  private failed = false;

  constructor(
    private readonly maxStanza: number,
    private readonly on: XmlStreamHandlers,
    /** The stream's default namespace: jabber:client, or jabber:component:accept. */
    private readonly ns = NS_CLIENT,
  ) {
    const p = this.parser;
    p.on("doctype", () => this.fail("not-well-formed", "a DOCTYPE is not allowed in XMPP (RFC 6120 §11.1)"));
    p.on("comment", () => this.fail("restricted-xml", "comments are not allowed in XMPP (RFC 6120 §11.1)"));
    p.on("processinginstruction", () =>
      this.fail("restricted-xml", "processing instructions are not allowed in XMPP (RFC 6120 §11.1)"),
    );
    p.on("error", (err) => this.fail("not-well-formed", err.message));
    p.on("opentag", (tag) => this.open(tag as Tag));
    p.on("closetag", (tag) => this.close(tag as Tag));
    p.on("text", (text) => this.text(text));
    p.on("cdata", (text) => this.text(text));
  }

  /** Feeds bytes from the socket. Stops silently once the stream has failed. */
  write(chunk: Buffer): void {
    if (this.failed) return;
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      this.fail("not-well-formed", "invalid UTF-8");
      return;
    }
    this.parser.write(text);
    if (!this.failed && this.parser.position - this.stanzaStart > this.maxStanza && this.depth !== 1) {
      this.fail("policy-violation", `stanza larger than ${this.maxStanza} bytes`);
    }
  }

  /** Stops parsing: what follows on the socket is not for this stream (STARTTLS). */
  stop(): void {
    this.failed = true;
  }

  private fail(condition: string, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.on.error(new StreamError(condition, text));
  }

  private open(tag: Tag): void {
    if (this.failed) return;
    if (this.depth === 0) {
      this.depth = 1;
      this.stanzaStart = this.parser.position;
      if (tag.local !== "stream" || tag.uri !== NS_STREAM) {
        this.fail("invalid-namespace", `the root must be <stream> in ${NS_STREAM}`);
        return;
      }
      const defaultNs = tag.ns[""];
      if (defaultNs !== this.ns) {
        this.fail("invalid-namespace", `the stream's default namespace must be ${this.ns}`);
        return;
      }
      for (const [prefix, uri] of Object.entries(tag.ns)) {
        if (prefix !== "" && uri !== NS_STREAM) this.headerPrefixes[prefix] = uri;
      }
      const attr = (n: string) => tag.attributes[n]?.value;
      this.on.header({ to: attr("to"), version: attr("version"), lang: attr("xml:lang") });
      return;
    }
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) attrs[a.name] = a.value;
    if (this.depth === 1) {
      this.stanzaStart = this.parser.position;
      for (const [prefix, uri] of Object.entries(this.headerPrefixes)) attrs[`xmlns:${prefix}`] ??= uri;
    }
    const el = new Element(tag.name, attrs);
    this.stack.at(-1)?.cnode(el);
    this.stack.push(el);
    this.depth++;
  }

  private close(tag: Tag): void {
    if (this.failed) return;
    this.depth--;
    if (this.depth === 0) {
      this.on.end();
      return;
    }
    const el = this.stack.pop()!;
    if (this.depth === 1) {
      if (this.parser.position - this.stanzaStart > this.maxStanza) {
        this.fail("policy-violation", `stanza larger than ${this.maxStanza} bytes`);
        return;
      }
      this.stanzaStart = this.parser.position;
      this.on.element(el, tag.uri);
    }
  }

  private text(text: string): void {
    if (this.failed) return;
    const top = this.stack.at(-1);
    if (top) top.t(text);
    else if (this.depth === 1 && /\S/.test(text)) this.fail("bad-format", "text is not allowed between stanzas");
    // Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1).
  }
}
