// The simulator's whole XML parser: it splits an XMPP stream into its
// top-level elements (stanzas, features, SASL and SM nonzas) and hands each
// over as a string, to be read with a regular expression or two. No DOM, no
// tree, no per-client parser object beyond a pending string and two numbers:
// the cost of 100,000 clients must stay that of their sockets.
//
// It trusts the server to be well-formed (this is a load generator, not a
// validator): it tracks depth by tags, honours quotes in attributes, and
// skips comments, processing instructions and CDATA.

export interface ScanSink {
  /** The stream header arrived (depth 0 → 1). */
  streamOpen(): void;
  /** A complete top-level element; `name` without its prefix (stream:features → features). */
  element(name: string, xml: string): void;
  /** </stream:stream> arrived. */
  streamEnd(): void;
}

export class StanzaScanner {
  private buf = "";
  /** Where scanning resumes in buf. */
  private pos = 0;
  private depth = 0;
  /** Start in buf of the element being read at depth 1, or -1. */
  private start = -1;
  /** Bumped by reset(), so a sink that restarts the stream mid-chunk stops the loop. */
  private gen = 0;

  /** Forgets everything: a new stream starts (after STARTTLS or SASL success). */
  reset(): void {
    this.buf = "";
    this.pos = 0;
    this.depth = 0;
    this.start = -1;
    this.gen++;
  }

  /** Bytes held for an element not yet complete. */
  get pending(): number {
    return this.buf.length;
  }

  push(chunk: string, sink: ScanSink): void {
    const gen = this.gen;
    const b = this.buf ? this.buf + chunk : chunk;
    this.buf = b;
    const len = b.length;
    let i = this.pos;
    for (;;) {
      const lt = b.indexOf("<", i);
      if (lt < 0) {
        i = len;
        break;
      }
      if (lt + 1 >= len) {
        i = lt;
        break;
      }
      const c1 = b.charCodeAt(lt + 1);
      if (c1 === 63 /* ? */) {
        const end = b.indexOf("?>", lt + 2);
        if (end < 0) {
          i = lt;
          break;
        }
        i = end + 2;
        continue;
      }
      if (c1 === 33 /* ! */) {
        const cdata = b.startsWith("<![CDATA[", lt);
        const comment = b.startsWith("<!--", lt);
        if (!cdata && !comment && lt + 9 > len) {
          i = lt;
          break;
        }
        const close = cdata ? "]]>" : comment ? "-->" : ">";
        const end = b.indexOf(close, lt + 2);
        if (end < 0) {
          i = lt;
          break;
        }
        i = end + close.length;
        continue;
      }
      // The tag's end: the first '>' outside quotes.
      let j = lt + 1;
      let quote = 0;
      for (; j < len; j++) {
        const ch = b.charCodeAt(j);
        if (quote) {
          if (ch === quote) quote = 0;
        } else if (ch === 34 || ch === 39) quote = ch;
        else if (ch === 62) break;
      }
      if (j >= len) {
        i = lt;
        break;
      }
      i = j + 1;
      if (c1 === 47 /* / */) {
        this.depth--;
        if (this.depth === 1 && this.start >= 0) {
          const s = this.start;
          this.start = -1;
          sink.element(nameAt(b, s), b.slice(s, i));
          if (this.gen !== gen) return;
        } else if (this.depth <= 0) {
          this.depth = 0;
          sink.streamEnd();
          if (this.gen !== gen) return;
        }
      } else if (b.charCodeAt(j - 1) === 47 /* self-closing */) {
        if (this.depth === 1) {
          sink.element(nameAt(b, lt), b.slice(lt, i));
          if (this.gen !== gen) return;
        }
      } else {
        this.depth++;
        if (this.depth === 1) {
          sink.streamOpen();
          if (this.gen !== gen) return;
        } else if (this.depth === 2) this.start = lt;
      }
    }
    // Keep only what is still needed: the element being read, or an incomplete tag.
    if (this.start >= 0) {
      this.buf = b.slice(this.start);
      this.pos = i - this.start;
      this.start = 0;
    } else if (i >= len) {
      this.buf = "";
      this.pos = 0;
    } else {
      this.buf = b.slice(i);
      this.pos = 0;
    }
  }
}

/** The local name of the element whose '<' is at `lt`. */
function nameAt(b: string, lt: number): string {
  let e = lt + 1;
  let colon = -1;
  for (;;) {
    const ch = b.charCodeAt(e);
    if (ch === 32 || ch === 62 || ch === 47 || ch === 9 || ch === 10 || ch === 13 || Number.isNaN(ch)) break;
    if (ch === 58) colon = e;
    e++;
  }
  return b.slice(colon >= 0 ? colon + 1 : lt + 1, e);
}

/** The value of attribute `name` in the element's start tag, or undefined (entities left as they are). */
export function attr(xml: string, name: string): string | undefined {
  const tagEnd = startTagEnd(xml);
  const head = xml.slice(0, tagEnd);
  const re = new RegExp(`\\s${name}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`);
  const m = re.exec(head);
  return m ? (m[1] ?? m[2]) : undefined;
}

function startTagEnd(xml: string): number {
  let quote = 0;
  for (let j = 1; j < xml.length; j++) {
    const ch = xml.charCodeAt(j);
    if (quote) {
      if (ch === quote) quote = 0;
    } else if (ch === 34 || ch === 39) quote = ch;
    else if (ch === 62) return j + 1;
  }
  return xml.length;
}

/** The name of the first child element of `xml` other than those in `skip`, and its text (stream errors, SASL failures). */
export function firstChild(xml: string, skip: readonly string[] = ["text"]): { name: string; text: string } | null {
  const re = /<([A-Za-z][\w:.-]*)((?:\s[^>]*?)?)(\/>|>([^<]*))/g;
  re.lastIndex = startTagEnd(xml);
  let m: RegExpExecArray | null;
  while ((m = re.exec(xml))) {
    const name = m[1]!.includes(":") ? m[1]!.slice(m[1]!.indexOf(":") + 1) : m[1]!;
    if (!skip.includes(name)) return { name, text: m[4] ?? "" };
  }
  return null;
}

/** Unescapes the five predefined entities (enough for a host:port or a JID). */
export function unescapeXml(s: string): string {
  return s.includes("&")
    ? s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e]!)
    : s;
}
