// Parses one XML stream (RFC 6120 §4) from a client, or from an external
// component (XEP-0114), into stanzas. Strict:
// saxes checks well-formedness, and the restricted XML of RFC 6120 §11.1
// (DTDs, comments, processing instructions) ends the stream. A new instance
// is made at every stream restart (after STARTTLS and SASL); hold() keeps
// bytes a client pipelined across a restart for the new one.
//
// Bounded before anything is built: the parser is never given more of one
// stanza than its limit allows (the opening tag, its attributes and any
// text before it count too), and nesting, attributes and names are capped as
// they are read, so neither memory nor time can grow faster than the bytes a
// sender is allowed (saxes resolves a namespace by walking the open tags: its
// cost per tag grows with depth). Its parsers are shared by every stream
// of the process (lib/xml-parser-pool.ts).
import { Element, escapeXML } from "ltx";
import type { SaxesParser, SaxesTagNS } from "saxes";
import { ABORT, markRested, recycle, takeParser, type ParserOwner, type PooledParser, type RestingStream } from "./xml-parser-pool.js";

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

/** What one stream may send; see `xml.*` and `c2s.max_stanza_size*` in lib/config.ts. */
export interface XmlLimits {
  /** Characters one top-level element may take on the wire, with whatever came before it since the last one. */
  maxStanza: number;
  /** Elements nested in a stanza, the stanza itself counted. */
  maxDepth: number;
  /** Attributes on one element, namespace declarations included. */
  maxAttributes: number;
  /** Characters in an element's or attribute's name. */
  maxNameLength: number;
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

/** One decoder for every stream: each keeps only the bytes of a character split between two reads. */
const decoder = new TextDecoder("utf-8", { fatal: true });

/** How many bytes at the end of `buf` start a UTF-8 sequence that is not complete yet. */
function incompleteTail(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

const XML_SPACE = /^[ \t\r\n]*$/;

/** A stream header as replayed to a fresh parser, and its end tag. */
interface Replay {
  readonly open: string;
  readonly close: string;
}

/** Clients send one of a few headers: streams that sent the same one share its replay. */
const replays = new Map<string, Replay>();
const REPLAYS_MAX = 256;

function replayOf(name: string, declarations: string): Replay {
  const open = `<${name}${declarations}>`;
  let r = replays.get(open);
  if (!r) {
    r = { open, close: `</${name}>` };
    if (replays.size < REPLAYS_MAX) replays.set(open, r);
  }
  return r;
}

export class XmlStream implements ParserOwner, RestingStream {
  private pooled: PooledParser | null = null;
  /** The bytes of a character split between two reads. */
  private pendingBytes: Buffer | null = null;
  /**
   * The innermost element open in the stanza being read; its ancestors are
   * its parents. A link, not an array: an idle connection would keep an
   * array's grown backing store (some 150 bytes) between stanzas.
   */
  private openElement: Element | null = null;
  private depth = 0;
  /** Tags open in the parser, counted as it starts reading each: what the depth cap checks, before saxes resolves its namespace. */
  private parserDepth = 0;
  /** Where the current top-level element's budget starts: the end of the last one (or of the header). */
  private stanzaStart = 0;
  /** Where (in the current parser's input) the last stanza ended; -1 inside one. */
  private boundary = -1;
  /**
   * How much the current parser has been given. saxes's own position is only
   * right inside its callbacks: after write() returns it counts the last
   * chunk twice.
   */
  private written = 0;
  /** The stream header as replayed to a fresh parser; set once the header is read. */
  private replay: Replay | null = null;
  /** The replayed header's opening tag is next: not a new stream. */
  private replaying = false;
  /** Prefix declarations on the stream header other than the stream's own, copied onto stanzas. */
  private headerPrefixes: Map<string, string> | null = null;
  private failed = false;
  /** The client closed the stream's root: the parser is clean, and goes back to the pool once the stream lets go of it. */
  private ended = false;
  /** Inside parser.write(): a failure throws ABORT to stop the parser there. */
  private parsing = false;
  /** Between stanzas, with only whitespace read since: the parser holds nothing of ours. */
  private resting = false;
  /**
   * Set by hold(): what the client sent after the element being handled,
   * kept unparsed. A client may pipeline its next stream header right after
   * <auth/> (Tsung does, and XEP-0305 allows it); whether those bytes belong
   * to this stream or a new one is known only once SASL has decided.
   */
  private held: Buffer[] | null = null;
  /** Where in the current parser's input the element that asked for hold() ended. */
  private heldAt = -1;

  constructor(
    private limits: XmlLimits,
    private readonly on: XmlStreamHandlers,
    /** The stream's default namespace: jabber:client, or jabber:component:accept. */
    private readonly ns = NS_CLIENT,
  ) {}

  /** Feeds bytes from the socket. Stops silently once the stream has failed. */
  write(chunk: Buffer): void {
    if (this.failed) return;
    if (this.held) {
      this.held.push(chunk);
      return;
    }
    let bytes = this.pendingBytes ? Buffer.concat([this.pendingBytes, chunk]) : chunk;
    const tail = incompleteTail(bytes);
    this.pendingBytes = tail > 0 ? Buffer.from(bytes.subarray(bytes.length - tail)) : null;
    if (tail > 0) bytes = bytes.subarray(0, bytes.length - tail);
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      this.fail("not-well-formed", "invalid UTF-8");
      return;
    }
    // A keepalive between stanzas needs no parsing (RFC 6120 §4.6.1).
    if ((!this.pooled || this.resting) && this.replay && XML_SPACE.test(text)) return;
    this.resting = false;
    const parser = this.attach();
    const pooled = this.pooled!;
    // The parser gets at most one character past the current element's budget,
    // so an element over it is caught before saxes has buffered much more.
    let fed = 0;
    let aborted = false;
    while (fed < text.length) {
      const room = this.limits.maxStanza - (this.written - this.stanzaStart);
      const end = Math.min(text.length, fed + Math.max(room, 0) + 1);
      const piece = fed === 0 && end === text.length ? text : text.slice(fed, end);
      this.written += piece.length;
      this.parsing = true;
      try {
        parser.write(piece);
      } catch (err) {
        if (err !== ABORT) {
          // A handler failed: the parser stopped somewhere inside; the caller ends the stream.
          this.failed = true;
          this.release();
          throw err;
        }
        aborted = true;
      } finally {
        this.parsing = false;
      }
      fed = end;
      // hold() may have been called from a handler inside write().
      const held = this.held as Buffer[] | null;
      if (held) {
        // saxes read on past the element; keep what came after it, unparsed.
        const rest = text.slice(fed - (this.written - this.heldAt));
        // Whitespace alone is a keepalive of this stream, read already.
        const kept = XML_SPACE.test(rest) ? [] : [Buffer.from(rest, "utf8")];
        held.unshift(...kept, ...(this.pendingBytes ? [this.pendingBytes] : []));
        this.pendingBytes = null;
        // Nothing read past the element (the usual case): the parser is between stanzas, and
        // stays for this stream's next element (a SCRAM <response/>) or goes back to the pool
        // at the restart (takeHeld), or at the sweep if the client stays silent. Otherwise it
        // went on into bytes that are not its to read.
        if (XML_SPACE.test(rest) && !aborted) this.rest();
        else this.release();
        return;
      }
      if (this.failed) {
        if (this.ended && !aborted) recycle(pooled);
        return;
      }
      if (this.written - this.stanzaStart > this.limits.maxStanza) {
        this.fail("policy-violation", `stanza larger than ${this.limits.maxStanza} bytes`);
        return;
      }
    }
    const since = this.written - this.boundary;
    if (this.replay && this.depth === 1 && this.boundary >= 0 && since <= text.length && XML_SPACE.test(text.slice(text.length - since))) {
      this.rest();
    }
  }

  /** Marks the stream as between stanzas: the sweep takes its parser back if it stays so. */
  private rest(): void {
    this.resting = true;
    markRested(this);
  }

  /**
   * For the sweep: returns the parser to the pool if the stream is still
   * between stanzas. A failed, stopped or holding stream has let go of its
   * parser already (fail, stop and hold's end of write() all release it).
   */
  detachIfResting(): void {
    if (this.resting && this.pooled) this.detach();
  }

  /** New limits from the next element on: a component that authenticated may send larger stanzas. */
  setLimits(limits: XmlLimits): void {
    this.limits = limits;
  }

  /** Stops parsing: what follows on the socket is not for this stream (STARTTLS). */
  stop(): void {
    this.failed = true;
    this.release();
  }

  /**
   * From inside the element handler: parse nothing more until resume() or
   * takeHeld(); the bytes that follow are kept as they came.
   */
  hold(): void {
    if (!this.pooled || this.held) return;
    this.held = [];
    this.heldAt = this.pooled.parser.position;
  }

  /** Goes on parsing, this stream, from where hold() stopped. */
  resume(): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    if (held.length) this.write(Buffer.concat(held));
  }

