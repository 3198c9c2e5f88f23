// What one sender can make the stream parser do: every byte of a stanza
// counts toward its limit, nesting, attributes and names are capped as they
// are read, and the parser stops at the first violation instead of reading
// on (issue 13, H1–H3). Work is counted, not timed: saxes resolves a
// namespace once per tag, so the calls to its resolve() are what it did.
import { Element, parse as ltxParse } from "ltx";
import { SaxesParser } from "saxes";
import { afterEach, describe, expect, it, vi } from "vitest";
import { escapeText, serialize } from "../lib/xml-serialize.js";
import { XmlStream, type StreamError, type XmlLimits } from "../lib/xml-stream.js";

const LIMITS: XmlLimits = { maxStanza: 10_000, maxDepth: 16, maxAttributes: 8, maxNameLength: 32 };
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`;

interface Run {
  errors: string[];
  elements: Element[];
  /** Characters written before the first error. */
  writtenAtError: number;
}

/** Feeds `chunks` one by one (as reads from a socket), stopping at the first error as the c2s would. */
function feed(chunks: Iterable<string>, limits = LIMITS): Run {
  const run: Run = { errors: [], elements: [], writtenAtError: -1 };
  let written = 0;
  const stream = new XmlStream(limits, {
    header: () => {},
    element: (el) => run.elements.push(el),
    end: () => {},
    error: (err: StreamError) => {
      run.errors.push(`${err.condition}: ${err.message}`);
      run.writtenAtError = written;
    },
  });
  for (const chunk of chunks) {
    written += chunk.length;
    stream.write(Buffer.from(chunk));
    if (run.errors.length > 0) break;
  }
  return run;
}

function* repeat(text: string, times: number): Generator<string> {
  for (let i = 0; i < times; i++) yield text;
}

afterEach(() => vi.restoreAllMocks());

describe("the stream parser's limits", () => {
  it("counts an opening tag's attribute toward the limit, before the tag is complete (H1)", () => {
    // 64 KiB reads of one attribute value that never ends, as a client can send for 30 s.
    const chunk = "x".repeat(65_536);
    const run = feed([HEADER, "<message to='", ...repeat(chunk, 64)]);
    expect(run.errors).toEqual(["policy-violation: stanza larger than 10000 bytes"]);
    // Caught in the first read past the limit, not after 4 MiB.
    expect(run.writtenAtError).toBeLessThan(HEADER.length + 13 + 2 * chunk.length);
  });

  it("counts the stream header's attributes and the text between stanzas too", () => {
    expect(feed([HEADER.replace("to='localhost'", `to='${"a".repeat(20_000)}'`)]).errors).toEqual(["policy-violation: stanza larger than 10000 bytes"]);
    expect(feed([HEADER, "<message/>", ...repeat("x".repeat(4096), 4)]).errors).toEqual(["policy-violation: stanza larger than 10000 bytes"]);
    // Whitespace keepalives between stanzas are free, however many (RFC 6120 §4.6.1).
    expect(feed([HEADER, "<message/>", ...repeat(" ", 20_000), "<message/>"]).errors).toEqual([]);
    expect(feed([HEADER, "<message>", "y".repeat(9_000), "</message>", "<message>", "y".repeat(9_000), "</message>"]).errors).toEqual([]);
  });

  it("stops at the first tag nested too deep, with work linear in what was read (H2)", () => {
    const resolve = vi.spyOn(SaxesParser.prototype, "resolve");
    // 240 KB of <a>: 80,000 levels, in 64 KiB reads; allowed a large stanza, so only depth stops it.
    const run = feed([HEADER, ...repeat("<a>".repeat(21_845), 4)], { ...LIMITS, maxStanza: 1 << 20 });
    expect(run.errors).toEqual(["policy-violation: elements nested deeper than 16"]);
    // One namespace resolution per tag read: the header, 17 levels, and nothing after the failure.
    expect(resolve.mock.calls.length).toBeLessThanOrEqual(LIMITS.maxDepth + 4);
  });

  it("accepts nesting up to the limit", () => {
    const deep = (n: number) => "<message>" + "<a>".repeat(n - 1) + "</a>".repeat(n - 1) + "</message>";
    expect(feed([HEADER, deep(16)]).errors).toEqual([]);
    expect(feed([HEADER, deep(17)]).errors).toEqual(["policy-violation: elements nested deeper than 16"]);
  });

  it("caps attributes per element and the length of names", () => {
    const attrs = (n: number) => Array.from({ length: n }, (_, i) => ` a${i}='v'`).join("");
    expect(feed([HEADER, `<message${attrs(8)}/>`]).errors).toEqual([]);
    expect(feed([HEADER, `<message${attrs(9)}/>`]).errors).toEqual(["policy-violation: more than 8 attributes on one element"]);
    expect(feed([HEADER, `<message><${"n".repeat(33)}/></message>`]).errors).toEqual(["policy-violation: a name longer than 32 characters"]);
    expect(feed([HEADER, `<message ${"n".repeat(33)}='v'/>`]).errors).toEqual(["policy-violation: a name longer than 32 characters"]);
  });

  it("stops reading held bytes that nest too deep, leaving them for the next stream to refuse", () => {
    const resolve = vi.spyOn(SaxesParser.prototype, "resolve");
    let stream!: XmlStream;
    const errors: string[] = [];
    stream = new XmlStream(LIMITS, {
      header: () => {},
      element: () => stream.hold(),
      end: () => {},
      error: (err) => errors.push(err.condition),
    });
    stream.write(Buffer.from(HEADER + "<auth/>" + HEADER + "<a>".repeat(3000)));
    expect(errors).toEqual([]);
    expect(resolve.mock.calls.length).toBeLessThanOrEqual(2 * LIMITS.maxDepth + 8);
    const next = feed([stream.takeHeld()!.toString("utf8")]);
    expect(next.errors).toEqual(["policy-violation: elements nested deeper than 16"]);
  });
});

describe("serialize", () => {
  it("writes 5,000 levels of nesting without recursion (H3)", () => {
    let el = new Element("message", { to: "a@localhost" });
    const root = el;
    for (let i = 0; i < 5_000; i++) el = el.c("a");
    el.t("deep");
    const xml = serialize(root);
    expect(xml.startsWith("<message to='a@localhost'><a><a>")).toBe(true);
    expect(xml.endsWith(`deep${"</a>".repeat(5_000)}</message>`)).toBe(true);
    expect(() => root.toString()).toThrow(RangeError);
  });

  it("escapes only what XML needs, so what it writes is no larger than what was read", () => {
    expect(escapeText(`"quoted" 'and' > <b> & ]]> end`)).toBe(`"quoted" 'and' > &lt;b> &amp; ]]&gt; end`);
    const el = new Element("iq", { a: `it's`, b: `say "hi"`, c: `both ' and "`, d: "tab\tline\nend\r" });
    el.c("x").t("]]").up().t(">");
    const xml = serialize(el);
    expect(xml).toBe(`<iq a="it's" b='say "hi"' c='both &#39; and "' d='tab&#9;line&#10;end&#13;'><x>]]</x>&gt;</iq>`);
    // Read back, it is the same element.
    expect(ltxParse(xml).toString()).toBe(el.toString());
  });

  it("round-trips what the stream parser read", () => {
    const stanza = `<message to='a@localhost' x="it's"><body>h\u00e9llo "\ud83d\udc1d" &amp; &lt;b></body><![CDATA[<raw>]]></message>`;
    const run = feed([HEADER, stanza]);
    expect(run.errors).toEqual([]);
    const xml = serialize(run.elements[0]!);
    expect(xml).toBe(`<message to='a@localhost' x="it's"><body>h\u00e9llo "\ud83d\udc1d" &amp; &lt;b></body>&lt;raw></message>`);
    expect(ltxParse(xml).toString()).toBe(run.elements[0]!.toString());
  });
});