  /** Ends this stream (a restart) and hands over what was held: the start of the next one. */
  takeHeld(): Buffer | null {
    const held = this.held;
    this.held = null;
    // Between stanzas (see write()): the parser is clean, for the pool.
    if (this.resting && this.pooled && !this.parsing) this.detach();
    this.stop();
    if (!held?.length) return null;
    // Whitespace first belongs to the old stream: a new one may start with an XML declaration.
    const bytes = Buffer.concat(held);
    let start = 0;
    while (start < bytes.length && (bytes[start] === 0x20 || bytes[start] === 0x09 || bytes[start] === 0x0a || bytes[start] === 0x0d)) start++;
    return start < bytes.length ? bytes.subarray(start) : null;
  }

  /** The parser working for this stream, taken from the pool if it has none. */
  private attach(): SaxesParser {
    if (this.pooled) return this.pooled.parser;
    const pooled = takeParser(this);
    this.pooled = pooled;
    this.written = 0;
    this.parserDepth = 0;
    if (this.replay) {
      this.replaying = true;
      pooled.parser.write(this.replay.open);
      this.stanzaStart = this.boundary = this.written = this.replay.open.length;
    }
    return pooled.parser;
  }

  /** Returns the parser to the pool, reset: its end tag closes the replayed root. */
  private detach(): void {
    const pooled = this.pooled!;
    this.pooled = null;
    this.resting = false;
    pooled.owner = null;
    pooled.parser.write(this.replay!.close);
    recycle(pooled);
  }

  /** Lets go of a parser in an unknown state: it is not reused. */
  private release(): void {
    if (this.pooled) this.pooled.owner = null;
    this.pooled = null;
  }

  fail(condition: string, text: string): void {
    if (this.failed || this.held) return;
    this.failed = true;
    this.release();
    this.on.error(new StreamError(condition, text));
    if (this.parsing) throw ABORT;
  }

  /** saxes has read a start tag's name (its attributes are still to come). */
  opening(name: string): void {
    this.parserDepth++;
    const tooDeep = this.parserDepth > this.limits.maxDepth + 1;
    if (!tooDeep && name.length <= this.limits.maxNameLength) return;
    // Held bytes are kept as they came, for the next stream to judge; a stopped stream reads no more.
    if (this.failed || this.held) throw ABORT;
    if (tooDeep) this.fail("policy-violation", `elements nested deeper than ${this.limits.maxDepth}`);
    else this.fail("policy-violation", `a name longer than ${this.limits.maxNameLength} characters`);
  }

  open(tag: Tag): void {
    if (this.failed || this.held) return;
    if (this.replaying) {
      this.replaying = false;
      return;
    }
    const names = Object.keys(tag.attributes);
    if (names.length > this.limits.maxAttributes) return this.fail("policy-violation", `more than ${this.limits.maxAttributes} attributes on one element`);
    for (const n of names) if (n.length > this.limits.maxNameLength) return this.fail("policy-violation", `a name longer than ${this.limits.maxNameLength} characters`);
    if (this.depth === 0) {
      this.depth = 1;
      this.stanzaStart = this.boundary = this.pooled!.parser.position;
      if (tag.local !== "stream" || tag.uri !== NS_STREAM) {
        this.fail("invalid-namespace", `the root must be <stream> in ${NS_STREAM}`);
        return;
      }
      const defaultNs = tag.ns[""];
      if (defaultNs !== this.ns) {
        this.fail("invalid-namespace", `the stream's default namespace must be ${this.ns}`);
        return;
      }
      let declarations = "";
      for (const [prefix, uri] of Object.entries(tag.ns)) {
        declarations += ` ${prefix ? `xmlns:${prefix}` : "xmlns"}='${escapeXML(uri)}'`;
        if (prefix !== "" && uri !== NS_STREAM) (this.headerPrefixes ??= new Map()).set(prefix, uri);
      }
      this.replay = replayOf(tag.name, declarations);
      const attr = (n: string) => tag.attributes[n]?.value;
      this.on.header({ to: attr("to"), version: attr("version"), lang: attr("xml:lang") });
      return;
    }
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) attrs[a.name] = a.value;
    if (this.depth === 1) {
      this.boundary = -1;
      if (this.headerPrefixes) for (const [prefix, uri] of this.headerPrefixes) attrs[`xmlns:${prefix}`] ??= uri;
    }
    const el = new Element(tag.name, attrs);
    this.openElement?.cnode(el);
    this.openElement = el;
    this.depth++;
  }

  close(tag: Tag): void {
    this.parserDepth--;
    if (this.failed || this.held) return;
    this.depth--;
    if (this.depth === 0) {
      this.ended = true;
      this.on.end();
      return;
    }
    const el = this.openElement!;
    this.openElement = el.parent;
    if (this.depth === 1) {
      const position = this.pooled!.parser.position;
      if (position - this.stanzaStart > this.limits.maxStanza) {
        this.fail("policy-violation", `stanza larger than ${this.limits.maxStanza} bytes`);
        return;
      }
      this.stanzaStart = this.boundary = position;
      this.on.element(el, tag.uri);
    }
  }

  text(text: string): void {
    if (this.failed || this.held) return;
    const top = this.openElement;
    if (top) top.t(text);
    else if (this.depth === 1 && /\S/.test(text)) this.fail("bad-format", "text is not allowed between stanzas");
    // Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1).
  }
}
